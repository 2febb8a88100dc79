"""Small layers and factories shared by the model families (activations, norms, maxout, init)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ConfigError, choices_message

_ACTIVATIONS = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "elu": lambda: nn.ELU(),
    "tanh": lambda: nn.Tanh(),
    "sigmoid": lambda: nn.Sigmoid(),
    "silu": lambda: nn.SiLU(),
    "gelu": lambda: nn.GELU(),
    "none": lambda: nn.Identity(),
}


def activation(name: str) -> nn.Module:
    """An activation module by name (relu, leaky_relu (slope 0.2), elu, tanh, sigmoid, silu, gelu, none)."""
    if name not in _ACTIVATIONS:
        raise ConfigError(choices_message("activation", name, _ACTIVATIONS))
    return _ACTIVATIONS[name]()


NORMS = ("batch", "instance", "layer", "none")


def normalization(name: str, channels: int, dims: int = 2) -> nn.Module:
    """A normalisation layer by name for `channels` features (dims=2: images, dims=1: vectors)."""
    if name == "batch":
        return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm1d(channels)
    if name == "instance":
        return nn.InstanceNorm2d(channels, affine=True) if dims == 2 else nn.Identity()
    if name == "layer":
        return nn.GroupNorm(1, channels) if dims == 2 else nn.LayerNorm(channels)
    if name == "none":
        return nn.Identity()
    raise ConfigError(choices_message("normalisation", name, NORMS))


class Maxout(nn.Module):
    """Maxout unit (Goodfellow et al. 2013): the max over `pieces` affine maps of the input."""

    def __init__(self, in_features: int, out_features: int, pieces: int = 5) -> None:
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: Tensor) -> Tensor:
        y = self.linear(x).view(*x.shape[:-1], self.out_features, self.pieces)
        return y.amax(dim=-1)


@torch.no_grad()
def init_dcgan_(module: nn.Module) -> None:
    """Radford et al. 2015 initialisation: conv/linear weights ~ N(0, 0.02), norm scales ~ N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
