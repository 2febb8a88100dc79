"""Inception Score from classifier logits (Salimans et al. 2016)."""

from __future__ import annotations

import numpy as np
import torch

from ganforge.errors import ConfigError
from ganforge.metrics.stats import ArrayLike, as_features


def inception_score(logits: ArrayLike, splits: int = 10, shuffle_seed: int | None = None) -> tuple[float, float]:
    """Mean and std over splits of exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016)."""
    x = as_features(logits, "logits", min_samples=1)
    if int(splits) < 1:
        raise ConfigError(f"splits must be >= 1, got {splits}")
    n = x.shape[0]
    splits = min(int(splits), n)
    if shuffle_seed is not None:
        # torch-fidelity shuffles with RandomState(2020) by default; pass shuffle_seed=2020 to match it.
        x = x[torch.from_numpy(np.random.RandomState(shuffle_seed).permutation(n))]

    log_p = torch.log_softmax(x, dim=1)
    p = log_p.exp()
    scores = []
    for i in range(splits):
        # Same split boundaries as torch-fidelity (i*N//splits), so every sample is used.
        lo, hi = i * n // splits, (i + 1) * n // splits
        p_c, log_p_c = p[lo:hi], log_p[lo:hi]
        p_y = p_c.mean(dim=0, keepdim=True)
        # xlogy makes 0 * log 0 = 0 when a confident softmax underflows to exactly 0.
        kl = (p_c * log_p_c - torch.special.xlogy(p_c, p_y)).sum(dim=1)
        scores.append(float(kl.mean().exp()))
    return float(np.mean(scores)), float(np.std(scores))
