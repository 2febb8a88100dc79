"""Layers shared by the model families."""

from .equalized import EqualizedConv2d, EqualizedLinear, PixelNorm, he_constant
from .layers import (
    Maxout,
    MinibatchDiscrimination,
    MinibatchStdDev,
    VirtualBatchNorm,
    activation,
    init_dcgan_,
    normalization,
)

__all__ = [
    "EqualizedConv2d",
    "EqualizedLinear",
    "Maxout",
    "MinibatchDiscrimination",
    "MinibatchStdDev",
    "PixelNorm",
    "VirtualBatchNorm",
    "activation",
    "he_constant",
    "init_dcgan_",
    "normalization",
]
