"""The `recipes`, `train` and `status` commands: list recipes, start or resume a run, report on run folders."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import GanforgeError

DEFAULT_RECIPE = "demo"


def _split_recipe(args: list[str]) -> tuple[str, list[str]]:
    """The first positional is the recipe unless it looks like an override (contains '=')."""
    if args and "=" not in args[0]:
        return args[0], args[1:]
    return DEFAULT_RECIPE, args


def cmd_recipes(ns: argparse.Namespace) -> int:
    from ..config import list_recipes

    recipes = list_recipes()
    width = max(map(len, recipes))
    for name, desc in recipes.items():
        print(f"{name:<{width}}  {desc}")
    return 0


def cmd_train(ns: argparse.Namespace) -> int:
    from ..config import load_recipe
    from ..training import Trainer

    progress = False if ns.quiet else None
    if ns.resume:
        extra = [a for a in ns.args if "=" not in a]
        given = [f"recipe {x!r}" for x in extra]
        if ns.seed is not None:
            given.append("--seed")
        if ns.out:
            given.append("--out")
        if given:
            given = ", ".join(given)
            raise GanforgeError(f"--resume continues a run with the recipe, seed and folder its checkpoint holds; it "
                                f"takes no {given}. Safe fields may change with overrides, e.g. "
                                f"`ganforge train --resume {ns.resume} train.steps=5000 optim.g.lr=1e-4`.")
        overrides = list(ns.args) + ([f"train.device={ns.device}"] if ns.device else [])
        trainer = Trainer.resume_run(ns.resume, overrides, steps=ns.steps, progress=progress)
    else:
        name, overrides = _split_recipe(list(ns.args))
        if ns.steps is not None:
            overrides.append(f"train.steps={ns.steps}")
        if ns.seed is not None:
            overrides.append(f"seed={ns.seed}")
        if ns.device is not None:
            overrides.append(f"train.device={ns.device}")
        recipe = load_recipe(name, overrides)
        out = Path(ns.out) if ns.out else Path("runs") / f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        trainer = Trainer.start(recipe, out, progress=progress)
    out = trainer.run()
    for name in ("final.png", "final_ema.png"):
        if (out / "samples" / name).exists():
            print(f"samples: {out / 'samples' / name}")
    print(f"report:  {out / 'report.html'}")
    weights = "translators.safetensors" if trainer.translation else "generator.safetensors"
    print(f"weights: {out / weights}")
    return 0


def cmd_status(ns: argparse.Namespace) -> int:
    from ..training.runinfo import read_status

    folders = [Path(f) for f in ns.runs] if ns.runs else sorted(p for p in Path("runs").glob("*") if p.is_dir())
    if not folders:
        print("no runs found (give run folders, or run from the folder that holds runs/).")
        return 0
    for folder in folders:
        if not folder.is_dir():
            raise GanforgeError(f"{str(folder)!r} is not a run folder.")
        info = read_status(folder)
        if not info:
            print(f"{folder}: no run.json (not a ganforge run, or it never started)")
            continue
        line = f"{folder}: {info.get('status', '?')}, step {info.get('step', '?')}/{info.get('steps', '?')}"
        if info.get("updated"):
            line += f", updated {info['updated']}"
        if info.get("status") == "interrupted" and info.get("last_checkpoint_step") is not None:
            line += f", last checkpoint at step {info['last_checkpoint_step']}"
        if info.get("error"):
            line += f"\n    error: {info['error']}"
        if info.get("stale_reason"):
            line += f"\n    {info['stale_reason']}"
        print(line)
    return 0
