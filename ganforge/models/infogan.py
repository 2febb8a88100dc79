"""InfoGAN generator and discriminator with its recognition head Q (Chen et al. 2016, arXiv:1606.03657, App. C, Table 1).

The paper's MNIST networks, adapted to any square power-of-two image size >= 16 (the two
stride-2 stages take H to H/4, as 28 -> 7 in the paper):

    D: conv4x4 s2 64, lReLU(0.1) | conv4x4 s2 128, BN, lReLU(0.1) | FC 1024, BN, lReLU(0.1) | FC 1
    Q: D's whole trunk (up to the FC 1024 block) | FC 128, BN, lReLU(0.1) | FC to Q's parameters
    G: FC 1024, BN, ReLU | FC (H/4)^2 x 128, BN, ReLU | up-conv4x4 s2 64, BN, ReLU | up-conv4x4 s2 C, tanh

Q outputs one logit vector per categorical code (softmax posterior) and a mean and a
log-std per continuous code (factored Gaussian, Sec. 6). Weights ~ N(0, 0.02) as in the
authors' code (their custom ops) and DCGAN.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..nn import init_dcgan_
from .registry import DISCRIMINATORS, GENERATORS

LEAK = 0.1  # "leaky rectified linear units with leaky rate 0.1" (App. C)


def _image_size(shape: tuple[int, ...], width: int, fc: int) -> tuple[int, int]:
    """(channels, height) of a valid image shape; checks the arguments."""
    if len(shape) != 3:
        raise ConfigError(f"infogan needs image data of shape (C, H, W), got {tuple(shape)}")
    c, h, w = shape
    if h != w or h < 16 or h & (h - 1):
        raise ConfigError(f"infogan needs a square power-of-two image size >= 16, got {h}x{w}")
    if width < 1 or fc < 1:
        raise ConfigError(f"infogan width and fc must be >= 1, got width={width}, fc={fc}")
    return c, h


@GENERATORS.register("infogan")
class InfoGANGenerator(nn.Module):
    """InfoGAN's MNIST generator (Chen et al. 2016, App. C, Table 1): two FC layers, two 4x4 up-convolutions."""

    def __init__(self, z_dim: int, shape: tuple[int, ...], width: int = 64, fc: int = 1024) -> None:
        super().__init__()
        c, h = _image_size(shape, width, fc)
        self.z_dim = z_dim
        self.base, self.chans = h // 4, 2 * width
        self.fc = nn.Sequential(
            nn.Linear(z_dim, fc, bias=False),
            nn.BatchNorm1d(fc),
            nn.ReLU(),
            nn.Linear(fc, self.base * self.base * self.chans, bias=False),
            nn.BatchNorm1d(self.base * self.base * self.chans),
            nn.ReLU(),
        )
        self.conv = nn.Sequential(
            nn.ConvTranspose2d(self.chans, width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, c, 4, 2, 1),
            nn.Tanh(),
        )
        init_dcgan_(self)

    def forward(self, z: Tensor) -> Tensor:
        x = self.fc(z.flatten(1)).view(z.shape[0], self.chans, self.base, self.base)
        return self.conv(x)


@DISCRIMINATORS.register("infogan")
class InfoGANDiscriminator(nn.Module):
    """InfoGAN's MNIST discriminator and recognition network Q sharing one trunk (Chen et al. 2016, Sec. 6, App. C)."""

    def __init__(
        self,
        shape: tuple[int, ...],
        width: int = 64,
        fc: int = 1024,
        categorical: Sequence[int] = (),
        continuous: int = 0,
    ) -> None:
        super().__init__()
        c, h = _image_size(shape, width, fc)
        self.categorical = [int(k) for k in categorical]
        self.continuous = int(continuous)
        if any(k < 2 for k in self.categorical) or self.continuous < 0:
            raise ConfigError(
                f"infogan discriminator: categorical code sizes must be >= 2 and continuous >= 0, "
                f"got categorical={list(categorical)}, continuous={continuous}"
            )
        side = h // 4
        # No batch norm on the input layer, as in the paper's table and DCGAN.
        self.trunk = nn.Sequential(
            nn.Conv2d(c, width, 4, 2, 1),
            nn.LeakyReLU(LEAK),
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(LEAK),
            nn.Flatten(),
            nn.Linear(2 * width * side * side, fc, bias=False),
            nn.BatchNorm1d(fc),
            nn.LeakyReLU(LEAK),
        )
        self.head = nn.Linear(fc, 1)
        n_q = sum(self.categorical) + 2 * self.continuous
        self.q: nn.Module | None = None
        if n_q:
            self.q = nn.Sequential(
                nn.Linear(fc, 128, bias=False), nn.BatchNorm1d(128), nn.LeakyReLU(LEAK), nn.Linear(128, n_q)
            )
        init_dcgan_(self)

    def features(self, x: Tensor) -> Tensor:
        """The trunk's FC 1024 activations (the layer feature matching uses)."""
        return self.trunk(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x)).flatten()

    def q_params(self, h: Tensor) -> tuple[list[Tensor], Tensor | None, Tensor | None]:
        """Q's posterior parameters from trunk features h: categorical logits, continuous means and log-stds."""
        if self.q is None:
            raise ConfigError(
                "this infogan discriminator has no Q head: the latent space has no codes "
                "(set model.latent.categorical / continuous)."
            )
        out = self.q(h)
        cats = list(torch.split(out[:, : sum(self.categorical)], self.categorical, 1)) if self.categorical else []
        if not self.continuous:
            return cats, None, None
        at = sum(self.categorical)
        mean = out[:, at : at + self.continuous]
        logstd = out[:, at + self.continuous :]
        return cats, mean, logstd

    def forward_q(self, x: Tensor) -> tuple[Tensor, list[Tensor], Tensor | None, Tensor | None]:
        """(D's logits (N,), Q's categorical logits, continuous means, continuous log-stds) from one trunk pass."""
        h = self.trunk(x)
        return (self.head(h).flatten(), *self.q_params(h))
