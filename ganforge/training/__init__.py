"""The training loop and what it owns: optimisers, precision, EMA, checkpoints."""

from .trainer import Trainer, resolve_device

__all__ = ["Trainer", "resolve_device"]
