"""`ganforge bench progan`: does progressive growing reach a given quality sooner? (Karras et al. 2018, Sec. 1 and 2)

Two runs of the `progan-fashion` recipe on Fashion-MNIST at 32x32, with the same seed, loss, optimiser, final
networks and images shown: `progressive` grows 4 -> 8 -> 16 -> 32 (each phase PHASE_IMAGES images), `fixed`
trains the 32x32 networks from the start (the standard game). Both evaluate FD-fashion of the EMA generator
at the same image counts; the clock is training time (grids, evaluation and checkpoints excluded). The
report: time and images/s per phase, the training time at which each first reaches FD <= THRESHOLD (fixed
before any run, not tuned), the final FD, precision/recall and SWD on FINAL_N samples, and their ratio from
the same invocation. Runs are resumable; the two run one after the other on all the cores by default, so
neither slows the other.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..metrics.spec import metric_keys
from .runner import extractor_stamp, machine_record, run_cells, scored_by, train_or_resume

RECIPE = "progan-fashion"
THRESHOLD = 30.0  # FD-fashion; chosen with the issue ("say FD 30") before any run
PHASE_IMAGES = 32_000  # per fade / stabilise phase: 7 phases, 224,000 images, 3,500 steps of 64
QUICK_PHASE_IMAGES = 640
BATCH = 64
CURVE_N = 2_000  # samples per in-training FD (the time-to-threshold curve)
FINAL_N = 10_000
FINAL_METRICS = "fd,pr,swd"
RUNS = ("progressive", "fixed")
# Each dataset reaches 32x32 as its shipped classifier was trained; `digits` keeps the tests offline and fast.
FIT = {"fashion_mnist": "pad", "digits": "resize"}
EXTRACTOR = {"fashion_mnist": "fashion", "digits": "digits"}


@dataclass(frozen=True)
class Cell:
    run: str
    phase_images: int
    curve_n: int
    final_n: int
    base: str = "fashion_mnist"

    @property
    def key(self) -> str:
        return self.run

    @property
    def steps(self) -> int:
        return 7 * self.phase_images // BATCH  # 4x4 stabilise, then fade + stabilise at 8, 16 and 32

    @property
    def eval_every(self) -> int:
        return self.phase_images // BATCH // 2  # twice per phase


def overrides(cell: Cell, threads: int) -> list[str]:
    """The recipe overrides of a run: the schedule scaled to the bench, and the fixed run's standard game."""
    every = cell.eval_every
    out = [
        f"data.name={cell.base}",
        f"data.fit={FIT[cell.base]}",
        f"train.steps={cell.steps}",
        f"train.batch_size={BATCH}",
        f"game.args.fade_images={cell.phase_images}",
        f"game.args.stabilize_images={cell.phase_images}",
        f"game.args.batch_sizes={BATCH}",
        "train.progress=false",
        f"train.threads={threads}",
        f"eval.every={every}",
        "eval.metrics=[fd]",
        f"eval.n={cell.curve_n}",
        f"train.sample_every={every}",
        f"train.checkpoint_every={every}",
        "train.keep_checkpoints=1",
        f"train.log_every={max(1, every // 5)}",
    ]
    if cell.run == "fixed":
        out.append("game={name: standard, n_critic: 1}")
    return out


def run_cell(cell: Cell, out_dir: str, threads: int = 1) -> dict[str, Any]:
    """Train (or resume) one run, then score its EMA generator; runs in this process or a worker."""
    torch.set_num_threads(threads)
    from ..config import load_recipe

    out = Path(out_dir)
    recipe = load_recipe(RECIPE, overrides(cell, threads))
    run_dir = out / "runs" / cell.key
    t0 = time.perf_counter()
    trainer = train_or_resume(
        recipe, run_dir, lambda t: (t.recipe.train.steps, t.recipe.game.name) == (cell.steps, recipe.game.name)
    )
    trainer.run()
    rec: dict[str, Any] = {
        **extractor_stamp(EXTRACTOR[cell.base]),
        "run": cell.run,
        "base": cell.base,
        "steps": cell.steps,
        "phase_images": cell.phase_images,
        "curve_n": cell.curve_n,
        "final_n": cell.final_n,
        "train_s": round(trainer.elapsed, 1),
        "threads": threads,
    }
    logs = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rec["curve"] = fd_curve(logs, f"eval/fd_{EXTRACTOR[cell.base]}")
    rec["phases"] = phase_costs(logs, cell)
    hit = next((c for c in rec["curve"] if c["fd"] <= THRESHOLD), None)  # the EMA generator's FD, as evaluated
    rec["time_to_threshold_s"] = hit["time"] if hit else None
    rec["images_to_threshold"] = hit["step"] * BATCH if hit else None
    result = trainer.result
    res = _evaluator(cell.final_n, cell.base).evaluate_generator(
        result.generator.eval(), result.latent, source=f"bench progan {cell.run}: EMA generator, {cell.steps} steps"
    )
    rec["metrics"], rec["protocol"] = res["metrics"], res["protocol"]
    copy_grids(cell, run_dir, out / "plots")
    rec["wall_s"] = round(time.perf_counter() - t0, 1)
    return rec


def copy_grids(cell: Cell, run_dir: Path, plots: Path) -> None:
    """The final EMA grid of a run, and for the progressive run the grid at the end of each phase."""
    plots.mkdir(parents=True, exist_ok=True)
    grids = [("final_ema.png", f"{cell.run}_final_ema.png")]
    if cell.run == "progressive":
        per_phase = cell.phase_images // BATCH
        grids += [(f"step_{k * per_phase:07d}.png", f"progressive_end_of_phase_{k}.png") for k in range(1, 8)]
    for src, dst in grids:
        if (run_dir / "samples" / src).is_file():
            shutil.copyfile(run_dir / "samples" / src, plots / dst)


_EVALUATORS: dict[tuple[int, str], Any] = {}


def _evaluator(n: int, base: str) -> Any:
    if (n, base) not in _EVALUATORS:
        from ..data import load_dataset
        from ..metrics.evaluate import Evaluator

        train = load_dataset(base, image_size=32, fit=FIT[base])
        _EVALUATORS[n, base] = Evaluator(train, FINAL_METRICS, extractor=EXTRACTOR[base], n=n, seed=0)
    return _EVALUATORS[n, base]


def fd_curve(logs: list[dict[str, Any]], key: str = "eval/fd_fashion") -> list[dict[str, float]]:
    """[{step, time, fd}] of the in-training FD evaluations, timed by the log line of the same step."""
    times = {r["step"]: r["time"] for r in logs if "time" in r}
    return [
        {"step": r["step"], "time": times[r["step"]], "fd": r[key]} for r in logs if key in r and r["step"] in times
    ]


def phase_costs(logs: list[dict[str, Any]], cell: Cell) -> list[dict[str, Any]]:
    """Training time and real images/s over each phase's steps (for the fixed run: the same step ranges)."""
    from ..games.progressive import Schedule

    sched = Schedule([4, 8, 16, 32], cell.phase_images, cell.phase_images, BATCH)
    rows: dict[int, dict[str, Any]] = {
        p.index: {"phase": p.name, "images": p.length, "time_s": 0.0} for p in sched.phases
    }
    prev = 0.0
    for r in sorted((r for r in logs if "time" in r), key=lambda r: r["step"]):
        dt, prev = r["time"] - prev, r["time"]
        rows[sched.at((r["step"] - 1) * BATCH).index]["time_s"] += dt
    for row in rows.values():
        row["time_s"] = round(row["time_s"], 2)
        row["images_per_s"] = round(row["images"] / row["time_s"], 1) if row["time_s"] > 0 else None
    return list(rows.values())


def fd_at_time(curve: list[dict[str, float]], t: float) -> float | None:
    """The last FD a run measured at or before training time t (None if it measured none by then)."""
    before = [c["fd"] for c in curve if c["time"] <= t + 1e-9]
    return before[-1] if before else None


def plot_fd_against_time(runs: dict[str, dict[str, Any]], path: Path, extractor: str = "fashion") -> Path:
    """FD-fashion against training time for both runs, with the threshold."""
    from ..plots import new_figure, save_figure

    fig = new_figure(7.0, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    for name, rec in runs.items():
        pts = [(c["time"] / 60, c["fd"]) for c in rec["curve"]]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3, label=name)
    ax.axhline(THRESHOLD, color="0.4", linestyle="--", linewidth=1, label=f"FD {THRESHOLD:g}")
    ax.set_yscale("log")
    ax.set_xlabel("training time (min)")
    ax.set_ylabel(f"FD-{extractor} (EMA G, lower is better)")
    ax.set_title("Progressive growing vs fixed 32x32: FD against training time")
    ax.grid(True, alpha=0.25)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def _minutes(s: float | None) -> str:
    return "not reached" if s is None else f"{s / 60:.1f} min"


def write_markdown(result: dict[str, Any], path: Path) -> None:
    """The tables the README quotes."""
    st, runs = result["settings"], result["runs"]
    K = metric_keys(FINAL_METRICS, EXTRACTOR[st["base"]])
    name = {"fashion_mnist": "Fashion-MNIST", "digits": "sklearn digits"}[st["base"]]
    lines = [
        f"ProGAN (`{RECIPE}`) on {name} 32x32: {st['phase_images']:,} images per phase, "
        f"{st['steps']:,} steps of {BATCH} ({st['steps'] * BATCH:,} images) per run, seed 0, "
        f"{'/'.join(str(r.get('threads', '?')) for r in runs.values())} thread(s) per run (progressive/fixed), "
        f"runs one after the other. Training time "
        f"excludes grids, evaluation and checkpoints. FD-{EXTRACTOR[st['base']]} of the EMA generator on {st['curve_n']:,} samples "
        f"during training, final numbers on {st['final_n']:,}.",
        "",
        f"| run | training time | time to FD ≤ {THRESHOLD:g} | images to FD ≤ {THRESHOLD:g} | final FD ↓ | "
        "precision ↑ | recall ↑ | SWD x1e3 ↓ |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in runs.items():
        m = r["metrics"]
        imgs = "—" if r["images_to_threshold"] is None else f"{r['images_to_threshold']:,}"
        lines.append(
            f"| {name} | {_minutes(r['train_s'])} | {_minutes(r['time_to_threshold_s'])} | {imgs} | "
            f"{m[K['fd']]:.2f} | {m[K['precision']]:.3f} | {m[K['recall']]:.3f} | {m[K['swd_x1e3']]:.1f} |"
        )
    sp = result["speedup"]
    prog_curve = runs["progressive"]["curve"]
    # train_s is rounded to 0.1 s; the last evaluation's own time (3 decimals) is the end of the run too.
    t_eq = max(runs["progressive"]["train_s"], prog_curve[-1]["time"] if prog_curve else 0.0)
    eq = {name: fd_at_time(r["curve"], t_eq) for name, r in runs.items()}
    lines += [
        "",
        f"Speed-up (fixed / progressive, same invocation): whole run {sp['total']:.2f}x; time to FD ≤ "
        f"{THRESHOLD:g}: "
        + (
            f"{sp['to_threshold']:.2f}x"
            if sp["to_threshold"] is not None
            else "not measurable (a run never reached it)"
        )
        + ".",
        f"At equal training time ({t_eq / 60:.1f} min, the whole progressive run), the last FD measured: "
        + "; ".join(f"{name} {v:.2f}" if v is not None else f"{name} (none yet)" for name, v in eq.items())
        + ".",
        "",
        "| phase | images | progressive time | progressive img/s | fixed time (same steps) | fixed img/s | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for p, f in zip(runs["progressive"]["phases"], runs["fixed"]["phases"]):
        ratio = f"{f['time_s'] / p['time_s']:.2f}x" if p["time_s"] else "—"
        lines.append(
            f"| {p['phase']} | {p['images']:,} | {p['time_s'] / 60:.2f} min | {p['images_per_s']} | "
            f"{f['time_s'] / 60:.2f} min | {f['images_per_s']} | {ratio} |"
        )
    path.write_text("\n".join(lines) + "\n")


def speedup(runs: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """fixed / progressive training time: whole runs, and to the FD threshold (None when either never reached it)."""
    p, f = runs["progressive"], runs["fixed"]
    hit = p["time_to_threshold_s"], f["time_to_threshold_s"]
    return {
        "total": f["train_s"] / p["train_s"] if p["train_s"] else float("nan"),
        "to_threshold": hit[1] / hit[0] if None not in hit and hit[0] else None,
    }


def run_progan_bench(
    out: str | Path,
    quick: bool = False,
    phase_images: int | None = None,
    eval_n: int | None = None,
    workers: int | None = None,
    progress: bool = True,
    base: str = "fashion_mnist",
) -> dict[str, Any]:
    """Train (or reuse) both runs, then write progan.json, progan.md and the plots into `out`."""
    from ..data import load_dataset
    from ..errors import ConfigError

    phase = phase_images or (QUICK_PHASE_IMAGES if quick else PHASE_IMAGES)
    if phase < 2 * BATCH or phase % (2 * BATCH):
        raise ConfigError(f"bench progan: images per phase must be a positive multiple of {2 * BATCH}, got {phase}")
    if base not in FIT:
        raise ConfigError(f"bench progan base must be one of {', '.join(FIT)}, got {base!r}.")
    load_dataset(base, image_size=32, fit=FIT[base])  # fail early, with the loader's advice, if it is missing
    out = Path(out)
    curve_n, final_n = (200, eval_n or 500) if quick else (CURVE_N, eval_n or FINAL_N)
    cells = [Cell(name, phase, curve_n, final_n, base) for name in RUNS]
    done, info = run_cells(
        out,
        cells,
        key=lambda c: c.key,
        fn=run_cell,
        args=(str(out),),
        workers=workers or 1,
        valid=lambda c, r: (
            (r.get("phase_images"), r.get("final_n"), r.get("curve_n"), r.get("base", "fashion_mnist"))
            == (phase, final_n, curve_n, base)
            and "metrics" in r
            and scored_by(r, EXTRACTOR[base])
        ),
        describe=lambda r: f"FD {r['curve'][-1]['fd'] if r['curve'] else float('nan'):.1f}",
        progress=progress,
        desc="bench progan",
    )
    runs = {c.key: done[c.key] for c in cells}
    for c in cells:  # again here, so that a re-summary of finished runs refreshes the pictures
        copy_grids(c, out / "runs" / c.key, out / "plots")
    plot_fd_against_time(runs, out / "plots" / "fd_vs_time.png", EXTRACTOR[base])
    result = {
        "benchmark": "progan (issue 13: progressive growing against fixed resolution)",
        "settings": {
            "recipe": RECIPE,
            "base": base,
            "threshold_fd": THRESHOLD,
            "phase_images": phase,
            "steps": cells[0].steps,
            "batch": BATCH,
            "curve_n": curve_n,
            "final_n": final_n,
            "quick": quick,
        },
        "info": info,
        "machine": machine_record(),
        "speedup": speedup(runs),
        "runs": runs,
    }
    (out / "progan.json").write_text(json.dumps(result, indent=1, default=str))
    write_markdown(result, out / "progan.md")
    return result
