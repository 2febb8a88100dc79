"""Fuzz the `ganforge` command: for any input it exits 0 or 2 (1 only for "training stopped"), says why in one
paragraph starting `ganforge: error:` / `ganforge: warning:`, never shows a traceback, and never changes a file of
an existing run that it was not asked to write to.

Two layers on top of the single cases in test_run_safety.py and test_hostile_sample_eval.py:
a table of the hostile probes (each must be exit 2 with one paragraph), and hypothesis properties over random
overrides, recipe documents, image/.npy/checkpoint bytes and sample/eval options.

The default run is deterministic (derandomize) and takes well under a minute; `-m slow` runs the same properties
with about ten times as many examples, and GANFORGE_FUZZ_EXAMPLES=K multiplies every example count by K.
`-s` shows the cases tried per command.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import shutil
import struct
import traceback
import typing
import zlib
from collections import Counter
from itertools import count
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from ganforge.cli import main
from ganforge.config import Recipe

TRIED: Counter[str] = Counter()  # cases run, by command (train, resume, sample, eval)
TRACEBACKS: list[str] = []  # any exception that escaped main (each also fails its test)
MULTIPLIER = max(1, int(os.environ.get("GANFORGE_FUZZ_EXAMPLES", "1") or 1))

# Small enough that an override which is wrongly accepted costs a second, not a minute.
SMALL = [
    "--steps",
    "1",
    "--quiet",
    "train.batch_size=8",
    "model.generator.args.width=4",
    "model.discriminator.args.width=4",
    "train.n_samples=4",
    "train.sample_every=1",
    "train.checkpoint_every=1",
]


def fuzz(n: int):
    """Deterministic hypothesis settings with n examples (times GANFORGE_FUZZ_EXAMPLES)."""
    # No shrinking: a failing case is reported as found (shrinking a training run costs minutes per failure).
    return settings(
        max_examples=n * MULTIPLIER,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
    )


# --------------------------------------------------------------------------- running the CLI


def cli(*argv: object) -> tuple[int, str]:
    """Run `ganforge argv` in this process; (exit status, stderr). An exception escaping main fails the test."""
    argv = [str(a) for a in argv]
    TRIED["resume" if argv[:1] == ["train"] and "--resume" in argv else argv[0]] += 1
    err, out = io.StringIO(), io.StringIO()
    threads = torch.get_num_threads()  # train.threads=N sets torch's global thread count
    root = logging.getLogger()
    handlers = root.handlers[:]
    root.handlers = []  # as in the real command: no logging handler, so a stray log record reaches stderr
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                code = main(argv)
            except SystemExit as e:  # argparse's own usage errors
                code = e.code if isinstance(e.code, int) else 2
    except BaseException:
        TRACEBACKS.append(f"{argv}: {traceback.format_exc()}")
        raise AssertionError(
            f"an exception escaped main for ganforge {' '.join(argv)}:\n{traceback.format_exc()}"
        ) from None
    finally:
        root.handlers = handlers
        torch.set_num_threads(threads)
    return code, err.getvalue()


INFO_LINES = ("resuming ",)  # what a successful resume says on stderr before training


def assert_promise(code: int, err: str, argv: object = "") -> None:
    """Exit 0 or 2 (1 only for a stopped training), at most one paragraph of error, no traceback."""
    where = f"{argv}\nstderr: {err}"
    assert "Traceback" not in err, where
    assert code in (0, 1, 2), f"exit {code}: {where}"
    text = err.strip()
    lines = text.splitlines()
    if code == 1:
        assert "ganforge: training stopped: " in text, where
    if code == 0:
        assert "ganforge: error:" not in text, where
    if not text:
        assert code == 0, f"exit {code} without a word on stderr: {where}"
        return
    if text.startswith("usage: "):  # argparse (a value of the wrong type for an option): its usage and one error
        assert code == 2 and " error: " in lines[-1] and lines[-1].startswith("ganforge"), where
        return
    if code == 2:
        errors = [i for i, line in enumerate(lines) if line.startswith("ganforge: error: ")]
        assert len(errors) == 1, f"not exactly one error: {where}"
        before, paragraph = lines[: errors[0]], lines[errors[0] :]
        assert all(line.startswith(("ganforge: warning: ", *INFO_LINES)) for line in before), where
        assert "" not in (line.strip() for line in paragraph), f"more than one paragraph: {where}"
    # Whatever else is said comes from ganforge, with its prefix (a warning, the stop of a training) or known words.
    for line in lines:
        if line.startswith("ganforge"):
            assert line.startswith(
                ("ganforge: error: ", "ganforge: warning: ", "ganforge: training stopped: ", "ganforge: checkpoint ")
            ), where


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under `folder` (except the lock's advisory file) with its mode and bytes."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mode, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


# --------------------------------------------------------------------------- the prepared runs


class Runs:
    """The prepared runs: img, a finished 2-step digits run with EMA (checkpoints at steps 1 and 2); ring, a finished
    2-step run on the 2-D ring; scratch, where each case gets fresh folders; before, their snapshots."""

    def __init__(self, img: Path, ring: Path, scratch: Path, before: dict[str, dict[str, tuple[int, bytes]]]) -> None:
        self.img, self.ring, self.scratch, self.before = img, ring, scratch, before
        self.ids = count()

    def __repr__(self) -> str:  # hypothesis prints its arguments: not the snapshots
        return f"Runs({self.img.parent})"

    def fresh(self, name: str = "case") -> Path:
        """A path under scratch that does not exist yet."""
        return self.scratch / f"{name}{next(self.ids)}"

    def copy(self, which: str = "img") -> Path:
        dest = self.fresh(f"copy_{which}_")
        shutil.copytree(getattr(self, which), dest)
        return dest

    def assert_untouched(self) -> None:
        for name in ("img", "ring"):
            now = snapshot(getattr(self, name))
            before = self.before[name]
            changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
            assert not changed, f"the {name} run folder changed: {changed}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    root = tmp_path_factory.mktemp("fuzz")
    scratch = root / "scratch"
    scratch.mkdir()
    img, ring = root / "runs" / "digits", root / "runs" / "ring"
    assert (
        main(
            [
                "train",
                "demo",
                "--out",
                str(img),
                "--steps",
                "2",
                "--quiet",
                "train.batch_size=8",
                "model.generator.args.width=4",
                "model.discriminator.args.width=4",
                "train.n_samples=4",
                "train.sample_every=1",
                "train.checkpoint_every=1",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "train",
                "gan-toy",
                "--out",
                str(ring),
                "--steps",
                "2",
                "--quiet",
                "data.name=ring",
                "train.batch_size=16",
                "data.n_points=200",
            ]
        )
        == 0
    )
    assert (img / "generator_ema.safetensors").is_file() and len(list((img / "checkpoints").glob("*.pt"))) == 2
    cwd, data_env = os.getcwd(), os.environ.get("GANFORGE_DATA")
    # Relative paths from fuzzed values (data.root=foo, data.path=bar) and downloads land in scratch, not the repo.
    os.chdir(scratch)
    os.environ["GANFORGE_DATA"] = str(root / "data")
    try:
        yield Runs(img, ring, scratch, {"img": snapshot(img), "ring": snapshot(ring)})
    finally:
        os.chdir(cwd)
        if data_env is None:
            os.environ.pop("GANFORGE_DATA", None)
        else:
            os.environ["GANFORGE_DATA"] = data_env


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    """Print the cases tried per command when the module finishes (visible with -s)."""
    yield
    total = sum(TRIED.values())
    by = ", ".join(f"{k} {v}" for k, v in sorted(TRIED.items()))
    print(f"\nfuzz cases tried: {total} ({by}); exceptions escaping main: {len(TRACEBACKS)}")


def cleanup(*paths: Path) -> None:
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists():
            p.unlink()


# --------------------------------------------------------------------------- 1. the hostile probes, one row each


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


TRAIN_OVERRIDES = [
    "optim.g.lr=nan",
    "optim.g.lr=inf",
    "model.z_dim=1e8",
    "model.z_dim=100000000",
    "data.image_size=1e5",
    "data.image_size=100000",
    "model.generator.args.width=0",
    "model.generator.args.width=-3",
    "train.threads=-1",
    "seed=1e20",
    "train=5",
    # found by the fuzzer: torch aborted the process (libgomp) / overflowed, instead of a user error
    "train.threads=100000000",
    "data.n_points=100000000000000000000",
    # found by the fuzzer: torch's optimisers raised ValueError when the networks were built
    "optim.g.betas=[1.0, 0.999]",
    "optim.d.eps=-1",
]


@pytest.mark.parametrize("override", TRAIN_OVERRIDES, ids=TRAIN_OVERRIDES)
def test_hostile_train_override_exits_2(runs: Runs, override: str) -> None:
    out = runs.fresh()
    recipe = ["gan-toy", "data.name=ring", "data.n_points=200"] if override.startswith("data.n_points") else ["demo"]
    small = SMALL if recipe == ["demo"] else SMALL[:3]  # --steps 1 --quiet
    code, err = cli("train", *recipe, "--out", out, *small, override)
    assert_promise(code, err, override)
    assert code == 2 and "ganforge: error:" in err, err
    assert not (out / "checkpoints").exists()
    runs.assert_untouched()


def _train_case(kind: str, runs: Runs) -> list[object]:
    """argv of the train cases that need a file or folder made first."""
    out = runs.fresh()
    if kind == "seed-option-1e20":
        return ["train", "demo", "--seed", "1e20", "--out", out, *SMALL]
    if kind == "recipe-without-generator-name":
        return [
            "train",
            _write(runs.fresh("r").with_suffix(".yaml"), "model: {generator: {args: {width: 8}}}\n"),
            "--out",
            out,
            *SMALL,
        ]
    if kind == "regulariser-without-name":
        return [
            "train",
            _write(runs.fresh("r").with_suffix(".yaml"), "regularizers: [{weight: 1}]\n"),
            "--out",
            out,
            *SMALL,
        ]
    if kind == "recipe-is-a-folder":
        folder = runs.fresh("dir")
        folder.mkdir()
        return ["train", folder, "--out", out, *SMALL]
    if kind == "out-is-a-file":
        return ["train", "demo", "--out", _write(out, "not a folder"), *SMALL]
    if kind == "out-is-the-finished-run":  # a fresh start into an existing run: refused, the run untouched
        return ["train", "demo", "--out", runs.img, *SMALL]
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "seed-option-1e20",
        "recipe-without-generator-name",
        "regulariser-without-name",
        "recipe-is-a-folder",
        "out-is-a-file",
        "out-is-the-finished-run",
    ],
)
def test_hostile_train_input_exits_2(runs: Runs, kind: str) -> None:
    argv = _train_case(kind, runs)
    code, err = cli(*argv)
    assert_promise(code, err, argv)
    assert code == 2 and "error:" in err, err
    runs.assert_untouched()


def _edit_width(text: str) -> str:
    data = yaml.safe_load(text)
    data["model"]["generator"]["args"]["width"] = 8
    return yaml.safe_dump(data)


@pytest.mark.parametrize(
    "edit",
    [
        _edit_width,
        lambda t: "model: [unclosed",
        lambda t: "",
        lambda t: "just text\n",
        lambda t: "\x00\xff binary",
        lambda t: t.replace("train:", "train: 5\nx:", 1),
    ],
    ids=["other-width", "malformed", "emptied", "a-string", "binary", "bad-structure"],
)
def test_resume_with_an_edited_config_yaml_exits_2_and_changes_nothing(runs: Runs, edit) -> None:
    run = runs.copy()
    cfg = run / "config.yaml"
    cfg.write_text(edit(cfg.read_text()))
    before = snapshot(run)
    code, err = cli("train", "--resume", run, "--steps", "3", "--quiet")
    assert_promise(code, err, edit)
    assert code == 2 and "config.yaml" in err, err
    assert snapshot(run) == before
    runs.assert_untouched()
    cleanup(run)


def _sample_case(kind: str, runs: Runs) -> tuple[list[object], int, str]:
    """(argv, expected exit status, a fragment of stderr)."""
    png = runs.fresh("s").with_suffix(".png")
    if kind == "truncation-1e-30":
        return ["sample", runs.img, "--truncation", "1e-30", "--out", png], 2, "--truncation"
    if kind == "out-existing-folder":
        return ["sample", runs.img, "--out", runs.scratch], 2, "existing folder"
    if kind == "out-is-the-run-folder":
        return ["sample", runs.img, "--out", runs.img], 2, "existing folder"
    if kind == "nrow-0":
        return ["sample", runs.img, "--nrow", "0", "--out", png], 2, "--nrow"
    if kind == "n-0":
        return ["sample", runs.img, "--n", "0", "--out", png], 2, "--n"
    if kind == "class-on-unconditional":
        return ["sample", runs.img, "--class", "5", "--out", png], 2, "unconditional"
    if kind == "seed-2**64":  # found by the fuzzer: torch's "Overflow when unpacking long long" escaped
        return ["sample", runs.img, "--seed", str(2**64), "--out", png], 2, "--seed"
    if kind == "truncated-ema-copy":
        run = runs.copy()
        ema = run / "generator_ema.safetensors"
        ema.write_bytes(ema.read_bytes()[:100])
        return ["sample", run, "--n", "4", "--out", png], 0, "generator.safetensors"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "truncation-1e-30",
        "out-existing-folder",
        "out-is-the-run-folder",
        "nrow-0",
        "n-0",
        "class-on-unconditional",
        "seed-2**64",
        "truncated-ema-copy",
    ],
)
def test_hostile_sample_input(runs: Runs, kind: str) -> None:
    argv, expected, fragment = _sample_case(kind, runs)
    code, err = cli(*argv)
    assert_promise(code, err, argv)
    assert code == expected and fragment in err, err
    assert err.startswith("ganforge: error:" if expected == 2 else "ganforge: warning:"), err
    runs.assert_untouched()


def _eval_case(kind: str, runs: Runs) -> list[object]:
    if kind == "json-existing-folder":
        return ["eval", runs.img, "--json", runs.scratch, "--n", "8"]
    if kind == "json-is-the-run-folder":
        return ["eval", runs.img, "--json", runs.img, "--n", "8"]
    if kind == "batch-0":
        return ["eval", runs.img, "--batch", "0", "--n", "8"]
    if kind == "missing-path":
        return ["eval", runs.scratch / "no" / "such" / "run"]
    if kind == "cond_acc-unconditional":
        return ["eval", runs.img, "--metrics", "cond_acc", "--n", "8"]
    if kind == "metrics-nonsense":
        return ["eval", runs.img, "--metrics", "nonsense", "--n", "8"]
    if kind == "n-1":
        return ["eval", runs.ring, "--n", "1"]
    if kind == "seed-negative":
        return ["eval", runs.ring, "--n", "8", "--seed", "-1"]
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "json-existing-folder",
        "json-is-the-run-folder",
        "batch-0",
        "missing-path",
        "cond_acc-unconditional",
        "metrics-nonsense",
        "n-1",
        "seed-negative",
    ],
)
def test_hostile_eval_input_exits_2(runs: Runs, kind: str) -> None:
    argv = _eval_case(kind, runs)
    code, err = cli(*argv)
    assert_promise(code, err, argv)
    assert code == 2 and err.startswith("ganforge: error:"), err
    runs.assert_untouched()


def _damaged_checkpoint(runs: Runs, how: str) -> Path:
    """A copy of the digits run whose only checkpoint unpickles safely but is damaged in one way."""
    run = runs.copy()
    (run / "checkpoints" / "step_0000002.pt").unlink()
    path = run / "checkpoints" / "step_0000001.pt"
    ckpt = torch.load(path, weights_only=True)
    if how == "no-opt_d":
        del ckpt["opt_d"]
    elif how == "latent-of-text":
        ckpt["latent"] = {"z_dim": 64, "categorical": ["x"]}
    elif how == "config-not-yaml":
        ckpt["config"] = "model: {generator: [unclosed"
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("how", ["no-opt_d", "latent-of-text", "config-not-yaml"])
def test_found_by_fuzzing_damaged_checkpoint_contents(runs: Runs, how: str) -> None:
    """Before: KeyError (resume), TypeError or yaml's ParserError (sample) escaped as tracebacks."""
    ckpt = _damaged_checkpoint(runs, how)
    run = ckpt.parent.parent
    before = snapshot(run)
    for argv in (
        ["sample", ckpt, "--n", "4", "--out", runs.fresh("s").with_suffix(".png")],
        ["train", "--resume", run, "--steps", "2", "--quiet"],
    ):
        code, err = cli(*argv)
        assert_promise(code, err, argv)
        # sample needs only G, config, shape and latent; resume rebuilds the latent space from the recipe
        refused = {"no-opt_d": ("train",), "latent-of-text": ("sample",), "config-not-yaml": ("sample", "train")}
        if argv[0] in refused[how]:
            assert code == 2, err
        if argv[0] == "sample" or code == 2:
            assert snapshot(run) == before
        if code == 0:
            break  # a resume that went ahead has written its run, as asked
    runs.assert_untouched()
    cleanup(run)


@pytest.mark.parametrize(
    "header",
    [
        b"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }}",
        b"{'descr': '<f4', 'fortran_order': False, 'shape': (3,",
    ],
)
def test_found_by_fuzzing_damaged_npy_header(runs: Runs, header: bytes) -> None:
    """Before: numpy's header parser raised SyntaxError / tokenize.TokenError through `train`."""
    path = runs.fresh("points").with_suffix(".npy")
    header = header + b" " * (63 - len(header) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\x00" * 24)
    argv = [
        "train",
        "gan-toy",
        "data.name=points",
        f"data.path={path}",
        "--out",
        runs.fresh(),
        "--steps",
        "1",
        "--quiet",
        "train.batch_size=2",
    ]
    code, err = cli(*argv)
    assert_promise(code, err, argv)
    assert code == 2 and "not a valid .npy array" in err, err
    runs.assert_untouched()


# --------------------------------------------------------------------------- strategies


def schema_keys(cls: type = Recipe, prefix: str = "") -> list[str]:
    """Every dotted key of the recipe schema, sections included (setting a section to a value is an error)."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key, tp = prefix + f.name, hints[f.name]
        keys.append(key)
        if dataclasses.is_dataclass(tp):
            keys += schema_keys(tp, key + ".")
    return keys


KEYS = [
    *schema_keys(),
    "model.generator.args.width",
    "model.discriminator.args.width",
    "model.generator.args.norm",
    "model.discriminator.args.minibatch_kernels",
    "model.discriminator.args.cond",
    "model.generator.args.hidden",
    "game.args.pack",
    "game.args.unroll",
    "loss.args.real_label",
    "loss.args.a",
    "regularizers",
    "regularizers.0.name",
    "model.generator.args",
    "train.ema",
    "model.latent.categorical.0",
    "optim.g.betas",
]
assert {"train.steps", "optim.g.lr", "model.generator.name", "train.ema.decay", "data.n_points"} <= set(KEYS)

NAMES = [
    "dcgan",
    "mlp",
    "resnet",
    "biggan",
    "began",
    "infogan",
    "ssgan",
    "hinge",
    "wasserstein",
    "minimax",
    "least_squares",
    "rahinge",
    "standard",
    "acgan",
    "unrolled",
    "extragradient",
    "semi_supervised",
    "r1",
    "gradient_penalty",
    "weight_clip",
    "instance_noise",
    "ring",
    "grid",
    "digits",
    "points",
    "folder",
    "mnist",
    "cifar10",
    "fashion_mnist",
    "stacked",
    "fp32",
    "bf16",
    "fp16",
    "auto",
    "cpu",
    "cuda",
    "cuda:7",
    "mps",
    "linear",
    "constant",
    "sgd",
    "rmsprop",
    "optimistic_adam",
    "d",
    "g",
    "both",
    "none",
    "pad",
    "resize",
    "test",
    "virtual_batch",
    "projection",
    "concat",
    "fd",
    "fd,is",
    "coverage",
    "nonsense",
]

YAML_SNIPPETS = [
    "[1,2]",
    "[1, 2, 3]",
    "{a: 1}",
    "{}",
    "[]",
    "null",
    "~",
    "true",
    "false",
    "yes",
    "'quoted'",
    "[unclosed",
    "{a: [1",
    "!!python/object/apply:os.system ['echo pwned']",
    "&a [*a]",
    "*undefined",
    "0x10",
    "0o17",
    "1_000",
    ".inf",
    "-.inf",
    ".nan",
    "2020-01-01",
    "{name: r1, weight: 1}",
    "[{name: r1}]",
    "[{weight: 1}]",
    "[0.5]",
    "[0.5, 0.999, 3]",
    "['a', 'b']",
    "1e-4",
    "1e5",
    "- a\n- b",
    "a: b: c",
    "\t",
    "%YAML 1.1",
    "--- !!binary aGVsbG8=",
    "[10]",
    "[0]",
    "[-1]",
]


# Valid values that are legitimately expensive (the user asked for them; they are not mistakes): the fuzzer does
# not pay for them. Huge values of these keys are still tried where they are invalid (out of the checked range).
# Keyed by the last part of the dotted key, so a recipe document is screened the same way.
def _number(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if v == v else None


COSTLY = {
    "compile": lambda v: v is True,  # torch.compile: most of a minute on the CPU
    "n_critic": lambda v: (_number(v) or 0) > 16,  # critic steps per generator step
    "image_size": lambda v: 64 < (_number(v) or 0) <= 4096,  # activations grow as size^2 (4096: tens of GB)
    "name": lambda v: v in ("fashion_mnist", "stacked"),  # 70,000 images to read for one step
    "every": lambda v: (_number(v) or 0) >= 1,  # metrics during training (eval.every: FD every step)
    "threads": lambda v: 16 < (_number(v) or 0) <= 1024,  # oversubscribes the test's cores
}


def _yaml(text: str) -> object:
    """A value as parse_override reads it (text that is not YAML stays text)."""
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except Exception:
        return text


def _int(text: str) -> int | None:
    """An option value as an integer, if it reads as one."""
    v = _number(_yaml(text))
    return int(v) if v is not None and abs(v) != float("inf") and v.is_integer() else None


def _outside(v: object) -> bool:
    """A path-like string that could make a fuzz case write outside its scratch folder (data.root=/x)."""
    return isinstance(v, str) and (v.strip().startswith(("/", "~")) or ".." in v)


def costly_or_outside(node: object, seen: frozenset[int] = frozenset()) -> bool:
    """Does a recipe document (or {key: value}) ask for something expensive or name an absolute path?"""
    if isinstance(node, (dict, list)):
        if id(node) in seen:  # a YAML alias loop (&a [*a])
            return False
        seen = seen | {id(node)}
    if isinstance(node, dict):
        return any(
            (isinstance(k, str) and k in COSTLY and COSTLY[k](v)) or _outside(k) or costly_or_outside(v, seen)
            for k, v in node.items()
        )
    if isinstance(node, list):
        return any(costly_or_outside(v, seen) for v in node)
    return _outside(node) or node in ("fashion_mnist", "stacked")


text_no_nul = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
integers = st.one_of(
    st.integers(-3, 24), st.sampled_from([0, -1, 10**20, -(10**20), 2**63, 2**63 - 1, 2**64, -(2**63), 10**400])
)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e-30", "1e308", "1e5", "0.5", "-0.0", "1.5", "2.0"]),
)
values = st.one_of(integers.map(str), floats, text_no_nul, st.sampled_from(YAML_SNIPPETS), st.sampled_from(NAMES))
keys = st.one_of(
    st.sampled_from(KEYS),
    st.sampled_from(KEYS).map(lambda k: k + "x"),
    text_no_nul,
    st.sampled_from(KEYS).flatmap(lambda k: text_no_nul.map(lambda t: f"{k}.{t}")),
)


def cheap(key: str, value: str) -> bool:
    return not costly_or_outside({key.strip().split(".")[-1]: _yaml(value)})


# --------------------------------------------------------------------------- 3a. random overrides


def _check_random_override(runs: Runs, key: str, value: str) -> None:
    assume(cheap(key, value))
    out = runs.fresh("ov")
    argv = ["train", "demo", "--out", out, *SMALL, f"{key}={value}"]  # last: it may override SMALL
    code, err = cli(*argv)
    assert_promise(code, err, argv)
    runs.assert_untouched()
    cleanup(out)


@fuzz(40)
@given(key=keys, value=values)
def test_random_overrides_keep_the_promise(runs: Runs, key: str, value: str) -> None:
    _check_random_override(runs, key, value)


@pytest.mark.slow
@fuzz(300)
@given(key=keys, value=values)
def test_random_overrides_keep_the_promise_long(runs: Runs, key: str, value: str) -> None:
    _check_random_override(runs, key, value)


# --------------------------------------------------------------------------- 3b. random recipe documents

scalars = st.one_of(
    st.none(),
    st.booleans(),
    integers,
    st.floats(allow_nan=True, allow_infinity=True),
    text_no_nul,
    st.sampled_from(NAMES),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(
                st.sampled_from(KEYS).map(lambda k: k.split(".")[-1]), text_no_nul, st.integers(-2, 2), st.none()
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=10,
)
recipe_sections = st.fixed_dictionaries(
    {},
    optional={
        "model": st.fixed_dictionaries(
            {},
            optional={
                "generator": documents,
                "discriminator": documents,
                "z_dim": documents,
                "latent": documents,
                "conditional": documents,
            },
        ),
        "loss": documents,
        "game": documents,
        "regularizers": documents,
        "data": documents,
        "optim": st.fixed_dictionaries({}, optional={"g": documents, "d": documents}),
        "train": documents,
        "eval": documents,
        "seed": documents,
    },
)
recipe_texts = st.one_of(
    documents.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
    recipe_sections.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
    text_no_nul,
    st.binary(max_size=64).map(lambda b: b.decode("latin-1")),
    st.sampled_from(YAML_SNIPPETS),
)


def _check_random_recipe(runs: Runs, text: str) -> None:
    path = runs.fresh("recipe").with_suffix(".yaml")
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    assume(not costly_or_outside(_yaml(text)))
    out = runs.fresh("rec")
    argv = ["train", path, "--out", out, *SMALL]
    code, err = cli(*argv)
    assert_promise(code, err, f"{argv}\n{text!r}")
    runs.assert_untouched()
    cleanup(out, path)


@fuzz(30)
@given(text=recipe_texts)
def test_random_recipe_files_keep_the_promise(runs: Runs, text: str) -> None:
    _check_random_recipe(runs, text)


@pytest.mark.slow
@fuzz(300)
@given(text=recipe_texts)
def test_random_recipe_files_keep_the_promise_long(runs: Runs, text: str) -> None:
    _check_random_recipe(runs, text)


# --------------------------------------------------------------------------- 3c. random bytes as data and checkpoints


def _png(width: int, height: int, raw: bytes, depth: int = 8, colour: int = 0) -> bytes:
    """A PNG whose header says width x height (the data need not match)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _valid_png(seed: int, mode: str = "RGB", size: tuple[int, int] = (10, 12)) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr[..., 0] if channels == 1 else arr, mode).save(buf, format="PNG")
    return buf.getvalue()


def _mutate(data: bytes, cut: int, flips: list[tuple[int, int]]) -> bytes:
    """Flip bytes at the given (position, xor) pairs, then truncate at `cut` (0: keep all)."""
    b = bytearray(data)
    for pos, x in flips:
        if b:
            b[pos % len(b)] ^= x or 1
    return bytes(b[: cut % (len(b) + 1)] if cut else b)


flips = st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 255)), max_size=4)
image_bytes = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda seed, cut, f: _mutate(_valid_png(seed), cut, f), st.integers(0, 3), st.integers(0, 400), flips),
    st.sampled_from(
        [
            _png(100_000, 100_000, b"\x00" * 64),  # a decompression bomb's header
            _png(0, 5, b""),
            _png(1, 1, b"\x00\x00"),
            _png(2, 2, b"\x00" * 20, depth=16),
            _png(1, 4000, b"\x00" * 4005),  # 1 x 4000: an extreme aspect ratio
            _valid_png(7, "RGBA"),
            _valid_png(8, "L"),
            _valid_png(9, "RGB", (1, 1)),
            b"",
            b"GIF89a" + b"\x00" * 20,
            b"\xff\xd8\xff\xe0" + b"\x00" * 30,
            b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        ]
    ),
)
image_names = st.sampled_from(["x.png", "x.jpg", "x.jpeg", "x.bmp", "x.webp", "sub/x.png", "X.PNG", ".hidden.png"])


def _check_image_folder(runs: Runs, data: bytes, name: str, n_valid: int) -> None:
    folder = runs.fresh("images")
    folder.mkdir()
    for i in range(n_valid):
        (folder / f"ok{i}.png").write_bytes(_valid_png(i))
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    out = runs.fresh("folder")
    argv = [
        "train",
        "dcgan-folder",
        f"data.path={folder}",
        "data.image_size=8",
        "--out",
        out,
        *SMALL,
        "train.batch_size=2",
        "model.z_dim=8",
        "eval.every=0",
    ]  # the recipe's own in-training eval: not the subject
    code, err = cli(*argv)
    assert_promise(code, err, f"{argv}\n{data[:80]!r}")
    if n_valid >= 2:
        assert code in (0, 1), err  # the good images are enough: a bad file is skipped with a warning
    runs.assert_untouched()
    cleanup(out, folder)


@fuzz(15)
@given(data=image_bytes, name=image_names, n_valid=st.sampled_from([0, 1, 3]))
def test_random_image_bytes_in_a_folder(runs: Runs, data: bytes, name: str, n_valid: int) -> None:
    _check_image_folder(runs, data, name, n_valid)


@pytest.mark.slow
@fuzz(120)
@given(data=image_bytes, name=image_names, n_valid=st.sampled_from([0, 1, 3]))
def test_random_image_bytes_in_a_folder_long(runs: Runs, data: bytes, name: str, n_valid: int) -> None:
    _check_image_folder(runs, data, name, n_valid)


def _npy(shape: tuple[int, ...], dtype: str, fill: str) -> bytes:
    buf = io.BytesIO()
    if dtype == "object":
        arr = np.empty(shape, dtype=object)
    else:
        arr = np.zeros(shape, dtype=dtype)
        if arr.size and fill != "zeros" and np.issubdtype(arr.dtype, np.floating):
            with np.errstate(over="ignore"):  # 1e300 in float16/float32 is inf: also a case
                arr.flat[0] = {"nan": np.nan, "inf": np.inf, "huge": 1e300}.get(fill, 1.0)
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


npy_bytes = st.one_of(
    st.binary(max_size=200),
    st.builds(
        _npy,
        st.one_of(
            st.tuples(st.integers(0, 12)),
            st.tuples(st.integers(0, 12), st.integers(0, 5)),
            st.tuples(st.integers(0, 6), st.integers(1, 3), st.integers(1, 3)),
            st.just(()),
        ),
        st.sampled_from(
            [
                "float32",
                "float64",
                "float16",
                "int64",
                "uint8",
                "bool",
                "complex64",
                "U3",
                "object",
                ">f8",
                "datetime64[s]",
            ]
        ),
        st.sampled_from(["zeros", "ones", "nan", "inf", "huge"]),
    ),
    st.builds(lambda cut, f: _mutate(_npy((12, 2), "float32", "ones"), cut, f), st.integers(0, 300), flips),
    st.sampled_from(
        [  # a header that promises 10^12 points in 8 bytes of data
            b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 2), }"
            + b" " * 41
            + b"\n"
            + b"\x00" * 8,
            b"\x93NUMPY\x01\x00\x00\x00",
            b"\x93NUMPY\x09\x09" + b"\x00" * 20,
        ]
    ),
)


def _check_points_file(runs: Runs, data: bytes) -> None:
    path = runs.fresh("points").with_suffix(".npy")
    path.write_bytes(data)
    out = runs.fresh("pts")
    argv = [
        "train",
        "gan-toy",
        "data.name=points",
        f"data.path={path}",
        "--out",
        out,
        "--steps",
        "1",
        "--quiet",
        "train.batch_size=4",
        "train.sample_every=1",
        "train.checkpoint_every=1",
        "model.generator.args.hidden=8",
        "model.discriminator.args.hidden=8",
    ]
    code, err = cli(*argv)
    assert_promise(code, err, f"{argv}\n{data[:120]!r}")
    runs.assert_untouched()
    cleanup(out, path)


@fuzz(20)
@given(data=npy_bytes)
def test_random_npy_points(runs: Runs, data: bytes) -> None:
    _check_points_file(runs, data)


@pytest.mark.slow
@fuzz(200)
@given(data=npy_bytes)
def test_random_npy_points_long(runs: Runs, data: bytes) -> None:
    _check_points_file(runs, data)


class Blob(bytes):
    def __repr__(self) -> str:  # hypothesis prints the arguments of every example
        return f"<{len(self)} bytes>"


@pytest.fixture(scope="module")
def real_checkpoint(runs: Runs) -> bytes:
    return Blob((runs.img / "checkpoints" / "step_0000001.pt").read_bytes())


def _edited_checkpoint(real: bytes, key: str, how: str, value: object) -> bytes:
    """The real checkpoint with one entry removed or replaced (still a weights_only-safe file)."""
    ckpt = torch.load(io.BytesIO(real), weights_only=True)
    path = key.split("/")
    node = ckpt
    for part in path[:-1]:
        node = node.get(part, {}) if isinstance(node, dict) else {}
    if isinstance(node, dict):
        if how == "delete":
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


CKPT_KEYS = [
    "format",
    "ganforge",
    "step",
    "elapsed",
    "config",
    "shape",
    "latent",
    "G",
    "D",
    "ema",
    "opt_g",
    "opt_d",
    "sched_g",
    "sched_d",
    "scaler_g",
    "scaler_d",
    "game",
    "data",
    "noise",
    "rng",
    "best",
    "rng/torch",
    "opt_g/state",
    "opt_g/param_groups",
    "data/position",
    "G/net.0.weight",
    "latent/z_dim",
]
ckpt_values = st.one_of(
    st.none(),
    st.booleans(),
    integers,
    st.floats(allow_nan=True, allow_infinity=True),
    text_no_nul,
    st.lists(st.integers(-2, 64), max_size=3),
    st.dictionaries(text_no_nul, integers, max_size=2),
    st.sampled_from([torch.zeros(0), torch.full((2, 2), float("nan")), torch.ones(3, dtype=torch.int8)]),
)


def checkpoint_bytes(real: bytes):
    return st.one_of(
        st.binary(max_size=300),
        st.builds(lambda cut, f: _mutate(real, cut, f), st.integers(0, len(real)), flips),
        st.builds(
            lambda k, how, v: _edited_checkpoint(real, k, how, v),
            st.sampled_from(CKPT_KEYS),
            st.sampled_from(["delete", "replace"]),
            ckpt_values,
        ),
    )


def _check_checkpoint(runs: Runs, data: bytes) -> None:
    run = runs.copy()
    for p in (run / "checkpoints").glob("*.pt"):
        p.unlink()
    ckpt = run / "checkpoints" / "step_0000001.pt"
    ckpt.write_bytes(data)
    before = snapshot(run)
    png = runs.fresh("s").with_suffix(".png")
    code, err = cli("sample", ckpt, "--n", "4", "--out", png)
    assert_promise(code, err, f"sample {data[:80]!r}")
    assert snapshot(run) == before, "sample changed the run it read"
    if code == 0:  # a checkpoint sample could load: evaluating it must also keep the promise (else it fails fast)
        code, err = cli("eval", ckpt, "--n", "8", "--batch", "8", "--metrics", "fd")
        assert_promise(code, err, f"eval {data[:80]!r}")
        assert snapshot(run) == before, "eval changed the run it read"
    code, err = cli("train", "--resume", run, "--steps", "2", "--quiet")
    assert_promise(code, err, f"resume {data[:80]!r}")
    if code == 2:
        assert snapshot(run) == before, "a refused resume changed the run"
    runs.assert_untouched()
    cleanup(run, png)


@fuzz(20)
@given(data=st.data())
def test_random_checkpoint_bytes(runs: Runs, real_checkpoint: bytes, data) -> None:
    _check_checkpoint(runs, data.draw(checkpoint_bytes(real_checkpoint)))


@pytest.mark.slow
@fuzz(150)
@given(data=st.data())
def test_random_checkpoint_bytes_long(runs: Runs, real_checkpoint: bytes, data) -> None:
    _check_checkpoint(runs, data.draw(checkpoint_bytes(real_checkpoint)))


# --------------------------------------------------------------------------- 3d. random sample and eval options


small_ints = st.one_of(st.integers(-3, 12), st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**20]))
option_values = st.one_of(small_ints.map(str), floats, text_no_nul, st.sampled_from(NAMES))
out_names = st.one_of(
    st.sampled_from(["o.png", "o.jpg", "o.npy", "o.csv", "o.txt", "o", "d/o.png", "o.PNG"]), text_no_nul
)


def _inside(folder: Path, name: str) -> str:
    """A fuzzed output name under `folder` (never an absolute path or a way out of it); '' stays ''."""
    if not name.strip():
        return name
    return str(folder / name.lstrip("/~").replace("..", "__"))


def _sample_argv(runs: Runs, which: str, opts: dict[str, str], out: str) -> list[object]:
    argv: list[object] = ["sample", getattr(runs, which), "--out", _inside(runs.fresh("so"), out)]
    for k, v in opts.items():
        argv += [k, _inside(runs.fresh("si"), v) if k == "--individual" else v]
    return argv


def _check_sample_options(runs: Runs, which: str, opts: dict[str, str], out: str, no_ema: bool) -> None:
    n = _int(opts.get("--n", "4"))
    assume(n is None or n <= 64 or n > 10**12)  # a million samples is a valid (slow) request, not a mistake
    argv = _sample_argv(runs, which, opts, out) + (["--no-ema"] if no_ema else [])
    code, err = cli(*argv)
    assert_promise(code, err, argv)
    runs.assert_untouched()


sample_opts = st.dictionaries(
    st.sampled_from(["--n", "--nrow", "--seed", "--class", "--truncation", "--device", "--individual"]),
    option_values,
    max_size=4,
)


@fuzz(40)
@given(which=st.sampled_from(["img", "ring"]), opts=sample_opts, out=out_names, no_ema=st.booleans())
def test_random_sample_options(runs: Runs, which: str, opts: dict[str, str], out: str, no_ema: bool) -> None:
    _check_sample_options(runs, which, opts, out, no_ema)


@pytest.mark.slow
@fuzz(400)
@given(which=st.sampled_from(["img", "ring"]), opts=sample_opts, out=out_names, no_ema=st.booleans())
def test_random_sample_options_long(runs: Runs, which: str, opts: dict[str, str], out: str, no_ema: bool) -> None:
    _check_sample_options(runs, which, opts, out, no_ema)


eval_opts = st.dictionaries(
    st.sampled_from(["--n", "--batch", "--seed", "--truncation", "--metrics", "--extractor", "--device", "--json"]),
    st.one_of(
        option_values,
        st.sampled_from(["fd", "kid", "pr", "modes", "fd,modes", "is", "coverage,fd", "swd", "msssim", ",", ""]),
    ),
    max_size=4,
)


def _check_eval_options(runs: Runs, which: str, opts: dict[str, str]) -> None:
    opts = dict(opts)
    n = _int(opts.setdefault("--n", "8"))
    assume(n is None or n <= 64)  # --n is the number of samples scored: huge valid values are long, not wrong
    assume(opts.get("--extractor") != "inception")  # its weights are a download (refused offline, but slowly)
    if "--json" in opts:
        opts["--json"] = _inside(runs.fresh("ej"), opts["--json"])
    argv: list[object] = ["eval", getattr(runs, which)]
    for k, v in opts.items():
        argv += [k, v]
    code, err = cli(*argv)
    assert_promise(code, err, argv)
    runs.assert_untouched()


@fuzz(15)
@given(which=st.sampled_from(["img", "ring"]), opts=eval_opts)
def test_random_eval_options(runs: Runs, which: str, opts: dict[str, str]) -> None:
    _check_eval_options(runs, which, opts)


@pytest.mark.slow
@fuzz(120)
@given(which=st.sampled_from(["img", "ring"]), opts=eval_opts)
def test_random_eval_options_long(runs: Runs, which: str, opts: dict[str, str]) -> None:
    _check_eval_options(runs, which, opts)


# --------------------------------------------------------------------------- the tally


def test_zz_no_exception_escaped_and_counts(runs: Runs) -> None:
    """Last in the file: every case above ran through `cli` without an escaping exception."""
    runs.assert_untouched()
    assert not TRACEBACKS, "\n\n".join(TRACEBACKS)
    print(f"\ncases tried by command so far: {dict(sorted(TRIED.items()))}")
