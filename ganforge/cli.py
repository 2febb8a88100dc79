"""The `ganforge` command: train, sample, recipes, bench."""

from __future__ import annotations

import argparse
import errno
import contextlib
import sys
import time
import warnings
from pathlib import Path
from typing import Sequence

from .errors import GanforgeError, RunInterrupted, TrainingError

DEFAULT_RECIPE = "demo"


def _split_recipe(args: list[str]) -> tuple[str, list[str]]:
    """The first positional is the recipe unless it looks like an override (contains '=')."""
    if args and "=" not in args[0]:
        return args[0], args[1:]
    return DEFAULT_RECIPE, args


def cmd_recipes(ns: argparse.Namespace) -> int:
    from .config import list_recipes

    recipes = list_recipes()
    width = max(map(len, recipes))
    for name, desc in recipes.items():
        print(f"{name:<{width}}  {desc}")
    return 0


def cmd_train(ns: argparse.Namespace) -> int:
    from .config import load_recipe
    from .training import Trainer

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
    print(f"weights: {out / 'generator.safetensors'}")
    return 0


SAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".npy", ".csv")


@contextlib.contextmanager
def _cli_warnings():
    """Show UserWarnings as one line, `ganforge: warning: ...`, on stderr (not Python's file:line form)."""

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 - warnings API
        print(f"ganforge: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default", UserWarning)
        warnings.showwarning = show
        yield


def _device(name: str):
    """--device: auto, cpu, cuda, cuda:N or mps (ConfigError when it is not available here)."""
    from .training.hardware import resolve_device

    return resolve_device(name)


def _check_seed(seed: int) -> None:
    """--seed of sample and eval: what torch's generators take (the same range as a recipe's seed)."""
    if not 0 <= seed < 2**63:
        raise GanforgeError(f"--seed must be between 0 and 2**63 - 1, got {seed}.")


def _check_output_file(path: Path, option: str, example: str) -> None:
    """A path the command will write a file to: not an existing folder, and its parent is not a file."""
    if path.is_dir():
        raise GanforgeError(f"{option} {str(path)!r} is an existing folder; give a file name (e.g. {path / example}).")
    parent = next((q for q in path.parents if q.exists()), None)
    if parent is not None and not parent.is_dir():
        raise GanforgeError(f"{option} {str(path)!r} cannot be written: {str(parent)!r} is a file, not a folder.")


def _write_jpeg(path: Path, write_png) -> None:  # noqa: ANN001 - write_png(path) writes a PNG there
    """Write what `write_png` draws as a JPEG at `path` (via a temporary PNG beside it)."""
    import os
    import tempfile

    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    try:
        write_png(Path(tmp))
        with Image.open(tmp) as im:
            im.convert("RGB").save(tmp + ".jpg", format="JPEG", quality=95)
        os.replace(tmp + ".jpg", path)
    finally:
        for f in (tmp, tmp + ".jpg"):
            if os.path.exists(f):
                os.unlink(f)


def cmd_export(ns: argparse.Namespace) -> int:
    from .config import DataConfig
    from .data import load_dataset
    import torch

    from .plots import save_images

    out = Path(ns.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GanforgeError(f"--out {str(out)!r} exists and is not an empty folder; choose a new folder.")
    ds = load_dataset(DataConfig(name=ns.dataset, base=ns.base, image_size=ns.image_size, fit=ns.fit, split=ns.split,
                                 download=ns.download))
    if ds.kind != "image":
        raise GanforgeError(f"dataset {ns.dataset!r} holds points, not images; nothing to export as PNG files.")
    n = min(ns.n or len(ds), len(ds))
    # Shuffled, so that the folder's first files (what a reader samples first) are not one class.
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(ns.seed))[:n]
    paths = save_images(ds.get(idx)[0], out)
    print(f"wrote {len(paths)} PNG images of {ds.name} ({ns.split} split) to {out}")
    return 0


def cmd_status(ns: argparse.Namespace) -> int:
    from .training.runinfo import read_status

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


def cmd_sample(ns: argparse.Namespace) -> int:
    import numpy as np

    from .latent import check_truncation
    from .plots import save_image_grid, save_images, save_points_plot
    from .sampling import load_generator, sample

    # Every option is checked before the generator is loaded, so a typo costs nothing.
    if ns.n < 1:
        raise GanforgeError(f"--n must be at least 1, got {ns.n}.")
    if ns.nrow is not None and ns.nrow < 1:
        raise GanforgeError(f"--nrow (images per grid row) must be at least 1, got {ns.nrow}.")
    _check_seed(ns.seed)
    check_truncation(ns.truncation, "--truncation")
    out = Path(ns.out)
    _check_output_file(out, "--out", "samples.png")
    suffix = out.suffix.lower()
    if suffix not in SAMPLE_SUFFIXES:
        raise GanforgeError(f"--out {str(out)!r}: unknown file type {suffix or '(no suffix)'!r}. Valid choices: "
                            f"{', '.join(SAMPLE_SUFFIXES)} (.png/.jpg: a grid or scatter plot; .npy: the raw samples; "
                            ".csv: the raw samples of point data).")
    if ns.individual and Path(ns.individual).exists() and not Path(ns.individual).is_dir():
        raise GanforgeError(f"--individual {ns.individual!r} is an existing file; give a folder.")
    device = _device(ns.device)
    G, recipe, shape = load_generator(ns.source, use_ema=not ns.no_ema)
    is_image = len(shape) == 3
    if suffix == ".csv" and is_image:
        raise GanforgeError(f"--out {str(out)!r}: .csv holds point samples; this generator makes {tuple(shape)} "
                            "images, so use .png/.jpg for a grid or .npy for the raw array.")
    G = G.to(device)
    space = G.latent_space
    if getattr(ns, "class_", None) is not None:
        if not space.num_classes:
            raise GanforgeError(f"{ns.source} holds an unconditional generator; --class needs a conditional one "
                                "(model.conditional: true).")
        if not 0 <= ns.class_ < space.num_classes:
            raise GanforgeError(f"--class must be in 0..{space.num_classes - 1}, got {ns.class_}.")
    x = sample(G, ns.n, seed=ns.seed, truncation=ns.truncation, y=ns.class_)
    if suffix == ".npy":
        from .atomic import atomic_file

        with atomic_file(out) as f:
            np.save(f, x.numpy())
        what = "images in [-1, 1]" if is_image else "points"
        print(f"wrote {out} ({ns.n} {what}, array shape {tuple(x.shape)})")
    elif suffix == ".csv":
        from .atomic import atomic_file

        with atomic_file(out) as f:
            header = ",".join(f"x{i}" for i in range(x.shape[1]))
            np.savetxt(f, x.numpy(), delimiter=",", header=header, comments="", fmt="%.9g")
        print(f"wrote {out} ({ns.n} points)")
    else:
        if is_image:
            def draw(path: Path) -> None:
                save_image_grid(x, path, nrow=ns.nrow)
        else:
            centres = None
            from .data import is_mixture, mixture_spec

            if is_mixture(recipe.data.name):
                centres = mixture_spec(recipe.data.name)[0]

            def draw(path: Path) -> None:
                save_points_plot(x[:, :2], path, centres=centres, title=f"{recipe.name}: {ns.n} samples")
        if suffix == ".png":
            draw(out)
        else:
            _write_jpeg(out, draw)
        print(f"wrote {out}")
    if ns.individual:
        if is_image:
            paths = save_images(x, Path(ns.individual))
            print(f"wrote {len(paths)} images to {ns.individual}")
        else:
            Path(ns.individual).mkdir(parents=True, exist_ok=True)
            np.save(Path(ns.individual) / "samples.npy", x.numpy())
            print(f"wrote {Path(ns.individual) / 'samples.npy'}")
    return 0


def _is_run_target(path: Path) -> bool:
    return path.is_file() or (path / "config.yaml").is_file() or (path / "generator.safetensors").is_file()


EVAL_DEFAULT_N = 10_000


def cmd_eval(ns: argparse.Namespace) -> int:
    import json

    import dataclasses

    from .config import DataConfig
    from .data import DATASETS, has_test_split, load_dataset
    from .latent import check_truncation
    from .metrics.evaluate import (DEFAULT_IMAGE_METRICS, Evaluator, dataset_batches, format_table, generator_batches,
                                   parse_metrics)

    def load(split: str):
        return load_dataset(dcfg, split=split)

    # Options first: a mistake must not cost the minutes of computing reference statistics.
    if (ns.target is None) == (ns.reference is None):
        raise GanforgeError("give either a TARGET (run folder, checkpoint, safetensors or image folder) or --reference DATASET.")
    n_given = ns.n is not None
    n_wanted = ns.n if n_given else EVAL_DEFAULT_N
    from .config import MAX_EVAL_N

    if not 2 <= n_wanted <= MAX_EVAL_N:
        raise GanforgeError(f"--n must be between 2 (the metrics compare sample statistics) and {MAX_EVAL_N:,}, "
                            f"got {n_wanted}.")
    if ns.batch < 1:
        raise GanforgeError(f"--batch must be at least 1, got {ns.batch}.")
    _check_seed(ns.seed)
    check_truncation(ns.truncation, "--truncation")
    if ns.json:
        _check_output_file(Path(ns.json), "--json", "eval.json")
    if ns.metrics:
        parse_metrics(ns.metrics)  # unknown names: listed now, not after loading data
    device = _device(ns.device)
    G = None
    if ns.reference:
        dcfg = DataConfig(name=ns.reference, base=ns.base, image_size=ns.image_size, fit=ns.fit, download=ns.download)
        if not has_test_split(ns.reference):
            with_test = ", ".join(n for n in DATASETS if has_test_split(n))
            raise GanforgeError(f"--reference needs a dataset with a test split ({with_test}), not {ns.reference!r}.")
    elif not Path(ns.target).exists():
        raise GanforgeError(f"TARGET {ns.target!r} does not exist: give a run folder, a .pt checkpoint, a .safetensors "
                            "file or a folder of images.")
    elif _is_run_target(Path(ns.target)):
        from .sampling import load_generator

        G, recipe, shape = load_generator(ns.target, use_ema=not ns.no_ema)
        G = G.to(device)
        dcfg = dataclasses.replace(recipe.data, download=recipe.data.download and ns.download, split="train",
                                   limit=None, labels=False)
    else:
        if not ns.data:
            raise GanforgeError("evaluating a folder of images needs --data DATASET to compare with (e.g. --data fashion_mnist).")
        dcfg = DataConfig(name=ns.data, base=ns.base, image_size=ns.image_size, fit=ns.fit, download=ns.download)
    data_name = dcfg.name
    if ns.truncation is not None and G is None:
        raise GanforgeError("--truncation applies to the noise of a generator; TARGET here is not a generator "
                            "(a run folder, checkpoint or .safetensors file).")
    conditional = G is not None and getattr(G, "latent_space", None) is not None and G.latent_space.num_classes > 0
    if ns.metrics and "cond_acc" in parse_metrics(ns.metrics) and not conditional and not ns.reference:
        what = "an image folder" if G is None else f"{ns.target} holds an unconditional generator"
        raise GanforgeError(f"metric 'cond_acc' (conditional accuracy) needs a class-conditional generator "
                            f"(model.conditional: true), but {what}; leave cond_acc out of --metrics.")

    train = load("train")
    points = train.kind == "points"
    metrics = ns.metrics or ("modes" if points else ",".join(DEFAULT_IMAGE_METRICS))
    if not ns.metrics and train.name.startswith("stacked_"):
        metrics += ",modes"  # modes of 1,000 (channel classes), KL to uniform, high-quality share
    if not ns.metrics and conditional:
        metrics += ",cond_acc"  # a conditional generator: does each sample show its class?
    heldout = load("test") if "memorisation" in metrics and has_test_split(data_name) else None
    imgs = test = None
    n = n_wanted
    if ns.reference:
        test = load("test")
        n = min(n_wanted, len(test))
        if n_given and n < n_wanted:
            warnings.warn(f"--n {n_wanted} asks for more images than the {n} of the {data_name} test split; "
                          f"scoring only those {n}.", UserWarning, stacklevel=2)
    elif G is None:
        c, h, _ = train.shape
        imgs = load_dataset("folder", path=ns.target, image_size=h, channels=c, limit=n_wanted)
        n = min(n_wanted, len(imgs))
        if n_given and n < n_wanted:
            warnings.warn(f"--n {n_wanted} asks for more images than the {n} readable ones in {ns.target}; scoring "
                          f"only those {n}.", UserWarning, stacklevel=2)
        if n < 2:
            raise GanforgeError(f"{ns.target} holds {n} readable image; evaluation needs at least 2.")
    ev = Evaluator(train, metrics, extractor=ns.extractor, n=n, seed=ns.seed, heldout=heldout,
                   batch_size=ns.batch, device=device)
    if ns.reference:
        res = ev.evaluate(dataset_batches(test, n, ns.batch), n, f"real {data_name} test split (first {n})")
    elif G is not None:
        trunc = f", truncation {ns.truncation}" if ns.truncation else ""
        res = ev.evaluate(generator_batches(G, G.latent_space, n, ns.seed, ns.batch, truncation=ns.truncation),
                          n, f"generator from {getattr(G, 'loaded_from', ns.target)}{trunc}")
    else:
        res = ev.evaluate(dataset_batches(imgs, n, ns.batch), n, f"images in {ns.target}")
    print(format_table(res["metrics"]))
    proto = res["protocol"]
    if proto.get("extractor"):
        print(f"extractor: {proto['extractor']['extractor']} (sha256 {proto['extractor'].get('weights_sha256', '')[:12]}...)")
    print(f"reference: {proto['reference']['dataset']} train split, n={proto['reference']['n']}; generated n={proto['generated']['n']}")
    grid = res.pop("memorisation_grid", None)
    if ns.json:
        Path(ns.json).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.json).write_text(json.dumps(res, indent=2, default=str))
        print(f"wrote {ns.json}")
    if grid is not None:
        from torchvision.utils import save_image

        pic = Path(ns.json).with_name(Path(ns.json).stem + "_memorisation.png") if ns.json else Path("memorisation.png")
        pic.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, pic)
        print(f"memorisation picture (each row: a sample, then its nearest training images): {pic}")
    return 0


def cmd_bench(ns: argparse.Namespace) -> int:
    if ns.which == "speed":
        from .benchmarks.speed import run_speed_bench

        run_speed_bench(ns.out or "bench/results/speed.json", batch_size=ns.batch, steps=ns.steps,
                        repeats=ns.repeats, compile=not ns.no_compile, device=ns.device)
        return 0
    if ns.which == "eval-memory":
        from .benchmarks.eval_memory import run_eval_memory_bench

        if not ns.target:
            raise GanforgeError("bench eval-memory needs --target RUN_FOLDER (a trained run to evaluate).")
        counts = [int(c) for c in ns.counts.split(",")]
        run_eval_memory_bench(ns.target, counts, ns.metrics, ns.out or "bench/results/eval_memory.json")
        return 0
    if ns.which == "toy":
        from .benchmarks.toy import run_toy_bench

        recipes = [r.strip() for r in ns.recipes.split(",") if r.strip()] if ns.recipes else None
        out = ns.out or ("bench/results/toy_quick" if ns.quick else "bench/results/toy")
        res = run_toy_bench(out, quick=ns.quick, recipes=recipes, seeds=ns.seeds, steps=ns.toy_steps,
                            workers=ns.workers, showcase=not ns.no_showcase)
        print((Path(out) / "toy.md").read_text())
        print(f"results: {Path(out) / 'toy.json'} (wall time {res['wall_time_s']:.0f} s); pictures in {Path(out) / 'plots'}")
        return 0
    if ns.which == "fashion":
        from .benchmarks.fashion import run_fashion_bench

        rows = [r.strip() for r in ns.recipes.split(",") if r.strip()] if ns.recipes else None
        out = ns.out or ("bench/results/fashion_quick" if ns.quick else "bench/results/fashion")
        res = run_fashion_bench(out, quick=ns.quick, rows=rows, images=ns.images, eval_n=ns.eval_n, workers=ns.workers)
        print((Path(out) / "fashion.md").read_text())
        print(f"results: {Path(out) / 'fashion.json'} (wall time {res['wall_time_s']:.0f} s); pictures in {Path(out) / 'plots'}")
        return 0
    if ns.which == "stacked":
        from .benchmarks.stacked import run_stacked_bench

        rows = [r.strip() for r in ns.recipes.split(",") if r.strip()] if ns.recipes else None
        out = ns.out or ("bench/results/stacked_quick" if ns.quick else "bench/results/stacked")
        res = run_stacked_bench(out, quick=ns.quick, rows=rows, seeds=ns.seeds, steps=ns.bench_steps,
                                eval_n=ns.eval_n, workers=ns.workers)
        print((Path(out) / "stacked.md").read_text())
        print(f"results: {Path(out) / 'stacked.json'} ({res['info']['cells_run']} cells run now, "
              f"{res['info']['wall_time_s']:.0f} s); sample grids in {Path(out) / 'plots'}")
        return 0
    raise GanforgeError(f"unknown benchmark {ns.which!r}. Valid choices: speed, eval-memory, toy, fashion, stacked.")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ganforge", description="Train, stabilise, evaluate and diagnose GANs.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("recipes", help="list the shipped recipes")
    r.set_defaults(fn=cmd_recipes)

    t = sub.add_parser(
        "train",
        help="train a recipe",
        description="Train RECIPE (a shipped name or a YAML path; default: demo) with dotted overrides "
        "such as train.steps=500 optim.g.lr=1e-4.",
    )
    t.add_argument("args", nargs="*", metavar="[RECIPE] [key.sub=value ...]")
    t.add_argument("--steps", type=int, help="number of generator steps (train.steps)")
    t.add_argument("--seed", type=int, help="random seed (seed)")
    t.add_argument("--out", help="run folder (default: runs/RECIPE-TIMESTAMP)")
    t.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its newest checkpoint")
    t.add_argument("--device", help="auto (CUDA when available, else CPU), cpu, cuda or cuda:N (train.device)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(fn=cmd_train)

    x = sub.add_parser("export", help="write a dataset as a folder of PNG images (e.g. to test the folder recipes)")
    x.add_argument("dataset", help="a dataset name: digits, fashion_mnist, stacked, ...")
    x.add_argument("--out", required=True, help="a new folder for the images")
    x.add_argument("--base", help="stacked: the base dataset (fashion_mnist or digits)")
    x.add_argument("--split", default="train", help="train (default) or test")
    x.add_argument("--image-size", type=int, default=None, help="image size (default: the dataset's)")
    x.add_argument("--fit", default="resize", help="resize (default) or pad")
    x.add_argument("--n", type=int, default=None, help="at most this many images (default: all)")
    x.add_argument("--seed", type=int, default=0, help="seed of the shuffled order (default 0)")
    x.add_argument("--no-download", dest="download", action="store_false", help="never download datasets")
    x.set_defaults(fn=cmd_export)

    st = sub.add_parser("status", help="say whether runs are running, finished, failed, interrupted or stale")
    st.add_argument("runs", nargs="*", metavar="RUN", help="run folders (default: every folder under runs/)")
    st.set_defaults(fn=cmd_status)

    s = sub.add_parser("sample", help="draw samples from a trained generator")
    s.add_argument("source", metavar="DIR_OR_CHECKPOINT", help="a run folder, .pt checkpoint or .safetensors file")
    s.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    s.add_argument("--out", default="samples.png",
                   help="output file: .png/.jpg (a grid, or a scatter plot for 2-D data), .npy (the raw sample array) "
                   "or .csv (the raw points of 2-D data); default samples.png")
    s.add_argument("--individual", metavar="DIR", help="also write each sample to DIR")
    s.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    s.add_argument("--nrow", type=int, default=None, help="images per grid row (at least 1)")
    s.add_argument("--no-ema", action="store_true", help="use the raw generator even when an EMA copy exists")
    s.add_argument("--class", dest="class_", type=int, default=None, metavar="K",
                   help="class of a conditional generator (default: uniform over classes)")
    s.add_argument("--truncation", type=float, default=None, metavar="T",
                   help="truncation trick: redraw noise values with |z| > T, T >= 0.01 (BigGAN; smaller T = higher "
                   "fidelity, less variety)")
    s.add_argument("--device", default="auto", help="auto (CUDA, then MPS, else CPU), cpu, cuda, cuda:N or mps")
    s.set_defaults(fn=cmd_sample)

    e = sub.add_parser(
        "eval",
        help="evaluate a generator or images (FD, IS, KID, precision/recall, coverage, ...)",
        description="Evaluate TARGET (run folder, checkpoint, .safetensors, or a folder of images with --data) "
        "against the real train split, or the real test split itself with --reference DATASET (the floor).",
    )
    e.add_argument("target", nargs="?", metavar="TARGET")
    e.add_argument("--reference", metavar="DATASET", help="evaluate the real test split of DATASET against its train split")
    e.add_argument("--metrics", help="comma-separated: fd,is,kid,pr,coverage,cond_acc,memorisation,swd,msssim,modes "
                   "(default fd,is,kid,pr,coverage; modes for 2-D mixtures)")
    e.add_argument("--n", type=int, default=None, help="number of generated samples, at least 2 (default 10000; "
                   "for an image folder or --reference: at most the images there)")
    e.add_argument("--truncation", type=float, default=None, metavar="T",
                   help="evaluate truncated samples (|z| <= T, T >= 0.01)")
    e.add_argument("--json", help="write every number and its protocol to this JSON file")
    e.add_argument("--extractor", default="auto", help="auto (domain classifier when one exists, else inception), inception, digits, fashion")
    e.add_argument("--data", help="reference dataset for a folder of images")
    e.add_argument("--base", help="with --reference/--data stacked: the stacked base, fashion_mnist or digits")
    e.add_argument("--image-size", type=int, default=32, help="image size for --reference / --data (default 32)")
    e.add_argument("--fit", default="resize", help="resize or pad for --reference / --data (default resize)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--batch", type=int, default=500, help="samples per batch (default 500)")
    e.add_argument("--device", default="auto", help="auto (CUDA, then MPS, else CPU), cpu, cuda, cuda:N or mps: "
                   "where the generator and the feature extractor run")
    e.add_argument("--no-ema", action="store_true", help="evaluate the raw generator even when an EMA copy exists")
    e.add_argument("--no-download", dest="download", action="store_false", help="never download datasets")
    e.set_defaults(fn=cmd_eval)

    b = sub.add_parser("bench", help="run a benchmark and write its results")
    b.add_argument("which", choices=["speed", "eval-memory", "toy", "fashion", "stacked"],
                   help="speed: DCGAN training throughput, fp32/NCHW vs fastest; eval-memory: peak memory of eval vs n; "
                   "toy: every stabilisation recipe on the 2-D ring and grid (mode collapse); "
                   "fashion: the paper architectures and games on Fashion-MNIST under one budget")
    b.add_argument("--out", help="result file (speed, eval-memory; default bench/results/WHICH.json) or folder "
                   "(toy; default bench/results/toy)")
    b.add_argument("--quick", action="store_true", help="toy: one seed, 150 steps per run; fashion: 50 steps per row "
                   "(a few minutes each)")
    b.add_argument("--recipes", help="toy: comma-separated recipe names or YAML paths (default: the whole zoo); "
                   "fashion: comma-separated row names (dcgan, wgan-gp, ..., biggan; default: all)")
    b.add_argument("--images", type=int, help="fashion: generator images per row (default 96000 = 1500 steps of 64; "
                   "3200 with --quick)")
    b.add_argument("--eval-n", type=int, help="fashion: samples scored per row (default 10000; 1000 with --quick)")
    b.add_argument("--seeds", type=int, help="toy, stacked: seeds per cell (default 3; 1 with --quick)")
    b.add_argument("--bench-steps", type=int, help="stacked: generator steps per run (default 6000; 30 with --quick)")
    b.add_argument("--toy-steps", type=int, help="toy: generator steps of each zoo run (default 1000; 150 with --quick)")
    b.add_argument("--workers", type=int, help="toy: parallel runs (default: 2, one thread each)")
    b.add_argument("--no-showcase", action="store_true", help="toy: skip the showcase recipe (toy-best) at its own length")
    b.add_argument("--target", help="eval-memory: the run folder to evaluate")
    b.add_argument("--counts", default="2000,20000", help="eval-memory: sample counts (default 2000,20000)")
    b.add_argument("--metrics", default="fd,is,kid,pr,coverage", help="eval-memory: metrics to compute")
    b.add_argument("--batch", type=int, default=64)
    b.add_argument("--steps", type=int, default=10, help="timed steps per repeat")
    b.add_argument("--repeats", type=int, default=5, help="repeats; the median is reported")
    b.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    b.add_argument("--device", default="auto", help="speed: auto (CUDA when available), cpu, cuda or cuda:N")
    b.set_defaults(fn=cmd_bench)
    return p


def _out_of_memory(e: BaseException) -> str | None:
    """A one-paragraph message when `e` is a failed allocation (CPU or GPU), else None."""
    import re

    text = str(e)
    if not (isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError"
            or "can't allocate memory" in text or "out of memory" in text.lower()):
        return None
    asked = re.search(r"tried to allocate ([0-9.]+) ?(bytes|[KMGT]i?B)", text)
    size = ""
    if asked:
        n, unit = float(asked.group(1)), asked.group(2)
        size = f" ({n / 2**30:.1f} GiB at once)" if unit == "bytes" else f" ({n:g} {unit} at once)"
    return (f"out of memory{size}. Ask for less: train.batch_size, data.image_size, train.n_samples, model.z_dim or "
            "the network's width when training; --n or --batch for sample and eval.")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ganforge` console script."""
    parser = build_parser()
    # Overrides may come after options (`train demo --steps 5 train.batch_size=8`), which plain
    # argparse rejects once the positional list has been consumed.
    ns, extra = parser.parse_known_args(argv)
    if extra:
        if ns.command == "train" and all("=" in x and not x.startswith("-") for x in extra):
            ns.args = list(ns.args) + extra
        else:
            parser.error("unrecognized arguments: " + " ".join(extra))
    try:
        with _cli_warnings():
            return ns.fn(ns)
    except TrainingError as e:
        print(f"ganforge: training stopped: {e}", file=sys.stderr)
        return 1
    except GanforgeError as e:
        print(f"ganforge: error: {e}", file=sys.stderr)
        return 2
    except RunInterrupted as e:
        kept = f"checkpoint at step {e.checkpoint_step} kept" if e.checkpoint_step else "no checkpoint was written yet"
        print(f"ganforge: {e.signal} stopped the run at step {e.step} ({kept}); continue it with "
              f"`ganforge train --resume {e.folder}`.", file=sys.stderr)
        return 143 if e.signal == "SIGTERM" else 130
    except OSError as e:
        # A full disk, a read-only folder, a path that is a file: one paragraph, not a chained traceback.
        where = f" ({e.filename})" if e.filename else ""
        hint = " Free some space; runs keep their last good checkpoint, so continue with --resume." \
            if e.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        print(f"ganforge: error: {e.strerror or e}{where}.{hint}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as e:
        message = _out_of_memory(e)
        if message is None:
            raise
        print(f"ganforge: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if ns.command == "train":
            print("ganforge: interrupted; continue with --resume from the run folder.", file=sys.stderr)
        else:
            print(f"ganforge: {ns.command} interrupted; its output may be missing or incomplete.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
