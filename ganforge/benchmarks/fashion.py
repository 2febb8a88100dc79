"""`ganforge bench fashion`: the paper architectures and games on Fashion-MNIST under one generator budget.

Every row trains one recipe for the same number of generator images (G steps x batch),
then scores 10,000 samples of its (EMA) generator with the Fashion-MNIST domain classifier:
FD, IS, class coverage and KL to uniform, precision/recall, and conditional accuracy for
class-conditional models. The first row is the real test split against the train split
(the floor every metric can reach). Rows with a paper-specific claim add its evidence:
InfoGAN's code/class mutual information and traversal, the semi-supervised classifier
against the same network trained on the labels alone, BEGAN's M_global curve at two
gammas, SAGAN's attention map and BigGAN's truncation curve. Rows and the floor run through
runner.run_cells (worker processes dividing the cores; finished rows kept in ``cells/``).
"""

from __future__ import annotations

import json
import math
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..metrics.spec import metric_keys
from ..training.hardware import available_cores
from .runner import run_cells, split_cores, wall_time

DEFAULT_IMAGES = 96_000  # generator images per row: 1,500 steps of batch 64
QUICK_IMAGES = 3_200
DEFAULT_EVAL_N = 10_000
TRUNCATIONS = (0.25, 0.5, 1.0, 1.5, 2.0, None)  # None: no truncation


@dataclass(frozen=True)
class Row:
    """One row of the table: a recipe, overrides that make it this row, what it shows, a cost for scheduling."""

    key: str
    recipe: str
    what: str
    overrides: tuple[str, ...] = ()
    cost: float = 1.0  # relative time per G step (for longest-first scheduling only)
    extras: tuple[str, ...] = field(default_factory=tuple)


ROWS: list[Row] = [
    Row("dcgan", "dcgan-fashion", "DCGAN, non-saturating (Radford et al. 2015)", cost=1.0),
    Row("wgan-gp", "wgan-gp-fashion", "WGAN-GP, 5 critic steps (Gulrajani et al. 2017)", cost=8.2),
    Row("lsgan", "lsgan-fashion", "LSGAN (Mao et al. 2017)", cost=1.0),
    Row("cgan", "cgan-fashion", "conditional GAN, label concatenated (Mirza & Osindero 2014)", cost=1.0),
    Row("acgan", "acgan-fashion", "AC-GAN, auxiliary classifier (Odena et al. 2017)", cost=1.05),
    Row("projection", "projection-fashion", "projection D, hinge, SN (Miyato & Koyama 2018)", cost=1.1),
    Row("infogan", "infogan-fashion", "InfoGAN, 10-way + 2 continuous codes (Chen et al. 2016)", cost=1.3,
        extras=("infogan",)),
    Row("ssgan-100", "ssgan-fashion", "semi-supervised GAN, 100 labels (Salimans et al. 2016)",
        ("game.args.labelled=100",), cost=4.3, extras=("ssgan",)),
    Row("ssgan-1000", "ssgan-fashion", "semi-supervised GAN, 1,000 labels (Salimans et al. 2016)",
        ("game.args.labelled=1000",), cost=4.3, extras=("ssgan",)),
    Row("began-0.3", "began-fashion", "BEGAN, gamma 0.3 (Berthelot et al. 2017)", ("game.args.gamma=0.3",),
        cost=2.4, extras=("began",)),
    Row("began-0.7", "began-fashion", "BEGAN, gamma 0.7 (Berthelot et al. 2017)", ("game.args.gamma=0.7",),
        cost=2.4, extras=("began",)),
    Row("sngan", "sngan-fashion", "SNGAN ResNet, hinge, 5 critic steps (Miyato et al. 2018)", cost=7.6),
    Row("sagan", "sagan-fashion", "SAGAN, attention at 16x16, TTUR (Zhang et al. 2018)", cost=3.5,
        extras=("attention",)),
    Row("biggan", "biggan-fashion", "BigGAN blocks, conditional (Brock et al. 2019)", cost=4.7,
        extras=("truncation",)),
]
ROW_KEYS = [r.key for r in ROWS]


METRICS = "fd,is,pr,coverage,cond_acc"  # cond_acc appears only for samples that carry labels
K = metric_keys(METRICS, "fashion")  # result keys by stem, as the metric specs name them: K["fd"] == "fd_fashion"
_EVALUATORS: dict[int, Any] = {}


def _evaluator(n: int) -> Any:
    """One evaluator per worker process: the 60k-image reference pass is paid once, not once per row."""
    if n not in _EVALUATORS:
        from ..data import load_dataset
        from ..metrics.evaluate import Evaluator

        train = load_dataset("fashion_mnist", image_size=32, fit="pad")
        _EVALUATORS[n] = Evaluator(train, METRICS, extractor="fashion", n=n, seed=0)
    return _EVALUATORS[n]


def _copy(src: Path, dst: Path) -> str | None:
    if not src.is_file():
        return None
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst.name


def row_recipe(row: Row, images: int, threads: int) -> Any:
    """The row's recipe at `images` generator images, one sample grid and one checkpoint, set before validation."""
    from ..config import load_recipe

    overrides = [*row.overrides, "train.progress=false", f"train.threads={threads}", "eval.every=0"]
    own = load_recipe(row.recipe, overrides).train  # the recipe's batch size and log cadence
    steps = max(1, images // own.batch_size)
    return load_recipe(row.recipe, overrides + [
        f"train.steps={steps}", f"train.log_every={max(1, min(own.log_every, steps // 30 or 1))}",
        f"train.sample_every={steps}", f"train.checkpoint_every={steps}", "train.keep_checkpoints=1"])


FLOOR = Row("_floor", "", "real test split vs train split (the floor)")  # a pool job whose record is cells/_floor.json


def run_job(row: Row, out_dir: str, images: int, eval_n: int, threads: int = 1) -> dict[str, Any]:
    """One job of the pool: a row, or the real floor (FLOOR), its record stamped with `eval_n`."""
    if row.key == FLOOR.key:  # in the pool process's own torch threads, as when it was submitted on its own
        return {**real_floor(eval_n), "eval_n": eval_n}
    return {**run_row(row, out_dir, images, eval_n, threads), "eval_n": eval_n}


def _describe(rec: dict[str, Any]) -> str:
    fd = rec.get("metrics", {}).get(K["fd"])
    return f"FD {fd:.1f}" if fd is not None else str(rec.get("status", "floor"))


def run_row(row: Row, out_dir: str, images: int, eval_n: int, threads: int = 1) -> dict[str, Any]:
    """Train and score one row (runs in a worker process)."""
    torch.set_num_threads(threads)
    from ..training.trainer import Trainer

    out = Path(out_dir)
    plots = out / "plots"
    recipe = row_recipe(row, images, threads)
    t = recipe.train
    steps = t.steps
    run_dir = out / "runs" / row.key
    if run_dir.exists():
        shutil.rmtree(run_dir)  # a half-finished row restarts from scratch so its wall time is honest
    trainer = Trainer(recipe, run_dir, progress=False)
    status, error = "finished", None
    t0 = time.perf_counter()
    try:
        trainer.run()
    except Exception as e:  # a diverging recipe is a result, not a crash of the benchmark
        status, error = "failed", f"{type(e).__name__}: {e}"
    wall = time.perf_counter() - t0
    result = trainer.result
    train_s = result.wall_time_s or wall
    G = result.generator.eval()
    rec: dict[str, Any] = {
        "row": row.key, "recipe": row.recipe, "what": row.what, "overrides": list(row.overrides), "status": status,
        "error": error, "steps": steps, "batch_size": t.batch_size, "g_images": steps * t.batch_size,
        "real_images": steps * trainer.game.real_per_step(t.batch_size), "wall_s": round(wall, 1),
        "train_s": round(train_s, 1), "g_images_per_s": round(steps * t.batch_size / max(train_s, 1e-9), 1),
        "ema": result.ema, "conditional": bool(result.latent.num_classes),
    }
    rec["samples"] = _copy(run_dir / "samples" / ("final_ema.png" if result.ema else "final.png"),
                           plots / f"{row.key}_samples.png")
    if status != "finished":
        return rec
    t1 = time.perf_counter()
    ev = _evaluator(eval_n)
    res = ev.evaluate_generator(G, result.latent, source=f"{row.key} generator after {steps} steps")
    rec["metrics"] = res["metrics"]
    extras: dict[str, Any] = {}
    if "infogan" in row.extras:
        extras["infogan"] = _infogan_extras(G, result.latent, plots)
    if "ssgan" in row.extras:
        extras["ssgan"] = _ssgan_extras(trainer.D, result, recipe)
    if "began" in row.extras:
        extras["began"] = _began_extras(run_dir, plots, row.key)
    if "attention" in row.extras:
        from ..figures.attention import attention_map_figure

        lat = result.latent.sample(1, torch.Generator().manual_seed(3))
        attention_map_figure(G, lat.z, lat.y, None, plots / f"{row.key}_attention.png")
        extras["attention"] = f"{row.key}_attention.png"
    if "truncation" in row.extras:
        extras["truncation"] = _truncation_curve(G, result.latent, ev, plots, row.key)
    rec["extras"] = extras
    rec["eval_s"] = round(time.perf_counter() - t1, 1)
    return rec


def _infogan_extras(G: Any, latent: Any, plots: Path) -> dict[str, Any]:
    from ..figures.infogan import latent_traversal_figure
    from ..metrics.extractors import get_extractor
    from ..metrics.mutual_information import infogan_code_report

    ext = get_extractor("fashion")
    rep = infogan_code_report(G, latent, lambda im: ext.extract(im)["logits"].argmax(1), n_per_value=1000)
    for i in range(latent.continuous):
        latent_traversal_figure(G, latent, plots / f"infogan_traversal_c{i + 1}.png", continuous_index=i)
    return {k: rep[k] for k in ("mi_bits", "max_bits", "accuracy_after_mapping", "mapping", "confusion")}


def _ssgan_extras(D: Any, result: Any, recipe: Any) -> dict[str, Any]:
    from ..data import load_dataset
    from ..models import build_discriminator
    from .semisup import test_accuracy, train_supervised_baseline

    test = load_dataset("fashion_mnist", image_size=32, fit="pad", split="test")
    gan_acc = test_accuracy(D, test)
    lab = result.labelled
    x_l, y_l = lab.get(torch.arange(len(lab)))
    d_updates = int(result.d_updates)
    shape = tuple(result.shape)
    args = dict(recipe.model.discriminator.args)

    def make_d() -> Any:
        return build_discriminator(recipe.model.discriminator.name, shape, args)

    t0 = time.perf_counter()
    base = train_supervised_baseline(make_d, x_l, y_l, steps=d_updates, batch=min(64, len(lab)),
                                     lr=recipe.optim.d.lr, seed=recipe.seed, betas=tuple(recipe.optim.d.betas))
    base_acc = test_accuracy(base, test)
    return {"labelled": len(lab), "gan_test_acc": gan_acc, "baseline_test_acc": base_acc,
            "margin": gan_acc - base_acc, "baseline_max_steps": d_updates,
            "baseline_s": round(time.perf_counter() - t0, 1), "test_n": len(test)}


def _began_extras(run_dir: Path, plots: Path, key: str) -> dict[str, Any]:
    recs = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
    recs = [r for r in recs if "m_global" in r]
    from ..figures.began import plot_convergence

    plot_convergence(recs, plots / f"{key}_convergence.png")
    ms = [r["m_global"] for r in recs]
    tenth = max(1, len(ms) // 10)
    return {"m_global_first": sum(ms[:tenth]) / tenth, "m_global_last": sum(ms[-tenth:]) / tenth,
            "k_last": recs[-1]["k"], "curve": [(r["step"], r["m_global"]) for r in recs],
            "plot": f"{key}_convergence.png"}


def _truncation_curve(G: Any, latent: Any, ev: Any, plots: Path, key: str) -> dict[str, Any]:
    points = []
    for t in TRUNCATIONS:
        m = ev.evaluate_generator(G, latent, truncation=t)["metrics"]
        points.append({"truncation": t, **{k: m[k] for k in m if not k.endswith("_std")}})
    _plot_truncation(points, plots / f"{key}_truncation.png")
    # Sample grids at the strongest and no truncation, same noise seed, one class per row.
    from ..generation import generate
    from ..plots import save_image_grid

    for t in (0.25, None):
        lat = latent.sample(100, torch.Generator().manual_seed(1), truncation=t, y=torch.arange(100) // 10)
        x = generate(G, lat.z, lat.y)
        save_image_grid(x, plots / f"{key}_samples_t{t or 'none'}.png", nrow=10)
    return {"points": points, "plot": f"{key}_truncation.png"}


def _plot_truncation(points: list[dict[str, Any]], path: Path) -> Path:
    from ..plots import new_figure, save_figure

    xs = [p["truncation"] if p["truncation"] is not None else 3.0 for p in points]
    fig = new_figure(9.0, 3.4)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ax1.plot(xs, [p[K["fd"]] for p in points], "o-")
    ax1.set_xlabel("truncation threshold (3 = none)")
    ax1.set_ylabel("FD-fashion (lower is better)")
    ax2.plot(xs, [p[K["precision"]] for p in points], "o-", label="precision (fidelity)")
    ax2.plot(xs, [p[K["recall"]] for p in points], "s-", label="recall (diversity)")
    ax2.set_xlabel("truncation threshold (3 = none)")
    ax2.legend()
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.suptitle("BigGAN truncation trick: fidelity against diversity")
    return save_figure(fig, path)


def real_floor(eval_n: int) -> dict[str, Any]:
    """The real test split scored against the train split: what a perfect generator would get."""
    from ..data import load_dataset
    from ..metrics.evaluate import dataset_batches

    ev = _evaluator(eval_n)
    test = load_dataset("fashion_mnist", image_size=32, fit="pad", split="test")
    n = min(eval_n, len(test))
    res = ev.evaluate(dataset_batches(test, n), n, "real test split")
    return {"row": "real", "what": "real test split vs train split (the floor)", "metrics": res["metrics"],
            "protocol": res["protocol"]}


# ---------------------------------------------------------------------------- table


def _f(v: Any, fmt: str = "{:.2f}") -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else fmt.format(v)


def write_markdown(result: dict[str, Any], path: Path) -> None:
    """The results table and the per-paper evidence as Markdown."""
    s = result["settings"]
    lines = [
        "# Fashion-MNIST: paper architectures and games under one budget",
        "",
        f"{s['g_images']:,} generator images per row (G steps x batch); {s['eval_n']:,} samples scored per row "
        f"with the Fashion-MNIST domain classifier (features for FD / precision / recall, its softmax for IS, "
        f"its argmax for coverage and conditional accuracy). EMA generator where the recipe keeps one. "
        f"{s['workers']} worker processes x {s['threads_per_worker']} thread. Wall time of the whole table: "
        f"{result['wall_time_s'] / 60:.0f} min on {result['machine']['cpus']} CPU cores.",
        "",
        "| row | FD ↓ | IS ↑ | classes / KL ↓ | precision / recall | cond. acc | G img/s | wall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fl = result["floor"]["metrics"]
    lines.append(f"| real test vs train (floor) | {_f(fl[K['fd']])} | {_f(fl[K['is']])} | "
                 f"{fl[K['coverage']] * 10:.0f}/10 / {fl[K['kl_uniform']]:.3f} | "
                 f"{fl[K['precision']]:.2f} / {fl[K['recall']]:.2f} | "
                 f"{_f(fl.get(K['cond_acc']), '{:.1%}')} (classifier's test accuracy) | — | — |")
    for r in result["rows"]:
        m = r.get("metrics")
        if not m:
            lines.append(f"| {r['row']} | failed: {r.get('error')} | | | | | | {r['wall_s'] / 60:.1f} min |")
            continue
        lines.append(
            f"| {r['row']} | {_f(m[K['fd']])} | {_f(m[K['is']])} | {m[K['coverage']] * 10:.0f}/10 / "
            f"{m[K['kl_uniform']]:.3f} | {m[K['precision']]:.2f} / {m[K['recall']]:.2f} | "
            f"{_f(m.get(K['cond_acc']), '{:.1%}')} | {r['g_images_per_s']:.0f} | {r['wall_s'] / 60:.1f} min |")
    lines += ["", "Rows: " + "; ".join(f"**{r['row']}** {r['what']} (`{r['recipe']}`"
                                        + (f", {' '.join(r['overrides'])}" if r['overrides'] else "") + ")"
                                        for r in result["rows"]) + "."]
    by = {r["row"]: r for r in result["rows"]}
    ex = lambda key, name: (by.get(key) or {}).get("extras", {}).get(name)  # noqa: E731
    info = ex("infogan", "infogan")
    if info:
        lines += ["", "## InfoGAN: what the categorical code carries", "",
                  f"Mutual information between the 10-way code and the classifier's predicted class of the samples: "
                  f"**{info['mi_bits']:.2f} bits** of log2(10) = {info['max_bits']:.2f}; mapping each code value to "
                  f"its majority class, {info['accuracy_after_mapping']:.1%} of samples land in the mapped class. "
                  f"Mapping: {info['mapping']}."]
    ss = [by[k]["extras"]["ssgan"] for k in ("ssgan-100", "ssgan-1000") if k in by and by[k].get("extras", {}).get("ssgan")]
    if ss:
        lines += ["", "## Semi-supervised GAN: test accuracy of D's classifier (10,000 test images)", "",
                  "| labels | semi-supervised GAN | same network on the labels alone | margin |", "|---|---|---|---|"]
        for e in ss:
            lines.append(f"| {e['labelled']:,} | {e['gan_test_acc']:.1%} | {e['baseline_test_acc']:.1%} | "
                         f"{e['margin'] * 100:+.1f} points |")
    bg = [(k, by[k]["extras"]["began"]) for k in ("began-0.3", "began-0.7") if k in by and by[k].get("extras", {}).get("began")]
    if bg:
        lines += ["", "## BEGAN: convergence measure", "", "| gamma | M_global, first tenth | M_global, last tenth | k_t at end | FD |",
                  "|---|---|---|---|---|"]
        for k, e in bg:
            lines.append(f"| {k.split('-')[1]} | {e['m_global_first']:.3f} | {e['m_global_last']:.3f} | {e['k_last']:.4f} | "
                         f"{by[k]['metrics'][K['fd']]:.2f} |")
    tr = ex("biggan", "truncation")
    if tr:
        lines += ["", "## BigGAN: the truncation trick", "", "| threshold | FD | IS | precision | recall | cond. acc |",
                  "|---|---|---|---|---|---|"]
        for p in tr["points"]:
            lines.append(f"| {p['truncation'] if p['truncation'] is not None else 'none'} | {p[K['fd']]:.2f} | "
                         f"{p[K['is']]:.2f} | {p[K['precision']]:.2f} | {p[K['recall']]:.2f} | "
                         f"{_f(p.get(K['cond_acc']), '{:.1%}')} |")
    path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------- driver


def run_fashion_bench(out: str | Path, quick: bool = False, rows: list[str] | None = None, images: int | None = None,
                      eval_n: int | None = None, workers: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Run every row (resumable), then write fashion.json, fashion.md and the pictures into `out`."""
    from ..data import load_dataset
    from ..errors import ConfigError

    if rows:
        bad = [r for r in rows if r not in ROW_KEYS]
        if bad:
            raise ConfigError(f"unknown row(s) {', '.join(bad)} for bench fashion; rows: {', '.join(ROW_KEYS)}")
    load_dataset("fashion_mnist", image_size=32, fit="pad")  # fail early, with the loader's advice, if it is missing
    chosen = [r for r in ROWS if not rows or r.key in rows]
    images = images or (QUICK_IMAGES if quick else DEFAULT_IMAGES)
    eval_n = eval_n or (1000 if quick else DEFAULT_EVAL_N)
    out = Path(out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    # Costliest rows first keep both workers busy until the end; the floor is the pool's last job.
    schedule = sorted(chosen, key=lambda r: -r.cost) + [FLOOR]

    def valid(row: Row, rec: dict[str, Any]) -> bool:  # the same sample count and, for a row, the same length
        batch = rec.get("batch_size", 64)
        return rec.get("eval_n") == eval_n and (row.key == FLOOR.key or rec.get("g_images") == (images // batch) * batch)

    done, info = run_cells(out, schedule, key=lambda r: r.key, fn=run_job, args=(str(out), images, eval_n),
                           workers=workers, valid=valid, describe=_describe, progress=progress, desc="bench fashion")
    workers, threads = split_cores(workers)
    floor = done[FLOOR.key]
    wall = wall_time(info, out / "fashion.json")
    result = {
        "benchmark": "fashion (issue 5: paper architectures and games)",
        "settings": {"quick": quick, "g_images": images, "eval_n": eval_n, "workers": workers,
                     "threads_per_worker": threads, "extractor": "fashion", "reference": "fashion_mnist train, 32x32 pad"},
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": available_cores(),
                    "torch": torch.__version__, "python": platform.python_version()},
        "wall_time_s": wall,
        "rows_wall_s_sum": round(sum(done[r.key]["wall_s"] for r in chosen), 1),
        "floor": floor,
        "rows": [done[r.key] for r in chosen],
    }
    (out / "fashion.json").write_text(json.dumps(result, indent=1, default=str))
    write_markdown(result, out / "fashion.md")
    return result
