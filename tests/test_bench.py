"""Benchmarks run and write their result files (numbers themselves are measured by `ganforge bench`)."""

from __future__ import annotations

import json
from pathlib import Path

from ganforge.benchmarks.speed import run_speed_bench


def test_speed_bench_writes_json_and_table(tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    res = run_speed_bench(out, batch_size=8, steps=1, repeats=1, compile=False, warmup=0)
    data = json.loads(out.read_text())
    names = [v["variant"] for v in data["variants"]]
    assert names[0] == "plain PyTorch fp32 NCHW" and "ganforge bf16 channels_last" in names
    assert all(v["images_per_s"] > 0 for v in data["variants"])
    assert data["variants"][0]["ratio_vs_plain_fp32"] == 1.0
    assert data["step_gflops"] > 0 and res["fastest"] in names
    assert "| variant |" in out.with_suffix(".md").read_text()
