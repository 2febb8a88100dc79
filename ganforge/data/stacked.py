"""Stacked datasets: three independent grey images as the colour channels of one image (1,000 modes).

The image-domain test of mode collapse used by Unrolled GAN (Metz et al. 2017), VEEGAN (Srivastava
et al. 2017) and PacGAN (Lin et al. 2018) on MNIST; here on Fashion-MNIST or scikit-learn's
digits, which ship or install offline. An image's mode is the triple of its channels' classes,
100 c_R + 10 c_G + c_B, so a 10-class base gives 1,000 modes. The draws are fixed by the seed
(train and test are independent draws from their own base splits).
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from .dataset import ArrayDataset

BASES = ("fashion_mnist", "digits")
CHANNELS = 3


def stack_images(base: ArrayDataset, n: int, seed: int) -> ArrayDataset:
    """`n` images whose channels are independent uniform draws from the grey `base` dataset."""
    if base.x.shape[1] != 1 or base.y is None:
        raise ConfigError(
            f"a stacked dataset needs a labelled grey base, got {base.name!r} with {base.x.shape[1]} channel(s)."
        )
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(base), (n, CHANNELS), generator=gen)
    x = base.x[:, 0][idx]  # (n, 3, H, W): channel c of image i is base image idx[i, c]
    k = base.num_classes
    labels = base.y[idx]
    y = mode_of(labels, k)
    info = {"base": base.name, "base_info": dict(base.info), "modes": k**CHANNELS, "seed": seed}
    return ArrayDataset(
        name=f"stacked_{base.name}",
        kind="image",
        x=x.contiguous(),
        y=y,
        num_classes=k**CHANNELS,
        class_names=[],
        info=info,
    )


def mode_of(labels: torch.Tensor, k: int = 10) -> torch.Tensor:
    """(N, 3) channel classes -> mode index 0..k^3 - 1."""
    return (labels[:, 0] * k + labels[:, 1]) * k + labels[:, 2]
