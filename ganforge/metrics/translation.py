"""Measures of an image-to-image translation (CycleGAN runs): is the output of the target class, does it look
like the target domain, does the cycle return the input, and how much of the input does the output keep.

- success: the fraction of translations a classifier assigns to the target class;
- FD: Frechet distance between the classifier's features of the translations and of real target images;
- cycle L1: mean |F(G(x)) - x| over pixels, images in [-1, 1];
- kept: Pearson correlation, over the test images, between the brightness of each input's object and of
  its translation's (the mean intensity of the pixels brighter than SILHOUETTE, i.e. about 25% grey). A
  translation that keeps its input's appearance (a dark sneaker becomes a dark boot) scores near 1; one
  that ignores its input (mode collapse, or no cycle loss) scores near 0, whatever it outputs.
- kept_area: the same correlation for the silhouette area (the fraction of such pixels). Shape is what
  a sneaker-to-boot translation must change, so this one may well be low or negative.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .frechet import frechet_distance

SILHOUETTE = -0.5  # in [-1, 1]: pixel value 64 of 255; Fashion-MNIST's background is 0


def silhouette_area(x: Tensor) -> Tensor:
    """(N,) fraction of each image's pixels brighter than SILHOUETTE (channels averaged first)."""
    return (x.float().mean(dim=1) > SILHOUETTE).flatten(1).float().mean(dim=1)


def object_brightness(x: Tensor) -> Tensor:
    """(N,) mean intensity in [0, 1] of each image's silhouette pixels (0 for an image without any)."""
    v = x.float().mean(dim=1)
    m = (v > SILHOUETTE).float()
    return (((v + 1) / 2) * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp(min=1)


def pearson(u: Tensor, v: Tensor) -> float:
    """Pearson correlation of two (N,) vectors; nan when either is constant."""
    u, v = u.double() - u.double().mean(), v.double() - v.double().mean()
    den = float(u.norm() * v.norm())
    return float((u * v).sum()) / den if den > 0 else float("nan")


def _moments(f: Tensor) -> tuple[Tensor, Tensor]:
    f = f.double()
    return f.mean(0), torch.cov(f.T)


def frechet_between(f1: Tensor, f2: Tensor) -> float:
    """Frechet distance between two sets of features (N1, d) and (N2, d)."""
    m1, s1 = _moments(f1)
    m2, s2 = _moments(f2)
    return float(frechet_distance(m1, s1, m2, s2))


def direction_metrics(
    source: Tensor, translated: Tensor, reconstructed: Tensor, target_real: Tensor, target_class: int, extractor: Any
) -> dict[str, float]:
    """success, fd, cycle_l1 and kept (see the module doc) for one direction, on held-out images."""
    out_t = extractor.extract(translated)
    real_t = extractor.extract(target_real)
    return {
        "success": float((out_t["logits"].argmax(1) == target_class).float().mean()),
        "fd": frechet_between(out_t["features"], real_t["features"]),
        "cycle_l1": float((reconstructed - source).abs().mean()),
        "kept": pearson(object_brightness(source), object_brightness(translated)),
        "kept_area": pearson(silhouette_area(source), silhouette_area(translated)),
        "n": len(source),
    }


def reference_metrics(source: Tensor, target_real: Tensor, target_class: int, extractor: Any) -> dict[str, float]:
    """The same measures for doing nothing (output = input): the floor any translation must beat."""
    return direction_metrics(source, source, source, target_real, target_class, extractor)
