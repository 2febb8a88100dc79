"""The `bench` command: run one of the benchmarks in ganforge.benchmarks and print where its results went."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import TIME_LIMIT, GanforgeError, RunInterrupted


def cmd_bench(ns: argparse.Namespace) -> int:
    if getattr(ns, "minutes", None) is not None and ns.which != "fashion":
        raise GanforgeError(f"--minutes applies to `bench fashion` only, not to `bench {ns.which}`.")
    try:
        return _bench(ns)
    except RunInterrupted as e:
        # Not `train --resume` (the trainer's advice): the bench continues every cell, its table included.
        what = "the time limit (--minutes)" if e.signal == TIME_LIMIT else e.signal
        where = f" while training {e.folder} (checkpoint at step {e.checkpoint_step:,} kept)" if e.folder else ""
        print(
            f"ganforge: {what} stopped the benchmark{where}; finished cells are kept. Run the same command again "
            "to continue.",
            file=sys.stderr,
        )
        return 124 if e.signal == TIME_LIMIT else 143 if e.signal == "SIGTERM" else 130


def _bench(ns: argparse.Namespace) -> int:
    if ns.which == "speed" and ns.nproc is not None:
        from ..benchmarks.scaling import run_scaling_bench

        run_scaling_bench(
            ns.out or "bench/results/speed_scaling.json",
            ns.nproc,
            batch_size=ns.batch,
            steps=ns.steps,
            repeats=ns.repeats,
            device=ns.device,
        )
        return 0
    if ns.which == "speed":
        from ..benchmarks.speed import run_speed_bench

        run_speed_bench(
            ns.out or "bench/results/speed.json",
            batch_size=ns.batch,
            steps=ns.steps,
            repeats=ns.repeats,
            compile=not ns.no_compile,
            device=ns.device,
        )
        return 0
    if ns.which == "eval-memory":
        from ..benchmarks.eval_memory import run_eval_memory_bench

        if not ns.target:
            raise GanforgeError("bench eval-memory needs --target RUN_FOLDER (a trained run to evaluate).")
        counts = [int(c) for c in ns.counts.split(",")]
        run_eval_memory_bench(ns.target, counts, ns.metrics, ns.out or "bench/results/eval_memory.json")
        return 0
    if ns.which == "doctor":
        from ..benchmarks.doctor import run_doctor_bench

        names = [r.strip() for r in ns.recipes.split(",") if r.strip()] if ns.recipes else None
        out = Path(ns.out or "bench/results/doctor")
        res = run_doctor_bench(out, cases=names, workers=ns.workers)
        print((out / "doctor.md").read_text())
        c = res["confusion"]
        print(
            f"results: {out / 'doctor.json'} ({c['right']} of {c['runs']} right, {len(c['healthy_alarms'])} healthy "
            f"alarms); pictures in {out / 'plots'}"
        )
        return 0
    if ns.which in ("toy", "fashion", "stacked", "progan", "cycle", "limited"):
        names = [r.strip() for r in ns.recipes.split(",") if r.strip()] if ns.recipes else None
        out = Path(ns.out or f"bench/results/{ns.which}{'_quick' if ns.quick else ''}")
        if ns.which == "toy":
            from ..benchmarks.toy import run_toy_bench

            res = run_toy_bench(
                out,
                quick=ns.quick,
                recipes=names,
                seeds=ns.seeds,
                steps=ns.toy_steps,
                workers=ns.workers,
                showcase=not ns.no_showcase,
            )
            done, pictures = f"wall time {res['wall_time_s']:.0f} s", "pictures"
        elif ns.which == "fashion":
            from ..benchmarks.fashion import run_fashion_bench

            res = run_fashion_bench(
                out,
                quick=ns.quick,
                rows=names,
                images=ns.images,
                eval_n=ns.eval_n,
                workers=ns.workers,
                seeds=ns.seeds,
                minutes=ns.minutes,
            )
            done, pictures = f"wall time {res['wall_time_s']:.0f} s", "pictures"
            if res.get("missing"):
                done += f"; not run yet: {len(res['missing'])} cell(s)"
        elif ns.which == "progan":
            from ..benchmarks.progan import run_progan_bench

            res = run_progan_bench(out, quick=ns.quick, phase_images=ns.images, eval_n=ns.eval_n, workers=ns.workers)
            done, pictures = f"{res['info']['cells_run']} runs trained now", "FD-against-time plot and sample grids"
        elif ns.which == "limited":
            from ..benchmarks.limited import run_limited_bench

            res = run_limited_bench(
                out, quick=ns.quick, cells=names, steps=ns.bench_steps, eval_n=ns.eval_n, workers=ns.workers
            )
            done, pictures = f"{res['info']['cells_run']} runs trained now", "sample grids and ADA's p"
            if res.get("missing"):
                done += f"; not run yet: {len(res['missing'])} cell(s)"
        elif ns.which == "cycle":
            from ..benchmarks.cycle import run_cycle_bench

            res = run_cycle_bench(out, quick=ns.quick, cells=names, steps=ns.bench_steps, workers=ns.workers)
            done, pictures = f"{res['info']['cells_run']} runs trained now", "triplet grids"
        else:
            from ..benchmarks.stacked import run_stacked_bench

            res = run_stacked_bench(
                out,
                quick=ns.quick,
                rows=names,
                seeds=ns.seeds,
                steps=ns.bench_steps,
                eval_n=ns.eval_n,
                workers=ns.workers,
            )
            done = f"{res['info']['cells_run']} cells run now, {res['info']['wall_time_s']:.0f} s"
            pictures = "sample grids"
        print((out / f"{ns.which}.md").read_text())
        print(f"results: {out / f'{ns.which}.json'} ({done}); {pictures} in {out / 'plots'}")
        return 0
    raise GanforgeError(
        f"unknown benchmark {ns.which!r}. Valid choices: speed, eval-memory, toy, fashion, stacked, progan, cycle, limited, doctor."
    )
