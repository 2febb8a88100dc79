"""Seeded, class-balanced subsets: the labelled part of semi-supervised training (Salimans et al. 2016, Sec. 5:
n/K labels per class) and `data.limit` (a small dataset drawn from any dataset)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError


def balanced_subset(labels: Any, n: int, seed: int) -> Tensor:
    """Indices (sorted, int64) of n examples, n/K of each of the K classes present in `labels`, drawn with `seed`.

    As in the authors' code (train_*_feature_matching.py), each class's examples are
    permuted by a seeded generator and the first n/K taken. The same labels, n and seed
    always give the same subset.
    """
    y = labels.detach().cpu() if isinstance(labels, Tensor) else torch.as_tensor(np.asarray(labels))
    if y.dim() != 1 or y.numel() == 0 or y.is_floating_point() or y.dtype == torch.bool:
        raise ConfigError(
            f"balanced_subset needs a non-empty 1-D vector of integer labels, got "
            f"dtype {y.dtype} and shape {tuple(y.shape)}"
        )
    y = y.long()
    classes = torch.unique(y)
    k = int(classes.numel())
    if isinstance(n, bool) or not isinstance(n, int) or n < k or n % k:
        raise ConfigError(
            f"the labelled subset size must be a positive multiple of the number of classes ({k}) "
            f"so that every class gets n/{k} examples; got {n!r}"
        )
    per = n // k
    g = torch.Generator().manual_seed(int(seed))
    out = []
    for c in classes.tolist():
        idx = torch.nonzero(y == c).flatten()
        if idx.numel() < per:
            raise ConfigError(f"class {c} has only {idx.numel()} examples; {per} per class were asked for (n={n})")
        out.append(idx[torch.randperm(idx.numel(), generator=g)[:per]])
    return torch.cat(out).sort().values


LIMIT_SEED = 0  # `data.limit` draws with a fixed seed: every run seed, and every evaluation, sees the same images


def limit_order(n: int, labels: Any | None = None, seed: int = LIMIT_SEED) -> Tensor:
    """All n indices in the order `data.limit` takes them: classes in turn, each in a seeded random order.

    The first k of this order hold k/K examples of each of the K classes (as balanced as the classes'
    sizes allow: a class that runs out leaves its turns to the others); without labels it is one seeded
    permutation. A loader that may skip unreadable files walks this order until it has `limit` images.
    """
    g = torch.Generator().manual_seed(int(seed))
    if labels is None:
        return torch.randperm(n, generator=g)
    y = labels.detach().cpu().long() if isinstance(labels, Tensor) else torch.as_tensor(np.asarray(labels)).long()
    if y.numel() != n:
        raise ValueError(f"limit_order: {y.numel()} labels for {n} samples")
    per_class = [
        idx[torch.randperm(idx.numel(), generator=g)]
        for idx in (torch.nonzero(y == c).flatten() for c in torch.unique(y).tolist())
    ]
    longest = max((len(c) for c in per_class), default=0)
    # Round r takes the r-th example of every class that still has one.
    rounds = [torch.stack([c[r] for c in per_class if r < len(c)]) for r in range(longest)]
    return torch.cat(rounds) if rounds else torch.zeros(0, dtype=torch.long)


def limit_indices(n: int, limit: int | None, labels: Any | None = None, seed: int = LIMIT_SEED) -> Tensor | None:
    """Sorted indices of the `limit` samples `data.limit` keeps out of n (None: keep all)."""
    if limit is None or limit >= n:
        return None
    return limit_order(n, labels, seed)[:limit].sort().values
