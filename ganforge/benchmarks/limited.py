"""`ganforge bench limited`: training on a small dataset, without augmentation, with DiffAugment and with ADA.

Protocol (issue 18; Zhao et al. 2020, Karras et al. 2020): the `dcgan-fashion` recipe (DCGAN at 32x32,
batch 64, Adam 2e-4 / (0.5, 0.999), EMA of G) trained for the same number of G steps on 1,000, 5,000 and
all 60,000 Fashion-MNIST training images (`data.limit`: a seeded, class-balanced subset), each without
augmentation, with DiffAugment (color,translation,cutout) and with ADA (target 0.6; p free to go from 0
to 1 in ADA_SPEED real images, the paper's 500k scaled to this run's length). The EMA generator's samples
are scored with the Fashion-MNIST classifier against the full 60k training split (FD, IS, precision /
recall, classes), and the memorisation ratio is taken against the images the run actually trained on,
with the 10,000 test images as the held-out set (below 1: samples sit closer to the training images than
fresh real images do). During training each cell scores 2,000 samples against all 60k images at every
tenth of the run (`eval.reference: full`), the FD curve that shows when a run on few images starts to get
worse. One seed per cell; cells are resumable, also mid-run (from their checkpoints).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import RunInterrupted
from .runner import (
    backfill_records,
    check_choices,
    extractor_stamp,
    machine_label,
    machine_record,
    run_cells,
    scored_by,
    train_or_resume,
    with_earlier,
)

RECIPE = "dcgan-fashion"
SIZES = (1000, 5000, 60000)  # the sizes: the default cells
SMALL_SIZES = (200,)  # opt-in (`--recipes n200__off,...`): few enough images for D to overfit within the budget
ALL_SIZES = SMALL_SIZES + SIZES
FULL = 60000
AUGMENTS = ("off", "diffaugment", "ada")
DEFAULT_STEPS = 3000
QUICK_STEPS = 20
DEFAULT_EVAL_N = 10_000
ADA_SPEED = 50_000  # real images for p to go 0 -> 1 (the paper: 500k, in runs 100x longer than these)
EXTRACTOR = "fashion"
METRICS = "fd,is,pr,coverage"
CURVE_POINTS = 10  # FD over training: the EMA generator scored at every tenth of the run...
CURVE_N = 2000  # ...on this many samples against all 60k images (eval.reference: full), so overfitting shows
CURVE_REFERENCE = "full"
VERDICT_N = 2048  # images per set for D's verdicts on training, held-out and generated images
AUGMENT_ARGS: dict[str, dict[str, Any]] = {
    "off": {},
    "diffaugment": {"policy": "color,translation,cutout"},
    "ada": {"target": 0.6, "interval": 4, "speed_images": ADA_SPEED},
}
WHAT = {
    "off": "no augmentation",
    "diffaugment": "DiffAugment color,translation,cutout (Zhao et al. 2020)",
    "ada": "ADA, adaptive p, target r_t 0.6 (Karras et al. 2020)",
}


@dataclass(frozen=True)
class Cell:
    """One run: a training-set size and an augmentation, at `steps` G steps."""

    size: int
    augment: str
    steps: int
    seed: int = 0

    @property
    def key(self) -> str:
        return f"n{self.size}__{self.augment}"


def cell_recipe(cell: Cell, threads: int) -> Any:
    """dcgan-fashion on `cell.size` images with `cell.augment`, one checkpoint per tenth of the run."""
    from ..config import load_recipe

    every = max(1, cell.steps // 10)
    aug = json.dumps({"name": cell.augment, "args": AUGMENT_ARGS[cell.augment]})
    overrides = [
        f"augment={aug}",
        f"seed={cell.seed}",
        f"train.steps={cell.steps}",
        "train.progress=false",
        f"train.threads={threads}",
        "eval.every=0",
        f"train.sample_every={cell.steps}",
        f"train.checkpoint_every={every}",
        "train.keep_checkpoints=1",
        f"train.log_every={max(1, cell.steps // 100)}",
        f"eval.every={max(1, cell.steps // CURVE_POINTS)}",
        "eval.metrics=[fd]",
        f"eval.n={CURVE_N}",
        f"eval.extractor={EXTRACTOR}",
        f"eval.reference={CURVE_REFERENCE}",
    ]
    if cell.size < FULL:
        overrides.append(f"data.limit={cell.size}")
    return load_recipe(RECIPE, overrides)


_EVALUATORS: dict[Any, Any] = {}


def _full_evaluator(eval_n: int) -> Any:
    """FD and friends against the whole 60k training split (the distribution every cell is trying to learn)."""
    if ("full", eval_n) not in _EVALUATORS:
        from ..data import load_dataset
        from ..metrics.evaluate import Evaluator

        train = load_dataset("fashion_mnist", image_size=32, fit="pad")
        _EVALUATORS["full", eval_n] = Evaluator(train, METRICS, extractor=EXTRACTOR, n=eval_n, seed=0)
    return _EVALUATORS["full", eval_n]


def _memorisation_evaluator(size: int, eval_n: int) -> Any:
    """The memorisation ratio against the `size` images the run trained on, the test split held out."""
    if ("mem", size, eval_n) not in _EVALUATORS:
        from ..data import load_dataset
        from ..metrics.evaluate import Evaluator

        limit = None if size >= FULL else size
        train = load_dataset("fashion_mnist", image_size=32, fit="pad", limit=limit)
        test = load_dataset("fashion_mnist", image_size=32, fit="pad", split="test")
        _EVALUATORS["mem", size, eval_n] = Evaluator(
            train, "memorisation", extractor=EXTRACTOR, n=eval_n, seed=0, heldout=test, store_max=max(10_000, size)
        )
    return _EVALUATORS["mem", size, eval_n]


def copying_row(size: int, eval_n: int, out: Path) -> dict[str, Any]:
    """What a perfect copier scores: `eval_n` seeded draws, with replacement, from the `size` training images,
    scored against all 60k as a cell's samples are: the scale against which a cell's FD and recall are read (FD
    rates a copier very well, recall does not). Kept in cells/_copy_nSIZE.json."""
    from ..atomic import atomic_write_bytes
    from ..data import load_dataset
    from ..metrics.accumulate import dataset_batches

    path = out / "cells" / f"_copy_n{size}.json"
    if path.is_file():
        rec = json.loads(path.read_text())
        if rec.get("eval_n") == eval_n and scored_by(rec, EXTRACTOR):
            return dict(rec)
    train = load_dataset("fashion_mnist", image_size=32, fit="pad", limit=size)
    idx = torch.randint(len(train), (eval_n,), generator=torch.Generator().manual_seed(0))
    source = f"the {size} training images, {eval_n} draws with replacement"
    res = _full_evaluator(eval_n).evaluate(dataset_batches(train.subset(idx)), eval_n, source=source)
    rec = {"size": size, "eval_n": eval_n, "metrics": res["metrics"], **extractor_stamp(EXTRACTOR)}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, lambda f: f.write(json.dumps(rec, indent=1).encode()))
    return rec


def _p_curve(run_dir: Path) -> list[dict[str, float]]:
    """[{step, p, rt}] from the run's log: ADA's probability and its overfitting heuristic over training."""
    out = []
    log = run_dir / "metrics.jsonl"
    for line in log.read_text().splitlines() if log.exists() else []:
        r = json.loads(line)
        if "aug_p" in r:
            out.append({"step": r["step"], "p": r["aug_p"], "rt": r.get("ada_rt")})
    return out


def _fd_curve(run_dir: Path) -> list[dict[str, float]]:
    """[{step, fd}] from the run's log: FD-fashion of the EMA generator against all 60k images during training."""
    out = []
    log = run_dir / "metrics.jsonl"
    for line in log.read_text().splitlines() if log.exists() else []:
        r = json.loads(line)
        if f"eval/fd_{EXTRACTOR}" in r:
            out.append({"step": r["step"], "fd": r[f"eval/fd_{EXTRACTOR}"]})
    return out


def cell_verdicts(run_dir: Path, size: int, n: int, step: int | None = None) -> dict[str, Any] | None:
    """D's verdicts (benchmarks.d_verdicts) from the cell's final checkpoint on up to VERDICT_N of the images it
    trained on, as many test images and samples; None when the checkpoint is not at `step` (when given)."""
    from ..data import load_dataset
    from .d_verdicts import d_verdicts, load_run_nets

    D, G, _, at = load_run_nets(run_dir)
    if step is not None and at != step:
        return None
    train = load_dataset("fashion_mnist", image_size=32, fit="pad", limit=None if size >= FULL else size)
    test = load_dataset("fashion_mnist", image_size=32, fit="pad", split="test")
    return d_verdicts(D, G, train, test, min(n, VERDICT_N))


def backfill_verdicts(out: Path, done: dict[str, dict[str, Any]], eval_n: int) -> None:
    """Add D's verdicts to cells scored before they were recorded, from their kept run folders."""

    def compute(key: str, rec: dict[str, Any]) -> dict[str, Any] | None:
        v = cell_verdicts(out / "runs" / key, rec["size"], eval_n, step=rec["steps"])
        return None if v is None else {**rec, "d_verdicts": v}

    backfill_records(out, done, lambda r: bool(r.get("metrics")) and "d_verdicts" not in r, compute)


def run_cell(cell: Cell, out_dir: str, eval_n: int, threads: int = 1) -> dict[str, Any]:
    """Train (or finish training) and score one cell; runs in a worker process."""
    torch.set_num_threads(threads)
    out = Path(out_dir)
    recipe = cell_recipe(cell, threads)
    run_dir = out / "runs" / cell.key
    t0 = time.perf_counter()
    trainer = train_or_resume(
        recipe,
        run_dir,
        lambda t: (
            (t.recipe.train.steps, t.recipe.data.limit, t.recipe.augment.name)
            == (cell.steps, recipe.data.limit, cell.augment)
        ),
    )
    status, error = "finished", None
    try:
        trainer.run()
    except RunInterrupted:  # a signal stops the benchmark; it is not this cell's result
        raise
    except Exception as e:  # a collapsing or diverging cell is a result, not a crash of the benchmark
        status, error = "failed", f"{type(e).__name__}: {e}"
    rec: dict[str, Any] = {
        "size": cell.size,
        "augment": cell.augment,
        "seed": cell.seed,
        "steps": cell.steps,
        "status": status,
        "error": error,
        "eval_n": eval_n,
        "train_s": round(trainer.elapsed, 1),
        "g_images_per_s": round(cell.steps * recipe.train.batch_size / max(trainer.elapsed, 1e-9), 1),
        "augment_args": AUGMENT_ARGS[cell.augment],
        "machine": machine_record(),
        **extractor_stamp(EXTRACTOR),
    }
    rec["p_curve"] = _p_curve(run_dir)
    rec["fd_curve"] = _fd_curve(run_dir)
    if status == "finished":
        result = trainer.result
        G = result.generator.eval()
        source = f"{cell.key} EMA generator, {cell.steps} steps"
        res = _full_evaluator(eval_n).evaluate_generator(G, result.latent, source=source)
        mem = _memorisation_evaluator(cell.size, eval_n).evaluate_generator(G, result.latent, source=source)
        rec["metrics"] = {**res["metrics"], **mem["metrics"]}
        rec["final_p"] = trainer.game.augment.p
        rec["d_verdicts"] = cell_verdicts(run_dir, cell.size, eval_n)
        grid = run_dir / "samples" / ("final_ema.png" if result.ema else "final.png")
        if grid.exists():
            (out / "plots").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(grid, out / "plots" / f"{cell.key}_samples.png")
    rec["wall_s"] = round(time.perf_counter() - t0, 1)
    return rec


def _fmt(v: Any, spec: str = "{:.2f}") -> str:
    return "—" if v is None else spec.format(v)


def write_markdown(result: dict[str, Any], path: Path) -> None:
    """The table the README quotes: one row per (size, augmentation)."""
    st = result["settings"]
    lines = [
        f"`{RECIPE}` for {st['steps']:,} G steps (batch 64) on N of Fashion-MNIST's training images "
        f"(`data.limit`, seeded and class-balanced); the EMA generator's {st['eval_n']:,} samples scored with the "
        f"`{EXTRACTOR}` classifier against all 60,000 training images. Memorisation ratio: mean distance of samples "
        f"to their nearest training image over that of the 10,000 test images (below 1: closer than fresh data, "
        f"i.e. copying). ADA's p free to go 0 -> 1 in {ADA_SPEED:,} real images. One seed per cell.",
        "",
        "| images | augmentation | FD ↓ | IS ↑ | precision | recall | classes | memorisation ratio | final p | train min |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    k = {s: f"{s}_{EXTRACTOR}" for s in ("fd", "is", "precision", "recall", "coverage", "memorisation_ratio")}
    for c in result["cells"]:
        m = c.get("metrics")
        if not m:
            lines.append(f"| {c['size']:,} | {c['augment']} | {c['status']}: {c.get('error') or ''} | | | | | | | |")
            continue
        p = _fmt(c.get("final_p"), "{:.2f}") if c["augment"] == "ada" else "—"
        lines.append(
            f"| {c['size']:,} | {c['augment']} | {_fmt(m[k['fd']])} | {_fmt(m[k['is']])} | "
            f"{_fmt(m[k['precision']])} | {_fmt(m[k['recall']])} | {m[k['coverage']] * 10:.0f}/10 | "
            f"{_fmt(m[k['memorisation_ratio']], '{:.3f}')} | {p} | {c['train_s'] / 60:.1f} |"
        )
    verdicts = [c for c in result["cells"] if c.get("d_verdicts")]
    if verdicts:
        lines += [
            "",
            "**Does D memorise?** The final D's mean logit (and the share it calls real) on "
            f"up to {VERDICT_N:,} of the images it trained on, as many held-out test images and as many samples, "
            "without augmentation, in batches as in training (Karras et al. 2020, Fig. 1). *Held-out position*: "
            "where the test images' mean logit sits from the samples' (0) to the training images' (1); at or below "
            "0, D treats real images it has not seen as fakes: it has memorised its training set.",
            "",
            "| images | augmentation | training images | held-out images | samples | held-out position |",
            "|---|---|---|---|---|---|",
        ]
        for c in verdicts:
            v = c["d_verdicts"]
            lines.append(
                f"| {c['size']:,} | {c['augment']} | {v['logit_train']:+.2f} ({v['real_train']:.0%}) | "
                f"{v['logit_held']:+.2f} ({v['real_held']:.0%}) | {v['logit_fake']:+.2f} ({v['real_fake']:.0%}) | "
                f"{_fmt(v['held_position'])} |"
            )
    if result.get("copying"):
        lines += [
            "",
            "**A perfect copier**, for scale: the N training images themselves, drawn with replacement and scored "
            "the same way (memorisation ratio 0 by construction). FD alone rates copying far better than any run; "
            "recall (and the memorisation ratio) are what expose a copier.",
            "",
            "| images | FD ↓ | IS ↑ | precision | recall |",
            "|---|---|---|---|---|",
        ]
        for c in result["copying"]:
            m = c["metrics"]
            lines.append(
                f"| {c['size']:,} | {_fmt(m[k['fd']])} | {_fmt(m[k['is']])} | {_fmt(m[k['precision']])} | "
                f"{_fmt(m[k['recall']])} |"
            )
    machines = sorted({machine_label(c.get("machine")) for c in result["cells"]})
    lines += ["", f"Machine(s): {'; '.join(machines)}."]
    if result.get("missing"):
        lines += ["", f"**Not run yet** (the bench continues where it stopped): {', '.join(result['missing'])}."]
    lines += [
        "",
        "Pictures: `plots/nN__AUG_samples.png` (each cell's samples), `plots/ada_p.png` (ADA's p over "
        "training at each size), `plots/fd_by_size.png`, `plots/fd_curve.png` (FD over training, "
        f"{CURVE_N:,} samples against all 60k images at every tenth of the run; cells run since it was added).",
    ]
    path.write_text("\n".join(lines) + "\n")


def _save(fig: Any, ax: Any, path: Path) -> str:
    """Legend, layout, write, close; the file's name."""
    import matplotlib.pyplot as plt

    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path.name


def _plots(result: dict[str, Any], plots: Path) -> dict[str, str]:
    """ADA's p over training per size, and FD against the training-set size per augmentation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made: dict[str, str] = {}
    ada = [c for c in result["cells"] if c["augment"] == "ada" and c.get("p_curve")]
    if ada:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for c in sorted(ada, key=lambda c: c["size"]):
            ax.plot([r["step"] for r in c["p_curve"]], [r["p"] for r in c["p_curve"]], label=f"{c['size']:,} images")
        ax.set_xlabel("G step")
        ax.set_ylabel("ADA's p")
        ax.set_ylim(0, 1)
        ax.set_title("ADA: augmentation probability over training")
        made["ada_p"] = _save(fig, ax, plots / "ada_p.png")
    curves = [c for c in result["cells"] if c.get("fd_curve")]
    if curves:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        styles = {s: ls for s, ls in zip(ALL_SIZES, ("-.", "-", "--", ":"), strict=True)}
        colours = {a: f"C{i}" for i, a in enumerate(AUGMENTS)}
        for c in sorted(curves, key=lambda c: (c["size"], AUGMENTS.index(c["augment"]))):
            pts = c["fd_curve"]
            ax.plot(
                [r["step"] for r in pts],
                [r["fd"] for r in pts],
                marker="o",
                ms=3,
                ls=styles[c["size"]],
                color=colours[c["augment"]],
                label=f"{c['size']:,} images, {c['augment']}",
            )
        ax.set_xlabel("G step")
        ax.set_ylabel(f"FD-fashion, {CURVE_N:,} samples (lower is better)")
        ax.set_title("FD against all 60k images over training")
        made["fd_curve"] = _save(fig, ax, plots / "fd_curve.png")
    scored = [c for c in result["cells"] if c.get("metrics")]
    if scored:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for aug in AUGMENTS:
            pts = sorted((c["size"], c["metrics"][f"fd_{EXTRACTOR}"]) for c in scored if c["augment"] == aug)
            if pts:
                ax.plot(*zip(*pts), marker="o", label=aug)
        ax.set_xscale("log")
        ax.set_xlabel("training images")
        ax.set_ylabel("FD-fashion (lower is better)")
        made["fd_by_size"] = _save(fig, ax, plots / "fd_by_size.png")
    return made


def run_limited_bench(
    out: str | Path,
    quick: bool = False,
    cells: list[str] | None = None,
    steps: int | None = None,
    eval_n: int | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every (size, augmentation) cell not yet done, then write limited.json, limited.md and the plots."""
    from ..data import load_dataset
    from ..errors import ConfigError

    check_choices(cells, [Cell(s, a, 0).key for s in ALL_SIZES for a in AUGMENTS], "cell", "limited")
    if steps is not None and steps < 1:
        raise ConfigError(f"bench limited needs at least one step, got {steps}")
    load_dataset("fashion_mnist", image_size=32, fit="pad", limit=10)  # fail early, with the loader's advice
    out = Path(out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    steps = steps or (QUICK_STEPS if quick else DEFAULT_STEPS)
    eval_n = eval_n or (500 if quick else DEFAULT_EVAL_N)
    # Largest data first: its cells take as long as the others, and the full-data row is the reference.
    todo = [
        Cell(s, a, steps)
        for s in sorted(ALL_SIZES, reverse=True)
        for a in AUGMENTS
        if (f"n{s}__{a}" in cells if cells else s in SIZES)
    ]

    def valid(c: Cell, r: dict[str, Any]) -> bool:
        return (
            r.get("steps") == steps
            and r.get("eval_n") == eval_n
            and r.get("metrics") is not None
            and scored_by(r, EXTRACTOR)
        )

    done, info = run_cells(
        out,
        todo,
        key=lambda c: c.key,
        fn=run_cell,
        args=(str(out), eval_n),
        workers=workers,
        valid=valid,
        describe=lambda r: f"FD {(r.get('metrics') or {}).get(f'fd_{EXTRACTOR}', float('nan')):.1f}",
        progress=progress,
        desc="bench limited",
    )
    # The table covers every cell done at these settings, not only this call's: the bench runs in parts.
    every = [Cell(s, a, steps) for s in sorted(ALL_SIZES, reverse=True) for a in AUGMENTS]
    done = with_earlier(out, every, lambda c: c.key, valid, done)
    backfill_verdicts(out, done, eval_n)
    wanted = {c.key for c in todo} | {Cell(s, a, steps).key for s in SIZES for a in AUGMENTS}
    results = sorted(done.values(), key=lambda r: (r["size"], AUGMENTS.index(r["augment"])))
    result: dict[str, Any] = {
        "benchmark": "limited (issue 18: DiffAugment and ADA on small datasets)",
        "settings": {
            "recipe": RECIPE,
            "steps": steps,
            "eval_n": eval_n,
            "sizes": sorted({r["size"] for r in results} | set(SIZES)),
            "augments": list(AUGMENTS),
            "ada_speed_images": ADA_SPEED,
            "quick": quick,
            "extractor": EXTRACTOR,
        },
        "info": info,
        "machine": machine_record(),
        "missing": [c.key for c in every if c.key in wanted and c.key not in done],
        "cells": results,
    }
    sizes = sorted({r["size"] for r in results if r.get("metrics") and r["size"] < FULL})
    result["copying"] = [copying_row(size, eval_n, out) for size in sizes]
    result["plots"] = _plots(result, out / "plots")
    (out / "limited.json").write_text(json.dumps(result, indent=1, default=str))
    write_markdown(result, out / "limited.md")
    return result
