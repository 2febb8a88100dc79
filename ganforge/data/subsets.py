"""Class-balanced labelled subsets for semi-supervised training (Salimans et al. 2016, Sec. 5: n/K labels per class)."""

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
        raise ConfigError(f"balanced_subset needs a non-empty 1-D vector of integer labels, got "
                          f"dtype {y.dtype} and shape {tuple(y.shape)}")
    y = y.long()
    classes = torch.unique(y)
    k = int(classes.numel())
    if isinstance(n, bool) or not isinstance(n, int) or n < k or n % k:
        raise ConfigError(f"the labelled subset size must be a positive multiple of the number of classes ({k}) "
                          f"so that every class gets n/{k} examples; got {n!r}")
    per = n // k
    g = torch.Generator().manual_seed(int(seed))
    out = []
    for c in classes.tolist():
        idx = torch.nonzero(y == c).flatten()
        if idx.numel() < per:
            raise ConfigError(f"class {c} has only {idx.numel()} examples; {per} per class were asked for (n={n})")
        out.append(idx[torch.randperm(idx.numel(), generator=g)[:per]])
    return torch.cat(out).sort().values
