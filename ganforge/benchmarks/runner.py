"""A resumable benchmark runner: cells run once, in a worker pool that divides the cores, recorded as JSON.

Each cell's result is written to OUT/cells/KEY.json when it finishes, so an interrupted benchmark
continues where it stopped (in parts across sessions if need be). The workers split the cores that
this process may use, one torch thread pool each, so they never compete for a core.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Sequence

from ..atomic import atomic_write_bytes
from ..training.hardware import available_cores


def split_cores(workers: int | None, max_workers: int = 2) -> tuple[int, int]:
    """(workers, threads per worker) that divide this process's cores."""
    cores = available_cores()
    workers = max(1, min(workers or max_workers, cores))
    return workers, max(1, cores // workers)


def load_done(out: Path, keys: Sequence[str], valid: Callable[[dict[str, Any]], bool]) -> dict[str, dict[str, Any]]:
    """Finished cells of an earlier call that still match the settings (`valid`)."""
    done = {}
    for key in keys:
        f = out / "cells" / f"{key}.json"
        if f.exists():
            try:
                rec = json.loads(f.read_text())
            except ValueError:
                continue  # a cell file cut short by a kill: run the cell again
            if valid(rec):
                done[key] = rec
    return done


def run_cells(out: Path, cells: Sequence[Any], key: Callable[[Any], str], fn: Callable[..., dict[str, Any]],
              args: tuple = (), workers: int | None = None, valid: Callable[[dict[str, Any]], bool] = lambda r: True,
              describe: Callable[[dict[str, Any]], str] = lambda r: "", progress: bool = True,
              desc: str = "bench") -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Run `fn(cell, *args, threads=T)` for every cell not already done; ({key: record}, run info)."""
    from tqdm import tqdm

    (out / "cells").mkdir(parents=True, exist_ok=True)
    keys = [key(c) for c in cells]
    done = load_done(out, keys, valid)
    todo = [c for c in cells if key(c) not in done]
    workers, threads = split_cores(workers)
    workers = min(workers, max(1, len(todo)))
    t0 = time.perf_counter()
    bar = tqdm(total=len(cells), initial=len(done), desc=desc, disable=not progress, dynamic_ncols=True)

    def record(c: Any, rec: dict[str, Any]) -> None:
        k = key(c)
        atomic_write_bytes(out / "cells" / f"{k}.json", lambda f: f.write(json.dumps(rec, indent=1, default=str).encode()))
        done[k] = rec
        bar.set_postfix_str(f"{k}: {describe(rec)}")
        bar.update(1)

    if todo and workers == 1:
        for c in todo:
            record(c, fn(c, *args, threads=threads))
    elif todo:
        import multiprocessing as mp

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            futs = {pool.submit(fn, c, *args, threads=threads): c for c in todo}
            for fut in as_completed(futs):
                record(futs[fut], fut.result())
    bar.close()
    info = {"workers": workers, "threads_per_worker": threads, "cells_run": len(todo), "cells_reused": len(done) - len(todo),
            "wall_time_s": round(time.perf_counter() - t0, 1)}
    return done, info
