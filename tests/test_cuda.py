"""The main paths on a CUDA GPU: training with double-backward penalties and EMA, sampling, evaluation, bench.

Skipped without a GPU (`pytest -m cuda` selects just these where one exists).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_recipe

from ganforge.cli import main
from ganforge.config import build_recipe
from ganforge.training import Trainer

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.mark.parametrize("precision", ["auto", "fp16", "fp32"])
def test_train_on_cuda_with_penalties_and_ema(tmp_path: Path, precision: str) -> None:
    raw = tiny_recipe(
        {"name": "digits", "image_size": 16},
        steps=12,
        train={
            "device": "cuda",
            "precision": precision,
            "channels_last": "auto",
            "ema": {"enabled": True, "decay": 0.9},
        },
        regularizers=[{"name": "r1", "weight": 1.0}, {"name": "gradient_penalty", "weight": 1.0, "every": 4}],
    )
    out = Trainer(build_recipe(raw), tmp_path / "run", progress=False).run()
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "finished" and info["device"].startswith("cuda")
    if precision == "auto":
        assert info["precision"] == ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(x["d_loss"])) for x in lines if "d_loss" in x)
    # Resume on the GPU continues from the checkpoint.
    assert main(["train", "--resume", str(out), "--steps", "14", "--quiet"]) == 0


def test_sample_and_eval_on_cuda(tmp_path: Path) -> None:
    raw = tiny_recipe({"name": "digits", "image_size": 16}, steps=4, train={"device": "cuda"})
    out = Trainer(build_recipe(raw), tmp_path / "run", progress=False).run()
    assert main(["sample", str(out), "--n", "16", "--out", str(tmp_path / "g.png"), "--device", "cuda"]) == 0
    js = tmp_path / "e.json"
    assert (
        main(["eval", str(out), "--n", "200", "--metrics", "fd,is,coverage", "--json", str(js), "--device", "cuda"])
        == 0
    )
    assert "fd_digits" in json.loads(js.read_text())["metrics"]


def test_speed_bench_on_cuda(tmp_path: Path) -> None:
    from ganforge.benchmarks.speed import run_speed_bench

    res = run_speed_bench(
        tmp_path / "speed.json", batch_size=16, steps=2, repeats=2, compile=False, warmup=1, device="cuda"
    )
    assert res["machine"]["gpu"] and all(r.get("images_per_s", 0) > 0 or r.get("skipped") for r in res["variants"])
