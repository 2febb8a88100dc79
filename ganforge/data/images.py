"""Image datasets: sklearn digits, MNIST / Fashion-MNIST / CIFAR-10, and folders of image files.

Every loader returns uint8 (N, C, H, W) images at the requested square size; `ArrayDataset.get` scales
them to [-1, 1]. All resizing goes through `resize_images` (bilinear, antialiased, rounded back to uint8).

Fits: "resize" scales the shorter side to the target size and centre-crops the longer one (for square
images: a plain resize); "pad" keeps images that fit as they are and pads them with background 0 around
the centre (images larger than the target are first scaled down so their longer side fits).

Splits: MNIST, Fashion-MNIST and CIFAR-10 have their official train/test splits. sklearn's 1797 digits have
none, so they get a fixed stratified 80/20 split (1437 train / 360 test, `digits_split_indices`).

Every loader takes the recipe's `DataConfig` and reads the options it uses from it, `limit` included
(applied before resizing, so a small limit stays cheap): a seeded, class-balanced subset (data/subsets.py).

MNIST and Fashion-MNIST are first looked up as IDX files (gzipped or not) in system directories
(Debian's `dataset-fashion-mnist` package installs /usr/share/datasets/fashion-mnist) and in
dataset-specific folders of the data root (root/fashion_mnist, root/FashionMNIST/raw where torchvision
puts them, ...; never root itself, as both datasets use the same file names), and only otherwise
downloaded through torchvision.

Resizing and channel conversion live in `resize.py`, folders of image files in `image_folder.py`; their
public names are re-exported here.
"""

from __future__ import annotations

import gzip
import logging
import os
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from .dataset import ArrayDataset
from .image_folder import IMAGE_EXTENSIONS, list_image_files, load_folder  # noqa: F401 (re-exported)
from .resize import FITS, check_fit, convert_channels, describe_fit, resize_images  # noqa: F401 (re-exported)
from .subsets import limit_indices

if TYPE_CHECKING:
    from ..config import DataConfig

logger = logging.getLogger(__name__)

# Searched before the data root; an environment variable (os.pathsep-separated dirs) replaces the tuple.
MNIST_DIRS: tuple[str, ...] = ("/usr/share/datasets/mnist",)
FASHION_MNIST_DIRS: tuple[str, ...] = ("/usr/share/datasets/fashion-mnist",)
_IDX_SOURCES = {
    # name: (module attribute with system dirs, env var, subfolders of root, torchvision class, help)
    "mnist": (
        "MNIST_DIRS",
        "GANFORGE_MNIST_DIR",
        ("mnist", "MNIST/raw"),
        "MNIST",
        "place the four MNIST IDX files (train-images-idx3-ubyte.gz, ...) in one of those directories "
        "or set GANFORGE_MNIST_DIR to their directory",
    ),
    "fashion_mnist": (
        "FASHION_MNIST_DIRS",
        "GANFORGE_FASHION_MNIST_DIR",
        ("fashion_mnist", "fashion-mnist", "FashionMNIST/raw"),
        "FashionMNIST",
        "install it with `apt-get install dataset-fashion-mnist` (files in /usr/share/datasets/fashion-mnist), "
        "or set GANFORGE_FASHION_MNIST_DIR to a directory holding its four IDX files",
    ),
}
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def default_root() -> str:
    """The data root: $GANFORGE_DATA, else ~/.cache/ganforge/data."""
    return os.environ.get("GANFORGE_DATA") or os.path.join(os.path.expanduser("~"), ".cache", "ganforge", "data")


def _finish(
    name: str,
    x: Tensor,
    y: Tensor | None,
    class_names: list[str],
    image_size: int,
    channels: int | None,
    fit: str,
    info: dict,
) -> ArrayDataset:
    """Convert channels, resize, and wrap native uint8 images in an ArrayDataset with a full description."""
    native = list(x.shape[1:])
    channels = channels or int(x.shape[1])
    if channels < x.shape[1]:  # fewer pixels to resize after dropping colour, more before adding it
        x = convert_channels(x, channels)
    x = resize_images(x, image_size, fit)
    x = convert_channels(x, channels)
    info = {
        "name": name,
        "kind": "image",
        **info,
        "native_shape": native,
        "image_size": image_size,
        "channels": channels,
        "fit": fit,
        "resize": describe_fit(fit, native[1], native[2], image_size),
        "n": len(x),
    }
    return ArrayDataset(
        name=name,
        kind="image",
        x=x,
        y=y,
        num_classes=len(class_names) if y is not None else 0,
        class_names=list(class_names) if y is not None else [],
        info=info,
    )


DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


def digits_split_indices(split: str) -> np.ndarray:
    """Sorted indices of sklearn's digits in `split`: a stratified 80/20 split with a fixed seed.

    sklearn's digits have no official test split; the domain classifier behind FD-digits is
    trained on exactly these train indices and tested on these test indices.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    y = load_digits().target
    train_idx, test_idx = train_test_split(
        np.arange(len(y)), test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=y
    )
    return np.sort(train_idx if split == "train" else test_idx)


def load_digits_images(cfg: DataConfig) -> ArrayDataset:
    """sklearn's 8x8 handwritten digits, `split` of 1437 train / 360 test, resized to `image_size` (default 16)."""
    from sklearn.datasets import load_digits

    image_size, channels, fit, split, limit = cfg.image_size, cfg.channels, cfg.fit, cfg.split, cfg.limit

    check_fit(fit)
    bunch = load_digits()
    idx = digits_split_indices(split)
    keep = limit_indices(len(idx), limit, np.asarray(bunch.target)[idx])
    idx = idx if keep is None else idx[keep.numpy()]
    images = np.asarray(bunch.images, dtype=np.float64)[idx]
    x = torch.from_numpy(np.rint(images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)).unsqueeze(1)
    y = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64)[idx])
    info = {
        "split": split,
        "source": "sklearn.datasets.load_digits (values 0..16 scaled to 0..255); stratified 80/20 split, seed 0",
    }
    return _finish("digits", x, y, [str(i) for i in range(10)], image_size or 16, channels, fit, info)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzipped or not, as used by MNIST) into a numpy array, checking its magic number and size."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        with gzip.open(path, "rb") if gz else open(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES or data[3] == 0:
        raise DataError(f"{path} is not an IDX file (bad magic number {data[:4].hex() or 'none'})")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"IDX file {path} is truncated (header needs {header} bytes, file has {len(data)})")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(
            f"IDX file {path} has {len(data)} bytes but its header (shape {dims}, {dtype}) needs {expected}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))


def idx_search_dirs(name: str, root: str) -> list[str]:
    """Directories searched, in order, for the IDX files of `mnist` or `fashion_mnist`."""
    attr, env, subdirs, _, _ = _IDX_SOURCES[name]
    env_dirs = os.environ.get(env)
    system = [d for d in env_dirs.split(os.pathsep) if d] if env_dirs else list(globals()[attr])
    # Only dataset-specific subfolders of root: MNIST and Fashion-MNIST use the same file names.
    return system + [os.path.join(root, s) for s in subdirs]


def _find_idx(name: str, root: str, split: str) -> tuple[str, str] | None:
    images, labels = _IDX_FILES[split]
    for d in idx_search_dirs(name, root):
        found = []
        for stem in (images, labels):
            hits = [os.path.join(d, stem + ext) for ext in (".gz", "")]
            hits = [p for p in hits if os.path.isfile(p)]
            if not hits:
                break
            found.append(hits[0])
        if len(found) == 2:
            return found[0], found[1]
    return None


def load_idx_pair(images_path: str, labels_path: str) -> tuple[Tensor, Tensor]:
    """Images (N, 1, H, W) uint8 and labels (N,) int64 from a pair of MNIST-style IDX files."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{images_path} must hold uint8 images (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{labels_path} must hold {len(images)} labels to match {images_path}, got shape {labels.shape}"
        )
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def load_mnist_like(cfg: DataConfig) -> ArrayDataset:
    """MNIST or Fashion-MNIST (`cfg.name`) from local IDX files if present, else via torchvision (downloading if allowed)."""
    name, root, image_size, channels = cfg.name, cfg.root, cfg.image_size, cfg.channels
    fit, split, download, limit = cfg.fit, cfg.split, cfg.download, cfg.limit
    check_fit(fit)
    root = os.path.abspath(os.path.expanduser(root or default_root()))
    _, _, _, tv_class, help_text = _IDX_SOURCES[name]
    found = _find_idx(name, root, split)
    if found is not None:
        x, y = load_idx_pair(*found)
        source = os.path.dirname(found[0])
    elif not download:
        dirs = ", ".join(idx_search_dirs(name, root))
        raise DataError(
            f"{name} ({split} split) was not found in {dirs} and downloading is off; {help_text}, "
            f"or allow downloading (download=True) into {root}."
        )
    else:
        import torchvision

        logger.info("%s not found locally; downloading it with torchvision into %s", name, root)
        try:
            os.makedirs(root, exist_ok=True)
            tv = getattr(torchvision.datasets, tv_class)(root, train=split == "train", download=True)
        except Exception as exc:  # torchvision raises RuntimeError, URLError, HTTPError, ... on failure
            raise DataError(
                f"{name} ({split} split) was not found in {', '.join(idx_search_dirs(name, root))} and downloading "
                f"it into {root} failed ({_one_line(exc)}); {help_text}."
            ) from exc
        x, y = tv.data.to(torch.uint8).unsqueeze(1), tv.targets.to(torch.int64)
        source = os.path.join(root, tv_class, "raw")
    keep = limit_indices(len(y), limit, y)
    if keep is not None:
        x, y = x[keep], y[keep]
    classes = FASHION_MNIST_CLASSES if name == "fashion_mnist" else [str(i) for i in range(10)]
    info = {"split": split, "source": source}
    return _finish(name, x, y, classes, image_size or 32, channels, fit, info)


def load_cifar10(cfg: DataConfig) -> ArrayDataset:
    """CIFAR-10 (3x32x32) through torchvision under `root`, downloading it if allowed."""
    import torchvision

    root, image_size, channels = cfg.root, cfg.image_size, cfg.channels
    fit, split, download, limit = cfg.fit, cfg.split, cfg.download, cfg.limit

    check_fit(fit)
    root = os.path.abspath(os.path.expanduser(root or default_root()))
    try:
        if download:
            os.makedirs(root, exist_ok=True)
        tv = torchvision.datasets.CIFAR10(root, train=split == "train", download=download)
    except Exception as exc:  # torchvision raises RuntimeError, URLError, HTTPError, ... on failure
        how = "downloading it failed" if download else "downloading is off"
        raise DataError(
            f"cifar10 was not found in {root} ({_one_line(exc)}) and {how}; allow downloading (download=True) "
            f"on a machine with internet access, or put the extracted cifar-10-batches-py folder in {root}."
        ) from exc
    y = torch.as_tensor(tv.targets, dtype=torch.int64)
    keep = limit_indices(len(y), limit, y)
    data = tv.data if keep is None else tv.data[keep.numpy()]
    y = y if keep is None else y[keep]
    x = torch.from_numpy(np.ascontiguousarray(data)).permute(0, 3, 1, 2).contiguous()
    info = {"split": split, "source": os.path.join(root, "cifar-10-batches-py")}
    return _finish("cifar10", x, y, CIFAR10_CLASSES, image_size or 32, channels, fit, info)
