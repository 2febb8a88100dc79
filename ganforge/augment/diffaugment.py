"""DiffAugment (Zhao et al. 2020, arXiv:2006.10738, Sec. 3): the same random, differentiable transforms on real and fake.

The three transforms of the paper's `color,translation,cutout` policy, as its reference code defines
them (images in [-1, 1], one draw per image): colour = brightness + U(-0.5, 0.5), saturation x U(0, 2)
around the per-pixel channel mean, contrast x U(0.5, 1.5) around the image mean; translation = an integer
shift of up to 1/8 of the side with zero padding; cutout = a zeroed square of half the side at a random
centre. They are hand-written rather than taken from kornia: kornia's brightness and contrast are
multiplicative, clamp to [0, 1] (no gradient at the clamp) and its translation interpolates, so none of
the three would be the paper's transform.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from .base import AUGMENTATIONS, Augmentation


def _uniform(x: Tensor) -> Tensor:
    """One U(0, 1) draw per image, broadcastable over (C, H, W)."""
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)


def brightness(x: Tensor) -> Tensor:
    """x + U(-0.5, 0.5) per image."""
    return x + (_uniform(x) - 0.5)


def saturation(x: Tensor) -> Tensor:
    """Channels pulled towards or pushed from their per-pixel mean by U(0, 2) (identity on one channel)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x) * 2) + mean


def contrast(x: Tensor) -> Tensor:
    """The image scaled about its mean by U(0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x) + 0.5) + mean


def translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Each image shifted by whole pixels, up to `ratio` of its side in each direction, zeros shifted in."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    # Index into a copy padded by one zero pixel; clamping lands every out-of-range index on the padding.
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + ty + 1).clamp(0, h + 1)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """A square of `ratio` of the side (clipped at the border) set to zero in each image, at a random centre."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    rows = (torch.arange(ch, device=x.device).view(1, ch, 1) + oy - ch // 2).clamp(0, h - 1)
    cols = (torch.arange(cw, device=x.device).view(1, 1, cw) + ox - cw // 2).clamp(0, w - 1)
    mask = torch.ones(n, h, w, device=x.device, dtype=x.dtype)
    mask[torch.arange(n, device=x.device).view(n, 1, 1), rows, cols] = 0
    return x * mask.unsqueeze(1)


POLICIES: dict[str, list[Callable[..., Tensor]]] = {
    "color": [brightness, saturation, contrast],
    "translation": [translation],
    "cutout": [cutout],
}


@AUGMENTATIONS.register("diffaugment")
class DiffAugment(Augmentation):
    """The DiffAugment policy (comma-separated: color, translation, cutout), every transform on every image."""

    name = "diffaugment"

    def __init__(
        self, policy: str = "color,translation,cutout", translation_ratio: float = 0.125, cutout_ratio: float = 0.5
    ) -> None:
        names = [p.strip() for p in str(policy).split(",") if p.strip()]
        bad = [p for p in names if p not in POLICIES]
        if bad or not names:
            raise ConfigError(
                f"augment diffaugment: unknown policy part(s) {', '.join(bad) or '(none given)'}; "
                f"valid parts, comma-separated: {', '.join(POLICIES)}."
            )
        for what, r in (("translation_ratio", translation_ratio), ("cutout_ratio", cutout_ratio)):
            if not 0.0 < float(r) <= 1.0:
                raise ConfigError(f"augment diffaugment: {what} must be in (0, 1], got {r!r}.")
        self.policy = names
        self.translation_ratio, self.cutout_ratio = float(translation_ratio), float(cutout_ratio)

    def __call__(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ConfigError(
                f"augmentation works on image batches (N, C, H, W); this data has shape {tuple(x.shape)}."
            )
        for part in self.policy:
            for fn in POLICIES[part]:
                if fn is translation:
                    x = translation(x, self.translation_ratio)
                elif fn is cutout:
                    x = cutout(x, self.cutout_ratio)
                else:
                    x = fn(x)
        return x
