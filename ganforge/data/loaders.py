"""The dataset registry and `load_dataset`, the one entry point that checks options and records the protocol.

A recipe's `DataConfig` is the one declaration of the data options; every registered dataset is a
`DatasetSpec`: a loader that reads what it needs from that config (and applies `limit`, as early as it
can), plus what the dataset declares about itself (a test split, known mixture centres, a path, a base).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..config import DataConfig
from ..errors import ConfigError, choices_message
from ..registry import Registry
from .dataset import ArrayDataset
from .image_folder import load_folder
from .images import load_cifar10, load_digits_images, load_mnist_like
from .mixtures import load_points, sample_mixture
from .resize import FITS
from .subsets import limit_indices

SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: how to load it and what it declares about itself."""

    name: str
    load: Callable[[DataConfig, int], ArrayDataset]  # (options, seed) -> the dataset, `limit` applied
    summary: str
    has_test_split: bool = False  # a 'test' split exists (evaluation floors, the memorisation check)
    is_mixture: bool = False  # a 2-D mixture with known centres (mixture_spec): mode metrics, centres in plots
    path: str | None = None  # what `path` must point to, for the datasets that read one
    takes_base: bool = False  # built on another dataset named by `base`


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def _register(spec: DatasetSpec) -> None:
    DATASETS.register(spec.name)(spec)


def limit_dataset(ds: ArrayDataset, limit: int | None) -> ArrayDataset:
    """The seeded class-balanced subset `data.limit` asks for, for loaders that cannot stop early (and plugins)."""
    idx = limit_indices(len(ds), limit, ds.y)
    return ds if idx is None else ds.subset(idx)


def _mixture(cfg: DataConfig, seed: int) -> ArrayDataset:
    return limit_dataset(sample_mixture(cfg.name, cfg.n_points, seed), cfg.limit)


def _points(cfg: DataConfig, seed: int) -> ArrayDataset:
    if cfg.labels:
        raise ConfigError("dataset 'points' has no labels; use labels=False (a .npy file holds only coordinates)")
    assert cfg.path is not None  # load_dataset refuses 'points' without a path
    return limit_dataset(load_points(cfg.path), cfg.limit)


def _stacked(cfg: DataConfig, seed: int) -> ArrayDataset:
    from .stacked import BASES, CHANNELS, stack_images

    if cfg.base not in BASES:
        raise ConfigError(choices_message("base for data 'stacked' (data.base):", str(cfg.base), BASES))
    if cfg.channels not in (None, CHANNELS):
        raise ConfigError(f"a stacked dataset has {CHANNELS} channels (one base image each), not {cfg.channels}.")
    # The whole base split at the stacked size (its own limit and channels do not apply).
    base = DataConfig(
        name=cfg.base,
        root=cfg.root,
        image_size=cfg.image_size or 32,
        fit=cfg.fit,
        split=cfg.split,
        download=cfg.download,
    )
    grey = DATASETS.get(cfg.base).load(base, seed)
    # A fixed draw (not the run's seed), so every run and every evaluation sees the same dataset; train and
    # test are independent draws, each as large as its base split so that an epoch keeps its meaning.
    return limit_dataset(stack_images(grey, len(grey), seed=SPLITS.index(cfg.split)), cfg.limit)


def _unpaired(cfg: DataConfig, seed: int) -> Any:
    from .unpaired import load_unpaired

    def side(name: str, split: str) -> tuple[ArrayDataset, bool]:
        sub = getattr(cfg, name)
        if sub is None:
            raise ConfigError(
                f"data 'unpaired' needs both domains: data.{name} is missing, e.g. "
                f"data.{name}: {{name: fashion_mnist, classes: [sneaker]}} or {{name: folder, path: ...}}."
            )
        if sub.name == "unpaired":
            raise ConfigError(f"data.{name} must be a dataset of one domain, not another 'unpaired' dataset.")
        # The outer spec's sizes and places apply to a side that does not set its own.
        fill = {k: getattr(cfg, k) for k in ("image_size", "channels", "root", "limit") if getattr(sub, k) is None}
        native = has_test_split(sub.name)
        try:
            ds = load_dataset(dataclasses.replace(sub, **fill), split=split if native else "train", seed=seed)
        except ConfigError as e:
            raise ConfigError(f"data.{name}: {e}") from None
        return ds, native

    return load_unpaired(side, cfg.split)


def _ignore_seed(load: Callable[[DataConfig], ArrayDataset]) -> Callable[[DataConfig, int], ArrayDataset]:
    return lambda cfg, seed: load(cfg)


for _spec in (
    DatasetSpec("ring", _mixture, "8 Gaussians (std 0.01) on the unit circle.", is_mixture=True),
    DatasetSpec("grid", _mixture, "25 Gaussians (std 0.05) on {-4, -2, 0, 2, 4}^2.", is_mixture=True),
    DatasetSpec(
        "points",
        _points,
        "User points from an (N, D) .npy file, in their own coordinates; no labels.",
        path="a .npy file holding an (N, D) array of points",
    ),
    DatasetSpec(
        "digits",
        _ignore_seed(load_digits_images),
        "sklearn's 8x8 digits (1437 train / 360 test, stratified and seed-fixed), 1 channel, default size 16.",
        has_test_split=True,
    ),
    DatasetSpec(
        "mnist", _ignore_seed(load_mnist_like), "MNIST digits (1x28x28), default size 32.", has_test_split=True
    ),
    DatasetSpec(
        "fashion_mnist",
        _ignore_seed(load_mnist_like),
        "Fashion-MNIST (1x28x28), default size 32; found in /usr/share/datasets/fashion-mnist when installed.",
        has_test_split=True,
    ),
    DatasetSpec("cifar10", _ignore_seed(load_cifar10), "CIFAR-10 (3x32x32) via torchvision.", has_test_split=True),
    DatasetSpec(
        "folder",
        _ignore_seed(load_folder),
        "A tree of image files; default 3 channels at 64x64; labels=True takes classes from first-level subfolders.",
        path="a directory of PNG/JPEG/BMP/WebP images (searched recursively)",
    ),
    DatasetSpec(
        "unpaired",
        _unpaired,
        "Two image domains `a` and `b` (each any dataset spec), shuffled independently, "
        "for translation (CycleGAN); each keeps a test split.",
        has_test_split=True,
    ),
    DatasetSpec(
        "stacked",
        _stacked,
        "Three independent `base` images (fashion_mnist or digits) as RGB channels: 1,000 modes (stacked MNIST).",
        has_test_split=True,
        takes_base=True,
    ),
):
    _register(_spec)


def dataset_spec(name: str) -> DatasetSpec:
    """The declaration of dataset `name`; an unknown name raises ConfigError listing the choices."""
    return DATASETS.get(name)


def is_mixture(name: str) -> bool:
    """Whether `name` is a registered 2-D mixture with known centres (False for any other name)."""
    return name in DATASETS and DATASETS.get(name).is_mixture


def has_test_split(name: str) -> bool:
    """Whether `name` is a registered dataset with a 'test' split (False for any other name)."""
    return name in DATASETS and DATASETS.get(name).has_test_split


def _positive_int(what: str, value: Any, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a positive integer, got {value!r}")


def load_dataset(data: DataConfig | str, *, split: str | None = None, seed: int = 0, **options: Any) -> ArrayDataset:
    """Load the dataset a DataConfig describes (its split unless `split` is given; `seed` draws the mixtures).

    A name and DataConfig fields as keywords also work (`load_dataset("digits", image_size=32)`);
    options a dataset does not use are ignored, except path, base and split, which are refused.
    """
    cfg = DataConfig(name=data, **options) if isinstance(data, str) else dataclasses.replace(data, **options)
    spec = DATASETS.get(cfg.name)
    split = cfg.split if split is None else split
    if split not in SPLITS:
        raise ConfigError(choices_message("split", split, SPLITS))
    if cfg.fit not in FITS:
        raise ConfigError(choices_message("fit method", cfg.fit, FITS))
    _positive_int("image_size", cfg.image_size)
    _positive_int("n_points", cfg.n_points, allow_none=False)
    _positive_int("limit", cfg.limit)
    if cfg.channels is not None and (isinstance(cfg.channels, bool) or cfg.channels not in (1, 3)):
        raise ConfigError(f"channels must be 1 (grayscale) or 3 (RGB), got {cfg.channels!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    if spec.path is not None and cfg.path is None:
        raise ConfigError(f"dataset {cfg.name!r} needs a path: {spec.path}")
    if spec.path is None and cfg.path is not None:
        takes = ", ".join(sorted(n for n in DATASETS if DATASETS.get(n).path is not None))
        raise ConfigError(
            f"dataset {cfg.name!r} does not read a path (got {os.fspath(cfg.path)!r}); only {takes} take one"
        )
    if not spec.takes_base and cfg.base is not None:
        raise ConfigError(
            f"dataset {cfg.name!r} takes no base (got {cfg.base!r}); only 'stacked' is built on another dataset."
        )
    if cfg.name != "unpaired" and (cfg.a is not None or cfg.b is not None):
        raise ConfigError(f"dataset {cfg.name!r} has no sides; data.a and data.b belong to name: unpaired.")
    if cfg.classes is not None and cfg.name == "unpaired":
        raise ConfigError("data 'unpaired': set classes on a side (data.a.classes, data.b.classes), not on both.")
    if not spec.has_test_split and split != "train":
        raise ConfigError(f"dataset {cfg.name!r} has only a 'train' split, so split={split!r} is not available")

    cfg = dataclasses.replace(
        cfg,
        split=split,
        labels=bool(cfg.labels),
        download=bool(cfg.download),
        path=None if cfg.path is None else os.fspath(cfg.path),
        root=None if cfg.root is None else os.fspath(cfg.root),
    )
    if cfg.classes is not None:
        ds = _load_classes(spec, cfg, seed)
    else:
        ds = spec.load(cfg, seed)
    ds.info.update(
        {
            "name": cfg.name,
            "kind": ds.kind,
            "split": split,
            "n": len(ds),
            "shape": list(ds.shape),
            "num_classes": ds.num_classes,
            "labels": ds.y is not None,
            "limit": cfg.limit,
        }
    )
    return ds


def _norm_class(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def _load_classes(spec: DatasetSpec, cfg: DataConfig, seed: int) -> ArrayDataset:
    """The dataset restricted to `cfg.classes` (names, loosely matched, or indices); `limit` counts after the filter."""
    if not cfg.classes:
        raise ConfigError(f"data {cfg.name!r}: classes is empty; list at least one class or remove the key.")
    full = spec.load(dataclasses.replace(cfg, labels=True, limit=None, classes=None), seed)
    if full.y is None or not full.class_names:
        raise ConfigError(
            f"dataset {cfg.name!r} has no classes to pick from (data.classes); only labelled datasets "
            "(fashion_mnist, mnist, cifar10, digits, a folder with labels: true) do."
        )
    by_name = {_norm_class(n): i for i, n in enumerate(full.class_names)}
    ids = []
    for c in cfg.classes:
        key = _norm_class(c)
        if key in by_name:
            ids.append(by_name[key])
        elif str(c).isdigit() and int(c) < len(full.class_names):
            ids.append(int(c))
        else:
            raise ConfigError(choices_message(f"class of dataset {cfg.name!r}:", str(c), full.class_names))
    keep = torch.nonzero(torch.isin(full.y, torch.tensor(sorted(set(ids))))).flatten()
    ds = full.subset(keep)
    ds.info["classes"] = [full.class_names[i] for i in sorted(set(ids))]
    idx = limit_indices(len(ds), cfg.limit, ds.y)
    if idx is not None:
        ds = ds.subset(idx)
    if not cfg.labels:
        ds.y, ds.num_classes, ds.class_names = None, 0, []
    return ds


def load_data(cfg: DataConfig, seed: int = 0, split: str | None = None) -> ArrayDataset:
    """The older spelling of `load_dataset(cfg, split=split, seed=seed)`."""
    return load_dataset(cfg, split=split, seed=seed)
