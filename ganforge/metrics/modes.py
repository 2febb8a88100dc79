"""Mode coverage metrics on 2-D Gaussian mixtures (PacGAN protocol, Lin et al. 2018; BENCHMARKS.md section 1)."""

from __future__ import annotations

import math
from typing import Any

import torch

from ganforge.errors import ConfigError
from ganforge.metrics.stats import ArrayLike, as_tensor


def _positive(name: str, v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        f = float("nan")
    if not (math.isfinite(f) and f > 0):
        raise ConfigError(f"{name} must be a positive number, got {v!r}")
    return f


def mixture_mode_metrics(samples: ArrayLike, centres: ArrayLike, std: float, n_std: float = 3.0) -> dict[str, Any]:
    """Modes captured, high-quality fraction and KL(p_gen || uniform) on a 2-D mixture (Lin et al. 2018, PacGAN).

    Each sample is assigned to its nearest centre; it is high quality if it lies within
    ``n_std * std`` of that centre. A mode is captured if at least one high-quality sample is
    assigned to it. ``counts`` is the histogram over the K centres of the high-quality samples'
    assignments and ``kl`` is KL(counts / sum(counts) || uniform) with 0 log 0 = 0. If no sample is
    high quality the histogram is empty and ``kl`` is reported as log K (its value for a
    distribution concentrated on a single mode, the worst case). ``high_quality`` is a fraction.
    """
    x = as_tensor(samples, "samples", ndim=2)
    c = as_tensor(centres, "centres", ndim=2)
    if x.shape[1] != 2 or x.shape[0] < 1:
        raise ConfigError(f"samples must have shape (N, 2) with N >= 1, got {tuple(x.shape)}")
    if c.shape[1] != 2 or c.shape[0] < 1:
        raise ConfigError(f"centres must have shape (K, 2) with K >= 1, got {tuple(c.shape)}")
    std = _positive("std", std)
    n_std = _positive("n_std", n_std)

    k = c.shape[0]
    d = torch.cdist(x, c, compute_mode="donot_use_mm_for_euclid_dist")
    dist, nearest = d.min(dim=1)
    hq = dist <= n_std * std
    counts = torch.bincount(nearest[hq], minlength=k)
    n_hq = int(counts.sum())
    if n_hq == 0:
        kl = math.log(k)
    else:
        p = counts.to(torch.float64) / n_hq
        nz = p > 0
        kl = float((p[nz] * torch.log(p[nz] * k)).sum())
    return {
        "modes": int((counts > 0).sum()),
        "num_modes": int(k),
        "high_quality": n_hq / x.shape[0],
        "kl": max(kl, 0.0),
        "counts": [int(v) for v in counts.tolist()],
    }
