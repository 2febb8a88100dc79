"""The evaluation engine: stream samples through a feature extractor and compute the chosen metrics,
recording the protocol beside every number.

Memory stays flat in the number of samples: feature moments and Inception-Score split statistics
are accumulated in float64 as batches arrive, and only capped subsets (``store_max`` features,
``image_max`` images) are kept for the metrics that need samples (KID, precision/recall,
memorisation, SWD, MS-SSIM). The caps are part of the recorded protocol.

The streaming statistics live in `accumulate.py`, the per-metric computation and the protocol in
`compute.py`; their public names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ..data import is_mixture, mixture_spec
from ..errors import ConfigError
from ..latent import LatentSpace
from .accumulate import (  # noqa: F401 (re-exported)
    FeatureStats,
    Reference,
    StreamingIS,
    accumulate,
    dataset_batches,
    generator_batches,
    merge_feature_stats,
    reference_stats,
)
from .compute import (  # noqa: F401 (re-exported)
    COMPUTE,
    MODES_ONLY,
    MetricInputs,
    _need,
    class_coverage_from_counts,
    compute_metrics,
    format_table,
    min_samples,
    protocol,
)
from .msssim import ms_ssim_protocol
from .spec import METRIC_SPECS, ProtocolInputs, get_spec, higher_is_better, parse_metrics  # noqa: F401 (re-exported)
from .stacked import ChannelExtractor
from .stats import StreamingMoments

if TYPE_CHECKING:
    from .extractors import Extractor

DEFAULT_IMAGE_METRICS = ("fd", "is", "kid", "pr", "coverage")
# Which domain classifier measures which dataset; anything else falls back to Inception.
DOMAIN_EXTRACTOR = {"digits": "digits", "fashion_mnist": "fashion"}


def _needs(metrics: Iterable[str], what: str) -> bool:
    """Whether any of `metrics` declares the need `what` (see metrics/spec.py)."""
    return any(what in METRIC_SPECS[m].needs for m in metrics)


def default_extractor(dataset_name: str) -> str:
    """The feature extractor used for `dataset_name` when the user says 'auto'."""
    return DOMAIN_EXTRACTOR.get(dataset_name, "inception")


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
                raise ConfigError(
                    f"metric 'msssim' compares 11x11 windows, so it needs images of at least 11x11 "
                    f"pixels; these are {h}x{w}. Leave msssim out of the metrics."
                ) from None
        self.n, self.seed, self.batch_size = n, seed, batch_size
        self.store_max, self.image_max = store_max, image_max
        self.kid_subsets, self.kid_subset_size, self.pr_k = kid_subsets, kid_subset_size, pr_k
        self.is_splits = is_splits
        # Point data has no extractor: its 'modes' reads the points themselves.
        needs_features = not self.points and (_needs(self.metrics, "features") or _needs(self.metrics, "logits"))
        self.extractor_name = None
        self.extractor: Extractor | ChannelExtractor | None = None
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
        fake = accumulate(batches, self.extractor, n, self.store_max, self.image_max, self.is_splits)
        return self.finish(fake, source)

    def finish(self, fake: FeatureStats, source: str) -> dict[str, Any]:
        """The metrics and protocol of accumulated sample statistics `fake`."""
        if _needs(self.metrics, "reference"):
            ref = self.reference
        else:  # IS, coverage, modes, ...: the real data's statistics are not needed, so not computed
            ref = Reference(
                self.dataset.name, dict(getattr(self.dataset, "info", {})), FeatureStats(StreamingMoments(1), None)
            )
        mixture = None
        points = None
        if self.points:
            mixture = mixture_spec(self.dataset.name)
            points = fake.stacked_images()
        numbers = compute_metrics(
            fake,
            ref,
            self.metrics,
            self.extractor_name,
            self.seed,
            self.kid_subsets,
            self.kid_subset_size,
            self.pr_k,
            mixture,
            points,
        )
        # The splits StreamingIS really used (fewer than asked when there are fewer samples).
        splits = fake.inception.splits if fake.inception is not None else self.is_splits
        shape = tuple(fake.stacked_images().shape[-2:]) if "msssim" in self.metrics else None
        proto = protocol(
            self.metrics,
            self.extractor,
            ref,
            fake.n,
            self.seed,
            self.store_max,
            self.image_max,
            self.kid_subsets,
            self.kid_subset_size,
            self.pr_k,
            source,
            splits,
            shape,
        )
        result: dict[str, Any] = {"metrics": numbers, "protocol": proto}
        if fake.memorisation is not None and fake.images_stored:
            from .memorisation import memorisation_grid

            rows = min(8, fake.images_stored)
            nn_idx = fake.memorisation["gen_nn_index"][:rows]
            # Stored reference features are the dataset's first samples in order, so indices map directly.
            train_imgs = self.dataset.get(torch.arange(len(self.dataset))[: ref.stats.stored])[0]
            result["memorisation_grid"] = memorisation_grid(fake.stacked_images()[:rows], train_imgs, nn_idx, rows)
        return result

    def evaluate_generator(
        self,
        G: torch.nn.Module,
        latent: int | LatentSpace,
        autocast: Callable[[], Any] | None = None,
        source: str = "generator",
        truncation: float | None = None,
        collective: Any | None = None,
    ) -> dict[str, Any]:
        """Evaluate `self.n` samples of generator `G` (drawn from seed-fixed noise, truncated if asked).

        With a `collective` (training/distributed.Collective: rank, world, gather, broadcast) every rank
        generates and scores its contiguous share of the same samples; rank 0 merges the statistics and
        computes the metrics, and every rank returns its result: the numbers one process would get.
        """
        from ..generation import sample_batches, shard_batches
        from ..models.progan import growth_note

        note = growth_note(G)  # a ProGAN run mid-growth: the protocol says at which resolution the images were made
        source = source if note is None else f"{source} ({note})"
        if collective is None or collective.world == 1:
            batches = generator_batches(
                G, latent, self.n, self.seed, self.batch_size, autocast=autocast, truncation=truncation
            )
            return self.evaluate(batches, self.n, source)
        shard = (collective.rank, collective.world)
        batches = sample_batches(
            G, latent, self.n, self.seed, self.batch_size, autocast=autocast, truncation=truncation, shard=shard
        )
        start = shard_batches(self.n, self.batch_size, *shard)[0] * self.batch_size
        part = accumulate(batches, self.extractor, self.n, self.store_max, self.image_max, self.is_splits, start=start)
        parts = collective.gather(part)
        result = None
        if collective.rank == 0:
            result = self.finish(
                merge_feature_stats(parts, self.store_max, self.image_max), f"{source}, {collective.world} processes"
            )
        return collective.broadcast(result)
