"""Layers shared by the model families."""

from .layers import (Maxout, MinibatchDiscrimination, MinibatchStdDev, VirtualBatchNorm, activation, init_dcgan_,
                     normalization)

__all__ = [
    "Maxout",
    "MinibatchDiscrimination",
    "MinibatchStdDev",
    "VirtualBatchNorm",
    "activation",
    "normalization",
    "init_dcgan_",
]
