"""ganforge: train, stabilise, evaluate and diagnose Generative Adversarial Networks.

The names in `__all__` are the public API (see docs/guide/library.md); anything else is private and may change.
They load on first use, so `import ganforge` (and the CLI) does not import torch until something needs it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # what type checkers and the API reference see; at run time __getattr__ imports on demand
    from .api import (
        Run,
        evaluate,
        load_generator,
        recipe,
        register_dataset,
        register_discriminator,
        register_generator,
        register_metric,
        register_objective,
        register_regularizer,
        resume,
        sample,
        train,
    )
    from .augment.ada import Ada
    from .augment.diffaugment import DiffAugment
    from .config import Recipe
    from .data.dataset import ArrayDataset
    from .data.loaders import load_dataset
    from .errors import ConfigError, DataError, GanforgeError
    from .latent import LatentSpace
    from .losses import (
        Objective,
        get_objective,
        hinge_d_loss,
        hinge_g_loss,
        least_squares_d_loss,
        least_squares_g_loss,
        minimax_d_loss,
        minimax_g_loss,
        non_saturating_g_loss,
        ragan_d_loss,
        ragan_g_loss,
        rahinge_d_loss,
        rahinge_g_loss,
        ralsgan_d_loss,
        ralsgan_g_loss,
        rsgan_d_loss,
        rsgan_g_loss,
        wasserstein_d_loss,
        wasserstein_g_loss,
    )
    from .metrics.accumulate import inception_score
    from .metrics.classes import class_coverage
    from .metrics.frechet import frechet_distance
    from .metrics.kid import kid
    from .metrics.memorisation import memorisation
    from .metrics.precision_recall import precision_recall
    from .nn.attention import SelfAttention
    from .nn.conditional import ConditionalBatchNorm2d, ProjectionHead
    from .nn.equalized import EqualizedConv2d, EqualizedLinear, PixelNorm
    from .nn.layers import MinibatchDiscrimination, MinibatchStdDev, VirtualBatchNorm
    from .nn.spectral import apply_spectral_norm
    from .regularizers import (
        clip_weights_,
        dragan_penalty,
        drift_penalty,
        feature_matching_loss,
        gradient_penalty,
        historical_average_penalty,
        instance_noise,
        orthogonal_penalty,
        r1_penalty,
        r2_penalty,
    )
    from .training.ema import make_ema

# Public name -> the module (relative to ganforge) that defines it.
_WHERE: dict[str, str] = {
    "Run": "api",
    "evaluate": "api",
    "load_generator": "api",
    "recipe": "api",
    "register_dataset": "api",
    "register_discriminator": "api",
    "register_generator": "api",
    "register_metric": "api",
    "register_objective": "api",
    "register_regularizer": "api",
    "resume": "api",
    "sample": "api",
    "train": "api",
    "Recipe": "config",
    "ConfigError": "errors",
    "DataError": "errors",
    "GanforgeError": "errors",
    "LatentSpace": "latent",
    "load_dataset": "data.loaders",
    "ArrayDataset": "data.dataset",
    "Objective": "losses",
    "get_objective": "losses",
    "hinge_d_loss": "losses",
    "hinge_g_loss": "losses",
    "least_squares_d_loss": "losses",
    "least_squares_g_loss": "losses",
    "minimax_d_loss": "losses",
    "minimax_g_loss": "losses",
    "non_saturating_g_loss": "losses",
    "ragan_d_loss": "losses",
    "ragan_g_loss": "losses",
    "rahinge_d_loss": "losses",
    "rahinge_g_loss": "losses",
    "ralsgan_d_loss": "losses",
    "ralsgan_g_loss": "losses",
    "rsgan_d_loss": "losses",
    "rsgan_g_loss": "losses",
    "wasserstein_d_loss": "losses",
    "wasserstein_g_loss": "losses",
    "clip_weights_": "regularizers",
    "dragan_penalty": "regularizers",
    "drift_penalty": "regularizers",
    "feature_matching_loss": "regularizers",
    "gradient_penalty": "regularizers",
    "historical_average_penalty": "regularizers",
    "instance_noise": "regularizers",
    "orthogonal_penalty": "regularizers",
    "r1_penalty": "regularizers",
    "r2_penalty": "regularizers",
    "apply_spectral_norm": "nn.spectral",
    "SelfAttention": "nn.attention",
    "ConditionalBatchNorm2d": "nn.conditional",
    "ProjectionHead": "nn.conditional",
    "MinibatchDiscrimination": "nn.layers",
    "MinibatchStdDev": "nn.layers",
    "VirtualBatchNorm": "nn.layers",
    "EqualizedConv2d": "nn.equalized",
    "EqualizedLinear": "nn.equalized",
    "PixelNorm": "nn.equalized",
    "make_ema": "training.ema",
    "Ada": "augment.ada",
    "DiffAugment": "augment.diffaugment",
    "frechet_distance": "metrics.frechet",
    "kid": "metrics.kid",
    "precision_recall": "metrics.precision_recall",
    "class_coverage": "metrics.classes",
    "memorisation": "metrics.memorisation",
    "inception_score": "metrics.accumulate",
}

__all__ = [
    "Ada",
    "ArrayDataset",
    "ConditionalBatchNorm2d",
    "ConfigError",
    "DataError",
    "DiffAugment",
    "EqualizedConv2d",
    "EqualizedLinear",
    "GanforgeError",
    "LatentSpace",
    "MinibatchDiscrimination",
    "MinibatchStdDev",
    "Objective",
    "PixelNorm",
    "ProjectionHead",
    "Recipe",
    "Run",
    "SelfAttention",
    "VirtualBatchNorm",
    "apply_spectral_norm",
    "class_coverage",
    "clip_weights_",
    "dragan_penalty",
    "drift_penalty",
    "evaluate",
    "feature_matching_loss",
    "frechet_distance",
    "get_objective",
    "gradient_penalty",
    "hinge_d_loss",
    "hinge_g_loss",
    "historical_average_penalty",
    "inception_score",
    "instance_noise",
    "kid",
    "least_squares_d_loss",
    "least_squares_g_loss",
    "load_dataset",
    "load_generator",
    "make_ema",
    "memorisation",
    "minimax_d_loss",
    "minimax_g_loss",
    "non_saturating_g_loss",
    "orthogonal_penalty",
    "precision_recall",
    "r1_penalty",
    "r2_penalty",
    "ragan_d_loss",
    "ragan_g_loss",
    "rahinge_d_loss",
    "rahinge_g_loss",
    "ralsgan_d_loss",
    "ralsgan_g_loss",
    "recipe",
    "register_dataset",
    "register_discriminator",
    "register_generator",
    "register_metric",
    "register_objective",
    "register_regularizer",
    "resume",
    "rsgan_d_loss",
    "rsgan_g_loss",
    "sample",
    "train",
    "wasserstein_d_loss",
    "wasserstein_g_loss",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value  # once loaded, an ordinary attribute
        return value
    raise AttributeError(f"module 'ganforge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
