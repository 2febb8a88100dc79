"""CycleGAN end to end: unpaired data, the cycle game and its losses, the lr schedule, translate, sample, the bench."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from ganforge.config import DataConfig, OptimizerConfig, build_recipe, load_recipe
from ganforge.data import load_dataset
from ganforge.data.unpaired import UnpairedStream, holdout_split
from ganforge.errors import ConfigError
from ganforge.losses import cycle_loss, identity_loss
from ganforge.models import build_discriminator, build_translator
from ganforge.training.optim import build_scheduler
from ganforge.training.trainer import Trainer


def cycle_recipe(steps: int = 6, **train: object) -> dict:
    """A few-second CycleGAN on 16x16 digits, 0 <-> 1, with tiny networks and a pool that fills within two steps."""
    return {
        "name": "tiny-cycle",
        "seed": 0,
        "data": {
            "name": "unpaired",
            "image_size": 16,
            "a": {"name": "digits", "classes": ["0"]},
            "b": {"name": "digits", "classes": ["1"]},
        },
        "model": {
            "generator": {"name": "cyclegan_resnet", "args": {"width": 4, "downsamplings": 1, "blocks": 1}},
            "discriminator": {"name": "patchgan", "args": {"width": 4, "layers": 1}},
        },
        "loss": "least_squares",
        "game": {"name": "cycle", "args": {"pool_size": 6}},
        "optim": {"g": {"schedule": "linear", "decay_start": 0.5}, "d": {"schedule": "linear", "decay_start": 0.5}},
        "train": {
            "steps": steps,
            "batch_size": 4,
            "precision": "fp32",
            "log_every": 2,
            "sample_every": 3,
            "checkpoint_every": 3,
            "n_samples": 4,
            "progress": False,
            **train,
        },
    }


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ganforge.cli", *args]


# --------------------------------------------------------------------------- networks and losses


@pytest.mark.parametrize("size, layers", [(32, 2), (64, 3), (256, 3)])
def test_both_networks_fit_32_64_and_256_pixels(size: int, layers: int) -> None:
    G = build_translator("cyclegan_resnet", (3, size, size), {"width": 8, "blocks": 2})
    D = build_discriminator("patchgan", (3, size, size), {"width": 8, "layers": layers})
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        y, logits = G(x), D(x)
    assert y.shape == x.shape and float(y.abs().max()) <= 1.0
    assert logits.shape[:2] == (1, 1) and logits.shape[2] >= 1


def test_identity_loss_is_zero_for_identity_translators_and_not_otherwise() -> None:
    a, b = torch.rand(4, 1, 8, 8) * 2 - 1, torch.rand(4, 1, 8, 8) * 2 - 1
    ident = nn.Identity()
    assert float(identity_loss(a, ident(a), b, ident(b))) == 0.0
    assert float(identity_loss(a, -a, b, b)) == pytest.approx(float((2 * a).abs().mean()))


def test_cycle_loss_is_the_mean_absolute_error_of_both_cycles() -> None:
    g = torch.Generator().manual_seed(0)
    a, ra, b, rb = (torch.randn(3, 1, 4, 4, generator=g) for _ in range(4))
    want = (
        sum(float(abs(float(x) - float(y))) for x, y in zip(ra.flatten(), a.flatten())) / a.numel()
        + sum(float(abs(float(x) - float(y))) for x, y in zip(rb.flatten(), b.flatten())) / b.numel()
    )
    assert float(cycle_loss(a, ra, b, rb)) == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match="matching shapes"):
        cycle_loss(a, ra[:, :, :2], b, rb)


@pytest.mark.parametrize("decay_start, start", [(0.5, 50), (30, 30), (0, 0)])
def test_lr_is_constant_then_decays_linearly_to_zero(decay_start: float, start: int) -> None:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=2e-4)
    sched = build_scheduler(opt, OptimizerConfig(lr=2e-4, schedule="linear", decay_start=decay_start), 100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert all(lr == pytest.approx(2e-4) for lr in lrs[: start + 1])
    assert lrs[start + (100 - start) // 2] == pytest.approx(1e-4, rel=0.03)
    assert lrs[-1] == pytest.approx(2e-4 / (100 - start))  # one step from 0
    assert all(x >= y for x, y in itertools.pairwise(lrs))


@pytest.mark.parametrize("milestones, drops", [([0.5, 0.75], [50, 75]), ([30], [30])])
def test_step_schedule_multiplies_the_lr_at_each_milestone(milestones: list, drops: list[int]) -> None:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1e-4)
    sched = build_scheduler(opt, OptimizerConfig(lr=1e-4, schedule="step", milestones=milestones, factor=0.5), 100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    want = [1e-4 * 0.5 ** sum(i >= d for d in drops) for i in range(100)]
    assert lrs == pytest.approx(want)


def test_step_schedule_is_checked() -> None:
    with pytest.raises(ConfigError, match="needs milestones"):
        load_recipe("demo", ["optim.g.schedule=step"])
    with pytest.raises(ConfigError, match="schedule 'step' only"):
        load_recipe("demo", ["optim.g.milestones=[0.5]"])
    with pytest.raises(ConfigError, match="fractions of train.steps"):
        load_recipe("demo", ["optim.g.schedule=step", "optim.g.milestones=[1.5]"])
    with pytest.raises(ConfigError, match="factor"):
        load_recipe("demo", ["optim.g.schedule=step", "optim.g.milestones=[10]", "optim.g.factor=0"])


def test_decay_start_is_checked() -> None:
    with pytest.raises(ConfigError, match="fraction of train.steps"):
        load_recipe("cycle-fashion", ["optim.g.decay_start=1.5"])
    with pytest.raises(ConfigError, match="schedule 'linear' only"):
        load_recipe("demo", ["optim.g.decay_start=10"])


# --------------------------------------------------------------------------- unpaired data


def test_unpaired_data_keeps_classes_and_test_splits_and_shuffles_sides_independently() -> None:
    cfg = DataConfig(
        name="unpaired",
        image_size=16,
        a=DataConfig(name="digits", classes=["0"]),
        b=DataConfig(name="digits", classes=["one"[:0] + "1"]),
    )
    train, test = load_dataset(cfg), load_dataset(cfg, split="test")
    for ds in (train, test):
        assert ds.shape == (1, 16, 16) and ds.a.y is None and ds.b.y is None
    assert train.a.info["classes"] == ["0"] and train.b.info["classes"] == ["1"]
    assert 100 < len(train.a) < 200 and 20 < len(test.a) < 60
    full = load_dataset("digits", image_size=16, labels=True)
    assert len(train.a) == int((full.y == 0).sum())
    s = UnpairedStream(train, 8, seed=3)
    s.next()
    state = s.state_dict()
    a1, b1 = s.next()
    s2 = UnpairedStream(train, 8, seed=3)
    s2.load_state_dict(json.loads(json.dumps(state)))
    a2, b2 = s2.next()
    assert torch.equal(a1, a2) and torch.equal(b1, b2)
    from ganforge.data.unpaired import UnpairedDataset

    twin = UnpairedStream(UnpairedDataset(train.a, train.a), 8, seed=3)  # the same images on both sides
    assert not torch.equal(twin.a.next_indices(), twin.b.next_indices()), "the two sides must be shuffled apart"


def test_a_folder_side_holds_out_a_fixed_tenth_as_its_test_split(tmp_path: Path) -> None:
    from ganforge.plots import save_images

    save_images(torch.rand(30, 1, 8, 8) * 2 - 1, tmp_path / "faces")
    cfg = DataConfig(
        name="unpaired",
        image_size=8,
        channels=1,
        a=DataConfig(name="folder", path=str(tmp_path / "faces")),
        b=DataConfig(name="digits", classes=["3"]),
    )
    train, test = load_dataset(cfg), load_dataset(cfg, split="test")
    assert (len(train.a), len(test.a)) == (27, 3)
    seen = {tuple(x.flatten().tolist()) for x in train.a.x} & {tuple(x.flatten().tolist()) for x in test.a.x}
    assert not seen, "a held-out image is also a training image"
    assert torch.equal(holdout_split(30, "test", "k"), holdout_split(30, "test", "k"))


@pytest.mark.parametrize(
    "cfg, match",
    [
        (DataConfig(name="unpaired", a=DataConfig(name="digits")), "data.b is missing"),
        (DataConfig(name="digits", a=DataConfig(name="digits")), "belong to name: unpaired"),
        (
            DataConfig(name="unpaired", a=DataConfig(name="digits", classes=["sneaker"]), b=DataConfig(name="digits")),
            "data.a: .*class of dataset 'digits'.*Valid choices",
        ),
        (
            DataConfig(
                name="unpaired", a=DataConfig(name="digits", image_size=16), b=DataConfig(name="digits", image_size=8)
            ),
            "shape",
        ),
        (
            DataConfig(name="unpaired", a=DataConfig(name="ring"), b=DataConfig(name="digits")),
            "both sides must be image",
        ),
    ],
)
def test_bad_unpaired_specs_are_refused_with_the_fix(cfg: DataConfig, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_dataset(cfg)


def test_fashion_class_names_match_loosely() -> None:
    from ganforge.data.loaders import _norm_class

    assert _norm_class("Ankle boot") == _norm_class("ankle_boot") == _norm_class("ANKLE-BOOT")


# --------------------------------------------------------------------------- the trainer


@pytest.mark.parametrize(
    "change, match",
    [
        ({"game": {"name": "standard"}}, "data 'unpaired' holds two domains.*cycle"),
        ({"data": {"name": "digits"}}, "translates between two image domains"),
        ({"train": {"ema": {"enabled": True}}}, "train.ema"),
        ({"eval": {"every": 2}}, "eval.every"),
    ],
)
def test_mismatched_game_data_and_settings_are_refused(tmp_path: Path, change: dict, match: str) -> None:
    raw = cycle_recipe()
    for k, v in change.items():
        raw[k] = {**raw.get(k, {}), **v} if k != "data" else v
    if change.get("game", {}).get("name") == "standard":
        raw["game"] = {"name": "standard"}
        raw["model"] = {
            "generator": {"name": "dcgan", "args": {"width": 4}},
            "discriminator": {"name": "dcgan", "args": {"width": 4}},
        }
    with pytest.raises(ConfigError, match=match):
        Trainer.start(build_recipe(raw), tmp_path / "run", progress=False)


@pytest.mark.report
def test_a_cycle_run_trains_logs_four_networks_and_exports_both_translators(tmp_path: Path) -> None:
    from ganforge.translation import load_translators

    out = Trainer.start(build_recipe(cycle_recipe()), tmp_path / "run", progress=False).run()
    logs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"g_ab", "g_ba", "d_a", "d_b", "cycle_aba", "cycle_bab", "identity_ab", "identity_ba"} <= set(logs[-1])
    assert logs[-1]["lr_g"] < logs[0]["lr_g"]
    assert (out / "translators.safetensors").is_file() and not (out / "generator.safetensors").exists()
    nets, _recipe, _shape = load_translators(out)
    ck, _, _ = load_translators(sorted((out / "checkpoints").glob("step_*.pt"))[-1])
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(nets["G_ab"](x), ck["G_ab"](x)) and not torch.equal(nets["G_ab"](x), nets["G_ba"](x))
    html = (out / "report.html").read_text()
    assert "triplet" in html.lower() and "D_b" in html


def test_without_cycle_or_identity_the_step_computes_neither(tmp_path: Path) -> None:
    raw = cycle_recipe(steps=2)
    raw["game"]["args"] = {"cycle_weight": 0, "pool_size": 0}
    out = Trainer.start(build_recipe(raw), tmp_path / "run", progress=False).run()
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert "cycle_aba" not in last and "identity_ab" not in last


def test_translate_a_folder_keeps_names_and_sample_writes_triplets(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from PIL import Image

    from ganforge.cli import main
    from ganforge.plots import save_images

    out = Trainer.start(build_recipe(cycle_recipe(steps=2)), tmp_path / "run", progress=False).run()
    inputs = tmp_path / "in"
    save_images(torch.rand(3, 1, 20, 20) * 2 - 1, inputs / "sub")
    (inputs / "notes.txt").write_text("not an image")
    (inputs / "broken.png").write_bytes(b"not a png")
    args = ["translate", str(out), str(inputs), "--direction", "b2a", "--out", str(tmp_path / "t")]
    assert main(args) == 0
    written = sorted(p.relative_to(tmp_path / "t").as_posix() for p in (tmp_path / "t").rglob("*.png"))
    assert (
        written == [f"sub/sample_{i:05d}.png" for i in range(3)] and "skipped 1 unreadable" in capsys.readouterr().err
    )
    assert Image.open(tmp_path / "t" / written[0]).size == (16, 16)
    assert main(args) != 0 and "--overwrite" in capsys.readouterr().err
    assert main([*args[:4], "up", "--out", str(tmp_path / "u")]) != 0 and "a2b" in capsys.readouterr().err

    # In a fresh process, as a user runs it: triplets of held-out images, two per row.
    res = subprocess.run(
        _cli("sample", str(out), "--n", "3", "--out", str(tmp_path / "trip.png")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    w, h = Image.open(tmp_path / "trip.png").size
    assert w > h, "six columns (two triplets) per row, three rows"
    assert main(["eval", str(out), "--n", "10"]) != 0 and "translate" in capsys.readouterr().err
    ckpt = sorted((out / "checkpoints").glob("step_*.pt"))[-1]  # a checkpoint inside the run: triplets too
    assert main(["sample", str(ckpt), "--n", "2", "--out", str(tmp_path / "trip2.png")]) == 0


def test_the_bench_measures_both_directions_and_the_floor(tmp_path: Path) -> None:
    from ganforge.benchmarks.cycle import run_cycle_bench

    res = run_cycle_bench(
        tmp_path, steps=4, base="digits", cells=["shoes__full", "shoes__no_cycle"], workers=1, progress=False
    )
    cell = res["cells"]["shoes__full"]
    for d in ("a2b", "b2a"):
        m = cell["directions"][d]
        assert 0 <= m["success"] <= 1 and m["fd"] > 0 and m["cycle_l1"] > 0
        assert cell["floor"][d]["cycle_l1"] == 0 and cell["floor"][d]["kept"] == pytest.approx(1.0)
    assert res["cells"]["shoes__no_cycle"]["game_args"]["cycle_weight"] == 0
    md = (tmp_path / "cycle.md").read_text()
    assert "0 → 1" in md and "no_cycle" in md and "Bar" in md
    assert (tmp_path / "plots" / "shoes__full.png").is_file()
    with pytest.raises(ConfigError, match="Valid choices"):
        run_cycle_bench(tmp_path, steps=4, base="digits", cells=["shoes__nothing"])


@pytest.mark.parametrize("recipe", ["cycle-fashion", "cycle-folder"])
def test_shipped_cycle_recipes_train_shrunk(recipe: str, tmp_path: Path) -> None:
    from ganforge.cli import main
    from ganforge.translation import load_translators

    shrink = [
        "data.image_size=16",
        "train.steps=2",
        "train.batch_size=2",
        "train.precision=fp32",
        "train.threads=1",
        "train.progress=false",
        "train.n_samples=2",
        "model.generator.args.width=4",
        "model.discriminator.args.width=4",
        "model.discriminator.args.layers=1",
    ]
    if recipe == "cycle-folder":
        for side, seed in (("a", "1"), ("b", "2")):
            folder = tmp_path / side
            assert (
                main(["export", "digits", "--out", str(folder), "--n", "12", "--image-size", "16", "--seed", seed]) == 0
            )
            shrink.append(f"data.{side}.path={folder}")
    else:
        shrink += ["data.a={name: digits, classes: [7]}", "data.b={name: digits, classes: [9]}"]
    r = load_recipe(recipe, shrink)
    assert "arXiv:1703.10593" in r.source and r.game.name == "cycle"
    out = Trainer(r, tmp_path / recipe, progress=False).run()
    nets, _, shape = load_translators(out)
    assert shape[1:] == (16, 16) and set(nets) == {"G_ab", "G_ba"}


def test_kept_is_one_for_a_translation_that_keeps_brightness_and_near_zero_for_one_that_ignores_it() -> None:
    from ganforge.metrics.translation import direction_metrics, object_brightness

    class Fake:  # features: the mean and spread of each image; logits: class 1 when the object is brighter than grey
        def extract(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            f = torch.stack([x.mean((1, 2, 3)), x.std((1, 2, 3))], 1)
            b = x.amax((1, 2, 3))
            return {"features": f, "logits": torch.stack([-b, b], 1)}

    g = torch.Generator().manual_seed(0)
    level = torch.rand(400, generator=g)
    x = torch.full((400, 1, 8, 8), -1.0)
    x[:, :, 2:6, 2:6] = level.view(-1, 1, 1, 1)  # a square object of its own brightness on black
    assert torch.allclose(object_brightness(x), (level + 1) / 2)
    same = direction_metrics(x, x.clone(), x, x, 1, Fake())
    shuffled = direction_metrics(x, x[torch.randperm(400, generator=g)], x, x, 1, Fake())
    assert same["kept"] == pytest.approx(1.0) and same["success"] == pytest.approx(float((level > 0).float().mean()))
    assert same["cycle_l1"] == 0.0
    assert abs(shuffled["kept"]) < 0.15 and same["fd"] == pytest.approx(0.0, abs=1e-6)
