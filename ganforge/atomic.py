"""Atomic file writes: readers never see half a file, and a kill leaves at most a hidden temp file.

The temp file sits next to the target (os.replace is only atomic within one file system), is
fsynced, and gets the permissions a plain open() would (0666 less the umask), not mkstemp's 0600,
so that colleagues on a shared server can read a run's report and weights.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

TMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """Yield a binary temp file next to `path`; on success it is fsynced and renamed over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Write via `write(fileobj)` atomically (see atomic_file)."""
    with atomic_file(path) as f:
        write(f)
