"""Checkpoints: atomic writes, everything needed to continue a run, safe loading, RNG capture."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from ..atomic import TMP_SUFFIX, atomic_write_bytes
from ..errors import GanforgeError

_NAME = re.compile(r"^step_(\d+)\.pt$")
CORRUPT = "corrupt"


def step_of(path: Path) -> int:
    """The step number in a checkpoint's file name."""
    m = _NAME.match(path.name)
    if m is None:
        raise ValueError(f"{path.name} is not a checkpoint name")
    return int(m.group(1))


def save_checkpoint(state: dict[str, Any], folder: Path, step: int, keep: int) -> Path:
    """Atomically save `state` as folder/step_XXXXXXX.pt, then delete all but the newest `keep` - 1 older ones.

    Only checkpoints older than the one just written are ever deleted: a file with a higher step
    number (from another history, or unreadable) is never removed by rotation.
    """
    path = folder / f"step_{step:07d}.pt"
    atomic_write_bytes(path, lambda f: torch.save(state, f))
    older = [p for p in list_checkpoints(folder) if step_of(p) < step]
    for old in older[: max(0, len(older) - (keep - 1))]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoints in `folder`, oldest first (temp files of an interrupted write are ignored)."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def why_unreadable(e: BaseException) -> str:
    """A one-line reason for a refused checkpoint (never torch's multi-paragraph advice to disable the safe loader)."""
    import pickle

    if isinstance(e, pickle.UnpicklingError) or "weights_only" in str(e) or "Weights only load failed" in str(e):
        return (
            "refused by the safe loader (weights_only=True): it holds objects other than tensors and plain "
            "values, so it was not written by ganforge, or was altered"
        )
    if isinstance(e, EOFError) or "zip archive" in str(e) or "central directory" in str(e):
        return "truncated or not a checkpoint (incomplete write, or another kind of file)"
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return f"{type(e).__name__}: {first[:200]}"


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint without executing code (weights_only=True)."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise GanforgeError(f"checkpoint {str(path)!r} does not exist.") from None
    except IsADirectoryError:
        raise GanforgeError(f"{str(path)!r} is a folder, not a checkpoint file.") from None
    except Exception as e:  # a truncated, foreign or tampered file
        raise GanforgeError(f"checkpoint {str(path)!r} could not be read: {why_unreadable(e)}.") from None
    # A generation run stores its generator as "G", a translation run its translators as "G_ab" and "G_ba".
    if not isinstance(state, dict) or not {"config", "shape"} <= set(state) or not ({"G", "G_ab"} & set(state)):
        raise GanforgeError(
            f"checkpoint {str(path)!r} could not be read: it is not a ganforge checkpoint "
            "(no config, shape and generator weights)."
        )
    return state


def find_resumable(folder: Path) -> tuple[Path, dict[str, Any], list[tuple[Path, str]]]:
    """(newest loadable checkpoint, its state, [(newer refused file, why)]); GanforgeError naming every refusal if none loads."""
    refused: list[tuple[Path, str]] = []
    for path in reversed(list_checkpoints(folder)):
        try:
            return path, load_checkpoint(path), refused
        except GanforgeError as e:
            refused.append((path, str(e).split(" could not be read: ", 1)[-1]))
    if not refused:
        raise GanforgeError(
            f"{str(folder.parent)!r} has no checkpoint to resume from (checkpoints/ is empty or missing): "
            "the run stopped before its first checkpoint. Start it again with a new --out."
        )
    lines = "; ".join(f"{p.name}: {why}" for p, why in refused)
    raise GanforgeError(
        f"cannot resume {str(folder.parent)!r}: no checkpoint could be loaded ({lines}). Nothing was "
        "changed in the run folder."
    )


def move_aside(path: Path) -> Path:
    """Move a refused checkpoint into checkpoints/corrupt/ (kept for inspection, never deleted)."""
    dest_dir = path.parent / CORRUPT
    dest_dir.mkdir(exist_ok=True)
    dest = dest_dir / path.name
    n = 1
    while dest.exists():
        dest = dest_dir / f"{path.stem}.{n}{path.suffix}"
        n += 1
    os.replace(path, dest)
    return dest


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete temp files that a killed atomic write left behind (call only while holding the run's lock)."""
    gone = []
    for sub in (folder, folder / "checkpoints", folder / "eval"):
        if sub.is_dir():
            for p in sub.glob(f".*{TMP_SUFFIX}"):
                p.unlink(missing_ok=True)
                gone.append(p)
    return gone


def latest_good_checkpoint(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint in `folder` that loads; a corrupt newest one falls back to the one before."""
    try:
        path, state, _ = find_resumable(folder)
    except GanforgeError:
        return None
    return path, state


def capture_rng() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) RNG states as weights_only-loadable values."""
    # The legacy state, a tuple (the annotation also allows the dict of legacy=False).
    _kind, keys, pos, has_gauss, cached = cast("tuple[str, np.ndarray, int, int, float]", np.random.get_state())
    state: dict[str, Any] = {
        "python": [*list(random.getstate()[1]), random.getstate()[2]],
        "python_version": random.getstate()[0],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": pos,
            "has_gauss": has_gauss,
            "cached": cached,
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Restore what capture_rng returned."""
    py = state["python"]
    random.setstate((state["python_version"], tuple(py[:-1]), py[-1]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
