"""`ganforge bench toy`: every stabilisation technique on the 2-D ring and grid (BENCHMARKS.md section 1).

Each cell trains one recipe on one mixture with one seed, then scores 2,500 samples of
its (EMA, when the recipe keeps one) generator by the PacGAN protocol: modes captured,
% high-quality samples, KL(p_gen || uniform). The zoo rows share one generator-step
budget so that they compare at equal length; showcase rows run at their recipe's own
length. Cells run through runner.run_cells: worker processes that divide the cores (two
small networks use two cores better as two runs than as one), finished cells kept in
``cells/`` so an interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import RunInterrupted
from .runner import machine_record, run_cells, split_cores, wall_time

# (recipe, what it shows). Every objective, regulariser and scheme of the zoo has a row.
ZOO: list[tuple[str, str]] = [
    ("minimax-toy", "objective: minimax (saturating G loss)"),
    ("gan-toy", "objective: non-saturating"),
    ("wgan-toy", "objective: Wasserstein + weight clipping, 5 critic steps"),
    ("lsgan-toy", "objective: least squares"),
    ("hinge-toy", "objective: hinge"),
    ("rsgan-toy", "objective: relativistic standard"),
    ("ragan-toy", "objective: relativistic average"),
    ("ralsgan-toy", "objective: relativistic average LS"),
    ("rahinge-toy", "objective: relativistic average hinge"),
    ("wgan-gp-toy", "regulariser: gradient penalty (1-centred), 5 critic steps"),
    ("gp0-toy", "regulariser: zero-centred gradient penalty"),
    ("dragan-toy", "regulariser: DRAGAN"),
    ("r1-toy", "regulariser: R1"),
    ("r1-lazy-toy", "regulariser: R1, lazy (every 16 steps)"),
    ("r2-toy", "regulariser: R2"),
    ("sngan-toy", "regulariser: spectral normalisation (D), hinge"),
    ("orthogonal-toy", "regulariser: orthogonal (G)"),
    ("drift-toy", "regulariser: drift penalty (WGAN-GP + drift)"),
    ("instance-noise-toy", "regulariser: instance noise, annealed"),
    ("ttur-toy", "scheme: TTUR (D lr 3x G lr)"),
    ("ema-toy", "scheme: EMA of G"),
    ("unrolled-toy", "scheme: unrolled D (5 steps)"),
    ("pacgan2-toy", "scheme: PacGAN2"),
    ("pacgan4-toy", "scheme: PacGAN4"),
    ("optimistic-adam-toy", "scheme: optimistic Adam"),
    ("extragradient-toy", "scheme: extragradient (Extra-Adam)"),
    ("historical-averaging-toy", "scheme: historical averaging"),
    ("label-smoothing-toy", "scheme: one-sided label smoothing (0.9)"),
    ("feature-matching-toy", "scheme: feature matching"),
    ("minibatch-discrimination-toy", "scheme: minibatch discrimination"),
    ("vbn-toy", "scheme: virtual batch norm (G)"),
]
SHOWCASE: list[tuple[str, str]] = [("toy-best", "ganforge's best toy recipe at its own length")]
DATASETS = ("ring", "grid")

# BENCHMARKS.md section 1 (Lin et al. 2018, Table 2): modes / % high quality / KL.
PUBLISHED = {
    "GAN": {"ring": (6.3, 98.2, 0.45), "grid": (17.3, 94.8, 0.70)},
    "ALI": {"ring": (6.6, 97.6, 0.36), "grid": (24.1, 95.7, 0.14)},
    "PacGAN2": {"ring": (7.9, 95.6, 0.07), "grid": (23.8, 91.3, 0.13)},
    "PacGAN3": {"ring": (7.8, 97.7, 0.10), "grid": (24.6, 94.2, 0.06)},
    "PacGAN4": {"ring": (7.8, 95.9, 0.07), "grid": (24.8, 93.6, 0.04)},
}
PUBLISHED_SAMPLES = 400 * 100_000  # PacGAN: about 400 epochs of 100k samples


@dataclass(frozen=True)
class Cell:
    """One training run of the benchmark matrix."""

    recipe: str
    data: str
    seed: int
    steps: int | None  # None: the recipe's own train.steps

    @property
    def key(self) -> str:
        return f"{Path(self.recipe).stem}__{self.data}__s{self.seed}"


def cell_recipe(cell: Cell, threads: int) -> Any:
    """The cell's recipe: its mixture, seed and length, one sample grid and one checkpoint, set before validation."""
    from ..config import load_recipe

    overrides = [f"data.name={cell.data}", f"seed={cell.seed}", "train.progress=false", f"train.threads={threads}"]
    own = load_recipe(cell.recipe, overrides).train  # the recipe's own length and log cadence
    steps = cell.steps or own.steps
    return load_recipe(
        cell.recipe,
        [
            *overrides,
            f"train.steps={steps}",
            f"train.log_every={max(1, min(own.log_every, steps))}",
            f"train.sample_every={steps}",
            f"train.checkpoint_every={steps}",
            "train.keep_checkpoints=1",
        ],
    )


def run_cell(cell: Cell, out_dir: str, threads: int = 1) -> dict[str, Any]:
    """Train and score one cell (runs in a worker process)."""
    torch.set_num_threads(threads)
    from ..data import mixture_spec
    from ..generation import sample
    from ..metrics.modes import mixture_mode_metrics
    from ..training.trainer import Trainer

    recipe = cell_recipe(cell, threads)
    steps = recipe.train.steps
    run_dir = Path(out_dir) / "runs" / cell.key
    t0 = time.perf_counter()
    trainer = Trainer(recipe, run_dir, progress=False)
    status, error = "finished", None
    try:
        trainer.run()
    except RunInterrupted:  # a signal stops the benchmark; it is not this cell's result
        raise
    except Exception as e:  # a diverging recipe is a result, not a crash of the benchmark
        status, error = "failed", f"{type(e).__name__}: {e}"
    wall = time.perf_counter() - t0
    centres, std = mixture_spec(cell.data)
    result = trainer.result
    assert result.generator is not None  # a toy recipe trains a noise generator
    x = sample(result.generator.cpu(), 2500, result.latent, seed=10_000 + cell.seed)
    if not torch.isfinite(x).all():
        scores = {"modes": 0, "num_modes": len(centres), "high_quality": 0.0, "kl": float("nan")}
    else:
        scores = mixture_mode_metrics(x, centres, std)
    torch.save(x, run_dir / "samples_2500.pt")
    return {
        "recipe": cell.recipe,
        "data": cell.data,
        "seed": cell.seed,
        "steps": steps,
        "status": status,
        "error": error,
        "wall_s": round(wall, 2),
        "ema": result.ema,
        "real_samples": steps * trainer.game.real_per_step(recipe.train.batch_size),
        "modes": int(scores["modes"]),
        "num_modes": int(scores["num_modes"]),
        "high_quality": float(scores["high_quality"]) * 100.0,
        "kl": float(scores["kl"]),
    }


def _mean_se(xs: list[float]) -> tuple[float, float]:
    xs = [x for x in xs if math.isfinite(x)] or [float("nan")]
    m = sum(xs) / len(xs)
    se = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs)) if len(xs) > 1 else 0.0
    return m, se


def summarise(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard error over seeds for every (recipe, data)."""
    out: dict[str, Any] = {}
    for c in cells:
        out.setdefault(c["recipe"], {}).setdefault(c["data"], []).append(c)
    summary: dict[str, Any] = {}
    for recipe, by_data in out.items():
        summary[recipe] = {}
        for data, rows in by_data.items():
            s: dict[str, Any] = {
                "seeds": len(rows),
                "steps": rows[0]["steps"],
                "real_samples": rows[0]["real_samples"],
                "failed": sum(r["status"] != "finished" for r in rows),
            }
            for k in ("modes", "high_quality", "kl", "wall_s"):
                m, se = _mean_se([float(r[k]) for r in rows])
                s[k] = {"mean": m, "se": se, "values": [r[k] for r in rows]}
            s["all_modes_every_seed"] = all(r["modes"] == r["num_modes"] for r in rows)
            summary[recipe][data] = s
    return summary


def _fmt(s: dict[str, Any] | None) -> str:
    if s is None:
        return "— | — | —"
    m, h, k = s["modes"], s["high_quality"], s["kl"]
    if s["seeds"] == 1:  # a standard error of one value would read as "exact"
        return f"{m['mean']:.1f} | {h['mean']:.1f} | {k['mean']:.3f}"
    return f"{m['mean']:.1f} ± {m['se']:.1f} | {h['mean']:.1f} ± {h['se']:.1f} | {k['mean']:.3f} ± {k['se']:.3f}"


def real_reference(seeds: int) -> dict[str, Any]:
    """The protocol's scores for 2,500 samples of the true mixture itself: the ceiling of each column."""
    from ..data import mixture_spec
    from ..metrics.modes import mixture_mode_metrics

    out: dict[str, Any] = {}
    for data in DATASETS:
        centres, std = mixture_spec(data)
        rows = []
        for seed in range(seeds):
            g = torch.Generator().manual_seed(20_000 + seed)
            idx = torch.randint(len(centres), (2500,), generator=g)
            x = centres[idx] + std * torch.randn(2500, 2, generator=g)
            sc = mixture_mode_metrics(x, centres, std)
            rows.append(
                {
                    "modes": sc["modes"],
                    "num_modes": sc["num_modes"],
                    "high_quality": 100 * sc["high_quality"],
                    "kl": sc["kl"],
                    "status": "finished",
                    "steps": 0,
                    "real_samples": 0,
                    "wall_s": 0.0,
                    "recipe": "real data",
                    "data": data,
                }
            )
        out[data] = rows
    return summarise(out["ring"] + out["grid"])["real data"]


def write_markdown(result: dict[str, Any], path: Path) -> None:
    """The README table: one row per recipe, published PacGAN numbers below."""
    summary = result["summary"]
    lines = [
        f"Mode-collapse benchmark (BENCHMARKS.md §1): {result['settings']['seeds']} seeds per cell, "
        f"{result['settings']['zoo_steps']} generator steps for the zoo rows (batch 100, "
        f"{result['settings']['zoo_steps'] * 100:,} real samples for one critic step per G step), "
        "2,500 samples scored; mean ± standard error over seeds. Whole matrix: "
        f"{result['wall_time_s'] / 60:.0f} min with {result['settings']['workers']} worker(s) x "
        f"{result['settings']['threads_per_worker']} thread(s) on {result['machine']['cpus']} CPU cores.",
        "",
        "| recipe | what | ring modes (8) | ring % HQ | ring KL | grid modes (25) | grid % HQ | grid KL | steps | s / run |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    what = dict(ZOO + SHOWCASE)
    ref = result.get("real_reference")
    if ref:
        lines.append(
            f"| real data | 2,500 samples of the true mixture (the ceiling) | {_fmt(ref.get('ring'))} | "
            f"{_fmt(ref.get('grid'))} | — | — |"
        )
    for recipe in result["order"]:
        if recipe not in summary:
            continue
        by = summary[recipe]
        wall = [by[d]["wall_s"]["mean"] for d in by]
        steps = next(iter(by.values()))["steps"]
        failed = sum(by[d]["failed"] for d in by)
        note = f" ({failed} runs diverged)" if failed else ""
        lines.append(
            f"| `{recipe}` | {what.get(recipe, '')}{note} | {_fmt(by.get('ring'))} | {_fmt(by.get('grid'))} | "
            f"{steps} | {sum(wall) / len(wall):.0f} |"
        )
    lines += [
        "",
        "Published (Lin et al. 2018, PacGAN, about 400 epochs of 100k samples = 40M samples):",
        "",
        "| method | ring modes | ring % HQ | ring KL | grid modes | grid % HQ | grid KL |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, v in PUBLISHED.items():
        r, g = v["ring"], v["grid"]
        lines.append(f"| {name} | {r[0]} | {r[1]} | {r[2]} | {g[0]} | {g[1]} | {g[2]} |")
    path.write_text("\n".join(lines) + "\n")


def plot_recipe(out: Path, recipe: str, cells: list[dict[str, Any]]) -> Path | None:
    """Generated points (seed 0 of each mixture) over the true centres."""
    from ..data import mixture_spec
    from ..plots import new_figure

    seed0 = {c["data"]: c for c in cells if c["recipe"] == recipe and c["seed"] == min(x["seed"] for x in cells)}
    if not seed0:
        return None
    fig = new_figure(5.0 * len(seed0), 5.0)
    for i, data in enumerate(d for d in DATASETS if d in seed0):
        c = seed0[data]
        path = out / "runs" / Cell(recipe, data, c["seed"], None).key / "samples_2500.pt"
        ax = fig.add_subplot(1, len(seed0), i + 1)
        if path.exists():
            x = torch.load(path, weights_only=True)
            x = x[torch.isfinite(x).all(1)]
            ax.scatter(x[:, 0], x[:, 1], s=3, alpha=0.35, c="tab:blue", linewidths=0)
        centres, _ = mixture_spec(data)
        ax.scatter(centres[:, 0], centres[:, 1], s=50, marker="x", c="red", linewidths=1.5)
        lim = 1.5 if data == "ring" else 5.5
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal", adjustable="box")
        ax.set_title(
            f"{recipe} · {data} · {c['modes']}/{c['num_modes']} modes, {c['high_quality']:.1f}% HQ, KL {c['kl']:.3f}",
            fontsize=8,
        )
    dest = out / "plots" / f"{recipe}.png"
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=90, bbox_inches="tight")
    return dest


def run_toy_bench(
    out: str | Path,
    quick: bool = False,
    recipes: list[str] | None = None,
    seeds: int | None = None,
    steps: int | None = None,
    workers: int | None = None,
    showcase: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the matrix (resumable), then write toy.json, toy.md and a picture per recipe into `out`."""
    from ..config import list_recipes
    from ..errors import ConfigError

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    known = list_recipes()
    zoo = [r for r, _ in ZOO]
    show = [r for r, _ in SHOWCASE] if showcase else []
    if recipes:
        bad = [r for r in recipes if r not in known and not Path(r).is_file()]
        if bad:
            raise ConfigError(
                f"unknown recipe(s) {', '.join(bad)} for bench toy; shipped toy recipes: "
                f"{', '.join(zoo + [r for r, _ in SHOWCASE])}"
            )
        zoo = [r for r in recipes if r not in show]
        show = [r for r in recipes if r in show]
    n_seeds = seeds or (1 if quick else 3)
    zoo_steps = steps or (150 if quick else 1000)
    cells = [Cell(r, d, s, zoo_steps) for r in zoo for d in DATASETS for s in range(n_seeds)]
    cells += [Cell(r, d, s, (steps or 150) if quick else None) for r in show for d in DATASETS for s in range(n_seeds)]
    # Longest first keeps both workers busy until the end; the tables keep the matrix order.
    schedule = sorted(
        cells, key=lambda c: -(c.steps or 10_000) * (3 if "gp" in c.recipe or "unrolled" in c.recipe else 1)
    )
    done, info = run_cells(
        out,
        schedule,
        key=lambda c: c.key,
        fn=run_cell,
        args=(str(out),),
        workers=workers,
        valid=lambda c, rec: rec.get("steps") == (c.steps or rec.get("steps")),
        describe=lambda rec: f"{rec['modes']} modes {rec['high_quality']:.0f}%",
        progress=progress,
        desc="bench toy",
    )
    workers, threads = split_cores(workers)
    results = [done[c.key] for c in cells]
    wall = wall_time(info, out / "toy.json")
    order = [r for r in zoo + show]
    result = {
        "benchmark": "toy (BENCHMARKS.md section 1)",
        "settings": {
            "quick": quick,
            "seeds": n_seeds,
            "zoo_steps": zoo_steps,
            "workers": workers,
            "threads_per_worker": threads,
            "samples_scored": 2500,
            "showcase_steps": {r: done[Cell(r, "grid", 0, None).key]["steps"] for r in show},
        },
        "machine": machine_record(),
        "wall_time_s": wall,
        "cells_wall_s_sum": round(sum(r["wall_s"] for r in results), 1),
        "real_reference": real_reference(n_seeds),
        "order": order,
        "published": PUBLISHED,
        "published_samples": PUBLISHED_SAMPLES,
        "summary": summarise(results),
        "cells": results,
    }
    (out / "toy.json").write_text(json.dumps(result, indent=1))
    write_markdown(result, out / "toy.md")
    for r in order:
        plot_recipe(out, r, results)
    return result
