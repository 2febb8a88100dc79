"""The generator's input: Gaussian (or uniform) noise, InfoGAN's structured codes and class labels, sampled together.

Layout of the vector a generator receives (its `z_dim` argument is `LatentSpace.input_dim`):

    [ noise (z_dim) | one-hot categorical code 1 | ... | continuous codes (continuous) ]

Class labels for a conditional model are not part of the vector; they travel beside it
as `y` and the generator embeds them itself (concatenation, conditional batch norm).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .config.schema import NOISE_PRIORS
from .errors import ConfigError, choices_message


@dataclass
class Latent:
    """One draw from a LatentSpace: G's input vector, class labels (or None) and the InfoGAN codes."""

    z: Tensor
    y: Tensor | None = None
    categorical: list[Tensor] = field(default_factory=list)  # integer codes, one (N,) tensor per categorical code
    continuous: Tensor | None = None  # (N, continuous) in [-1, 1]


# The smallest truncation threshold `ganforge sample/eval --truncation` accept: below it almost every
# draw is rejected (P(|z| <= 0.01) = 0.8%) and the samples are all but identical to those of z = 0.
TRUNCATION_MIN = 0.01
# Rejection sampling stops after this many redraw rounds, or once it has drawn this many values per
# output value; whatever is still outside is then drawn exactly from the truncated normal by inverse CDF.
# At thresholds >= 0.1 rejection finishes long before either bound (P(still outside after 1000 rounds)
# < 1e-36 per value), so seeded draws are exactly those of plain rejection sampling.
_REDRAW_ROUNDS = 1000
_REDRAWS_PER_VALUE = 64


def check_truncation(threshold: float | None, what: str = "truncation threshold") -> None:
    """Raise ConfigError unless `threshold` is None or a finite number >= TRUNCATION_MIN."""
    if threshold is None:
        return
    if not math.isfinite(threshold) or threshold < TRUNCATION_MIN:
        raise ConfigError(
            f"{what} must be a finite number >= {TRUNCATION_MIN} (the smallest useful threshold: below it almost "
            f"every noise value is redrawn and all samples look like z = 0), got {threshold}; leave it out for no "
            "truncation."
        )


def truncated_normal(shape: tuple[int, ...], threshold: float, generator: torch.Generator | None = None) -> Tensor:
    """N(0, I) with every value of magnitude above `threshold` redrawn until it falls inside (Brock et al. 2019, Sec. 3.1).

    The redrawing is bounded (see `_REDRAW_ROUNDS`): values still outside after it are drawn by inverse
    CDF from the normal restricted to [-threshold, threshold], which is the same distribution.
    """
    if not threshold > 0:  # also NaN
        raise ConfigError(f"truncation threshold must be > 0, got {threshold}")
    z = torch.randn(shape, generator=generator)
    bad = z.abs() > threshold
    budget = _REDRAWS_PER_VALUE * z.numel()
    for _ in range(_REDRAW_ROUNDS):
        k = int(bad.sum())
        if k == 0 or budget < k:
            break
        budget -= k
        z[bad] = torch.randn(k, generator=generator)
        bad = z.abs() > threshold
    k = int(bad.sum())
    if k:
        # Phi^-1(U(Phi(-t), Phi(t))): exact, and stays in [-t, t] however small t is (clamped against rounding).
        t = float(threshold)
        lo = 0.5 * math.erfc(t / math.sqrt(2.0))
        u = lo + torch.rand(k, generator=generator, dtype=torch.float64) * (1.0 - 2.0 * lo)
        z[bad] = torch.special.ndtri(u).clamp_(-t, t).to(z.dtype)
    return z


class LatentSpace:
    """Noise size, InfoGAN codes (Chen et al. 2016, Sec. 5) and the number of classes of a conditional model."""

    def __init__(
        self,
        z_dim: int,
        num_classes: int = 0,
        categorical: list[int] | tuple[int, ...] = (),
        continuous: int = 0,
        noise: str = "normal",
    ) -> None:
        if z_dim < 1:
            raise ConfigError(f"model.z_dim must be >= 1, got {z_dim}")
        if any(int(k) < 2 for k in categorical):
            raise ConfigError(
                f"model.latent.categorical lists the sizes of categorical codes (each >= 2), got {list(categorical)}"
            )
        if continuous < 0:
            raise ConfigError(f"model.latent.continuous must be >= 0, got {continuous}")
        if noise not in NOISE_PRIORS:
            raise ConfigError(choices_message("model.latent.noise", noise, NOISE_PRIORS))
        self.noise = noise
        self.z_dim = int(z_dim)
        self.num_classes = int(num_classes)
        self.categorical = [int(k) for k in categorical]
        self.continuous = int(continuous)

    @property
    def input_dim(self) -> int:
        """Length of the vector the generator receives."""
        return self.z_dim + sum(self.categorical) + self.continuous

    @property
    def has_codes(self) -> bool:
        """True for an InfoGAN latent (any categorical or continuous code)."""
        return bool(self.categorical) or self.continuous > 0

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        truncation: float | None = None,
        y: Tensor | int | None = None,
        categorical: list[Tensor] | None = None,
        continuous: Tensor | None = None,
    ) -> Latent:
        """n draws on the CPU: noise N(0, I) (truncated when `truncation` is set) or uniform on [-1, 1] (the
        `uniform` prior), codes uniform, labels uniform.

        `y`, `categorical` and `continuous` fix those parts instead of drawing them (an int `y`
        means that class for every sample). The noise is drawn first, so fixing labels or
        codes does not change the noise of a seeded draw.
        """
        if self.noise == "uniform":
            if truncation is not None:
                raise ConfigError(
                    "truncation redraws normal noise beyond a threshold; this generator's noise is uniform on "
                    "[-1, 1] (model.latent.noise: uniform), so there is nothing to truncate: leave it out."
                )
            noise = torch.rand(n, self.z_dim, generator=generator) * 2 - 1
        elif truncation is None:
            noise = torch.randn(n, self.z_dim, generator=generator)
        else:
            noise = truncated_normal((n, self.z_dim), truncation, generator)
        cats = [torch.randint(0, k, (n,), generator=generator) for k in self.categorical]
        cont = torch.rand(n, self.continuous, generator=generator) * 2 - 1 if self.continuous else None
        labels = torch.randint(0, self.num_classes, (n,), generator=generator) if self.num_classes else None
        if categorical is not None:
            if len(categorical) != len(self.categorical):
                raise ConfigError(f"expected {len(self.categorical)} categorical codes, got {len(categorical)}")
            cats = [c.long().expand(n) if c.dim() == 0 else c.long() for c in categorical]
        if continuous is not None:
            cont = continuous.float().expand(n, self.continuous)
        if y is not None:
            if not self.num_classes:
                raise ConfigError("this generator is not class-conditional, so a class cannot be chosen.")
            labels = torch.full((n,), int(y), dtype=torch.long) if isinstance(y, int) else y.long()
            if int(labels.min()) < 0 or int(labels.max()) >= self.num_classes:
                raise ConfigError(f"class must lie in [0, {self.num_classes - 1}], got {labels.unique().tolist()}")
        parts = [noise] + [F.one_hot(c, k).float() for c, k in zip(cats, self.categorical)]
        if cont is not None:
            parts.append(cont)
        return Latent(torch.cat(parts, 1) if len(parts) > 1 else noise, labels, cats, cont)

    def split(self, z: Tensor) -> tuple[Tensor, list[Tensor], Tensor | None]:
        """(noise, categorical codes as integers, continuous codes) read back from G's input vector."""
        noise = z[:, : self.z_dim]
        cats, at = [], self.z_dim
        for k in self.categorical:
            cats.append(z[:, at : at + k].argmax(1))
            at += k
        cont = z[:, at : at + self.continuous] if self.continuous else None
        return noise, cats, cont

    def to_dict(self) -> dict:
        """The constructor arguments (for run metadata); `noise` only when it is not the default normal prior."""
        d: dict[str, Any] = {
            "z_dim": self.z_dim,
            "num_classes": self.num_classes,
            "categorical": self.categorical,
            "continuous": self.continuous,
        }
        if self.noise != "normal":  # files of normal-noise models stay as they were
            d["noise"] = self.noise
        return d


def latent_space(recipe: object, dataset: object | None = None, num_classes: int | None = None) -> LatentSpace:
    """The LatentSpace a recipe describes; a conditional model takes its class count from the dataset."""
    m = recipe.model  # type: ignore[attr-defined]
    k = 0
    if m.conditional:
        k = num_classes if num_classes is not None else int(getattr(dataset, "num_classes", 0) or 0)
        if dataset is not None and getattr(dataset, "y", None) is None:
            raise ConfigError(
                f"model.conditional is true but dataset {getattr(dataset, 'name', '?')!r} has no labels "
                "(for a folder of images use data.labels: true with one subfolder per class)."
            )
        if k < 2:
            raise ConfigError(f"model.conditional needs at least 2 classes, the data has {k}.")
    return LatentSpace(m.z_dim, k, m.latent.categorical, m.latent.continuous, m.latent.noise)


def model_extras(space: LatentSpace, net: str) -> dict[str, object]:
    """Keyword arguments the trainer adds to a network family's own: classes, and InfoGAN codes for D's Q head."""
    out: dict[str, object] = {}
    if space.num_classes:
        out["num_classes"] = space.num_classes
    if net == "d" and space.has_codes:
        out["categorical"] = list(space.categorical)
        out["continuous"] = space.continuous
    return out


def fixed_latents(space: LatentSpace, n: int, seed: int) -> Latent:
    """Seeded latents for sample grids; labels of a conditional model cycle so each grid row is one class."""
    gen = torch.Generator().manual_seed(seed)
    if not space.num_classes:
        return space.sample(n, gen)
    cols = grid_columns(space, n)
    assert cols is not None  # a conditional space's grid has one row per class
    y = (torch.arange(n) // cols) % space.num_classes
    return space.sample(n, gen, y=y)


def grid_columns(space: LatentSpace, n: int) -> int | None:
    """Columns of a sample grid: one row per class for a conditional model (None: a square grid)."""
    if not space.num_classes:
        return None
    rows = space.num_classes
    return max(1, n // rows) if n >= rows else n
