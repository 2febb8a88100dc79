"""The `ganforge` command: its parser, `main` and how errors are shown; the commands live in the submodules."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
import warnings
from collections.abc import Sequence

from ..errors import GanforgeError, RunInterrupted, RunStopped, TrainingError
from ..metrics.targets import EVAL_DEFAULT_N
from .bench import cmd_bench
from .doctor import cmd_doctor
from .sample_eval import SAMPLE_SUFFIXES, cmd_eval, cmd_export, cmd_sample
from .train import DEFAULT_RECIPE, cmd_recipes, cmd_status, cmd_train
from .translate import cmd_translate

__all__ = [
    "DEFAULT_RECIPE",
    "EVAL_DEFAULT_N",
    "SAMPLE_SUFFIXES",
    "build_parser",
    "cmd_bench",
    "cmd_doctor",
    "cmd_eval",
    "cmd_export",
    "cmd_recipes",
    "cmd_sample",
    "cmd_status",
    "cmd_train",
    "cmd_translate",
    "main",
]


@contextlib.contextmanager
def _cli_warnings():
    """Show UserWarnings as one line, `ganforge: warning: ...`, on stderr (not Python's file:line form)."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"ganforge: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default", UserWarning)
        warnings.showwarning = show
        yield


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
    t.add_argument(
        "--nproc",
        type=int,
        default=None,
        metavar="N",
        help="train on N processes of this machine (one per GPU, or CPU processes splitting the cores) "
        "through torchrun; the recipe's batch size stays the global batch",
    )
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
    s.add_argument(
        "--out",
        default="samples.png",
        help="output file: .png/.jpg (a grid, or a scatter plot for 2-D data), .npy (the raw sample array) "
        "or .csv (the raw points of 2-D data); default samples.png",
    )
    s.add_argument("--individual", metavar="DIR", help="also write each sample to DIR")
    s.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    s.add_argument("--nrow", type=int, default=None, help="images per grid row (at least 1)")
    s.add_argument("--no-ema", action="store_true", help="use the raw generator even when an EMA copy exists")
    s.add_argument(
        "--class",
        dest="class_",
        type=int,
        default=None,
        metavar="K",
        help="class of a conditional generator (default: uniform over classes)",
    )
    s.add_argument(
        "--truncation",
        type=float,
        default=None,
        metavar="T",
        help="truncation trick: redraw noise values with |z| > T, T >= 0.01 (BigGAN; smaller T = higher "
        "fidelity, less variety)",
    )
    s.add_argument("--device", default="auto", help="auto (CUDA, then MPS, else CPU), cpu, cuda, cuda:N or mps")
    s.set_defaults(fn=cmd_sample)

    tr = sub.add_parser(
        "translate",
        help="translate images with a CycleGAN run's translators",
        description="Run an image file or a folder of images (searched recursively) through one "
        "translator of RUN (run folder, checkpoint or translators.safetensors); writes PNGs under "
        "--out with the inputs' names and sub-folders, at the run's image size.",
    )
    tr.add_argument("run", metavar="RUN")
    tr.add_argument("input", metavar="INPUT", help="an image file or a folder of images")
    tr.add_argument("--direction", required=True, help="a2b (G_ab: domain a to b) or b2a")
    tr.add_argument("--out", required=True, help="folder for the translated PNGs")
    tr.add_argument("--overwrite", action="store_true", help="replace files that already exist in --out")
    tr.add_argument("--batch", type=int, default=64, help="images per forward pass (default 64)")
    tr.add_argument("--device", default="auto", help="auto (CUDA, then MPS, else CPU), cpu, cuda, cuda:N or mps")
    tr.set_defaults(fn=cmd_translate)

    e = sub.add_parser(
        "eval",
        help="evaluate a generator or images (FD, IS, KID, precision/recall, coverage, ...)",
        description="Evaluate TARGET (run folder, checkpoint, .safetensors, or a folder of images with --data) "
        "against the real train split, or the real test split itself with --reference DATASET (the floor).",
    )
    e.add_argument("target", nargs="?", metavar="TARGET")
    e.add_argument(
        "--reference", metavar="DATASET", help="evaluate the real test split of DATASET against its train split"
    )
    e.add_argument(
        "--metrics",
        help="comma-separated: fd,is,kid,pr,coverage,cond_acc,memorisation,swd,msssim,modes "
        "(default fd,is,kid,pr,coverage; modes for 2-D mixtures)",
    )
    e.add_argument(
        "--n",
        type=int,
        default=None,
        help="number of generated samples, at least 2 (default 10000; "
        "for an image folder or --reference: at most the images there)",
    )
    e.add_argument(
        "--truncation", type=float, default=None, metavar="T", help="evaluate truncated samples (|z| <= T, T >= 0.01)"
    )
    e.add_argument("--json", help="write every number and its protocol to this JSON file")
    e.add_argument(
        "--extractor",
        default="auto",
        help="auto (domain classifier when one exists, else inception), inception, digits, fashion",
    )
    e.add_argument("--data", help="reference dataset for a folder of images")
    e.add_argument("--base", help="with --reference/--data stacked: the stacked base, fashion_mnist or digits")
    e.add_argument("--image-size", type=int, default=32, help="image size for --reference / --data (default 32)")
    e.add_argument("--fit", default="resize", help="resize or pad for --reference / --data (default resize)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--batch", type=int, default=500, help="samples per batch (default 500)")
    e.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA, then MPS, else CPU), cpu, cuda, cuda:N or mps: "
        "where the generator and the feature extractor run",
    )
    e.add_argument("--no-ema", action="store_true", help="evaluate the raw generator even when an EMA copy exists")
    e.add_argument("--no-download", dest="download", action="store_false", help="never download datasets")
    e.set_defaults(fn=cmd_eval)

    dr = sub.add_parser(
        "doctor",
        help="diagnose a run's training health: a timeline of states, evidence, remedies",
        description="Read RUN's metrics.jsonl and name what went wrong, when, on what evidence, and "
        "the recipe overrides the literature suggests (thresholds: bench/results/doctor/doctor.md).",
    )
    dr.add_argument("runs", nargs="+", metavar="RUN", help="one or more run folders")
    dr.add_argument(
        "--json", action="store_true", help="print the diagnosis as JSON (one object, or a list for several runs)"
    )
    dr.set_defaults(fn=cmd_doctor)

    b = sub.add_parser("bench", help="run a benchmark and write its results")
    b.add_argument(
        "which",
        choices=["speed", "eval-memory", "toy", "fashion", "stacked", "progan", "cycle", "limited", "doctor"],
        help="speed: DCGAN training throughput, fp32/NCHW vs fastest; eval-memory: peak memory of eval vs n; "
        "toy: every stabilisation recipe on the 2-D ring and grid (mode collapse); "
        "fashion: the paper architectures and games on Fashion-MNIST under one budget; stacked: mode collapse on "
        "1,000-mode stacked Fashion-MNIST; progan: progressive growing against fixed 32x32 on Fashion-MNIST; "
        "cycle: CycleGAN on Fashion-MNIST class pairs with its ablations; limited: DCGAN on 1,000 / 5,000 / 60,000 "
        "Fashion-MNIST images without augmentation, with DiffAugment and with ADA; doctor: the doctor's labelled "
        "validation suite (healthy and broken runs)",
    )
    b.add_argument(
        "--out",
        help="result file (speed, eval-memory; default bench/results/WHICH.json) or folder "
        "(toy; default bench/results/toy)",
    )
    b.add_argument(
        "--quick",
        action="store_true",
        help="toy: one seed, 150 steps per run; fashion: 50 steps per row (a few minutes each)",
    )
    b.add_argument(
        "--recipes",
        help="toy: comma-separated recipe names or YAML paths (default: the whole zoo); "
        "doctor: case names (default: all, plus the committed Fashion-MNIST rows); "
        "fashion: comma-separated row names (dcgan, wgan-gp, ..., biggan; default: all); cycle: cells "
        "PAIR__VARIANT (shoes|tops x full|no_identity|no_pool|no_cycle; default: the shoes ablations and "
        "tops__full); limited: cells nSIZE__AUG (1000|5000|60000 x off|diffaugment|ada, default: all; also 200 on request)",
    )
    b.add_argument(
        "--images",
        type=int,
        help="fashion: generator images per row (default 96000 = 1500 steps of 64; "
        "3200 with --quick); progan: images per fade / stabilise phase (default 32000; 640 with --quick)",
    )
    b.add_argument(
        "--eval-n",
        type=int,
        help="fashion: samples scored per row (default 10000; 1000 with --quick); "
        "progan, limited: final samples per run (default 10000)",
    )
    b.add_argument("--seeds", type=int, help="toy, stacked, fashion: seeds per cell (default 3; 1 with --quick)")
    b.add_argument(
        "--bench-steps",
        type=int,
        help="stacked: generator steps per run (default 6000; 30 with --quick); "
        "cycle: steps per run (default 2000; 30 with --quick); limited: steps per run (default 3000; 20 with --quick)",
    )
    b.add_argument(
        "--toy-steps", type=int, help="toy: generator steps of each zoo run (default 1000; 150 with --quick)"
    )
    b.add_argument("--workers", type=int, help="toy: parallel runs (default: 2, one thread each)")
    b.add_argument(
        "--minutes",
        type=float,
        help="fashion: a time limit; the cell training then checkpoints and the bench stops (exit status 124), "
        "to go on from there when the same command runs again (a long table in parts across sessions)",
    )
    b.add_argument(
        "--no-showcase", action="store_true", help="toy: skip the showcase recipe (toy-best) at its own length"
    )
    b.add_argument("--target", help="eval-memory: the run folder to evaluate")
    b.add_argument("--counts", default="2000,20000", help="eval-memory: sample counts (default 2000,20000)")
    b.add_argument("--metrics", default="fd,is,kid,pr,coverage", help="eval-memory: metrics to compute")
    b.add_argument("--batch", type=int, default=64)
    b.add_argument("--steps", type=int, default=10, help="timed steps per repeat")
    b.add_argument("--repeats", type=int, default=5, help="repeats; the median is reported")
    b.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    b.add_argument(
        "--nproc",
        type=int,
        help="speed: time the data-parallel step on 1 and N processes (torchrun) and "
        "report the scaling efficiency (writes bench/results/speed_scaling.json)",
    )
    b.add_argument("--device", default="auto", help="speed: auto (CUDA when available), cpu, cuda or cuda:N")
    b.set_defaults(fn=cmd_bench)
    return p


def _out_of_memory(e: BaseException) -> str | None:
    """A one-paragraph message when `e` is a failed allocation (CPU or GPU), else None."""
    import re

    text = str(e)
    if not (
        isinstance(e, MemoryError)
        or type(e).__name__ == "OutOfMemoryError"
        or "can't allocate memory" in text
        or "out of memory" in text.lower()
    ):
        return None
    asked = re.search(r"tried to allocate ([0-9.]+) ?(bytes|[KMGT]i?B)", text)
    size = ""
    if asked:
        n, unit = float(asked.group(1)), asked.group(2)
        size = f" ({n / 2**30:.1f} GiB at once)" if unit == "bytes" else f" ({n:g} {unit} at once)"
    return (
        f"out of memory{size}. Ask for less: train.batch_size, data.image_size, train.n_samples, model.z_dim or "
        "the network's width when training; --n or --batch for sample and eval."
    )


def _rank_tag() -> str:
    """'rank N: ' in the messages of a distributed run's other ranks; '' on rank 0 and without torchrun."""
    rank = os.environ.get("RANK", "0")
    return "" if os.environ.get("WORLD_SIZE", "1") in ("", "1") or rank == "0" else f"rank {rank}: "


def _rank_should_report(e: BaseException) -> bool:
    """Rank 0 reports every error; the others only their own (not rank 0's echoed verdict, not a recipe error all ranks hit)."""
    from ..errors import ConfigError

    if not _rank_tag():
        return True
    return not getattr(e, "echo", False) and not isinstance(e, (ConfigError, TrainingError))


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
        if _rank_should_report(e):
            print(f"ganforge: {_rank_tag()}training stopped: {e}", file=sys.stderr)
        return 1
    except GanforgeError as e:
        if _rank_should_report(e):
            print(f"ganforge: {_rank_tag()}error: {e}", file=sys.stderr)
        return 2
    except RunStopped as e:
        best = f"the best checkpoint is {e.best}" if e.best else "no checkpoint was kept"
        if not _rank_tag():
            print(
                f"ganforge: doctor stopped the run at step {e.step:,} (train.doctor.stop_on): {e.title} since step "
                f"{e.since:,}; {best}. See `ganforge doctor {e.folder}` for the evidence and what to change.",
                file=sys.stderr,
            )
        return 3
    except RunInterrupted as e:
        kept = f"checkpoint at step {e.checkpoint_step} kept" if e.checkpoint_step else "no checkpoint was written yet"
        if not _rank_tag():
            print(
                f"ganforge: {e.signal} stopped the run at step {e.step} ({kept}); continue it with "
                f"`ganforge train --resume {e.folder}`.",
                file=sys.stderr,
            )
        return 143 if e.signal == "SIGTERM" else 130
    except BrokenPipeError:
        # `ganforge doctor RUN | head`: the reader left; say nothing, and keep Python quiet at exit too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as e:
        # A full disk, a read-only folder, a path that is a file: one paragraph, not a chained traceback.
        where = f" ({e.filename})" if e.filename else ""
        hint = (
            " Free some space; runs keep their last good checkpoint, so continue with --resume."
            if e.errno in (errno.ENOSPC, errno.EDQUOT)
            else ""
        )
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
