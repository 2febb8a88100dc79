"""Exponential moving average of generator weights (Yazici et al. 2019), built on torch's AveragedModel."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel


def warmup_ema_fn(decay: float) -> Callable[[Sequence[Tensor], Sequence[Tensor], Tensor | int], None]:
    """EMA update whose decay ramps up as min(decay, (1 + n) / (10 + n)) after n updates.

    The ramp (as in TensorFlow's ExponentialMovingAverage with num_updates) keeps a short run's
    average from being dominated by the random initial weights: with a fixed 0.999, 37% of the
    average after 1,000 steps would still be the initialisation.
    """

    def update(ema: Sequence[Tensor], current: Sequence[Tensor], num_averaged: Tensor | int) -> None:
        n = float(num_averaged)
        d = min(decay, (1.0 + n) / (10.0 + n))
        floats = [(e, c) for e, c in zip(ema, current) if e.is_floating_point()]
        if floats:
            torch._foreach_lerp_([e for e, _ in floats], [c for _, c in floats], 1.0 - d)
        for e, c in zip(ema, current):
            if not e.is_floating_point():  # counters such as BN's num_batches_tracked
                e.copy_(c)

    return update


def make_ema(model: nn.Module, decay: float) -> AveragedModel:
    """An EMA copy of `model`; buffers (batch-norm statistics) are averaged too."""
    ema = AveragedModel(model, multi_avg_fn=warmup_ema_fn(decay), use_buffers=True)
    ema.requires_grad_(False)
    return ema
