"""DCGAN generator and discriminator for any power-of-two resolution >= 8 (Radford et al. 2015).

Radford et al.'s rules by default: strided (transposed) convolutions instead of pooling,
batch norm in both nets except G's output and D's input layer, ReLU in G with tanh
output, LeakyReLU(0.2) in D, weights ~ N(0, 0.02).
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from ..errors import ConfigError
from ..nn import activation, init_dcgan_, normalization
from .registry import DISCRIMINATORS, GENERATORS


def _levels(shape: tuple[int, ...]) -> tuple[int, int]:
    """(channels, number of 2x stages between 4x4 and the image size); checks the shape."""
    if len(shape) != 3:
        raise ConfigError(f"dcgan needs image data of shape (C, H, W), got {tuple(shape)}")
    c, h, w = shape
    if h != w or h < 8 or h & (h - 1):
        raise ConfigError(f"dcgan needs a square power-of-two image size >= 8, got {h}x{w}")
    return c, int(math.log2(h)) - 2


@GENERATORS.register("dcgan")
class DCGANGenerator(nn.Module):
    """DCGAN generator: z -> 4x4 -> ... -> HxW with transposed convolutions, channels halving per stage."""

    def __init__(
        self,
        z_dim: int,
        shape: tuple[int, ...],
        width: int = 64,
        norm: str = "batch",
        act: str = "relu",
        out_act: str = "tanh",
        max_width: int = 1024,
    ) -> None:
        super().__init__()
        c, n = _levels(shape)
        self.z_dim = z_dim
        chans = [min(width * 2 ** (n - 1 - i), max_width) for i in range(n)]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, chans[0], 4, 1, 0, bias=norm == "none"),
            normalization(norm, chans[0]),
            activation(act),
        ]
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=norm == "none"), normalization(norm, cout), activation(act)]
        layers += [nn.ConvTranspose2d(chans[-1], c, 4, 2, 1), activation(out_act)]
        self.net = nn.Sequential(*layers)
        init_dcgan_(self)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


@DISCRIMINATORS.register("dcgan")
class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator: strided convolutions HxW -> 4x4, then a 4x4 convolution to one logit."""

    def __init__(
        self,
        shape: tuple[int, ...],
        width: int = 64,
        norm: str = "batch",
        act: str = "leaky_relu",
        max_width: int = 1024,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        c, n = _levels(shape)
        chans = [min(width * 2**i, max_width) for i in range(n)]
        # No normalisation on the input layer (Radford et al. 2015, Sec. 3).
        layers: list[nn.Module] = [nn.Conv2d(c, chans[0], 4, 2, 1), activation(act)]
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=norm == "none"), normalization(norm, cout), activation(act)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(chans[-1], 1, 4, 1, 0)
        init_dcgan_(self)

    def features(self, x: Tensor) -> Tensor:
        """The last 4x4 feature map, flattened (for feature matching)."""
        return self.body(x).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x)).flatten()
