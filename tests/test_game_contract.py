"""The declared Game contract: shared constructor arguments, check, lazy intervals, real samples per step,
networks and optimisers by name, constraint/noise hooks, and penalties through the critic hook."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_recipe
from test_games import make_ctx
from torch import Tensor

from ganforge.config import build_recipe
from ganforge.errors import ConfigError
from ganforge.games import (
    GAMES,
    Game,
    GameArgs,
    Network,
    StandardGame,
    StepContext,
    build_game,
)
from ganforge.latent import LatentSpace
from ganforge.regularizers import (
    REGULARIZERS,
    annealed_instance_noise,
    build_regularizer,
    clip_weights_,
)
from ganforge.training import Trainer

# ----------------------------------------------------------------------------- constructor arguments


def test_games_share_one_arguments_object_and_list_valid_choices() -> None:
    game = build_game("unrolled", "wasserstein", {}, 3, {"unroll": 2, "pack": 2})
    assert isinstance(game.args, GameArgs) and game.args.n_critic == 3 and game.args.pack == 2
    assert game.n_critic == 3 and game.pack_m == 2 and game.unroll == 2
    # Subclasses take GameArgs plus their own keywords only.
    assert type(game).own_args() == ["unroll", "rule"]
    assert build_game("acgan", "non_saturating", {}, 1, {}).own_args() == ["aux_weight"]
    with pytest.raises(ConfigError) as e:
        build_game("unrolled", "non_saturating", {}, 1, {"unrol": 3})
    assert "unroll" in str(e.value) and "pack" in str(e.value) and "g_adversarial" in str(e.value)
    assert "objective" not in str(e.value)
    # BEGAN takes none of the standard step's options: pack is an unknown argument there.
    with pytest.raises(ConfigError, match="gamma"):
        build_game("began", "non_saturating", {}, 1, {"pack": 2})


@pytest.mark.parametrize("name", ["acgan", "infogan", "semi_supervised"])
def test_single_sample_games_refuse_packing_through_the_base_constructor(name: str) -> None:
    with pytest.raises(ConfigError, match=f"game {name} cannot pack samples \\(pack=2\\)"):
        build_game(name, "non_saturating", {}, 1, {"pack": 2})


# ----------------------------------------------------------------------------- declarations


def test_real_per_step_counts_packs_and_critic_updates() -> None:
    assert build_game("standard", "non_saturating", {}, 2, {"pack": 4}).real_per_step(32) == 256
    assert build_game("standard", "wasserstein", {}, 5, {}).real_per_step(64) == 320
    assert build_game("began", "non_saturating", {}, 1, {}).real_per_step(16) == 16
    assert build_game("semi_supervised", "non_saturating", {}, 2, {}).real_per_step(10) == 20
    # It is what the step really draws for D's updates.
    game = build_game("standard", "non_saturating", {}, 2, {"pack": 2})
    ctx = make_ctx(d_shape=(4,))
    drawn = []
    nxt = ctx._next_batch

    def counted() -> tuple[Tensor, Tensor | None]:
        batch = nxt()
        drawn.append(len(batch[0]))
        return batch

    ctx._next_batch = counted  # type: ignore[method-assign]
    game.step(ctx)
    assert sum(drawn) == game.real_per_step(32)


def test_lazy_intervals_are_declared_per_optimiser() -> None:
    assert build_game("standard", "non_saturating", {}, 1, {}).lazy_intervals() == {}
    game = build_game(
        "standard",
        "non_saturating",
        {},
        1,
        {},
        [{"name": "r1", "every": 16}, {"name": "orthogonal", "net": "g", "every": 4}],
    )
    assert game.lazy_intervals() == {"g": 4, "d": 16}
    mixed = build_game(
        "standard", "non_saturating", {}, 1, {}, [{"name": "r1", "every": 16}, {"name": "r2", "every": 4}]
    )
    with pytest.raises(ConfigError, match="share one interval"):
        mixed.lazy_intervals()
    assert Game(GameArgs()).lazy_intervals() == {}


def test_check_is_declared_and_a_game_need_not_override_it() -> None:
    Game(GameArgs()).check(LatentSpace(4), object())  # the default accepts everything
    std = build_game("standard", "non_saturating", {}, 1, {"pack": 2})
    with pytest.raises(ConfigError, match="PacGAN packing"):
        std.check(LatentSpace(4, num_classes=10), object())
    with pytest.raises(ConfigError, match="latent codes"):
        build_game("infogan", "non_saturating", {}, 1, {}).check(LatentSpace(4), object())

    class Data:
        num_classes = 10

    with pytest.raises(ConfigError, match="fewer than the 10 classes"):
        build_game("semi_supervised", "non_saturating", {}, 1, {"labelled": 5}).check(LatentSpace(4), Data())


def test_declared_networks_and_optimisers_of_the_standard_games() -> None:
    for name in GAMES.names():
        cls = GAMES.get(name)
        assert cls.name == name
        if name == "cycle":  # two translators share optim.g, two discriminators optim.d (Zhu et al. 2017)
            assert cls.generator is None and cls.data == "unpaired"
            assert cls.optimizers() == {"g": ["G_ab", "G_ba"], "d": ["D_a", "D_b"]}
            continue
        assert [n.name for n in cls.networks] == ["G", "D"] and cls.generator == "G" and cls.data == "single"
        assert cls.optimizers() == {"g": ["G"], "d": ["D"]}


# ----------------------------------------------------------------------------- constraints, noise, critic


def test_constraint_and_input_noise_entries_carry_the_real_functions() -> None:
    assert REGULARIZERS.get("weight_clip").fn is clip_weights_
    assert REGULARIZERS.get("instance_noise").fn is annealed_instance_noise
    net = torch.nn.Linear(3, 3)
    torch.nn.init.uniform_(net.weight, -1, 1)
    build_regularizer("weight_clip", args={"c": 0.05})(net=net)
    assert net.weight.abs().max() <= 0.05
    noise = build_regularizer("instance_noise", args={"std": 0.4, "anneal_steps": 10})
    x = torch.zeros(1000, 2)
    torch.manual_seed(0)
    a = noise(x=x, step=5)
    assert 0.15 < float(a.std()) < 0.25  # std annealed to 0.2 after 5 of 10 steps
    assert torch.equal(noise(x=x, step=10), x)


class ScaledCritic(StandardGame):
    """A game whose critic is 3 x D, recording the inputs and labels it is called with."""

    def __init__(self, args: GameArgs) -> None:
        super().__init__(args)
        self.calls: list[tuple[tuple[int, ...], bool]] = []

    def critic(self, D: Callable[..., Tensor], x: Tensor, y: Tensor | None) -> tuple[Tensor, Any]:
        self.calls.append((tuple(x.shape), y is not None))
        return 3 * D(x), None


def _scaled(regs: list[dict[str, Any]], pack: int = 1) -> ScaledCritic:
    from ganforge.games import build_regularizers
    from ganforge.losses import get_objective

    return ScaledCritic(GameArgs(get_objective("wasserstein", {}), 1, tuple(build_regularizers(regs)), pack=pack))


def test_lazy_d_penalty_goes_through_the_critic_hook_with_packing_and_labels() -> None:
    game = _scaled([{"name": "drift", "every": 2}, {"name": "r1", "every": 2}], pack=2)
    ctx = make_ctx(d_shape=(4,))
    real, fake = torch.randn(64, 2), torch.randn(64, 2)
    y = torch.zeros(64, dtype=torch.long)
    total, logs = game.d_lazy_loss(ctx, real, fake, y)
    assert total is not None and game.calls
    assert all(shape[1] == 4 and labelled for shape, labelled in game.calls)  # packed inputs, labels bound
    packed = real.reshape(32, 4)
    expected_drift = (3 * ctx.D(packed)).pow(2).mean()
    assert float(logs["reg/d_drift"]) == pytest.approx(float(expected_drift.detach()), rel=1e-5)
    # R1 of the critic 3 D is 9 x R1 of D: the penalty differentiates the critic, not D.
    x = packed.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(ctx.D(x).sum(), x)
    assert float(logs["reg/d_r1"]) == pytest.approx(9 * float(g.pow(2).sum(1).mean()), rel=1e-4)


def test_eager_d_penalty_goes_through_the_critic_hook() -> None:
    game = _scaled([{"name": "r1"}])
    ctx = make_ctx()
    real, fake = torch.randn(32, 2), torch.randn(32, 2)
    _, logs = game.d_loss(ctx, real, fake)
    x = real.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(ctx.D(x).sum(), x)
    assert float(logs["reg/d_r1"]) == pytest.approx(9 * float(g.pow(2).sum(1).mean()), rel=1e-4)


# ----------------------------------------------------------------------------- networks by other names


class TwoCritics(Game):
    """A toy game with networks named like CycleGAN's: one generator G_ab, two discriminators D_a and D_b on one optimiser."""

    networks = (
        Network("G_ab", "generator", "g"),
        Network("D_a", "discriminator", "d"),
        Network("D_b", "discriminator", "d"),
    )
    generator = "G_ab"

    def step(self, ctx: StepContext) -> dict[str, Tensor]:
        G, Da, Db = ctx.nets["G_ab"], ctx.nets["D_a"], ctx.nets["D_b"]
        real = ctx.real_batch()[0]
        with torch.no_grad():
            fake = G(ctx.noise(real.shape[0]))
        d_loss = sum(F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean() for D in (Da, Db))
        ctx.step_d(d_loss)
        with ctx.frozen(Da), ctx.frozen(Db):
            fake = G(ctx.noise(ctx.batch_size))
            g_loss = sum(F.softplus(-D(fake)).mean() for D in (Da, Db))
        ctx.step_g(g_loss)
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}


def test_a_game_with_other_network_names_is_built_optimised_and_checkpointed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(GAMES._items, "two_critics", TwoCritics)
    monkeypatch.setattr(TwoCritics, "name", "two_critics")
    raw = tiny_recipe(
        {"name": "ring", "n_points": 1000},
        steps=4,
        game={"name": "two_critics"},
        train={"ema": {"enabled": True, "decay": 0.9}},
    )
    trainer = Trainer(build_recipe(raw), tmp_path / "run", progress=False)
    assert set(trainer.nets) == {"G_ab", "D_a", "D_b"} and trainer.G is trainer.nets["G_ab"] and trainer.D is None
    d_params = {id(p) for g in trainer.opts["d"].param_groups for p in g["params"]}
    assert d_params == {id(p) for n in ("D_a", "D_b") for p in trainer.nets[n].parameters()}
    for _ in range(2):
        trainer.game.step(trainer.ctx)
    state = trainer.state_dict()
    assert {"G_ab", "D_a", "D_b", "ema", "opt_g", "opt_d", "sched_g", "sched_d", "scaler_g", "scaler_d"} <= set(state)
    assert "G" not in state and "D" not in state
    buf = io.BytesIO()
    torch.save(state, buf)  # through bytes, as a checkpoint file: the copy shares no tensor with the live run
    buf.seek(0)
    fresh = Trainer(build_recipe(raw), tmp_path / "other", progress=False)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    for name, net in trainer.nets.items():
        for a, b in zip(net.state_dict().values(), fresh.nets[name].state_dict().values()):
            assert torch.equal(a, b), name
    # Both copies continue identically: optimiser state came back too.
    trainer.game.step(trainer.ctx)
    fresh.game.step(fresh.ctx)
    for name, net in trainer.nets.items():
        assert all(torch.equal(a, b) for a, b in zip(net.parameters(), fresh.nets[name].parameters())), name
    trainer.out.mkdir(parents=True)
    assert sorted(p.name for p in trainer._export_generator()) == ["generator.safetensors", "generator_ema.safetensors"]
