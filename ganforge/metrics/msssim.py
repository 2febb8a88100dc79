"""MS-SSIM (Wang et al. 2003) and the sample-diversity score built on it (Odena et al. 2017, AC-GAN).

The standard setting is 5 scales with weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) and an
11x11 Gaussian window (sigma 1.5) applied without padding, halving the image between scales.
That needs images of at least 11 * 2**4 = 176 pixels a side; at 32x32 only two scales (32, 16)
fit. Rather than shrink the window (which changes what SSIM measures at every scale) this module
keeps the 11x11 / 1.5 window and uses the largest number of scales whose smallest image still
holds one window, with the first weights renormalised to sum to 1. `ms_ssim_protocol` states the
choice for a given image size so reports can record it. As in tf.image.ssim_multiscale, negative
per-scale values are clamped to 0 before the weighted product, which keeps the result real.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ganforge.errors import ConfigError
from ganforge.metrics.stats import ArrayLike, as_images

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_K1, _K2 = 0.01, 0.03


def ms_ssim_protocol(
    height: int, width: int, window_size: int = 11, sigma: float = 1.5, max_scales: int = 5
) -> dict[str, Any]:
    """Scales and renormalised weights MS-SSIM uses for this image size (Wang et al. 2003, eq. 7)."""
    if int(window_size) < 1 or int(window_size) % 2 != 1:
        raise ConfigError(f"window_size must be a positive odd integer, got {window_size}")
    if not 1 <= int(max_scales) <= len(MS_SSIM_WEIGHTS):
        raise ConfigError(f"max_scales must be in [1, {len(MS_SSIM_WEIGHTS)}], got {max_scales}")
    if not float(sigma) > 0:
        raise ConfigError(f"sigma must be > 0, got {sigma}")
    h, w, scales = int(height), int(width), 0
    while scales < int(max_scales) and min(h, w) >= int(window_size):
        scales += 1
        h, w = h // 2, w // 2
    if scales == 0:
        raise ConfigError(
            f"images of size {height}x{width} are smaller than the {window_size}x{window_size} SSIM window; "
            f"pass a smaller window_size"
        )
    # The published weights sum to 1.0001; they are used as published when all 5 scales fit.
    total = 1.0 if scales == len(MS_SSIM_WEIGHTS) else sum(MS_SSIM_WEIGHTS[:scales])
    return {
        "reference": "Wang et al. 2003 MS-SSIM; diversity as in Odena et al. 2017",
        "scales": scales,
        "weights": [wt / total for wt in MS_SSIM_WEIGHTS[:scales]],
        "window_size": int(window_size),
        "sigma": float(sigma),
        "k1": _K1,
        "k2": _K2,
        "downsample": "2x2 average pooling",
        "small_image_rule": "keep the window, use the scales that fit, renormalise their weights",
        "negative_values": "clamped to 0 per scale (as tf.image.ssim_multiscale)",
    }


def _window(size: int, sigma: float, dtype: torch.dtype) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype)


def ms_ssim(
    x: ArrayLike,
    y: ArrayLike,
    value_range: tuple[float, float] = (-1.0, 1.0),
    window_size: int = 11,
    sigma: float = 1.5,
    max_scales: int = 5,
) -> torch.Tensor:
    """MS-SSIM of each pair (x[i], y[i]), shape (N,), images NCHW with values in value_range (Wang et al. 2003, eq. 7)."""
    # float32 is ample for SSIM of [-1, 1] images and several times faster than float64 on CPU.
    a = as_images(x, "x")
    b = as_images(y, "y")
    if a.shape != b.shape:
        raise ConfigError(f"x and y must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise ConfigError(f"value_range must be (low, high) with high > low, got {value_range}")
    # The luminance term assumes non-negative intensities (it is not shift invariant), so map
    # the range to [0, 1] rather than feeding [-1, 1] values with data_range 2.
    a = (a - lo) / (hi - lo)
    b = (b - lo) / (hi - lo)
    proto = ms_ssim_protocol(a.shape[2], a.shape[3], window_size, sigma, max_scales)
    c = a.shape[1]
    g = _window(proto["window_size"], proto["sigma"], a.dtype).to(a.device)
    win_h = g.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    win_w = g.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    c1, c2 = _K1**2, _K2**2

    def filt(t: torch.Tensor) -> torch.Tensor:
        # The Gaussian window is separable: two 1-D passes equal the 2-D "valid" filter.
        return F.conv2d(F.conv2d(t, win_h, groups=c), win_w, groups=c)

    factors = []
    for s in range(proto["scales"]):
        mu_a, mu_b = filt(a), filt(b)
        var_a = filt(a * a) - mu_a**2
        var_b = filt(b * b) - mu_b**2
        cov = filt(a * b) - mu_a * mu_b
        cs_map = (2 * cov + c2) / (var_a + var_b + c2)
        if s < proto["scales"] - 1:
            factors.append(cs_map.mean(dim=(2, 3)))  # (N, C)
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        else:
            lum = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
            factors.append((lum * cs_map).mean(dim=(2, 3)))
    stacked = torch.stack(factors, dim=-1).clamp_min(0.0)  # (N, C, scales)
    weights = torch.tensor(proto["weights"], dtype=stacked.dtype, device=stacked.device)
    # Per-channel product over scales, then the channel mean, as tf.image.ssim_multiscale.
    return torch.prod(stacked**weights, dim=-1).mean(dim=1)


@torch.no_grad()
def ms_ssim_diversity(
    images: ArrayLike,
    n_pairs: int = 1000,
    seed: int = 0,
    value_range: tuple[float, float] = (-1.0, 1.0),
    window_size: int = 11,
    sigma: float = 1.5,
    max_scales: int = 5,
    batch_size: int = 256,
) -> float:
    """Mean MS-SSIM over random pairs of distinct samples; lower is more diverse (Odena et al. 2017, AC-GAN).

    Images are (N, C, H, W) with values in value_range, by default [-1, 1]. The scales used for this image
    size are given by ms_ssim_protocol(H, W, window_size, sigma, max_scales); record it with the score.
    """
    imgs = as_images(images, "images", min_samples=2)
    if int(n_pairs) < 1:
        raise ConfigError(f"n_pairs must be >= 1, got {n_pairs}")
    if int(batch_size) < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    n = imgs.shape[0]
    gen = torch.Generator().manual_seed(int(seed))
    i = torch.randint(0, n, (int(n_pairs),), generator=gen)
    # A non-zero offset mod n guarantees j != i, so a sample is never paired with itself.
    j = (i + torch.randint(1, n, (int(n_pairs),), generator=gen)) % n
    total = 0.0
    for lo in range(0, int(n_pairs), int(batch_size)):
        sl = slice(lo, lo + int(batch_size))
        total += float(ms_ssim(imgs[i[sl]], imgs[j[sl]], value_range, window_size, sigma, max_scales).double().sum())
    return total / int(n_pairs)
