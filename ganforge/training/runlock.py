"""The run-folder lock: one process trains in a run folder at a time.

An OS file lock (flock) on RUN/.lock, held for the life of the process: the kernel releases it on
any death, kill -9 included, so a dead run never blocks its own resume. The file also says which
PID holds it, for the error message. On systems without fcntl (Windows) runs are not locked.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from ..errors import GanforgeError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


def _holder(path: Path, wait_s: float = 1.0) -> str:
    """'PID 123 on host' from the lock file's advice, or 'another process'.

    The holder writes its PID just after taking the lock: a process that lost the race by a hair
    waits up to `wait_s` for it, so that the message names the PID.
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            words = path.read_text().split()
        except OSError:
            words = []
        if words or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    if not words:
        return "another process"
    return f"PID {words[0]}" + (f" on {words[1]}" if len(words) > 1 else "")


class RunLock:
    """An exclusive, non-blocking lock on a run folder; use as a context manager or acquire()/release()."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise GanforgeError naming the process that holds it."""
        if self.folder.exists() and not self.folder.is_dir():
            raise GanforgeError(f"{str(self.folder)!r} is a file, not a run folder: choose another --out.")
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise GanforgeError(
                    f"run folder {str(self.folder)!r} is in use by {_holder(self.path)}: a run is training there now. "
                    "Wait for it to finish (or stop it) before training, resuming or writing into this folder."
                ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()} {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Release the lock (the file stays; its content is only advice)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def is_locked(folder: str | Path) -> bool:
    """True when a live process holds the run folder's lock."""
    path = Path(folder) / LOCK_NAME
    if fcntl is None or not path.is_file():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)
