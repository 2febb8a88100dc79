"""End-to-end runs, the run folder, sampling, corrupt data, NaN handling and exact resume after kill -9."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_recipe
from PIL import Image
from safetensors.torch import load_file

from ganforge.cli import main
from ganforge.config import build_recipe
from ganforge.errors import TrainingError
from ganforge.training import Trainer
from ganforge.training.checkpoint import latest_good_checkpoint, list_checkpoints


def train(raw: dict, out: Path, resume: bool = False) -> Path:
    return Trainer(build_recipe(raw), out, resume=resume, progress=False).run()


@pytest.mark.report
def test_ring_end_to_end_writes_the_run_folder(tmp_path: Path) -> None:
    out = train(tiny_recipe({"name": "ring", "n_points": 2000}, steps=20), tmp_path / "run")
    for name in ("config.yaml", "metrics.jsonl", "run.json", "report.html", "generator.safetensors"):
        assert (out / name).is_file(), name
    assert list((out / "tb").iterdir()), "TensorBoard events"
    assert (out / "samples" / "final.png").is_file() and (out / "samples" / "step_0000010.png").is_file()
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [5, 10, 15, 20]
    assert {"d_loss", "g_loss", "images_per_s", "time"} <= set(lines[0])
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    assert len(list_checkpoints(out / "checkpoints")) == 2


@pytest.mark.report
def test_digits_end_to_end_bf16_channels_last_ema(tmp_path: Path) -> None:
    raw = tiny_recipe(
        {"name": "digits", "image_size": 16},
        steps=12,
        train={"precision": "bf16", "channels_last": True, "ema": {"enabled": True, "decay": 0.9}},
    )
    out = train(raw, tmp_path / "run")
    assert (out / "generator_ema.safetensors").is_file() and (out / "samples" / "final_ema.png").is_file()
    g, ema = load_file(out / "generator.safetensors"), load_file(out / "generator_ema.safetensors")
    assert g.keys() == ema.keys()
    assert any(not torch.equal(g[k], ema[k]) for k in g if g[k].is_floating_point())
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "tiny" in html


def test_sample_command_grid_and_individual(tmp_path: Path, capsys) -> None:
    out = train(tiny_recipe({"name": "digits", "image_size": 8}, steps=5), tmp_path / "run")
    png = tmp_path / "grid.png"
    assert main(["sample", str(out), "--n", "9", "--out", str(png), "--individual", str(tmp_path / "ind")]) == 0
    assert Image.open(png).size[0] > 0
    assert len(list((tmp_path / "ind").glob("*.png"))) == 9
    # A checkpoint works as a source too.
    ckpt = list_checkpoints(out / "checkpoints")[-1]
    assert main(["sample", str(ckpt), "--n", "4", "--out", str(tmp_path / "c.png")]) == 0


def test_same_seed_same_weights_and_different_seed_differs(tmp_path: Path) -> None:
    raw = tiny_recipe({"name": "ring", "n_points": 1000}, steps=10)
    a = load_file(train(raw, tmp_path / "a") / "generator.safetensors")
    b = load_file(train(raw, tmp_path / "b") / "generator.safetensors")
    c = load_file(train(dict(raw, seed=1), tmp_path / "c") / "generator.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_image_folder_with_a_corrupt_file_trains_and_reports_the_skip(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not an image at all")
    raw = tiny_recipe({"name": "folder", "path": str(folder), "image_size": 8}, steps=4)
    with pytest.warns(UserWarning, match="skipped 1 of 21"):
        out = train(raw, tmp_path / "run")
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "finished" and info["data"]["skipped"] == 1


def test_non_finite_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    raw = tiny_recipe({"name": "ring", "n_points": 1000}, steps=40)
    trainer = Trainer(build_recipe(raw), tmp_path / "run", progress=False)
    step = trainer.game.step

    def poisoned(ctx):
        stats = step(ctx)
        if trainer.step >= 13:  # the step about to be counted is the 14th
            stats["d_loss"] = torch.tensor(float("nan"))
        return stats

    trainer.game.step = poisoned
    with pytest.raises(TrainingError, match="non-finite.*step_0000010.pt"):
        trainer.run()
    assert [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")] == ["step_0000010.pt"]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed"


def test_resume_skips_a_corrupt_newest_checkpoint(tmp_path: Path) -> None:
    out = train(tiny_recipe({"name": "ring", "n_points": 1000}, steps=20), tmp_path / "run")
    newest = list_checkpoints(out / "checkpoints")[-1]
    newest.write_bytes(newest.read_bytes()[:100])  # as if the disk lost the end of it
    path, state = latest_good_checkpoint(out / "checkpoints")
    assert path.name == "step_0000010.pt" and state["step"] == 10


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ganforge.cli", *args]


def _progressive_kill_recipe() -> dict:
    """ProGAN on 16x16 digits whose kill point (a checkpoint at step >= 84) falls inside the 16x16 fade, batch 8."""
    from test_progan import progan_recipe

    raw = progan_recipe(150, fade=320, stab=320, batch_sizes=[16, 16, 8])
    raw["game"]["args"]["stabilize_images"] = [
        320,
        320,
        320,
    ]  # 4x4: 20 steps; 8x8: 40 fade + 20; 16x16 fade: steps 81-120
    raw["train"].update(
        {"checkpoint_every": 7, "log_every": 5, "sample_every": 50, "ema": {"enabled": True, "decay": 0.95}}
    )
    return raw


# The progressive and cycle variants (25-33 s each) run with `-m slow`: the default suite keeps the trainer's
# machinery (dcgan), the slow profile each game's own state (ProGAN's fade, CycleGAN's image pools).
@pytest.mark.parametrize(
    "kind, kill_after, steps",
    [
        ("dcgan", 60, 150),
        pytest.param("progressive", 84, 150, marks=pytest.mark.slow),
        pytest.param("cycle", 28, 60, marks=pytest.mark.slow),
    ],
)
def test_kill_minus_9_then_resume_matches_uninterrupted_run_bit_for_bit(
    tmp_path: Path, write_recipe, kind: str, kill_after: int, steps: int
) -> None:
    if kind == "dcgan":
        raw = tiny_recipe(
            {"name": "digits", "image_size": 16},
            steps=150,
            train={"checkpoint_every": 7, "log_every": 5, "sample_every": 50, "ema": {"enabled": True, "decay": 0.95}},
            optim={"g": {"schedule": "linear"}},
        )
    elif kind == "cycle":  # two translators, two discriminators, two data streams and the pools' images
        from test_cycle import cycle_recipe

        raw = cycle_recipe(steps, checkpoint_every=7, log_every=5, sample_every=50)
    else:  # killed mid-fade: the phase, alpha and image count must come back from the checkpoint
        raw = _progressive_kill_recipe()
    recipe = write_recipe(raw)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(_cli("train", str(recipe), "--out", str(full), "--quiet"), check=True, env=env, timeout=300)

    proc = subprocess.Popen(
        _cli("train", str(recipe), "--out", str(killed), "--quiet"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while time.time() < deadline:
        ckpts = list_checkpoints(killed / "checkpoints")
        if ckpts and int(ckpts[-1].stem.split("_")[1]) >= kill_after:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    exports = (
        ("translators.safetensors",) if kind == "cycle" else ("generator.safetensors", "generator_ema.safetensors")
    )
    assert not (killed / exports[0]).exists(), "the run finished before it was killed"
    if kind == "progressive":
        last = torch.load(list_checkpoints(killed / "checkpoints")[-1], weights_only=True)
        assert 0 < int(last["G"]["fade_done"]) < int(last["G"]["fade_len"]), "the kill did not fall mid-fade"

    subprocess.run(_cli("train", "--resume", str(killed), "--quiet"), check=True, env=env, timeout=300)
    if kind == "cycle":
        last = [
            torch.load(list_checkpoints(d / "checkpoints")[-1], weights_only=True)["game"]["pools"]
            for d in (full, killed)
        ]
        for side in ("a", "b"):
            assert len(last[0][side]["images"]) == 6, "the pool should be full"
            assert torch.equal(last[0][side]["images"], last[1][side]["images"]), f"pool {side} differs after resume"
    for name in exports:
        a, b = load_file(full / name), load_file(killed / name)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}:{k} differs after resume"
    logged = [json.loads(x)["step"] for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert logged == sorted(set(logged)) and logged[-1] == steps, "resumed log has duplicates or gaps"


# ----------------------------------------------------------------------------- training-health signals


@pytest.mark.report
def test_signals_change_nothing_in_the_run_and_land_in_the_log(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    outs, rng = {}, {}
    for on in (True, False):
        raw = tiny_recipe(
            {"name": "digits", "image_size": 16}, steps=12, train={"signals": on, "log_every": 4, "sample_every": 6}
        )
        outs[on] = train(raw, tmp_path / str(on))
        rng[on] = torch.get_rng_state()
    a, b = (load_file(outs[on] / "generator.safetensors") for on in (True, False))
    assert all(torch.equal(a[k], b[k]) for k in a), "signals must not change training"
    # Nor draw from the global RNG (the class probe's network is built under a forked RNG): a resumed run
    # would otherwise draw differently from the uninterrupted one in games that use it.
    assert torch.equal(rng[True], rng[False])
    lines = [json.loads(x) for x in (outs[True] / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [4, 8, 12], "signals ride on the log lines; no extra lines"
    assert all(
        {
            "grad_norm_d",
            "grad_norm_g",
            "grad_norm_d_input",
            "weight_norm_G",
            "update_ratio_D",
            "d_acc_real",
            "d_acc_fake",
            "logit_gap",
        }
        <= set(r)
        for r in lines
    )
    assert all(
        0 <= r["d_acc_real"] <= 1 and r["logit_gap"] == pytest.approx(r["logit_real"] - r["logit_fake"]) for r in lines
    )
    assert all(r["grad_norm_g"] > 0 and 0 < r["update_ratio_G"] < 1 for r in lines)
    grids = [r for r in lines if "signals/sample_diversity" in r]  # grids at 6 and 12: the log lines at 8 and 12
    assert [r["step"] for r in grids] == [8, 12] and "signals/sample_change" in grids[1]
    assert grids[0]["signals/real_diversity"] > 0
    # digits has a shipped classifier: the grid's class coverage beside the same number of real images'.
    assert 0 < grids[0]["signals/class_coverage"] <= 1 and grids[0]["signals/real_class_coverage"] >= 0.8
    assert grids[0]["signals/class_kl"] >= 0 and grids[0]["signals/real_class_kl"] < 1.0
    plain = [json.loads(x) for x in (outs[False] / "metrics.jsonl").read_text().splitlines()]
    assert not any("grad_norm_g" in r or "signals/sample_diversity" in r for r in plain)
    assert 'id="health"' in (outs[True] / "report.html").read_text()  # the report plots them
    assert (outs[True] / "plots" / "grad_norms.png").is_file()
    assert 'id="health"' not in (outs[False] / "report.html").read_text()


def test_signal_measures_on_known_values() -> None:
    from ganforge.training.signals import SampleTracker, WeightTracker, mean_pairwise_distance

    assert mean_pairwise_distance(torch.ones(5, 3, 2, 2)) == 0.0
    x = torch.zeros(2, 4)
    x[1] = 2.0  # distance 4 over sqrt(4) dimensions
    assert mean_pairwise_distance(x) == pytest.approx(2.0)
    net = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[3.0, 4.0]]))
    tracker = WeightTracker({"G": net})
    with torch.no_grad():
        net.weight.add_(torch.tensor([[0.0, 1.0]]))
    m = tracker.measure()
    assert m["weight_norm_G"] == pytest.approx(float(torch.tensor([3.0, 5.0]).norm()))
    assert m["update_ratio_G"] == pytest.approx(1.0 / m["weight_norm_G"])
    assert tracker.measure()["update_ratio_G"] == 0.0  # no update since
    s = SampleTracker(x)
    first = s.measure(torch.zeros(2, 4))
    assert "sample_change" not in first and first["real_diversity"] == pytest.approx(2.0)
    assert s.measure(torch.ones(2, 4))["sample_change"] == pytest.approx(1.0)


def test_coverage_probes_count_classes_and_modes() -> None:
    from ganforge.data import mixture_spec
    from ganforge.training.signals import SampleTracker, class_probe, mode_probe

    # A "classifier" that reads the class off the first pixel: 3 of 10 classes, one-third each.
    probe = class_probe(lambda x: {"logits": torch.nn.functional.one_hot(x.flatten(1)[:, 0].long(), 10).float()}, 10)
    got = probe(torch.tensor([0.0, 1, 2, 0, 1, 2]).view(6, 1, 1, 1))
    assert got["class_coverage"] == pytest.approx(0.3) and got["class_kl"] == pytest.approx(math.log(10 / 3))
    centres, std = mixture_spec("ring")
    on_two = torch.cat([centres[:1].repeat(50, 1), centres[1:2].repeat(50, 1) + 0.5])  # mode 0, and off mode 1
    m = mode_probe(centres, std)(on_two)
    assert m["mode_coverage"] == pytest.approx(1 / 8) and m["high_quality"] == pytest.approx(0.5)
    s = SampleTracker(centres.repeat(10, 1), mode_probe(centres, std))
    out = s.measure(on_two)
    assert out["real_mode_coverage"] == 1.0 and out["mode_coverage"] == pytest.approx(1 / 8)


def test_d_input_gradient_norm_of_a_linear_critic() -> None:
    from ganforge.games.base import input_grad_norm

    x = torch.randn(4, 3, requires_grad=True)
    w = torch.tensor([3.0, 4.0, 0.0])
    assert float(input_grad_norm(x @ w, x)) == pytest.approx(5.0)  # d(x.w)/dx = w for every sample


def test_the_logged_gradient_norm_is_the_norm_of_the_first_update(tmp_path: Path) -> None:
    from ganforge.training.context import TrainContext
    from ganforge.training.precision import Precision

    net = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    ctx = TrainContext(
        net,
        net,
        opt,
        opt,
        Precision("fp32", torch.device("cpu")),
        torch.device("cpu"),
        4,
        2,
        lambda n=None: (torch.zeros(4, 3), None),
        torch.Generator(),
    )
    x = torch.randn(8, 3)
    ctx.measure_grads = True
    ctx.step_d(net(x).sum())
    ctx.step_d(100 * net(x).sum())  # a second (lazy-penalty-like) update does not overwrite it
    want = torch.cat([x.sum(0), torch.tensor([8.0])]).norm()
    assert float(ctx.grad_norms["d"]) == pytest.approx(float(want), rel=1e-5)
