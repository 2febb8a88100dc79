"""EMA of generator weights: warm-up ramp, then the configured decay."""

from __future__ import annotations

import torch
from torch import nn

from ganforge.training.ema import make_ema


def test_ema_tracks_with_warmup_then_decay() -> None:
    net = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(0.0)
    ema = make_ema(net, decay=0.9)
    ema.update_parameters(net)  # first update copies
    assert ema.module.weight.item() == 0.0
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update_parameters(net)  # n=1: decay min(0.9, 2/11)
    assert abs(ema.module.weight.item() - (1 - 2 / 11)) < 1e-6
    for _ in range(200):
        ema.update_parameters(net)
    assert abs(ema.module.weight.item() - 1.0) < 1e-6
    w = ema.module.weight.item()
    with torch.no_grad():
        net.weight.fill_(2.0)
    ema.update_parameters(net)  # late: the configured decay
    assert abs(ema.module.weight.item() - (0.9 * w + 0.1 * 2.0)) < 1e-6


def test_ema_with_batch_norm_buffers() -> None:
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    ema = make_ema(net, decay=0.99)
    for _ in range(3):
        net(torch.randn(8, 2))
        ema.update_parameters(net)
    assert ema.module[1].num_batches_tracked.item() == 3
    assert torch.allclose(ema.module[1].running_mean, net[1].running_mean, atol=0.5)
