"""The scripts in examples/ run end to end at their --tiny settings and write what they promise.

Each runs in a subprocess, as a user would run it; their full settings (minutes) are not run here.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

import ganforge

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SCRIPTS = ["own_training_loop", "custom_generator", "score_a_folder", "interpolation_gif"]
NUMBER = r"-?\d+\.\d+"


def run_example(name: str, out: Path, *args: str) -> str:
    """Run examples/NAME.py --tiny --out OUT from a scratch folder; its stdout (the test fails on a non-zero exit)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--tiny", "--out", str(out), *args],
        cwd=out.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, f"{name}.py exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_examples_use_only_the_public_api() -> None:
    """Every `ganforge.NAME` an example touches is in ganforge.__all__, and none imports a ganforge submodule."""
    found = sorted(p.stem for p in EXAMPLES.glob("*.py"))
    assert found == sorted(SCRIPTS), f"examples/ holds {found}: give a new script a test here and a --tiny mode"
    for name in SCRIPTS:
        tree = ast.parse((EXAMPLES / f"{name}.py").read_text())
        assert ast.get_docstring(tree), f"{name}.py has no module docstring"
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ganforge":
                assert node.attr in ganforge.__all__, f"{name}.py uses the private ganforge.{node.attr}"
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("ganforge"), f"{name}.py imports from {node.module}"
            if isinstance(node, ast.Import):
                assert all(a.name == "ganforge" or not a.name.startswith("ganforge.") for a in node.names), name


def test_own_training_loop(tmp_path: Path) -> None:
    out = tmp_path / "own"
    stdout = run_example("own_training_loop", out)
    for key in ("fd_digits", "precision_digits", "recall_digits"):
        assert re.search(rf"{key} = {NUMBER}", stdout), stdout
    assert (out / "samples.png").is_file() and (out / "generator_ema.pt").is_file()
    res = json.loads((out / "evaluation.json").read_text())
    assert set(res["metrics"]) == {"fd_digits", "precision_digits", "recall_digits"}
    assert res["protocol"]["generated"]["n"] == 100
    assert f"wrote {out / 'evaluation.json'}" in stdout


def test_custom_generator(tmp_path: Path) -> None:
    out = tmp_path / "custom"
    stdout = run_example("custom_generator", out)
    assert "status finished" in stdout and "UpsampleConvGenerator" in stdout, stdout
    assert re.search(rf"d_loss {NUMBER}\s+g_loss {NUMBER}", stdout), stdout
    assert "upsample_conv" in (out / "run" / "config.yaml").read_text()
    assert (out / "run" / "generator_ema.safetensors").is_file()
    with Image.open(out / "samples.png") as grid:
        assert grid.size[0] > 16 * 8


def test_score_a_folder(tmp_path: Path) -> None:
    out = tmp_path / "score"
    stdout = run_example("score_a_folder", out)
    assert len(list((out / "pngs").glob("*.png"))) == 60
    for key in ("fd_digits", "precision_digits", "recall_digits", "coverage_digits"):
        assert re.search(rf"{key} = {NUMBER}", stdout), stdout
    assert "extractor: digits" in stdout
    res = json.loads((out / "scores.json").read_text())
    assert res["protocol"]["generated"]["n"] == 60 and res["protocol"]["extractor"]["extractor"] == "digits"
    # Noisy real digits are far closer to the digits than an untrained generator's blobs (FD in the hundreds).
    assert res["metrics"]["fd_digits"] < 100


def test_interpolation_gif(tmp_path: Path) -> None:
    out = tmp_path / "gif"
    stdout = run_example("interpolation_gif", out)
    assert (out / "run" / "run.json").is_file()  # no --run: it trained one itself
    with Image.open(out / "interpolation.gif") as gif:
        assert gif.n_frames > 1
    assert f"wrote {out / 'interpolation.gif'}" in stdout
