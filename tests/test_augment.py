"""Differentiable augmentation (DiffAugment, ADA): gradients, identity at p = 0, the controller, real and fake alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_recipe
from test_infogan_ssgan import FakeCtx
from torch import Tensor, nn

from ganforge.augment import AdaController, AdaPipeline, Augmentation, DiffAugment, build_augmentation
from ganforge.augment.ada import GROUPS
from ganforge.augment.diffaugment import POLICIES
from ganforge.errors import ConfigError
from ganforge.games import build_game
from ganforge.latent import LatentSpace

SHAPE = (1, 16, 16)

CASES = (
    [("diffaugment", {"policy": p}) for p in POLICIES]
    + [("ada", {"p": 0.6, "groups": g}) for g in GROUPS]
    + [("diffaugment", {}), ("ada", {"p": 0.6})]
)


class TinyG(nn.Module):
    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.fc = nn.Linear(8, channels * 16 * 16)
        self.channels = channels

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return torch.tanh(self.fc(z)).view(-1, self.channels, 16, 16)


class TinyD(nn.Module):
    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.fc = nn.Linear(channels * 16 * 16, 1)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.fc(x.flatten(1)).squeeze(1)


@pytest.mark.parametrize(
    "name,args", CASES, ids=[f"{n}-{a.get('policy') or a.get('groups') or 'all'}" for n, a in CASES]
)
@pytest.mark.parametrize("channels", [1, 3])
def test_every_augmentation_passes_gradients_to_the_generator(name: str, args: dict, channels: int) -> None:
    torch.manual_seed(0)
    G, D, aug = TinyG(channels), TinyD(channels), build_augmentation(name, args)
    x = G(torch.randn(32, 8))
    out = aug(x)
    assert out.shape == x.shape and not torch.equal(out, x)  # it did something ...
    D(out).mean().backward()
    g = G.fc.weight.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0  # ... and G learns through it


@pytest.mark.parametrize("groups", ["blit", "geom", "color", "blit,geom,color"])
def test_ada_at_p_zero_is_the_identity(groups: str) -> None:
    x = torch.rand(16, 3, 16, 16) * 2 - 1
    assert torch.equal(AdaPipeline(groups)(x, 0.0), x)
    aug = build_augmentation("ada", {"groups": groups, "p": 0.0})
    for _ in range(3):
        assert torch.equal(aug(x), x)
    assert not torch.equal(build_augmentation("ada", {"groups": groups, "p": 1.0})(x), x)


def test_ada_matrices_are_the_identity_where_no_transform_fires_and_blits_move_pixels_exactly() -> None:
    pipe = AdaPipeline("blit,geom,color")
    eye3, eye4 = torch.eye(3).expand(64, 3, 3), torch.eye(4).expand(64, 4, 4)
    assert torch.equal(pipe.geometry_matrix(64, 16, 16, 0.0, torch.device("cpu")), eye3)
    assert torch.equal(pipe.color_matrix(64, 3, 0.0, torch.device("cpu")), eye4)
    assert not torch.equal(pipe.geometry_matrix(64, 16, 16, 0.5, torch.device("cpu")), eye3)
    # Flips, quarter turns and whole-pixel shifts only move pixels: the output's values are the input's.
    torch.manual_seed(1)
    x = torch.randn(32, 1, 16, 16)
    y = AdaPipeline("blit")(x, 1.0)
    moved = (y.flatten(1)[:, :, None] - x.flatten(1)[:, None, :]).abs().min(dim=2).values
    assert moved.max() < 1e-5


def test_ada_controller_raises_p_when_d_overfits_and_lowers_it_otherwise() -> None:
    c = AdaController(target=0.6, interval=4, speed_images=64_000)
    step = 64 * 4 / 64_000
    for _ in range(4):  # r_t = 1: D is sure every real image is real (overfitting)
        c.observe(torch.ones(64))
        c.update(64)
    assert c.rt == 1.0 and c.p == pytest.approx(step)
    for _ in range(3):  # p changes only every `interval` D updates
        c.observe(torch.ones(64))
        c.update(64)
        assert c.p == pytest.approx(step)
    c.observe(torch.ones(64))
    c.update(64)
    assert c.p == pytest.approx(2 * step)
    for _ in range(4):  # r_t = 0.25 < 0.6: p falls
        c.observe(torch.tensor([1.0, 1.0, -1.0, 1.0, -1.0, -1.0, 1.0, -1.0] * 8) * torch.tensor([1.0] * 64))
        c.observe(-torch.ones(16) * 0)  # sign(0) = 0 counts as not-real
        c.update(64)
    assert c.p == pytest.approx(step)
    for _ in range(100):  # p stays in [0, 1]
        c.observe(-torch.ones(64))
        c.update(64)
    assert c.p == 0.0
    # The paper's speed: at 500k images for 0 -> 1, a batch of 64 every 4 updates moves p by 64*4/500k.
    fast = AdaController(speed_images=500_000)
    for _ in range(4):
        fast.observe(torch.ones(8))
        fast.update(64)
    assert fast.p == pytest.approx(64 * 4 / 500_000)
    for bad in ({"target": 1.5}, {"interval": 0}, {"speed_images": 0}, {"p": 2}):
        with pytest.raises(ConfigError, match="augment ada"):
            AdaController(**bad)


def test_augmentation_arguments_are_checked_with_the_choices_listed() -> None:
    with pytest.raises(ConfigError, match="ada, diffaugment, off"):
        build_augmentation("adda")
    with pytest.raises(ConfigError, match="color, translation, cutout"):
        DiffAugment(policy="color,zoom")
    with pytest.raises(ConfigError, match="blit, geom, color"):
        build_augmentation("ada", {"groups": "blit,warp"})
    with pytest.raises(ConfigError, match="scale_std"):
        build_augmentation("ada", {"scale_sd": 0.1})
    with pytest.raises(ConfigError, match="policy"):
        build_augmentation("diffaugment", {"polcy": "color"})


class Recorder(Augmentation):
    """Records every batch the game augments (a copy, and whether it carries a gradient path to G)."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[Tensor, bool]] = []

    def __call__(self, x: Tensor) -> Tensor:
        self.seen.append((x.detach().clone(), x.requires_grad))
        return x + 0.0


class RecordingCtx(FakeCtx):
    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.reals: list[Tensor] = []

    def real_batch(self) -> tuple[Tensor, Tensor]:
        x, y = super().real_batch()
        self.reals.append(x.clone())
        return x, y


@pytest.mark.parametrize(
    "game,loss,regs",
    [
        ("standard", "non_saturating", []),
        ("standard", "wasserstein", [{"name": "gradient_penalty", "weight": 10.0}]),
        ("standard", "non_saturating", [{"name": "r1", "weight": 1.0}]),
    ],
)
def test_the_game_augments_real_and_fake_alike_in_both_steps(game: str, loss: str, regs: list) -> None:
    torch.manual_seed(0)
    g = build_game(game, loss, {}, 1, {}, regs)
    rec = Recorder()
    g.augment = rec
    ctx = RecordingCtx(TinyG(), TinyD(), LatentSpace(8), batch=8)
    g.d_step(ctx)
    d_calls = list(rec.seen)
    assert len(d_calls) == 2  # D's loss sees augmented reals and fakes; its penalties reuse those inputs
    assert any(torch.equal(x, ctx.reals[-1]) for x, _ in d_calls)
    assert any(not torch.equal(x, ctx.reals[-1]) for x, _ in d_calls)
    rec.seen.clear()
    g.g_step(ctx)
    assert len(rec.seen) == 1 and rec.seen[0][1]  # G's samples, augmented on a path that carries G's gradient


def test_games_with_their_own_step_refuse_augmentation_and_points_are_refused() -> None:
    with pytest.raises(ConfigError, match="game began cannot use augment: diffaugment"):
        build_game("began", "non_saturating", {}, 1, {}, [], {"name": "diffaugment", "args": {}})
    build_game("began", "non_saturating", {}, 1, {}, [], {"name": "off"})  # off is always fine
    with pytest.raises(ConfigError, match="augment:"):
        build_game("standard", "non_saturating", {}, 1, {"augment": "ada"})
    g = build_game("standard", "non_saturating", {}, 1, {}, [], {"name": "ada"})

    class Points:
        kind, name = "points", "ring"

    with pytest.raises(ConfigError, match="2-D points"):
        g.check(LatentSpace(2), Points())


@pytest.mark.report
def test_ada_state_is_logged_checkpointed_and_resumed(tmp_path: Path, write_recipe) -> None:
    from ganforge.cli import main

    raw = tiny_recipe(
        {"name": "digits", "image_size": 8},
        steps=20,
        augment={"name": "ada", "args": {"speed_images": 2000, "interval": 2, "target": 0.2}},
    )
    raw["train"].update(checkpoint_every=10, log_every=1)  # logged values are means over the log interval
    assert main(["train", str(write_recipe(raw)), "--out", str(tmp_path / "full")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    ps = [r["aug_p"] for r in rows if "aug_p" in r]
    assert ps and max(ps) > 0 and all(0 <= p <= 1 for p in ps) and any("ada_rt" in r for r in rows)
    assert "Augmentation (ADA)" in (tmp_path / "full" / "report.html").read_text()  # p and r_t plotted
    ck = torch.load(tmp_path / "full" / "checkpoints" / "step_0000020.pt", weights_only=True)
    state = ck["game"]["augment"]
    assert state["p"] == pytest.approx(ps[-1]) and state["updates"] == 20
    # Stopped at 10 and resumed to 20, the controller continues where it was: the same p as without a stop.
    raw10 = {**raw, "train": {**raw["train"], "steps": 10}}
    assert main(["train", str(write_recipe(raw10, "r10.yaml")), "--out", str(tmp_path / "part")]) == 0
    assert main(["train", "--resume", str(tmp_path / "part"), "--steps", "20"]) == 0
    part = torch.load(tmp_path / "part" / "checkpoints" / "step_0000020.pt", weights_only=True)
    assert part["game"]["augment"]["updates"] == 20 and part["game"]["augment"]["p"] == pytest.approx(state["p"])


@pytest.mark.parametrize(
    "recipe,game_over",
    [
        ("acgan-fashion", []),
        ("infogan-fashion", []),
        ("ssgan-fashion", []),
        ("dcgan-fashion", ["game={name: unrolled, args: {unroll: 2}}"]),
        ("dcgan-fashion", ["game={name: extragradient}"]),
        ("wgan-gp-fashion", []),
    ],
)
def test_every_game_on_the_standard_step_trains_with_ada(recipe: str, game_over: list, tmp_path: Path) -> None:
    from test_paper_recipes import shrink

    from ganforge.config import load_recipe
    from ganforge.training.trainer import Trainer

    r = load_recipe(
        recipe, shrink(recipe) + game_over + ["augment={name: ada, args: {p: 0.5, speed_images: 100, interval: 1}}"]
    )
    trainer = Trainer(r, tmp_path / "run", progress=False)
    trainer.run()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    p = [row["aug_p"] for row in rows if "aug_p" in row]
    assert len(p) == 2 and p != [0.5, 0.5]  # ADA observed D's real logits and moved p in every game
