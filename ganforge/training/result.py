"""What a training run produced, as one public object (`Trainer.result`), so callers need no trainer internals."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ..latent import LatentSpace


@dataclass(frozen=True)
class RunResult:
    """A run's folder, the generator to evaluate and its counts (after a finished, failed or stopped run alike)."""

    run_dir: Path
    generator: nn.Module | None  # the EMA copy when kept, else G: what evaluation and sampling use (None: translators)
    ema: bool  # whether `generator` is the EMA copy
    latent: LatentSpace
    shape: tuple[int, ...]
    steps: int  # training steps done (G steps for every shipped game)
    d_updates: int | None  # D optimiser steps the game counted (None: a game that does not count them)
    g_updates: int | None
    real_images: int  # real training images the data stream delivered, over all resumed segments
    labelled: Any | None  # the labelled subset (ArrayDataset) of a semi-supervised game, else None
    wall_time_s: float  # training time summed over resumed segments (no evaluation or setup)
