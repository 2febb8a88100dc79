"""A disk cache of reference statistics: a real dataset's features under one extractor, computed once.

Scoring a generator against Fashion-MNIST's 60,000 training images spends minutes (on one CPU core)
running the real images through the classifier, and every new process paid it again: each benchmark
cell, each resumed run with `eval.every`, each `ganforge eval`. The statistics depend only on the
images, the extractor (name, weights, layers, resizing: its `protocol()`), the device type, the
subset sizes kept and the batch size, so they are stored under a hash of exactly those, in
`$GANFORGE_CACHE/reference` (default `~/.cache/ganforge/reference`), one file per key written
atomically and loaded with `weights_only=True`. `GANFORGE_CACHE=off` turns the cache off. A file that
cannot be read is ignored (and replaced) with a warning, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write_bytes

# Bump when FeatureStats or the way reference statistics are computed changes: older files are then ignored.
FORMAT = 1


def cache_dir() -> Path | None:
    """Where reference statistics are kept, or None when GANFORGE_CACHE is 'off' (or '0', 'none', 'false')."""
    root = os.environ.get("GANFORGE_CACHE", "")
    if root.strip().lower() in ("off", "0", "none", "false", "no"):
        return None
    base = Path(root) if root else Path.home() / ".cache" / "ganforge"
    return base / "reference"


def _fingerprint(h: Any, dataset: Any) -> None:
    """Feed a dataset's identity into hash `h`: its samples and labels byte for byte, and its kind."""
    x = dataset.x.contiguous()
    h.update(f"{dataset.kind}|{x.dtype}|{tuple(x.shape)}|".encode())
    h.update(x.numpy().tobytes() if x.device.type == "cpu" else x.cpu().numpy().tobytes())
    y = getattr(dataset, "y", None)
    h.update(b"|labels|" + (y.contiguous().cpu().numpy().tobytes() if y is not None else b"none"))


def _device_type(extractor: Any) -> str:
    """The device type the extractor computes on (a wrapper's, such as the stacked-data one, is its base's)."""
    for e in (extractor, getattr(extractor, "base", None)):
        try:
            d = getattr(e, "device", None)
        except StopIteration:  # a module without parameters
            d = None
        if isinstance(d, torch.device):
            return d.type
    return "cpu"


def reference_key(
    dataset: Any, extractor: Any | None, store_max: int, image_max: int, heldout: Any | None, batch_size: int
) -> str | None:
    """The cache key of one reference computation, or None when it cannot be keyed (not an in-memory dataset)."""
    if not all(hasattr(d, "x") and hasattr(d, "kind") for d in (dataset, *([heldout] if heldout is not None else []))):
        return None
    h = hashlib.sha256()
    if extractor is None:
        ident: Any = None
    else:
        try:
            ident = extractor.protocol()
        except Exception:
            return None  # an extractor that cannot describe itself cannot be told apart from another
        ident = {"protocol": ident, "device": _device_type(extractor)}
    settings = {
        "format": FORMAT,
        "extractor": ident,
        "store_max": store_max,
        "image_max": image_max,
        "batch": batch_size,
    }
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    _fingerprint(h, dataset)
    if heldout is not None:
        h.update(b"|heldout|")
        _fingerprint(h, heldout)
    return h.hexdigest()


# The classes reference statistics are made of; only these are rebuilt from a cache file.
def _classes() -> dict[str, type]:
    from .accumulate import FeatureStats, Reference, StreamingIS
    from .stacked import StackedModes
    from .stats import StreamingMoments

    return {c.__name__: c for c in (Reference, FeatureStats, StreamingMoments, StreamingIS, StackedModes)}


def _to_plain(obj: Any) -> Any:
    """Tensors, numbers, strings, lists and dicts as they are; our statistics objects as tagged dicts of their fields."""
    if isinstance(obj, torch.Tensor | int | float | str | bool) or obj is None:
        return obj
    if isinstance(obj, torch.device):
        return {"__device__": str(obj)}
    if isinstance(obj, list | tuple):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _to_plain(v) for k, v in obj.items()}
    name = type(obj).__name__
    if name not in _classes():
        raise TypeError(f"reference statistics hold a {name}, which the cache cannot store")
    return {"__class__": name, "fields": {k: _to_plain(v) for k, v in vars(obj).items()}}


def _from_plain(obj: Any, classes: dict[str, type]) -> Any:
    if isinstance(obj, list):
        return [_from_plain(v, classes) for v in obj]
    if isinstance(obj, dict):
        if set(obj) == {"__device__"}:
            return torch.device(obj["__device__"])
        if "__class__" in obj:
            cls = classes[obj["__class__"]]  # KeyError for anything else: the file is not ours
            inst: Any = object.__new__(cls)
            inst.__dict__.update({k: _from_plain(v, classes) for k, v in obj["fields"].items()})
            return inst
        return {k: _from_plain(v, classes) for k, v in obj.items()}
    return obj


def cached(key: str | None, compute: Callable[[], Any]) -> Any:
    """`compute()`'s Reference, read from the cache under `key` when there, else computed and stored."""
    root = cache_dir()
    if key is None or root is None:
        return compute()
    path = root / f"{key}.pt"
    if path.is_file():
        try:
            return _from_plain(torch.load(path, map_location="cpu", weights_only=True), _classes())
        except Exception as e:  # a file cut short or from elsewhere: recompute, and replace it below
            warnings.warn(f"ignoring the unreadable reference-statistics cache file {path}: {e}", stacklevel=2)
    ref = compute()
    try:
        root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, lambda f: torch.save(_to_plain(ref), f))
    except OSError as e:  # a read-only or full disk costs the cache, never the evaluation
        warnings.warn(f"could not store reference statistics in {root}: {e}", stacklevel=2)
    return ref
