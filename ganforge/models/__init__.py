"""Generator and discriminator families, found by name; every module in this package registers its own."""

import importlib
import pkgutil

from .registry import DISCRIMINATORS, GENERATORS, TRANSLATORS, build_discriminator, build_generator, build_translator

for _m in pkgutil.iter_modules(__path__):
    if _m.name not in ("registry",):
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["DISCRIMINATORS", "GENERATORS", "TRANSLATORS", "build_discriminator", "build_generator", "build_translator"]
