"""Folders of image files: scanning them, decoding each file (unreadable ones skipped) and loading them as a dataset."""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from ..errors import DataError
from .dataset import ArrayDataset
from .resize import check_fit, describe_fit, resize_images
from .subsets import limit_order

if TYPE_CHECKING:
    from ..config import DataConfig

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def list_image_files(root: str) -> list[str]:
    """Image files under `root` (recursive, hidden entries skipped) as sorted '/'-separated relative paths."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = os.path.relpath(dirpath, root)
        for f in filenames:
            if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS):
                files.append(Path(rel, f).as_posix() if rel != "." else f)
    return sorted(files)


# PIL modes of 16-bit (and 32-bit integer) greyscale: `convert("L")` clips them at 255 instead of scaling.
_WIDE_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _wide_grey_to_uint8(img: object) -> np.ndarray:
    """A 16-bit greyscale PIL image as uint8 (H, W): value * 255 / 65535, rounded (mode I is read as 16-bit)."""
    a = np.asarray(img, dtype=np.float64)
    if a.ndim == 3:  # some PIL builds hand I;16 over as (H, W, 1)
        a = a[:, :, 0]
    return np.rint(np.clip(a, 0, 65535) / 257.0).astype(np.uint8)


def _decode(path: str, channels: int) -> np.ndarray | None:
    """The image at `path` as uint8 (H, W, C), or None if it cannot be read.

    16-bit greyscale is scaled to 8 bits (PIL's own conversion would clip it); 16-bit colour PNGs come
    out of PIL as 8-bit RGB(A) already. Alpha is dropped (transparent pixels keep their colour); a
    palette image with a transparent entry shows that entry's palette colour.
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            if img.mode in _WIDE_GREY_MODES:
                grey = _wide_grey_to_uint8(img)
                arr = grey[:, :, None] if channels == 1 else np.repeat(grey[:, :, None], 3, axis=2)
            else:
                if img.mode in ("P", "PA") and ("transparency" in img.info or img.mode == "PA"):
                    img = img.convert("RGBA")  # avoids PIL's palette-transparency warning
                arr = np.array(img.convert("L" if channels == 1 else "RGB"))  # a writable copy, torch wants one
    except Exception:
        return None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.size == 0:
        return None
    return arr


def load_folder(cfg: DataConfig) -> ArrayDataset:
    """All PNG/JPEG/BMP/WebP images under `path`, decoded up-front; unreadable files are skipped with one warning."""
    path, image_size, channels, fit, labels, limit = (
        cfg.path,
        cfg.image_size,
        cfg.channels,
        cfg.fit,
        cfg.labels,
        cfg.limit,
    )
    check_fit(fit)
    assert path is not None  # load_dataset refuses a folder dataset without a path
    root = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(root):
        what = "is not a directory" if os.path.exists(root) else "does not exist"
        raise DataError(f"image folder {path!r} {what}")
    files = list_image_files(root)
    if not files:
        raise DataError(f"image folder {path!r} has no {'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} files")
    class_names: list[str] = []
    file_class: list[int] = []
    if labels:
        top = [f for f in files if "/" not in f]
        if top:
            raise DataError(
                f"labels=True needs one subfolder per class (e.g. {path}/cat/001.png), but {len(top)} image "
                f"files lie directly in {path!r} (e.g. {top[0]!r}); move them into class folders or use labels=False"
            )
        class_names = sorted({f.split("/", 1)[0] for f in files})
        class_id = {c: i for i, c in enumerate(class_names)}
        file_class = [class_id[f.split("/", 1)[0]] for f in files]

    size = image_size or 64
    channels = channels or 3

    def work(i: int) -> tuple[int, Tensor | None]:
        arr = _decode(os.path.join(root, files[i]), channels)
        if arr is None:
            return i, None
        img = torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0)
        return i, resize_images(img, size, fit)[0]

    want = len(files) if limit is None else min(limit, len(files))
    # With a limit, files are read in data.limit's order (seeded, classes in turn) until `want` decoded; the
    # kept ones are put back in path order below.
    order = list(range(len(files))) if limit is None else limit_order(len(files), file_class or None).tolist()
    kept: list[tuple[int, Tensor]] = []
    skipped: list[str] = []
    tried = 0
    workers = max(1, min(4, os.cpu_count() or 1))
    # Files go to the pool in ordered chunks and results are read back in order, so the dataset is
    # deterministic whatever the threads' timing; chunks (not one big map) let a `limit` stop early while
    # every submitted task still finishes before the pool shuts down.
    with (
        ThreadPoolExecutor(workers) as pool,
        tqdm(total=want, desc=f"decoding {path}", unit="img", disable=None) as bar,
    ):
        start = 0
        while len(kept) < want and start < len(files):
            chunk = order[start : min(len(files), start + min(256, max(16, want - len(kept))))]
            start += len(chunk)
            for i, img in pool.map(work, chunk):
                if len(kept) >= want:
                    break
                tried += 1
                if img is None:
                    skipped.append(files[i])
                else:
                    kept.append((i, img))
                    bar.update(1)

    if skipped:
        shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        msg = f"skipped {len(skipped)} of {tried} files under {path} that could not be read: {shown}"
        # One warning, not also a log record: with no logging configured (the CLI), Python's last-resort
        # handler printed it a second time on stderr, without the `ganforge: warning:` prefix.
        warnings.warn(msg, UserWarning, stacklevel=2)
    if not kept:
        raise DataError(f"none of the {tried} image files under {path!r} could be read (e.g. {skipped[0]!r})")

    kept.sort(key=lambda t: t[0])
    x = torch.stack([img for _, img in kept])
    y = torch.tensor([file_class[i] for i, _ in kept], dtype=torch.int64) if labels else None
    info = {
        "name": "folder",
        "kind": "image",
        "split": "train",
        "source": root,
        "image_size": size,
        "channels": channels,
        "fit": fit,
        "resize": describe_fit(fit, None, None, size),
        "files": len(files),
        "tried": tried,
        "skipped": len(skipped),
        "skipped_files": skipped[:20],
        "labels": bool(labels),
        "n": len(x),
    }
    return ArrayDataset(
        name="folder",
        kind="image",
        x=x,
        y=y,
        num_classes=len(class_names),
        class_names=class_names,
        info=info,
    )
