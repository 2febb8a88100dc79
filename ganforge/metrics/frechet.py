"""Frechet distance between Gaussians fitted to features (FID, Heusel et al. 2017)."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ganforge.errors import ConfigError
from ganforge.metrics.stats import ArrayLike, StreamingMoments, as_tensor


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix, clamping round-off negative eigenvalues to 0."""
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    # Tr((S1 S2)^(1/2)) = sum sqrt(eig(S1^(1/2) S2 S1^(1/2))): the latter matrix is symmetric
    # PSD, so eigh gives real eigenvalues even when S1 S2 is singular, where scipy.linalg.sqrtm
    # of the non-symmetric product returns complex values or NaN.
    r = _psd_sqrt(s1)
    m = r @ s2 @ r
    m = (m + m.T) / 2.0
    w = np.linalg.eigvalsh(m)
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike, eps: float = 1e-6) -> float:
    """Frechet distance ||mu1-mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) (Dowson & Landau 1982; FID, Heusel et al. 2017)."""
    m1 = as_tensor(mu1, "mu1", ndim=1).cpu().numpy()
    m2 = as_tensor(mu2, "mu2", ndim=1).cpu().numpy()
    s1 = as_tensor(sigma1, "sigma1", ndim=2).cpu().numpy()
    s2 = as_tensor(sigma2, "sigma2", ndim=2).cpu().numpy()
    d = m1.shape[0]
    if d < 1:
        raise ConfigError("mu1 is empty")
    if m2.shape != (d,):
        raise ConfigError(f"mu1 and mu2 differ in dimension: {m1.shape} vs {m2.shape}")
    for name, s in (("sigma1", s1), ("sigma2", s2)):
        if s.shape != (d, d):
            raise ConfigError(f"{name} must be ({d}, {d}) to match the means, got {s.shape}")
    if not eps >= 0:
        raise ConfigError(f"eps must be >= 0, got {eps}")
    # Covariances from float32 features are symmetric only up to round-off.
    s1 = (s1 + s1.T) / 2.0
    s2 = (s2 + s2.T) / 2.0

    try:
        tr_covmean = _trace_sqrt_product(s1, s2)
    except np.linalg.LinAlgError:
        # eigh failing to converge is rare (badly scaled inputs); fall back to the reference
        # recipe (pytorch-fid): offset both covariances by eps*I and use sqrtm, keeping the real part.
        offset = np.eye(d) * eps
        covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
        tr_covmean = float(np.real(np.trace(covmean)))
    if not np.isfinite(tr_covmean):
        raise ConfigError("Frechet distance: covariance square root is not finite; check the features")

    diff = m1 - m2
    fd = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    # The distance is >= 0 in exact arithmetic; a tiny negative value is round-off.
    return max(fd, 0.0)


def frechet_distance_from_moments(a: StreamingMoments, b: StreamingMoments, eps: float = 1e-6) -> float:
    """Frechet distance between the Gaussians fitted by two StreamingMoments (FID, Heusel et al. 2017)."""
    for name, m in (("a", a), ("b", b)):
        if not isinstance(m, StreamingMoments):
            raise ConfigError(f"{name} must be a StreamingMoments, got {type(m).__name__}")
    if a.dim != b.dim:
        raise ConfigError(f"feature dimensions differ: {a.dim} vs {b.dim}")
    return frechet_distance(a.mean, a.cov, b.mean, b.cov, eps=eps)
