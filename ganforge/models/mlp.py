"""Fully connected generator and discriminator (Goodfellow et al. 2014; the PacGAN toy networks)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..nn import Maxout, MinibatchDiscrimination, VirtualBatchNorm, activation, normalization
from .registry import DISCRIMINATORS, GENERATORS


@GENERATORS.register("mlp")
class MLPGenerator(nn.Module):
    """MLP generator: `layers` hidden layers of `hidden` units with norm + activation, linear (or tanh) output.

    norm='virtual_batch' uses virtual batch normalisation (Salimans et al. 2016, Sec. 3.5):
    a fixed reference batch of `vbn_ref` latents (drawn once from `vbn_seed`) runs
    through the network with every batch, and each sample is normalised with the
    reference statistics plus its own, so a sample never depends on its batch-mates.
    """

    ref_z: Tensor  # a buffer, registered with norm='virtual_batch'

    def __init__(
        self,
        z_dim: int,
        shape: tuple[int, ...],
        hidden: int = 400,
        layers: int = 4,
        norm: str = "batch",
        act: str = "relu",
        out_act: str = "none",
        vbn_ref: int = 64,
        vbn_seed: int = 0,
    ) -> None:
        super().__init__()
        if layers < 1 or hidden < 1:
            raise ConfigError(f"mlp generator: layers and hidden must be positive, got {layers} and {hidden}")
        self.shape = tuple(shape)
        self.n_ref = vbn_ref if norm == "virtual_batch" else 0
        blocks: list[nn.Module] = []
        width = z_dim
        for _ in range(layers):
            if norm == "virtual_batch":
                blocks += [nn.Linear(width, hidden, bias=False), VirtualBatchNorm(hidden, vbn_ref), activation(act)]
            else:
                # A bias before batch norm is redundant: BN removes it.
                blocks += [
                    nn.Linear(width, hidden, bias=norm != "batch"),
                    normalization(norm, hidden, dims=1),
                    activation(act),
                ]
            width = hidden
        blocks += [nn.Linear(width, math.prod(self.shape)), activation(out_act)]
        self.net = nn.Sequential(*blocks)
        if self.n_ref:
            self.register_buffer(
                "ref_z", torch.randn(vbn_ref, z_dim, generator=torch.Generator().manual_seed(vbn_seed))
            )

    def forward(self, z: Tensor) -> Tensor:
        z = z.flatten(1)
        if self.n_ref:
            return self.net(torch.cat([self.ref_z.to(z.dtype), z]))[self.n_ref :].view(z.shape[0], *self.shape)
        return self.net(z).view(z.shape[0], *self.shape)


@DISCRIMINATORS.register("mlp")
class MLPDiscriminator(nn.Module):
    """MLP discriminator: `layers` hidden layers of `hidden` units (act='maxout' uses maxout with `pieces`).

    minibatch_kernels > 0 adds minibatch discrimination (Salimans et al. 2016, Sec. 3.2)
    with that many kernels of `minibatch_dims` dimensions before the output layer.
    `features(x)` returns the last hidden layer (for feature matching).
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        hidden: int = 200,
        layers: int = 3,
        act: str = "leaky_relu",
        pieces: int = 5,
        norm: str = "none",
        dropout: float = 0.0,
        minibatch_kernels: int = 0,
        minibatch_dims: int = 5,
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
        self.body = nn.Sequential(*blocks)
        self.minibatch = (
            MinibatchDiscrimination(width, minibatch_kernels, minibatch_dims) if minibatch_kernels else nn.Identity()
        )
        self.head = nn.Linear(width + minibatch_kernels, 1)

    def features(self, x: Tensor) -> Tensor:
        """The last hidden layer's activations."""
        return self.body(x.flatten(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.minibatch(self.features(x))).squeeze(1)
