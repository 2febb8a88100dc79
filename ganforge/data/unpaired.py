"""Unpaired two-domain data for image-to-image translation (CycleGAN): two datasets, shuffled independently.

`data: {name: unpaired, a: {...}, b: {...}}`: each side is any image dataset spec (a folder, a class
subset such as `{name: fashion_mnist, classes: [sneaker]}`). Both sides must give images of one
shape. Each side keeps a test split: its own when the dataset has one, else a seeded tenth of its
images held out (the same images for every run, never trained on).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..errors import ConfigError, DataError
from .dataset import ArrayDataset
from .stream import BatchStream

SIDES = ("a", "b")
HOLDOUT_FRACTION = 0.1  # of a side without its own test split


@dataclass(eq=False)
class UnpairedDataset:
    """Domain A and domain B images of one shape; `kind` is 'image', there are no labels."""

    a: ArrayDataset
    b: ArrayDataset
    name: str = "unpaired"
    kind: str = "image"
    info: dict[str, Any] = field(default_factory=dict)
    y: None = None
    num_classes: int = 0
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.a.kind != "image" or self.b.kind != "image":
            raise ConfigError(
                "data 'unpaired' translates images: both sides must be image datasets, got "
                f"{self.a.kind} and {self.b.kind}."
            )
        if self.a.shape != self.b.shape:
            raise ConfigError(
                f"data 'unpaired': side a gives images of shape {list(self.a.shape)} and side b "
                f"{list(self.b.shape)}; set data.a/b.image_size and channels so they match."
            )

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one image (C, H, W), the same on both sides."""
        return self.a.shape

    def side(self, name: str) -> ArrayDataset:
        """Domain `name` ('a' or 'b')."""
        if name not in SIDES:
            raise ConfigError(f"an unpaired dataset has sides 'a' and 'b', not {name!r}")
        return self.a if name == "a" else self.b


def holdout_split(n: int, split: str, key: str) -> Tensor:
    """The indices of `split` ('train' or 'test') when a seeded tenth (at least 1) of n items is held out as test.

    The permutation depends only on `key` (the side's description), so every run holds out the same items.
    """
    if n < 2:
        raise DataError(f"a dataset of {n} image cannot be split into train and test; give it at least 2")
    seed = int.from_bytes(hashlib.blake2b(f"ganforge-holdout:{key}".encode(), digest_size=8).digest(), "little") >> 1
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = max(1, round(n * HOLDOUT_FRACTION))
    return perm[:k].sort().values if split == "test" else perm[k:].sort().values


def load_unpaired(load_side: Callable[[str, str], tuple[ArrayDataset, bool]], split: str) -> UnpairedDataset:
    """Both sides of `split`; `load_side(side, split)` returns (dataset, whether it is that split already)."""
    sides = {}
    for s in SIDES:
        ds, native = load_side(s, split)
        if not native:  # the whole dataset was loaded: keep this split's part of it
            idx = holdout_split(len(ds), split, f"{ds.name}:{sorted(ds.info.items())!r}")
            ds = ds.subset(idx)
            ds.info["split"] = f"{split} (seeded {HOLDOUT_FRACTION:.0%} held out as test)"
        sides[s] = ds
    return UnpairedDataset(sides["a"], sides["b"], info={"a": sides["a"].info, "b": sides["b"].info})


class UnpairedStream:
    """Endless, independently shuffled batches of both sides: `next(n)` gives (a, b); resumable like BatchStream."""

    def __init__(self, dataset: UnpairedDataset, batch_size: int, seed: int) -> None:
        self.dataset = dataset
        self.a = BatchStream(dataset.a, batch_size, seed)
        self.b = BatchStream(dataset.b, batch_size, seed + 1)  # its own order: the data are unpaired

    @property
    def epoch(self) -> int:
        """Epochs of side a completed (the log's `epoch`)."""
        return self.a.epoch

    @property
    def drawn(self) -> int:
        """Images drawn from side a (as many as from side b)."""
        return self.a.drawn

    def shard(self, rank: int, world: int) -> UnpairedStream:
        """Make this rank's stream (both sides sharded like BatchStream.shard)."""
        self.a.shard(rank, world)
        self.b.shard(rank, world)
        return self

    def next(self, n: int | None = None) -> tuple[Tensor, Tensor]:
        """The next batch of each side, images in [-1, 1]."""
        return self.a.next(n)[0], self.b.next(n)[0]

    def state_dict(self) -> dict[str, Any]:
        """Both streams' positions."""
        return {"a": self.a.state_dict(), "b": self.b.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state_dict`'s positions."""
        if not isinstance(state, dict) or set(state) != {"a", "b"}:
            raise DataError(f"an unpaired stream's state has positions 'a' and 'b', got {state!r}")
        self.a.load_state_dict(state["a"])
        self.b.load_state_dict(state["b"])
