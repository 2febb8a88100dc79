"""The `ganforge` command: train, sample, recipes, bench."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

from .errors import GanforgeError, TrainingError

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
    import yaml

    from .config import build_recipe, load_recipe
    from .training import Trainer

    if ns.resume:
        out = Path(ns.resume)
        cfg = out / "config.yaml"
        if not cfg.is_file():
            raise GanforgeError(f"cannot resume {str(out)!r}: it has no config.yaml (is it a ganforge run folder?).")
        if ns.args:
            raise GanforgeError("--resume continues a run with its own config.yaml; give no recipe or overrides with it.")
        data = yaml.safe_load(cfg.read_text())
        extra = [f"train.steps={ns.steps}"] if ns.steps else []
        recipe = build_recipe(data, extra)
    else:
        name, overrides = _split_recipe(list(ns.args))
        if ns.steps is not None:
            overrides.append(f"train.steps={ns.steps}")
        if ns.seed is not None:
            overrides.append(f"seed={ns.seed}")
        recipe = load_recipe(name, overrides)
        out = Path(ns.out) if ns.out else Path("runs") / f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        if out.exists() and any(out.iterdir()):
            raise GanforgeError(
                f"output folder {str(out)!r} already holds a run; continue it with `ganforge train --resume {out}` "
                "or choose another --out."
            )
    progress = False if ns.quiet else None
    out = Trainer(recipe, out, resume=bool(ns.resume), progress=progress).run()
    for name in ("final.png", "final_ema.png"):
        if (out / "samples" / name).exists():
            print(f"samples: {out / 'samples' / name}")
    print(f"report:  {out / 'report.html'}")
    print(f"weights: {out / 'generator.safetensors'}")
    return 0


def cmd_sample(ns: argparse.Namespace) -> int:
    from .plots import save_image_grid, save_images, save_points_plot
    from .sampling import load_generator, sample

    if ns.n < 1:
        raise GanforgeError(f"--n must be at least 1, got {ns.n}.")
    G, recipe, shape = load_generator(ns.source, use_ema=not ns.no_ema)
    if ns.truncation is not None and ns.truncation <= 0:
        raise GanforgeError(f"--truncation must be positive, got {ns.truncation}.")
    space = G.latent_space
    if getattr(ns, "class_", None) is not None:
        if not space.num_classes:
            raise GanforgeError(f"{ns.source} holds an unconditional generator; --class needs a conditional one "
                                "(model.conditional: true).")
        if not 0 <= ns.class_ < space.num_classes:
            raise GanforgeError(f"--class must be in 0..{space.num_classes - 1}, got {ns.class_}.")
    x = sample(G, ns.n, seed=ns.seed, truncation=ns.truncation, y=ns.class_)
    out = Path(ns.out)
    if len(shape) == 3:
        save_image_grid(x, out, nrow=ns.nrow)
        if ns.individual:
            paths = save_images(x, Path(ns.individual))
            print(f"wrote {len(paths)} images to {ns.individual}")
    else:
        centres = None
        if recipe.data.name in ("ring", "grid"):
            from .data import mixture_spec

            centres = mixture_spec(recipe.data.name)[0]
        save_points_plot(x[:, :2], out, centres=centres, title=f"{recipe.name}: {ns.n} samples")
        if ns.individual:
            import numpy as np

            Path(ns.individual).mkdir(parents=True, exist_ok=True)
            np.save(Path(ns.individual) / "samples.npy", x.numpy())
            print(f"wrote {Path(ns.individual) / 'samples.npy'}")
    print(f"wrote {out}")
    return 0


def _is_run_target(path: Path) -> bool:
    return path.is_file() or (path / "config.yaml").is_file() or (path / "generator.safetensors").is_file()


def cmd_eval(ns: argparse.Namespace) -> int:
    import json

    from .data import load_dataset
    from .metrics.evaluate import DEFAULT_IMAGE_METRICS, Evaluator, dataset_batches, format_table, generator_batches

    def load(name: str, split: str, image_size: int | None, fit: str, channels: int | None = None):
        return load_dataset(name, split=split, image_size=image_size, fit=fit, channels=channels, download=ns.download)

    def has_test_split(name: str) -> bool:
        return name in ("digits", "mnist", "fashion_mnist", "cifar10")

    if (ns.target is None) == (ns.reference is None):
        raise GanforgeError("give either a TARGET (run folder, checkpoint, safetensors or image folder) or --reference DATASET.")
    G = None
    if ns.reference:
        data_name, image_size, fit, channels = ns.reference, ns.image_size, ns.fit, None
        if not has_test_split(data_name):
            raise GanforgeError(f"--reference needs a dataset with a test split (digits, mnist, fashion_mnist, cifar10), not {data_name!r}.")
    elif _is_run_target(Path(ns.target)):
        from .sampling import load_generator

        G, recipe, shape = load_generator(ns.target, use_ema=not ns.no_ema)
        d = recipe.data
        data_name, image_size, fit, channels = d.name, d.image_size, d.fit, d.channels
    else:
        if not ns.data:
            raise GanforgeError("evaluating a folder of images needs --data DATASET to compare with (e.g. --data fashion_mnist).")
        data_name, image_size, fit, channels = ns.data, ns.image_size, ns.fit, None

    train = load(data_name, "train", image_size, fit, channels)
    points = train.kind == "points"
    metrics = ns.metrics or ("modes" if points else ",".join(DEFAULT_IMAGE_METRICS))
    if not ns.metrics and G is not None and getattr(G, "latent_space", None) is not None and G.latent_space.num_classes:
        metrics += ",cond_acc"  # a conditional generator: does each sample show its class?
    heldout = load(data_name, "test", image_size, fit, channels) if "memorisation" in metrics and has_test_split(data_name) else None
    ev = Evaluator(train, metrics, extractor=ns.extractor, n=ns.n, seed=ns.seed, heldout=heldout,
                   batch_size=ns.batch)
    if ns.reference:
        test = load(data_name, "test", image_size, fit, channels)
        n = min(ns.n, len(test))
        res = ev.evaluate(dataset_batches(test, n, ns.batch), n, f"real {data_name} test split (first {n})")
    elif G is not None:
        trunc = f", truncation {ns.truncation}" if ns.truncation else ""
        res = ev.evaluate(generator_batches(G, G.latent_space, ns.n, ns.seed, ns.batch, truncation=ns.truncation),
                          ns.n, f"generator from {ns.target}{' (EMA)' if not ns.no_ema else ''}{trunc}")
    else:
        c, h, _ = train.shape
        imgs = load_dataset("folder", path=ns.target, image_size=h, channels=c, limit=ns.n)
        res = ev.evaluate(dataset_batches(imgs, ns.n, ns.batch), min(ns.n, len(imgs)), f"images in {ns.target}")
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
                        repeats=ns.repeats, compile=not ns.no_compile)
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
    raise GanforgeError(f"unknown benchmark {ns.which!r}. Valid choices: speed, eval-memory, toy, fashion.")


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
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(fn=cmd_train)

    s = sub.add_parser("sample", help="draw samples from a trained generator")
    s.add_argument("source", metavar="DIR_OR_CHECKPOINT", help="a run folder, .pt checkpoint or .safetensors file")
    s.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    s.add_argument("--out", default="samples.png", help="output PNG (grid, or scatter plot for 2-D data)")
    s.add_argument("--individual", metavar="DIR", help="also write each sample to DIR")
    s.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    s.add_argument("--nrow", type=int, default=None, help="images per grid row")
    s.add_argument("--no-ema", action="store_true", help="use the raw generator even when an EMA copy exists")
    s.add_argument("--class", dest="class_", type=int, default=None, metavar="K",
                   help="class of a conditional generator (default: uniform over classes)")
    s.add_argument("--truncation", type=float, default=None, metavar="T",
                   help="truncation trick: redraw noise values with |z| > T (BigGAN; smaller T = higher fidelity, less variety)")
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
    e.add_argument("--n", type=int, default=10_000, help="number of generated samples (default 10000)")
    e.add_argument("--truncation", type=float, default=None, metavar="T", help="evaluate truncated samples (|z| <= T)")
    e.add_argument("--json", help="write every number and its protocol to this JSON file")
    e.add_argument("--extractor", default="auto", help="auto (domain classifier when one exists, else inception), inception, digits, fashion")
    e.add_argument("--data", help="reference dataset for a folder of images")
    e.add_argument("--image-size", type=int, default=32, help="image size for --reference / --data (default 32)")
    e.add_argument("--fit", default="resize", help="resize or pad for --reference / --data (default resize)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--batch", type=int, default=500)
    e.add_argument("--no-ema", action="store_true", help="evaluate the raw generator even when an EMA copy exists")
    e.add_argument("--no-download", dest="download", action="store_false", help="never download datasets")
    e.set_defaults(fn=cmd_eval)

    b = sub.add_parser("bench", help="run a benchmark and write its results")
    b.add_argument("which", choices=["speed", "eval-memory", "toy", "fashion"],
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
    b.add_argument("--seeds", type=int, help="toy: seeds per cell (default 3; 1 with --quick)")
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
    b.set_defaults(fn=cmd_bench)
    return p


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
        return ns.fn(ns)
    except TrainingError as e:
        print(f"ganforge: training stopped: {e}", file=sys.stderr)
        return 1
    except GanforgeError as e:
        print(f"ganforge: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ganforge: interrupted; continue with --resume from the run folder.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
