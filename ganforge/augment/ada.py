"""Adaptive discriminator augmentation (ADA; Karras et al. 2020, arXiv:2006.06676): its pipeline and p's controller.

The pipeline follows the paper's `bgc` setting (Sec. 2.3-3, App. B; the authors' `training/augment.py`):
pixel blitting (x-flip, 90-degree rotations, integer translation), general geometric transforms
(isotropic scaling, pre-rotation, anisotropic scaling, post-rotation, fractional translation) and
colour (brightness, contrast, luma flip, hue rotation, saturation). Each transform is applied to each
image with the one shared probability p (a rotation with 1 - sqrt(1 - p), as the authors', since two
rotation stages may fire), from the paper's distributions. Kept below p of about 0.8 none of them leaks
into G's samples: every transform is applied with probability < 1, so the augmented distribution still
determines the clean one (Sec. 2.2).

Hand-written on torch: the geometric transforms are composed into one affine matrix per image and
resampled once (bilinear, reflection padding; the authors also upsample 2x through a wavelet filter
around the resampling, left out here) with `affine_grid`/`grid_sample`; the colour transforms are one
4x4 matrix per image in [-1, 1] space, unclamped. kornia's augmentation classes draw from uniform
ranges with a probability per transform and clamp colours to [0, 1], so they cannot express these
distributions, the shared p or the rotation gate.

The controller (Sec. 3, "adaptive discriminator augmentation"): r_t = E[sign(D(x_real))] over the real
images of the last `interval` D updates; p moves by sign(r_t - target) x (images in those updates) /
`speed_images`, so p can go from 0 to 1 in `speed_images` real images. The paper: target 0.6, interval 4,
500,000 images, for runs of tens of millions of images; ganforge's recipes train on a few hundred
thousand, so they scale `speed_images` to their length (documented in each recipe).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from .base import AUGMENTATIONS, Augmentation

GROUPS = {
    "blit": ("xflip", "rotate90", "xint"),
    "geom": ("scale", "rotate", "aniso", "xfrac"),
    "color": ("brightness", "contrast", "lumaflip", "hue", "saturation"),
}
# The authors' defaults for the spread of each transform (training/augment.py, AugmentPipe.__init__).
SPREADS = {
    "xint_max": 0.125,
    "scale_std": 0.2,
    "rotate_max": 1.0,
    "aniso_std": 0.2,
    "xfrac_std": 0.125,
    "brightness_std": 0.2,
    "contrast_std": 0.5,
    "hue_max": 1.0,
    "saturation_std": 1.0,
}


def _eye(n: int, k: int, device: torch.device) -> Tensor:
    return torch.eye(k, device=device).repeat(n, 1, 1)


def _scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    m = _eye(sx.shape[0], 3, sx.device)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def _translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    m = _eye(tx.shape[0], 3, tx.device)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def _rotate2d(theta: Tensor) -> Tensor:
    m = _eye(theta.shape[0], 3, theta.device)
    c, s = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


class AdaPipeline:
    """ADA's transforms at probability `p`: `geometry_matrix` and `color_matrix` per image, `__call__` applies them."""

    def __init__(self, groups: str = "blit,geom,color", **spreads: float) -> None:
        names = [g.strip() for g in str(groups).split(",") if g.strip()]
        bad = [g for g in names if g not in GROUPS]
        if bad or not names:
            raise ConfigError(
                f"augment ada: unknown group(s) {', '.join(bad) or '(none given)'}; valid groups, "
                f"comma-separated: {', '.join(GROUPS)}."
            )
        unknown = [k for k in spreads if k not in SPREADS]
        if unknown:
            raise ConfigError(f"augment ada: unknown argument(s) {', '.join(unknown)}; spreads: {', '.join(SPREADS)}.")
        self.groups = names
        self.enabled = {t for g in names for t in GROUPS[g]}
        self.spread = {**SPREADS, **{k: float(v) for k, v in spreads.items()}}
        for k, v in self.spread.items():
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"augment ada: {k} must be a finite number >= 0, got {v!r}.")

    def geometry_matrix(self, n: int, h: int, w: int, p: float, device: torch.device) -> Tensor:
        """(n, 3, 3): for each output pixel (centred pixel coordinates) where to read the input (the inverse map)."""
        on = self.enabled
        sp = self.spread
        g = _eye(n, 3, device)

        def gate(prob: float, shape: tuple[int, ...] = ()) -> Tensor:
            return torch.rand((n, *shape), device=device) < prob

        if "xflip" in on:
            i = torch.floor(torch.rand(n, device=device) * 2)
            i = torch.where(gate(p), i, torch.zeros_like(i))
            g = g @ _scale2d(1 - 2 * i, torch.ones_like(i))
        if "rotate90" in on:
            i = torch.floor(torch.rand(n, device=device) * 4)
            i = torch.where(gate(p), i, torch.zeros_like(i))
            g = g @ _rotate2d(-math.pi / 2 * i)
        if "xint" in on:
            t = (torch.rand(n, 2, device=device) * 2 - 1) * sp["xint_max"]
            t = torch.where(gate(p, (1,)), t, torch.zeros_like(t))
            g = g @ _translate2d(torch.round(t[:, 0] * w), torch.round(t[:, 1] * h))
        p_rot = 1 - math.sqrt(max(1 - p, 0.0))  # two rotation stages: together they fire with probability p
        if "scale" in on:
            s = torch.exp2(torch.randn(n, device=device) * sp["scale_std"])
            s = torch.where(gate(p), s, torch.ones_like(s))
            g = g @ _scale2d(1 / s, 1 / s)
        if "rotate" in on:
            theta = (torch.rand(n, device=device) * 2 - 1) * math.pi * sp["rotate_max"]
            g = g @ _rotate2d(-torch.where(gate(p_rot), theta, torch.zeros_like(theta)))
        if "aniso" in on:
            s = torch.exp2(torch.randn(n, device=device) * sp["aniso_std"])
            s = torch.where(gate(p), s, torch.ones_like(s))
            g = g @ _scale2d(1 / s, s)
        if "rotate" in on:
            theta = (torch.rand(n, device=device) * 2 - 1) * math.pi * sp["rotate_max"]
            g = g @ _rotate2d(-torch.where(gate(p_rot), theta, torch.zeros_like(theta)))
        if "xfrac" in on:
            t = torch.randn(n, 2, device=device) * sp["xfrac_std"]
            t = torch.where(gate(p, (1,)), t, torch.zeros_like(t))
            g = g @ _translate2d(t[:, 0] * w, t[:, 1] * h)
        return g

    def color_matrix(self, n: int, channels: int, p: float, device: torch.device) -> Tensor:
        """(n, 4, 4) acting on (r, g, b, 1) in [-1, 1] space; hue and saturation only for colour images."""
        on = self.enabled
        sp = self.spread
        c = _eye(n, 4, device)

        def gate() -> Tensor:
            return torch.rand(n, device=device) < p

        if "brightness" in on:
            b = torch.randn(n, device=device) * sp["brightness_std"]
            b = torch.where(gate(), b, torch.zeros_like(b))
            t = _eye(n, 4, device)
            t[:, :3, 3] = b[:, None]
            c = t @ c
        if "contrast" in on:
            k = torch.exp2(torch.randn(n, device=device) * sp["contrast_std"])
            k = torch.where(gate(), k, torch.ones_like(k))
            t = _eye(n, 4, device)
            t[:, 0, 0] = t[:, 1, 1] = t[:, 2, 2] = k
            c = t @ c
        v = torch.tensor([1.0, 1.0, 1.0, 0.0], device=device) / math.sqrt(3)  # the luma axis
        vv = torch.outer(v, v)
        eye4 = torch.eye(4, device=device)
        if "lumaflip" in on:
            i = torch.floor(torch.rand(n, 1, 1, device=device) * 2)
            i = torch.where(gate()[:, None, None], i, torch.zeros_like(i))
            c = (eye4 - 2 * vv * i) @ c  # Householder reflection through the plane normal to luma
        if "hue" in on and channels > 1:
            theta = (torch.rand(n, device=device) * 2 - 1) * math.pi * sp["hue_max"]
            theta = torch.where(gate(), theta, torch.zeros_like(theta))
            c = _rotate_about(v[:3], theta) @ c
        if "saturation" in on and channels > 1:
            s = torch.exp2(torch.randn(n, 1, 1, device=device) * sp["saturation_std"])
            s = torch.where(gate()[:, None, None], s, torch.ones_like(s))
            c = (vv + (eye4 - vv) * s) @ c
        return c

    def __call__(self, x: Tensor, p: float) -> Tensor:
        if x.dim() != 4:
            raise ConfigError(
                f"augmentation works on image batches (N, C, H, W); this data has shape {tuple(x.shape)}."
            )
        if p <= 0:
            return x
        n, ch, h, w = x.shape
        if self.enabled & set(GROUPS["blit"] + GROUPS["geom"]):
            x = _warp(x, self.geometry_matrix(n, h, w, p, x.device))
        if self.enabled & set(GROUPS["color"]):
            c = self.color_matrix(n, ch, p, x.device).to(x.dtype)
            if ch == 3:
                x = torch.einsum("nij,njhw->nihw", c[:, :3, :3], x) + c[:, :3, 3, None, None]
            else:  # grey (or any other count): each channel as the luma of an equal-RGB pixel, as the authors do
                m = c[:, :3, :].mean(dim=1)  # (n, 4)
                x = x * m[:, :3].sum(dim=1)[:, None, None, None] + m[:, 3, None, None, None]
        return x


def _rotate_about(axis: Tensor, theta: Tensor) -> Tensor:
    """(n, 4, 4) rotations by `theta` about the unit 3-vector `axis` (Rodrigues), for hue rotation."""
    n = theta.shape[0]
    x, y, z = axis.tolist()
    k = torch.tensor([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]], device=theta.device)
    s, c = torch.sin(theta)[:, None, None], torch.cos(theta)[:, None, None]
    r3 = torch.eye(3, device=theta.device) + s * k + (1 - c) * (k @ k)
    m = _eye(n, 4, theta.device)
    m[:, :3, :3] = r3
    return m


def _warp(x: Tensor, g: Tensor) -> Tensor:
    """Resample `x` once through per-image inverse maps `g` given in centred pixel coordinates."""
    _n, _, h, w = x.shape
    # affine_grid works in coordinates normalised to [-1, 1] on each axis: conjugate by the pixel scale.
    to_norm = torch.diag(torch.tensor([2.0 / w, 2.0 / h, 1.0], device=x.device))
    from_norm = torch.diag(torch.tensor([w / 2.0, h / 2.0, 1.0], device=x.device))
    theta = (to_norm @ g @ from_norm)[:, :2, :].to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


class AdaController:
    """ADA's p: r_t = E[sign(D(real))] over the last `interval` D updates, p stepped towards r_t = `target`."""

    def __init__(self, target: float = 0.6, interval: int = 4, speed_images: int = 500_000, p: float = 0.0) -> None:
        if not 0.0 < float(target) < 1.0:
            raise ConfigError(f"augment ada: target must be in (0, 1) (the paper: 0.6), got {target!r}.")
        if isinstance(interval, bool) or int(interval) != interval or interval < 1:
            raise ConfigError(f"augment ada: interval must be a whole number >= 1 (D updates), got {interval!r}.")
        if not float(speed_images) > 0:
            raise ConfigError(
                f"augment ada: speed_images must be > 0 (real images for p to go 0 -> 1), got {speed_images!r}."
            )
        if not 0.0 <= float(p) <= 1.0:
            raise ConfigError(f"augment ada: p must be in [0, 1], got {p!r}.")
        self.target, self.interval, self.speed_images = float(target), int(interval), float(speed_images)
        self.p = float(p)
        self.sign_sum, self.count, self.updates = 0.0, 0, 0
        self.rt: float | None = None  # the last r_t measured

    def observe(self, real_logits: Tensor) -> None:
        """Add D's logits on (augmented) real images to the current window."""
        s = torch.sign(real_logits.detach().float())
        self.sign_sum += float(s.sum())
        self.count += s.numel()

    def update(
        self, batch_images: int, mean_over_ranks: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None
    ) -> None:
        """One D update on `batch_images` real images (all ranks together); every `interval` of them, adjust p."""
        self.updates += 1
        if self.updates % self.interval or not self.count:
            return
        rt = torch.tensor(self.sign_sum / self.count)
        if mean_over_ranks is not None:  # equal shares per rank: the mean of the ranks' r_t is the global one
            rt = mean_over_ranks({"rt": rt})["rt"]
        self.rt = float(rt)
        step = math.copysign(1.0, self.rt - self.target) if self.rt != self.target else 0.0
        self.p = min(1.0, max(0.0, self.p + step * batch_images * self.interval / self.speed_images))
        self.sign_sum, self.count = 0.0, 0

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p, "sign_sum": self.sign_sum, "count": self.count, "updates": self.updates, "rt": self.rt}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p = float(state["p"])
        self.sign_sum, self.count = float(state.get("sign_sum", 0.0)), int(state.get("count", 0))
        self.updates = int(state.get("updates", 0))
        self.rt = state.get("rt")


@AUGMENTATIONS.register("ada")
class Ada(Augmentation):
    """ADA: the pipeline at the controller's p (adaptive), or at a fixed p (`adaptive: false`)."""

    name = "ada"

    def __init__(
        self,
        groups: str = "blit,geom,color",
        p: float = 0.0,
        adaptive: bool = True,
        target: float = 0.6,
        interval: int = 4,
        speed_images: int = 500_000,
        **spreads: float,
    ) -> None:
        self.pipeline = AdaPipeline(groups, **spreads)
        self.controller = AdaController(target, interval, speed_images, p)
        if not isinstance(adaptive, bool):
            raise ConfigError(f"augment ada: adaptive must be true or false, got {adaptive!r}.")
        self.adaptive = adaptive

    @property
    def p(self) -> float:
        return self.controller.p

    def __call__(self, x: Tensor) -> Tensor:
        return self.pipeline(x, self.controller.p)

    def observe(self, real_logits: Tensor) -> None:
        if self.adaptive:
            self.controller.observe(real_logits)

    def update(self, batch_images: int, mean_over_ranks: Any = None) -> None:
        if self.adaptive:
            self.controller.update(batch_images, mean_over_ranks)

    def logs(self) -> dict[str, float]:
        out = {"aug_p": self.controller.p}
        if self.adaptive and self.controller.rt is not None:
            out["ada_rt"] = self.controller.rt
        return out

    def state_dict(self) -> dict[str, Any]:
        return self.controller.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(state)
