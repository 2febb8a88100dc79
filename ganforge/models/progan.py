"""Progressive GAN networks (Karras et al. 2018, "Progressive Growing of GANs", arXiv:1710.10196, Sec. 2-4, Table 2).

Both networks hold every resolution's layers from the start, 4x4 up to the data size, and a phase: the
current top resolution and the fade-in of its newest block (alpha rising from 0 to 1). Only the layers
of the current phase run, so parameters of blocks not yet grown get no gradient and an optimiser built
once over all of them keeps the old moments while new parameters join. The phase lives in integer
buffers (level, images into the fade, fade length): it travels with state_dict, checkpoints, exports
and the EMA copy (which copies integer buffers verbatim).

G always returns images at the data size: the current resolution's output, nearest-upsampled, so that
sampling, grids and metrics work at any phase. D average-pools a larger input down to the current
resolution (as real images are downscaled in the paper), so the progressive game can hand it images
already at that resolution and penalties see the resolution D judges.
A network that is never grown (the default phase is the full resolution, alpha 1) is a plain
fixed-resolution network with the same layers: the baseline of `ganforge bench progan`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..nn import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm
from .registry import DISCRIMINATORS, GENERATORS

LRELU = 0.2  # leaky ReLU slope throughout (ProGAN, App. A.1)


def check_image_shape(shape: tuple[int, ...], family: str) -> tuple[int, int]:
    """(channels, max level) for a square power-of-two image of at least 4x4: level L is resolution 4 * 2**L."""
    if len(shape) != 3:
        raise ConfigError(f"{family} needs image data of shape (C, H, W), got {tuple(shape)}")
    c, h, w = shape
    if h != w or h < 4 or h & (h - 1):
        raise ConfigError(f"{family} needs a square power-of-two image size >= 4 (set data.image_size), got {h}x{w}")
    return c, int(math.log2(h)) - 2


def feature_maps(resolution: int, fmap_base: int, fmap_max: int) -> int:
    """Channels at `resolution`: min(fmap_base / resolution, fmap_max), as the authors' nf() (at least 1)."""
    return max(1, min(fmap_base // resolution, fmap_max))


def _check_widths(family: str, fmap_base: int, fmap_max: int) -> None:
    if fmap_base < 1 or fmap_max < 1:
        raise ConfigError(f"{family}: fmap_base and fmap_max must be >= 1, got {fmap_base} and {fmap_max}")


class Growth(nn.Module):
    """The phase of a growing network: level (resolution 4 * 2**level) and the fade-in of its newest block."""

    level: Tensor  # buffers, registered in __init__
    fade_done: Tensor
    fade_len: Tensor

    def __init__(self, max_level: int) -> None:
        super().__init__()
        self.max_level = max_level
        # Integers, so that the EMA copy takes them verbatim instead of averaging them.
        self.register_buffer("level", torch.tensor(max_level, dtype=torch.long))
        self.register_buffer("fade_done", torch.tensor(0, dtype=torch.long))
        self.register_buffer("fade_len", torch.tensor(0, dtype=torch.long))

    def set_phase(self, level: int, fade_done: int = 0, fade_len: int = 0) -> None:
        """Run at resolution 4 * 2**level; fade_len > 0: the newest block fades in, alpha = fade_done / fade_len."""
        if not 0 <= level <= self.max_level:
            raise ValueError(f"level must be in 0..{self.max_level}, got {level}")
        if fade_len < 0 or fade_done < 0 or (fade_len and level == 0):
            raise ValueError(
                f"bad fade ({fade_done} of {fade_len} images) at level {level}: the 4x4 level cannot fade in"
            )
        self.level.fill_(level)
        self.fade_done.fill_(fade_done)
        self.fade_len.fill_(fade_len)

    @property
    def resolution(self) -> int:
        """The current output (G) or input (D) resolution."""
        return 4 * 2 ** int(self.level)

    @property
    def alpha(self) -> float:
        """The weight of the newest block: 1 outside a fade."""
        n = int(self.fade_len)
        return 1.0 if n == 0 else min(1.0, int(self.fade_done) / n)

    def phase(self) -> tuple[int, float]:
        """(level, alpha) of the current phase."""
        return int(self.level), self.alpha

    def describe(self) -> str:
        """'16x16, fading in (alpha 0.40)' or '32x32'."""
        level, alpha = self.phase()
        res = 4 * 2**level
        return f"{res}x{res}" + (f", fading in (alpha {alpha:.2f})" if alpha < 1 else "")


def _act(x: Tensor) -> Tensor:
    return F.leaky_relu(x, LRELU)


def upsample(x: Tensor, size: int) -> Tensor:
    """Nearest-neighbour upsampling to size x size (ProGAN's G between resolutions)."""
    return x if x.shape[-1] == size else F.interpolate(x, scale_factor=size // x.shape[-1], mode="nearest")


def downsample(x: Tensor, size: int) -> Tensor:
    """Average pooling down to size x size (ProGAN's D between resolutions, and the downscaled real images)."""
    return x if x.shape[-1] == size else F.avg_pool2d(x, x.shape[-1] // size)


class _GBlock(nn.Module):
    """Upsample x2, then two 3x3 convs, each followed by leaky ReLU and pixel norm (Table 2)."""

    def __init__(self, c_in: int, c_out: int, norm: nn.Module) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(c_in, c_out, 3, padding=1)
        self.conv2 = EqualizedConv2d(c_out, c_out, 3, padding=1)
        self.norm = norm

    def forward(self, h: Tensor) -> Tensor:
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.norm(_act(self.conv1(h)))
        return self.norm(_act(self.conv2(h)))


class _DBlock(nn.Module):
    """Two 3x3 convs with leaky ReLU, then average-pool x2 (Table 2)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(c_in, c_in, 3, padding=1)
        self.conv2 = EqualizedConv2d(c_in, c_out, 3, padding=1)

    def forward(self, h: Tensor) -> Tensor:
        return F.avg_pool2d(_act(self.conv2(_act(self.conv1(h)))), 2)


@GENERATORS.register("progan")
class ProGANGenerator(Growth):
    """ProGAN generator (Table 2): normalised z -> 4x4 -> [up, conv3, conv3] per doubling -> toRGB (1x1, linear).

    Every conv uses an equalised learning rate and is followed by pixel norm (`pixel_norm`). During a fade,
    the output is (1 - alpha) * upsample(toRGB_prev(h_prev)) + alpha * toRGB_new(block(h_prev)) (Fig. 2).
    """

    _family = "progan generator"

    def __init__(
        self, z_dim: int, shape: tuple[int, ...], fmap_base: int = 2048, fmap_max: int = 256, pixel_norm: bool = True
    ) -> None:
        c, max_level = check_image_shape(shape, self._family)
        super().__init__(max_level)
        _check_widths(self._family, fmap_base, fmap_max)
        self.z_dim, self.size = z_dim, shape[-1]
        nf = [feature_maps(4 * 2**lv, fmap_base, fmap_max) for lv in range(max_level + 1)]
        self.nf = nf
        self.norm = PixelNorm() if pixel_norm else nn.Identity()
        # The authors' 4x4 "dense" layer, with gain sqrt(2) / 4 as in their code.
        self.dense = EqualizedLinear(z_dim, nf[0] * 16, gain=math.sqrt(2) / 4)
        self.conv4 = EqualizedConv2d(nf[0], nf[0], 3, padding=1)
        self.blocks = nn.ModuleList(_GBlock(nf[lv - 1], nf[lv], self.norm) for lv in range(1, max_level + 1))
        self.to_rgb = nn.ModuleList(EqualizedConv2d(nf[lv], c, 1, gain=1.0) for lv in range(max_level + 1))

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        level, alpha = self.phase()
        h = self.norm(z.flatten(1))  # the latent is normalised too (authors' code: normalize_latents)
        h = self.norm(_act(self.dense(h)).view(z.shape[0], self.nf[0], 4, 4))
        h = self.norm(_act(self.conv4(h)))
        prev = h
        for lv in range(1, level + 1):
            prev = h
            h = self.blocks[lv - 1](h)
        out = self.to_rgb[level](h)
        if alpha < 1.0:
            out = torch.lerp(upsample(self.to_rgb[level - 1](prev), out.shape[-1]), out, alpha)
        return upsample(out, self.size)


@DISCRIMINATORS.register("progan")
class ProGANDiscriminator(Growth):
    """ProGAN discriminator (Table 2): fromRGB (1x1) -> [conv3, conv3, avg-pool] per halving -> minibatch stddev,
    conv3, 4x4 dense, linear logit.

    During a fade, the newest block's output is blended with the previous fromRGB of the half-size input:
    (1 - alpha) * fromRGB_prev(avgpool(x)) + alpha * block(fromRGB_new(x)) (Fig. 2). `mbstd_group` 0 drops
    the minibatch stddev layer (Sec. 3).
    """

    _family = "progan discriminator"

    def __init__(
        self, shape: tuple[int, ...], fmap_base: int = 2048, fmap_max: int = 256, mbstd_group: int = 4
    ) -> None:
        c, max_level = check_image_shape(shape, self._family)
        super().__init__(max_level)
        _check_widths(self._family, fmap_base, fmap_max)
        if mbstd_group == 1 or mbstd_group < 0:
            raise ConfigError(f"{self._family} mbstd_group must be 0 (off) or at least 2, got {mbstd_group}")
        nf = [feature_maps(4 * 2**lv, fmap_base, fmap_max) for lv in range(max_level + 1)]
        self.nf = nf
        self.from_rgb = nn.ModuleList(EqualizedConv2d(c, nf[lv], 1) for lv in range(max_level + 1))
        # blocks[lv - 1] takes level lv's features down to level lv - 1.
        self.blocks = nn.ModuleList(_DBlock(nf[lv], nf[lv - 1]) for lv in range(1, max_level + 1))
        self.mbstd = MinibatchStdDev(mbstd_group) if mbstd_group else None
        self.conv4 = EqualizedConv2d(nf[0] + (1 if self.mbstd is not None else 0), nf[0], 3, padding=1)
        self.dense = EqualizedLinear(nf[0] * 16, nf[0])
        self.out = EqualizedLinear(nf[0], 1, gain=1.0)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        level, alpha = self.phase()
        res = 4 * 2**level
        if x.shape[-1] < res or x.shape[-1] % res:
            raise ValueError(f"{self._family} at {res}x{res} cannot take {x.shape[-2]}x{x.shape[-1]} images")
        x = downsample(x, res)
        h = _act(self.from_rgb[level](x))
        if level > 0:
            h = self.blocks[level - 1](h)
            if alpha < 1.0:
                h = torch.lerp(_act(self.from_rgb[level - 1](downsample(x, res // 2))), h, alpha)
            for lv in range(level - 1, 0, -1):
                h = self.blocks[lv - 1](h)
        if self.mbstd is not None:
            h = self.mbstd(h)
        h = _act(self.conv4(h))
        h = _act(self.dense(h.flatten(1)))
        return self.out(h).flatten()


def growth_note(net: nn.Module) -> str | None:
    """For a growing generator below its full size, how its images were made ('8x8 ..., nearest-upsampled to 32x32'); else None."""
    base = getattr(
        getattr(net, "module", net), "_orig_mod", getattr(net, "module", net)
    )  # through EMA and compile wrappers
    if not isinstance(base, ProGANGenerator) or (int(base.level) == base.max_level and base.alpha == 1.0):
        return None
    up = "" if int(base.level) == base.max_level else f", nearest-upsampled to {base.size}x{base.size}"
    return f"progressive generator at {base.describe()}{up}"
