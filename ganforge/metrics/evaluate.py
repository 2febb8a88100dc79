"""The evaluation engine: stream samples through a feature extractor and compute the chosen metrics,
recording the protocol beside every number.

Memory stays flat in the number of samples: feature moments and Inception-Score split statistics
are accumulated in float64 as batches arrive, and only capped subsets (``store_max`` features,
``image_max`` images) are kept for the metrics that need samples (KID, precision/recall,
memorisation, SWD, MS-SSIM). The caps are part of the recorded protocol.
"""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import Tensor

from .. import __version__
from ..data import is_mixture, mixture_spec
from ..errors import ConfigError
from ..latent import LatentSpace
from .classes import class_coverage
from .frechet import frechet_distance_from_moments
from .kid import kid
from .memorisation import memorisation
from .modes import mixture_mode_metrics
from .msssim import ms_ssim_diversity, ms_ssim_protocol
from .precision_recall import precision_recall
from .spec import METRIC_SPECS, ProtocolInputs, get_spec, higher_is_better, parse_metrics  # noqa: F401 (re-exported)
from .stacked import ChannelExtractor, StackedModes
from .stats import StreamingMoments
from .swd import sliced_wasserstein

DEFAULT_IMAGE_METRICS = ("fd", "is", "kid", "pr", "coverage")
# Which domain classifier measures which dataset; anything else falls back to Inception.
DOMAIN_EXTRACTOR = {"digits": "digits", "fashion_mnist": "fashion"}

MODES_ONLY = "the 'modes' metric applies to the 2-D mixtures ring and grid and to stacked data only."


def _needs(metrics: Iterable[str], what: str) -> bool:
    """Whether any of `metrics` declares the need `what` (see metrics/spec.py)."""
    return any(what in METRIC_SPECS[m].needs for m in metrics)


def default_extractor(dataset_name: str) -> str:
    """The feature extractor used for `dataset_name` when the user says 'auto'."""
    return DOMAIN_EXTRACTOR.get(dataset_name, "inception")


class StreamingIS:
    """Inception Score (Salimans et al. 2016) accumulated split by split without storing logits.

    KL(p(y|x) || p(y)) averaged over a split equals E[sum p log p] - sum p(y) log p(y), so each
    split needs only the running sums of p and of p log p. Splits are contiguous blocks of the
    expected sample count, as in the reference implementation without shuffling.
    """

    def __init__(self, n_expected: int, num_classes: int, splits: int = 10) -> None:
        self.n_expected = n_expected
        self.splits = max(1, min(splits, n_expected))
        self.sum_p = torch.zeros(self.splits, num_classes, dtype=torch.float64)
        self.sum_plogp = torch.zeros(self.splits, dtype=torch.float64)
        self.count = torch.zeros(self.splits, dtype=torch.float64)
        self.seen = 0

    def update(self, logits: Tensor) -> None:
        p = torch.softmax(logits.double(), dim=1)
        plogp = (p * torch.log(p.clamp_min(1e-300))).sum(1)
        idx = torch.arange(self.seen, self.seen + len(p))
        split = (idx * self.splits // max(self.n_expected, 1)).clamp(max=self.splits - 1)
        self.sum_p.index_add_(0, split, p)
        self.sum_plogp.index_add_(0, split, plogp)
        self.count.index_add_(0, split, torch.ones(len(p), dtype=torch.float64))
        self.seen += len(p)

    def result(self) -> tuple[float, float]:
        used = self.count > 0
        py = self.sum_p[used] / self.count[used, None]
        kl = self.sum_plogp[used] / self.count[used] - (py * torch.log(py.clamp_min(1e-300))).sum(1)
        scores = torch.exp(kl)
        std = float(scores.std(unbiased=False)) if len(scores) > 1 else 0.0
        return float(scores.mean()), std


@dataclass
class FeatureStats:
    """Streaming statistics of one sample set under one extractor."""

    moments: StreamingMoments
    inception: StreamingIS | None
    features: list[Tensor] = field(default_factory=list)
    images: list[Tensor] = field(default_factory=list)
    pred_counts: Tensor | None = None
    stacked: StackedModes | None = None
    labels_correct: int = 0
    labels_seen: int = 0
    n: int = 0
    stored: int = 0
    images_stored: int = 0
    memorisation: dict[str, Any] | None = None

    def stacked_features(self) -> Tensor:
        return torch.cat(self.features) if self.features else torch.zeros(0, self.moments.dim)

    def stacked_images(self) -> Tensor:
        return torch.cat(self.images) if self.images else torch.zeros(0)


def accumulate(
    batches: Iterable[tuple[Tensor, Tensor | None]],
    extractor: Any | None,
    n_expected: int,
    store_max: int,
    image_max: int,
    is_splits: int = 10,
) -> FeatureStats:
    """Run image batches through `extractor`, keeping moments, IS sums, class counts and capped subsets."""
    dim = extractor.feature_dim if extractor is not None else 1
    k = extractor.num_classes if extractor is not None else 0
    per_image = getattr(extractor, "channels_per_image", 1)  # stacked data: one feature row per channel
    st = FeatureStats(StreamingMoments(dim), StreamingIS(n_expected * per_image, k, is_splits) if k else None)
    st.pred_counts = torch.zeros(k, dtype=torch.long) if k else None
    st.stacked = StackedModes(k) if per_image > 1 else None
    for images, labels in batches:
        images = images.float()
        if st.images_stored < image_max:
            keep = images[: image_max - st.images_stored].cpu()
            st.images.append(keep)
            st.images_stored += len(keep)
        if extractor is not None:
            out = extractor.extract(images)
            f, logits = out["features"].cpu(), out["logits"].cpu()
            st.moments.update(f)
            if st.stored < store_max:
                keep_f = f[: store_max - st.stored]
                st.features.append(keep_f)
                st.stored += len(keep_f)
            if st.stacked is not None:
                st.stacked.update(logits)
            if k:
                st.inception.update(logits)
                pred = logits.argmax(1)
                st.pred_counts += torch.bincount(pred, minlength=k)
                if labels is not None and per_image == 1:  # stacked labels are modes, not channel classes
                    st.labels_correct += int((pred == labels.cpu()).sum())
                    st.labels_seen += len(labels)
        st.n += len(images)
    return st


def dataset_batches(dataset: Any, n: int | None = None, batch_size: int = 500) -> Iterator[tuple[Tensor, Tensor | None]]:
    """The first `n` (default all) samples of an ArrayDataset in batches, images in [-1, 1]."""
    total = len(dataset) if n is None else min(n, len(dataset))
    for start in range(0, total, batch_size):
        idx = torch.arange(start, min(start + batch_size, total))
        yield dataset.get(idx)


def generator_batches(
    G: torch.nn.Module, latent: int | LatentSpace, n: int, seed: int, batch_size: int = 500,
    device: torch.device | None = None, autocast: Callable[[], Any] | None = None,
    truncation: float | None = None, y: int | None = None,
) -> Iterator[tuple[Tensor, Tensor | None]]:
    """`n` samples of generator `G` in batches, from a seed-fixed noise generator that touches no global RNG.

    `latent` is G's LatentSpace (an int means plain N(0, I) noise of that size). A conditional
    G gets uniformly drawn labels (or class `y` for all) and they are yielded with the images,
    so the conditional-accuracy metric can compare them with a classifier's predictions.
    """
    from ..generation import sample_batches

    return sample_batches(G, latent, n, seed, batch_size, device=device, autocast=autocast, truncation=truncation, y=y)


@dataclass
class Reference:
    """Precomputed statistics of the real data a sample set is compared with."""

    name: str
    info: dict[str, Any]
    stats: FeatureStats
    heldout: FeatureStats | None = None


def reference_stats(
    dataset: Any, extractor: Any | None, store_max: int, image_max: int, heldout: Any | None = None,
    batch_size: int = 500,
) -> Reference:
    """Statistics of a real dataset (and optionally its held-out split, for the memorisation check)."""
    st = accumulate(dataset_batches(dataset, None, batch_size), extractor, len(dataset), store_max, image_max)
    held = None
    if heldout is not None:
        held = accumulate(dataset_batches(heldout, None, batch_size), extractor, len(heldout), store_max, 0)
    return Reference(dataset.name, dict(getattr(dataset, "info", {})), st, held)


def min_samples(metric: str, pr_k: int = 3) -> int:
    """How many generated samples `metric` needs at least."""
    return {"pr": pr_k + 1, "kid": 2, "msssim": 2}.get(metric, 1)


def _need(metric: str, have: int, need: int, side: str, pr_k: int = 3) -> None:
    """ConfigError in user terms when `metric` gets fewer than `need` samples on `side`."""
    if have >= need:
        return
    why = f" (each sample's {pr_k} nearest neighbours plus itself)" if metric == "pr" else ""
    fix = ("raise the sample count (--n, or eval.n in a recipe)" if side == "generated"
           else "use a larger reference dataset")
    raise ConfigError(f"metric {metric!r} ({get_spec(metric).title}) needs at least {need} {side} samples"
                      f"{why}, but {have} {'was' if have == 1 else 'were'} given; {fix}, or leave {metric!r} out.")


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
    mean, std = c.fake.inception.result()
    return {f"is{c.sfx}": mean, f"is{c.sfx}_std": std}


def _kid(c: MetricInputs) -> dict[str, float]:
    _need("kid", c.fake.stored, 2, "generated")
    _need("kid", c.ref.stats.stored, 2, "reference")
    mean, std = kid(c.fake.stacked_features(), c.ref.stats.stacked_features(), num_subsets=c.kid_subsets,
                    subset_size=c.kid_subset_size, seed=c.seed)
    return {f"kid{c.sfx}": mean, f"kid{c.sfx}_std": std}


def _pr(c: MetricInputs) -> dict[str, float]:
    _need("pr", c.fake.stored, c.pr_k + 1, "generated", c.pr_k)
    _need("pr", c.ref.stats.stored, c.pr_k + 1, "reference", c.pr_k)
    p, r = precision_recall(c.ref.stats.stacked_features(), c.fake.stacked_features(), k=c.pr_k)
    return {f"precision{c.sfx}": p, f"recall{c.sfx}": r}


def _coverage(c: MetricInputs) -> dict[str, float]:
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
    "fd": _fd, "is": _is, "kid": _kid, "pr": _pr, "coverage": _coverage, "cond_acc": _cond_acc,
    "memorisation": _memorisation, "swd": _swd, "msssim": _msssim, "modes": _modes,
}


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
    inputs = MetricInputs(fake, ref, f"_{extractor_name}" if extractor_name else "", seed, kid_subsets,
                          kid_subset_size, pr_k, mixture, fake_points)
    out: dict[str, float] = {}
    for m in metrics:
        out.update(COMPUTE[m](inputs))
    return out


def class_coverage_from_counts(counts: Tensor) -> dict[str, Any]:
    """Class coverage and KL(histogram || uniform) from predicted-class counts."""
    labels = torch.repeat_interleave(torch.arange(len(counts)), counts)
    return class_coverage(labels, len(counts))


def protocol(
    metrics: list[str], extractor: Any | None, ref: Reference, n_fake: int, seed: int, store_max: int,
    image_max: int, kid_subsets: int, kid_subset_size: int, pr_k: int, source: str, is_splits: int = 10,
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
        "reference": {"dataset": ref.name, "n": ref.stats.n, "info": ref.info,
                      "heldout_n": ref.heldout.n if ref.heldout is not None else None},
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


class Evaluator:
    """Evaluates sample sources against one real dataset with one extractor; reference statistics are computed once."""

    def __init__(
        self,
        dataset: Any,
        metrics: str | Iterable[str],
        extractor: str = "auto",
        n: int = 10_000,
        seed: int = 0,
        heldout: Any | None = None,
        store_max: int = 10_000,
        image_max: int = 2_048,
        batch_size: int = 500,
        device: str | torch.device = "cpu",
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        pr_k: int = 3,
        is_splits: int = 10,
    ) -> None:
        self.dataset = dataset
        self.metrics = parse_metrics(metrics)
        self.points = dataset.kind == "points"
        self.stacked_base = dataset.info.get("base") if dataset.name.startswith("stacked_") else None
        if self.points:
            bad = [m for m in self.metrics if m != "modes"]
            if bad:
                raise ConfigError(f"metrics {', '.join(bad)} need images; for 2-D point data use 'modes'.")
        elif "modes" in self.metrics and not self.stacked_base:
            raise ConfigError(MODES_ONLY)
        if self.points and not is_mixture(dataset.name):
            raise ConfigError("the 'modes' metric needs known mixture centres: data 'ring' or 'grid'.")
        if n < 2:
            raise ConfigError(f"evaluation needs at least 2 samples, got n={n}.")
        if int(batch_size) < 1:
            raise ConfigError(f"evaluation batch size must be a positive integer, got {batch_size!r}.")
        for m in self.metrics:  # checked now, before the reference statistics are computed
            _need(m, n, min_samples(m, pr_k), "generated", pr_k)
        if "msssim" in self.metrics and not self.points:
            h, w = dataset.shape[-2:]
            try:
                ms_ssim_protocol(h, w)
            except ConfigError:
                raise ConfigError(f"metric 'msssim' compares 11x11 windows, so it needs images of at least 11x11 "
                                  f"pixels; these are {h}x{w}. Leave msssim out of the metrics.") from None
        self.n, self.seed, self.batch_size = n, seed, batch_size
        self.store_max, self.image_max = store_max, image_max
        self.kid_subsets, self.kid_subset_size, self.pr_k = kid_subsets, kid_subset_size, pr_k
        self.is_splits = is_splits
        # Point data has no extractor: its 'modes' reads the points themselves.
        needs_features = not self.points and (_needs(self.metrics, "features") or _needs(self.metrics, "logits"))
        self.extractor_name = None
        self.extractor = None
        if needs_features:
            from .extractors import get_extractor

            base_name = self.stacked_base or dataset.name
            self.extractor_name = default_extractor(base_name) if extractor == "auto" else extractor
            self.extractor = get_extractor(self.extractor_name, device=device)
            if self.stacked_base:  # every channel is one image of the base dataset
                self.extractor = ChannelExtractor(self.extractor)
        if self.points:
            self.image_max = n  # the points themselves are the "images" the mode metric needs
        elif not _needs(self.metrics, "images"):
            # Only the memorisation picture needs samples: its first rows.
            self.image_max = 8 if "memorisation" in self.metrics else 0
        self.heldout = heldout
        self._ref: Reference | None = None

    @property
    def reference(self) -> Reference:
        """Reference statistics, computed on first use."""
        if self._ref is None:
            heldout = self.heldout if _needs(self.metrics, "heldout") else None
            img_max = self.image_max if _needs(self.metrics, "images") else 0
            data = self.dataset
            if data.name == "folder":
                # A folder is read in path order, usually class by class; the capped subsets (KID, PR, MS-SSIM)
                # must not all come from the first classes, so they are drawn in a seeded random order.
                data = data.subset(torch.randperm(len(data), generator=torch.Generator().manual_seed(self.seed)))
            self._ref = reference_stats(data, self.extractor, self.store_max, img_max, heldout, self.batch_size)
        return self._ref

    def evaluate(self, batches: Iterable[tuple[Tensor, Tensor | None]], n: int, source: str) -> dict[str, Any]:
        """{'metrics': numbers, 'protocol': how they were computed} for `n` samples from `batches`."""
        if _needs(self.metrics, "reference"):
            ref = self.reference
        else:  # IS, coverage, modes, ...: the real data's statistics are not needed, so not computed
            ref = Reference(self.dataset.name, dict(getattr(self.dataset, "info", {})),
                            FeatureStats(StreamingMoments(1), None))
        fake = accumulate(batches, self.extractor, n, self.store_max, self.image_max, self.is_splits)
        mixture = None
        points = None
        if self.points:

            mixture = mixture_spec(self.dataset.name)
            points = fake.stacked_images()
        numbers = compute_metrics(
            fake, ref, self.metrics, self.extractor_name, self.seed, self.kid_subsets, self.kid_subset_size,
            self.pr_k, mixture, points,
        )
        # The splits StreamingIS really used (fewer than asked when there are fewer samples).
        splits = fake.inception.splits if fake.inception is not None else self.is_splits
        shape = tuple(fake.stacked_images().shape[-2:]) if "msssim" in self.metrics else None
        proto = protocol(self.metrics, self.extractor, ref, fake.n, self.seed, self.store_max, self.image_max,
                         self.kid_subsets, self.kid_subset_size, self.pr_k, source, splits, shape)
        result: dict[str, Any] = {"metrics": numbers, "protocol": proto}
        if fake.memorisation is not None and fake.images_stored:
            from .memorisation import memorisation_grid

            rows = min(8, fake.images_stored)
            nn_idx = fake.memorisation["gen_nn_index"][:rows]
            # Stored reference features are the dataset's first samples in order, so indices map directly.
            train_imgs = self.dataset.get(torch.arange(len(self.dataset))[: ref.stats.stored])[0]
            result["memorisation_grid"] = memorisation_grid(fake.stacked_images()[:rows], train_imgs, nn_idx, rows)
        return result

    def evaluate_generator(self, G: torch.nn.Module, latent: int | LatentSpace, autocast: Callable[[], Any] | None = None,
                           source: str = "generator", truncation: float | None = None) -> dict[str, Any]:
        """Evaluate `self.n` samples of generator `G` (drawn from seed-fixed noise, truncated if asked)."""
        batches = generator_batches(G, latent, self.n, self.seed, self.batch_size, autocast=autocast,
                                    truncation=truncation)
        return self.evaluate(batches, self.n, source)
