"""Fully connected generator and discriminator (Goodfellow et al. 2014; the PacGAN toy networks)."""

from __future__ import annotations

import math

from torch import Tensor, nn

from ..errors import ConfigError
from ..nn import Maxout, activation, normalization
from .registry import DISCRIMINATORS, GENERATORS


@GENERATORS.register("mlp")
class MLPGenerator(nn.Module):
    """MLP generator: `layers` hidden layers of `hidden` units with norm + activation, linear (or tanh) output."""

    def __init__(
        self,
        z_dim: int,
        shape: tuple[int, ...],
        hidden: int = 400,
        layers: int = 4,
        norm: str = "batch",
        act: str = "relu",
        out_act: str = "none",
    ) -> None:
        super().__init__()
        if layers < 1 or hidden < 1:
            raise ConfigError(f"mlp generator: layers and hidden must be positive, got {layers} and {hidden}")
        self.shape = tuple(shape)
        blocks: list[nn.Module] = []
        width = z_dim
        for _ in range(layers):
            # A bias before batch norm is redundant: BN removes it.
            blocks += [nn.Linear(width, hidden, bias=norm != "batch"), normalization(norm, hidden, dims=1), activation(act)]
            width = hidden
        blocks += [nn.Linear(width, math.prod(self.shape)), activation(out_act)]
        self.net = nn.Sequential(*blocks)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z.flatten(1)).view(z.shape[0], *self.shape)


@DISCRIMINATORS.register("mlp")
class MLPDiscriminator(nn.Module):
    """MLP discriminator: `layers` hidden layers of `hidden` units (act='maxout' uses maxout with `pieces`)."""

    def __init__(
        self,
        shape: tuple[int, ...],
        hidden: int = 200,
        layers: int = 3,
        act: str = "leaky_relu",
        pieces: int = 5,
        norm: str = "none",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if layers < 1 or hidden < 1:
            raise ConfigError(f"mlp discriminator: layers and hidden must be positive, got {layers} and {hidden}")
        blocks: list[nn.Module] = []
        width = math.prod(shape)
        for _ in range(layers):
            if act == "maxout":
                blocks.append(Maxout(width, hidden, pieces))
            else:
                blocks += [nn.Linear(width, hidden), normalization(norm, hidden, dims=1), activation(act)]
            if dropout > 0:
                blocks.append(nn.Dropout(dropout))
            width = hidden
        blocks.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1)).squeeze(1)
