"""Layers shared by the model families."""

from .layers import Maxout, MinibatchDiscrimination, VirtualBatchNorm, activation, init_dcgan_, normalization

__all__ = [
    "Maxout",
    "MinibatchDiscrimination",
    "VirtualBatchNorm",
    "activation",
    "normalization",
    "init_dcgan_",
]
