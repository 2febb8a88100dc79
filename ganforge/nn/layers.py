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
    "softplus": lambda: nn.Softplus(),
    "none": lambda: nn.Identity(),
}


def activation(name: str) -> nn.Module:
    """An activation module by name (relu, leaky_relu (slope 0.2), elu, tanh, sigmoid, silu, gelu, softplus, none)."""
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
        # max() with indices back-propagates by scatter, cheaper than amax's equality mask.
        return y.max(dim=-1).values


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


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016, Sec. 3.2): o(x_i)_b = sum_{j!=i} exp(-||M_i,b - M_j,b||_L1)."""

    def __init__(self, in_features: int, kernels: int = 50, dims: int = 5) -> None:
        super().__init__()
        self.in_features, self.kernels, self.dims = in_features, kernels, dims
        self.out_features = in_features + kernels
        # Small init keeps the projected rows close together at the start, so c_b is not ~0 for every pair
        # and the closeness features carry gradient from step one.
        self.T = nn.Parameter(torch.randn(in_features, kernels * dims) * 0.1)

    def forward(self, x: Tensor) -> Tensor:
        m = (x @ self.T).view(x.shape[0], self.kernels, self.dims)
        l1 = (m.unsqueeze(1) - m.unsqueeze(0)).abs().sum(dim=-1)  # (N, N, B)
        # exp(0) == 1 exactly, so subtracting 1 removes the self-pair term c_b(x_i, x_i) without masking.
        o = torch.exp(-l1).sum(dim=1) - 1.0
        return torch.cat([x, o], dim=1)


class VirtualBatchNorm(nn.Module):
    """Virtual batch norm (Salimans et al. 2016, Sec. 3.5): x_i normalised by stats of reference batch + x_i."""

    def __init__(self, num_features: int, n_ref: int, eps: float = 1e-5) -> None:
        super().__init__()
        if n_ref < 1:
            raise ValueError(f"n_ref must be >= 1, got {n_ref}")
        self.num_features, self.n_ref, self.eps = num_features, n_ref, eps
        self.gamma = nn.Parameter(torch.ones(num_features))
        self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() not in (2, 4):
            raise ValueError(f"VirtualBatchNorm expects a 2-D (N, F) or 4-D (N, C, H, W) input, got {x.dim()}-D")
        if x.shape[0] <= self.n_ref:
            raise ValueError(f"batch of {x.shape[0]} rows has no examples after the {self.n_ref} reference rows")
        ref, ex = x[: self.n_ref], x[self.n_ref :]
        # Per-row statistics over the spatial axes (none for 2-D), shaped to broadcast against x.
        spatial = (2, 3) if x.dim() == 4 else ()
        mu = ex.mean(dim=spatial, keepdim=True) if spatial else ex
        var_own = ex.var(dim=spatial, unbiased=False, keepdim=True) if spatial else torch.zeros_like(ex)
        # Reference statistics are recomputed (not cached) every call: they depend on the generator's current
        # weights, and gradients must flow through them as in the original implementation.
        ref_dims = (0, *spatial)
        mu_ref = ref.mean(dim=ref_dims, keepdim=True)
        var_ref = ref.var(dim=ref_dims, unbiased=False, keepdim=True)

        a = 1.0 / (self.n_ref + 1)
        mean = a * mu + (1 - a) * mu_ref
        # Equal to (a*ms_i + (1-a)*ms_ref) - mean^2 (the OpenAI formulation), rewritten as the variance of a
        # two-component mixture so it never goes negative through cancellation of E[x^2] - E[x]^2.
        var = a * var_own + (1 - a) * var_ref + a * (1 - a) * (mu - mu_ref) ** 2

        shape = (1, -1, 1, 1) if spatial else (1, -1)
        gamma, beta = self.gamma.view(shape), self.beta.view(shape)
        out_ref = (ref - mu_ref) * torch.rsqrt(var_ref + self.eps) * gamma + beta
        out_ex = (ex - mean) * torch.rsqrt(var + self.eps) * gamma + beta
        return torch.cat([out_ref, out_ex], dim=0)


class MinibatchStdDev(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018, ProGAN, Sec. 3): one extra feature map holding the
    average over features and positions of each feature's standard deviation within a group of samples.

    A collapsed generator gives groups of near-identical fakes, whose low deviation D can see directly.
    The batch is split into groups of `group_size` (the largest divisor of the batch not above it);
    sample i belongs to group i mod (N / group_size), as in the authors' code.
    """

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        if int(group_size) < 2:
            raise ValueError(f"minibatch stddev needs a group size of at least 2, got {group_size}")
        self.group_size = int(group_size)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = max(d for d in range(1, min(self.group_size, n) + 1) if n % d == 0)
        y = x.float().reshape(g, n // g, c, h, w)
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (n / g,)
        y = y.reshape(1, -1, 1, 1, 1).expand(g, -1, 1, h, w).reshape(n, 1, h, w)
        return torch.cat([x, y.to(x.dtype)], dim=1)
