"""The generator service: build a generator from a recipe, and run it on latents in eval mode, in batches.

Every path that draws samples goes through `generate_batches`: the trainer's sample grids and
in-training evaluation, `ganforge sample`, the evaluator and the benchmarks. Latents come in
three forms, each keeping its own RNG draw order: given tensors (`generate`), one seeded draw of
all n (`sample`), or one seeded draw per batch (`sample_batches`, the evaluator's stream).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

import torch
from torch import Tensor, nn

from .config import Recipe
from .errors import GanforgeError
from .latent import LatentSpace, model_extras
from .models import build_generator

Autocast = Callable[[], Any]


def generator_from_recipe(
    recipe: Recipe, shape: tuple[int, ...], latent: LatentSpace, spectral_norm: bool = True
) -> nn.Module:
    """The generator `recipe` describes for outputs of `shape`, carrying its LatentSpace as `G.latent_space`.

    `spectral_norm=False` leaves model.spectral_norm to the caller: the trainer applies it after
    building D, because spectral norm draws its power-iteration vectors from the global RNG.
    """
    m = recipe.model
    G = build_generator(m.generator.name, latent.input_dim, shape, m.generator.args, **model_extras(latent, "g"))
    if spectral_norm:
        apply_generator_spectral_norm(G, recipe)
    cast(Any, G).latent_space = latent  # a plain attribute: Module.__setattr__ is typed for tensors and modules
    return G


def apply_generator_spectral_norm(G: nn.Module, recipe: Recipe) -> nn.Module:
    """Spectral normalisation of G's layers when model.spectral_norm asks for it (g or both)."""
    if recipe.model.spectral_norm in ("g", "both"):
        from .nn.spectral import apply_spectral_norm

        apply_spectral_norm(G)
    return G


def generate_batches(
    G: nn.Module,
    latents: Iterable[tuple[Tensor, Tensor | None]],
    autocast: Autocast | None = None,
    device: torch.device | None = None,
) -> Iterator[tuple[Tensor, Tensor | None]]:
    """(samples as float32 on the CPU, clamped to [-1, 1], labels) for each (z, y) batch, with G in eval mode (its mode
    restored after).

    `autocast` is the caller's mixed-precision context (the trainer passes its own); None runs in
    G's own precision, as `ganforge sample` and the benchmarks always have.
    """
    device = device or next(G.parameters()).device
    was_training = G.training
    G.eval()
    try:
        for z, y in latents:
            with torch.no_grad(), autocast() if autocast is not None else contextlib.nullcontext():
                x = G(z.to(device)) if y is None else G(z.to(device), y.to(device))
                # Samples are images: a linear-output G (BEGAN, as its paper) may overshoot [-1, 1] by a little.
                x = x.float().clamp(-1.0, 1.0).cpu()
            yield x, y
    finally:
        G.train(was_training)


def generate(
    G: nn.Module,
    z: Tensor,
    y: Tensor | None = None,
    batch: int = 500,
    autocast: Autocast | None = None,
    device: torch.device | None = None,
) -> Tensor:
    """G's samples for latents `z` (and labels `y` of a conditional G), `batch` at a time, float32 on the CPU."""
    ys = [None] * len(z.split(batch)) if y is None else y.split(batch)
    return torch.cat([x for x, _ in generate_batches(G, zip(z.split(batch), ys), autocast, device)])


def resolve_latent(G: nn.Module, latent: int | LatentSpace | None) -> LatentSpace:
    """The LatentSpace to draw from: `latent` (an int is plain noise of that size), else `G.latent_space`."""
    space = getattr(G, "latent_space", None) if latent is None else latent
    if space is None:
        raise GanforgeError("sample() needs the latent size: pass latent= or load G with load_generator")
    return LatentSpace(space) if isinstance(space, int) else space


def sample(
    G: nn.Module,
    n: int,
    latent: int | LatentSpace | None = None,
    seed: int = 0,
    batch: int = 500,
    truncation: float | None = None,
    y: int | None = None,
    autocast: Autocast | None = None,
) -> Tensor:
    """n samples (float32, CPU) from one seed-fixed draw of all n latents (default space: `G.latent_space`).

    `truncation` redraws noise values beyond that magnitude (BigGAN's truncation trick);
    `y` picks the class of a conditional generator (default: uniform over classes).
    """
    lat = resolve_latent(G, latent).sample(n, torch.Generator().manual_seed(seed), truncation=truncation, y=y)
    return generate(G, lat.z, lat.y, batch, autocast)


def shard_batches(n: int, batch_size: int, rank: int, world: int) -> tuple[int, int]:
    """The batches [first, end) of `n` samples in batches of `batch_size` that rank `rank` of `world` makes (contiguous runs)."""
    nb = -(-n // batch_size)
    return nb * rank // world, nb * (rank + 1) // world


def sample_batches(
    G: nn.Module,
    latent: int | LatentSpace,
    n: int,
    seed: int,
    batch_size: int = 500,
    device: torch.device | None = None,
    autocast: Autocast | None = None,
    truncation: float | None = None,
    y: int | None = None,
    shard: tuple[int, int] | None = None,
) -> Iterator[tuple[Tensor, Tensor | None]]:
    """`n` samples in batches, each batch's latents drawn in turn from one seeded generator (no global RNG).

    A conditional G gets uniformly drawn labels (or class `y` for all), yielded with the samples.
    `shard=(rank, world)` yields only that rank's contiguous run of batches (`shard_batches`); the
    latents of the others are still drawn, so every sample is the one a single process makes.
    """
    space = resolve_latent(G, latent)
    mine = range(*shard_batches(n, batch_size, *shard)) if shard is not None else None

    def draws() -> Iterator[tuple[Tensor, Tensor | None]]:
        gen = torch.Generator().manual_seed(seed)
        for i, start in enumerate(range(0, n, batch_size)):
            lat = space.sample(min(batch_size, n - start), gen, truncation=truncation, y=y)
            if mine is None or i in mine:
                yield lat.z, lat.y

    return generate_batches(G, draws(), autocast, device)
