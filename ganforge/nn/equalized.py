"""Equalised learning rate (Karras et al. 2018, ProGAN, Sec. 4.1): weights drawn N(0, 1), scaled at run time by He's constant.

A layer stores w ~ N(0, 1) and computes with w_hat = w * c, c = gain / sqrt(fan_in). Adam's updates are
invariant to a weight's scale, so storing the unscaled w gives every layer the same effective learning
rate, whatever its fan-in.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# He et al. 2015's gain for (leaky) ReLU layers; the output layers (toRGB, the logit) use gain 1.
RELU_GAIN = math.sqrt(2.0)


def he_constant(fan_in: int, gain: float = RELU_GAIN) -> float:
    """The run-time weight scale c = gain / sqrt(fan_in) (ProGAN, Sec. 4.1)."""
    if fan_in < 1:
        raise ValueError(f"fan_in must be >= 1, got {fan_in}")
    return gain / math.sqrt(fan_in)


class EqualizedConv2d(nn.Module):
    """A 2-D convolution with an equalised learning rate: weight ~ N(0, 1) stored, weight * c used; zero bias."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: int = 0,
        gain: float = RELU_GAIN,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size, self.padding = (
            in_channels,
            out_channels,
            kernel_size,
            padding,
        )
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = he_constant(in_channels * kernel_size * kernel_size, gain)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, padding={self.padding}, "
            f"scale={self.scale:.4g}"
        )


class EqualizedLinear(nn.Module):
    """A linear layer with an equalised learning rate: weight ~ N(0, 1) stored, weight * c used; zero bias."""

    def __init__(self, in_features: int, out_features: int, gain: float = RELU_GAIN, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.scale = he_constant(in_features, gain)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, scale={self.scale:.4g}"


class PixelNorm(nn.Module):
    """Pixelwise feature normalisation (ProGAN, Sec. 4.2, Eq. 2): b_xy = a_xy / sqrt(mean_j (a_xy^j)^2 + eps) over channels."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)
