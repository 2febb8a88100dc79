"""Data parallelism over torch.distributed: ranks, gradient averaging, buffer broadcast and agreed decisions.

A run started by torchrun (WORLD_SIZE > 1) trains one model on several processes. Every rank
holds the same networks and optimisers; each computes its share of the global batch, and before
every optimiser step the gradients are averaged across ranks (flattened into buckets of about
25 MiB, one all-reduce each). The update is then the update of one process on the whole batch.

Why explicit all-reduces rather than the DistributedDataParallel wrapper: DDP's reducer fires
from autograd hooks and expects each parameter to be reduced once per forward. A GAN step breaks
that assumption in several ways at once: G's loss runs D with its weights frozen, gradient
penalties (WGAN-GP, R1, DRAGAN) take a double backward through D, lazy penalties run a second
backward of D in the same step, and extragradient restores parameters between backward and step.
Each needs its own DDP workaround (find_unused_parameters, no_sync, static_graph), and a wrong
one fails silently. Averaging after `backward()` and before `step()` is correct for any autograd
graph, by construction; the price is that the reduction does not overlap the backward pass.

Everything here is a no-op with one process, so a single-process run is unchanged.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..errors import ConfigError, GanforgeError

# Gradients are averaged in buckets of about this many bytes (one all-reduce each), as DDP's default.
BUCKET_BYTES = 25 * 2**20
# How long a rank waits in a collective for the others before it gives up (a dead or stuck peer).
DEFAULT_TIMEOUT_S = 600


class RankFailed(GanforgeError):
    """A collective failed: another rank died or stopped answering."""


@dataclass(frozen=True)
class Dist:
    """This process's place in the run: rank, world size, rank on this node and the node's process count."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def enabled(self) -> bool:
        """More than one process trains the model."""
        return self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the only rank that writes files (logs, samples, checkpoints, report)."""
        return self.rank == 0


SINGLE = Dist()


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer (it is set by torchrun).") from None


def from_env() -> Dist:
    """The ranks torchrun describes in RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE (one process if unset)."""
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return SINGLE
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank)
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    if not 0 <= rank < world or not 0 <= local_rank < local_world:
        raise ConfigError(
            f"inconsistent torchrun environment: RANK={rank}, WORLD_SIZE={world}, "
            f"LOCAL_RANK={local_rank}, LOCAL_WORLD_SIZE={local_world}."
        )
    return Dist(rank, world, local_rank, local_world)


def elastic_restart_count() -> int:
    """How many times torchrun has restarted the workers (--max-restarts); 0 on the first attempt or without torchrun."""
    return _env_int("TORCHELASTIC_RESTART_COUNT", 0)


def init(d: Dist) -> None:
    """Join the process group (idempotent; nothing with one process): gloo for CPU tensors, and NCCL for CUDA ones where CUDA exists.

    Both backends at once, so that a CPU run on a GPU machine, and the small CPU tensors of the stop
    flags and object exchanges, work beside NCCL's gradient all-reduces.
    """
    if not d.enabled or dist.is_initialized():
        return
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(d.local_rank % torch.cuda.device_count())
    timeout = datetime.timedelta(seconds=_env_int("GANFORGE_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
    try:
        dist.init_process_group(backend, timeout=timeout)
    except Exception as e:
        raise GanforgeError(
            f"could not join the process group ({backend}) as rank {d.rank} of {d.world}: "
            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}. Start distributed runs "
            "with `ganforge train --nproc N` or `torchrun --nproc_per_node N -m ganforge train`."
        ) from None


def shutdown() -> None:
    """Leave the process group if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        try:
            dist.destroy_process_group()
        except Exception:
            pass


def rank_seed(seed: int, rank: int) -> int:
    """The global-RNG seed of one rank: a hash of (seed, rank), so ranks draw independently (penalty points, noise layers)."""
    digest = hashlib.blake2b(f"ganforge-rank:{seed}:{rank}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def _collective(what: str, fn: Any, *args: Any, **kw: Any) -> Any:
    """Run a collective; a failure (a peer died) becomes RankFailed with a plain message."""
    try:
        return fn(*args, **kw)
    except RankFailed:
        raise
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RankFailed(
            f"lost contact with the other ranks during {what} ({first[:200]}): another process "
            "died or stopped answering."
        ) from None


def _buckets(tensors: list[Tensor]) -> Iterable[list[Tensor]]:
    """Consecutive groups of same-dtype, same-device tensors of at most BUCKET_BYTES (one tensor may exceed it)."""
    group: list[Tensor] = []
    size = 0
    for t in tensors:
        nbytes = t.numel() * t.element_size()
        if group and (size + nbytes > BUCKET_BYTES or t.dtype != group[0].dtype or t.device != group[0].device):
            yield group
            group, size = [], 0
        group.append(t)
        size += nbytes
    if group:
        yield group


def _in_buckets(tensors: list[Tensor], what: str, collective: Any, divide: int = 1) -> None:
    """Run `collective` (in place, on one flat tensor) over `tensors` bucket by bucket, then divide by `divide` and copy back."""
    for group in _buckets(tensors):
        flat = torch.cat([t.reshape(-1) for t in group])
        _collective(what, collective, flat)
        if divide != 1:
            flat.div_(divide)
        offset = 0
        for t in group:
            n = t.numel()
            t.copy_(flat[offset : offset + n].view_as(t))
            offset += n


def average_gradients(params: Iterable[nn.Parameter], d: Dist) -> None:
    """Average the gradients of `params` across ranks in place (every rank must call this with the same parameters)."""
    if d.enabled:
        _in_buckets([p.grad for p in params if p.grad is not None], "the gradient all-reduce", dist.all_reduce, d.world)


def broadcast_state(modules: Iterable[nn.Module], d: Dist, params: bool = False) -> None:
    """Copy rank 0's buffers (and with `params`, parameters) to every rank: BN running statistics stay identical, as DDP's broadcast_buffers."""
    if not d.enabled:
        return
    tensors: list[Tensor] = []
    for m in modules:
        if params:
            tensors += [p.data for p in m.parameters()]
        tensors += [b for b in m.buffers() if b.is_floating_point() or b.dtype in (torch.int64, torch.int32)]
    _in_buckets(tensors, "the buffer broadcast", lambda flat: dist.broadcast(flat, 0))


def agree_max(values: list[float], d: Dist, what: str = "the stop check") -> list[float]:
    """The element-wise maximum of `values` over ranks (a stop flag any rank raises stops all)."""
    if not d.enabled:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device="cpu")
    _collective(what, dist.all_reduce, t, op=dist.ReduceOp.MAX)
    return t.cpu().tolist()


def mean_tensors(values: dict[str, Tensor], d: Dist) -> dict[str, Tensor]:
    """The mean over ranks of each scalar in `values` (logged losses describe the global batch, not rank 0's part)."""
    if not d.enabled or not values:
        return values
    keys = sorted(values)
    # On the CPU (gloo): a handful of scalars, from whatever device each came from.
    t = torch.stack([values[k].detach().float().reshape(()).cpu() for k in keys])
    _collective("the log all-reduce", dist.all_reduce, t)
    t = t / d.world
    return {k: t[i] for i, k in enumerate(keys)}


def all_gather_objects(obj: Any, d: Dist, what: str = "a gather") -> list[Any]:
    """Every rank's `obj`, in rank order (picklable values; small)."""
    if not d.enabled:
        return [obj]
    out: list[Any] = [None] * d.world
    _collective(what, dist.all_gather_object, out, obj)
    return out


def broadcast_object(obj: Any, d: Dist, what: str = "a broadcast") -> Any:
    """Rank 0's `obj` on every rank."""
    if not d.enabled:
        return obj
    box = [obj if d.main else None]
    _collective(what, dist.broadcast_object_list, box, 0)
    return box[0]


def main_first(d: Dist, action: Any, what: str, share: Any = None) -> Any:
    """Run `action()` on rank 0 and hand its result, or `share(result)`, or its error, to every rank, which raise it too.

    Used for work only rank 0 may do (locking the run folder, reading its checkpoint): a failure on
    rank 0 then stops every rank with the same message instead of leaving them waiting. Rank 0 gets
    `action()`'s own result back; the other ranks get what `share` picked from it (default: all of it).
    """
    if not d.enabled:
        return action()
    if d.main:
        try:
            result = action()
        except BaseException as e:
            msg = str(e) if isinstance(e, GanforgeError) else f"rank 0 failed while {what}: {type(e).__name__}: {e}"
            kind = "ConfigError" if isinstance(e, ConfigError) else "GanforgeError"
            try:
                broadcast_object((None, msg, kind), d, what)
            except RankFailed:
                pass
            raise
        broadcast_object((result if share is None else share(result), None, None), d, what)
        return result
    result, error, kind = broadcast_object(None, d, what)
    if error is not None:
        exc = ConfigError(error) if kind == "ConfigError" else GanforgeError(error)
        exc.echo = True  # rank 0 prints it; the CLI keeps the other ranks quiet about it
        raise exc
    return result


class Collective:
    """What distributed evaluation needs from the process group: this rank's place, gather to all, broadcast from 0."""

    def __init__(self, d: Dist) -> None:
        self.rank, self.world = d.rank, d.world
        self._d = d

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order."""
        return all_gather_objects(obj, self._d, "the evaluation gather")

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank."""
        return broadcast_object(obj, self._d, "the evaluation broadcast")
