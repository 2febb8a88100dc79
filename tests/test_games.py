"""Games against their definitions: packing, unrolling, lazy regularisation, extragradient, constraints."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from ganforge.config import OptimizerConfig
from ganforge.errors import ConfigError
from ganforge.games import build_game, pack, packed_shape
from ganforge.models import build_discriminator, build_generator
from ganforge.training.context import TrainContext
from ganforge.training.optim import build_optimizer
from ganforge.training.precision import Precision


def make_ctx(
    seed: int = 0,
    d_shape: tuple[int, ...] = (2,),
    opt: str = "adam",
    lr: float = 1e-3,
    lazy: float = 1.0,
    ema_hook=None,
    fixed_batch: bool = False,
) -> TrainContext:
    torch.manual_seed(seed)
    G = build_generator("mlp", 2, (2,), {"hidden": 16, "layers": 2})
    D = build_discriminator("mlp", d_shape, {"hidden": 16, "layers": 2})
    data = torch.randn(4096, 2, generator=torch.Generator().manual_seed(1)) + 3
    pos = {"i": 0}

    def next_batch():
        i = pos["i"]
        if not fixed_batch:
            pos["i"] = (i + 32) % 4096
        return data[i : i + 32], None

    cfg = OptimizerConfig(name=opt, lr=lr, betas=(0.5, 0.9))
    return TrainContext(
        G,
        D,
        build_optimizer(G.parameters(), cfg),
        build_optimizer(D.parameters(), cfg, lazy),
        Precision("fp32", torch.device("cpu")),
        torch.device("cpu"),
        32,
        2,
        next_batch,
        torch.Generator().manual_seed(seed + 5),
        on_g_step=ema_hook,
    )


def params(net: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_packing_concatenates_consecutive_samples() -> None:
    x = torch.arange(12.0).view(6, 2)
    p = pack(x, 3)
    assert p.shape == (2, 6)
    assert torch.equal(p[0], torch.tensor([0.0, 1, 2, 3, 4, 5]))  # samples 0,1,2 side by side
    img = torch.randn(4, 3, 5, 5)
    pi = pack(img, 2)
    assert pi.shape == (2, 6, 5, 5)
    assert torch.equal(pi[1, 3:], img[3]) and torch.equal(pi[1, :3], img[2])
    assert packed_shape((3, 5, 5), 4) == (12, 5, 5) and packed_shape((2,), 4) == (8,)
    with pytest.raises(ValueError):
        pack(torch.randn(5, 2), 2)


def test_pacgan_game_feeds_d_packed_inputs() -> None:
    game = build_game("standard", "non_saturating", {}, 1, {"pack": 4})
    assert game.d_input_shape((2,)) == (8,)
    ctx = make_ctx(d_shape=(8,))
    seen = []
    ctx.D.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    game.step(ctx)
    assert seen and all(s[1] == 8 for s in seen)
    assert seen[0][0] == 32  # 4 x 32 real samples packed into 32 D inputs


def test_unrolled_with_zero_steps_equals_the_standard_step() -> None:
    a, b = make_ctx(), make_ctx()
    std = build_game("standard", "non_saturating", {}, 1, {})
    unr = build_game("unrolled", "non_saturating", {}, 1, {"unroll": 0})
    for _ in range(3):
        std.step(a)
        unr.step(b)
    assert same(params(a.G), params(b.G)) and same(params(a.D), params(b.D))


@pytest.mark.parametrize("rule", ["sgd", "adam"])
def test_unrolling_changes_g_update_and_leaves_d_untouched(rule: str) -> None:
    a, b = make_ctx(), make_ctx()
    std = build_game("standard", "non_saturating", {}, 1, {})
    unr = build_game("unrolled", "non_saturating", {}, 1, {"unroll": 3, "rule": rule})
    std.step(a)
    d_before = params(b.D)
    stats = unr.d_step(b)
    d_after_d_step = params(b.D)
    unr.g_step(b)
    assert same(d_after_d_step, params(b.D))  # the unrolled copy never writes back into D
    assert not same(d_before, d_after_d_step)
    assert same(params(a.D), d_after_d_step)  # the D update itself is the standard one
    assert not same(params(a.G), params(b.G))  # G's gradient went through the unrolled D
    assert all(torch.isfinite(p).all() for p in b.G.parameters())
    assert torch.isfinite(stats["d_loss"])


def test_unrolled_sgd_gradient_matches_finite_differences() -> None:
    # One unrolled SGD step on a linear critic with the Wasserstein loss: theta_D^1 = theta_D - lr * dL/dtheta_D,
    # so G's surrogate gradient must include d theta_D^1 / d theta_G.
    torch.manual_seed(0)
    game = build_game("unrolled", "wasserstein", {}, 1, {"unroll": 1, "rule": "sgd"})
    ctx = make_ctx(opt="sgd", lr=0.1, fixed_batch=True)
    state = torch.get_rng_state(), ctx.noise_generator.get_state()

    def surrogate() -> torch.Tensor:
        torch.set_rng_state(state[0])
        ctx.noise_generator.set_state(state[1])
        D = game.unrolled_d(ctx)
        loss, _ = game.g_loss(ctx, D=D)
        return loss

    w = next(ctx.G.parameters())
    ctx.G.zero_grad()
    surrogate().backward()
    analytic = w.grad[0, 0].item()
    eps = 1e-2
    with torch.no_grad():
        w[0, 0] += eps
    up = surrogate().item()
    with torch.no_grad():
        w[0, 0] -= 2 * eps
    down = surrogate().item()
    with torch.no_grad():
        w[0, 0] += eps
    numeric = (up - down) / (2 * eps)
    assert analytic == pytest.approx(numeric, rel=5e-2, abs=1e-4)
    # The check has teeth: without the unrolled step, G's gradient is measurably different.
    game.unroll = 0
    ctx.G.zero_grad()
    surrogate().backward()
    assert abs(w.grad[0, 0].item() - numeric) > 0.1 * abs(numeric)


def test_lazy_regulariser_runs_every_k_steps_with_scaled_weight() -> None:
    ctx = make_ctx(lazy=4 / 5)
    game = build_game("standard", "non_saturating", {}, 1, {}, [{"name": "r1", "weight": 2.0, "every": 4}])
    d_steps = []
    orig = ctx.step_d
    ctx.step_d = lambda loss, restore=None: (d_steps.append(float(loss.detach())), orig(loss))[1]  # type: ignore[method-assign]
    logs = [game.step(ctx) for _ in range(8)]
    assert len(d_steps) == 8 + 2  # two extra penalty-only D updates at d-steps 0 and 4
    assert "reg/d_r1" in logs[0] and "reg/d_r1" in logs[4] and "reg/d_r1" not in logs[1]
    assert d_steps[1] == pytest.approx(float(logs[0]["reg/d_r1"]) * 2.0 * 4, rel=1e-5)
    # StyleGAN2's correction on D's Adam: lr * c and betas ** c with c = 4/5.
    g = ctx.opt_d.param_groups[0]
    assert g["lr"] == pytest.approx(1e-3 * 0.8) and g["betas"][0] == pytest.approx(0.5**0.8)


def test_weight_clipping_holds_after_every_critic_step() -> None:
    ctx = make_ctx()
    game = build_game("standard", "wasserstein", {}, 5, {}, [{"name": "weight_clip", "args": {"c": 0.01}}])
    game.step(ctx)
    assert all(p.abs().max() <= 0.01 + 1e-9 for p in ctx.D.parameters())


def test_regularised_step_logs_penalties_and_trains() -> None:
    ctx = make_ctx()
    regs = [
        {"name": "gradient_penalty", "weight": 10.0},
        {"name": "drift", "weight": 0.001},
        {"name": "orthogonal", "net": "g", "weight": 1e-4},
        {"name": "historical_averaging", "net": "d", "weight": 0.01},
        {"name": "instance_noise", "args": {"std": 0.1, "anneal_steps": 10}},
    ]
    game = build_game("standard", "wasserstein", {}, 2, {}, regs)
    for _ in range(3):
        logs = game.step(ctx)
    for k in ("reg/d_gradient_penalty", "reg/d_drift", "reg/g_orthogonal", "reg/d_historical_averaging"):
        assert k in logs and torch.isfinite(logs[k])
    state = game.state_dict()
    assert state["g_updates"] == 3 and state["d_updates"] == 6
    fresh = build_game("standard", "wasserstein", {}, 2, {}, regs)
    fresh.load_state_dict(copy.deepcopy(state))
    assert fresh.d_updates == 6 and len(fresh.history["d"]["avg"]) == len(list(ctx.D.parameters()))


def test_feature_matching_replaces_the_generator_objective() -> None:
    ctx = make_ctx()
    game = build_game(
        "standard", "non_saturating", {}, 1, {"g_adversarial": False}, [{"name": "feature_matching", "net": "g"}]
    )
    logs = game.step(ctx)
    assert logs["g_adv"].item() == 0.0 and logs["g_loss"].item() == pytest.approx(logs["reg/g_feature_matching"].item())
    with pytest.raises(ConfigError, match="no regulariser with net: g"):
        build_game("standard", "non_saturating", {}, 1, {"g_adversarial": False})


def test_extragradient_applies_lookahead_gradients_at_the_saved_point() -> None:
    # With SGD, extragradient's update is theta - lr * grad(theta - lr * grad(theta)): check G moved by
    # a gradient that differs from the plain simultaneous step's.
    ctx = make_ctx(opt="sgd", lr=0.05)
    game = build_game("extragradient", "non_saturating", {}, 1, {})
    g0, d0 = params(ctx.G), params(ctx.D)
    ema_calls = []
    ctx._on_g_step = lambda: ema_calls.append(1)
    logs = game.step(ctx)
    assert len(ema_calls) == 1  # the extrapolation does not touch the EMA
    assert not same(g0, params(ctx.G)) and not same(d0, params(ctx.D))
    assert torch.isfinite(logs["d_loss"]) and torch.isfinite(logs["g_loss"])
    with pytest.raises(ConfigError, match="n_critic: 1"):
        build_game("extragradient", "non_saturating", {}, 5, {})


def test_relativistic_objectives_get_real_logits_in_the_g_step() -> None:
    for loss in ("rsgan", "ragan", "ralsgan", "rahinge"):
        logs = build_game("standard", loss, {}, 1, {}).step(make_ctx())
        assert torch.isfinite(logs["g_loss"])


def test_unknown_game_argument_lists_choices() -> None:
    with pytest.raises(ConfigError, match="unroll"):
        build_game("unrolled", "non_saturating", {}, 1, {"unrol": 3})
    with pytest.raises(ConfigError, match="regularizers"):
        build_game("standard", "non_saturating", {}, 1, {"regularizers": []})


@pytest.mark.parametrize("pack", [0, 1.5, float("inf"), True, "2"])
def test_pack_must_be_a_whole_number(pack: object) -> None:
    """A fuzzed `game.args.pack=.inf` crashed with OverflowError instead of a ConfigError."""
    from ganforge.errors import ConfigError
    from ganforge.games import build_game

    with pytest.raises(ConfigError, match="whole number"):
        build_game("standard", "non_saturating", {}, 1, {"pack": pack}, [])
