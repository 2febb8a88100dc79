"""How much a generator's categorical code says about the class of what it draws (InfoGAN, Chen et al. 2016, Sec. 7.1).

The InfoGAN paper reads a categorical code as a classifier "by matching each category in
c1 to a digit type" (5% error on MNIST). Here the class of each generated sample comes
from a domain classifier, and the code-class dependence is reported as a plug-in
mutual-information estimate in bits and as the accuracy after mapping each code value to
its majority class.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .stats import ArrayLike, as_labels


def _joint(a: ArrayLike, b: ArrayLike) -> Tensor:
    """The joint histogram (values of a x values of b, float64 counts) of two equal-length label vectors."""
    x, y = as_labels(a, "a"), as_labels(b, "b")
    if x.shape != y.shape:
        raise ConfigError(f"label vectors differ in length: {x.numel()} vs {y.numel()}")
    _, xi = torch.unique(x, return_inverse=True)
    _, yi = torch.unique(y, return_inverse=True)
    nx, ny = int(xi.max()) + 1, int(yi.max()) + 1
    return torch.bincount(xi * ny + yi, minlength=nx * ny).view(nx, ny).to(torch.float64)


def mutual_information_bits(a: ArrayLike, b: ArrayLike) -> float:
    """Plug-in I(a; b) in bits from the empirical joint histogram of two integer label vectors.

    sum_{i,j} p_ij log2(p_ij / (p_i p_j)) with 0 log 0 = 0. It is biased upwards for small
    samples (about (|A|-1)(|B|-1) / (2 N ln 2) bits for independent labels).
    """
    joint = _joint(a, b)
    p = joint / joint.sum()
    pa, pb = p.sum(1, keepdim=True), p.sum(0, keepdim=True)
    nz = p > 0
    mi = float((p[nz] * torch.log2(p[nz] / (pa * pb).expand_as(p)[nz])).sum())
    return max(mi, 0.0)


def majority_mapping(codes: ArrayLike, classes: ArrayLike) -> dict[int, int]:
    """Each code value's most frequent class (ties go to the smallest class)."""
    x, y = as_labels(codes, "codes"), as_labels(classes, "classes")
    if x.shape != y.shape:
        raise ConfigError(f"codes and classes differ in length: {x.numel()} vs {y.numel()}")
    out = {}
    for v in torch.unique(x).tolist():
        counts = torch.bincount(y[x == v] - int(y.min()))
        out[int(v)] = int(counts.argmax()) + int(y.min())  # argmax returns the first maximum: the smallest class
    return out


def best_mapping_accuracy(codes: ArrayLike, classes: ArrayLike) -> float:
    """Accuracy of predicting the class by each code value's majority class (Chen et al. 2016, Sec. 7.1)."""
    x, y = as_labels(codes, "codes"), as_labels(classes, "classes")
    mapping = majority_mapping(x, y)
    pred = torch.tensor([mapping[int(v)] for v in x.tolist()], dtype=torch.int64)
    return float((pred == y).to(torch.float64).mean())


@torch.no_grad()
def infogan_code_report(
    G: nn.Module,
    latent_space: Any,
    classifier_predict: Callable[[Tensor], Tensor],
    n_per_value: int = 1000,
    seed: int = 0,
    num_classes: int = 10,
    batch: int = 500,
) -> dict[str, Any]:
    """MI (bits), majority-mapping accuracy and confusion between G's first categorical code and predicted classes.

    For every value v of the first categorical code, n_per_value samples are generated with
    that value; the noise and every other code come from one seeded draw shared by all
    values, so only the code changes between them. `classifier_predict(images)` returns
    the predicted classes (e.g. the fashion domain classifier's argmax). G runs in eval
    mode (its mode is restored afterwards). max_bits = log2 of the code size: H(c) of the
    balanced design, the most the code can carry.
    """
    if not latent_space.categorical:
        raise ConfigError(
            "infogan_code_report needs a latent space with a categorical code (model.latent.categorical)."
        )
    if n_per_value < 1:
        raise ConfigError(f"n_per_value must be >= 1, got {n_per_value}")
    k = latent_space.categorical[0]
    device = next(G.parameters()).device
    base = latent_space.sample(n_per_value, generator=torch.Generator().manual_seed(seed))
    was_training = G.training
    G.eval()
    codes, preds = [], []
    try:
        for v in range(k):
            cats = [torch.full((n_per_value,), v, dtype=torch.long), *list(base.categorical[1:])]
            # Same seed: sample() draws the noise first, so every value gets the same noise as `base`.
            lat = latent_space.sample(
                n_per_value,
                generator=torch.Generator().manual_seed(seed),
                y=base.y,
                categorical=cats,
                continuous=base.continuous,
            )
            for i in range(0, n_per_value, batch):
                images = G(lat.z[i : i + batch].to(device))
                preds.append(torch.as_tensor(classifier_predict(images)).detach().long().cpu().flatten())
            codes.append(torch.full((n_per_value,), v, dtype=torch.long))
    finally:
        G.train(was_training)
    c, p = torch.cat(codes), torch.cat(preds)
    if int(p.min()) < 0 or int(p.max()) >= num_classes:
        raise ConfigError(f"classifier_predict returned classes outside [0, {num_classes - 1}]")
    confusion = torch.bincount(c * num_classes + p, minlength=k * num_classes).view(k, num_classes)
    return {
        "mi_bits": mutual_information_bits(c, p),
        "max_bits": math.log2(k),
        "accuracy_after_mapping": best_mapping_accuracy(c, p),
        "mapping": majority_mapping(c, p),
        "confusion": confusion.tolist(),
        "n_per_value": n_per_value,
        "seed": seed,
    }
