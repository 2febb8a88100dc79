"""Improved precision and recall with k-NN manifolds (Kynkaanniemi et al. 2019)."""

from __future__ import annotations

import torch

from ganforge.errors import ConfigError
from ganforge.metrics.stats import ArrayLike, as_features


def knn_radii(feats: torch.Tensor, k: int, batch_size: int = 256) -> torch.Tensor:
    """Distance from each row of `feats` to its k-th nearest other row (Kynkaanniemi et al. 2019)."""
    n = feats.shape[0]
    if not 1 <= k < n:
        raise ConfigError(f"k-NN radii need 1 <= k < number of samples, got k={k} with {n} samples")
    radii = torch.empty(n, dtype=feats.dtype, device=feats.device)
    for lo in range(0, n, batch_size):
        d = torch.cdist(feats[lo : lo + batch_size], feats)
        # The k+1 smallest include the point itself (distance 0), so the (k+1)-th is the k-th
        # neighbour; duplicates of the point are then rightly counted as neighbours at distance 0.
        radii[lo : lo + batch_size] = d.topk(k + 1, dim=1, largest=False).values[:, k]
    return radii


def _coverage(queries: torch.Tensor, refs: torch.Tensor, ref_radii: torch.Tensor, batch_size: int) -> float:
    inside = 0
    for lo in range(0, queries.shape[0], batch_size):
        d = torch.cdist(queries[lo : lo + batch_size], refs)
        inside += int((d <= ref_radii.unsqueeze(0)).any(dim=1).sum())
    return inside / queries.shape[0]


@torch.no_grad()
def precision_recall(
    real_feats: ArrayLike,
    fake_feats: ArrayLike,
    k: int = 3,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> tuple[float, float]:
    """Precision and recall of k-NN feature manifolds (Kynkaanniemi et al. 2019)."""
    if int(k) < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    if int(batch_size) < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    k, batch_size = int(k), int(batch_size)
    real = as_features(real_feats, "real_feats", min_samples=k + 1)
    fake = as_features(fake_feats, "fake_feats", min_samples=k + 1)
    if real.shape[1] != fake.shape[1]:
        raise ConfigError(f"real and fake features differ in dimension: {real.shape[1]} vs {fake.shape[1]}")
    if device is not None:
        real, fake = real.to(device), fake.to(device)
    # float64 (from as_features) keeps cdist's matmul-based distances accurate enough that a
    # sample's distance to its own copy does not exceed a neighbour's radius by round-off.
    # Memory is O(batch_size * N): only one block of the distance matrix exists at a time.
    real_radii = knn_radii(real, k, batch_size)
    fake_radii = knn_radii(fake, k, batch_size)
    precision = _coverage(fake, real, real_radii, batch_size)
    recall = _coverage(real, fake, fake_radii, batch_size)
    return precision, recall
