"""Data-parallel training on CPU with gloo: two processes give one process's update, EMA, evaluation and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dist_worker
import pytest
import torch

from ganforge.config import load_recipe
from ganforge.errors import ConfigError
from ganforge.training import Trainer, distributed
from ganforge.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("dist_worker.py")

# One step, fp32, plain SGD: the update is lr x the averaged gradient, so the comparison sees the
# synchronisation itself (Adam's first step is lr x sign(g), which turns rounding into sign flips where g ~ 0).
COMMON = [
    "train.steps=1",
    "train.batch_size=16",
    "train.precision=fp32",
    "train.log_every=1",
    "train.checkpoint_every=1",
    "train.sample_every=1000",
    "train.n_samples=4",
    "train.sync_batchnorm=true",
    "train.doctor.enabled=false",
    "optim.g.name=sgd",
    "optim.d.name=sgd",
    "optim.g.lr=0.05",
    "optim.d.lr=0.05",
    "data.n_points=2000",
    "model.generator.args.hidden=32",
    "model.discriminator.args.hidden=32",
]
CASES = {
    "ns_r1": ("r1-toy", COMMON),
    "wgan_gp": ("wgan-gp-toy", [*COMMON, "game.n_critic=2"]),
    "hinge_sn": ("sngan-toy", COMMON),
    "lazy_r1": ("r1-lazy-toy", COMMON),
    # Two steps: EMA averages the second update into the first.
    "ema": (
        "r1-toy",
        [
            *COMMON,
            "train.steps=2",
            "train.ema.enabled=true",
            "train.ema.decay=0.5",
            "eval.every=1",
            "eval.metrics=[modes]",
            "eval.n=300",
            "eval.best=modes",
        ],
    ),
}


def torchrun(
    args: list[str], nproc: int = 2, timeout: float = 240, env_extra: dict[str, str] | None = None, **kw: object
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(WORKER.parent)]),
        **(env_extra or {}),
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes",
        "1",
        "--nproc_per_node",
        str(nproc),
        *args,
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every case trained once on two processes, in one torchrun launch (launches are the slow part)."""
    out = tmp_path_factory.mktemp("dist")
    spec = out / "spec.json"
    spec.write_text(json.dumps({"train": CASES, "eval": True}))
    res = torchrun([str(WORKER), str(out), str(spec)])
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def one_process(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict]:
    """(initial state, final checkpoint) of `case` on this one process."""
    monkeypatch.setattr("ganforge.regularizers._uniform", dist_worker.sample_uniform)
    recipe, overrides = CASES[case]
    r = load_recipe(recipe, overrides)
    t = Trainer.start(r, tmp_path / case, progress=False)
    # The initial weights, on the CPU (the checkpoint is loaded there).
    before = {n: {k: v.detach().cpu().clone() for k, v in net.state_dict().items()} for n, net in t.nets.items()}
    t.run()
    return before, load_checkpoint(tmp_path / case / "checkpoints" / f"step_{r.train.steps:07d}.pt")


def relative_gap(before: dict, one: dict, two: dict) -> float:
    """||update_2proc - update_1proc|| / ||update_1proc|| over every floating-point parameter and buffer."""
    num = den = 0.0
    for k, v0 in before.items():
        if not v0.is_floating_point():
            continue
        d1, d2 = one[k].double() - v0.double(), two[k].double() - v0.double()
        num += float((d2 - d1).pow(2).sum())
        den += float(d1.pow(2).sum())
    assert den > 0, "the step changed nothing: the comparison would be vacuous"
    return (num / den) ** 0.5


@pytest.mark.parametrize("case", ["ns_r1", "wgan_gp", "hinge_sn", "lazy_r1"])
def test_two_processes_update_like_one_on_the_whole_batch(
    case: str, two_process_runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, one = one_process(case, tmp_path, monkeypatch)
    two = load_checkpoint(two_process_runs / case / "checkpoints" / "step_0000001.pt")
    assert two["world"] == 2 and len(two["ranks"]) == 2
    for net in ("G", "D"):
        assert relative_gap(before[net], one[net], two[net]) < 1e-6, net


def test_two_processes_keep_the_same_ema(
    two_process_runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, one = one_process("ema", tmp_path, monkeypatch)
    two = load_checkpoint(two_process_runs / "ema" / "checkpoints" / "step_0000002.pt")
    ema_before = {k.removeprefix("module."): v for k, v in before["G"].items()}

    def strip(state: dict) -> dict:
        return {k.removeprefix("module."): v for k, v in state.items() if k.startswith("module.")}

    assert relative_gap(ema_before, strip(one["ema"]), strip(two["ema"])) < 1e-6
    assert relative_gap(before["G"], one["G"], two["G"]) < 1e-6


def test_in_training_eval_and_best_checkpoint_match_one_process(
    two_process_runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """eval.every on two processes: the sharded evaluation logs one process's numbers, and best.pt is written once."""
    one_process("ema", tmp_path, monkeypatch)
    for step in (1, 2):
        name = f"eval/step_{step:07d}.json"
        one = json.loads((tmp_path / "ema" / name).read_text())["metrics"]
        two = json.loads((two_process_runs / "ema" / name).read_text())["metrics"]
        assert two == pytest.approx(one, rel=1e-6), step
    best = load_checkpoint(two_process_runs / "ema" / "checkpoints" / "best.pt")
    assert best["world"] == 2 and len(best["ranks"]) == 2


def test_distributed_eval_equals_one_process(two_process_runs: Path) -> None:
    two = json.loads((two_process_runs / "eval.json").read_text())
    one = dist_worker.eval_case()["metrics"]
    assert set(two) == set(one)
    for k, v in one.items():
        assert two[k] == pytest.approx(v, rel=1e-6, abs=1e-9), k


def test_merged_statistics_equal_one_pass() -> None:
    """Shards merged in order give the moments, IS splits, counts and capped subsets of one pass."""
    from ganforge.metrics.accumulate import accumulate, merge_feature_stats

    class Ext:
        feature_dim, num_classes = 3, 4

        def extract(self, x: torch.Tensor) -> dict:
            f = x.flatten(1)[:, :3]
            return {"features": f, "logits": torch.cat([f, f[:, :1]], 1)}

    torch.manual_seed(0)
    batches = [(torch.randn(7, 1, 2, 2), None) for _ in range(5)]
    whole = accumulate(iter(batches), Ext(), 35, store_max=20, image_max=9, is_splits=4)
    parts = [
        accumulate(iter(batches[:2]), Ext(), 35, 20, 9, 4, start=0),
        accumulate(iter(batches[2:]), Ext(), 35, 20, 9, 4, start=14),
    ]
    merged = merge_feature_stats(parts, 20, 9)
    assert torch.allclose(merged.moments.cov, whole.moments.cov) and torch.allclose(
        merged.moments.mean, whole.moments.mean
    )
    assert merged.inception.result() == pytest.approx(whole.inception.result())
    assert torch.equal(merged.pred_counts, whole.pred_counts)
    assert torch.equal(merged.stacked_features(), whole.stacked_features())
    assert torch.equal(merged.stacked_images(), whole.stacked_images())
    assert merged.n == whole.n == 35


def test_streams_and_noise_shard_the_global_draw() -> None:
    """Rank r's batch is its slice of the one-process batch; together the ranks draw exactly that batch."""
    from ganforge.data.dataset import ArrayDataset
    from ganforge.data.stream import BatchStream

    ds = ArrayDataset("toy", "points", torch.arange(40.0).view(40, 1))
    one = BatchStream(ds, 8, seed=3)
    ranks = [BatchStream(ds, 8, seed=3).shard(r, 2) for r in range(2)]
    for _ in range(12):  # across epochs
        whole = one.next_indices()
        assert torch.equal(torch.cat([s.next_indices() for s in ranks]), whole)
    assert ranks[0].state_dict() == one.state_dict()
    with pytest.raises(Exception, match="split evenly"):
        BatchStream(ds, 6, seed=0).shard(0, 4)


def test_refusals_name_the_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A game that cannot be data-parallel, or a batch that does not split, is refused before training."""
    monkeypatch.setattr(distributed, "from_env", lambda: distributed.Dist(0, 2, 0, 2))
    monkeypatch.setattr(distributed, "init", lambda d: None)
    monkeypatch.setattr(distributed, "broadcast_state", lambda *a, **k: None)
    with pytest.raises(ConfigError, match="cannot train on several processes"):
        Trainer(load_recipe("unrolled-toy", ["data.n_points=500"]), tmp_path / "u")
    with pytest.raises(ConfigError, match="split evenly"):
        Trainer(load_recipe("gan-toy", ["train.batch_size=15", "data.n_points=500"]), tmp_path / "b")


def _rank_pid(parent: int, rank: int, deadline: float) -> int:
    """The PID of the worker with RANK=rank among torchrun's children."""
    while time.time() < deadline:
        for task in Path(f"/proc/{parent}/task").iterdir():
            for child in (task / "children").read_text().split():
                try:
                    env = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
                except OSError:
                    continue
                if f"RANK={rank}".encode() in env:
                    return int(child)
        time.sleep(0.1)
    raise TimeoutError("no worker found")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to find a rank's process")
def test_kill_one_rank_then_resume_is_bit_identical(tmp_path: Path) -> None:
    """kill -9 of rank 1 stops the run without a partial checkpoint; --resume ends exactly where an unbroken run does."""
    over = [
        "train.steps=150",
        "train.batch_size=16",
        "train.precision=fp32",
        "train.log_every=5",
        "train.checkpoint_every=10",
        "train.sample_every=1000",
        "train.n_samples=4",
        "data.n_points=2000",
        "model.generator.args.hidden=32",
        "model.discriminator.args.hidden=32",
        "train.ema.enabled=true",
    ]

    def args(out: Path) -> list[str]:
        return ["-m", "ganforge", "train", "r1-toy", *over, "--out", str(out), "--quiet"]

    # The uninterrupted run through `ganforge train --nproc 2`, the launcher users call.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    full = subprocess.run(
        [
            sys.executable,
            "-m",
            "ganforge",
            "train",
            "r1-toy",
            *over,
            "--out",
            str(tmp_path / "full"),
            "--quiet",
            "--nproc",
            "2",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert full.returncode == 0, full.stderr[-3000:]

    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes",
        "1",
        "--nproc_per_node",
        "2",
        *args(tmp_path / "broken"),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ck = tmp_path / "broken" / "checkpoints"
        deadline = time.time() + 120
        while time.time() < deadline and not list(ck.glob("step_0000010.pt")):
            time.sleep(0.05)
        os.kill(_rank_pid(proc.pid, 1, deadline), signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
        assert "lost contact with the other ranks" in err, err[-3000:]
    finally:
        proc.kill()
    assert proc.returncode != 0
    kept = sorted(ck.glob("step_*.pt"))
    assert kept and all(load_checkpoint(p)["step"] < 150 for p in kept)  # every file loads: nothing partial
    assert not list(ck.glob(".*")), "a temporary checkpoint was left behind"

    res = torchrun(["-m", "ganforge", "train", "--resume", str(tmp_path / "broken"), "--quiet"])
    assert res.returncode == 0, res.stderr[-3000:]
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "step_0000150.pt")
    b = load_checkpoint(tmp_path / "broken" / "checkpoints" / "step_0000150.pt")
    for key in ("G", "D", "ema", "opt_g", "opt_d"):
        flat_a, flat_b = torch.utils._pytree.tree_flatten(a[key])[0], torch.utils._pytree.tree_flatten(b[key])[0]
        for x, y in zip(flat_a, flat_b, strict=True):
            assert torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y, key
    assert a["ranks"][1]["rng"]["torch"].equal(b["ranks"][1]["rng"]["torch"])


def _kill_rank_after(proc: subprocess.Popen, ck: Path, step: int, rank: int) -> None:
    deadline = time.time() + 120
    while time.time() < deadline and not list(ck.glob(f"step_{step:07d}.pt")):
        time.sleep(0.05)
    os.kill(_rank_pid(proc.pid, rank, deadline), signal.SIGKILL)


def _small_toy(steps: int, log_every: int, checkpoint_every: int, sample_every: int) -> list[str]:
    """Overrides of r1-toy for a small, fp32 run through the launcher (the subprocess tests)."""
    return [
        f"train.steps={steps}",
        "train.batch_size=16",
        "train.precision=fp32",
        f"train.log_every={log_every}",
        f"train.checkpoint_every={checkpoint_every}",
        f"train.sample_every={sample_every}",
        "train.n_samples=4",
        "data.n_points=2000",
        "model.generator.args.hidden=32",
        "model.discriminator.args.hidden=32",
    ]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to find a rank's process")
def test_elastic_restart_continues_from_the_last_checkpoint(tmp_path: Path) -> None:
    """torchrun --max-restarts: rank 0 killed mid-run, the restarted workers resume by themselves and finish."""
    over = _small_toy(steps=300, log_every=5, checkpoint_every=10, sample_every=1000)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes",
        "1",
        "--nproc_per_node",
        "2",
        "--max-restarts",
        "1",
        "-m",
        "ganforge",
        "train",
        "r1-toy",
        *over,
        "--out",
        str(tmp_path / "run"),
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _kill_rank_after(proc, tmp_path / "run" / "checkpoints", 20, 0)
        _, err = proc.communicate(timeout=240)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-3000:]
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "finished" and info["step"] == 300
    assert "resuming" in err


@pytest.mark.cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs (NCCL: one GPU per process)")
@pytest.mark.parametrize("case", ["ns_r1", "wgan_gp"])
def test_nccl_update_like_one_process(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The step-equality check on two GPUs through NCCL (TF32 off: its 10-bit matmuls would swamp 1e-6)."""
    gpu = ["train.device=cuda", "train.channels_last=false"]
    monkeypatch.setitem(CASES, case, (CASES[case][0], CASES[case][1] + gpu))
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"train": {case: CASES[case]}}))
    res = torchrun([str(WORKER), str(tmp_path / "two"), str(spec)], env_extra={"NVIDIA_TF32_OVERRIDE": "0"})
    assert res.returncode == 0, res.stderr[-3000:]
    before, one = one_process(case, tmp_path / "one", monkeypatch)
    two = load_checkpoint(tmp_path / "two" / case / "checkpoints" / "step_0000001.pt")
    for net in ("G", "D"):
        assert relative_gap(before[net], one[net], two[net]) < 1e-6, net


@pytest.mark.slow
def test_every_game_trains_on_two_processes(tmp_path: Path) -> None:
    """Each game family runs a few steps on two processes (one launch); unrolled is refused (test_refusals...)."""
    import yaml
    from test_cycle import cycle_recipe

    tiny = [
        "train.steps=4",
        "train.log_every=2",
        "train.checkpoint_every=2",
        "train.sample_every=1000",
        "train.n_samples=4",
        "train.precision=fp32",
        "train.batch_size=8",
        "data.name=digits",
        "data.image_size=16",
    ]
    cycle = tmp_path / "cycle.yaml"
    cycle.write_text(yaml.safe_dump(cycle_recipe(steps=4)))
    cases = {
        "began": ("began-fashion", [*tiny, "model.generator.args.width=8", "model.discriminator.args.width=8"]),
        "progan": (
            "progan-fashion",
            [
                *tiny,
                "game.args.fade_images=16",
                "game.args.stabilize_images=16",
                "game.args.batch_sizes=8",
                "game.args.resolutions=[4,8,16]",
            ],
        ),
        "infogan": ("infogan-fashion", tiny),
        "acgan": ("acgan-fashion", tiny),
        "ssgan": ("ssgan-fashion", tiny),
        "biggan": ("biggan-fashion", tiny),
        "cycle": (str(cycle), []),
        "extragradient": ("extragradient-toy", ["train.steps=4", "train.batch_size=8", "data.n_points=500"]),
        "pacgan": ("pacgan2-toy", ["train.steps=4", "train.batch_size=8", "data.n_points=500"]),
    }
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"train": cases}))
    res = torchrun([str(WORKER), str(tmp_path / "runs"), str(spec)], timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    for name in cases:
        info = json.loads((tmp_path / "runs" / name / "run.json").read_text())
        assert info["status"] == "finished" and info["processes"] == 2, name


def test_sync_batchnorm_converts_in_place_and_is_batchnorm_on_one_process() -> None:
    """Conversion keeps weights and statistics; without a process group it normalises exactly as BatchNorm."""
    from torch import nn

    from ganforge.nn.sync_batchnorm import SyncBatchNorm, convert_sync_batchnorm

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2)))
    net[1].running_mean.fill_(0.5)
    ref = {k: v.clone() for k, v in net.state_dict().items()}
    conv = convert_sync_batchnorm(net)
    assert isinstance(conv[1], SyncBatchNorm) and isinstance(conv[2][1], SyncBatchNorm)
    assert all(torch.equal(ref[k], v) for k, v in conv.state_dict().items())
    x = torch.randn(6, 2, 5, 5)
    plain = nn.BatchNorm2d(2)
    plain.load_state_dict(conv[2][1].state_dict())
    assert torch.allclose(conv[2][1](x), plain(x)) and torch.allclose(conv[2][1].running_var, plain.running_var)


def test_an_elastic_restart_resumes_or_restarts_only_its_own_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restarted worker resumes a folder with checkpoints, restarts one its own job left without any, leaves others alone."""
    import argparse

    from ganforge.cli.train import _elastic_restart

    def ns(out: Path) -> argparse.Namespace:
        return argparse.Namespace(resume=None, out=str(out), args=["r1-toy", "train.steps=5"], seed=None, steps=None)

    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-a")
    with_ckpt = tmp_path / "a"
    (with_ckpt / "checkpoints").mkdir(parents=True)
    (with_ckpt / "checkpoints" / "step_0000010.pt").write_bytes(b"x")
    n = ns(with_ckpt)
    _elastic_restart(n)
    assert n.resume == str(with_ckpt) and n.out is None and n.args == []

    for job, cleared in (("job-a", True), ("job-b", False)):
        run = tmp_path / job
        run.mkdir()
        (run / "run.json").write_text(json.dumps({"status": "failed", "elastic_run_id": job}))
        (run / "metrics.jsonl").write_text("{}\n")
        monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-a")
        n = ns(run)
        _elastic_restart(n)
        assert n.resume is None
        assert (sorted(p.name for p in run.iterdir()) == []) == cleared, job


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to find a rank's process")
def test_a_signal_to_one_rank_stops_every_rank_at_the_same_step(tmp_path: Path) -> None:
    """SIGTERM to rank 1 alone: both ranks stop at one step with a checkpoint, and `--nproc` exits with rank 0's 143."""
    over = _small_toy(steps=3000, log_every=50, checkpoint_every=1000, sample_every=5000)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ganforge", "train", "r1-toy", *over, "--out", str(out), "--quiet", "--nproc", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (out / "metrics.jsonl").is_file():
            time.sleep(0.05)
        os.kill(_rank_pid(proc.pid, 1, deadline), signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err[-3000:]
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "interrupted" and 0 < info["step"] < 3000
    assert load_checkpoint(out / "checkpoints" / f"step_{info['step']:07d}.pt")["step"] == info["step"]


def test_threads_are_split_between_the_processes_of_one_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    from ganforge.training import hardware

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(hardware, "available_cores", lambda: 8)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    assert hardware.configure_threads(None, share=2).value == 4
    assert hardware.configure_threads(None, share=16).value == 1
    assert hardware.configure_threads(3, share=2).value == 3  # an explicit count is the user's split


def test_only_an_agreed_stop_ends_the_loop_of_a_distributed_run() -> None:
    """A rank's own signal or doctor verdict must wait for the agreement: a rank that left the loop alone would sit
    in one collective while the others sit in another (Ctrl-C once aborted both ranks that way)."""
    from types import SimpleNamespace

    t = SimpleNamespace(dist=distributed.Dist(1, 2, 1, 2), _stop_signal="SIGINT", _doctor_stop=None, _agreed_halt=None)
    assert Trainer._halt(t) is None
    t._agreed_halt = "signal"
    assert Trainer._halt(t) == "signal"
    alone = SimpleNamespace(dist=distributed.SINGLE, _stop_signal=None, _doctor_stop=object(), _agreed_halt=None)
    assert Trainer._halt(alone) == "doctor"
