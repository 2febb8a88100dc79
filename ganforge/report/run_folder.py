"""What the run report reads from a run folder: metrics.jsonl, run.json, metric keys and sample grids."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MAX_PROGRESSION = 16  # sample grids shown in the progression; more are thinned evenly

_STEP_PNG = re.compile(r"^step_(\d+)\.png$")
_LOSS_KEY = re.compile(r"(^|_)loss(_|$)")


def read_metrics_counted(path: Path) -> tuple[list[dict], int]:
    """Records of a metrics.jsonl and how many non-blank lines could not be read."""
    records: list[dict] = []
    bad = 0
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return records, 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            # A run killed mid-write leaves a truncated last line; skip it (and any other garbage) quietly.
            bad += 1
            continue
        if isinstance(obj, dict):
            records.append(obj)
        else:
            bad += 1
    return records, bad


def read_metrics(path: str | Path) -> list[dict]:
    """The JSON objects of a metrics.jsonl, skipping blank, truncated or malformed lines ([] if missing)."""
    return read_metrics_counted(Path(path))[0]


def read_run_info(run_dir: str | Path) -> dict:
    """The run.json summary of a run folder ({} when missing or caught mid-write)."""
    try:
        obj = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _all_keys(records: Sequence[dict]) -> list[str]:
    """Every key seen in the records, in first-seen order."""
    seen: dict[str, None] = {}
    for r in records:
        for k in r:
            seen.setdefault(str(k), None)
    return list(seen)


def loss_keys(records: Sequence[dict]) -> list[str]:
    """Loss keys of the records (d_loss, g_loss first, then other `*_loss` keys), excluding `eval/` ones."""
    keys = [k for k in _all_keys(records) if _LOSS_KEY.search(k) and not k.startswith("eval/")]
    first = [k for k in ("d_loss", "g_loss") if k in keys]
    return first + sorted(k for k in keys if k not in first)


def eval_keys(records: Sequence[dict]) -> list[str]:
    """The `eval/` metric keys of the records, sorted."""
    return sorted(k for k in _all_keys(records) if k.startswith("eval/"))


def pick_evenly(items: Sequence[Any], k: int = MAX_PROGRESSION) -> list[Any]:
    """At most k items evenly spaced over `items`, always including the first and the last."""
    n = len(items)
    if n <= k:
        return list(items)
    if k <= 1:
        return [items[-1]]
    idx = sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})
    return [items[i] for i in idx]


def step_samples(samples_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of samples/step_*.png in step order."""
    if not samples_dir.is_dir():
        return []
    out = []
    for p in samples_dir.iterdir():
        m = _STEP_PNG.match(p.name)
        if m and p.is_file():
            out.append((int(m.group(1)), p))
    return sorted(out)
