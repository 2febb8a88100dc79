"""Mode counting on stacked data: each channel classified by the base dataset's domain classifier.

Protocol of Metz et al. 2017 (Unrolled GAN) and Lin et al. 2018 (PacGAN) on stacked MNIST: an
image's mode is the triple of its channels' predicted classes (1,000 modes for 10 classes); report
the modes that at least one sample falls in and KL(mode histogram || uniform). We add the share of
"high-quality" samples, whose three channels are each classified with softmax confidence >=
CONFIDENCE, as the toy benchmark reports for its mixtures.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..data.stacked import CHANNELS

CONFIDENCE = 0.5  # the predicted class outweighs all the others together


def mode_metrics_from_counts(counts: Tensor, high_quality: int, n: int) -> dict[str, Any]:
    """Modes covered, KL(histogram || uniform) and high-quality share from a mode histogram of n samples."""
    k = len(counts)
    p = counts.to(torch.float64) / max(n, 1)
    nz = p > 0
    kl = float((p[nz] * torch.log(p[nz] * k)).sum()) if n else math.log(k)
    return {"modes": int(nz.sum()), "num_modes": k, "kl": max(kl, 0.0), "high_quality": high_quality / max(n, 1)}


class StackedModes:
    """Streams per-channel logits (3 rows per image, in channel order) into a mode histogram."""

    def __init__(self, num_classes: int, confidence: float = CONFIDENCE) -> None:
        self.k = num_classes
        self.confidence = confidence
        self.counts = torch.zeros(num_classes**CHANNELS, dtype=torch.long)
        self.high_quality = 0
        self.n = 0

    def update(self, logits: Tensor) -> None:
        p = torch.softmax(logits.double(), dim=1).reshape(-1, CHANNELS, self.k)
        conf, pred = p.max(dim=2)
        mode = (pred[:, 0] * self.k + pred[:, 1]) * self.k + pred[:, 2]
        self.counts += torch.bincount(mode.cpu(), minlength=len(self.counts))
        self.high_quality += int((conf >= self.confidence).all(dim=1).sum())
        self.n += len(mode)

    def result(self) -> dict[str, Any]:
        return mode_metrics_from_counts(self.counts, self.high_quality, self.n)


class ChannelExtractor:
    """Scores each channel of a stacked image as one grey image of the base dataset (features and logits per channel)."""

    channels_per_image = CHANNELS

    def __init__(self, base: Any) -> None:
        self.base = base
        self.name = base.name
        self.feature_dim = base.feature_dim
        self.num_classes = base.num_classes

    def extract(self, images: Tensor, batch_size: int | None = None) -> dict[str, Tensor]:
        n, c, h, w = images.shape
        if c != CHANNELS:
            raise ValueError(f"stacked images have {CHANNELS} channels, got {c}")
        return self.base.extract(images.reshape(n * c, 1, h, w), batch_size)

    def protocol(self) -> dict[str, Any]:
        return {
            **self.base.protocol(),
            "channels": "each of the 3 channels scored as one grey image (stacked data)",
            "stacked_confidence": self.confidence_note(),
        }

    @staticmethod
    def confidence_note() -> str:
        return f"high quality: all three channels classified with softmax confidence >= {CONFIDENCE}"
