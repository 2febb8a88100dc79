"""`ganforge bench stacked`: mode collapse on images, 1,000 modes of stacked Fashion-MNIST.

Protocol (issue 20; Metz et al. 2017, Lin et al. 2018): every row trains the `dcgan-stacked` recipe
(DCGAN at 32x32, batch 64, Adam 2e-4 / (0.5, 0.999), EMA of G) with the row's change, for the same
number of generator steps, on three seeds where the cost allows. The EMA generator's samples (26,000,
as PacGAN counts) are scored channel by channel with the shipped Fashion-MNIST classifier: modes
covered of 1,000, KL(mode histogram || uniform), the share of samples whose three channels are each
classified with confidence >= 0.5, and FD-fashion of the channels against 10,000 real stacked
training images. The real test split's own figures are the floor. Cells are resumable.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import RunInterrupted
from .runner import check_choices, extractor_stamp, machine_record, run_cells, scored_by, train_or_resume

RECIPE = "dcgan-stacked"
DEFAULT_STEPS = 6000
CURVE_EVERY = 1000  # in-training mode count (10,000 samples) for the modes-vs-steps curve
CURVE_N = 10_000
QUICK_STEPS = 30
EVAL_N = 26_000  # PacGAN's sample count on stacked MNIST
REFERENCE_N = 10_000
METRICS = "modes,fd,is,coverage"
# How each base reaches 32x32, as its shipped classifier was trained: Fashion-MNIST's 28x28 padded, digits' 8x8 resized.
FIT = {"fashion_mnist": "pad", "digits": "resize"}
EXTRACTOR = {"fashion_mnist": "fashion", "digits": "digits"}  # what extractor "auto" scores each base with


@dataclass(frozen=True)
class Row:
    """One row: overrides of the stacked recipe, and what the row shows."""

    key: str
    what: str
    overrides: tuple[str, ...] = ()
    cost: float = 1.0  # relative time per G step, for longest-first scheduling


ROWS: list[Row] = [
    Row("dcgan", "plain DCGAN (Radford et al. 2015)"),
    Row("pacgan2", "DCGAN, D sees packs of 2 (Lin et al. 2018)", ("game.args.pack=2",), 1.6),
    Row("pacgan4", "DCGAN, D sees packs of 4 (Lin et al. 2018)", ("game.args.pack=4",), 2.6),
    Row(
        "mbstd",
        "DCGAN, minibatch stddev in D, group 4 (Karras et al. 2018)",
        ("model.discriminator.args.mbstd_group=4",),
        1.0,
    ),
    Row(
        "r1",
        "DCGAN, R1 penalty 1.0, lazy every 4 (Mescheder et al. 2018)",
        ("regularizers=[{name: r1, weight: 1.0, every: 4}]",),
        1.3,
    ),
    Row(
        "sngan",
        "DCGAN, hinge + spectral norm in D without BN (Miyato et al. 2018)",
        ("loss=hinge", "model.spectral_norm=d", "model.discriminator.args.norm=none"),
        1.2,
    ),
    Row(
        "unrolled",
        "DCGAN, D unrolled 5 steps for G (Metz et al. 2017)",
        ("game={name: unrolled, args: {unroll: 5}}",),
        4.0,
    ),
    Row(
        "best",
        "PacGAN2 + minibatch stddev + R1 (this benchmark's combination)",
        (
            "game.args.pack=2",
            "model.discriminator.args.mbstd_group=4",
            "regularizers=[{name: r1, weight: 1.0, every: 4}]",
        ),
        2.0,
    ),
]
ROW_KEYS = [r.key for r in ROWS]

# Lin et al. 2018 (PacGAN), Table 3: stacked MNIST in VEEGAN's setting, 26,000 samples, modes of 1,000 and KL.
PUBLISHED = {
    "DCGAN": (99.0, 3.40),
    "ALI": (16.0, 5.40),
    "Unrolled GAN": (48.7, 4.32),
    "VEEGAN": (150.0, 2.95),
    "PacDCGAN2": (1000.0, 0.06),
    "PacDCGAN3": (1000.0, 0.06),
    "PacDCGAN4": (1000.0, 0.07),
}


@dataclass(frozen=True)
class Cell:
    row: Row
    seed: int
    steps: int
    base: str = "fashion_mnist"

    @property
    def key(self) -> str:
        return f"{self.row.key}__s{self.seed}"


_EVALUATORS: dict[tuple[str, int], Any] = {}


def _evaluator(base: str, eval_n: int) -> Any:
    """One evaluator per worker process: the reference statistics are computed once."""
    if (base, eval_n) not in _EVALUATORS:
        from ..data import load_dataset
        from ..metrics.evaluate import Evaluator

        train = load_dataset("stacked", base=base, image_size=32, fit=FIT[base]).head(REFERENCE_N)
        _EVALUATORS[base, eval_n] = Evaluator(train, METRICS, extractor="auto", n=eval_n, seed=0)
    return _EVALUATORS[base, eval_n]


def run_cell(cell: Cell, out_dir: str, eval_n: int, threads: int = 1) -> dict[str, Any]:
    """Train and score one (row, seed) cell; runs in a worker process."""
    torch.set_num_threads(threads)
    from ..config import load_recipe

    out = Path(out_dir)
    steps = cell.steps
    every = min(CURVE_EVERY, steps)
    overrides = [
        f"data.base={cell.base}",
        f"data.fit={FIT[cell.base]}",
        *cell.row.overrides,
        f"seed={cell.seed}",
        f"train.steps={steps}",
        "train.progress=false",
        f"train.threads={threads}",
        f"eval.every={every}",
        "eval.metrics=[modes]",
        f"eval.n={min(CURVE_N, eval_n)}",
        f"train.sample_every={every}",
        f"train.checkpoint_every={every}",
        "train.keep_checkpoints=1",
        f"train.log_every={max(1, steps // 40)}",
    ]
    recipe = load_recipe(RECIPE, overrides)
    run_dir = out / "runs" / cell.key
    t0 = time.perf_counter()
    trainer = train_or_resume(recipe, run_dir, lambda t: (t.recipe.train.steps, t.recipe.seed) == (steps, cell.seed))
    status, error = "finished", None
    try:
        trainer.run()
    except RunInterrupted:  # a signal stops the benchmark; it is not this cell's result
        raise
    except Exception as e:  # a diverging row is a result, not a crash of the benchmark
        status, error = "failed", f"{type(e).__name__}: {e}"
    rec: dict[str, Any] = {
        "row": cell.row.key,
        "seed": cell.seed,
        "steps": steps,
        "status": status,
        "error": error,
        "base": cell.base,
        "eval_n": eval_n,
        "overrides": list(cell.row.overrides),
        "train_s": round(trainer.elapsed, 1),
        **extractor_stamp(EXTRACTOR[cell.base]),
        "g_images_per_s": round(steps * recipe.train.batch_size / max(trainer.elapsed, 1e-9), 1),
    }
    rec["curve"] = _curve(run_dir)
    if status == "finished":
        result = trainer.result
        G = result.generator.eval()
        res = _evaluator(cell.base, eval_n).evaluate_generator(
            G, result.latent, source=f"{cell.key} EMA generator, {steps} steps"
        )
        rec["metrics"] = res["metrics"]
        rec["protocol"] = res["protocol"]
        grid = run_dir / "samples" / "final_ema.png"
        if grid.exists():
            (out / "plots").mkdir(exist_ok=True)
            shutil.copyfile(grid, out / "plots" / f"{cell.key}.png")
    rec["wall_s"] = round(time.perf_counter() - t0, 1)
    return rec


def _curve(run_dir: Path) -> list[dict[str, float]]:
    """[{step, modes, kl, high_quality}] of the in-training evaluations (10,000 samples each)."""
    out = []
    log = run_dir / "metrics.jsonl"
    for line in log.read_text().splitlines() if log.exists() else []:
        r = json.loads(line)
        if "eval/modes" in r:
            out.append(
                {
                    "step": r["step"],
                    "modes": r["eval/modes"],
                    "kl": r["eval/kl_modes"],
                    "high_quality": r["eval/high_quality"],
                }
            )
    return out


def real_floor(base: str, eval_n: int) -> dict[str, Any]:
    """The real test split scored like a generator (up to eval_n images): the floor of every column."""
    from ..data import load_dataset
    from ..metrics.evaluate import dataset_batches

    test = load_dataset("stacked", base=base, image_size=32, fit=FIT[base], split="test")
    n = min(eval_n, len(test))
    res = _evaluator(base, eval_n).evaluate(dataset_batches(test, n), n, f"real stacked test split ({n})")
    return {"n": n, "metrics": res["metrics"]}


def _mean_se(values: list[float]) -> dict[str, float]:
    m = sum(values) / len(values)
    se = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1) / len(values)) if len(values) > 1 else 0.0
    return {"mean": m, "se": se, "min": min(values), "max": max(values)}


def _numbers(metrics: dict[str, float]) -> dict[str, float]:
    """The table's columns from an evaluation (FD's key names the base's classifier: fd_fashion, fd_digits)."""
    fd = next(v for k, v in metrics.items() if k.startswith("fd_"))
    return {
        "modes": metrics["modes"],
        "kl_modes": metrics["kl_modes"],
        "high_quality": metrics["high_quality"],
        "fd": fd,
    }


def summarise(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Per row: mean, standard error, min and max over seeds of each number."""
    out: dict[str, Any] = {}
    for key in ROW_KEYS:
        rows = [_numbers(c["metrics"]) for c in cells if c["row"] == key and c.get("metrics")]
        walls = [c["train_s"] for c in cells if c["row"] == key and c.get("metrics")]
        if not rows:
            continue
        s: dict[str, Any] = {k: _mean_se([r[k] for r in rows]) for k in ("modes", "kl_modes", "high_quality", "fd")}
        s["seeds"] = len(rows)
        s["failed"] = sum(1 for c in cells if c["row"] == key and c["status"] != "finished")
        s["wall_s"] = _mean_se(walls)
        s["steps"] = next(c["steps"] for c in cells if c["row"] == key)
        out[key] = s
    return out


def _fmt(s: dict[str, float], digits: int, scale: float = 1.0) -> str:
    if s.get("se"):
        return f"{s['mean'] * scale:.{digits}f} ± {s['se'] * scale:.{digits}f}"
    return f"{s['mean'] * scale:.{digits}f}"


def write_markdown(result: dict[str, Any], path: Path) -> None:
    """The table the README quotes."""
    st = result["settings"]
    fl = _numbers(result["floor"]["metrics"])
    lines = [
        f"Stacked Fashion-MNIST (1,000 modes), {st['steps']} generator steps of batch 64 per run, {st['eval_n']:,} "
        f"samples of the EMA generator scored per run; mean ± standard error over seeds (min-max of modes in "
        f"brackets). {result['info']['workers']} worker(s) x {result['info']['threads_per_worker']} thread(s).",
        "",
        f"| row | what | modes (of 1,000) ↑ | KL ↓ | high quality ↑ | FD-{st['base'].split('_')[0]} (channels) ↓ | seeds | training min / run |",
        "|---|---|---|---|---|---|---|---|",
        f"| real test split | the floor ({result['floor']['n']:,} images) | {fl['modes']:.0f} | {fl['kl_modes']:.3f} | "
        f"{100 * fl['high_quality']:.1f}% | {fl['fd']:.2f} | — | — |",
    ]
    what = {r.key: r.what for r in ROWS}
    for key, s in result["summary"].items():
        note = f" ({s['failed']} failed)" if s["failed"] else ""
        lines.append(
            f"| `{key}` | {what[key]}{note} | {_fmt(s['modes'], 1)} [{s['modes']['min']:.0f}-{s['modes']['max']:.0f}] | "
            f"{_fmt(s['kl_modes'], 3)} | {_fmt(s['high_quality'], 1, 100)}% | {_fmt(s['fd'], 2)} | "
            f"{s['seeds']} | {s['wall_s']['mean'] / 60:.1f} |"
        )
    lines += [
        "",
        "Published stacked MNIST (Lin et al. 2018, Table 3; VEEGAN's networks and 26,000 samples; a "
        "different dataset — digits, not clothes — and much longer training, so for orientation only):",
        "",
        "| method | modes | KL |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {m:.1f} | {kl:.2f} |" for k, (m, kl) in PUBLISHED.items()]
    path.write_text("\n".join(lines) + "\n")


def run_stacked_bench(
    out: str | Path,
    quick: bool = False,
    rows: list[str] | None = None,
    seeds: int | None = None,
    steps: int | None = None,
    eval_n: int | None = None,
    workers: int | None = None,
    progress: bool = True,
    base: str = "fashion_mnist",
) -> dict[str, Any]:
    """Run every (row, seed) cell not yet done, then write stacked.json and stacked.md into `out`."""
    from ..data import load_dataset
    from ..errors import ConfigError

    check_choices(rows, ROW_KEYS, "row", "stacked")
    if base not in FIT:
        raise ConfigError(f"bench stacked base must be one of {', '.join(FIT)}, got {base!r}.")
    load_dataset(base, image_size=32, fit=FIT[base])  # fail early, with the loader's advice, if it is missing
    out = Path(out)
    steps = steps or (QUICK_STEPS if quick else DEFAULT_STEPS)
    eval_n = eval_n or (500 if quick else EVAL_N)
    n_seeds = seeds or (1 if quick else 3)
    chosen = [r for r in ROWS if not rows or r.key in rows]
    cells = sorted(
        [Cell(r, s, steps, base) for s in range(n_seeds) for r in chosen], key=lambda c: (c.seed, -c.row.cost)
    )
    done, info = run_cells(
        out,
        cells,
        key=lambda c: c.key,
        fn=run_cell,
        args=(str(out), eval_n),
        workers=workers,
        valid=lambda c, r: (
            r.get("steps") == steps
            and r.get("metrics", {}).get("modes") is not None
            and r.get("eval_n") == eval_n
            and r.get("base") == base
            and scored_by(r, EXTRACTOR[base])
        ),
        describe=lambda r: f"{r.get('metrics', {}).get('modes', '?')} modes",
        progress=progress,
        desc="bench stacked",
    )
    floor_file = out / "cells" / "_floor.json"
    floor = json.loads(floor_file.read_text()) if floor_file.exists() else None
    if (
        floor is None
        or floor.get("eval_n") != eval_n
        or floor.get("base") != base
        or not scored_by(floor, EXTRACTOR[base])
    ):
        floor = {**real_floor(base, eval_n), "eval_n": eval_n, "base": base, **extractor_stamp(EXTRACTOR[base])}
        floor_file.write_text(json.dumps(floor, indent=1))
    results = [done[c.key] for c in cells]
    result = {
        "benchmark": "stacked (issue 20: mode collapse on images)",
        "settings": {
            "recipe": RECIPE,
            "base": base,
            "steps": steps,
            "seeds": n_seeds,
            "eval_n": eval_n,
            "reference_n": REFERENCE_N,
            "quick": quick,
            "confidence": 0.5,
        },
        "info": info,
        "machine": machine_record(),
        "floor": floor,
        "summary": summarise(results),
        "cells": results,
    }
    (out / "stacked.json").write_text(json.dumps(result, indent=1, default=str))
    write_markdown(result, out / "stacked.md")
    return result
