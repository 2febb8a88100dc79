"""Registries of generator and discriminator families, and the builders that check their arguments."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..registry import Registry

GENERATORS: Registry[type[nn.Module]] = Registry("generator")
DISCRIMINATORS: Registry[type[nn.Module]] = Registry("discriminator")


def build_generator(name: str, z_dim: int, shape: tuple[int, ...], args: dict[str, Any]) -> nn.Module:
    """Build the generator family `name` for latent size `z_dim` and output `shape` ((C,H,W) or (D,))."""
    return GENERATORS.build(name, z_dim=z_dim, shape=tuple(shape), **args)


def build_discriminator(name: str, shape: tuple[int, ...], args: dict[str, Any]) -> nn.Module:
    """Build the discriminator family `name` for inputs of `shape`; it returns one logit per sample."""
    return DISCRIMINATORS.build(name, shape=tuple(shape), **args)
