"""Resizing uint8 images to a square size by a fit ("resize" or "pad"), and converting between 1 and 3 channels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError, DataError, choices_message

FITS = ("resize", "pad")

_RESIZE_CHUNK = 1024  # images per interpolate call: bounds the float32 copy held in memory


def check_fit(fit: str) -> None:
    if fit not in FITS:
        raise ConfigError(choices_message("fit method", fit, FITS))


def resize_images(x: Tensor, size: int, fit: str = "resize") -> Tensor:
    """Resize uint8 images (N, C, H, W) to (N, C, size, size) by `fit` ("resize" or "pad"); bilinear, antialiased."""
    check_fit(fit)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"image size must be a positive integer, got {size!r}")
    if x.dtype != torch.uint8 or x.dim() != 4:
        raise DataError(f"resize_images needs uint8 (N, C, H, W) images, got {x.dtype} {tuple(x.shape)}")
    n, c, h, w = x.shape
    if (h, w) == (size, size):
        return x
    if fit == "resize":
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    elif h <= size and w <= size:
        nh, nw = h, w
    else:
        scale = size / max(h, w)
        nh, nw = min(size, max(1, round(h * scale))), min(size, max(1, round(w * scale)))
    out = torch.zeros((n, c, size, size), dtype=torch.uint8)
    for start in range(0, n, _RESIZE_CHUNK):
        chunk = x[start : start + _RESIZE_CHUNK]
        if (nh, nw) != (h, w):
            scaled = F.interpolate(chunk.float(), size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
            chunk = scaled.round_().clamp_(0, 255).to(torch.uint8)
        if fit == "resize":
            top, left = (nh - size) // 2, (nw - size) // 2
            out[start : start + len(chunk)] = chunk[:, :, top : top + size, left : left + size]
        else:
            top, left = (size - nh) // 2, (size - nw) // 2
            out[start : start + len(chunk), :, top : top + nh, left : left + nw] = chunk
    return out


def describe_fit(fit: str, h: int | None, w: int | None, size: int) -> str:
    """A one-line description of how `resize_images` maps (h, w) images (None: of varied sizes) to `size`."""
    if (h, w) == (size, size):
        return "none (already at size)"
    if fit == "resize":
        return f"bilinear, antialiased: shorter side to {size}, then centre crop to {size}x{size}"
    if h is not None and w is not None and h <= size and w <= size:
        return f"no scaling: centred and padded with 0 to {size}x{size}"
    return f"bilinear, antialiased where larger than {size}: longer side to at most {size}, then padded with 0"


def convert_channels(x: Tensor, channels: int) -> Tensor:
    """Convert uint8 images between 1 and 3 channels (gray -> RGB repeats; RGB -> gray uses ITU-R 601 luma)."""
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1).contiguous()
    if c == 3 and channels == 1:
        out = torch.empty((x.shape[0], 1, *x.shape[2:]), dtype=torch.uint8)
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        for start in range(0, len(x), _RESIZE_CHUNK):
            chunk = x[start : start + _RESIZE_CHUNK].float()
            gray = (chunk * weights).sum(1, keepdim=True).round_().clamp_(0, 255)
            out[start : start + len(chunk)] = gray.to(torch.uint8)
        return out
    raise ConfigError(f"cannot convert {c}-channel images to {channels} channels; channels must be 1 or 3")
