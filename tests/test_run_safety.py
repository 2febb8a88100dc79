"""Never lose a run: the run-folder lock, no silent restart, resume semantics, truthful run.json, exit 2."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import tiny_recipe

from ganforge.cli import main
from ganforge.config import build_recipe
from ganforge.training import Trainer
from ganforge.training.checkpoint import list_checkpoints, save_checkpoint
from ganforge.training.runinfo import read_status


def ring(steps: int = 20, **extra: dict) -> dict:
    return tiny_recipe({"name": "ring", "n_points": 1000}, steps=steps, **extra)


def train(raw: dict, out: Path) -> Path:
    return Trainer.start(build_recipe(raw), out, progress=False).run()


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under `folder` (except the lock's advice) with its mode and bytes."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mode, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished 20-step ring run (checkpoints at 10 and 20), copied by tests that change it."""
    out = tmp_path_factory.mktemp("runs") / "done"
    train(ring(), out)
    return out


@pytest.fixture
def run_copy(finished: Path, tmp_path: Path) -> Path:
    import shutil

    dest = tmp_path / "run"
    shutil.copytree(finished, dest)
    return dest


# --------------------------------------------------------------------------- no silent restart


@pytest.mark.parametrize("damage", ["truncate", "pickle"])
def test_resume_with_every_checkpoint_unreadable_exits_2_and_touches_nothing(
    run_copy: Path, capsys, damage: str
) -> None:
    for p in list_checkpoints(run_copy / "checkpoints"):
        if damage == "truncate":
            p.write_bytes(p.read_bytes()[:200])
        else:  # a pickle the safe loader refuses (it would run code)
            p.write_bytes(b"\x80\x04cos\nsystem\n(S'echo pwned'\ntR.")
    before = snapshot(run_copy)
    code, err = run_cli(capsys, "train", "--resume", str(run_copy), "--steps", "30")
    assert code == 2
    assert "step_0000010.pt" in err and "step_0000020.pt" in err and "Nothing was changed" in err
    assert ("safe loader" in err) if damage == "pickle" else ("truncated" in err)
    assert "weights_only=False" not in err  # torch's advice to disable the safe loader never reaches the user
    assert snapshot(run_copy) == before


def test_resume_falls_back_past_a_corrupt_newest_checkpoint_and_moves_it_aside(run_copy: Path, capsys) -> None:
    newest = run_copy / "checkpoints" / "step_0000020.pt"
    newest.write_bytes(newest.read_bytes()[:300])
    code, err = run_cli(capsys, "train", "--resume", str(run_copy), "--steps", "30", "--quiet")
    assert code == 0
    assert "step_0000020.pt could not be read" in err and "from step_0000010.pt at step 10" in err
    assert (run_copy / "checkpoints" / "corrupt" / "step_0000020.pt").is_file()
    assert [p.name for p in list_checkpoints(run_copy / "checkpoints")][-1] == "step_0000030.pt"
    info = json.loads((run_copy / "run.json").read_text())
    assert info["status"] == "finished" and info["step"] == 30
    assert info["resumes"][-1]["from_step"] == 10 and "step_0000020.pt" in info["resumes"][-1]["refused"]


def test_rotation_never_deletes_a_newer_checkpoint(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "step_0000900.pt").write_bytes(b"from another history")
    for step in (10, 20, 30, 40):
        save_checkpoint({"step": step}, folder, step, keep=2)
    assert [p.name for p in list_checkpoints(folder)] == ["step_0000030.pt", "step_0000040.pt", "step_0000900.pt"]


def test_resume_without_any_checkpoint_exits_2(tmp_path: Path, capsys) -> None:
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    code, err = run_cli(capsys, "train", "--resume", str(tmp_path / "run"))
    assert code == 2 and "no checkpoint" in err


# --------------------------------------------------------------------------- resume semantics


def test_edited_config_yaml_is_refused_with_a_diff(run_copy: Path, capsys) -> None:
    cfg = run_copy / "config.yaml"
    data = yaml.safe_load(cfg.read_text())
    data["model"]["generator"]["args"]["hidden"] = 64
    data["optim"]["g"]["lr"] = 0.5
    cfg.write_text(yaml.safe_dump(data))
    before = snapshot(run_copy)
    code, err = run_cli(capsys, "train", "--resume", str(run_copy), "--steps", "30")
    assert code == 2 and "model.generator.args.hidden: 32 -> 64" in err and "optim.g.lr" in err
    assert snapshot(run_copy) == before


@pytest.mark.parametrize("text", ["", "model: [unclosed", "just a string\n"])
def test_malformed_or_empty_config_yaml_is_refused(run_copy: Path, capsys, text: str) -> None:
    (run_copy / "config.yaml").write_text(text)
    code, err = run_cli(capsys, "train", "--resume", str(run_copy), "--steps", "30")
    assert code == 2 and "config.yaml" in err and "Traceback" not in err


def test_safe_override_on_resume_is_applied_and_recorded(run_copy: Path, capsys) -> None:
    code, _ = run_cli(capsys, "train", "--resume", str(run_copy), "--steps", "30", "optim.g.lr=0.0005", "--quiet")
    assert code == 0
    lines = [json.loads(x) for x in (run_copy / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 30 and lines[-1]["lr_g"] == pytest.approx(0.0005)
    info = json.loads((run_copy / "run.json").read_text())
    assert info["resumes"][-1]["overrides"] == {"optim.g.lr": 0.0005, "train.steps": 30}
    assert yaml.safe_load((run_copy / "config.yaml").read_text())["optim"]["g"]["lr"] == 0.0005


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["model.z_dim=4"], "cannot change when a run is resumed"),
        (["--steps", "5"], "already at step 20"),
        (["--seed", "3"], "takes no --seed"),
        (["demo"], "takes no recipe"),
    ],
)
def test_bad_resume_requests_exit_2(run_copy: Path, capsys, argv: list[str], fragment: str) -> None:
    before = snapshot(run_copy)
    code, err = run_cli(capsys, "train", "--resume", str(run_copy), *argv)
    assert code == 2 and fragment in err
    assert snapshot(run_copy) == before


def test_steps_extends_a_finished_run(run_copy: Path, capsys) -> None:
    assert run_cli(capsys, "train", "--resume", str(run_copy), "--steps", "25", "--quiet")[0] == 0
    assert json.loads((run_copy / "run.json").read_text())["step"] == 25


def test_leftover_temp_files_are_cleaned_on_resume(run_copy: Path, capsys) -> None:
    junk = [run_copy / ".run.json.abc.tmp", run_copy / "checkpoints" / ".step_0000030.pt.x.tmp"]
    for p in junk:
        p.write_bytes(b"partial")
    assert run_cli(capsys, "train", "--resume", str(run_copy), "--steps", "21", "--quiet")[0] == 0
    assert not any(p.exists() for p in junk)


# --------------------------------------------------------------------------- the lock


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ganforge.cli", *args]


def _wait_running(run: Path, proc: subprocess.Popen, min_step: int = 1, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = read_status(run)
        if info.get("status") == "running" and info.get("step", 0) >= min_step:
            return
        assert proc.poll() is None, "the training process ended early"
        time.sleep(0.05)
    raise AssertionError("the run never reported running")


def test_a_locked_run_refuses_a_second_train_or_resume_then_kill_9_leaves_it_stale(
    tmp_path: Path, write_recipe, capsys
) -> None:
    recipe = write_recipe(ring(steps=100000, train={"log_every": 20, "checkpoint_every": 200}))
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        _cli("train", str(recipe), "--out", str(run), "--quiet"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_running(run, proc, min_step=200)
        code, err = run_cli(capsys, "train", str(recipe), "--out", str(run))
        assert code == 2 and f"PID {proc.pid}" in err and "in use" in err
        code, err = run_cli(capsys, "train", "--resume", str(run))
        assert code == 2 and f"PID {proc.pid}" in err
        code, out = main(["status", str(run)]), capsys.readouterr().out
        assert code == 0 and "running" in out
    finally:
        proc.kill()
        proc.wait()
    assert read_status(run)["status"] == "stale"
    assert main(["status", str(run)]) == 0 and "stale" in capsys.readouterr().out
    # The lock died with the process: the run resumes.
    # The child may have passed several checkpoints while the checks above ran (a loaded machine): go 10 further.
    last = int(list_checkpoints(run / "checkpoints")[-1].stem.split("_")[-1])
    assert run_cli(capsys, "train", "--resume", str(run), "--steps", str(last + 10), "--quiet")[0] == 0
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


def test_sigterm_checkpoints_and_records_interrupted(tmp_path: Path, write_recipe) -> None:
    recipe = write_recipe(ring(steps=100000, train={"log_every": 10, "checkpoint_every": 100000}))
    run = tmp_path / "run"
    proc = subprocess.Popen(
        _cli("train", str(recipe), "--out", str(run), "--quiet"),
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_running(run, proc, min_step=30)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "SIGTERM" in err and "--resume" in err
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted" and info["signal"] == "SIGTERM"
    assert info["last_checkpoint_step"] == info["step"] >= 30
    assert list_checkpoints(run / "checkpoints")[-1].name == f"step_{info['step']:07d}.pt"


def test_two_runs_into_one_new_folder_one_wins(tmp_path: Path, write_recipe) -> None:
    recipe = write_recipe(ring(steps=300, train={"log_every": 50, "checkpoint_every": 300}))
    run = tmp_path / "same"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            _cli("train", str(recipe), "--out", str(run), "--quiet"),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=240), p.stderr.read()) for p in procs]
    codes = sorted(c for c, _ in results)
    assert codes == [0, 2], results
    assert any("in use by PID" in e or "already holds a run" in e for c, e in results if c == 2)
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)), "metrics.jsonl has lines from two runs"


# --------------------------------------------------------------------------- truthful status, exit 2


def test_a_crash_is_recorded_as_failed_with_the_error(tmp_path: Path) -> None:
    trainer = Trainer.start(build_recipe(ring()), tmp_path / "run", progress=False)

    def boom(ctx):
        raise RuntimeError("simulated crash")

    trainer.game.step = boom
    with pytest.raises(RuntimeError):
        trainer.run()
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "failed" and "simulated crash" in info["error"]


def test_bad_eval_best_is_failed_not_interrupted(tmp_path: Path, capsys) -> None:
    raw = tiny_recipe(
        {"name": "digits", "image_size": 8},
        steps=2,
        eval={"every": 2, "metrics": ["coverage"], "n": 20, "best": "fd_nonsense"},
    )
    code, err = run_cli(
        capsys,
        "train",
        "--out",
        str(tmp_path / "run"),
        "--quiet",
        *[f"{k}={json.dumps(v)}" for k, v in _flat(raw).items()],
    )
    assert code == 2 and "eval.best" in err
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed"


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and k not in ("args",):
            out.update(_flat(v, key))
        else:
            out[key] = v
    return out


def test_a_full_disk_is_one_paragraph_and_exit_2(tmp_path: Path, capsys, monkeypatch) -> None:
    import ganforge.training.trainer as trainer_mod

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "checkpoints"))

    monkeypatch.setattr(trainer_mod, "save_checkpoint", full)
    code, err = run_cli(
        capsys,
        "train",
        "demo",
        "--out",
        str(tmp_path / "run"),
        "--steps",
        "2",
        "--quiet",
        "train.batch_size=8",
        "model.generator.args.width=4",
        "model.discriminator.args.width=4",
        "train.checkpoint_every=1",
    )
    assert code == 2 and "No space left on device" in err and "--resume" in err and "Traceback" not in err
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed"


def test_out_that_is_a_file_exits_2(tmp_path: Path, capsys) -> None:
    f = tmp_path / "file.txt"
    f.write_text("mine")
    code, err = run_cli(capsys, "train", "demo", "--out", str(f), "--steps", "1")
    assert code == 2 and "is a file" in err and f.read_text() == "mine"


@pytest.mark.report
def test_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        out = train(ring(steps=10), tmp_path / "run")
    finally:
        os.umask(old)
    for name in ("run.json", "report.html", "generator.safetensors", "config.yaml", "checkpoints/step_0000010.pt"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name


def test_progress_in_a_log_file_is_plain_lines(tmp_path: Path, write_recipe) -> None:
    recipe = write_recipe(ring(steps=40, train={"progress": True}))
    proc = subprocess.run(
        _cli("train", str(recipe), "--out", str(tmp_path / "run")),
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr and "step 40/40" in proc.stderr


def test_a_lock_taken_a_moment_ago_still_names_its_pid(tmp_path: Path) -> None:
    """Two runs racing for a new folder: the loser could read the lock file before the winner wrote its PID."""
    import threading

    from ganforge.training.runlock import RunLock

    folder = tmp_path / "run"
    folder.mkdir()
    held = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
    import fcntl

    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # locked, PID not yet written
    threading.Timer(0.2, lambda: os.write(held, b"4242 somehost 2026-01-01T00:00:00\n")).start()
    from ganforge.errors import GanforgeError

    with pytest.raises(GanforgeError, match="in use by PID 4242 on somehost"):
        RunLock(folder).acquire()
    os.close(held)


class _SlowEvaluator:
    """Stands in for a long evaluation: SIGTERM arrives in its middle; it finishes only if nothing stops it."""

    def __init__(self) -> None:
        self.calls, self.finished = 0, 0

    def evaluate_generator(self, *args, **kwargs) -> dict:
        self.calls += 1
        if self.calls == 2:  # the second evaluation (step 20) is the one interrupted
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(3000):  # 30 s at most: far longer than a signal takes to arrive
                time.sleep(0.01)
        self.finished += 1
        return {"metrics": {"modes": 8.0}}


def _trainer_with_slow_eval(tmp_path: Path) -> tuple[Trainer, _SlowEvaluator]:
    """A 50-step ring run that evaluates every 10 steps with the slow stand-in and never checkpoints on its own."""
    trainer = Trainer.start(
        build_recipe(ring(steps=50, train={"checkpoint_every": 1000}, eval={"every": 10, "metrics": ["modes"]})),
        tmp_path / "run",
        progress=False,
    )
    slow = _SlowEvaluator()
    trainer.evaluator = slow
    return trainer, slow


def test_sigterm_during_an_evaluation_abandons_it_and_checkpoints(tmp_path: Path, capsys) -> None:
    from ganforge.errors import RunInterrupted

    trainer, slow = _trainer_with_slow_eval(tmp_path)
    with pytest.raises(RunInterrupted):
        trainer.run()
    assert (slow.calls, slow.finished) == (2, 1), "the interrupted evaluation ran to its end"
    assert "evaluation at step 20 is skipped" in capsys.readouterr().err
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "interrupted" and info["signal"] == "SIGTERM"
    assert info["step"] == info["last_checkpoint_step"] == 20
    evals = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in evals if "eval/modes" in r] == [10]
    assert signal.getsignal(signal.SIGTERM) is not None  # the handler was put back


def test_a_signal_before_the_evaluation_skips_it(tmp_path: Path) -> None:
    from ganforge.errors import RunInterrupted

    trainer, slow = _trainer_with_slow_eval(tmp_path)
    step = trainer.game.step

    def step_then_signal(ctx):  # the signal lands during the step that ends at an evaluation
        out = step(ctx)
        if trainer.step == 9:
            trainer._stop_signal = "SIGTERM"
        return out

    trainer.game.step = step_then_signal
    with pytest.raises(RunInterrupted):
        trainer.run()
    assert slow.calls == 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["step"] == 10
