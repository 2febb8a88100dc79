"""CycleGAN's networks (Zhu et al. 2017, arXiv:1703.10593, Sec. 4 and Appendix 7.2): the ResNet translator and PatchGAN.

Translator: c7s1-w, d(2w), d(4w), R(4w) x blocks, u(2w), u(w), c7s1-C then tanh, where c7s1-k is a 7x7
conv-InstanceNorm-ReLU with k filters and stride 1, dk a 3x3 stride-2 conv-IN-ReLU, Rk a residual block
of two 3x3 convs, uk a 3x3 stride-1/2 (transposed) conv-IN-ReLU; reflection padding throughout. The
number of down-samplings and of blocks are arguments (the paper: 2 down-samplings; 9 blocks at 256 px,
6 at 128 px), so 32x32 images work. PatchGAN: C64-C128-C256-C512, 4x4 convs, stride 2 but the last,
LeakyReLU 0.2, InstanceNorm from the second layer, then a 1-channel 4x4 conv: at 256 px with 3 layers
each output judges a 70x70 patch; `layers` shrinks the patch for small images.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .registry import DISCRIMINATORS, TRANSLATORS


def _check_image(shape: tuple[int, ...], family: str, divisor: int) -> int:
    if len(shape) != 3:
        raise ConfigError(f"{family} needs image data of shape (C, H, W), got {tuple(shape)}")
    c, h, w = shape
    if h % divisor or w % divisor:
        raise ConfigError(f"{family}: image size {h}x{w} must be divisible by {divisor} (2 ** downsamplings)")
    return c


class ResidualBlock(nn.Module):
    """Rk: reflection pad, 3x3 conv, IN, ReLU, reflection pad, 3x3 conv, IN, plus the input."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(ch, ch, 3),
            nn.InstanceNorm2d(ch),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(ch, ch, 3),
            nn.InstanceNorm2d(ch),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


@TRANSLATORS.register("cyclegan_resnet")
class ResnetTranslator(nn.Module):
    """CycleGAN's ResNet generator: an image of `shape` in, an image of the same shape out (tanh)."""

    _family = "cyclegan translator"

    def __init__(
        self,
        shape: tuple[int, ...],
        width: int = 64,
        downsamplings: int = 2,
        blocks: int = 9,
        out_channels: int | None = None,
    ) -> None:
        super().__init__()
        if width < 1 or downsamplings < 0 or blocks < 0:
            raise ConfigError(
                f"{self._family}: width >= 1, downsamplings >= 0 and blocks >= 0, got "
                f"{width}, {downsamplings}, {blocks}"
            )
        c = _check_image(shape, self._family, 2**downsamplings)
        out_c = c if out_channels is None else out_channels
        # Instance norm without affine parameters and convs with bias, as the authors' code (norm='instance').
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(c, width, 7),
            nn.InstanceNorm2d(width),
            nn.ReLU(True),
        ]
        ch = width
        for _ in range(downsamplings):
            layers += [nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1), nn.InstanceNorm2d(2 * ch), nn.ReLU(True)]
            ch *= 2
        layers += [ResidualBlock(ch) for _ in range(blocks)]
        for _ in range(downsamplings):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                nn.InstanceNorm2d(ch // 2),
                nn.ReLU(True),
            ]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_c, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        _init_normal_(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@DISCRIMINATORS.register("patchgan")
class PatchDiscriminator(nn.Module):
    """PatchGAN: one real/fake logit per overlapping patch, (N, 1, h, w); `layers` stride-2 convs after the first."""

    _family = "patchgan discriminator"

    def __init__(self, shape: tuple[int, ...], width: int = 64, layers: int = 3, max_width: int = 512) -> None:
        super().__init__()
        if width < 1 or layers < 0:
            raise ConfigError(f"{self._family}: width >= 1 and layers >= 0, got {width} and {layers}")
        c = _check_image(shape, self._family, 1)
        size = min(shape[1:])
        if _patches(size, layers) < 1:
            fit = max(k for k in range(0, 12) if _patches(size, k) >= 1 or k == 0)
            raise ConfigError(
                f"{self._family}: {layers} layers leave no patch of a {size}x{size} image; use at most {fit}"
            )
        seq: list[nn.Module] = [nn.Conv2d(c, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        ch = width
        for i in range(1, layers + 1):
            out = min(width * 2**i, max_width)
            stride = 2 if i < layers else 1
            seq += [nn.Conv2d(ch, out, 4, stride=stride, padding=1), nn.InstanceNorm2d(out), nn.LeakyReLU(0.2, True)]
            ch = out
        seq.append(nn.Conv2d(ch, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*seq)
        self.layers = layers
        _init_normal_(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def receptive_field(self) -> int:
        """The side of the input patch each output logit sees (70 for layers=3)."""
        rf = 1
        for m in reversed([m for m in self.net if isinstance(m, nn.Conv2d)]):
            rf = rf * m.stride[0] + (m.kernel_size[0] - m.stride[0])
        return rf


def _patches(size: int, layers: int) -> int:
    """The side of PatchGAN's output map for a size x size input: stride-2 convs halve it, the stride-1 ones take 1 off."""
    return size // 2 ** max(layers, 1) - (2 if layers >= 1 else 1)


@torch.no_grad()
def _init_normal_(module: nn.Module) -> None:
    """The authors' init: conv weights ~ N(0, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
