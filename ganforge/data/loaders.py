"""The dataset registry and `load_dataset`, the one entry point that checks options and records the protocol."""

from __future__ import annotations

import inspect
import os
from typing import Any, Callable

from ..errors import ConfigError, choices_message
from ..registry import Registry
from .dataset import ArrayDataset
from .images import FITS, load_cifar10, load_digits_images, load_folder, load_mnist_like
from .mixtures import load_points, sample_mixture

DATASETS: Registry[Callable[..., ArrayDataset]] = Registry("dataset")
SPLITS = ("train", "test")

# What `path` must point to, for the datasets that read one.
_PATH_HELP = {
    "points": "a .npy file holding an (N, D) array of points",
    "folder": "a directory of PNG/JPEG/BMP/WebP images (searched recursively)",
}


@DATASETS.register("ring")
def ring(*, n_points: int = 100_000, seed: int = 0) -> ArrayDataset:
    """8 Gaussians (std 0.01) on the unit circle."""
    return sample_mixture("ring", n_points, seed)


@DATASETS.register("grid")
def grid(*, n_points: int = 100_000, seed: int = 0) -> ArrayDataset:
    """25 Gaussians (std 0.05) on {-4, -2, 0, 2, 4}^2."""
    return sample_mixture("grid", n_points, seed)


@DATASETS.register("points")
def points(*, path: str, labels: bool = False) -> ArrayDataset:
    """User points from an (N, D) .npy file, in their own coordinates; they carry no labels."""
    if labels:
        raise ConfigError("dataset 'points' has no labels; use labels=False (a .npy file holds only coordinates)")
    return load_points(path)


@DATASETS.register("digits")
def digits(
    *,
    image_size: int | None = None,
    channels: int | None = None,
    fit: str = "resize",
    split: str = "train",
    limit: int | None = None,
) -> ArrayDataset:
    """sklearn's 8x8 digits (1437 train / 360 test, stratified and seed-fixed), 1 channel, default size 16."""
    return load_digits_images(image_size=image_size, channels=channels, fit=fit, split=split, limit=limit)


@DATASETS.register("mnist")
def mnist(
    *,
    root: str | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    fit: str = "resize",
    split: str = "train",
    download: bool = True,
    limit: int | None = None,
) -> ArrayDataset:
    """MNIST digits (1x28x28), default size 32."""
    return load_mnist_like(
        "mnist",
        root=root,
        image_size=image_size,
        channels=channels,
        fit=fit,
        split=split,
        download=download,
        limit=limit,
    )


@DATASETS.register("fashion_mnist")
def fashion_mnist(
    *,
    root: str | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    fit: str = "resize",
    split: str = "train",
    download: bool = True,
    limit: int | None = None,
) -> ArrayDataset:
    """Fashion-MNIST (1x28x28), default size 32; found in /usr/share/datasets/fashion-mnist when installed."""
    return load_mnist_like(
        "fashion_mnist",
        root=root,
        image_size=image_size,
        channels=channels,
        fit=fit,
        split=split,
        download=download,
        limit=limit,
    )


@DATASETS.register("cifar10")
def cifar10(
    *,
    root: str | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    fit: str = "resize",
    split: str = "train",
    download: bool = True,
    limit: int | None = None,
) -> ArrayDataset:
    """CIFAR-10 (3x32x32) via torchvision."""
    return load_cifar10(
        root=root, image_size=image_size, channels=channels, fit=fit, split=split, download=download, limit=limit
    )


@DATASETS.register("folder")
def folder(
    *,
    path: str,
    image_size: int | None = None,
    channels: int | None = None,
    fit: str = "resize",
    labels: bool = False,
    limit: int | None = None,
) -> ArrayDataset:
    """A tree of image files; default 3 channels at 64x64; labels=True takes classes from first-level subfolders."""
    return load_folder(path=path, image_size=image_size, channels=channels, fit=fit, labels=labels, limit=limit)


@DATASETS.register("stacked")
def stacked(
    *,
    base: str | None = None,
    root: str | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    fit: str = "resize",
    split: str = "train",
    download: bool = True,
) -> ArrayDataset:
    """Three independent `base` images (fashion_mnist or digits) as RGB channels: 1,000 modes (stacked MNIST)."""
    from .stacked import BASES, CHANNELS, stack_images

    if base not in BASES:
        raise ConfigError(choices_message("base for data 'stacked' (data.base):", str(base), BASES))
    if channels not in (None, CHANNELS):
        raise ConfigError(f"a stacked dataset has {CHANNELS} channels (one base image each), not {channels}.")
    opts: dict[str, Any] = {"image_size": image_size or 32, "fit": fit, "split": split}
    if base != "digits":
        opts.update(root=root, download=download)
    grey = DATASETS.get(base)(**opts)
    # A fixed draw (not the run's seed), so every run and every evaluation sees the same dataset; train and
    # test are independent draws, each as large as its base split so that an epoch keeps its meaning.
    return stack_images(grey, len(grey), seed=SPLITS.index(split))


def _positive_int(what: str, value: Any, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a positive integer, got {value!r}")


def load_dataset(
    name: str,
    *,
    path: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    labels: bool = False,
    split: str = "train",
    fit: str = "resize",
    n_points: int = 100_000,
    download: bool = True,
    seed: int = 0,
    limit: int | None = None,
    base: str | None = None,
) -> ArrayDataset:
    """Load the registered dataset `name`; options a dataset does not use are ignored, except path, base and split."""
    loader = DATASETS.get(name)
    if split not in SPLITS:
        raise ConfigError(choices_message("split", split, SPLITS))
    if fit not in FITS:
        raise ConfigError(choices_message("fit method", fit, FITS))
    _positive_int("image_size", image_size)
    _positive_int("n_points", n_points, allow_none=False)
    _positive_int("limit", limit)
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise ConfigError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an integer, got {seed!r}")

    params = inspect.signature(loader).parameters
    if "path" in params and path is None:
        raise ConfigError(f"dataset {name!r} needs a path: {_PATH_HELP[name]}")
    if "path" not in params and path is not None:
        takes = ", ".join(sorted(_PATH_HELP))
        raise ConfigError(f"dataset {name!r} does not read a path (got {os.fspath(path)!r}); only {takes} take one")
    if "base" not in params and base is not None:
        raise ConfigError(f"dataset {name!r} takes no base (got {base!r}); only 'stacked' is built on another dataset.")
    if "split" not in params and split != "train":
        raise ConfigError(f"dataset {name!r} has only a 'train' split, so split={split!r} is not available")

    options: dict[str, Any] = {
        "path": None if path is None else os.fspath(path),
        "root": None if root is None else os.fspath(root),
        "image_size": image_size,
        "channels": channels,
        "labels": bool(labels),
        "split": split,
        "fit": fit,
        "n_points": n_points,
        "download": bool(download),
        "seed": seed,
        "limit": limit,
        "base": base,
    }
    ds = loader(**{k: v for k, v in options.items() if k in params})
    if limit is not None:
        ds = ds.head(limit)
    ds.info.update(
        {
            "name": name,
            "kind": ds.kind,
            "split": split,
            "n": len(ds),
            "shape": list(ds.shape),
            "num_classes": ds.num_classes,
            "labels": ds.y is not None,
            "limit": limit,
        }
    )
    return ds


def load_data(cfg: Any, seed: int = 0, split: str | None = None) -> ArrayDataset:
    """`load_dataset` from a recipe's DataConfig (its split unless `split` is given)."""
    return load_dataset(cfg.name, path=cfg.path, root=cfg.root, image_size=cfg.image_size, channels=cfg.channels,
                        labels=cfg.labels, split=split or cfg.split, fit=cfg.fit, n_points=cfg.n_points,
                        download=cfg.download, seed=seed, limit=cfg.limit, base=cfg.base)
