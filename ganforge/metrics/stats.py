"""Streaming feature statistics (count, mean, covariance) and input checks shared by the metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ganforge.errors import ConfigError

ArrayLike = Any  # numpy array, torch tensor or nested sequence


def as_tensor(x: ArrayLike, name: str, ndim: int | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Convert numpy/torch input to a detached tensor of `dtype`, checking its rank and finiteness."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}") from exc
    if ndim is not None and t.ndim != ndim:
        raise ConfigError(f"{name} must have {ndim} dimensions, got shape {tuple(t.shape)}")
    if t.is_complex():
        raise ConfigError(f"{name} must be real, got dtype {t.dtype}")
    t = t.to(dtype)
    if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
        raise ConfigError(f"{name} contains NaN or infinite values")
    return t


def as_features(x: ArrayLike, name: str, min_samples: int = 1) -> torch.Tensor:
    """Feature matrix (N, D) as float64, with at least `min_samples` rows."""
    t = as_tensor(x, name, ndim=2)
    if t.shape[0] < min_samples:
        raise ConfigError(f"{name} needs at least {min_samples} samples, got {t.shape[0]}")
    if t.shape[1] < 1:
        raise ConfigError(f"{name} has feature dimension 0")
    return t


def as_labels(x: ArrayLike, name: str) -> torch.Tensor:
    """Non-empty 1-D integer label vector as int64."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        t = torch.as_tensor(np.asarray(x))
    if t.ndim != 1:
        raise ConfigError(f"{name} must be a 1-D vector of class indices, got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ConfigError(f"{name} is empty")
    if t.is_floating_point():
        # Integral floats (e.g. from numpy argmax casts) are fine; 0.5 is a bug upstream.
        if not bool((t == t.round()).all()):
            raise ConfigError(f"{name} must contain integer class indices, got non-integral values")
    elif t.dtype == torch.bool or t.is_complex():
        raise ConfigError(f"{name} must contain integer class indices, got dtype {t.dtype}")
    return t.to(torch.int64)


def as_images(x: ArrayLike, name: str, min_samples: int = 1) -> torch.Tensor:
    """Image batch (N, C, H, W) as float32."""
    t = as_tensor(x, name, ndim=4, dtype=torch.float32)
    if t.shape[0] < min_samples:
        raise ConfigError(f"{name} needs at least {min_samples} images, got {t.shape[0]}")
    return t


class StreamingMoments:
    """Running count, mean and covariance of feature vectors in float64 (Chan, Golub & LeVeque 1979 parallel update)."""

    def __init__(self, dim: int, device: torch.device | str | None = None) -> None:
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or dim < 1:
            raise ConfigError(f"StreamingMoments dim must be a positive integer, got {dim!r}")
        self.dim = int(dim)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._n = 0
        self._mean = torch.zeros(self.dim, dtype=torch.float64, device=self.device)
        # Centred second moment sum (x - mean)(x - mean)^T; accumulating it rather than
        # sum(x x^T) avoids the catastrophic cancellation of E[xx^T] - mu mu^T for features
        # with a large mean relative to their spread.
        self._m2 = torch.zeros(self.dim, self.dim, dtype=torch.float64, device=self.device)

    def _combine(self, n_b: int, mean_b: torch.Tensor, m2_b: torch.Tensor) -> None:
        if n_b == 0:
            return
        n_a = self._n
        n = n_a + n_b
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (n_b / n)
        self._m2 = self._m2 + m2_b + torch.outer(delta, delta) * (n_a * n_b / n)
        self._n = n

    @torch.no_grad()
    def update(self, x: ArrayLike) -> StreamingMoments:
        """Add a batch of feature vectors of shape (B, dim)."""
        t = as_tensor(x, "features", ndim=2).to(self.device)
        if t.shape[1] != self.dim:
            raise ConfigError(f"features have dimension {t.shape[1]}, StreamingMoments expects {self.dim}")
        if t.shape[0] == 0:
            return self
        mean_b = t.mean(dim=0)
        centred = t - mean_b
        self._combine(int(t.shape[0]), mean_b, centred.T @ centred)
        return self

    def merge(self, other: StreamingMoments) -> StreamingMoments:
        """Fold another accumulator (e.g. from another process) into this one, in place; returns self."""
        if not isinstance(other, StreamingMoments):
            raise ConfigError(f"can only merge another StreamingMoments, got {type(other).__name__}")
        if other.dim != self.dim:
            raise ConfigError(f"cannot merge StreamingMoments of dimension {other.dim} into {self.dim}")
        self._combine(other._n, other._mean.to(self.device), other._m2.to(self.device))
        return self

    @property
    def n(self) -> int:
        """Number of samples seen."""
        return self._n

    @property
    def mean(self) -> torch.Tensor:
        """Sample mean, float64 (dim,)."""
        if self._n < 1:
            raise ConfigError("StreamingMoments has no samples; cannot compute a mean")
        return self._mean.clone()

    @property
    def cov(self) -> torch.Tensor:
        """Unbiased (n - 1) sample covariance, float64 (dim, dim), as np.cov(x, rowvar=False)."""
        if self._n < 2:
            raise ConfigError(f"StreamingMoments needs at least 2 samples for a covariance, has {self._n}")
        return self._m2 / (self._n - 1)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors describing the accumulator; gather them across processes and merge with from_state_dict."""
        return {
            "n": torch.tensor(self._n, dtype=torch.int64, device=self.device),
            "mean": self._mean.clone(),
            "m2": self._m2.clone(),
        }

    @classmethod
    def from_state_dict(
        cls, state: Mapping[str, torch.Tensor], device: torch.device | str | None = None
    ) -> StreamingMoments:
        """Rebuild an accumulator from state_dict() output."""
        missing = {"n", "mean", "m2"} - set(state)
        if missing:
            raise ConfigError(f"StreamingMoments state is missing {sorted(missing)}")
        mean = torch.as_tensor(state["mean"]).to(torch.float64)
        m2 = torch.as_tensor(state["m2"]).to(torch.float64)
        if mean.ndim != 1 or m2.shape != (mean.shape[0], mean.shape[0]):
            raise ConfigError(f"inconsistent StreamingMoments state: mean {tuple(mean.shape)}, m2 {tuple(m2.shape)}")
        n = int(torch.as_tensor(state["n"]).item())
        if n < 0:
            raise ConfigError(f"StreamingMoments state has negative count {n}")
        obj = cls(mean.shape[0], device=device if device is not None else mean.device)
        obj._n = n
        obj._mean = mean.to(obj.device)
        obj._m2 = m2.to(obj.device)
        return obj

    def __repr__(self) -> str:
        return f"StreamingMoments(dim={self.dim}, n={self._n})"
