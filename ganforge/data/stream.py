"""An endless, deterministic and resumable stream of shuffled mini-batches."""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from ..errors import DataError
from .dataset import ArrayDataset


def epoch_seed(seed: int, epoch: int) -> int:
    """The generator seed for one epoch's permutation: a hash of (seed, epoch), so no two pairs share one."""
    digest = hashlib.blake2b(f"ganforge-batch-stream:{seed}:{epoch}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1  # 63 bits: always a valid manual_seed value


class BatchStream:
    """Endless shuffled batches of `dataset`; each epoch is a fresh permutation and the last partial batch is dropped.

    The permutation of epoch e is `torch.randperm(n, generator=Generator().manual_seed(epoch_seed(seed, e)))`,
    so the stream depends only on (seed, epoch, pos) and never on torch's global RNG.
    """

    def __init__(self, dataset: ArrayDataset, batch_size: int, seed: int) -> None:
        n = len(dataset)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise DataError(f"batch size must be a positive integer, got {batch_size!r}")
        if batch_size > n:
            raise DataError(
                f"batch size {batch_size} is larger than dataset {dataset.name!r}, which has only {n} samples; "
                f"use a batch size of at most {n}"
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = int(seed)
        self.n = n
        self.epoch = 0
        self.pos = 0
        self.drawn = 0  # samples drawn so far, whatever the batch sizes (a progressive run changes them)
        self._perm: Tensor | None = None
        self._perm_epoch = -1
        self.rank, self.world = 0, 1

    def shard(self, rank: int, world: int) -> BatchStream:
        """Make this rank's stream: each batch of n is rank's slice of the global batch of n x world (see `next_indices`)."""
        if not 0 <= rank < world:
            raise DataError(f"rank {rank} is not in 0..{world - 1}")
        if self.batch_size % world:
            raise DataError(
                f"the batch size {self.batch_size} cannot be split evenly across {world} processes; use a "
                f"multiple of {world} (the recipe's train.batch_size is the global batch)."
            )
        self.rank, self.world = int(rank), int(world)
        return self

    @property
    def batches_per_epoch(self) -> int:
        """Number of full batches in one epoch."""
        return self.n // self.batch_size

    def _permutation(self, epoch: int) -> Tensor:
        if self._perm_epoch != epoch or self._perm is None:
            gen = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
            self._perm = torch.randperm(self.n, generator=gen)
            self._perm_epoch = epoch
        return self._perm

    def next_indices(self, n: int | None = None) -> Tensor:
        """The dataset indices of the next batch (of `n` samples, default batch_size), advancing the stream.

        A sharded stream (`shard`) draws the global batch of n x world (default: batch_size) and returns
        this rank's n: the ranks' batches, concatenated in rank order, are the one-process batch.
        """
        if self.world > 1:
            local = self.batch_size // self.world if n is None else n
            return self._next_global(local * self.world)[self.rank * local : (self.rank + 1) * local]
        return self._next_global(self.batch_size if n is None else n)

    def _next_global(self, n: int) -> Tensor:
        if not 1 <= n <= self.n:
            raise DataError(f"a batch of {n} samples cannot be drawn from dataset {self.dataset.name!r} of {self.n}")
        if self.pos + n > self.n:
            self.epoch += 1
            self.pos = 0
        idx = self._permutation(self.epoch)[self.pos : self.pos + n]
        self.pos += n
        self.drawn += n
        return idx

    def next(self, n: int | None = None) -> tuple[Tensor, Tensor | None]:
        """The next batch (x, y) of `n` samples (default batch_size) as returned by `dataset.get`."""
        return self.dataset.get(self.next_indices(n))

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor | None]]:
        return self

    def __next__(self) -> tuple[Tensor, Tensor | None]:
        return self.next()

    def state_dict(self) -> dict[str, int]:
        """The position of the stream: {"epoch": int, "pos": int, "drawn": int}."""
        return {"epoch": self.epoch, "pos": self.pos, "drawn": self.drawn}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a position saved by `state_dict` (with the same dataset, batch size and seed)."""
        try:
            epoch, pos = state["epoch"], state["pos"]
        except (KeyError, TypeError) as exc:
            raise DataError(f"batch stream state must have integer 'epoch' and 'pos', got {state!r}") from exc
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in (epoch, pos)):
            raise DataError(f"batch stream state must have integer 'epoch' and 'pos', got {state!r}")
        epoch, pos = int(epoch), int(pos)
        if epoch < 0 or not 0 <= pos <= self.n:
            raise DataError(
                f"batch stream state {state!r} does not fit dataset {self.dataset.name!r} "
                f"of {self.n} samples (pos must be in 0..{self.n}, epoch >= 0)"
            )
        self.epoch = epoch
        self.pos = pos
        # Checkpoints from before the count existed drew fixed-size batches.
        drawn = state.get("drawn")
        self.drawn = (
            int(drawn)
            if isinstance(drawn, numbers.Integral)
            else epoch * self.batches_per_epoch * self.batch_size + pos
        )
