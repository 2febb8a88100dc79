"""ResNet generator and discriminator (Gulrajani et al. 2017, WGAN-GP, App. F; Miyato et al. 2018, SNGAN, App. B).

For 32x32 images these are SNGAN's Table 4 networks with `width` channels throughout:
G: linear z -> 4x4, three up-blocks, BN, ReLU, conv3x3, tanh; D: an "optimized" down-block,
a down-block, two plain blocks, ReLU, global sum pooling, linear. Other power-of-two sizes
get one G up-block per doubling from 4x4, and D down-blocks until 8x8 followed by two plain
blocks. `num_classes > 0` makes G use class-conditional batch norm and D a projection
head (Miyato & Koyama 2018). `attention` inserts a SAGAN self-attention block at that
resolution (Zhang et al. 2018). `mbstd_group` adds a minibatch standard deviation map after D's last
block (Karras et al. 2018, Sec. 3).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..nn import MinibatchStdDev
from ..nn.attention import SelfAttention
from ..nn.conditional import ClassConditionalBatchNorm2d, ProjectionHead, check_labels
from .registry import DISCRIMINATORS, GENERATORS

# A normalisation layer for `channels` features; called as norm(x) or norm(x, c) when conditional.
NormFactory = Callable[[int], nn.Module]


def check_shape(shape: tuple[int, ...], family: str) -> tuple[int, int]:
    """(channels, log2(size)) of a square power-of-two image shape >= 8; ConfigError otherwise."""
    if len(shape) != 3:
        raise ConfigError(f"{family} needs image data of shape (C, H, W), got {tuple(shape)}")
    c, h, w = shape
    if h != w or h < 8 or h & (h - 1):
        raise ConfigError(f"{family} needs a square power-of-two image size >= 8, got {h}x{w}")
    return c, int(math.log2(h))


def check_common(family: str, width: int, num_classes: int, attention: int, valid: list[int]) -> None:
    """ConfigError for a non-positive width, negative class count or an attention resolution no block has."""
    if width < 1:
        raise ConfigError(f"{family}: width must be >= 1, got {width}")
    if num_classes < 0:
        raise ConfigError(f"{family}: num_classes must be >= 0, got {num_classes}")
    if attention and attention not in valid:
        raise ConfigError(
            f"{family}: attention resolution {attention} is not one of the block resolutions {valid} (0 = no attention)"
        )


def _init_sngan_(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases, as in Miyato et al.'s SNGAN code (residual 3x3 convs get gain sqrt(2) there)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            gain = math.sqrt(2) if getattr(m, "_residual", False) else 1.0
            nn.init.xavier_uniform_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def res_conv(cin: int, cout: int, k: int, residual: bool = False) -> nn.Conv2d:
    """A same-size Conv2d; `residual` marks a residual-branch conv (SNGAN init gain)."""
    conv = nn.Conv2d(cin, cout, k, padding=k // 2)
    # Marks the 3x3 convs of the residual branch, which SNGAN initialises with gain sqrt(2) (they follow a ReLU).
    cast(Any, conv)._residual = residual  # a plain flag: Module.__setattr__ is typed for tensors and modules only
    return conv


def _norm(layer: nn.Module, x: Tensor, c: Tensor | None) -> Tensor:
    return layer(x) if c is None else layer(x, c)


class GBlock(nn.Module):
    """Up-block: BN, ReLU, 2x nearest upsample, conv3x3, BN, ReLU, conv3x3, plus 1x1-conv shortcut (SNGAN, App. B)."""

    def __init__(self, cin: int, cout: int, norm: NormFactory) -> None:
        super().__init__()
        self.bn1, self.conv1 = norm(cin), res_conv(cin, cout, 3, residual=True)
        self.bn2, self.conv2 = norm(cout), res_conv(cout, cout, 3, residual=True)
        self.shortcut = res_conv(cin, cout, 1)

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        h = F.interpolate(F.relu(_norm(self.bn1, x, c)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(_norm(self.bn2, self.conv1(h), c)))
        # A 1x1 conv commutes with nearest upsampling, so convolving first gives the same shortcut at 1/4 the cost.
        return h + F.interpolate(self.shortcut(x), scale_factor=2, mode="nearest")


class DBlock(nn.Module):
    """Down-block: ReLU, conv3x3, ReLU, conv3x3, 2x2 avg-pool, plus (1x1-conv, pooled) shortcut (SNGAN, App. B).

    `optimized` is the first block, which sees the image: no ReLU before the first conv and
    the shortcut pools before its 1x1 conv (Miyato et al.'s OptimizedBlock).
    """

    def __init__(self, cin: int, cout: int, down: bool = True, optimized: bool = False) -> None:
        super().__init__()
        self.down, self.optimized = down, optimized
        self.conv1, self.conv2 = res_conv(cin, cout, 3, residual=True), res_conv(cout, cout, 3, residual=True)
        self.shortcut = res_conv(cin, cout, 1) if (optimized or cin != cout or down) else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(x if self.optimized else F.relu(x))
        h = self.conv2(F.relu(h))
        if self.down:
            h = F.avg_pool2d(h, 2)
        sc = x
        if self.optimized:
            assert self.shortcut is not None  # an optimized block always has one
            sc = self.shortcut(F.avg_pool2d(sc, 2) if self.down else sc)
        elif self.shortcut is not None:
            sc = self.shortcut(sc)
            if self.down:
                sc = F.avg_pool2d(sc, 2)
        return h + sc


@GENERATORS.register("resnet")
class ResNetGenerator(nn.Module):
    """SNGAN/WGAN-GP ResNet generator (Miyato et al. 2018, App. B, Table 4): z -> 4x4xwidth -> up-blocks -> tanh image."""

    _family = "resnet generator"

    def __init__(
        self,
        z_dim: int,
        shape: tuple[int, ...],
        num_classes: int = 0,
        width: int = 128,
        attention: int = 0,
    ) -> None:
        super().__init__()
        c, log_size = check_shape(shape, self._family)
        resolutions = [2**k for k in range(3, log_size + 1)]  # output size of each up-block
        check_common(self._family, width, num_classes, attention, resolutions)
        self.z_dim, self.num_classes, self.width = z_dim, num_classes, width
        norm: NormFactory = (lambda ch: ClassConditionalBatchNorm2d(ch, num_classes)) if num_classes else nn.BatchNorm2d
        self.linear = nn.Linear(z_dim, 4 * 4 * width)
        self.blocks = nn.ModuleList()
        for r in resolutions:
            self.blocks.append(GBlock(width, width, norm))
            if r == attention:
                self.blocks.append(SelfAttention(width))
        # The last BN is unconditional in SNGAN's conditional generator too.
        self.out_bn = nn.BatchNorm2d(width)
        self.out_conv = res_conv(width, c, 3)
        _init_sngan_(self)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        # Labels are ignored by an unconditional generator.
        c = check_labels(y, self.num_classes, self._family) if self.num_classes else None
        h = self.linear(z.flatten(1)).view(z.shape[0], self.width, 4, 4)
        for block in self.blocks:
            h = block(h) if isinstance(block, SelfAttention) else block(h, c)
        return torch.tanh(self.out_conv(F.relu(self.out_bn(h))))


@DISCRIMINATORS.register("resnet")
class ResNetDiscriminator(nn.Module):
    """SNGAN/WGAN-GP ResNet discriminator (Miyato et al. 2018, App. B, Table 4): down-blocks to 8x8, two plain blocks, ReLU, sum-pool, head.

    The head is a projection head (Miyato & Koyama 2018, Eq. 3) when num_classes > 0.
    `features(x)` is the sum-pooled feature vector (N, width) the head reads.
    """

    _family = "resnet discriminator"

    def __init__(
        self, shape: tuple[int, ...], num_classes: int = 0, width: int = 128, attention: int = 0, mbstd_group: int = 0
    ) -> None:
        super().__init__()
        c, log_size = check_shape(shape, self._family)
        if mbstd_group == 1 or mbstd_group < 0:
            raise ConfigError(f"{self._family} mbstd_group must be 0 (off) or at least 2, got {mbstd_group}")
        # Down-blocks until 8x8, then two blocks at 8x8: for 32x32 that is down, down, plain, plain (SNGAN).
        downs = [True] * (log_size - 3) + [False, False]
        outs, size = [], 2**log_size
        for d in downs:
            size //= 2 if d else 1
            outs.append(size)
        check_common(self._family, width, num_classes, attention, sorted(set(outs)))
        self.num_classes, self.width = num_classes, width
        self.blocks = nn.ModuleList()
        placed = False
        for i, (d, r) in enumerate(zip(downs, outs)):
            self.blocks.append(DBlock(c if i == 0 else width, width, down=d, optimized=i == 0))
            # After the first block that outputs the attention resolution.
            if r == attention and not placed:
                self.blocks.append(SelfAttention(width))
                placed = True
        # Minibatch stddev after the last block (Karras et al. 2018, Sec. 3), folded back to `width` channels by a
        # 3x3 conv as in ProGAN's last D block, so the head and `features` keep their size.
        self.mbstd = MinibatchStdDev(mbstd_group) if mbstd_group else None
        self.mbstd_conv = res_conv(width + 1, width, 3) if mbstd_group else None
        self.head = ProjectionHead(width, num_classes)
        _init_sngan_(self)

    def features(self, x: Tensor) -> Tensor:
        """ReLU then global sum pooling of the last block's output, (N, width)."""
        h = x
        for block in self.blocks:
            h = block(h)
        if self.mbstd is not None:
            assert self.mbstd_conv is not None  # made with mbstd
            h = self.mbstd_conv(F.relu(self.mbstd(h)))
        # Sum, not mean, pooling, as in Miyato et al.'s SNGAN code.
        return F.relu(h).sum(dim=(2, 3))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.head(self.features(x), y)
