"""Sliced Wasserstein distance between Laplacian-pyramid patch descriptors (Karras et al. 2018, ProGAN sec. 5)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ganforge.errors import ConfigError
from ganforge.metrics.stats import ArrayLike, as_images

# Binomial 5-tap filter [1, 4, 6, 4, 1] / 16, the separable kernel of cv2.pyrDown / pyrUp
# that ProGAN's sliced_wasserstein.py uses (as a 5x5 / 256 kernel).
_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    c = x.shape[1]
    k = (torch.outer(_BINOMIAL, _BINOMIAL) * gain).to(x.device, x.dtype).expand(c, 1, 5, 5)
    # 'reflect' is scipy.ndimage's mode='mirror' (edge not repeated), which ProGAN uses.
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k, groups=c)


def _pyr_down(x: torch.Tensor) -> torch.Tensor:
    return _blur(x)[:, :, ::2, ::2]


def _pyr_up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    # Gain 4 restores the energy of the zero-stuffed image; crop handles odd finer sizes.
    return _blur(up, gain=4.0)[:, :, : size[0], : size[1]]


def laplacian_pyramid(images: torch.Tensor, num_levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid, finest first, last level the low-pass residual (Burt & Adelson 1983; ProGAN's generate_laplacian_pyramid)."""
    pyramid = [images]
    for _ in range(1, num_levels):
        coarse = _pyr_down(pyramid[-1])
        h, w = pyramid[-1].shape[-2:]
        pyramid[-1] = pyramid[-1] - _pyr_up(coarse, (h, w))
        pyramid.append(coarse)
    return pyramid


def _level_sizes(h: int, w: int, min_resolution: int) -> list[tuple[int, int]]:
    sizes = []
    while min(h, w) >= min_resolution:
        sizes.append((h, w))
        h, w = (h + 1) // 2, (w + 1) // 2  # size after [::2] slicing
    return sizes


def _patch_centres(
    gen: torch.Generator, n_images: int, per_image: int, sizes: list[tuple[int, int]], half: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    # Drawn for the whole set up front so the result does not depend on batch_size.
    out = []
    for h, w in sizes:
        ys = torch.randint(half, h - half, (n_images * per_image,), generator=gen)
        xs = torch.randint(half, w - half, (n_images * per_image,), generator=gen)
        out.append((ys, xs))
    return out


def _descriptors(
    images: torch.Tensor,
    sizes: list[tuple[int, int]],
    centres: list[tuple[torch.Tensor, torch.Tensor]],
    per_image: int,
    nhood: int,
    batch_size: int,
) -> list[torch.Tensor]:
    n, c = images.shape[:2]
    half = nhood // 2
    dev = images.device
    off = torch.arange(-half, half + 1, device=dev)
    chan = torch.arange(c, device=dev).view(1, c, 1, 1)
    levels_out: list[list[torch.Tensor]] = [[] for _ in sizes]
    for lo in range(0, n, batch_size):
        batch = images[lo : lo + batch_size]
        b = batch.shape[0]
        pyr = laplacian_pyramid(batch, len(sizes))
        img = torch.arange(b, device=dev).repeat_interleave(per_image).view(-1, 1, 1, 1)
        for li, level in enumerate(pyr):
            ys, xs = (t.to(dev) for t in centres[li])
            ys = ys[lo * per_image : (lo + b) * per_image].view(-1, 1, 1, 1) + off.view(1, 1, -1, 1)
            xs = xs[lo * per_image : (lo + b) * per_image].view(-1, 1, 1, 1) + off.view(1, 1, 1, -1)
            levels_out[li].append(level[img, chan, ys, xs])  # (b * per_image, C, nhood, nhood)
    result = []
    for parts in levels_out:
        desc = torch.cat(parts)
        # Per-channel normalisation over the whole set, per level (ProGAN's finalize_descriptors).
        # Each set uses its own statistics, as in ProGAN, so SWD compares the shape of the patch
        # distributions, not a global per-channel offset or gain; the floor on std keeps a
        # constant level (e.g. a collapsed generator) finite instead of NaN.
        var, mean = torch.var_mean(desc, dim=(0, 2, 3), keepdim=True, correction=0)
        desc = (desc - mean) / var.sqrt().clamp_min(1e-8)
        result.append(desc.reshape(desc.shape[0], -1))
    return result


def _swd(a: torch.Tensor, b: torch.Tensor, gen: torch.Generator, dir_repeats: int, dirs_per_repeat: int) -> float:
    results = []
    chunk = 32  # directions per matmul: bounds memory at O(descriptors * chunk)
    for _ in range(dir_repeats):
        dirs = torch.randn(a.shape[1], dirs_per_repeat, generator=gen, dtype=torch.float64)
        dirs = (dirs / dirs.norm(dim=0, keepdim=True)).to(a.device, a.dtype)
        total = 0.0
        for lo in range(0, dirs_per_repeat, chunk):
            d = dirs[:, lo : lo + chunk]
            pa = torch.sort(a @ d, dim=0).values
            pb = torch.sort(b @ d, dim=0).values
            total += float((pa - pb).abs().sum(dtype=torch.float64))
        results.append(total / (a.shape[0] * dirs_per_repeat))
    return sum(results) / len(results)


@torch.no_grad()
def sliced_wasserstein(
    real_images: ArrayLike,
    fake_images: ArrayLike,
    descriptors_per_image: int = 128,
    nhood_size: int = 7,
    dir_repeats: int = 4,
    dirs_per_repeat: int = 128,
    min_resolution: int = 16,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, Any]:
    """SWD x 1e3 per Laplacian-pyramid level and averaged (Karras et al. 2018, ProGAN sec. 5).

    Returns ``resolutions`` (level heights, finest first), ``swd_x1e3`` (one value per level),
    ``swd_x1e3_avg`` (their mean) and ``protocol`` (every setting). Images are (N, C, H, W) in
    [-1, 1]; both sets must have the same shape. Deterministic for a given seed.
    """
    for name, v, lo in (
        ("descriptors_per_image", descriptors_per_image, 1),
        ("dir_repeats", dir_repeats, 1),
        ("dirs_per_repeat", dirs_per_repeat, 1),
        ("min_resolution", min_resolution, 1),
        ("batch_size", batch_size, 1),
        ("nhood_size", nhood_size, 1),
    ):
        if int(v) < lo:
            raise ConfigError(f"{name} must be >= {lo}, got {v}")
    if int(nhood_size) % 2 != 1:
        raise ConfigError(f"nhood_size must be odd, got {nhood_size}")
    real = as_images(real_images, "real_images", min_samples=1)
    fake = as_images(fake_images, "fake_images", min_samples=1)
    if real.shape != fake.shape:
        raise ConfigError(
            f"real and fake images must have the same shape (N, C, H, W) for SWD, got {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    n, _, h, w = real.shape
    per_image, nhood = int(descriptors_per_image), int(nhood_size)
    sizes = _level_sizes(h, w, max(int(min_resolution), nhood))
    if not sizes:
        raise ConfigError(
            f"images of size {h}x{w} are smaller than min_resolution={min_resolution} / nhood_size={nhood}; no pyramid level fits"
        )
    gen = torch.Generator().manual_seed(int(seed))
    half = nhood // 2
    # ProGAN draws patch positions independently per set; sharing them (positions never depend
    # on image content, so each set is still sampled uniformly) makes SWD(x, x) exactly 0 and
    # removes position noise from comparisons between sets.
    centres = _patch_centres(gen, n, per_image, sizes, half)
    real_d = _descriptors(real, sizes, centres, per_image, nhood, int(batch_size))
    fake_d = _descriptors(fake, sizes, centres, per_image, nhood, int(batch_size))
    dists = [_swd(a, b, gen, int(dir_repeats), int(dirs_per_repeat)) * 1e3 for a, b in zip(real_d, fake_d)]
    return {
        "resolutions": [s[0] for s in sizes],
        "swd_x1e3": dists,
        "swd_x1e3_avg": sum(dists) / len(dists),
        "protocol": {
            "reference": "Karras et al. 2018 (ProGAN), sliced_wasserstein.py",
            "num_images": n,
            "descriptors_per_image": per_image,
            "nhood_size": nhood,
            "dir_repeats": int(dir_repeats),
            "dirs_per_repeat": int(dirs_per_repeat),
            "min_resolution": int(min_resolution),
            "pyramid_filter": "binomial [1,4,6,4,1]/16 (5x5), mirror padding",
            "normalisation": "per set, per level, per channel mean/std",
            "patch_positions": "uniform, shared by both sets",
            "seed": int(seed),
        },
    }
