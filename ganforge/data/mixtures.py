"""2-D Gaussian-mixture benchmarks (ring, grid) and user point clouds from .npy files.

Points keep their native coordinates (no rescaling): the mixture benchmarks' standard deviations and the
quality thresholds derived from them (e.g. "a sample is high quality if within 3 std of a centre") are
defined in these coordinates, so a generator must learn them as they are.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError, DataError, choices_message
from .dataset import ArrayDataset

MIXTURES = ("ring", "grid")


def mixture_spec(name: str) -> tuple[Tensor, float]:
    """The (K, 2) float32 centres and the per-component std of the `ring` or `grid` benchmark."""
    if name == "ring":
        # i * 2*pi/8 for i = 0..7; linspace(0, 2*pi, 8) would put the last centre on top of the first.
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        centres = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
        return centres.to(torch.float32), 0.01
    if name == "grid":
        coords = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0], dtype=torch.float64)
        gx, gy = torch.meshgrid(coords, coords, indexing="ij")
        centres = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
        return centres.to(torch.float32), 0.05
    raise ConfigError(choices_message("mixture", name, MIXTURES))


def sample_mixture(name: str, n_points: int, seed: int) -> ArrayDataset:
    """`n_points` samples of mixture `name`, components chosen uniformly, from a generator seeded by `seed`."""
    centres, std = mixture_spec(name)
    gen = torch.Generator().manual_seed(int(seed))
    comp = torch.randint(len(centres), (n_points,), generator=gen)
    noise = torch.randn(n_points, 2, generator=gen, dtype=torch.float32)
    x = centres[comp] + std * noise
    k = len(centres)
    return ArrayDataset(
        name=name,
        kind="points",
        x=x,
        y=comp.to(torch.int64),
        num_classes=k,
        class_names=[str(i) for i in range(k)],
        info={
            "name": name,
            "kind": "points",
            "split": "train",
            "source": f"synthetic: {k} Gaussians, std {std}",
            "components": k,
            "std": std,
            "centres": centres.tolist(),
            "n_points": n_points,
            "seed": int(seed),
            "n": n_points,
        },
    )


def load_points(path: str) -> ArrayDataset:
    """Points from a .npy file of finite numbers with shape (N, D), kept in their own coordinates."""
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(full):
        raise DataError(f"points file {path!r} does not exist (expected a .npy array of shape (N, D))")
    try:
        with open(full, "rb") as fh:
            magic = fh.read(6)
    except OSError as exc:
        raise DataError(f"points file {path!r} cannot be read: {' '.join(str(exc).split())}") from exc
    if magic != b"\x93NUMPY" and magic[:4] != b"PK\x03\x04":
        # np.load would try to unpickle it and complain about pickled data.
        raise DataError(
            f"points file {path!r} is not a valid .npy array file (it lacks the .npy header; write one "
            "with numpy.save(path, points) from an (N, D) array of numbers)"
        )
    try:
        arr = np.load(full, allow_pickle=False)
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if "pickle" in reason.lower():
            reason = "it holds Python objects rather than numbers"
        raise DataError(
            f"points file {path!r} is not a valid .npy array ({reason}); expected an (N, D) array of "
            "numbers written with numpy.save"
        ) from exc
    if not isinstance(arr, np.ndarray):
        raise DataError(f"points file {path!r} must hold a single .npy array of shape (N, D), not an archive")
    if arr.dtype.kind not in "fiu":
        raise DataError(f"points file {path!r} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise DataError(f"points file {path!r} must have shape (N, D), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"points file {path!r} is empty (shape {arr.shape})")
    x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    bad = int((~torch.isfinite(x)).any(dim=1).sum())
    if bad:
        # Also catches values that are finite in float64 but overflow float32.
        raise DataError(f"points file {path!r} has {bad} of {len(x)} rows with NaN or infinite values (as float32)")
    return ArrayDataset(
        name="points",
        kind="points",
        x=x,
        info={
            "name": "points",
            "kind": "points",
            "split": "train",
            "source": full,
            "dim": int(x.shape[1]),
            "n": int(x.shape[0]),
        },
    )
