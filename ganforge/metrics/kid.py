"""Kernel Inception Distance: unbiased MMD^2 with a polynomial kernel (Binkowski et al. 2018)."""

from __future__ import annotations

import numpy as np

from ganforge.errors import ConfigError
from ganforge.metrics.stats import ArrayLike, as_features


def _poly_kernel(x: np.ndarray, y: np.ndarray, degree: int, gamma: float, coef0: float) -> np.ndarray:
    return (x @ y.T * gamma + coef0) ** degree


def _mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    # Binkowski et al. 2018 (same estimator as torch-fidelity's mmd_est="unbiased"):
    # the within-set sums drop the diagonal, the cross term keeps it.
    m = k_xx.shape[0]
    sum_xx = k_xx.sum() - np.trace(k_xx)
    sum_yy = k_yy.sum() - np.trace(k_yy)
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))


def kid(
    feats_a: ArrayLike,
    feats_b: ArrayLike,
    num_subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 0,
) -> tuple[float, float]:
    """KID mean and std over subsets: unbiased MMD^2 with k(x,y) = (gamma x.y + coef0)^degree (Binkowski et al. 2018)."""
    a = as_features(feats_a, "feats_a", min_samples=2).cpu().numpy()
    b = as_features(feats_b, "feats_b", min_samples=2).cpu().numpy()
    if a.shape[1] != b.shape[1]:
        raise ConfigError(f"feats_a and feats_b differ in feature dimension: {a.shape[1]} vs {b.shape[1]}")
    if int(num_subsets) < 1:
        raise ConfigError(f"num_subsets must be >= 1, got {num_subsets}")
    if int(subset_size) < 2:
        raise ConfigError(f"subset_size must be >= 2 (the unbiased estimator needs pairs), got {subset_size}")
    if int(degree) < 1:
        raise ConfigError(f"degree must be >= 1, got {degree}")
    if gamma is None:
        gamma = 1.0 / a.shape[1]
    # torch-fidelity refuses subset_size > n; shrinking keeps small evaluations usable, and
    # with m = n every subset is the whole set (a permutation), so the std is then 0.
    m = min(int(subset_size), a.shape[0], b.shape[0])

    # Same sampling as torch-fidelity (RandomState, choice without replacement, a then b),
    # so results agree with it for the same seed when subset_size <= n.
    rng = np.random.RandomState(seed)
    mmds = np.empty(int(num_subsets), dtype=np.float64)
    for i in range(int(num_subsets)):
        x = a[rng.choice(a.shape[0], m, replace=False)]
        y = b[rng.choice(b.shape[0], m, replace=False)]
        mmds[i] = _mmd2_unbiased(
            _poly_kernel(x, x, degree, gamma, coef0),
            _poly_kernel(x, y, degree, gamma, coef0),
            _poly_kernel(y, y, degree, gamma, coef0),
        )
    return float(mmds.mean()), float(mmds.std())
