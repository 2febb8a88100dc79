"""Registries of generator and discriminator families, and the builders that check their arguments."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from ..errors import ConfigError
from ..registry import Registry

GENERATORS: Registry[type[nn.Module]] = Registry("generator")
DISCRIMINATORS: Registry[type[nn.Module]] = Registry("discriminator")
# Image-to-image generators (CycleGAN): an image in, an image of the same shape out; no noise input.
TRANSLATORS: Registry[type[nn.Module]] = Registry("translator")

# What each trainer-supplied argument means, for the error when a family cannot take it.
_EXTRA_MEANING = {
    "num_classes": "class-conditional (model.conditional: true)",
    "categorical": "an InfoGAN Q head (model.latent codes)",
    "continuous": "an InfoGAN Q head (model.latent codes)",
}


def _families_accepting(reg: Registry[type[nn.Module]], key: str) -> list[str]:
    return [n for n in reg.names() if key in inspect.signature(reg.get(n)).parameters]


def _build(
    reg: Registry[type[nn.Module]], name: str, args: dict[str, Any], extras: dict[str, Any], **fixed: Any
) -> nn.Module:
    cls = reg.get(name)
    params = inspect.signature(cls).parameters
    for key in extras:
        if key in args:
            raise ConfigError(
                f"{reg.kind} {name!r}: do not set {key!r} in its args; the trainer sets it from the recipe "
                f"(model.conditional / model.latent)."
            )
        if key not in params:
            able = ", ".join(_families_accepting(reg, key)) or "none"
            raise ConfigError(
                f"{reg.kind} {name!r} cannot be {_EXTRA_MEANING.get(key, key)}; {reg.kind} families that can: {able}."
            )
    net = reg.build(name, **fixed, **args, **extras)
    if any(p.numel() == 0 for p in net.parameters()):
        shown = ", ".join(f"{k}={v!r}" for k, v in args.items()) or "its defaults"
        raise ConfigError(f"{reg.kind} {name!r} with {shown} has layers with no weights (a width or size of 0?).")
    return net


def build_generator(name: str, z_dim: int, shape: tuple[int, ...], args: dict[str, Any], **extras: Any) -> nn.Module:
    """Build the generator family `name` for input size `z_dim` and output `shape`; `extras` come from the trainer."""
    return _build(GENERATORS, name, args, extras, z_dim=z_dim, shape=tuple(shape))


def build_discriminator(name: str, shape: tuple[int, ...], args: dict[str, Any], **extras: Any) -> nn.Module:
    """Build the discriminator family `name` for inputs of `shape` (one logit per sample); `extras` from the trainer."""
    return _build(DISCRIMINATORS, name, args, extras, shape=tuple(shape))


def build_translator(name: str, shape: tuple[int, ...], args: dict[str, Any]) -> nn.Module:
    """Build the translator family `name` (recipe model.generator of a translation game) for images of `shape`."""
    return _build(TRANSLATORS, name, args, {}, shape=tuple(shape))
