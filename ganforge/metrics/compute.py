"""The per-metric compute table (`COMPUTE`) over streamed statistics, the recorded protocol, and the results table."""

from __future__ import annotations

import math
import platform
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .. import __version__
from ..errors import ConfigError
from .accumulate import FeatureStats, Reference
from .classes import class_coverage
from .frechet import frechet_distance_from_moments
from .kid import kid
from .memorisation import memorisation
from .modes import mixture_mode_metrics
from .msssim import ms_ssim_diversity
from .precision_recall import precision_recall
from .spec import METRIC_SPECS, MetricSpec, ProtocolInputs, add_spec, get_spec
from .swd import sliced_wasserstein

MODES_ONLY = "the 'modes' metric applies to the 2-D mixtures ring and grid and to stacked data only."


def min_samples(metric: str, pr_k: int = 3) -> int:
    """How many generated samples `metric` needs at least."""
    return {"pr": pr_k + 1, "kid": 2, "msssim": 2}.get(metric, 1)


def _need(metric: str, have: int, need: int, side: str, pr_k: int = 3) -> None:
    """ConfigError in user terms when `metric` gets fewer than `need` samples on `side`."""
    if have >= need:
        return
    why = f" (each sample's {pr_k} nearest neighbours plus itself)" if metric == "pr" else ""
    fix = (
        "raise the sample count (--n, or eval.n in a recipe)"
        if side == "generated"
        else "use a larger reference dataset"
    )
    raise ConfigError(
        f"metric {metric!r} ({get_spec(metric).title}) needs at least {need} {side} samples"
        f"{why}, but {have} {'was' if have == 1 else 'were'} given; {fix}, or leave {metric!r} out."
    )


@dataclass
class MetricInputs:
    """What a metric's compute function reads: the streamed statistics and the evaluation's settings."""

    fake: FeatureStats
    ref: Reference
    sfx: str  # "_<extractor>" or ""
    seed: int
    kid_subsets: int
    kid_subset_size: int
    pr_k: int
    mixture: tuple[Tensor, float] | None
    fake_points: Tensor | None


def _fd(c: MetricInputs) -> dict[str, float]:
    return {f"fd{c.sfx}": frechet_distance_from_moments(c.fake.moments, c.ref.stats.moments)}


def _is(c: MetricInputs) -> dict[str, float]:
    assert c.fake.inception is not None  # the engine streams IS whenever the metric is asked for
    mean, std = c.fake.inception.result()
    return {f"is{c.sfx}": mean, f"is{c.sfx}_std": std}


def _kid(c: MetricInputs) -> dict[str, float]:
    _need("kid", c.fake.stored, 2, "generated")
    _need("kid", c.ref.stats.stored, 2, "reference")
    mean, std = kid(
        c.fake.stacked_features(),
        c.ref.stats.stacked_features(),
        num_subsets=c.kid_subsets,
        subset_size=c.kid_subset_size,
        seed=c.seed,
    )
    return {f"kid{c.sfx}": mean, f"kid{c.sfx}_std": std}


def _pr(c: MetricInputs) -> dict[str, float]:
    _need("pr", c.fake.stored, c.pr_k + 1, "generated", c.pr_k)
    _need("pr", c.ref.stats.stored, c.pr_k + 1, "reference", c.pr_k)
    p, r = precision_recall(c.ref.stats.stacked_features(), c.fake.stacked_features(), k=c.pr_k)
    return {f"precision{c.sfx}": p, f"recall{c.sfx}": r}


def _coverage(c: MetricInputs) -> dict[str, float]:
    assert c.fake.pred_counts is not None  # counted whenever an extractor gives logits
    cov = class_coverage_from_counts(c.fake.pred_counts)
    return {f"coverage{c.sfx}": cov["coverage"], f"kl_uniform{c.sfx}": cov["kl_uniform"]}


def _cond_acc(c: MetricInputs) -> dict[str, float]:
    # Only samples that carry labels (a conditional generator, a labelled test split) have an accuracy.
    return {f"cond_acc{c.sfx}": c.fake.labels_correct / c.fake.labels_seen} if c.fake.labels_seen else {}


def _memorisation(c: MetricInputs) -> dict[str, float]:
    if c.ref.heldout is None:
        raise ConfigError("the memorisation check needs a held-out split of the reference data (a test split).")
    _need("memorisation", c.ref.stats.stored, 3, "reference")
    mem = memorisation(c.fake.stacked_features(), c.ref.stats.stacked_features(), c.ref.heldout.stacked_features())
    c.fake.memorisation = mem  # kept for the nearest-neighbour picture
    return {f"memorisation_ratio{c.sfx}": mem["ratio"]}


def _swd(c: MetricInputs) -> dict[str, float]:
    n = min(c.fake.images_stored, c.ref.stats.images_stored)
    res = sliced_wasserstein(c.ref.stats.stacked_images()[:n], c.fake.stacked_images()[:n], seed=c.seed)
    return {"swd_x1e3": res["swd_x1e3_avg"]}


def _msssim(c: MetricInputs) -> dict[str, float]:
    _need("msssim", c.fake.images_stored, 2, "generated")
    out = {"msssim": ms_ssim_diversity(c.fake.stacked_images(), seed=c.seed)}
    if c.ref.stats.images_stored >= 2:  # the data's own diversity: samples far above it have collapsed
        out["msssim_real"] = ms_ssim_diversity(c.ref.stats.stacked_images(), seed=c.seed)
    return out


def _modes(c: MetricInputs) -> dict[str, float]:
    if c.fake.stacked is not None:
        res = c.fake.stacked.result()
    elif c.mixture is None or c.fake_points is None:
        raise ConfigError(MODES_ONLY)
    else:
        res = mixture_mode_metrics(c.fake_points, c.mixture[0], c.mixture[1])
    return {"modes": float(res["modes"]), "high_quality": res["high_quality"], "kl_modes": res["kl"]}


# The compute function of every metric in METRIC_SPECS (a test checks that the two name the same metrics).
COMPUTE: dict[str, Callable[[MetricInputs], dict[str, float]]] = {
    "fd": _fd,
    "is": _is,
    "kid": _kid,
    "pr": _pr,
    "coverage": _coverage,
    "cond_acc": _cond_acc,
    "memorisation": _memorisation,
    "swd": _swd,
    "msssim": _msssim,
    "modes": _modes,
}


def register_metric_compute(
    spec: MetricSpec, fn: Callable[[MetricInputs], dict[str, float]], origin: Any = None
) -> None:
    """Add a metric: its declaration (spec.py) and its compute function, under one name.

    `origin` (the user's function) lets the same definition be registered again (see spec.add_spec)."""
    add_spec(spec, origin=origin if origin is not None else fn)
    COMPUTE[spec.name] = fn


def compute_metrics(
    fake: FeatureStats,
    ref: Reference,
    metrics: list[str],
    extractor_name: str | None,
    seed: int = 0,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    pr_k: int = 3,
    mixture: tuple[Tensor, float] | None = None,
    fake_points: Tensor | None = None,
) -> dict[str, float]:
    """Numbers for `metrics` from the streamed statistics; keys carry the extractor name (fd_fashion, ...)."""
    inputs = MetricInputs(
        fake,
        ref,
        f"_{extractor_name}" if extractor_name else "",
        seed,
        kid_subsets,
        kid_subset_size,
        pr_k,
        mixture,
        fake_points,
    )
    out: dict[str, float] = {}
    for m in metrics:
        out.update(COMPUTE[m](inputs))
    return out


def class_coverage_from_counts(counts: Tensor) -> dict[str, Any]:
    """Class coverage and KL(histogram || uniform) from predicted-class counts."""
    labels = torch.repeat_interleave(torch.arange(len(counts)), counts)
    return class_coverage(labels, len(counts))


def protocol(
    metrics: list[str],
    extractor: Any | None,
    ref: Reference,
    n_fake: int,
    seed: int,
    store_max: int,
    image_max: int,
    kid_subsets: int,
    kid_subset_size: int,
    pr_k: int,
    source: str,
    is_splits: int = 10,
    image_shape: tuple[int, ...] | None = None,
) -> dict[str, Any]:
    """Everything needed to reproduce a number: extractor and weights hash, reference split, counts, caps.

    `is_splits` is the number of Inception-Score splits actually used; `image_shape` (H, W) is given when
    a metric's protocol depends on the samples' size (MS-SSIM).
    """
    n_store = min(store_max, n_fake)
    inputs = ProtocolInputs(is_splits, kid_subsets, kid_subset_size, pr_k, n_store, ref.stats.stored, image_shape)
    head = {
        "metrics": metrics,
        "extractor": extractor.protocol() if extractor is not None else None,
        "reference": {
            "dataset": ref.name,
            "n": ref.stats.n,
            "info": ref.info,
            "heldout_n": ref.heldout.n if ref.heldout is not None else None,
        },
        "generated": {"source": source, "n": n_fake},
        "seed": seed,
    }
    # Each metric's recipe as its spec writes it (those that need no sample shape are always recorded).
    entries = {name: spec.protocol(inputs) for name, spec in METRIC_SPECS.items() if spec.protocol is not None}
    return {
        **head,
        **{k: v for k, v in entries.items() if v is not None},
        "store_max": store_max,
        "image_max": image_max,
        "ganforge": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def format_table(numbers: dict[str, float]) -> str:
    """A plain two-column table of metric -> value."""
    width = max((len(k) for k in numbers), default=6)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  -----"]
    for k, v in numbers.items():
        lines.append(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) and math.isfinite(v) else f"{k:<{width}}  {v}")
    return "\n".join(lines)
