"""Progressive growing (Karras et al. 2018, ProGAN, arXiv:1710.10196, Sec. 2): the standard step on networks that
grow from 4x4 to the data size, each new block fading in while alpha rises linearly over a set number of images.

The schedule is a function of one number, the real images D has seen: the first resolution trains
(stabilises) for `stabilize_images`; every later one fades in over `fade_images`, then stabilises. After
the last phase training continues at the final resolution. Each resolution may have its own batch size
(the paper shrinks it as images grow). Real images are average-pooled to the current resolution and,
during a fade, blended with their half-resolution version as G's output is (Fig. 2 caption), and every
D input, penalties' included, is at the current resolution. The image count is the game's checkpointed
state, so a run resumed mid-fade continues the same alpha.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..latent import LatentSpace
from ..models.progan import Growth, downsample, upsample
from .base import GameArgs, StepContext, register
from .standard import StandardGame


@dataclass(frozen=True)
class Phase:
    """One phase of the schedule: a resolution that fades in or stabilises from image `start` for `length` images."""

    index: int
    resolution: int
    fading: bool
    start: int
    length: int
    batch_size: int

    @property
    def level(self) -> int:
        """The network level of this resolution (4x4 is level 0)."""
        return int(math.log2(self.resolution)) - 2

    @property
    def name(self) -> str:
        return f"{self.resolution}x{self.resolution} {'fade-in' if self.fading else 'stabilise'}"


def _per_resolution(value: int | Sequence[int], n: int, what: str) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        values = [value] * n
    elif isinstance(value, Iterable):
        values = list(value)
    else:  # true/false, a float, null: refused below (list() of it was a TypeError)
        values = []
    if len(values) != n or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ConfigError(f"progressive schedule: {what} must be an integer or a list of {n} integers, got {value!r}")
    return values


class Schedule:
    """The phases of a progressive run, from the recipe's resolutions, images per phase and batch sizes."""

    def __init__(
        self,
        resolutions: Sequence[int],
        fade_images: int | Sequence[int],
        stabilize_images: int | Sequence[int],
        batch_sizes: int | Sequence[int],
        images_per_sample: int = 1,
    ) -> None:
        res = list(resolutions)
        if not res or not all(isinstance(r, int) and r >= 4 and not r & (r - 1) for r in res):
            raise ConfigError(f"progressive schedule: resolutions must be powers of two >= 4, got {resolutions!r}")
        if any(b != 2 * a for a, b in itertools.pairwise(res)):
            raise ConfigError(f"progressive schedule: each resolution must double the previous one, got {res}")
        fades = _per_resolution(fade_images, len(res) - 1, "fade_images") if len(res) > 1 else []
        stabs = _per_resolution(stabilize_images, len(res), "stabilize_images")
        batches = _per_resolution(batch_sizes, len(res), "batch_sizes")
        if any(v < 0 for v in fades + stabs) or any(b < 1 for b in batches):
            raise ConfigError("progressive schedule: image counts must be >= 0 and batch sizes >= 1")
        if len(res) > 1 and any(f == 0 for f in fades):
            raise ConfigError("progressive schedule: fade_images must be > 0 (a new block fades in over some images)")
        self.resolutions = res
        self.phases: list[Phase] = []
        start = 0
        for i, r in enumerate(res):
            kinds = [(False, stabs[i])] if i == 0 else [(True, fades[i - 1]), (False, stabs[i])]
            for fading, length in kinds:
                if length == 0:
                    continue
                per_step = batches[i] * images_per_sample
                if length % per_step:
                    lo, hi = length // per_step * per_step, (length // per_step + 1) * per_step
                    raise ConfigError(
                        f"progressive schedule: the {r}x{r} {'fade-in' if fading else 'stabilise'} phase of {length} "
                        f"images is not a whole number of steps of {per_step} images (batch {batches[i]} x "
                        f"{images_per_sample} per sample); use {lo or hi} or {hi}, so that phases change at exact counts"
                    )
                self.phases.append(Phase(len(self.phases), r, fading, start, length, batches[i]))
                start += length
        if not self.phases:
            raise ConfigError("progressive schedule: every phase has 0 images")
        self.images_total = start
        self.last = self.phases[-1]

    def at(self, images: int) -> Phase:
        """The phase a step starting after `images` real images runs in (the final one once the schedule is over)."""
        for p in self.phases:
            if images < p.start + p.length:
                return p
        return self.last

    def alpha(self, images: int) -> float:
        """The fade-in weight of the newest block after `images` images (1 outside a fade)."""
        p = self.at(images)
        return min(1.0, (images - p.start) / p.length) if p.fading else 1.0

    def steps(self, images_per_sample: int = 1) -> int:
        """Generator steps until the schedule's end (each phase's images / (its batch x images_per_sample))."""
        return sum(p.length // (p.batch_size * images_per_sample) for p in self.phases)


def growing(net: nn.Module, name: str) -> Growth:
    """The growing network behind `net` (through torch.compile's wrapper); ConfigError for a fixed-size family."""
    base = getattr(net, "_orig_mod", net)
    if not isinstance(base, Growth):
        raise ConfigError(
            f"the progressive game grows its networks, but {name} is a {type(base).__name__}; "
            f"use model.generator / model.discriminator name: progan"
        )
    return base


class _PhaseContext:
    """The step context with the phase's batch size: every batch and noise draw of the standard step takes it."""

    def __init__(self, ctx: StepContext, batch_size: int) -> None:
        self._ctx = ctx
        self.batch_size = batch_size

    def real_batch(self, n: int | None = None) -> tuple[Tensor, Tensor | None]:
        return self._ctx.real_batch(self.batch_size if n is None else n)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


@register("progressive")
class ProgressiveGame(StandardGame):
    """The standard step (n_critic, regularisers, packing) on growing networks (ProGAN, Sec. 2; Fig. 2).

    Arguments: `resolutions` (doubling, ending at the data size; default 4 up to it), `fade_images` and
    `stabilize_images` (per phase: one integer, or one per resolution, fades from the second on), and
    `batch_sizes` (one integer or one per resolution; default the recipe's train.batch_size).
    """

    supports_conditional = False  # the progan networks are unconditional

    def __init__(
        self,
        args: GameArgs,
        resolutions: list[int] | None = None,
        fade_images: int | list[int] = 800_000,
        stabilize_images: int | list[int] = 800_000,
        batch_sizes: int | list[int] | None = None,
    ) -> None:
        super().__init__(args)
        self.resolutions, self.fade_images, self.stabilize_images = resolutions, fade_images, stabilize_images
        self.batch_sizes = batch_sizes
        self.images = 0  # real images D has seen: the schedule's clock
        self.schedule: Schedule | None = None
        self.phase: Phase | None = None
        if resolutions is not None:  # an explicit schedule is checked now; a default one when the data size is known
            self._build(resolutions, 1)

    def _build(self, resolutions: Sequence[int], batch_size: int) -> Schedule:
        batches = self.batch_sizes if self.batch_sizes is not None else batch_size
        return Schedule(resolutions, self.fade_images, self.stabilize_images, batches, self.n_critic * self.pack_m)

    def _resolutions(self, size: int) -> list[int]:
        return (
            list(self.resolutions)
            if self.resolutions is not None
            else [2**k for k in range(2, int(math.log2(size)) + 1)]
        )

    def check(self, latent: LatentSpace, dataset: Any) -> None:
        """The data must be square power-of-two images whose size is the schedule's last resolution."""
        super().check(latent, dataset)
        shape = tuple(dataset.shape)
        if len(shape) != 3 or shape[1] != shape[2] or shape[1] < 4 or shape[1] & (shape[1] - 1):
            raise ConfigError(f"the progressive game needs square power-of-two images (data.image_size), got {shape}")
        res = self._resolutions(shape[1])
        if res[-1] != shape[1]:
            raise ConfigError(
                f"progressive schedule: the last resolution ({res[-1]}) must be the data size ({shape[1]}); "
                f"resolutions were {res}"
            )
        self.size = shape[1]

    def schedule_for(self, batch_size: int) -> Schedule:
        """The schedule, with `batch_size` (train.batch_size) wherever the recipe gives no batch size."""
        if self.schedule is None:
            size = getattr(self, "size", None)
            if size is None:
                raise ConfigError("the progressive game needs check(latent, dataset) before training (the data size)")
            self.schedule = self._build(self._resolutions(size), batch_size)
        return self.schedule

    def real_per_step(self, batch_size: int) -> int:
        """Real samples D sees in the next step: the current phase's batch x n_critic x pack."""
        return self.schedule_for(batch_size).at(self.images).batch_size * self.n_critic * self.pack_m

    # ------------------------------------------------------------------ what D sees

    def fade_reals(self, x: Tensor) -> Tensor:
        """Real images at the current resolution; during a fade, lerp(upsample(downsample(x)), x, alpha) (Fig. 2)."""
        assert self.phase is not None
        res = self.phase.resolution
        x = downsample(x, res)
        alpha = self.alpha
        if alpha < 1.0:
            x = torch.lerp(upsample(downsample(x, res // 2), res), x, alpha)
        return x

    def real_labelled(self, ctx: StepContext) -> tuple[Tensor, Tensor | None]:
        x, y = super().real_labelled(ctx)
        return self.fade_reals(x), y

    def d_input(self, x: Tensor) -> Tensor:
        """Every D input at the current resolution (G's output is upsampled to the data size), then noise and packing."""
        assert self.phase is not None
        return super().d_input(downsample(x, self.phase.resolution))

    @property
    def alpha(self) -> float:
        """The current fade-in weight (1 outside a fade)."""
        assert self.schedule is not None
        return self.schedule.alpha(self.images)

    def status(self) -> str:
        """The phase of the next step, e.g. '16x16 fade-in (alpha 0.35)'."""
        if self.schedule is None:
            return ""
        p = self.schedule.at(self.images)
        return p.name + (f" (alpha {self.alpha:.2f})" if p.fading else "")

    # ------------------------------------------------------------------ the step

    def step(self, ctx: StepContext) -> dict[str, Tensor]:
        world = getattr(ctx, "world", 1)
        sched = self.schedule_for(ctx.batch_size * world)  # the recipe's batch sizes are global
        self.phase = p = sched.at(self.images)
        if p.batch_size % world:
            raise ConfigError(
                f"phase {p.name} has a batch of {p.batch_size}, which cannot be split evenly across "
                f"{world} processes; give game.args.batch_sizes that are multiples of {world}."
            )
        fade = (self.images - p.start, p.length) if p.fading else (0, 0)
        for name in ("G", "D"):
            growing(ctx.nets[name], name).set_phase(p.level, *fade)
        alpha = self.alpha
        out = super().step(_PhaseContext(ctx, p.batch_size // world))
        self.images += p.batch_size * self.n_critic * self.pack_m
        out.update(
            resolution=torch.tensor(float(p.resolution)),
            alpha=torch.tensor(alpha),
            kimg=torch.tensor(self.images / 1000.0),
        )
        return out

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "images": self.images}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.images = int(state.get("images", 0))
