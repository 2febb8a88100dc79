"""Benchmarks run and write their result files (numbers themselves are measured by `ganforge bench`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ganforge.benchmarks.speed import run_speed_bench


def test_speed_bench_writes_json_and_table(tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    res = run_speed_bench(out, batch_size=8, steps=1, repeats=1, compile=False, warmup=0)
    data = json.loads(out.read_text())
    names = [v["variant"] for v in data["variants"]]
    assert names[0] == "plain PyTorch fp32 NCHW" and "ganforge bf16 channels_last" in names
    # Timed, or skipped with the reason where this CPU has no native bf16 (never timed for minutes).
    assert all(v.get("images_per_s", 0) > 0 or v.get("skipped") for v in data["variants"])
    assert "cpu_capability" in data["machine"] and isinstance(data["machine"]["native_bf16"], bool)
    assert data["variants"][0]["ratio_vs_plain_fp32"] == 1.0
    assert data["step_gflops"] > 0 and res["fastest"] in names
    assert "| variant |" in out.with_suffix(".md").read_text()


def test_toy_bench_matrix_writes_results_pictures_and_resumes(tmp_path: Path) -> None:
    from ganforge.benchmarks.toy import run_toy_bench

    out = tmp_path / "toy"
    res = run_toy_bench(out, recipes=["gan-toy", "pacgan2-toy"], seeds=2, steps=4, workers=1, progress=False)
    data = json.loads((out / "toy.json").read_text())
    assert len(data["cells"]) == 2 * 2 * 2
    s = data["summary"]["gan-toy"]["grid"]
    assert s["seeds"] == 2 and 0 <= s["modes"]["mean"] <= 25 and 0 <= s["high_quality"]["mean"] <= 100
    assert data["summary"]["pacgan2-toy"]["ring"]["real_samples"] == 4 * 100 * 2  # packing doubles the real samples
    md = (out / "toy.md").read_text()
    assert "`gan-toy`" in md and "PacGAN4" in md and "ring modes (8)" in md and "| real data |" in md
    assert data["real_reference"]["grid"]["modes"]["mean"] == 25
    assert (out / "plots" / "gan-toy.png").stat().st_size > 1000
    # A second call finds every cell done and trains nothing.
    before = {p: p.stat().st_mtime for p in (out / "cells").iterdir()}
    run_toy_bench(out, recipes=["gan-toy", "pacgan2-toy"], seeds=2, steps=4, workers=1, progress=False)
    assert before == {p: p.stat().st_mtime for p in (out / "cells").iterdir()}
    assert res["settings"]["zoo_steps"] == 4


def test_toy_bench_rejects_unknown_recipe(tmp_path: Path) -> None:
    import pytest

    from ganforge.benchmarks.toy import run_toy_bench
    from ganforge.errors import ConfigError

    with pytest.raises(ConfigError, match="gan-toy"):
        run_toy_bench(tmp_path, recipes=["nope-toy"], workers=1, progress=False)


def test_fashion_bench_rows_write_table_extras_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two rows with paper-specific evidence (AC-GAN's conditional accuracy, BEGAN's M_global) at 2 steps each."""
    import pytest

    from ganforge.benchmarks.fashion import ROW_KEYS, run_fashion_bench
    from ganforge.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown row"):
        run_fashion_bench(tmp_path / "x", rows=["nope"], progress=False)
    from ganforge.data import load_dataset

    try:
        load_dataset("fashion_mnist", image_size=32, fit="pad", download=False)
    except Exception:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    from ganforge.benchmarks import fashion
    from ganforge.metrics.evaluate import Evaluator

    # The bench's reference is the 60k train split (two minutes of features on one core); a seeded 2,000-image
    # subset keeps this test about the table's plumbing, not the extractor's speed.
    train = load_dataset("fashion_mnist", image_size=32, fit="pad", download=False)
    small = train.subset(torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:2000])
    monkeypatch.setitem(fashion._EVALUATORS, 200, Evaluator(small, fashion.METRICS, extractor="fashion", n=200, seed=0))
    out = tmp_path / "fashion"
    res = run_fashion_bench(out, rows=["acgan", "began-0.3"], images=128, eval_n=200, workers=1, progress=False)
    assert [r["row"] for r in res["rows"]] == ["acgan", "began-0.3"] and "acgan" in ROW_KEYS
    acgan, began = res["rows"]
    assert acgan["g_images"] == 128 and acgan["steps"] == 2 and acgan["conditional"]
    assert 0.0 <= acgan["metrics"]["cond_acc_fashion"] <= 1.0
    assert "cond_acc_fashion" not in began["metrics"]
    assert began["extras"]["began"]["m_global_first"] > 0 and (out / "plots" / "began-0.3_convergence.png").is_file()
    floor = res["floor"]["metrics"]
    assert floor["fd_fashion"] < 5 and floor["cond_acc_fashion"] > 0.8  # real vs real; the classifier's accuracy
    md = (out / "fashion.md").read_text()
    assert "| real test vs train (floor) |" in md and "| acgan |" in md and "## BEGAN" in md
    before = {p: p.stat().st_mtime for p in (out / "cells").iterdir()}
    run_fashion_bench(out, rows=["acgan", "began-0.3"], images=128, eval_n=200, workers=1, progress=False)
    assert before == {p: p.stat().st_mtime for p in (out / "cells").iterdir()}


@pytest.mark.parametrize("which,fn,names_kw", [("toy", "run_toy_bench", "recipes"),
                                               ("fashion", "run_fashion_bench", "rows"),
                                               ("stacked", "run_stacked_bench", "rows")])
def test_bench_command_passes_rows_and_prints_where_results_went(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        which: str, fn: str, names_kw: str) -> None:
    import importlib

    from ganforge.cli import main

    seen: dict = {}

    def fake(out, **kw):
        seen.update(out=Path(out), **kw)
        (Path(out) / f"{which}.md").write_text(f"the {which} table\n")
        return {"wall_time_s": 12.0, "info": {"cells_run": 3, "wall_time_s": 12.0}}

    monkeypatch.setattr(importlib.import_module(f"ganforge.benchmarks.{which}"), fn, fake)
    assert main(["bench", which, "--out", str(tmp_path), "--recipes", " a, b,"]) == 0
    printed = capsys.readouterr().out
    assert seen["out"] == tmp_path and seen[names_kw] == ["a", "b"] and seen["quick"] is False
    assert f"the {which} table" in printed and str(tmp_path / f"{which}.json") in printed
    assert ("3 cells run now" if which == "stacked" else "wall time 12 s") in printed
