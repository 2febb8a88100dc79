"""`ganforge bench fashion`: the paper architectures and games on Fashion-MNIST under one generator budget.

Every row trains one recipe for the same number of generator images (G steps x batch; the
class-conditional rows four times as many, their recipes' own 6,000 steps; the semi-supervised rows
ten times as many, 16 epochs of the authors' fully connected MNIST networks, which cost about a
fiftieth of a convolutional step per image: semi-supervised learning needs epochs), on several
seeds, then scores 10,000 samples of its (EMA) generator with the Fashion-MNIST domain
classifier (the `fashion` extractor, a ResNet-14): FD, IS, class coverage and KL to
uniform, precision/recall, and conditional accuracy for class-conditional models, absolute
and relative to the classifier's own accuracy on real test images. The first row is the
real test split against the train split (the floor every metric can reach). Rows with a
paper-specific claim add its evidence: the conditional rows' confusion matrices, InfoGAN's
code/class mutual information and traversal, the semi-supervised classifier against the same
network trained on the labels alone at three label counts, BEGAN's M_global against FD during
training and its gamma trade-off, SAGAN's attention map and BigGAN's truncation curve. Each
(row, seed) is one cell of runner.run_cells (worker processes dividing the cores; finished
cells kept in ``cells/`` and checked against the extractor's hash, so the table can be run in
parts across sessions).
"""

from __future__ import annotations

import functools
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch

from ..errors import RunInterrupted
from ..metrics.spec import metric_keys
from .runner import (
    backfill_records,
    check_choices,
    machine_label,
    machine_record,
    mean_se,
    run_cells,
    scored_by,
    spearman,
    split_cores,
    train_or_resume,
    wall_time,
    with_earlier,
)

DEFAULT_IMAGES = 96_000  # generator images per row: 1,500 steps of batch 64
QUICK_IMAGES = 3_200
DEFAULT_EVAL_N = 10_000
# Seeds per row, unless --seeds says otherwise: 3 for the rows whose papers' claims issue 17 tests (the conditional
# rows, SSGAN, BEGAN, SAGAN and SNGAN as its comparator), 1 for the rest, whose single-seed numbers were not in
# question and whose two extra seeds would add hours on a CPU without native bf16.
DEFAULT_SEEDS = 3
EXTRACTOR = "fashion"
CONFUSION_PER_CLASS = 500
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
    scale: int = 1  # generator images as a multiple of the bench's budget (conditional rows: their recipes' length)
    seeds: int = DEFAULT_SEEDS  # seeds when the bench is not told how many (issue 17's families at 3, the others at 1)


ROWS: list[Row] = [
    Row("dcgan", "dcgan-fashion", "DCGAN, non-saturating (Radford et al. 2015)", cost=1.0, seeds=1),
    Row("wgan-gp", "wgan-gp-fashion", "WGAN-GP, 5 critic steps (Gulrajani et al. 2017)", cost=8.2, seeds=1),
    Row("lsgan", "lsgan-fashion", "LSGAN (Mao et al. 2017)", cost=1.0, seeds=1),
    Row(
        "cgan",
        "cgan-fashion",
        "conditional GAN, label concatenated (Mirza & Osindero 2014)",
        cost=1.0,
        extras=("confusion",),
        scale=4,
    ),
    Row(
        "acgan",
        "acgan-fashion",
        "AC-GAN, auxiliary classifier (Odena et al. 2017)",
        cost=1.05,
        extras=("confusion",),
        scale=4,
    ),
    Row(
        "projection",
        "projection-fashion",
        "projection D, hinge, SN (Miyato & Koyama 2018)",
        cost=1.1,
        extras=("confusion",),
        scale=4,
    ),
    Row(
        "infogan",
        "infogan-fashion",
        "InfoGAN, 10-way + 2 continuous codes (Chen et al. 2016)",
        cost=1.3,
        extras=("infogan",),
        seeds=1,
    ),
    Row(
        "ssgan-100",
        "ssgan-fashion",
        "semi-supervised GAN, 100 labels, the authors' MNIST networks (Salimans et al. 2016)",
        ("game.args.labelled=100",),
        cost=0.4,
        extras=("ssgan",),
        scale=10,
    ),
    Row(
        "ssgan-1000",
        "ssgan-fashion",
        "semi-supervised GAN, 1,000 labels, the authors' MNIST networks (Salimans et al. 2016)",
        ("game.args.labelled=1000",),
        cost=0.4,
        extras=("ssgan",),
        scale=10,
    ),
    Row(
        "ssgan-4000",
        "ssgan-fashion",
        "semi-supervised GAN, 4,000 labels, the authors' MNIST networks (Salimans et al. 2016)",
        ("game.args.labelled=4000",),
        cost=0.4,
        extras=("ssgan",),
        scale=10,
    ),
    Row(
        "began-0.3",
        "began-fashion",
        "BEGAN, gamma 0.3 (Berthelot et al. 2017)",
        ("game.args.gamma=0.3",),
        cost=2.4,
        extras=("began",),
    ),
    Row(
        "began-0.5",
        "began-fashion",
        "BEGAN, gamma 0.5 (Berthelot et al. 2017)",
        ("game.args.gamma=0.5",),
        cost=2.4,
        extras=("began",),
    ),
    Row(
        "began-0.7",
        "began-fashion",
        "BEGAN, gamma 0.7 (Berthelot et al. 2017)",
        ("game.args.gamma=0.7",),
        cost=2.4,
        extras=("began",),
    ),
    Row("sngan", "sngan-fashion", "SNGAN ResNet, hinge, 5 critic steps (Miyato et al. 2018)", cost=7.6),
    Row(
        "sagan", "sagan-fashion", "SAGAN, attention at 16x16, TTUR (Zhang et al. 2018)", cost=3.5, extras=("attention",)
    ),
    # Issue 17's SAGAN ablations: which of its differences from the SNGAN row (attention; one D step per G step
    # where SNGAN takes five; TTUR; spectral norm in G) narrows its samples under this budget.
    Row(
        "sagan-no-attention",
        "sagan-fashion",
        "SAGAN without its attention blocks (ablation)",
        ("model.generator.args.attention=0", "model.discriminator.args.attention=0"),
        cost=3.0,
        seeds=1,
    ),
    Row(
        "sagan-5d",
        "sagan-fashion",
        "SAGAN with 5 D steps per G step, as the SNGAN row (ablation)",
        ("game.n_critic=5",),
        cost=12.0,
        extras=("attention",),
        seeds=1,
    ),
    # The two differences left once attention and n_critic were ruled out: TTUR's unequal learning rates and
    # spectral norm in G.
    Row(
        "sagan-equal-lr",
        "sagan-fashion",
        "SAGAN with SNGAN's equal learning rates, 2e-4 for G and D (ablation)",
        ("optim.g.lr=0.0002", "optim.d.lr=0.0002"),
        cost=3.5,
        extras=("attention",),
        seeds=1,
    ),
    Row(
        "sagan-sn-d",
        "sagan-fashion",
        "SAGAN with spectral norm in D only, as SNGAN (ablation)",
        ("model.spectral_norm=d",),
        cost=3.5,
        extras=("attention",),
        seeds=1,
    ),
    Row(
        "biggan",
        "biggan-fashion",
        "BigGAN blocks, conditional (Brock et al. 2019)",
        cost=4.7,
        extras=("truncation", "confusion"),
        scale=4,
    ),
]
ROW_KEYS = [r.key for r in ROWS]


METRICS = "fd,is,pr,coverage,cond_acc"  # cond_acc appears only for samples that carry labels
K = metric_keys(METRICS, EXTRACTOR)  # result keys by stem, as the metric specs name them: K["fd"] == "fd_fashion"
_EVALUATORS: dict[int, Any] = {}


@dataclass(frozen=True)
class Cell:
    """One run of the table: a row at one seed."""

    row: Row
    seed: int

    @property
    def key(self) -> str:
        return self.row.key if self.row.key == FLOOR.key else f"{self.row.key}__s{self.seed}"


@functools.lru_cache(maxsize=1)
def _extractor() -> Any:
    """The scoring classifier, loaded (and hash-checked) once per process."""
    from ..metrics.extractors import get_extractor

    return get_extractor(EXTRACTOR)


def extractor_record() -> dict[str, Any]:
    """The scoring classifier: name, weights sha256 and its test accuracy, as classifiers.json records them."""
    ext = _extractor()
    rec = ext.record
    return {
        "name": EXTRACTOR,
        "sha256": ext.weights_sha256,
        "architecture": rec.get("architecture"),
        "test_accuracy": rec.get("test_accuracy"),
        "eval_fit": rec.get("split", {}).get("eval_fit"),
        **{k: v for k, v in rec.items() if k.startswith("test_accuracy_")},
    }


def _evaluator(n: int) -> Any:
    """One evaluator per worker process: the 60k-image reference pass is paid once, not once per row."""
    if n not in _EVALUATORS:
        from ..data import load_dataset
        from ..metrics.evaluate import Evaluator

        train = load_dataset("fashion_mnist", image_size=32, fit="pad")
        _EVALUATORS[n] = Evaluator(train, METRICS, extractor=EXTRACTOR, n=n, seed=0)
    return _EVALUATORS[n]


def _copy(src: Path, dst: Path) -> str | None:
    if not src.is_file():
        return None
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst.name


CHECKPOINTS = 20  # per cell: a kill (a session's end) loses at most a twentieth of a 2-hour SNGAN cell
BEGAN_EVALS = 12  # in-training FD evaluations of a BEGAN run, for M_global against FD
BEGAN_EVAL_N = 2000


def row_recipe(row: Row, images: int, threads: int, seed: int = 0) -> Any:
    """The row's recipe at `images` x row.scale generator images and `seed`: one sample grid, a checkpoint kept."""
    from ..config import load_recipe

    overrides = [*row.overrides, f"seed={seed}", "train.progress=false", f"train.threads={threads}", "eval.every=0"]
    own = load_recipe(row.recipe, overrides).train  # the recipe's batch size and log cadence
    steps = max(1, images * row.scale // own.batch_size)
    more = [
        f"train.steps={steps}",
        f"train.log_every={max(1, min(own.log_every, steps // 30 or 1))}",
        f"train.sample_every={steps}",
        f"train.checkpoint_every={max(1, steps // CHECKPOINTS)}",
        "train.keep_checkpoints=1",
    ]
    if "began" in row.extras:  # FD during training, to set against M_global
        more += [
            f"eval.every={max(1, steps // BEGAN_EVALS)}",
            f"eval.n={BEGAN_EVAL_N}",
            "eval.metrics=[fd]",
            f"eval.extractor={EXTRACTOR}",
        ]
    return load_recipe(row.recipe, overrides + more)


FLOOR = Row("_floor", "", "real test split vs train split (the floor)")  # a pool job whose record is cells/_floor.json


def run_job(
    cell: Cell, out_dir: str, images: int, eval_n: int, deadline: float | None = None, threads: int = 1
) -> dict[str, Any]:
    """One job of the pool: a (row, seed) cell, or the real floor, its record stamped with `eval_n` and the extractor.

    A cell still training at `deadline` (a time.time()) checkpoints and raises RunInterrupted(TIME_LIMIT)."""
    # The machine goes in every cell: a table run in parts across sessions may mix CPUs, and its speed columns
    # (and the precision `auto` picked) are only comparable within one.
    stamp = {"eval_n": eval_n, "extractor_sha256": extractor_record()["sha256"], "machine": machine_record()}
    if cell.row.key == FLOOR.key:  # in the pool process's own torch threads, as when it was submitted on its own
        return {**real_floor(eval_n), **stamp}
    return {**run_row(cell, out_dir, images, eval_n, threads, deadline), **stamp}


def _run_precision(run_dir: Path) -> str | None:
    """The precision the trainer resolved (`auto` becomes fp32 or bf16 by the CPU's capability), from run.json."""
    try:
        return json.loads((run_dir / "run.json").read_text()).get("precision")
    except (OSError, ValueError):
        return None


def _describe(rec: dict[str, Any]) -> str:
    fd = rec.get("metrics", {}).get(K["fd"])
    return f"FD {fd:.1f}" if fd is not None else str(rec.get("status", "floor"))


def same_recipe(a: Any, b: Any) -> bool:
    """True when two recipes train the same thing: equal but for threads, progress bar, checkpoint cadence, hardware.

    A run folder stores `auto` precision / layout resolved for its machine; the resumed run keeps those, and
    the cell records its precision.
    """
    import dataclasses

    def plain(r: Any) -> dict[str, Any]:
        d = dataclasses.asdict(r)
        # The checkpoint cadence changes when a run can resume, not what it trains.
        for k in (
            "threads",
            "progress",
            "precision",
            "channels_last",
            "compile",
            "checkpoint_every",
            "keep_checkpoints",
        ):
            d["train"].pop(k, None)
        return json.loads(json.dumps(d, default=str))  # tuples and lists alike

    return plain(a) == plain(b)


def run_row(
    cell: Cell, out_dir: str, images: int, eval_n: int, threads: int = 1, deadline: float | None = None
) -> dict[str, Any]:
    """Train and score one cell (runs in a worker process); training stops at `deadline` (see run_job)."""
    torch.set_num_threads(threads)
    row, key = cell.row, cell.key
    out = Path(out_dir)
    plots = out / "plots"
    recipe = row_recipe(row, images, threads, cell.seed)
    t = recipe.train
    steps = t.steps
    run_dir = out / "runs" / key
    # A cell cut short (a session's end, a signal) continues from its last checkpoint, its training time adding
    # up, when its run folder was made by the same recipe; otherwise it starts again. Long cells (BigGAN on a
    # CPU) then run in parts across sessions.
    trainer = train_or_resume(recipe, run_dir, lambda t: same_recipe(t.recipe, recipe))
    trainer.deadline = deadline
    status, error = "finished", None
    t0 = time.perf_counter()
    try:
        trainer.run()
    except RunInterrupted:  # a signal stops the benchmark; it is not this cell's result
        raise
    except Exception as e:  # a diverging recipe is a result, not a crash of the benchmark
        status, error = "failed", f"{type(e).__name__}: {e}"
    wall = time.perf_counter() - t0
    result = trainer.result
    train_s = result.wall_time_s or wall
    assert result.generator is not None  # these recipes train noise generators
    G = result.generator.eval()
    rec: dict[str, Any] = {
        "row": row.key,
        "seed": cell.seed,
        "recipe": row.recipe,
        "what": row.what,
        "overrides": list(row.overrides),
        "status": status,
        "error": error,
        "steps": steps,
        "batch_size": t.batch_size,
        "g_images": steps * t.batch_size,
        "real_images": steps * trainer.game.real_per_step(t.batch_size),
        "wall_s": round(wall, 1),
        "train_s": round(train_s, 1),
        "g_images_per_s": round(steps * t.batch_size / max(train_s, 1e-9), 1),
        "ema": result.ema,
        "conditional": bool(result.latent.num_classes),
        "precision": _run_precision(run_dir),
    }
    rec["samples"] = _copy(
        run_dir / "samples" / ("final_ema.png" if result.ema else "final.png"), plots / f"{key}_samples.png"
    )
    if status != "finished":
        return rec
    t1 = time.perf_counter()
    ev = _evaluator(eval_n)
    res = ev.evaluate_generator(G, result.latent, source=f"{key} generator after {steps} steps")
    rec["metrics"] = res["metrics"]
    extras: dict[str, Any] = {}
    if "confusion" in row.extras:
        extras["confusion"] = _confusion(G, result.latent, plots, key)
    if "infogan" in row.extras:
        extras["infogan"] = _infogan_extras(G, result.latent, plots, key)
    if "ssgan" in row.extras:
        extras["ssgan"] = _ssgan_extras(trainer, result, recipe)
    if "began" in row.extras:
        extras["began"] = {**_began_extras(run_dir, plots, key), "classes": began_classes(run_dir, eval_n)}
    if "attention" in row.extras:
        from ..figures.attention import attention_map_figure

        lat = result.latent.sample(1, torch.Generator().manual_seed(3))
        attention_map_figure(G, lat.z, lat.y, None, plots / f"{key}_attention.png")
        extras["attention"] = f"{key}_attention.png"
    if "truncation" in row.extras:
        extras["truncation"] = _truncation_curve(G, result.latent, ev, plots, key)
    rec["extras"] = extras
    rec["eval_s"] = round(time.perf_counter() - t1, 1)
    return rec


def _confusion(G: Any, latent: Any, plots: Path, key: str) -> dict[str, Any]:
    """Asked class against the classifier's verdict for CONFUSION_PER_CLASS samples of every class (fixed seed)."""
    from ..generation import generate

    ext = _extractor()
    k = latent.num_classes
    y = torch.arange(k).repeat_interleave(CONFUSION_PER_CLASS)
    lat = latent.sample(len(y), torch.Generator().manual_seed(7), y=y)
    pred = ext.extract(generate(G, lat.z, lat.y))["logits"].argmax(1)
    m = torch.zeros(k, k, dtype=torch.long)
    m.index_put_((y, pred), torch.ones_like(y), accumulate=True)
    _plot_confusion(m, plots / f"{key}_confusion.png", key)
    per_class = (m.diag().float() / m.sum(1).float()).tolist()
    return {
        "matrix": m.tolist(),
        "per_class": per_class,
        "accuracy": float(m.diag().sum() / m.sum()),
        "plot": f"{key}_confusion.png",
    }


def _plot_confusion(m: torch.Tensor, path: Path, title: str) -> Path:
    from ..data.images import FASHION_MNIST_CLASSES
    from ..plots import new_figure, save_figure

    frac = (m.float() / m.sum(1, keepdim=True).clamp(min=1)).numpy()
    fig = new_figure(6.2, 5.4)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(frac, vmin=0, vmax=1, cmap="Blues")
    names = FASHION_MNIST_CLASSES if m.shape[0] == 10 else [str(i) for i in range(m.shape[0])]
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("classifier's class of the sample")
    ax.set_ylabel("class asked of G")
    for i in range(frac.shape[0]):
        for j in range(frac.shape[1]):
            if frac[i, j] >= 0.05:
                ax.text(
                    j,
                    i,
                    f"{frac[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color="white" if frac[i, j] > 0.6 else "black",
                )
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(f"{title}: conditional accuracy per class")
    fig.tight_layout()
    return save_figure(fig, path)


def _infogan_extras(G: Any, latent: Any, plots: Path, key: str) -> dict[str, Any]:
    from ..figures.infogan import latent_traversal_figure
    from ..metrics.mutual_information import infogan_code_report

    ext = _extractor()
    rep = infogan_code_report(G, latent, lambda im: ext.extract(im)["logits"].argmax(1), n_per_value=1000)
    for i in range(latent.continuous):
        latent_traversal_figure(G, latent, plots / f"{key}_traversal_c{i + 1}.png", continuous_index=i)
    return {k: rep[k] for k in ("mi_bits", "max_bits", "accuracy_after_mapping", "mapping", "confusion")}


def _ssgan_extras(trainer: Any, result: Any, recipe: Any) -> dict[str, Any]:
    from ..data import load_dataset
    from ..models import build_discriminator
    from .semisup import test_accuracy, train_supervised_baseline

    test = load_dataset("fashion_mnist", image_size=32, fit="pad", split="test")
    game = trainer.game
    # The averaged D is the classifier the authors test; the last weights' accuracy is kept beside it.
    gan_acc = test_accuracy(game.averaged_discriminator(trainer.D), test)
    last_acc = test_accuracy(trainer.D, test)
    lab = result.labelled
    x_l, y_l = lab.get(torch.arange(len(lab)))
    d_updates = int(result.d_updates)
    shape = tuple(result.shape)
    args = dict(recipe.model.discriminator.args)
    od = recipe.optim.d

    def make_d() -> Any:
        return build_discriminator(recipe.model.discriminator.name, shape, args)

    # The same network, initialisation, optimiser, lr schedule and number of updates, on the labels alone.
    t0 = time.perf_counter()
    decay = od.decay_start if od.schedule == "linear" else None
    decay = decay / d_updates if isinstance(decay, int) and decay else decay
    base = train_supervised_baseline(
        make_d,
        x_l,
        y_l,
        steps=d_updates,
        batch=min(recipe.train.batch_size, len(lab)),
        lr=od.lr,
        seed=recipe.seed,
        betas=tuple(od.betas),
        decay_start=decay or None,
        average=game.average or None,
    )
    base_acc = test_accuracy(base, test)
    return {
        "labelled": len(lab),
        "gan_test_acc": gan_acc,
        "gan_last_weights_test_acc": last_acc,
        "baseline_test_acc": base_acc,
        "averaged": game.average,
        "margin": gan_acc - base_acc,
        "baseline_steps": int(cast(Any, base).baseline_steps),  # set by train_supervised_baseline
        "baseline_s": round(time.perf_counter() - t0, 1),
        "test_n": len(test),
    }


def _began_extras(run_dir: Path, plots: Path, key: str) -> dict[str, Any]:
    from ..figures.began import plot_convergence, plot_convergence_against_fd

    recs = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
    fd_key = f"eval/{K['fd']}"
    plot_convergence([r for r in recs if "m_global" in r], plots / f"{key}_convergence.png")
    plot_convergence_against_fd(recs, plots / f"{key}_mglobal_fd.png", fd_key, title=f"{key}: M_global and FD")
    ms = [r for r in recs if "m_global" in r]
    tenth = max(1, len(ms) // 10)
    fds = [(r["step"], r[fd_key]) for r in recs if fd_key in r]
    # M_global around each evaluation (the mean of the logged values since the previous one) against that FD.
    pairs, prev = [], 0
    for step, fd in fds:
        window = [r["m_global"] for r in ms if prev < r["step"] <= step]
        if window:
            pairs.append((step, sum(window) / len(window), fd))
        prev = step
    return {
        "m_global_first": sum(r["m_global"] for r in ms[:tenth]) / tenth,
        "m_global_last": sum(r["m_global"] for r in ms[-tenth:]) / tenth,
        "k_last": ms[-1]["k"],
        "k_max": max(r["k"] for r in ms),
        "curve": [(r["step"], r["m_global"], r["k"]) for r in ms],
        "fd_curve": fds,
        "m_global_at_evals": pairs,
        "spearman_m_global_fd": spearman([p[1] for p in pairs], [p[2] for p in pairs]),
        "plot": f"{key}_convergence.png",
        "plot_fd": f"{key}_mglobal_fd.png",
    }


def began_classes(run_dir: Path, n: int, nets: tuple[Any, Any, int] | None = None) -> dict[str, Any]:
    """The final D's reconstruction error of `n` real test images per class against the classes of `n` samples (see
    benchmarks.began_classes): does BEGAN meet its equilibrium by dropping classes or by simplifying every sample?"""
    from ..data import load_dataset
    from ..data.images import FASHION_MNIST_CLASSES
    from ..generation import sample
    from .began_classes import PROFILE_SEED, class_profile, load_began_nets

    D, G, _ = nets or load_began_nets(run_dir)
    test = load_dataset("fashion_mnist", image_size=32, fit="pad", split="test")
    idx = torch.randperm(len(test), generator=torch.Generator().manual_seed(PROFILE_SEED))[: min(n, len(test))]
    x, y = test.get(idx.sort().values)
    assert y is not None  # Fashion-MNIST's test split is labelled
    ext = _extractor()
    return class_profile(
        D,
        sample(G, n, seed=PROFILE_SEED),
        x.float(),
        y,
        lambda im: ext.extract(im)["logits"].argmax(1),
        FASHION_MNIST_CLASSES,
    )


def backfill_began_classes(out: Path, done: dict[str, dict[str, Any]], eval_n: int) -> None:
    """Add the class profile to BEGAN cells scored before it existed, from their kept run folders; a cell whose run
    was trained further since is left as it is."""
    from .began_classes import load_began_nets

    def compute(key: str, rec: dict[str, Any]) -> dict[str, Any] | None:
        nets = load_began_nets(out / "runs" / key)
        if nets[2] != rec.get("steps"):
            return None
        began = {**rec["extras"]["began"], "classes": began_classes(out / "runs" / key, eval_n, nets)}
        return {**rec, "extras": {**rec["extras"], "began": began}}

    def needs(rec: dict[str, Any]) -> bool:
        b = rec.get("extras", {}).get("began")
        return b is not None and "classes" not in b and rec.get("status") == "finished"

    backfill_records(out, done, needs, compute)


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
    return {
        "row": "real",
        "what": "real test split vs train split (the floor)",
        "metrics": res["metrics"],
        "protocol": res["protocol"],
    }


# ---------------------------------------------------------------------------- table

STEMS = ("fd", "is", "coverage", "kl_uniform", "precision", "recall", "cond_acc")


def _f(v: Any, fmt: str = "{:.2f}") -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else fmt.format(v)


def _ms(s: dict[str, Any] | None, fmt: str = "{:.2f}", scale: float = 1.0) -> str:
    """'mean ± se' (just the mean for one seed, '—' for none); a sign flag in fmt applies to the mean only."""
    if not s or s.get("mean") is None:
        return "—"
    text = fmt.format(s["mean"] * scale)
    return text + (f" ± {fmt.replace('+', '').format(s['se'] * scale)}" if s["n"] > 1 else "")


def _cond_cell(s: dict[str, Any]) -> str:
    """A row's conditional accuracy, absolute and relative to the classifier's, or '—' for an unconditional row."""
    if not s["cond_acc"]["n"]:
        return "—"
    # One decimal on the relative figure too: the bar is 95% of the classifier's, and 94.9% must not print as 95%.
    return f"{_ms(s['cond_acc'], '{:.1f}', 100)}% ({_ms(s.get('cond_acc_rel'), '{:.1f}', 100)}%)"


def summarise(cells: list[dict[str, Any]], floor: dict[str, Any]) -> dict[str, Any]:
    """Per row: mean ± standard error over its finished seeds of every column and of the paper-specific evidence."""
    clf_acc = floor["metrics"].get(K["cond_acc"])
    out: dict[str, Any] = {}
    for row in ROWS:
        mine = [c for c in cells if c["row"] == row.key]
        ok = [c for c in mine if c.get("metrics")]
        if not mine:
            continue
        s: dict[str, Any] = {
            "seeds": len(ok),
            "failed": len(mine) - len(ok),
            "steps": mine[0]["steps"],
            "g_images": mine[0]["g_images"],
            "what": row.what,
            "recipe": row.recipe,
            "overrides": list(row.overrides),
        }
        for stem in STEMS:
            s[stem] = mean_se([c["metrics"].get(K[stem]) for c in ok])
        if clf_acc and s["cond_acc"]["n"]:
            s["cond_acc_rel"] = mean_se([c["metrics"][K["cond_acc"]] / clf_acc for c in ok])
        s["machines"] = sorted({machine_label(c.get("machine")) for c in ok})
        s["g_images_per_s"] = mean_se([c["g_images_per_s"] for c in ok])
        s["train_s"] = mean_se([c["train_s"] for c in ok])
        ex = [c.get("extras", {}) for c in ok]
        if any("ssgan" in e for e in ex):
            s["ssgan"] = {
                k: mean_se([e["ssgan"][k] for e in ex if "ssgan" in e])
                for k in ("gan_test_acc", "baseline_test_acc", "margin")
            }
            s["ssgan"]["labelled"] = next(e["ssgan"]["labelled"] for e in ex if "ssgan" in e)
        if any("began" in e for e in ex):
            s["began"] = {
                k: mean_se([e["began"][k] for e in ex if "began" in e and e["began"].get(k) is not None])
                for k in ("m_global_first", "m_global_last", "k_last", "k_max", "spearman_m_global_fd")
            }
        if any("infogan" in e for e in ex):
            s["infogan"] = {
                k: mean_se([e["infogan"][k] for e in ex if "infogan" in e])
                for k in ("mi_bits", "accuracy_after_mapping")
            }
        if any("confusion" in e for e in ex):
            per = [e["confusion"]["per_class"] for e in ex if "confusion" in e]
            s["confusion_per_class"] = [mean_se([p[i] for p in per]) for i in range(len(per[0]))]
        out[row.key] = s
    return out


def write_markdown(result: dict[str, Any], path: Path) -> None:
    """The results table and the per-paper evidence as Markdown."""
    st, summ, ext = result["settings"], result["summary"], result["extractor"]
    fl = result["floor"]["metrics"]
    clf_acc = fl.get(K["cond_acc"])
    lines = [
        "# Fashion-MNIST: paper architectures and games under one budget",
        "",
        f"{st['g_images']:,} generator images per row (G steps x batch), four times that for the class-conditional "
        f"rows (their recipes' 6,000 steps) and ten times for the semi-supervised rows (16 epochs of fully connected "
        f"networks); {st['eval_n']:,} samples scored per run with the `{ext['name']}` "
        f"domain classifier ({ext.get('architecture', '').split(':')[0]}, sha256 `{ext['sha256'][:12]}…`): its "
        f"features for FD / precision / recall, its softmax for IS, its argmax for coverage and conditional accuracy. "
        f"The classifier's accuracy on the real test images, padded to 32x32 as the GANs see them, is "
        f"**{_f(clf_acc, '{:.1%}')}**; *rel.* is a row's conditional accuracy divided by it. EMA generator where the "
        f"recipe keeps one. Mean ± standard error over the seeds that finished (the `seeds` column); the default "
        f"command runs {DEFAULT_SEEDS_TEXT}. {_cores_text(result['cells'])}; the cells' training time adds up to "
        f"{result['train_s_sum'] / 3600:.1f} h.",
        "",
        "| row | seeds | FD ↓ | IS ↑ | classes / KL ↓ | precision | recall | cond. acc (rel.) | G img/s | train min |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| real test vs train (floor) | — | {_f(fl[K['fd']])} | {_f(fl[K['is']])} | "
        f"{fl[K['coverage']] * 10:.0f}/10 / {fl[K['kl_uniform']]:.3f} | {fl[K['precision']]:.2f} | "
        f"{fl[K['recall']]:.2f} | {_f(clf_acc, '{:.1%}')} (the classifier) | — | — |",
    ]
    for key, s in summ.items():
        if not s["seeds"]:
            lines.append(f"| {key} | 0 ({s['failed']} failed) | | | | | | | | |")
            continue
        cond = _cond_cell(s)
        seeds = f"{s['seeds']}" + (f" ({s['failed']} failed)" if s["failed"] else "")
        lines.append(
            f"| {key} | {seeds} | "
            f"{_ms(s['fd'])} | {_ms(s['is'])} | {_ms(s['coverage'], '{:.1f}', 10)}/10 / {_ms(s['kl_uniform'], '{:.3f}')} | "
            f"{_ms(s['precision'])} | {_ms(s['recall'])} | {cond} | {s['g_images_per_s']['mean']:.0f} | "
            f"{s['train_s']['mean'] / 60:.1f} |"
        )
    lines += [
        "",
        "Rows: "
        + "; ".join(
            f"**{k}** {s['what']} (`{s['recipe']}`"
            + (f", {' '.join(s['overrides'])}" if s["overrides"] else "")
            + f", {s['steps']:,} steps)"
            for k, s in summ.items()
        )
        + ".",
    ]
    lines += _machines_note(summ)
    if result.get("missing"):
        lines += ["", f"**Not run yet** (the bench continues where it stopped): {', '.join(result['missing'])}."]
    _conditional_section(lines, summ)
    _evidence_sections(lines, result, summ)
    path.write_text("\n".join(lines) + "\n")


DEFAULT_SEEDS_TEXT = (
    "3 seeds for the rows whose papers' claims are tested here (conditional, semi-supervised, BEGAN, SAGAN and SNGAN), "
    "1 for the others"
)


def _cores_text(cells: list[dict[str, Any]]) -> str:
    """The CPU cores the cells' processes could use, from their own records (the table gathers several calls')."""
    cores = sorted({c.get("machine", {}).get("cpus") for c in cells} - {None})
    if not cores:
        return "CPU cores available to a cell: not recorded"
    return f"CPU cores available to a cell: {' or '.join(map(str, cores))}"


def _machines_note(summ: dict[str, Any]) -> list[str]:
    """Which machine trained which rows, when the cells come from more than one: their speeds are not comparable."""
    by: dict[str, list[str]] = {}
    for key, s in summ.items():
        for m in s.get("machines", []):
            by.setdefault(m, []).append(key)
    if len(by) < 2:
        return ["", f"All cells ran on one machine: {next(iter(by))}."] if by else []
    return [
        "",
        "**The cells ran on more than one machine**, so G img/s and train time compare only within one "
        "(on a CPU without native bf16, precision `auto` trains in fp32, several times slower): "
        + "; ".join(f"{m}: {', '.join(rows)}" for m, rows in by.items())
        + ".",
    ]


def _conditional_section(lines: list[str], summ: dict[str, Any]) -> None:
    from ..data.images import FASHION_MNIST_CLASSES

    conds = [(k, s) for k, s in summ.items() if s.get("confusion_per_class")]
    if not conds:
        return
    lines += [
        "",
        "## Conditional rows: accuracy per class",
        "",
        "Fraction of samples asked for a class that the classifier puts in it (500 per class per seed; "
        "confusion matrices in `plots/ROW__s0_confusion.png`).",
        "",
        "| class | " + " | ".join(k for k, _ in conds) + " |",
        "|---|" + "---|" * len(conds),
    ]
    for i, name in enumerate(FASHION_MNIST_CLASSES):
        lines.append(
            f"| {name} | " + " | ".join(_ms(s["confusion_per_class"][i], "{:.0f}", 100) + "%" for _, s in conds) + " |"
        )


def _evidence_sections(lines: list[str], result: dict[str, Any], summ: dict[str, Any]) -> None:
    by = {(c["row"], c.get("seed", 0)): c for c in result["cells"]}
    info = summ.get("infogan", {}).get("infogan")
    if info:
        first = by.get(("infogan", 0), {}).get("extras", {}).get("infogan", {})
        lines += [
            "",
            "## InfoGAN: what the categorical code carries",
            "",
            f"Mutual information between the 10-way code and the classifier's predicted class of the samples: "
            f"**{_ms(info['mi_bits'])} bits** of log2(10) = 3.32; mapping each code value to its majority class, "
            f"{_ms(info['accuracy_after_mapping'], '{:.1f}', 100)}% of samples land in the mapped class."
            + (f" Seed 0's mapping: {first['mapping']}." if first.get("mapping") else ""),
        ]
    ss = [(k, s["ssgan"]) for k, s in summ.items() if "ssgan" in s]
    if ss:
        lines += [
            "",
            "## Semi-supervised GAN: test accuracy of D's classifier (10,000 test images)",
            "",
            "| labels | semi-supervised GAN | same network on the labels alone | margin |",
            "|---|---|---|---|",
        ]
        for _, e in sorted(ss, key=lambda t: t[1]["labelled"]):
            lines.append(
                f"| {e['labelled']:,} | {_ms(e['gan_test_acc'], '{:.1f}', 100)}% | "
                f"{_ms(e['baseline_test_acc'], '{:.1f}', 100)}% | {_ms(e['margin'], '{:+.1f}', 100)} points |"
            )
        if result.get("plots", {}).get("ssgan"):
            lines += ["", f"![SSGAN accuracy against labels](plots/{result['plots']['ssgan']})"]
    bg = [(k, s) for k, s in summ.items() if "began" in s]
    if bg:
        lines += [
            "",
            "## BEGAN: gamma's trade-off and the convergence measure",
            "",
            "Lower gamma asks D to reconstruct fakes better relative to reals: sharper, less diverse samples "
            "(Berthelot et al. 2017, Sec. 3.3). Spearman is the rank correlation of M_global (averaged between "
            "evaluations) with FD at the 12 in-training evaluations (2,000 samples each): near +1 when M_global "
            "falls as FD falls.",
            "",
            "| gamma | FD | precision (quality) | recall (diversity) | classes | M_global first → last tenth | "
            "k_t end (max) | Spearman(M_global, FD) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for k, s in bg:
            b = s["began"]
            lines.append(
                f"| {k.split('-')[1]} | {_ms(s['fd'])} | {_ms(s['precision'])} | {_ms(s['recall'])} | "
                f"{_ms(s['coverage'], '{:.1f}', 10)}/10 | {_ms(b['m_global_first'], '{:.3f}')} → "
                f"{_ms(b['m_global_last'], '{:.3f}')} | {_ms(b['k_last'], '{:.3f}')} ({_ms(b['k_max'], '{:.3f}')}) | "
                f"{_ms(b['spearman_m_global_fd'])} |"
            )
        for name in ("began", "began_mglobal"):
            if result.get("plots", {}).get(name):
                lines += ["", f"![{name}](plots/{result['plots'][name]})"]
        _began_classes_section(lines, result)
    tr = by.get(("biggan", 0), {}).get("extras", {}).get("truncation")
    if tr:
        lines += [
            "",
            "## BigGAN: the truncation trick (seed 0)",
            "",
            "| threshold | FD | IS | precision | recall | cond. acc |",
            "|---|---|---|---|---|---|",
        ]
        for p in tr["points"]:
            lines.append(
                f"| {p['truncation'] if p['truncation'] is not None else 'none'} | {p[K['fd']]:.2f} | "
                f"{p[K['is']]:.2f} | {p[K['precision']]:.2f} | {p[K['recall']]:.2f} | "
                f"{_f(p.get(K['cond_acc']), '{:.1%}')} |"
            )


def _began_classes_section(lines: list[str], result: dict[str, Any]) -> None:
    profiles = _began_profiles(result)
    if not profiles:
        return
    first = next(iter(profiles.values()))
    lines += [
        "",
        "### Which classes BEGAN keeps (seed 0)",
        "",
        "Each run's final D reconstructs real test images and its own samples (mean L1 per pixel, as its loss); "
        "the classifier assigns each sample a class. At equilibrium the samples' error is gamma times the real "
        "images' (Eq. 3): *error ratio*. *Real as easy* is the share of real images whose error is at most the "
        "samples' mean: the part of the data that meets the equilibrium as it is.",
        "",
        "| gamma | error ratio | real as easy | Spearman(real error, share) |",
        "|---|---|---|---|",
    ]
    by_gamma = dict(sorted(profiles.items(), key=lambda kv: float(kv[0].split()[-1])))
    for label, p in by_gamma.items():
        lines.append(
            f"| {label.split()[-1]} | {p['error_ratio']:.2f} | {p['real_as_easy']:.1%} | {_f(p['spearman_error_share'])} |"
        )
    lines += [
        "",
        "| class | real error ("
        + next(iter(profiles))
        + ") | "
        + " | ".join(f"share of samples, {lbl}" for lbl in by_gamma)
        + " |",
        "|---|---|" + "---|" * len(profiles),
    ]
    for i, name in enumerate(first["classes"]):
        lines.append(
            f"| {name} | {_f(first['real_error'][i], '{:.3f}')} | "
            + " | ".join(f"{p['sample_share'][i]:.1%}" for p in by_gamma.values())
            + " |"
        )
    if result.get("plots", {}).get("began_classes"):
        lines += ["", f"![began_classes](plots/{result['plots']['began_classes']})"]


def _summary_plots(result: dict[str, Any], plots: Path) -> dict[str, str]:
    """The SSGAN accuracy-against-labels plot, BEGAN's gamma trade-off and its seed-0 M_global/FD panels."""
    from ..plots import new_figure, save_figure

    summ, made = result["summary"], {}
    ss = sorted((s["ssgan"] for s in summ.values() if "ssgan" in s), key=lambda e: e["labelled"])
    if ss:
        fig = new_figure(5.6, 3.8)
        ax = fig.add_subplot(1, 1, 1)
        xs = [e["labelled"] for e in ss]
        for k, label, style in (
            ("gan_test_acc", "semi-supervised GAN", "o-"),
            ("baseline_test_acc", "same network, labels alone", "s--"),
        ):
            ax.errorbar(
                xs,
                [e[k]["mean"] * 100 for e in ss],
                yerr=[e[k]["se"] * 100 for e in ss],
                fmt=style,
                capsize=3,
                label=label,
            )
        ax.set_xscale("log")
        ax.set_xlabel("labelled training images")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_title("Semi-supervised GAN on Fashion-MNIST (mean ± s.e. over seeds)")
        fig.tight_layout()
        made["ssgan"] = save_figure(fig, plots / "ssgan_labels.png").name
    bg = sorted((float(k.split("-")[1]), s) for k, s in summ.items() if "began" in s and s["seeds"])
    if bg:
        fig = new_figure(9.0, 3.4)
        ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        g = [x for x, _ in bg]
        ax1.errorbar(g, [s["fd"]["mean"] for _, s in bg], yerr=[s["fd"]["se"] for _, s in bg], fmt="o-", capsize=3)
        ax1.set_xlabel("gamma")
        ax1.set_ylabel("FD-fashion (lower is better)")
        for k, label, style in (("precision", "precision (quality)", "o-"), ("recall", "recall (diversity)", "s-")):
            ax2.errorbar(
                g, [s[k]["mean"] for _, s in bg], yerr=[s[k]["se"] for _, s in bg], fmt=style, capsize=3, label=label
            )
        ax2.set_xlabel("gamma")
        ax2.legend()
        for ax in (ax1, ax2):
            ax.grid(alpha=0.3)
        fig.suptitle("BEGAN: gamma trades quality for diversity")
        fig.tight_layout()
        made["began"] = save_figure(fig, plots / "began_gamma.png").name
    if (plots / "began-0.5__s0_mglobal_fd.png").is_file():
        made["began_mglobal"] = "began-0.5__s0_mglobal_fd.png"
    profiles = _began_profiles(result)
    if profiles:
        from .began_classes import plot_class_profiles

        made["began_classes"] = plot_class_profiles(profiles, plots / "began_classes.png").name
    return made


def _began_profiles(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{"gamma G": seed 0's class profile} for the BEGAN rows that have one, by increasing gamma (0.5 first if run:
    its D's real errors are the plot's bars)."""
    found = {
        c["row"].split("-")[1]: c["extras"]["began"]["classes"]
        for c in result["cells"]
        if c.get("seed", 0) == 0 and "classes" in c.get("extras", {}).get("began", {})
    }
    order = sorted(found, key=lambda g: (g != "0.5", float(g)))
    return {f"gamma {g}": found[g] for g in order}


# ---------------------------------------------------------------------------- driver


def schedule_cells(rows: list[Row], seeds: int | None = None, quick: bool = False) -> list[Cell]:
    """The floor, then seed by seed, costliest rows first within a seed; `seeds` (else each row's own) per row.

    The floor comes first so that every partial table has it; seed-major order means a run cut short has whole
    seeds done, and keeps both workers busy until the end.
    """

    def n(r: Row) -> int:
        return seeds or (1 if quick else r.seeds)

    return [Cell(FLOOR, 0)] + [
        Cell(r, s)
        for s in range(max(map(n, rows), default=0))
        for r in sorted(rows, key=lambda r: -r.cost * r.scale)
        if s < n(r)
    ]


def table_cells(out: Path, schedule: list[Cell], quick: bool) -> tuple[list[Cell], list[Cell]]:
    """(the cells the table expects, the cells it may show): each row's own seeds and this call's `schedule`, plus
    any other seed already in out/cells, so that a call for fewer seeds (`--recipes cgan --seeds 1`) does not drop
    the other rows' further seeds from the table, and a call for more (`--recipes ssgan-100 --seeds 3`) does not
    list the other rows' seeds 1-2 as not run yet."""
    expected = list({c.key: c for c in schedule_cells(ROWS, None, quick) + schedule}.values())
    by_key = {r.key: r for r in ROWS}
    extra = []
    for f in sorted((out / "cells").glob("*__s*.json")):
        row, _, seed = f.stem.rpartition("__s")
        if row in by_key and seed.isdigit():
            extra.append(Cell(by_key[row], int(seed)))
    every = list({c.key: c for c in expected + extra}.values())
    return expected, every


def run_fashion_bench(
    out: str | Path,
    quick: bool = False,
    rows: list[str] | None = None,
    images: int | None = None,
    eval_n: int | None = None,
    workers: int | None = None,
    progress: bool = True,
    seeds: int | None = None,
    minutes: float | None = None,
) -> dict[str, Any]:
    """Run every (row, seed) cell not done yet (resumable), then write fashion.json, fashion.md and the pictures.

    With `minutes`, training stops at that time limit: the cell under way checkpoints, none starts after it, and
    RunInterrupted(TIME_LIMIT) is raised (the same call again continues); a cell being scored finishes first.
    """
    from ..data import load_dataset
    from ..errors import ConfigError

    check_choices(rows, ROW_KEYS, "row", "fashion")
    if seeds is not None and seeds < 1:
        raise ConfigError(f"bench fashion needs at least one seed, got {seeds}")
    if minutes is not None and not minutes > 0:
        raise ConfigError(f"bench fashion --minutes must be a positive number of minutes, got {minutes}")
    deadline = time.time() + minutes * 60 if minutes is not None else None
    load_dataset("fashion_mnist", image_size=32, fit="pad")  # fail early, with the loader's advice, if it is missing
    chosen = [r for r in ROWS if not rows or r.key in rows]
    images = images or (QUICK_IMAGES if quick else DEFAULT_IMAGES)
    eval_n = eval_n or (1000 if quick else DEFAULT_EVAL_N)
    out = Path(out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    ext = extractor_record()
    schedule = schedule_cells(chosen, seeds, quick)

    def valid(cell: Cell, rec: dict[str, Any]) -> bool:  # same samples, extractor, length and seed
        if rec.get("eval_n") != eval_n or not scored_by(rec, EXTRACTOR):
            return False
        if cell.row.key == FLOOR.key:
            return True
        batch = rec.get("batch_size", 64)
        return rec.get("seed") == cell.seed and rec.get("g_images") == (images * cell.row.scale // batch) * batch

    done, info = run_cells(
        out,
        schedule,
        key=lambda c: c.key,
        fn=run_job,
        args=(str(out), images, eval_n, deadline),
        workers=workers,
        valid=valid,
        describe=_describe,
        progress=progress,
        desc="bench fashion",
        deadline=deadline,
    )
    workers, threads = split_cores(workers)
    # The table covers every row done at these settings, not only this call's: the bench runs in parts.
    expected, every = table_cells(out, schedule, quick)
    done = with_earlier(out, every, lambda c: c.key, valid, done)
    backfill_began_classes(out, done, eval_n)
    cells = [done[c.key] for c in every[1:] if c.key in done]
    cells.sort(key=lambda c: (ROW_KEYS.index(c["row"]), c["seed"]))
    result: dict[str, Any] = {
        "benchmark": "fashion (issues 5 and 17: paper architectures and games, several seeds)",
        "settings": {
            "quick": quick,
            "g_images": images,
            "eval_n": eval_n,
            "seeds": seeds or ("1" if quick else "per row"),
            "workers": workers,
            "threads_per_worker": threads,
            "reference": "fashion_mnist train, 32x32 pad",
        },
        "extractor": ext,
        "machine": machine_record(),
        "wall_time_s": wall_time(info, out / "fashion.json"),
        "info": info,
        "train_s_sum": round(sum(c["train_s"] for c in cells), 1),
        "missing": [c.key for c in expected if c.key not in done],
        "floor": done[FLOOR.key],
        "summary": summarise(cells, done[FLOOR.key]),
        "cells": cells,
    }
    result["plots"] = _summary_plots(result, out / "plots")
    (out / "fashion.json").write_text(json.dumps(result, indent=1, default=str))
    write_markdown(result, out / "fashion.md")
    return result
