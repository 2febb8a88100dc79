"""Generator and discriminator families, found by name."""

from . import dcgan, mlp  # noqa: F401  (registers the families)
from .registry import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator

__all__ = ["GENERATORS", "DISCRIMINATORS", "build_generator", "build_discriminator"]
