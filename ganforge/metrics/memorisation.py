"""Nearest-neighbour memorisation check: are generated samples closer to the training set than held-out real data?"""

from __future__ import annotations

import math
from typing import Any

import torch
import torchvision.utils

from ganforge.errors import ConfigError
from ganforge.metrics.stats import ArrayLike, as_features, as_images, as_tensor


def _knn(queries: torch.Tensor, refs: torch.Tensor, k: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    dists, idxs = [], []
    for lo in range(0, queries.shape[0], batch_size):
        d = torch.cdist(queries[lo : lo + batch_size], refs)
        v, i = d.topk(k, dim=1, largest=False)
        dists.append(v)
        idxs.append(i)
    return torch.cat(dists), torch.cat(idxs)


def _ratio(num: float, den: float) -> float:
    if den > 0:
        return num / den
    # Held-out samples that coincide with training samples: a generator equally close is not
    # copying any more than real data does (1); one farther away is not copying at all (inf).
    return 1.0 if num == 0 else math.inf


@torch.no_grad()
def memorisation(
    gen_feats: ArrayLike,
    train_feats: ArrayLike,
    heldout_feats: ArrayLike,
    k: int = 3,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Nearest-training-neighbour distances of generated vs held-out samples (data-copying test in the spirit of Meehan et al. 2020).

    Returns ``gen_mean``/``gen_median`` and ``heldout_mean``/``heldout_median`` (distance to the
    single nearest training sample), ``ratio`` = gen_mean / heldout_mean and ``ratio_median``
    likewise; a ratio well below 1 means generated samples sit closer to training samples than
    fresh real data does, i.e. the generator copies. ``gen_nn_index``/``gen_nn_dist`` (N_gen, k)
    and ``heldout_nn_index``/``heldout_nn_dist`` (N_heldout, k) give the k nearest training
    samples, nearest first, e.g. for memorisation_grid.
    """
    if int(k) < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    if int(batch_size) < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    k, batch_size = int(k), int(batch_size)
    gen = as_features(gen_feats, "gen_feats")
    train = as_features(train_feats, "train_feats", min_samples=k)
    held = as_features(heldout_feats, "heldout_feats")
    if not gen.shape[1] == train.shape[1] == held.shape[1]:
        raise ConfigError(
            f"feature dimensions differ: gen {gen.shape[1]}, train {train.shape[1]}, heldout {held.shape[1]}"
        )
    gen_d, gen_i = _knn(gen, train, k, batch_size)
    held_d, held_i = _knn(held, train, k, batch_size)
    g1, h1 = gen_d[:, 0], held_d[:, 0]
    out: dict[str, Any] = {
        "gen_mean": float(g1.mean()),
        "gen_median": float(g1.median()),
        "heldout_mean": float(h1.mean()),
        "heldout_median": float(h1.median()),
    }
    out["ratio"] = _ratio(out["gen_mean"], out["heldout_mean"])
    out["ratio_median"] = _ratio(out["gen_median"], out["heldout_median"])
    out.update(gen_nn_index=gen_i, gen_nn_dist=gen_d, heldout_nn_index=held_i, heldout_nn_dist=held_d)
    return out


def memorisation_grid(
    gen_images: ArrayLike, train_images: ArrayLike, nn_index: ArrayLike, n_rows: int = 8
) -> torch.Tensor:
    """Image grid, one row per generated image followed by its nearest training images (nearest-neighbour check as in Brock et al. 2019, BigGAN)."""
    gen = as_images(gen_images, "gen_images")
    train = as_images(train_images, "train_images")
    idx = as_tensor(nn_index, "nn_index", dtype=torch.int64)
    if idx.ndim == 1:
        idx = idx.unsqueeze(1)
    if idx.ndim != 2 or idx.shape[1] < 1:
        raise ConfigError(f"nn_index must have shape (N_gen, k), got {tuple(idx.shape)}")
    if gen.shape[1:] != train.shape[1:]:
        raise ConfigError(
            f"gen_images and train_images differ in (C, H, W): {tuple(gen.shape[1:])} vs {tuple(train.shape[1:])}"
        )
    if idx.shape[0] != gen.shape[0]:
        raise ConfigError(f"nn_index has {idx.shape[0]} rows but there are {gen.shape[0]} generated images")
    if int(idx.min()) < 0 or int(idx.max()) >= train.shape[0]:
        raise ConfigError(f"nn_index values must lie in [0, {train.shape[0] - 1}]")
    if int(n_rows) < 1:
        raise ConfigError(f"n_rows must be >= 1, got {n_rows}")
    rows = min(int(n_rows), gen.shape[0])
    k = idx.shape[1]
    tiles = torch.cat([torch.cat([gen[r : r + 1], train[idx[r]]]) for r in range(rows)])
    # [-1, 1] -> [0, 1] so the grid can be saved or logged directly.
    tiles = ((tiles + 1.0) / 2.0).clamp(0.0, 1.0)
    return torchvision.utils.make_grid(tiles, nrow=k + 1, padding=2, pad_value=1.0)
