"""One declaration per metric: what it needs, the result keys it writes, which way is better, how it was computed.

The engine (`evaluate.py`), the recipe's eval section (`config/schema.py`), the HTML report, best-checkpoint
selection and the benchmarks all read `METRIC_SPECS`, so adding a metric means adding one `MetricSpec`
here and one compute function in the engine (`compute.py`). This module imports no torch, so the config
and the report can read directions and names without loading the engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, choices_message

# What a metric may need. "features"/"logits": an extractor's embeddings / class scores of every sample;
# "images": raw samples kept (capped by image_max); "classes": the labels a conditional generator was given;
# "reference": statistics of the real data; "heldout": a held-out real split (the memorisation check).
NEEDS = frozenset({"features", "logits", "images", "classes", "reference", "heldout"})
SUFFIX = "{x}"  # stands for the extractor's name in a result key: "fd{x}" -> "fd_digits"


@dataclass(frozen=True)
class ProtocolInputs:
    """The settings an evaluation ran with, from which each metric's protocol entry is written."""

    is_splits: int
    kid_subsets: int
    kid_subset_size: int
    pr_k: int
    n_store: int  # generated features kept for the sample-based metrics
    ref_stored: int  # reference features kept
    image_shape: tuple[int, ...] | None = None  # (H, W) of the samples when a metric needs it


@dataclass(frozen=True)
class MetricSpec:
    """A metric as the rest of the package sees it; its numbers come from the engine's compute function."""

    name: str  # what users write in eval.metrics / --metrics
    title: str  # the metric in user terms, for messages
    needs: frozenset[str]
    keys: tuple[str, ...]  # result keys it writes; "{x}" is replaced by "_<extractor>"
    higher: frozenset[str] = frozenset()  # the keys (templates) where larger is better; the others lower
    protocol: Callable[[ProtocolInputs], Any] | None = None  # its entry in the recorded protocol

    def __post_init__(self) -> None:
        if not self.needs <= NEEDS or not self.higher <= set(self.keys):
            raise ValueError(f"metric spec {self.name!r}: unknown needs or a direction for an undeclared key")

    def result_keys(self, extractor: str | None) -> list[str]:
        """The keys this metric writes when features come from `extractor` (None: no extractor)."""
        return [_fill(k, extractor) for k in self.keys]


def _fill(template: str, extractor: str | None) -> str:
    return template.replace(SUFFIX, f"_{extractor}" if extractor else "")


def _msssim_protocol(p: ProtocolInputs) -> Any:
    if p.image_shape is None:
        return None
    from .msssim import ms_ssim_protocol  # torch-heavy: only when an evaluation records it

    return ms_ssim_protocol(p.image_shape[-2], p.image_shape[-1])


def _spec(
    name: str,
    needs: Iterable[str],
    keys: Iterable[str],
    higher: Iterable[str] = (),
    title: str | None = None,
    protocol: Callable[[ProtocolInputs], Any] | None = None,
) -> MetricSpec:
    return MetricSpec(name, title or name, frozenset(needs), tuple(keys), frozenset(higher), protocol)


# In the order users see them listed.
METRIC_SPECS: dict[str, MetricSpec] = {
    s.name: s
    for s in (
        _spec(
            "fd",
            ["features", "reference"],
            ["fd{x}"],
            title="Frechet distance",
            protocol=lambda p: "Frechet distance of float64 streaming moments (eigenvalue form of Tr sqrt(S1 S2))",
        ),
        _spec(
            "is",
            ["logits"],
            ["is{x}", "is{x}_std"],
            higher=["is{x}"],
            title="Inception Score",
            protocol=lambda p: f"exp E KL(p(y|x) || p(y)) over {p.is_splits} contiguous splits, streamed",
        ),
        _spec(
            "kid",
            ["features", "reference"],
            ["kid{x}", "kid{x}_std"],
            title="KID",
            protocol=lambda p: {
                "subsets": p.kid_subsets,
                "subset_size": min(p.kid_subset_size, p.n_store, p.ref_stored),
                "kernel": "(x.y/d + 1)^3",
                "features_used": [p.n_store, p.ref_stored],
            },
        ),
        _spec(
            "pr",
            ["features", "reference"],
            ["precision{x}", "recall{x}"],
            higher=["precision{x}", "recall{x}"],
            title="precision/recall",
            protocol=lambda p: {
                "k": p.pr_k,
                "features_used": [p.ref_stored, p.n_store],
                "method": "Kynkaanniemi et al. 2019",
            },
        ),
        _spec("coverage", ["logits"], ["coverage{x}", "kl_uniform{x}"], higher=["coverage{x}"], title="class coverage"),
        _spec("cond_acc", ["logits", "classes"], ["cond_acc{x}"], higher=["cond_acc{x}"], title="conditional accuracy"),
        # The ratio of nearest-training-neighbour distances, generated / held-out: below 1 the samples sit closer
        # to the training set than fresh real data does, i.e. the generator copies; so larger is better.
        _spec(
            "memorisation",
            ["features", "reference", "heldout"],
            ["memorisation_ratio{x}"],
            higher=["memorisation_ratio{x}"],
            title="memorisation",
        ),
        _spec("swd", ["images", "reference"], ["swd_x1e3"], title="sliced Wasserstein distance"),
        # msssim_real is the data's own diversity, a yardstick; samples far above it have collapsed.
        _spec(
            "msssim",
            ["images", "reference"],
            ["msssim", "msssim_real"],
            title="MS-SSIM diversity",
            protocol=_msssim_protocol,
        ),
        # Stacked images: per-channel classifier logits; 2-D mixtures: the points and the known centres.
        _spec(
            "modes",
            ["logits"],
            ["modes", "high_quality", "kl_modes"],
            higher=["modes", "high_quality"],
            title="mode count",
        ),
    )
}
# Who declared each registered metric (ganforge.register_metric): the same definition may declare it again.
_ORIGINS: dict[str, Any] = {}


def get_spec(name: str) -> MetricSpec:
    """The spec of metric `name`; an unknown name raises ConfigError listing the choices."""
    if name not in METRIC_SPECS:
        raise ConfigError(choices_message("metric", name, METRIC_SPECS))
    return METRIC_SPECS[name]


def parse_metrics(spec: str | Iterable[str]) -> list[str]:
    """'fd,is,kid' or a list -> validated metric names (unknown ones raise ConfigError listing the choices)."""
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s).strip() for s in spec]
    names = [n for n in names if n]
    for n in names:
        get_spec(n)
    if not names:
        raise ConfigError("no metrics asked for. Valid choices: " + ", ".join(METRIC_SPECS) + ".")
    return list(dict.fromkeys(names))


def metric_keys(metrics: str | Iterable[str], extractor: str | None) -> dict[str, str]:
    """Result key by its extractor-free stem for `metrics`, e.g. {'fd': 'fd_fashion', 'recall': 'recall_fashion'}."""
    return {_fill(k, None): _fill(k, extractor) for m in parse_metrics(metrics) for k in METRIC_SPECS[m].keys}


def _pattern(template: str) -> re.Pattern[str]:
    # Extractor names hold no underscore, so "is{x}" does not also match "is_digits_std".
    return re.compile(
        "".join("(?:_[A-Za-z0-9]+)?" if part == SUFFIX else re.escape(part) for part in re.split(r"(\{x\})", template))
    )


# Every declared key with its direction; the longest literal first, so "is{x}_std" wins over "is{x}" for "is_std".
# Keys no spec declares (older logs, other tools' names such as inception_score): larger is better when the
# name starts like a higher-is-better key. Both are rebuilt when a metric is added (add_spec).
_DIRECTIONS: list[tuple[re.Pattern[str], bool, int]] = []
_HIGHER_STEMS: tuple[str, ...] = ()


def _index_directions() -> None:
    global _DIRECTIONS, _HIGHER_STEMS
    _DIRECTIONS = sorted(
        ((_pattern(k), k in s.higher, len(k.replace(SUFFIX, ""))) for s in METRIC_SPECS.values() for k in s.keys),
        key=lambda t: -t[2],
    )
    _HIGHER_STEMS = tuple(sorted({_fill(k, None) for s in METRIC_SPECS.values() for k in s.higher} | {"inception"}))


_index_directions()


def add_spec(spec: MetricSpec, origin: Any = None) -> None:
    """Declare a new metric (ganforge.register_metric); a name already declared raises ConfigError.

    The same definition (`origin`: a notebook cell run again, a script that is also its recipe's plugin)
    replaces its earlier declaration instead.
    """
    from ..registry import same_definition

    if spec.name in METRIC_SPECS:
        if spec.name not in _ORIGINS or not same_definition(_ORIGINS[spec.name], origin):
            raise ConfigError(f"metric {spec.name!r} is already declared; choose another name.")
        del METRIC_SPECS[spec.name]
    taken = {_fill(k, None) for s in METRIC_SPECS.values() for k in s.keys}
    clash = [k for k in spec.keys if _fill(k, None) in taken]
    if clash:
        raise ConfigError(f"metric {spec.name!r}: result key(s) {clash} are written by another metric already.")
    METRIC_SPECS[spec.name] = spec
    _ORIGINS[spec.name] = origin
    _index_directions()


def higher_is_better(key: str) -> bool:
    """Whether a larger value of the result key `key` (e.g. 'fd_fashion', 'eval/recall_digits') is better."""
    key = key.split("/", 1)[-1]
    for pattern, higher, _ in _DIRECTIONS:
        if pattern.fullmatch(key):
            return higher
    return not key.endswith("_std") and any(key == s or key.startswith(s + "_") for s in _HIGHER_STEMS)
