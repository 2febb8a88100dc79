"""What `auto` resolves to on each kind of hardware (capability checks monkeypatched), threads, and the speed bench."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_recipe

from ganforge.config import build_recipe, load_recipe
from ganforge.errors import ConfigError
from ganforge.training import Trainer, hardware
from ganforge.training.hardware import (
    available_cores,
    configure_threads,
    resolve_channels_last,
    resolve_device,
    resolve_precision,
)

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.fixture
def native_bf16(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: True)


@pytest.fixture
def avx2_only(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(hardware, "cpu_capability", lambda: "AVX2")


def gpu(monkeypatch, bf16: bool, major: int) -> None:
    monkeypatch.setattr(hardware, "cuda_bf16_supported", lambda: bf16)
    monkeypatch.setattr(hardware, "cuda_capability", lambda: (major, 0))


def test_cpu_with_native_bf16_picks_bf16(native_bf16) -> None:
    c = resolve_precision("auto", CPU)
    assert c.value == "bf16" and "natively" in c.reason


def test_cpu_without_native_bf16_picks_fp32(avx2_only) -> None:
    c = resolve_precision("auto", CPU)
    assert c.value == "fp32" and "no native bf16" in c.reason and "AVX2" in c.reason


def test_cuda_with_bf16_picks_bf16(monkeypatch) -> None:
    gpu(monkeypatch, bf16=True, major=8)
    assert resolve_precision("auto", CUDA).value == "bf16"


def test_cuda_without_bf16_picks_fp16_with_scaler(monkeypatch) -> None:
    gpu(monkeypatch, bf16=False, major=7)
    c = resolve_precision("auto", CUDA)
    assert c.value == "fp16" and "scaler" in c.reason


def test_old_cuda_picks_fp32(monkeypatch) -> None:
    gpu(monkeypatch, bf16=False, major=6)
    assert resolve_precision("auto", CUDA).value == "fp32"


def test_point_data_stays_fp32_even_with_native_bf16(native_bf16) -> None:
    assert resolve_precision("auto", CPU, is_image=False).value == "fp32"


@pytest.mark.parametrize("explicit", ["fp32", "bf16"])
def test_explicit_precision_is_honoured(native_bf16, explicit: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # native bf16: no warning either way
        assert resolve_precision(explicit, CPU).value == explicit


def test_explicit_bf16_without_native_bf16_runs_with_one_warning(avx2_only) -> None:
    with pytest.warns(UserWarning, match="slower.*train.precision=auto"):
        c = resolve_precision("bf16", CPU)
    assert c.value == "bf16"


def test_unknown_precision_lists_choices() -> None:
    with pytest.raises(ConfigError, match="auto, fp32, bf16, fp16"):
        resolve_precision("fp8", CPU)
    with pytest.raises(ConfigError, match="auto"):
        load_recipe("demo", ["train.precision=fp8"])
    with pytest.raises(ConfigError, match="channels_last"):
        load_recipe("demo", ["train.channels_last=sometimes"])


def test_channels_last_rules(monkeypatch) -> None:
    assert resolve_channels_last("auto", CPU, "fp32").value is True
    assert resolve_channels_last("auto", CPU, "bf16", is_image=False).value is False
    gpu(monkeypatch, bf16=True, major=8)
    assert resolve_channels_last("auto", CUDA, "bf16").value is True
    assert resolve_channels_last("auto", CUDA, "fp32").value is False
    assert resolve_channels_last(False, CPU, "bf16").value is False
    assert resolve_channels_last(True, CPU, "fp32", is_image=False).value is False


def test_every_shipped_recipe_lets_the_machine_decide() -> None:
    from ganforge.config import list_recipes

    for name in list_recipes():
        r = load_recipe(name)
        assert r.train.precision == "auto", name
        assert r.train.channels_last == "auto", name


def test_schema_default_is_auto() -> None:
    r = build_recipe({})
    assert r.train.precision == "auto" and r.train.channels_last == "auto" and r.train.device == "auto"


@pytest.mark.parametrize("native,expected", [(False, "fp32"), (True, "bf16")])
def test_trainer_records_the_resolved_precision(monkeypatch, tmp_path: Path, native: bool, expected: str) -> None:
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: native)
    raw = tiny_recipe(
        {"name": "digits", "image_size": 8}, steps=2, train={"precision": "auto", "channels_last": "auto"}
    )
    recipe = build_recipe(raw)
    out = Trainer(recipe, tmp_path / "run", progress=False).run()
    assert recipe.train.precision == "auto", "the caller's recipe is not modified"
    cfg_text = (out / "config.yaml").read_text()
    cfg = yaml.safe_load(cfg_text)
    assert cfg["train"]["precision"] == expected and cfg["train"]["channels_last"] is True
    assert f"precision auto -> {expected}" in cfg_text  # the reason, as a comment
    info = json.loads((out / "run.json").read_text())
    assert info["precision"] == expected
    assert info["settings"]["precision"] == {
        "requested": "auto",
        "value": expected,
        "reason": resolve_precision("auto", CPU).reason,
    }
    assert info["hardware"]["native_bf16"] is native
    # A resume reads config.yaml back: the resolved recipe is a valid recipe.
    build_recipe(yaml.safe_load(cfg_text))


def test_trainer_prints_the_choice_once(avx2_only, tmp_path: Path, capsys) -> None:
    raw = tiny_recipe({"name": "digits", "image_size": 8}, steps=1, train={"precision": "auto"})
    raw["train"]["progress"] = True
    Trainer(build_recipe(raw), tmp_path / "run").run()
    out = capsys.readouterr().out
    assert out.count("precision auto -> fp32: this CPU has no native bf16 (AVX2)") == 1


def test_device_resolution_and_errors(monkeypatch) -> None:
    assert resolve_device("cpu").type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type in ("cpu", "mps")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="not a device"):
        resolve_device("gpu0")


def test_train_device_flag_reaches_the_recipe(monkeypatch, tmp_path: Path, capsys) -> None:
    from ganforge.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc = main(["train", "demo", "--device", "cuda", "--out", str(tmp_path / "r"), "--steps", "1"])
    assert rc == 2 and "CUDA is not available" in capsys.readouterr().err


# ----------------------------------------------------------------------------- threads


def test_threads_explicit_env_and_default(monkeypatch) -> None:
    before = torch.get_num_threads()
    try:
        assert configure_threads(1).value == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert configure_threads(None).reason == "OMP_NUM_THREADS"
        monkeypatch.delenv("OMP_NUM_THREADS")
        monkeypatch.setattr(hardware, "available_cores", lambda: 1)
        c = configure_threads(None)
        assert c.value == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_available_cores_follows_affinity(monkeypatch) -> None:
    monkeypatch.setattr(hardware.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert available_cores() == 1


def test_busy_torch_process_is_noticed() -> None:
    code = "import torch, sys, time\nprint('ready', flush=True)\nt=time.time()\nwhile time.time()-t<20: pass\n"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        # Other busy torch processes (a benchmark, another test worker) may be listed too; on a loaded machine
        # the child may not have had the CPU in one sampling window, so a few windows are allowed.
        seen = []
        for _ in range(10):
            time.sleep(0.2)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                hardware.warn_if_cores_shared(CPU)
            seen = [str(w.message) for w in caught]
            if any(re.search(rf"PID [\d, ]*\b{child.pid}\b.*train.threads", m) for m in seen):
                break
        else:
            pytest.fail(f"the busy child (PID {child.pid}) was never reported; warnings: {seen}")
    finally:
        child.kill()
        child.wait()


# ----------------------------------------------------------------------------- speed bench


def test_matmul_peak_is_measured_in_bounded_size() -> None:
    from ganforge.benchmarks.speed import matmul_flops_per_s

    flops, n = matmul_flops_per_s(torch.float32, budget_s=1e-7)
    assert n == 256 and flops > 0  # no machine multiplies 256x256 in under 12 ns: the size never grows


def test_speed_bench_skips_what_the_cpu_cannot_run_natively(avx2_only, tmp_path: Path) -> None:
    from ganforge.benchmarks.speed import run_speed_bench

    res = run_speed_bench(tmp_path / "speed.json", batch_size=4, steps=1, repeats=1, compile=False, warmup=0)
    data = json.loads((tmp_path / "speed.json").read_text())
    rows = {r["variant"]: r for r in data["variants"]}
    assert "no native bf16" in rows["ganforge bf16 channels_last"]["skipped"]
    assert "bf16" in data["matmul_skipped"] and "bf16" not in data["matmul_gflops_per_s"]
    assert data["machine"]["native_bf16"] is False and data["machine"]["cpu_capability"] == "AVX2"
    assert data["auto"] == {"precision": "fp32", "channels_last": True}
    assert rows["ganforge fp32 channels_last"]["auto"] is True
    assert res["fastest"] in rows and "skipped: this CPU has no native bf16" in (tmp_path / "speed.md").read_text()
