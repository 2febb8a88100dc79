"""BEGAN (Berthelot et al. 2017): architecture, losses, the k_t controller, M_global, the game and a tiny run."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from conftest import tiny_recipe
from torch import nn

from ganforge.config import OptimizerConfig, build_recipe, load_recipe
from ganforge.errors import ConfigError
from ganforge.games import build_game
from ganforge.losses import (
    autoencoder_loss,
    began_balance,
    began_d_loss,
    began_g_loss,
    began_k_update,
    began_m_global,
)
from ganforge.models import build_discriminator, build_generator
from ganforge.training.checkpoint import latest_good_checkpoint
from ganforge.training.context import TrainContext
from ganforge.training.optim import build_optimizer
from ganforge.training.precision import Precision
from ganforge.training.trainer import Trainer

# ----------------------------------------------------------------------------------------------- models


@pytest.mark.parametrize("shape", [(1, 32, 32), (3, 16, 16)])
def test_shapes_of_generator_and_autoencoder_discriminator(shape: tuple[int, int, int]) -> None:
    G = build_generator("began", 8, shape, {"width": 8})
    D = build_discriminator("began", shape, {"width": 8, "hidden": 8})
    x = G(torch.randn(5, 8))
    assert x.shape == (5, *shape)
    assert D(x).shape == (5, *shape)  # D returns a reconstruction, not a logit
    assert D.features(x).shape == (5, 8)


def test_layers_follow_the_paper() -> None:
    shape = (1, 32, 32)  # two 2x stages between 8x8 and 32x32
    G = build_generator("began", 8, shape, {"width": 8})
    D = build_discriminator("began", shape, {"width": 8, "hidden": 8})
    for net in (G, D):
        mods = list(net.modules())
        assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in mods)
        assert any(isinstance(m, nn.ELU) for m in mods)
        ups = [m for m in mods if isinstance(m, nn.Upsample)]
        assert all(m.mode == "nearest" and m.scale_factor == 2 for m in ups)
        convs = [m for m in mods if isinstance(m, nn.Conv2d)]
        assert convs and all(m.kernel_size == (3, 3) for m in convs)
        assert not any(isinstance(m, nn.ConvTranspose2d) for m in mods)
    assert len([m for m in G.modules() if isinstance(m, nn.Upsample)]) == 2
    # Encoder: downsampling by stride-2 3x3 convolutions, channels growing linearly n -> 2n -> 3n.
    strided = [m for m in D.encoder.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    assert [(m.in_channels, m.out_channels) for m in strided] == [(8, 16), (16, 24)]
    assert len([m for m in D.decoder.modules() if isinstance(m, nn.Upsample)]) == 2
    # Embedding h and the decoder's input are linear maps without a non-linearity.
    assert D.encoder.fc.out_features == 8 and D.decoder.fc.in_features == 8
    h = torch.randn(3, 1, 32, 32)
    x = D.encoder.net(h)
    assert x.shape == (3, 24, 8, 8)  # bottleneck 8x8 with 3n channels


def test_generator_output_is_linear_like_the_papers_decoder() -> None:
    # A tanh on G's output (ganforge before 2026-12) collapsed Fashion-MNIST runs to black images: once G drifts
    # towards the blank image D reconstructs best, the saturated tanh leaves it no gradient. The paper's G ends in
    # a linear convolution, like D's decoder.
    torch.manual_seed(0)
    G = build_generator("began", 8, (1, 16, 16), {"width": 8})
    last = G.decoder.net[-1]
    assert isinstance(last, nn.Conv2d) and isinstance(G.out, nn.Identity)
    with torch.no_grad():
        last.bias.fill_(-5.0)  # a pre-activation far past -1: a tanh would flatten it to -1 and its gradient to ~0
    z = torch.randn(4, 8)
    x = G(z)
    assert torch.allclose(x, G.decoder(z)) and x.max() < -3
    x.sum().backward()
    assert last.bias.grad.abs().item() == pytest.approx(4 * 16 * 16)  # d(sum)/d(bias): every pixel, undamped
    assert isinstance(build_generator("began", 8, (1, 16, 16), {"width": 8, "output": "tanh"}).out, nn.Tanh)
    with pytest.raises(ConfigError, match="output"):
        build_generator("began", 8, (1, 16, 16), {"output": "sigmoid"})
    # Samples written or scored are images all the same: generate() clamps them to [-1, 1].
    from ganforge.generation import generate

    assert generate(G, z).min().item() == -1.0


def test_bad_model_arguments() -> None:
    with pytest.raises(ConfigError, match="power-of-two"):
        build_generator("began", 8, (1, 12, 12), {})
    with pytest.raises(ConfigError, match=">= 8"):
        build_discriminator("began", (1, 4, 4), {})
    with pytest.raises(ConfigError):
        build_discriminator("began", (2,), {})
    with pytest.raises(ConfigError):
        build_discriminator("began", (1, 8, 8), {"width": 8, "hidden": 0})


# ----------------------------------------------------------------------------------------------- losses


def test_autoencoder_loss_is_per_sample_mean_absolute_error() -> None:
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])  # (2, 1, 2, 2)
    recon = torch.tensor([[[[1.0, 0.0], [3.0, 8.0]]], [[[-1.0, 1.0], [0.5, -0.5]]]])
    # sample 0: |0| + |2| + |0| + |-4| = 6 -> 1.5; sample 1: 1 + 1 + 0.5 + 0.5 = 3 -> 0.75
    assert torch.allclose(autoencoder_loss(x, recon), torch.tensor([1.5, 0.75]))
    assert autoencoder_loss(x.bfloat16(), recon.bfloat16()).dtype == torch.float32
    with pytest.raises(ValueError):
        autoencoder_loss(x, recon[:1])


def test_began_losses_against_hand_computed_values() -> None:
    l_real, l_fake = torch.tensor(0.4), torch.tensor(0.3)
    d, g = began_d_loss(l_real, l_fake, 0.25), began_g_loss(l_fake)
    bal, m = began_balance(l_real, l_fake, 0.5), began_m_global(l_real, l_fake, 0.5)
    assert d.item() == pytest.approx(0.4 - 0.25 * 0.3)  # L_D = L(x) - k L(G(z))
    assert g.item() == pytest.approx(0.3)  # L_G = L(G(z))
    assert bal.item() == pytest.approx(0.5 * 0.4 - 0.3)  # -0.1
    assert m.item() == pytest.approx(0.4 + 0.1)  # M_global = L(x) + |gamma L(x) - L(G(z))|
    assert began_d_loss(l_real, l_fake, 0.0).item() == pytest.approx(0.4)
    assert began_g_loss(l_fake) is l_fake


def test_m_global_formula() -> None:
    for l_real, l_fake, gamma in [(1.0, 0.2, 0.5), (0.3, 0.9, 1.0), (0.8, 0.4, 0.5), (2.0, 0.0, 0.1)]:
        expected = l_real + abs(gamma * l_real - l_fake)
        assert began_m_global(l_real, l_fake, gamma) == pytest.approx(expected)
        assert began_balance(l_real, l_fake, gamma) == pytest.approx(gamma * l_real - l_fake)
    # At equilibrium (L(G(z)) = gamma L(x)) the measure is just L(x).
    assert began_m_global(0.6, 0.3, 0.5) == pytest.approx(0.6)
    t = began_m_global(torch.tensor(0.6), torch.tensor(0.5), 0.5)
    assert isinstance(t, torch.Tensor) and t.item() == pytest.approx(0.8)


def test_k_update_is_the_clipped_proportional_controller() -> None:
    assert began_k_update(0.1, 0.4, 0.1, 0.5, 0.001) == pytest.approx(0.1 + 0.001 * (0.2 - 0.1))
    assert began_k_update(0.0, 0.1, 0.9, 0.5, 0.001) == 0.0  # negative balance clips at 0
    assert began_k_update(0.9995, 10.0, 0.0, 1.0, 0.001) == 1.0  # positive balance clips at 1
    assert isinstance(began_k_update(0.0, torch.tensor(1.0), torch.tensor(0.0), 0.5, 0.1), float)


def test_k_stays_in_unit_interval_under_extreme_losses() -> None:
    rng = random.Random(0)
    k = 0.0
    seen_low = seen_high = False
    for i in range(5000):
        scale = 10.0 ** rng.uniform(-3, 6)
        l_real, l_fake = rng.random() * scale, rng.random() * scale
        if i % 3 == 0:
            l_real, l_fake = 1e6, 0.0  # huge positive balance
        elif i % 7 == 0:
            l_real, l_fake = 0.0, 1e6  # huge negative balance
        k = began_k_update(k, l_real, l_fake, rng.choice([0.1, 0.5, 1.0]), rng.choice([0.0, 0.001, 1.0, 100.0]))
        assert 0.0 <= k <= 1.0
        seen_low |= k == 0.0
        seen_high |= k == 1.0
    assert seen_low and seen_high
    assert 0.0 <= began_k_update(0.5, float("inf"), 0.0, 0.5, 0.001) <= 1.0
    assert began_k_update(0.5, float("nan"), 0.0, 0.5, 0.001) == 0.5


# ----------------------------------------------------------------------------------------------- the game


def _ctx(seed: int = 0, size: int = 8) -> TrainContext:
    torch.manual_seed(seed)
    shape = (1, size, size)
    G = build_generator("began", 4, shape, {"width": 4})
    D = build_discriminator("began", shape, {"width": 4, "hidden": 4})
    data = torch.rand(256, *shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    pos = {"i": 0}

    def next_batch():
        i = pos["i"]
        pos["i"] = (i + 16) % 256
        return data[i : i + 16], None

    cfg = OptimizerConfig(name="adam", lr=1e-4, betas=(0.5, 0.999))
    return TrainContext(
        G,
        D,
        build_optimizer(G.parameters(), cfg),
        build_optimizer(D.parameters(), cfg),
        Precision("fp32", torch.device("cpu")),
        torch.device("cpu"),
        16,
        4,
        next_batch,
        torch.Generator().manual_seed(seed + 5),
    )


def test_game_step_updates_k_from_the_logged_losses_and_freezes_d_in_g_step() -> None:
    game = build_game("began", "non_saturating", {}, 1, {"gamma": 0.7, "lambda_k": 0.5})
    assert game.k == 0.0 and game.state_dict()["k"] == 0.0
    ctx = _ctx()
    orig_step_g = ctx.step_g
    checked = []

    def spy_step_g(loss, **kw):
        before = [p.grad.clone() for p in ctx.D.parameters()]
        orig_step_g(loss, **kw)
        assert all(torch.equal(b, p.grad) for b, p in zip(before, ctx.D.parameters())), "G's step touched D's grads"
        checked.append(True)

    ctx.step_g = spy_step_g
    k = game.k
    for _ in range(3):
        logs = game.step(ctx)
        assert {"d_loss", "g_loss", "k", "m_global", "l_real", "l_fake"} <= set(logs)
        assert all(v.dim() == 0 and not v.requires_grad for v in logs.values())
        expected = began_k_update(k, logs["l_real"], logs["l_fake"], 0.7, 0.5)
        assert game.k == pytest.approx(expected) and logs["k"].item() == pytest.approx(expected)
        assert logs["m_global"].item() == pytest.approx(
            began_m_global(logs["l_real"].item(), logs["l_fake"].item(), 0.7)
        )
        assert logs["g_loss"].item() == pytest.approx(logs["l_fake"].item())
        k = game.k
    assert len(checked) == 3
    other = build_game("began", "hinge", {}, 1, {})
    other.load_state_dict(game.state_dict())
    assert other.k == game.k and other.state_dict() == game.state_dict()


@pytest.mark.parametrize(
    "args",
    [
        {"gamma": 0},
        {"gamma": 1.5},
        {"gamma": -0.5},
        {"k0": 2},
        {"k0": -0.1},
        {"lambda_k": -1e-3},
        {"gamma": float("nan")},
    ],
)
def test_bad_game_arguments_raise(args: dict) -> None:
    with pytest.raises(ConfigError):
        build_game("began", "non_saturating", {}, 1, args)


def test_game_refuses_n_critic_regularizers_and_unknown_args() -> None:
    with pytest.raises(ConfigError, match="n_critic"):
        build_game("began", "non_saturating", {}, 2, {})
    with pytest.raises(ConfigError, match="regularizers"):
        build_game(
            "began", "non_saturating", {}, 1, {}, [{"name": "r1", "net": "d", "weight": 1.0, "every": 1, "args": {}}]
        )
    with pytest.raises(ConfigError):
        build_game("began", "non_saturating", {}, 1, {"pack": 2})
    assert build_game("began", "non_saturating", {}, 1, {"gamma": 1.0, "k0": 1.0}).k == 1.0


# ----------------------------------------------------------------------------------------------- end to end


@pytest.mark.report
def test_tiny_began_run_logs_m_global_and_k_and_reports_them(tmp_path: Path) -> None:
    net = {"name": "began", "args": {"width": 4}}
    raw = tiny_recipe(
        {"name": "digits", "image_size": 8},
        steps=10,
        model={"generator": net, "discriminator": {"name": "began", "args": {"width": 4, "hidden": 8}}},
        game={"name": "began", "args": {"gamma": 0.5, "lambda_k": 0.01}},
        optim={"g": {"name": "adam", "lr": 1e-4}, "d": {"name": "adam", "lr": 1e-4}},
    )
    trainer = Trainer(build_recipe(raw), tmp_path / "run", progress=False)
    out = trainer.run()
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [5, 10]
    for rec in lines:
        assert {"m_global", "k", "l_real", "l_fake", "d_loss", "g_loss"} <= set(rec)
        assert 0.0 <= rec["k"] <= 1.0 and rec["m_global"] >= rec["l_real"] >= 0.0
    # k_t is game state: it is checkpointed and round-trips through state_dict.
    _, state = latest_good_checkpoint(out / "checkpoints")
    assert state["game"]["k"] == pytest.approx(trainer.game.k) and 0.0 <= trainer.game.k <= 1.0
    fresh = build_game("began", "non_saturating", {}, 1, {})
    fresh.load_state_dict(state["game"])
    assert fresh.k == trainer.game.k
    html = (out / "report.html").read_text()
    assert "M_global" in html and (out / "plots" / "began_convergence.png").is_file()


def test_shipped_recipe_builds_the_began_game() -> None:
    r = load_recipe("began-fashion")
    assert r.game.name == "began" and r.model.generator.name == "began" and r.source
    game = build_game(r.game.name, r.loss.name, r.loss.args, r.game.n_critic, r.game.args, r.regularizers)
    assert game.gamma == 0.5 and game.k == 0.0
