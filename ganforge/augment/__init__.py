"""Differentiable augmentation of every image D sees, for training on small datasets (the recipe's `augment:`).

`AUGMENTATIONS` holds the choices by name: `off`, `diffaugment` (Zhao et al. 2020) and `ada` (Karras et
al. 2020, with its adaptive probability). A game applies the chosen one to real and fake images alike,
in D's step and in G's step, before any penalty sees them (games/standard.py, `d_input`); gradients
flow through it to G. `build_augmentation` turns the recipe's section into one.
"""

from __future__ import annotations

from typing import Any

from . import ada, diffaugment  # noqa: F401  (they register themselves)
from .ada import AdaController, AdaPipeline
from .base import AUGMENTATIONS, Augmentation, Identity
from .diffaugment import DiffAugment

__all__ = [
    "AUGMENTATIONS",
    "AdaController",
    "AdaPipeline",
    "Augmentation",
    "DiffAugment",
    "Identity",
    "build_augmentation",
]


def build_augmentation(name: str = "off", args: dict[str, Any] | None = None) -> Augmentation:
    """The augmentation `name` with `args` (checked against its signature; unknown names list the choices)."""
    return AUGMENTATIONS.build(name, **(args or {}))
