"""DCGAN generator and discriminator for any power-of-two resolution >= 8 (Radford et al. 2015).

Radford et al.'s rules by default: strided (transposed) convolutions instead of pooling,
batch norm in both nets except G's output and D's input layer, ReLU in G with tanh
output, LeakyReLU(0.2) in D, weights ~ N(0, 0.02).

With `num_classes` (set by the trainer for model.conditional: true) both nets are
class-conditional. G concatenates the one-hot label to z (Mirza & Osindero 2014, Sec. 4.1).
D's `cond` chooses how D uses the label: "concat" appends one-hot label planes to the image
(Mirza & Osindero's concatenation, as image channels), "projection" adds <embed(y), phi(x)>
to the logit (Miyato & Koyama 2018, Eq. 3), "acgan" ignores the label at the input and
predicts it with an auxiliary classifier head (Odena et al. 2017, Sec. 3), trained by the
acgan game.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..nn import MinibatchStdDev, activation, init_dcgan_, normalization
from .registry import DISCRIMINATORS, GENERATORS


def _levels(shape: tuple[int, ...]) -> tuple[int, int]:
    """(channels, number of 2x stages between 4x4 and the image size); checks the shape."""
    if len(shape) != 3:
        raise ConfigError(f"dcgan needs image data of shape (C, H, W), got {tuple(shape)}")
    c, h, w = shape
    if h != w or h < 8 or h & (h - 1):
        raise ConfigError(f"dcgan needs a square power-of-two image size >= 8, got {h}x{w}")
    return c, int(math.log2(h)) - 2


CONDITIONING = ("concat", "projection", "acgan")


def _labels(y: Tensor | None, like: Tensor) -> Tensor:
    """The labels a conditional net needs, checked."""
    if y is None:
        raise ValueError("this network is class-conditional: call it with labels y")
    if y.shape[0] != like.shape[0]:
        raise ValueError(f"got {y.shape[0]} labels for {like.shape[0]} inputs")
    return y.long()


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
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        c, n = _levels(shape)
        self.z_dim = z_dim
        self.num_classes = num_classes
        chans = [min(width * 2 ** (n - 1 - i), max_width) for i in range(n)]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim + num_classes, chans[0], 4, 1, 0, bias=norm == "none"),
            normalization(norm, chans[0]),
            activation(act),
        ]
        for cin, cout in itertools.pairwise(chans):
            layers += [
                nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=norm == "none"),
                normalization(norm, cout),
                activation(act),
            ]
        layers += [nn.ConvTranspose2d(chans[-1], c, 4, 2, 1), activation(out_act)]
        self.net = nn.Sequential(*layers)
        init_dcgan_(self)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.num_classes:
            z = torch.cat([z, F.one_hot(_labels(y, z), self.num_classes).to(z.dtype)], 1)
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
        num_classes: int = 0,
        cond: str = "concat",
        mbstd_group: int = 0,
    ) -> None:
        super().__init__()
        c, n = _levels(shape)
        if cond not in CONDITIONING:
            raise ConfigError(f"dcgan discriminator cond {cond!r} is not one of: {', '.join(CONDITIONING)}")
        if mbstd_group == 1 or mbstd_group < 0:
            raise ConfigError(f"dcgan discriminator mbstd_group must be 0 (off) or at least 2, got {mbstd_group}")
        self.num_classes = num_classes
        self.cond = cond if num_classes else "none"
        chans = [min(width * 2**i, max_width) for i in range(n)]
        c_in = c + (num_classes if self.cond == "concat" else 0)
        # No normalisation on the input layer (Radford et al. 2015, Sec. 3).
        layers: list[nn.Module] = [nn.Conv2d(c_in, chans[0], 4, 2, 1), activation(act)]
        for cin, cout in itertools.pairwise(chans):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=norm == "none"), normalization(norm, cout), activation(act)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)
        # Minibatch stddev before the 4x4 head (Karras et al. 2018, Sec. 3): one extra feature map.
        self.mbstd = MinibatchStdDev(mbstd_group) if mbstd_group else None
        self.head = nn.Conv2d(chans[-1] + (1 if self.mbstd is not None else 0), 1, 4, 1, 0)
        if self.cond == "projection":
            self.embed = nn.Embedding(num_classes, chans[-1])
        if self.cond == "acgan":
            self.classifier = nn.Linear(chans[-1] * 16, num_classes)
        init_dcgan_(self)
        if self.cond == "projection":
            nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def _body(self, x: Tensor, y: Tensor | None) -> Tensor:
        if self.cond == "concat":
            planes = F.one_hot(_labels(y, x), self.num_classes).to(x.dtype)[:, :, None, None]
            x = torch.cat([x, planes.expand(-1, -1, *x.shape[2:])], 1)
        return self.body(x)

    def features(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The last 4x4 feature map, flattened (for feature matching)."""
        return self._body(x, y).flatten(1)

    def _head(self, h: Tensor) -> Tensor:
        return self.head(h if self.mbstd is None else self.mbstd(h)).flatten()

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self._body(x, y)
        logit = self._head(h)
        if self.cond == "projection":
            # phi(x) is the sum-pooled last feature map; the class term is its inner product with embed(y).
            logit = logit + (self.embed(_labels(y, x)) * h.sum((2, 3))).sum(1)
        return logit

    def forward_aux(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(real/fake logit, class logits) in one pass (AC-GAN, Odena et al. 2017, Sec. 3)."""
        if self.cond != "acgan":
            raise ConfigError(
                "AC-GAN needs an auxiliary classifier head: set the dcgan discriminator's args.cond: acgan"
            )
        h = self.body(x)
        return self._head(h), self.classifier(h.flatten(1))
