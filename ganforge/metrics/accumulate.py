"""Streaming statistics of a sample set (moments, IS sums, capped subsets), batch sources and reference statistics."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import Tensor

from ..errors import ConfigError
from ..latent import LatentSpace
from .stacked import StackedModes
from .stats import StreamingMoments


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
    start: int = 0,
) -> FeatureStats:
    """Run image batches through `extractor`, keeping moments, IS sums, class counts and capped subsets.

    `start`: the index of the first sample among the `n_expected` (a shard of a distributed evaluation),
    which places its samples in the right Inception-score splits.
    """
    dim = extractor.feature_dim if extractor is not None else 1
    k = extractor.num_classes if extractor is not None else 0
    per_image = getattr(extractor, "channels_per_image", 1)  # stacked data: one feature row per channel
    st = FeatureStats(StreamingMoments(dim), StreamingIS(n_expected * per_image, k, is_splits) if k else None)
    st.pred_counts = torch.zeros(k, dtype=torch.long) if k else None
    st.stacked = StackedModes(k) if per_image > 1 else None
    if st.inception is not None:
        st.inception.seen = start * per_image
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
                assert st.inception is not None and st.pred_counts is not None  # both made when k > 0
                st.inception.update(logits)
                pred = logits.argmax(1)
                st.pred_counts += torch.bincount(pred, minlength=k)
                if labels is not None and per_image == 1:  # stacked labels are modes, not channel classes
                    st.labels_correct += int((pred == labels.cpu()).sum())
                    st.labels_seen += len(labels)
        st.n += len(images)
    return st


def merge_feature_stats(parts: list[FeatureStats], store_max: int, image_max: int) -> FeatureStats:
    """One sample set's statistics from its shards' (in sample order): what one `accumulate` over all of them gives.

    Moments merge exactly (Chan et al.'s parallel update), counts and IS sums add, and the capped
    subsets are the first `store_max` features and `image_max` images in sample order.
    """
    first = parts[0]
    out = FeatureStats(StreamingMoments(first.moments.dim), None)
    if first.inception is not None:
        inc = StreamingIS(first.inception.n_expected, first.inception.sum_p.shape[1], first.inception.splits)
        for p in parts:
            assert p.inception is not None  # every shard has the first's structure
            inc.sum_p += p.inception.sum_p
            inc.sum_plogp += p.inception.sum_plogp
            inc.count += p.inception.count
        inc.seen = int(inc.count.sum())
        out.inception = inc
    out.pred_counts = (
        None
        if first.pred_counts is None
        else sum((cast(Tensor, p.pred_counts) for p in parts[1:]), first.pred_counts.clone())
    )
    if first.stacked is not None:
        out.stacked = StackedModes(first.stacked.k, first.stacked.confidence)
        for p in parts:
            assert p.stacked is not None
            out.stacked.counts += p.stacked.counts
            out.stacked.high_quality += p.stacked.high_quality
            out.stacked.n += p.stacked.n
    for p in parts:
        out.moments.merge(p.moments)
        out.labels_correct += p.labels_correct
        out.labels_seen += p.labels_seen
        out.n += p.n
    feats = [f for p in parts for f in p.features]
    if feats:
        out.features = [torch.cat(feats)[:store_max]]
        out.stored = len(out.features[0])
    imgs = [x for p in parts for x in p.images]
    if imgs:
        out.images = [torch.cat(imgs)[:image_max]]
        out.images_stored = len(out.images[0])
    return out


def dataset_batches(
    dataset: Any, n: int | None = None, batch_size: int = 500
) -> Iterator[tuple[Tensor, Tensor | None]]:
    """The first `n` (default all) samples of an ArrayDataset in batches, images in [-1, 1]."""
    total = len(dataset) if n is None else min(n, len(dataset))
    for start in range(0, total, batch_size):
        idx = torch.arange(start, min(start + batch_size, total))
        yield dataset.get(idx)


def generator_batches(
    G: torch.nn.Module,
    latent: int | LatentSpace,
    n: int,
    seed: int,
    batch_size: int = 500,
    device: torch.device | None = None,
    autocast: Callable[[], Any] | None = None,
    truncation: float | None = None,
    y: int | None = None,
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
    dataset: Any,
    extractor: Any | None,
    store_max: int,
    image_max: int,
    heldout: Any | None = None,
    batch_size: int = 500,
) -> Reference:
    """Statistics of a real dataset (and optionally its held-out split, for the memorisation check).

    Kept in the reference cache (ganforge.metrics.refcache) under a hash of the images, the extractor and
    these settings, so the next process that scores against the same data reads them instead.
    """
    from .refcache import cached, reference_key

    def compute() -> Reference:
        st = accumulate(dataset_batches(dataset, None, batch_size), extractor, len(dataset), store_max, image_max)
        held = None
        if heldout is not None:
            held = accumulate(dataset_batches(heldout, None, batch_size), extractor, len(heldout), store_max, 0)
        return Reference(dataset.name, dict(getattr(dataset, "info", {})), st, held)

    ref = cached(reference_key(dataset, extractor, store_max, image_max, heldout, batch_size), compute)
    # The name and description are the caller's dataset's (a cached copy may have come from an identical one).
    ref.name, ref.info = dataset.name, dict(getattr(dataset, "info", {}))
    return ref


def inception_score(logits: Tensor, splits: int = 10) -> tuple[float, float]:
    """Inception Score mean and std over `splits` contiguous splits of class logits (Salimans et al. 2016, Sec. 4)."""
    from .stats import as_tensor

    x = as_tensor(logits, "logits", ndim=2)
    if len(x) < 1 or x.shape[1] < 2:
        raise ConfigError(f"logits must be (N, K) with N >= 1 and K >= 2 classes, got {tuple(x.shape)}.")
    if int(splits) < 1:
        raise ConfigError(f"splits must be >= 1, got {splits}.")
    score = StreamingIS(len(x), x.shape[1], int(splits))
    score.update(x)
    return score.result()
