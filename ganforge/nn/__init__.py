"""Layers shared by the model families."""

from .layers import Maxout, activation, init_dcgan_, normalization

__all__ = ["Maxout", "activation", "normalization", "init_dcgan_"]
