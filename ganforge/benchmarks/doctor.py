"""`ganforge bench doctor`: a labelled suite of short runs, healthy and broken on purpose, that the doctor must name.

Each case is a shipped recipe with overrides and the state its sample pictures show (the expected label, set by
looking at them, with the reason written beside it). The runs are trained once (resumable cells); the diagnosis is
taken afterwards from each run's metrics.jsonl, so that thresholds can be re-measured without retraining. The
committed rows of the Fashion-MNIST table (bench/results/fashion_v1, whose run folders are not kept) are diagnosed
from their final evaluation against that table's real floor. Results: doctor.json, doctor.md (a confusion table,
precision and recall per state) and one picture per run (final samples beside the diagnosed timeline).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, TrainingError
from .runner import run_cells, train_or_resume, wall_time


@dataclass(frozen=True)
class Case:
    """One labelled run: recipe + overrides, its length, and the state its pictures show."""

    key: str
    recipe: str
    steps: int
    expected: str
    what: str
    label_why: str  # what the pictures show, that set `expected`
    overrides: tuple[str, ...] = field(default_factory=tuple)
    eval_metrics: str = "fd,coverage"


# The broken cases use the demo's DCGAN on digits (about 0.1 s a step on one core) unless the failure needs
# another setting; the healthy ones are shipped recipes as they are, shortened where their length would cost hours.
CASES = [
    Case(
        "healthy-toy-best",
        "toy-best",
        6000,
        "healthy",
        "toy-best on the grid, its own length",
        "25 sharp modes from step 2,000 on",
        eval_metrics="modes",
    ),
    Case("healthy-demo", "demo", 2000, "healthy", "the demo: DCGAN on digits, width 32", "varied, legible digits"),
    Case(
        "healthy-dcgan-digits",
        "dcgan-digits",
        2000,
        "healthy",
        "dcgan-digits, half its length",
        "varied, legible digits",
    ),
    Case(
        "healthy-dcgan-fashion",
        "dcgan-fashion",
        1500,
        "healthy",
        "dcgan-fashion, a quarter of its length",
        "every kind of item, blurred but varied",
    ),
    # Both meant as the collapsing plain GAN; at their own length (seed 0) neither collapsed, so their pictures
    # label them healthy: the ring's G found all 8 modes, the grid's spread along the grid's lines and kept adding
    # modes to the end. BEGAN and the lr-10x run are the trained collapse cases.
    Case(
        "healthy-gan-ring",
        "gan-toy",
        10000,
        "healthy",
        "plain GAN (non-saturating) on the ring, its own length",
        "all 8 modes from step 3,000 on, a few samples on the arcs between",
        ("data.name=ring",),
        eval_metrics="modes",
    ),
    Case(
        "healthy-gan-grid",
        "gan-toy",
        10000,
        "healthy",
        "plain GAN (non-saturating) on the 25-mode grid, its own length",
        "no collapse: samples spread along the grid's lines, covering more modes as it trains (9 -> 17 of 25)",
        eval_metrics="modes",
    ),
    Case(
        "collapse-gan-ring-fast-g",
        "gan-toy",
        3000,
        "collapse",
        "plain GAN on the ring, G's lr 10x D's (1e-3 vs 1e-4)",
        "every sample on one arc of the ring, hopping from mode to mode (steps 500-2,000); all 8 modes by 3,000",
        ("data.name=ring", "optim.g.lr=1e-3", "optim.d.lr=1e-4"),
        eval_metrics="modes",
    ),
    Case(
        "collapse-began",
        "began-fashion",
        1000,
        "collapse",
        "BEGAN at gamma 0.3 on Fashion-MNIST",
        "one or two kinds of item, near-identical",
        ("game.args.gamma=0.3",),
    ),
    Case(
        "dwins-minimax",
        "demo",
        2000,
        "d_wins",
        "minimax (saturating) loss, D 5x the lr and 3 steps per G step",
        "noise-like blobs that stop improving",
        ("loss=minimax", "optim.d.lr=0.001", "game.n_critic=3"),
    ),
    # Meant as "D far larger than G"; under the non-saturating loss that D did not overpower its G (FD fell
    # 381 -> 62, D right on everything for at most an eighth of the run): its pictures show a slow, varied G.
    Case(
        "healthy-big-d",
        "demo",
        2000,
        "healthy",
        "D 16x wider than G (width 64 against 4)",
        "grey blobs at step 400, rough but varied digits by step 2,000: slow, not broken",
        ("model.discriminator.args.width=64", "model.generator.args.width=4"),
    ),
    # The README's worked example: dwins-minimax with the doctor's first remedy applied.
    Case(
        "fixed-minimax",
        "demo",
        2000,
        "healthy",
        "dwins-minimax with the doctor's first remedy: loss=non_saturating",
        "varied, legible digits",
        ("loss=non_saturating", "optim.d.lr=0.001", "game.n_critic=3"),
    ),
    Case(
        "diverge-lr10x",
        "demo",
        2000,
        "divergence",
        "learning rates 10x the recipe's (2e-3)",
        "digits that appear, then break up between grids",
        ("optim.g.lr=0.002", "optim.d.lr=0.002"),
    ),
    Case(
        "nolearn-tiny-lr",
        "demo",
        2000,
        "no_learning",
        "G's learning rate 1e-7",
        "the first grid's noise, unchanged",
        ("optim.g.lr=1e-7",),
    ),
    Case(
        "nan-wgan-sgd",
        "wgan-toy",
        3000,
        "unstable",
        "WGAN without weight clipping, SGD lr 0.01, 1 critic step",
        "the run stops at a non-finite loss",
        (
            "regularizers=[]",
            "optim.g.name=sgd",
            "optim.d.name=sgd",
            "optim.g.lr=0.01",
            "optim.d.lr=0.01",
            "game.n_critic=1",
        ),
        eval_metrics="modes",
    ),
]
CASE_KEYS = [c.key for c in CASES]

# Labels of the committed Fashion-MNIST rows (FASHION_DIR/plots/ROW_samples.png), diagnosed from their
# final evaluation only: their run folders are not kept.
FASHION_LABELS = {
    "began-0.3": ("collapse", "near-black images of one or two kinds"),
    "began-0.7": ("collapse", "sneakers and a few bags only"),
    "ssgan-100": ("collapse", "one blurred top shape, repeated"),
    "ssgan-1000": ("collapse", "mostly the same top, 8 of 10 classes"),
    "sagan": ("healthy", "every kind of item, poorly drawn: low quality, not collapse"),
    "lsgan": ("healthy", "tops and trousers dominate, but shoes and bags appear"),
}
LOG_EVERY, SAMPLE_EVERY = 25, 100  # dense enough to time a state within a few percent of a run


def case_overrides(case: Case, threads: int) -> list[str]:
    """The case's overrides plus the bench's cadence: logs every 25 steps, grids every 100, 8 evaluations."""
    every = max(1, case.steps // 8)
    n = 2500 if case.eval_metrics == "modes" else 1000
    return [
        *case.overrides,
        f"train.steps={case.steps}",
        f"train.log_every={LOG_EVERY}",
        f"train.sample_every={SAMPLE_EVERY}",
        f"train.checkpoint_every={max(SAMPLE_EVERY, case.steps // 4)}",
        "train.keep_checkpoints=1",
        "train.progress=false",
        f"train.threads={threads}",
        f"eval.every={every}",
        f"eval.n={n}",
        f"eval.metrics=[{case.eval_metrics}]",
    ]


def run_case(case: Case, out_dir: str, threads: int = 1) -> dict[str, Any]:
    """Train (or resume) one case; a run that stops on a non-finite loss is a result, not an error."""
    import torch

    from ..config import load_recipe

    torch.set_num_threads(threads)
    recipe = load_recipe(case.recipe, case_overrides(case, threads))
    run_dir = Path(out_dir) / "runs" / case.key
    t0 = time.perf_counter()
    trainer = train_or_resume(recipe, run_dir, lambda t: t.recipe.train.steps == case.steps)
    status, error = "finished", None
    try:
        trainer.run()
    except TrainingError as e:
        status, error = "failed", str(e)
    return {
        "key": case.key,
        "recipe": case.recipe,
        "overrides": list(case.overrides),
        "steps": case.steps,
        "status": status,
        "error": error,
        "train_s": round(trainer.elapsed, 1),
        "wall_s": round(time.perf_counter() - t0, 1),
        "threads": threads,
    }


def _select(names: list[str] | None) -> list[Case]:
    if not names:
        return list(CASES)
    bad = [n for n in names if n not in CASE_KEYS]
    if bad:
        raise ConfigError(f"unknown doctor case(s) {', '.join(map(repr, bad))}. Valid cases: {', '.join(CASE_KEYS)}.")
    return [c for c in CASES if c.key in names]


def train_cases(
    out: Path, names: list[str] | None = None, workers: int | None = 1, progress: bool = True
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Train every selected case not already done (cells/KEY.json)."""
    cases = _select(names)
    return run_cells(
        out,
        cases,
        key=lambda c: c.key,
        fn=run_case,
        args=(str(out),),
        workers=workers,
        valid=lambda c, r: r.get("steps") == c.steps and r.get("overrides") == list(c.overrides),
        describe=lambda r: r["status"],
        progress=progress,
        desc="bench doctor",
    )


# The table whose sample grids FASHION_LABELS describe: the first (one seed, `fashionv1` classifier). The new table
# (bench/results/fashion, issue 17) takes its place once it is complete and its grids are labelled again.
FASHION_DIR = Path("bench/results/fashion_v1")


def fashion_rows(fashion_dir: Path = FASHION_DIR) -> list[dict[str, Any]]:
    """The committed Fashion-MNIST rows, diagnosed from their final evaluation against the table's floor."""
    from ..doctor import diagnose_final

    floor_file = fashion_dir / "cells" / "_floor.json"
    if not floor_file.is_file():
        return []
    floor = json.loads(floor_file.read_text())["metrics"]
    rows = []
    for f in sorted((fashion_dir / "cells").glob("*.json")):
        if f.stem == "_floor":
            continue
        rec = json.loads(f.read_text())
        if rec.get("status") != "finished" or not rec.get("metrics"):
            continue
        expected, why = FASHION_LABELS.get(
            rec["row"], ("healthy", "varied samples of every kind (the table's picture)")
        )
        d = diagnose_final(rec["metrics"], floor)
        seed = f"__s{rec['seed']}" if "seed" in rec else ""  # the table runs several seeds since issue 17
        rows.append(
            {
                "key": f"fashion/{rec['row']}{seed}",
                "what": rec.get("what", ""),
                "expected": expected,
                "label_why": why,
                "diagnosed": d["verdict"],
                "evidence": [e for p in d["periods"] for e in p["evidence"]],
                "source": f"final evaluation ({fashion_dir})",
            }
        )
    return rows


def diagnose_case(case: Case, rec: dict[str, Any], out: Path) -> dict[str, Any]:
    """A trained case's diagnosis from its run folder, with its picture (final samples beside the timeline)."""
    from ..doctor import diagnose_run
    from ..doctor.diagnose import read_records

    run_dir = out / "runs" / case.key
    d = diagnose_run(run_dir)
    picture = _picture(case, d, read_records(run_dir / "metrics.jsonl"), run_dir, out / "plots" / f"{case.key}.png")
    return {
        "key": case.key,
        "what": case.what,
        "recipe": case.recipe,
        "overrides": list(case.overrides),
        "expected": case.expected,
        "label_why": case.label_why,
        "diagnosed": d["verdict"],
        "status": rec["status"],
        "steps": case.steps,
        "train_s": rec.get("train_s"),
        "threads": rec.get("threads"),
        "periods": d["periods"],
        "first_alarm": min((p["start"] for p in d["periods"]), default=None),
        "evidence": [e for p in d["periods"] for e in p["evidence"][:2]],
        "picture": picture,
        "extremes": signal_extremes(read_records(run_dir / "metrics.jsonl"), d["total_steps"]),
        "source": "training log",
    }


def signal_extremes(records: list[dict[str, Any]], total: int) -> dict[str, float | None]:
    """What each detector read at its most extreme after warm-up: the margins the thresholds sit between."""
    import statistics

    from ..doctor import THRESHOLDS as th
    from ..doctor.engine import GROWTH_KEYS, RECENT

    warm = [r for r in records if int(r.get("step", 0)) >= th.warmup * total]

    def ratios(num: str, den: str, recs: list[dict[str, Any]]) -> list[float]:
        return [
            float(r[num]) / float(r[den])
            for r in recs
            if isinstance(r.get(num), (int, float)) and isinstance(r.get(den), (int, float)) and r[den]
        ]

    out: dict[str, float | None] = {}
    div = ratios("signals/sample_diversity", "signals/real_diversity", warm)
    out["min_diversity_ratio"] = min(div) if div else None
    cov = ratios("signals/class_coverage", "signals/real_class_coverage", warm) or ratios(
        "signals/mode_coverage", "signals/real_mode_coverage", warm
    )
    out["min_coverage_ratio"] = min(cov) if cov else None
    kls = [float(r["signals/class_kl"]) for r in warm if isinstance(r.get("signals/class_kl"), (int, float))]
    out["max_class_kl"] = max(kls) if kls else None
    acc = [
        (int(r["step"]), min(r["d_acc_real"], r["d_acc_fake"]))
        for r in warm
        if isinstance(r.get("d_acc_real"), (int, float)) and isinstance(r.get("d_acc_fake"), (int, float))
    ]
    longest, run_start = 0, None
    for s, a in acc:  # the longest stretch with D right on >= d_acc of both, as a share of the run
        if a >= th.d_acc:
            run_start = s if run_start is None else run_start
            longest = max(longest, s - run_start)
        else:
            run_start = None
    out["longest_d_wins_share"] = longest / total if acc else None
    ch = ratios("signals/sample_change", "signals/real_diversity", warm)
    late = ratios("signals/sample_change", "signals/real_diversity", [r for r in warm if r["step"] >= total / 2])
    out["min_change_ratio"] = min(ch) if ch else None
    out["median_late_change_ratio"] = statistics.median(late) if late else None
    fds = [float(v) for r in records for k, v in r.items() if k.startswith("eval/fd_") and isinstance(v, (int, float))]
    out["max_fd_over_best"] = max((fds[i] / min(fds[:i]) for i in range(1, len(fds))), default=None)
    growth = 0.0
    for k in GROWTH_KEYS:
        h = [float(r[k]) for r in warm if isinstance(r.get(k), (int, float))]
        for i in range(2 * RECENT, len(h) + 1):
            before = statistics.median(h[: i - RECENT])
            if before > 0:
                growth = max(growth, statistics.median(h[i - RECENT : i]) / before)
    out["max_grad_growth"] = growth or None
    return out


def _picture(case: Case, d: dict[str, Any], records: list[dict[str, Any]], run_dir: Path, path: Path) -> str:
    """The run's last sample grid (left) and its diagnosed timeline (right), in one PNG."""
    import matplotlib.image as mpimg

    from ..plots import new_figure, plot_health_timeline, save_figure

    tl = path.with_name(f"{case.key}_timeline.png")
    plot_health_timeline(records, d["periods"], tl, d["total_steps"], f"{case.key}: {d['title']}")
    grids = sorted((run_dir / "samples").glob("step_*.png"))
    fig = new_figure(12.5, 5.2)
    ax = fig.add_axes((0.0, 0.05, 0.36, 0.85))
    if grids:
        ax.imshow(mpimg.imread(grids[-1]), cmap="gray")
        ax.set_title(f"samples at step {int(grids[-1].stem.split('_')[1]):,}", fontsize="small")
    ax.axis("off")
    ax2 = fig.add_axes((0.37, 0.0, 0.63, 1.0))
    ax2.imshow(mpimg.imread(tl))
    ax2.axis("off")
    fig.suptitle(f"{case.key} (expected {case.expected}, diagnosed {d['verdict']}): {case.what}", fontsize="medium")
    save_figure(fig, path)
    tl.unlink()
    return path.name


def confusion(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Confusion counts (expected -> diagnosed), accuracy, precision and recall per state, healthy alarms."""
    from ..doctor import HEALTHY, STATES

    labels = [HEALTHY, *STATES]
    table = {e: {g: 0 for g in labels} for e in labels}
    for r in rows:
        table[r["expected"]][r["diagnosed"]] += 1
    per = {}
    for s in labels:
        tp = table[s][s]
        said = sum(table[e][s] for e in labels)
        true = sum(table[s].values())
        per[s] = {"precision": tp / said if said else None, "recall": tp / true if true else None, "support": true}
    right = sum(table[s][s] for s in labels)
    return {
        "labels": labels,
        "table": table,
        "per_state": per,
        "accuracy": right / len(rows) if rows else None,
        "right": right,
        "runs": len(rows),
        "healthy_alarms": [r["key"] for r in rows if r["expected"] == HEALTHY and r["diagnosed"] != HEALTHY],
    }


def write_markdown(res: dict[str, Any], path: Path) -> None:
    """doctor.md: the verdicts, the confusion table, precision and recall, the thresholds and their reasons."""
    from ..doctor import THRESHOLDS

    c = res["confusion"]
    threads = sorted({r["threads"] for r in res["rows"] if r.get("threads")})
    lines = [
        "# The doctor's validation suite",
        "",
        f"{c['right']} of {c['runs']} runs get the right state (**{c['accuracy']:.0%}**); healthy runs that raise "
        f"an alarm: **{len(c['healthy_alarms'])}**{' (' + ', '.join(c['healthy_alarms']) + ')' if c['healthy_alarms'] else ''}. "
        f"Trained runs: one seed each, {' or '.join(map(str, threads)) or 'one'} CPU thread(s) per run (each cell "
        f"records its own), logs every {LOG_EVERY} steps, sample grids every "
        f"{SAMPLE_EVERY}, 8 evaluations per run; wall time of the training {res['train_s'] / 60:.0f} min. "
        "Expected labels come from each run's sample grids (the reason is in the table); the committed "
        "Fashion-MNIST rows are judged from their final evaluation only, their logs not being kept.",
        "",
        "| run | what | expected (from the pictures) | diagnosed | from step | evidence |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        mark = "" if r["expected"] == r["diagnosed"] else " ✗"
        ev = "; ".join(r["evidence"][:2]).replace("|", "/") or "—"
        first = f"{r['first_alarm']:,}" if r.get("first_alarm") is not None else "—"
        lines.append(
            f"| {r['key']} | {r['what']} | {r['expected']}: {r['label_why']} | **{r['diagnosed']}**{mark} | "
            f"{first} | {ev} |"
        )
    if any(r["source"].startswith("final") for r in res["rows"]):
        lines += [
            "",
            "The `fashion/...` rows' pictures are the Fashion-MNIST table's own, "
            "`bench/results/fashion_v1/plots/ROW_samples.png`; the others' are `plots/RUN.png` here.",
        ]
    lines += [
        "",
        "## Confusion (rows: expected; columns: diagnosed)",
        "",
        "| expected \\ diagnosed | " + " | ".join(c["labels"]) + " |",
        "|---|" + "---|" * len(c["labels"]),
    ]
    for e in c["labels"]:
        if any(c["table"][e].values()):
            lines.append(f"| {e} | " + " | ".join(str(c["table"][e][g]) for g in c["labels"]) + " |")
    lines += ["", "| state | precision | recall | runs |", "|---|---|---|---|"]
    for s, p in c["per_state"].items():

        def f(v):
            return "—" if v is None else f"{v:.0%}"

        lines.append(f"| {s} | {f(p['precision'])} | {f(p['recall'])} | {p['support']} |")
    lines += [
        "",
        "## Thresholds",
        "",
        "Set on this suite (ganforge/doctor/rules.py says why each sits where it does):",
        "",
    ]
    lines += [f"- `{k}` = {v:.3g}" for k, v in vars(THRESHOLDS).items()]
    trained = [r for r in res["rows"] if r.get("extremes")]
    if trained:
        cols = list(trained[0]["extremes"])
        lines += [
            "",
            "## Margins: what each detector read at its most extreme after warm-up",
            "",
            "Diversity, coverage and movement are ratios to the real samples' figures; the D-wins stretch is a "
            "share of the run; FD over best is the largest FD over the best FD before it; gradient growth is "
            "the largest median of 4 log lines over the median of all earlier ones (G and D's input gradient).",
            "",
            "| run | expected | " + " | ".join(c.replace("_", " ") for c in cols) + " |",
            "|---|---|" + "---|" * len(cols),
        ]
        for r in trained:
            cells = ["—" if r["extremes"][c] is None else f"{r['extremes'][c]:.3g}" for c in cols]
            lines.append(f"| {r['key']} | {r['expected']} | " + " | ".join(cells) + " |")
    lines += ["", "Pictures: `plots/RUN.png`, the last sample grid beside the diagnosed timeline."]
    path.write_text("\n".join(lines) + "\n")


def run_doctor_bench(
    out: str | Path = "bench/results/doctor",
    cases: list[str] | None = None,
    workers: int | None = 1,
    progress: bool = True,
    fashion_dir: Path = FASHION_DIR,
) -> dict[str, Any]:
    """Train the labelled cases (resumable), diagnose each, and write doctor.json, doctor.md and the pictures."""
    from dataclasses import asdict

    from ..doctor import THRESHOLDS
    from ..training.runinfo import write_json

    out = Path(out)
    done, info = train_cases(out, cases, workers, progress)
    rows = [diagnose_case(c, done[c.key], out) for c in _select(cases)]
    if not cases:
        rows += fashion_rows(fashion_dir)
    res = {
        "rows": rows,
        "confusion": confusion(rows),
        "thresholds": asdict(THRESHOLDS),
        "info": info,
        "train_s": sum(float(done[c.key].get("train_s") or 0) for c in _select(cases)),
    }
    res["wall_time_s"] = wall_time(info, out / "doctor.json")
    write_json(out / "doctor.json", res)
    write_markdown(res, out / "doctor.md")
    return res
