"""The `recipes`, `train` and `status` commands: list recipes, start or resume a run, report on run folders."""

from __future__ import annotations

import argparse
import os
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


def _launch(ns: argparse.Namespace) -> int:
    """`ganforge train --nproc N`: run N copies of this command as one data-parallel run on this machine (torchrun's launcher).

    Returns the exit code of the run: rank 0's when it failed, else the first failed rank's.
    """
    import sys
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from ..errors import ConfigError
    from ..training.hardware import available_cores

    if ns.nproc < 1:
        raise ConfigError(f"--nproc must be at least 1, got {ns.nproc}.")
    argv = list(ns.args)
    for flag, value in (("--steps", ns.steps), ("--seed", ns.seed), ("--resume", ns.resume), ("--device", ns.device)):
        if value is not None:
            argv += [flag, str(value)]
    if ns.quiet:
        argv.append("--quiet")
    if not ns.resume:
        # Named now, so that every rank, and every elastic restart, uses the same folder.
        from ..config import load_recipe

        name, overrides = _split_recipe(list(ns.args))
        recipe = load_recipe(name, overrides)
        argv += ["--out", ns.out or str(Path("runs") / f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}")]
    # Each CPU process gets its share of the cores (torchrun alone would give each one thread).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, available_cores() // ns.nproc)))
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=ns.nproc,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.1,
    )
    try:
        elastic_launch(config, entrypoint=sys.executable)("-m", "ganforge", "train", *argv)
    except ChildFailedError as e:
        failures = e.failures
        first = failures.get(0) or failures[min(failures)]
        code = first.exitcode
        return code if code > 0 else 128 - code  # killed by a signal: 128 + its number, as a shell reports it
    except SignalException as e:
        return 128 + int(e.sigval)
    return 0


def _elastic_restart(ns: argparse.Namespace) -> None:
    """Under torchrun --max-restarts, a restarted worker continues the run from its last checkpoint by itself."""
    import json

    from ..training import distributed
    from ..training.checkpoint import list_checkpoints

    if distributed.elastic_restart_count() == 0 or ns.resume or not ns.out:
        return
    out = Path(ns.out)
    if list_checkpoints(out / "checkpoints"):
        ns.resume, ns.out, ns.args, ns.seed, ns.steps = str(out), None, [], None, None
        return
    # Died before its first checkpoint: start again, clearing only what this same torchrun job wrote.
    try:
        info = json.loads((out / "run.json").read_text())
    except (OSError, ValueError):
        return
    if (
        info.get("elastic_run_id")
        and info.get("elastic_run_id") == os.environ.get("TORCHELASTIC_RUN_ID")
        and distributed.from_env().main
    ):
        import shutil

        for p in out.iterdir():
            if p.name != ".lock":
                shutil.rmtree(p) if p.is_dir() else p.unlink()


def cmd_train(ns: argparse.Namespace) -> int:
    from ..config import load_recipe
    from ..training import distributed

    dist_env = distributed.from_env()
    world = dist_env.world
    if ns.nproc is not None and world > 1 and ns.nproc != world:
        from ..errors import ConfigError

        raise ConfigError(
            f"--nproc {ns.nproc} was given to a process that torchrun already started as one of {world}; "
            "leave --nproc out under torchrun (its --nproc_per_node sets the count)."
        )
    if ns.nproc is not None and ns.nproc != 1 and world == 1:
        return _launch(ns)
    if dist_env.enabled and not ns.resume and not ns.out:
        # Every rank, and a restarted one, must name the same folder: torchrun's run id does.
        run_id = os.environ.get("TORCHELASTIC_RUN_ID", "")
        if run_id and run_id != "none":
            name, overrides = _split_recipe(list(ns.args))
            ns.out = str(Path("runs") / f"{load_recipe(name, overrides).name}-{run_id[:12]}")
    _elastic_restart(ns)
    try:
        return _train(ns)
    finally:
        distributed.shutdown()


def _train(ns: argparse.Namespace) -> int:
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
            raise GanforgeError(
                f"--resume continues a run with the recipe, seed and folder its checkpoint holds; it "
                f"takes no {', '.join(given)}. Safe fields may change with overrides, e.g. "
                f"`ganforge train --resume {ns.resume} train.steps=5000 optim.g.lr=1e-4`."
            )
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
    if not trainer.dist.main:
        return 0
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
