"""run.json: what a run is, where it stands (status and heartbeat) and how it got there (resumes).

Status is one of running (with a heartbeat: last step and time), finished, failed (with the
error), interrupted (SIGINT / SIGTERM, with the last checkpoint's step), stopped (by
train.doctor.stop_on, with the state and the best checkpoint) or, as read back by
`read_status`, stale: a run.json that says running while no process holds the run's lock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .checkpoint import atomic_write_bytes
from .runlock import is_locked

STATUSES = ("running", "finished", "failed", "interrupted", "stopped", "stale")


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically."""
    atomic_write_bytes(path, lambda f: f.write(json.dumps(data, indent=2, default=str).encode()))


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`, or {} when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_status(folder: str | Path) -> dict[str, Any]:
    """run.json of `folder`, with a dead `running` run reported as `stale` (its lock is free)."""
    folder = Path(folder)
    info = read_json(folder / "run.json")
    if info.get("status") == "running" and not is_locked(folder):
        info["status"] = "stale"
        info["stale_reason"] = (
            "run.json says running, but no process holds the run's lock: the process died "
            "without a word (kill -9, power loss); resume it with --resume"
        )
    return info


class RunRecord:
    """Owns RUN/run.json while a run trains: keeps its resume history and rate-limits heartbeats."""

    def __init__(self, folder: Path, heartbeat_every_s: float = 5.0) -> None:
        self.path = folder / "run.json"
        previous = read_json(self.path)
        self.history: list[dict[str, Any]] = list(previous.get("resumes", []))
        self.config_sha256: str | None = previous.get("config_sha256")
        self.heartbeat_every_s = heartbeat_every_s
        self._last_beat = 0.0

    def write(self, status: str, info: dict[str, Any], **extra: Any) -> None:
        """Record `status` with the run's description `info` and any extra fields (error, checkpoint step)."""
        assert status in STATUSES
        now = time.time()
        data = {
            **info,
            "status": status,
            **extra,
            "resumes": self.history,
            "config_sha256": self.config_sha256,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now)),
        }
        write_json(self.path, data)
        self._last_beat = now

    def heartbeat(self, info: Callable[[], dict[str, Any]], force: bool = False) -> None:
        """A `running` record with the current step, at most every heartbeat_every_s seconds.

        `info` is called only when a record is written, so the training loop pays nothing in between.
        """
        if force or time.time() - self._last_beat >= self.heartbeat_every_s:
            self.write("running", info())
