"""The `bench` command: run one of the benchmarks in ganforge.benchmarks and print where its results went."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import GanforgeError


def cmd_bench(ns: argparse.Namespace) -> int:
    if ns.which == "speed":
        from ..benchmarks.speed import run_speed_bench

        run_speed_bench(ns.out or "bench/results/speed.json", batch_size=ns.batch, steps=ns.steps,
                        repeats=ns.repeats, compile=not ns.no_compile, device=ns.device)
        return 0
    if ns.which == "eval-memory":
        from ..benchmarks.eval_memory import run_eval_memory_bench

        if not ns.target:
            raise GanforgeError("bench eval-memory needs --target RUN_FOLDER (a trained run to evaluate).")
        counts = [int(c) for c in ns.counts.split(",")]
        run_eval_memory_bench(ns.target, counts, ns.metrics, ns.out or "bench/results/eval_memory.json")
        return 0
    if ns.which == "toy":
        from ..benchmarks.toy import run_toy_bench

        recipes = [r.strip() for r in ns.recipes.split(",") if r.strip()] if ns.recipes else None
        out = ns.out or ("bench/results/toy_quick" if ns.quick else "bench/results/toy")
        res = run_toy_bench(out, quick=ns.quick, recipes=recipes, seeds=ns.seeds, steps=ns.toy_steps,
                            workers=ns.workers, showcase=not ns.no_showcase)
        print((Path(out) / "toy.md").read_text())
        print(f"results: {Path(out) / 'toy.json'} (wall time {res['wall_time_s']:.0f} s); pictures in {Path(out) / 'plots'}")
        return 0
    if ns.which == "fashion":
        from ..benchmarks.fashion import run_fashion_bench

        rows = [r.strip() for r in ns.recipes.split(",") if r.strip()] if ns.recipes else None
        out = ns.out or ("bench/results/fashion_quick" if ns.quick else "bench/results/fashion")
        res = run_fashion_bench(out, quick=ns.quick, rows=rows, images=ns.images, eval_n=ns.eval_n, workers=ns.workers)
        print((Path(out) / "fashion.md").read_text())
        print(f"results: {Path(out) / 'fashion.json'} (wall time {res['wall_time_s']:.0f} s); pictures in {Path(out) / 'plots'}")
        return 0
    if ns.which == "stacked":
        from ..benchmarks.stacked import run_stacked_bench

        rows = [r.strip() for r in ns.recipes.split(",") if r.strip()] if ns.recipes else None
        out = ns.out or ("bench/results/stacked_quick" if ns.quick else "bench/results/stacked")
        res = run_stacked_bench(out, quick=ns.quick, rows=rows, seeds=ns.seeds, steps=ns.bench_steps,
                                eval_n=ns.eval_n, workers=ns.workers)
        print((Path(out) / "stacked.md").read_text())
        print(f"results: {Path(out) / 'stacked.json'} ({res['info']['cells_run']} cells run now, "
              f"{res['info']['wall_time_s']:.0f} s); sample grids in {Path(out) / 'plots'}")
        return 0
    raise GanforgeError(f"unknown benchmark {ns.which!r}. Valid choices: speed, eval-memory, toy, fashion, stacked.")
