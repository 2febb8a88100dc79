"""`ganforge bench cycle`: CycleGAN on Fashion-MNIST class pairs, with the paper's ablations (Zhu et al. 2017, Sec. 5.1.4).

Each cell trains the `cycle-fashion` recipe on one class pair (two independently shuffled training
sets) with one variant: `full` (the paper's losses), `no_identity`, `no_pool`, `no_cycle` (GAN alone,
Table 4: the identity weight, a fraction of the cycle weight, goes too). Then, on the held-out test
split of each side and for each direction, it measures (ganforge.metrics.translation): success (the
shipped classifier assigns the translation to the target class), FD against real target test images,
cycle L1, and `kept`, the correlation of the object's brightness between input and translation. The same
measures of the untranslated input give the floor. Cells are resumable (runs and their checkpoints
stay under OUT/runs); the pair's full run comes first.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from .runner import extractor_stamp, machine_record, run_cells, scored_by, train_or_resume, wall_time

if TYPE_CHECKING:
    from ..data.unpaired import UnpairedDataset

RECIPE = "cycle-fashion"
STEPS = 2000
QUICK_STEPS = 30
BATCH = 16
SUCCESS_BAR = 0.90  # the bar on sneaker <-> ankle boot, both directions
# base -> pair name -> (class a, class b); digits keeps the tests offline and fast.
PAIRS = {
    "fashion_mnist": {"shoes": ("sneaker", "ankle_boot"), "tops": ("pullover", "coat")},
    "digits": {"shoes": ("0", "1"), "tops": ("3", "8")},
}
IMAGE_SIZE = {"fashion_mnist": 32, "digits": 16}
EXTRACTOR = {"fashion_mnist": "fashion", "digits": "digits"}
VARIANTS = {
    "full": [],
    "no_identity": ["game.args.identity=0"],
    "no_pool": ["game.args.pool_size=0"],
    "no_cycle": ["game.args.cycle_weight=0"],
}
# The ablations run on the first pair; the other pair gets the full recipe only.
DEFAULT_CELLS = (
    ("shoes", "full"),
    ("shoes", "no_identity"),
    ("shoes", "no_pool"),
    ("shoes", "no_cycle"),
    ("tops", "full"),
)


@dataclass(frozen=True)
class Cell:
    pair: str
    variant: str
    steps: int
    base: str = "fashion_mnist"

    @property
    def key(self) -> str:
        return f"{self.pair}__{self.variant}"

    @property
    def classes(self) -> tuple[str, str]:
        return PAIRS[self.base][self.pair]


def overrides(cell: Cell, threads: int) -> list[str]:
    """The recipe overrides of one cell: its pair, its variant, the bench's length and cadence."""
    a, b = cell.classes
    every = max(1, cell.steps // 6)  # six triplet grids over training, for the report
    size = IMAGE_SIZE[cell.base]
    return [
        f"data.image_size={size}",
        f"data.a={{name: {cell.base}, classes: [{a}]}}",
        f"data.b={{name: {cell.base}, classes: [{b}]}}",
        f"train.steps={cell.steps}",
        f"train.batch_size={BATCH}",
        "train.progress=false",
        f"train.threads={threads}",
        f"train.sample_every={every}",
        f"train.checkpoint_every={every}",
        "train.keep_checkpoints=1",
        f"train.log_every={max(1, every // 10)}",
        *VARIANTS[cell.variant],
    ]


def run_cell(cell: Cell, out_dir: str, threads: int = 1) -> dict[str, Any]:
    """Train (or resume) one cell's run, then measure both directions on the test split."""
    torch.set_num_threads(threads)
    from ..config import load_recipe

    out = Path(out_dir)
    recipe = load_recipe(RECIPE, overrides(cell, threads))
    run_dir = out / "runs" / cell.key
    t0 = time.perf_counter()
    trainer = train_or_resume(
        recipe,
        run_dir,
        lambda t: (
            (t.recipe.train.steps, t.recipe.game.args, t.recipe.data) == (cell.steps, recipe.game.args, recipe.data)
        ),
    )
    trainer.run()
    rec: dict[str, Any] = {
        **extractor_stamp(EXTRACTOR[cell.base]),
        "pair": cell.pair,
        "variant": cell.variant,
        "classes": list(cell.classes),
        "base": cell.base,
        "steps": cell.steps,
        "train_s": round(trainer.elapsed, 1),
        "threads": threads,
        "game_args": dict(trainer.recipe.game.args),
    }
    rec.update(measure(trainer, cell.base))
    copy_grid(cell, out)
    rec["wall_s"] = round(time.perf_counter() - t0, 1)
    return rec


def copy_grid(cell: Cell, out: Path, scale: int = 3) -> None:
    """The run's final triplet grid, enlarged `scale` times (nearest neighbour, crisp pixels), as plots/KEY.png."""
    from PIL import Image

    src = out / "runs" / cell.key / "samples" / "final.png"
    if not src.is_file():
        return
    (out / "plots").mkdir(parents=True, exist_ok=True)
    with Image.open(src) as im:
        # Image.Resampling.NEAREST would need Pillow >= 9.1; the module constant exists at run time in every version.
        im.resize((im.width * scale, im.height * scale), Image.NEAREST).save(out / "plots" / f"{cell.key}.png")  # type: ignore[attr-defined]


def measure(trainer: Any, base: str) -> dict[str, Any]:
    """Per direction: the translation's measures and the untranslated floor; and the classifier's accuracy on reals."""
    from ..data import load_dataset
    from ..metrics.extractors import get_extractor
    from ..metrics.translation import direction_metrics, reference_metrics

    test = cast("UnpairedDataset", load_dataset(trainer.recipe.data, split="test", seed=trainer.recipe.seed))
    ext = get_extractor(EXTRACTOR[base])
    cls = {s: _class_index(test.side(s)) for s in ("a", "b")}
    x = {s: test.side(s).get(torch.arange(len(test.side(s))))[0] for s in ("a", "b")}
    out: dict[str, Any] = {
        "n_test": {s: len(v) for s, v in x.items()},
        "directions": {},
        "floor": {},
        "real_accuracy": {},
    }
    for src, dst, d, back in (("a", "b", "a2b", "b2a"), ("b", "a", "b2a", "a2b")):
        y = trainer.translate(d, x[src])
        rec = trainer.translate(back, y)
        out["directions"][d] = direction_metrics(x[src], y, rec, x[dst], cls[dst], ext)
        out["floor"][d] = reference_metrics(x[src], x[dst], cls[dst], ext)
        out["real_accuracy"][dst] = float((ext.extract(x[dst])["logits"].argmax(1) == cls[dst]).float().mean())
    return out


def _class_index(ds: Any) -> int:
    """The dataset-wide class index of a one-class side (as the shipped classifier numbers the classes)."""
    from ..data.images import FASHION_MNIST_CLASSES

    (name,) = ds.info["classes"]
    names = FASHION_MNIST_CLASSES if ds.name == "fashion_mnist" else [str(i) for i in range(10)]
    return names.index(name)


def _row(r: dict[str, Any], d: str) -> str:
    m = r["directions"][d]
    a, b = r["classes"] if d == "a2b" else r["classes"][::-1]
    return (
        f"| {r['pair']} | {r['variant']} | {a} → {b} | {m['success']:.1%} | {m['fd']:.2f} | {m['cycle_l1']:.3f} | "
        f"{m['kept']:.2f} | {m['kept_area']:.2f} | {r['train_s'] / 60:.1f} min |"
    )


def write_markdown(result: dict[str, Any], path: Path) -> None:
    """The table the README quotes, with the floors (untranslated inputs) and the classifier's accuracy on reals."""
    st, cells = result["settings"], result["cells"]
    lines = [
        f"CycleGAN (`{RECIPE}`) on {st['base']} at {st['image_size']}x{st['image_size']}: {st['steps']:,} steps of "
        f"{BATCH} images per side, seed 0, lr constant for half the steps then linearly to 0. Measured on each "
        "side's held-out test split with the shipped classifier "
        f"(`{st['extractor']}`): success = translations assigned to the target class; FD = FD-{st['extractor']} "
        "between translations and real target test images; cycle L1 = mean |F(G(x)) - x| (images in [-1, 1]); "
        "kept = correlation of the object's brightness between input and translation (the input's appearance "
        "carried over; 0 = ignored); area = the same for the silhouette area (shape, which the translation must "
        "change).",
        "",
        "| pair | variant | direction | success ↑ | FD ↓ | cycle L1 ↓ | kept ↑ | area | training time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in cells.values():
        lines += [_row(r, "a2b"), _row(r, "b2a")]
    lines += [
        "",
        "Floor (the input unchanged) and the classifier on real target images:",
        "",
        "| pair | direction | success of the input ↓ | FD of the input | kept | classifier on real targets |",
        "|---|---|---|---|---|---|",
    ]
    seen = set()
    for r in cells.values():
        if r["pair"] in seen:
            continue
        seen.add(r["pair"])
        for d in ("a2b", "b2a"):
            f = r["floor"][d]
            a, b = r["classes"] if d == "a2b" else r["classes"][::-1]
            dst = "b" if d == "a2b" else "a"
            lines.append(
                f"| {r['pair']} | {a} → {b} | {f['success']:.1%} | {f['fd']:.2f} | 1.00 | "
                f"{r['real_accuracy'][dst]:.1%} |"
            )
    verdict = result.get("verdict")
    if verdict:
        lines += ["", verdict]
    path.write_text("\n".join(lines) + "\n")


def verdict(cells: dict[str, dict[str, Any]]) -> str | None:
    """Whether the first pair's full run clears the bar in both directions, with a cycle L1 below the no-cycle run's."""
    full, nocyc = cells.get("shoes__full"), cells.get("shoes__no_cycle")
    if full is None:
        return None
    succ = [full["directions"][d]["success"] for d in ("a2b", "b2a")]
    ok = all(s >= SUCCESS_BAR for s in succ)
    text = (
        f"Bar (success ≥ {SUCCESS_BAR:.0%} both ways on {' ↔ '.join(full['classes'])}): "
        f"{'met' if ok else 'missed'} ({succ[0]:.1%} and {succ[1]:.1%})."
    )
    if nocyc is not None:
        cf = [full["directions"][d]["cycle_l1"] for d in ("a2b", "b2a")]
        cn = [nocyc["directions"][d]["cycle_l1"] for d in ("a2b", "b2a")]
        text += (
            f" Cycle L1 {cf[0]:.3f} / {cf[1]:.3f} against {cn[0]:.3f} / {cn[1]:.3f} without the cycle loss "
            f"({'lower' if all(x < y for x, y in zip(cf, cn)) else 'NOT lower'})."
        )
    return text


def run_cycle_bench(
    out: str | Path,
    quick: bool = False,
    cells: list[str] | None = None,
    steps: int | None = None,
    workers: int | None = None,
    progress: bool = True,
    base: str = "fashion_mnist",
) -> dict[str, Any]:
    """Train (or reuse) the cells, then write cycle.json, cycle.md and the triplet grids into `out`."""
    from ..data import load_dataset
    from ..errors import ConfigError, choices_message

    if base not in PAIRS:
        raise ConfigError(choices_message("base for bench cycle:", base, list(PAIRS)))
    steps = steps or (QUICK_STEPS if quick else STEPS)
    if steps < 1:
        raise ConfigError(f"bench cycle: steps must be at least 1, got {steps}")
    valid = [f"{p}__{v}" for p in PAIRS[base] for v in VARIANTS]
    chosen = [f"{p}__{v}" for p, v in DEFAULT_CELLS] if not cells else cells
    for k in chosen:
        if k not in valid:
            raise ConfigError(choices_message("cell for bench cycle (pair__variant):", k, valid))
    load_dataset(base, image_size=IMAGE_SIZE[base])  # fail early, with the loader's advice, if it is missing
    out = Path(out)
    todo = [Cell(pair, variant, steps=steps, base=base) for pair, variant in (k.split("__") for k in chosen)]
    done, info = run_cells(
        out,
        todo,
        key=lambda c: c.key,
        fn=run_cell,
        args=(str(out),),
        workers=workers or 1,
        valid=lambda c, r: (
            (r.get("steps"), r.get("base")) == (c.steps, c.base)
            and "directions" in r
            and scored_by(r, EXTRACTOR[c.base])
        ),
        describe=lambda r: " / ".join(f"{r['directions'][d]['success']:.0%}" for d in ("a2b", "b2a")),
        progress=progress,
        desc="bench cycle",
    )
    res_cells = {c.key: done[c.key] for c in todo}
    for c in todo:  # again here, so that a re-summary of finished runs refreshes the pictures
        copy_grid(c, out)
    result = {
        "benchmark": "cycle (issue 14: CycleGAN translation and its ablations)",
        "settings": {
            "recipe": RECIPE,
            "base": base,
            "image_size": IMAGE_SIZE[base],
            "steps": steps,
            "batch": BATCH,
            "extractor": EXTRACTOR[base],
            "quick": quick,
            "success_bar": SUCCESS_BAR,
        },
        "info": info,
        "wall_time_s": wall_time(info, out / "cycle.json"),
        "machine": machine_record(),
        "verdict": verdict(res_cells),
        "cells": res_cells,
    }
    (out / "cycle.json").write_text(json.dumps(result, indent=1, default=str))
    write_markdown(result, out / "cycle.md")
    return result
