"""Optimisers and learning-rate schedules built from the recipe."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from ..config import OptimizerConfig
from ..errors import ConfigError, choices_message

OPTIMIZERS = ("adam", "rmsprop", "sgd")


def build_optimizer(params: Iterable[nn.Parameter], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """Adam, RMSProp or SGD with the recipe's hyper-parameters."""
    params = [p for p in params if p.requires_grad]
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps, weight_decay=cfg.weight_decay, momentum=cfg.momentum
        )
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise ConfigError(choices_message("optimizer", cfg.name, OPTIMIZERS))


def build_scheduler(opt: torch.optim.Optimizer, cfg: OptimizerConfig, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warm-up over `warmup` steps, then constant or linear decay to 0 at `total_steps`."""
    warmup = max(cfg.warmup, 0)

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if cfg.schedule == "linear":
            return max(0.0, 1.0 - (step - warmup) / max(1, total_steps - warmup))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)
