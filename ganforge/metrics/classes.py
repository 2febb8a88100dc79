"""Class-level diversity from a classifier's predicted labels (conditional accuracy: the evaluator counts it)."""

from __future__ import annotations

from typing import Any

import torch

from ganforge.errors import ConfigError
from ganforge.metrics.stats import ArrayLike, as_labels


def class_coverage(pred_labels: ArrayLike, num_classes: int) -> dict[str, Any]:
    """Fraction of classes predicted at least once and KL(class histogram || uniform) (Santurkar et al. 2018)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    y = as_labels(pred_labels, "pred_labels")
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise ConfigError(
            f"pred_labels must lie in [0, {num_classes - 1}], got values in [{int(y.min())}, {int(y.max())}]"
        )
    hist = torch.bincount(y, minlength=num_classes)
    p = hist.to(torch.float64) / y.numel()
    nz = p > 0
    # KL(p || U) = sum p log(p K), with 0 log 0 = 0; it is 0 for balanced classes and log K for one class.
    kl = float((p[nz] * torch.log(p[nz] * num_classes)).sum())
    return {
        "coverage": int(nz.sum()) / num_classes,
        "kl_uniform": max(kl, 0.0),
        "histogram": [int(v) for v in hist.tolist()],
    }
