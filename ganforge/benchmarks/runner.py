"""A resumable benchmark runner: cells run once, in a worker pool that divides the cores, recorded as JSON.

Each cell's result is written to OUT/cells/KEY.json when it finishes, so an interrupted benchmark
continues where it stopped (in parts across sessions if need be). The workers split the cores that
this process may use, one torch thread pool each, so they never compete for a core.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes
from ..errors import TIME_LIMIT, RunInterrupted
from ..training.hardware import available_cores, cpu_capability, cpu_has_native_bf16


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux; platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_record() -> dict[str, Any]:
    """What a benchmark ran on: CPU model, SIMD level and native bf16 (they decide CPU speed and precision), cores."""
    import torch

    return {
        "platform": platform.platform(),
        "processor": cpu_model(),
        "cpu_capability": cpu_capability(),
        "cpu_native_bf16": cpu_has_native_bf16(),
        "cpus": available_cores(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def machine_label(m: dict[str, Any] | None) -> str:
    """A short name for a machine record: 'AMD EPYC, AVX2' (with ', native bf16' where it has it)."""
    if not m:
        return "unrecorded machine"
    return f"{m.get('processor', '?')}, {m.get('cpu_capability', '?')}" + (
        ", native bf16" if m.get("cpu_native_bf16") else ""
    )


def ranks(v: Sequence[float]) -> list[float]:
    """Ranks from 0, ties sharing their mean rank (many classes can hold no sample at all)."""
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for t in range(i, j + 1):
            r[order[t]] = (i + j) / 2
        i = j + 1
    return r


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rank correlation, None when either side is constant or has under 3 values."""
    if len(a) < 3 or len(a) != len(b):
        return None
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    va, vb = sum((x - ma) ** 2 for x in ra), sum((y - mb) ** 2 for y in rb)
    if va == 0 or vb == 0:
        return None
    return sum((x - ma) * (y - mb) for x, y in zip(ra, rb)) / math.sqrt(va * vb)


def mean_se(values: Sequence[float]) -> dict[str, Any]:
    """Mean, standard error of the mean (0 for one value), min, max and the values themselves, over seeds."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return {"mean": None, "se": None, "min": None, "max": None, "n": 0, "values": []}
    m = sum(vals) / len(vals)
    se = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1) / len(vals)) if len(vals) > 1 else 0.0
    return {"mean": m, "se": se, "min": min(vals), "max": max(vals), "n": len(vals), "values": vals}


def split_cores(workers: int | None, max_workers: int = 2) -> tuple[int, int]:
    """(workers, threads per worker) that divide this process's cores."""
    cores = available_cores()
    workers = max(1, min(workers or max_workers, cores))
    return workers, max(1, cores // workers)


def load_done(
    out: Path, cells: Sequence[Any], key: Callable[[Any], str], valid: Callable[[Any, dict[str, Any]], bool]
) -> dict[str, dict[str, Any]]:
    """Finished cells of an earlier call that still match the settings (`valid(cell, record)`)."""
    done = {}
    for cell in cells:
        f = out / "cells" / f"{key(cell)}.json"
        if f.exists():
            try:
                rec = json.loads(f.read_text())
            except ValueError:
                continue  # a cell file cut short by a kill: run the cell again
            if valid(cell, rec):
                done[key(cell)] = rec
    return done


def write_record(out: Path, key: str, rec: dict[str, Any]) -> None:
    """A cell's record as out/cells/KEY.json, written atomically (a kill leaves the old file or the new one)."""
    text = json.dumps(rec, indent=1, default=str).encode()
    atomic_write_bytes(out / "cells" / f"{key}.json", lambda f: f.write(text))


def backfill_records(
    out: Path,
    done: dict[str, dict[str, Any]],
    needs: Callable[[dict[str, Any]], bool],
    compute: Callable[[str, dict[str, Any]], dict[str, Any] | None],
) -> int:
    """Complete records scored before a bench recorded something new: for each one `needs` picks whose run folder
    (out/runs/KEY/checkpoints) is kept, `compute(key, record)` gives the completed record (None: leave it as it is),
    which replaces the cell file atomically and the entry in `done`. Returns how many were completed. A run folder
    whose checkpoint cannot be read, or holds other networks, leaves its record as it is (with a warning)."""
    from ..errors import GanforgeError

    n = 0
    for key, rec in list(done.items()):
        if not needs(rec) or not (out / "runs" / key / "checkpoints").is_dir():
            continue
        try:
            new = compute(key, rec)
        except (GanforgeError, RuntimeError, KeyError, ValueError) as e:  # a damaged or foreign run folder
            print(f"ganforge: {key}: kept as scored, could not complete it from its run folder: {e}", file=sys.stderr)
            continue
        if new is None:
            continue
        write_record(out, key, new)
        done[key] = new
        n += 1
    return n


def with_earlier(
    out: Path,
    cells: Sequence[Any],
    key: Callable[[Any], str],
    valid: Callable[[Any, dict[str, Any]], bool],
    done: dict[str, dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """The records a table shows: this call's (`done`, failed ones included) over every valid one on disk among
    `cells`, so that a bench run in parts (some rows now, the rest later) keeps the whole table."""
    return {**load_done(out, cells, key, valid), **done}


def run_cells(
    out: Path,
    cells: Sequence[Any],
    key: Callable[[Any], str],
    fn: Callable[..., dict[str, Any]],
    args: tuple = (),
    workers: int | None = None,
    valid: Callable[[Any, dict[str, Any]], bool] = lambda c, r: True,
    describe: Callable[[dict[str, Any]], str] = lambda r: "",
    progress: bool = True,
    desc: str = "bench",
    deadline: float | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Run `fn(cell, *args, threads=T)` for every cell not already done, in the order given; ({key: record}, run info).

    The info holds the pool (`workers` used, `threads_per_worker` of the full split), the cells run and reused, and
    `wall_time_s` of this call. Past `deadline` (a time.time()) no cell starts: RunInterrupted(TIME_LIMIT) is raised
    instead (`fn` stops a cell under way itself, from its args).
    """
    from tqdm import tqdm

    (out / "cells").mkdir(parents=True, exist_ok=True)
    done = load_done(out, cells, key, valid)
    todo = [c for c in cells if key(c) not in done]
    split, threads = split_cores(workers)
    workers = min(split, max(1, len(todo)))  # the threads per worker stay those of the full split
    t0 = time.perf_counter()
    bar = tqdm(total=len(cells), initial=len(done), desc=desc, disable=not progress, dynamic_ncols=True)

    def record(c: Any, rec: dict[str, Any]) -> None:
        k = key(c)
        write_record(out, k, rec)
        done[k] = rec
        bar.set_postfix_str(f"{k}: {describe(rec)}")
        bar.update(1)

    try:
        if todo and workers == 1:
            for c in todo:
                record(c, before_deadline(deadline, fn, c, *args, threads=threads))
        elif todo:
            import multiprocessing as mp

            with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
                futs = {pool.submit(before_deadline, deadline, fn, c, *args, threads=threads): c for c in todo}
                try:
                    for fut in as_completed(futs):
                        record(futs[fut], fut.result())
                except RunInterrupted:
                    for f in futs:  # the queued cells would each start only to raise it again
                        f.cancel()
                    raise
    finally:
        bar.close()  # before a stop's message, so that the message is not drawn over
    info = {
        "workers": workers,
        "threads_per_worker": threads,
        "cells_run": len(todo),
        "cells_reused": len(done) - len(todo),
        "wall_time_s": round(time.perf_counter() - t0, 1),
    }
    return done, info


def before_deadline(deadline: float | None, fn: Callable[..., dict[str, Any]], cell: Any, *args: Any, **kw: Any) -> Any:
    """`fn(cell, *args, **kw)`, unless `deadline` (a time.time()) has passed: then RunInterrupted(TIME_LIMIT)."""
    if deadline is not None and time.time() >= deadline:
        raise RunInterrupted(TIME_LIMIT, 0, 0, None)
    return fn(cell, *args, **kw)


def wall_time(info: dict[str, Any], previous: Path) -> float:
    """This call's wall time, or, when it ran no cell (re-summarising), the one `previous` (a result JSON) recorded."""
    if not info["cells_run"] and previous.exists():
        try:  # re-summarising finished cells keeps the wall time of the run that trained them
            return float(json.loads(previous.read_text()).get("wall_time_s", info["wall_time_s"]))
        except (ValueError, OSError):
            pass
    return info["wall_time_s"]


def train_or_resume(recipe: Any, run_dir: Path, same: Callable[[Any], bool]) -> Any:
    """A Trainer for a cell's run: resumed from its folder when `same(trainer)` says its settings still match, else fresh.

    A cell cut short (a session's end) continues from its last checkpoint and its training time adds up; a
    folder from other settings, or one that cannot be resumed, is replaced.
    """
    import shutil

    from ..errors import GanforgeError
    from ..training.trainer import Trainer

    # The cell's checkpoint cadence now, not the one its folder was started with (a safe change on resume): a
    # cell started before the bench checkpointed within a cell would otherwise still only checkpoint at its end.
    cadence = [
        f"train.checkpoint_every={recipe.train.checkpoint_every}",
        f"train.keep_checkpoints={recipe.train.keep_checkpoints}",
    ]
    try:
        trainer = Trainer.resume_run(run_dir, cadence, progress=False)
        if not same(trainer):
            raise GanforgeError("the cell's settings changed")
    except GanforgeError:
        if run_dir.exists():
            shutil.rmtree(run_dir)
        trainer = Trainer.start(recipe, run_dir, progress=False)
    return trainer


def scored_by(rec: dict[str, Any], extractor: str) -> bool:
    """True when a cell's record says it was scored with the shipped weights of `extractor` (`extractor_sha256`)."""
    from ..metrics.extractors import shipped_sha256

    return rec.get("extractor_sha256") == shipped_sha256(extractor)


def extractor_stamp(extractor: str) -> dict[str, str]:
    """{"extractor": name, "extractor_sha256": its shipped weights' hash}, for a cell's record."""
    from ..metrics.extractors import shipped_sha256

    return {"extractor": extractor, "extractor_sha256": shipped_sha256(extractor)}


def check_choices(given: Sequence[str] | None, valid: Sequence[str], what: str, bench: str) -> None:
    """ConfigError naming the unknown entries of `given` (rows, cells) and listing the valid ones."""
    from ..errors import ConfigError

    bad = [g for g in given or () if g not in valid]
    if bad:
        raise ConfigError(f"unknown {what}(s) {', '.join(bad)} for bench {bench}; {what}s: {', '.join(valid)}")
