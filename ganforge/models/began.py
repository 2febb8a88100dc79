"""BEGAN generator and auto-encoder discriminator (Berthelot, Schumm & Metz 2017, arXiv:1703.10717, Sec. 3.5, Fig. 1).

Both nets are built from 3x3 convolutions, each followed by an ELU, repeated twice per
resolution; no batch norm anywhere. The decoder (G, and the second half of D) maps a
vector through a fully connected layer (no non-linearity) to an 8x8xn tensor, then runs
two convolutions at each resolution with nearest-neighbour 2x upsampling in between, and
a last 3x3 convolution to the image channels. The encoder (D's first half) mirrors it:
an input convolution, two convolutions per resolution, with the channels growing
linearly (n, 2n, 3n, ...) at each downsampling, which is a stride-2 3x3 convolution
("sub-sampling with stride 2"), then a fully connected layer (no non-linearity) to the
embedding h. The paper's optional skip connections are not implemented.

D(x) returns the reconstruction of x (N, C, H, W), not a logit: it only works with the
`began` game, which scores samples by their reconstruction error.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from ..errors import ConfigError
from .registry import DISCRIMINATORS, GENERATORS

OUTPUTS = ("linear", "tanh")
BOTTLENECK = 8  # the decoder starts, and the encoder ends, at 8x8 (Fig. 1)


def _levels(shape: tuple[int, ...], width: int, hidden: int | None = None) -> tuple[int, int, int]:
    """(channels, height, number of 2x resampling stages between 8x8 and the image); checks the arguments."""
    if len(shape) != 3:
        raise ConfigError(f"began needs image data of shape (C, H, W), got {tuple(shape)}")
    c, h, w = shape
    if h != w or h < BOTTLENECK or h & (h - 1):
        raise ConfigError(f"began needs a square power-of-two image size >= {BOTTLENECK}, got {h}x{w}")
    if width < 1:
        raise ConfigError(f"began width must be >= 1, got {width}")
    if hidden is not None and hidden < 1:
        raise ConfigError(f"began hidden (embedding size h) must be >= 1, got {hidden}")
    return c, h, int(math.log2(h)) - int(math.log2(BOTTLENECK))


def _conv_elu(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    """A 3x3 convolution ("same" padding) followed by an ELU (Berthelot et al. 2017, Fig. 1)."""
    return [nn.Conv2d(cin, cout, 3, stride, 1), nn.ELU()]


class BEGANDecoder(nn.Module):
    """BEGAN decoder (Berthelot et al. 2017, Fig. 1): h -> 8x8xn -> [conv, conv, upsample x2]* -> conv, conv -> conv to C."""

    def __init__(self, in_dim: int, channels: int, stages: int, width: int) -> None:
        super().__init__()
        self.width = width
        self.fc = nn.Linear(in_dim, BOTTLENECK * BOTTLENECK * width)  # no non-linearity (Sec. 3.5)
        layers: list[nn.Module] = []
        for i in range(stages + 1):  # two convolutions at every resolution 8x8 ... HxW
            layers += _conv_elu(width, width) + _conv_elu(width, width)
            if i < stages:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        layers.append(nn.Conv2d(width, channels, 3, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, h: Tensor) -> Tensor:
        return self.net(self.fc(h.flatten(1)).view(h.shape[0], self.width, BOTTLENECK, BOTTLENECK))


class BEGANEncoder(nn.Module):
    """BEGAN encoder (Berthelot et al. 2017, Fig. 1): conv, then [conv, conv, strided conv]* with n, 2n, 3n... channels -> h."""

    def __init__(self, channels: int, stages: int, width: int, hidden: int) -> None:
        super().__init__()
        layers: list[nn.Module] = _conv_elu(channels, width)
        for i in range(stages + 1):
            cin = width * (i + 1)
            layers += _conv_elu(cin, cin) + _conv_elu(cin, cin)
            if i < stages:
                # Downsampling is a stride-2 convolution that also grows the channels linearly (n -> 2n -> 3n...).
                layers += _conv_elu(cin, cin + width, stride=2)
        self.net = nn.Sequential(*layers)
        self.fc = nn.Linear(BOTTLENECK * BOTTLENECK * width * (stages + 1), hidden)  # no non-linearity (Sec. 3.5)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.net(x).flatten(1))


@GENERATORS.register("began")
class BEGANGenerator(nn.Module):
    """BEGAN generator: the decoder architecture with its own weights, z -> image (Berthelot et al. 2017, Sec. 3.5)."""

    def __init__(self, z_dim: int, shape: tuple[int, ...], width: int = 64, output: str = "linear") -> None:
        super().__init__()
        c, _, stages = _levels(shape, width)
        if output not in OUTPUTS:
            raise ConfigError(f"began generator output must be one of {', '.join(OUTPUTS)}, got {output!r}")
        self.z_dim = z_dim
        self.decoder = BEGANDecoder(z_dim, c, stages, width)
        # Linear, as the paper's decoder and the authors' reference code (G and D's decoder alike). A tanh here
        # (ganforge until 2026-12) collapsed every Fashion-MNIST run: while k_t sits at 0, D is a plain
        # auto-encoder of real images whose easiest input is a blank one, G drifts to black, its pre-tanh values
        # pass -3.5 and the saturated tanh (exactly -1 in bf16) leaves it no gradient to come back with.
        # Samples are clamped to [-1, 1] where images are written or scored.
        self.out = nn.Tanh() if output == "tanh" else nn.Identity()

    def forward(self, z: Tensor) -> Tensor:
        return self.out(self.decoder(z))


@DISCRIMINATORS.register("began")
class BEGANDiscriminator(nn.Module):
    """BEGAN discriminator: an auto-encoder x -> h -> reconstruction of x (Berthelot et al. 2017, Sec. 3.5, Fig. 1).

    The reconstruction is left linear, as in the paper: a tanh would have to saturate to
    rebuild the many pixels at exactly -1 or 1 (padding, backgrounds) and its vanishing
    gradient there would slow D down; the L1 loss needs no bounded output.
    """

    def __init__(self, shape: tuple[int, ...], width: int = 64, hidden: int = 64) -> None:
        super().__init__()
        c, _, stages = _levels(shape, width, hidden)
        self.encoder = BEGANEncoder(c, stages, width, hidden)
        self.decoder = BEGANDecoder(hidden, c, stages, width)

    def features(self, x: Tensor) -> Tensor:
        """The embedding h of x."""
        return self.encoder(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))
