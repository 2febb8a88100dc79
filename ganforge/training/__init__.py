"""The training loop and what it owns: optimisers, precision, EMA, checkpoints."""

from .hardware import resolve_device
from .trainer import Trainer

__all__ = ["Trainer", "resolve_device"]
