"""Class-conditional models (concat, projection, AC-GAN), the latent space, truncation and sampling by class."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import tiny_recipe

from ganforge.cli import main
from ganforge.config import build_recipe
from ganforge.errors import ConfigError
from ganforge.latent import LatentSpace, fixed_latents, truncated_normal
from ganforge.metrics.evaluate import Evaluator, generator_batches
from ganforge.models import build_discriminator, build_generator
from ganforge.sampling import load_generator, sample
from ganforge.training import Trainer

DIGITS = {"name": "digits", "image_size": 8}


def cond_recipe(cond: str = "concat", game: str = "standard", steps: int = 4, **extra: dict) -> dict:
    r = tiny_recipe(DIGITS, steps=steps, **extra)
    r["model"]["conditional"] = True
    r["model"]["discriminator"] = {"name": "dcgan", "args": {"width": 8, "cond": cond}}
    r["game"] = {"name": game}
    return r


# ---------------------------------------------------------------- latent space


def test_latent_layout_and_split_round_trip() -> None:
    space = LatentSpace(5, num_classes=3, categorical=[4, 2], continuous=2)
    assert space.input_dim == 5 + 4 + 2 + 2
    lat = space.sample(64, torch.Generator().manual_seed(0))
    assert lat.z.shape == (64, 13) and lat.y.shape == (64,) and int(lat.y.max()) < 3
    noise, cats, cont = space.split(lat.z)
    assert torch.equal(noise, lat.z[:, :5])
    assert all(torch.equal(a, b) for a, b in zip(cats, lat.categorical))
    assert torch.equal(cont, lat.continuous) and float(cont.abs().max()) <= 1


def test_fixing_labels_or_codes_keeps_the_noise() -> None:
    space = LatentSpace(6, num_classes=10, categorical=[10], continuous=1)
    a = space.sample(8, torch.Generator().manual_seed(3))
    b = space.sample(
        8, torch.Generator().manual_seed(3), y=7, categorical=[torch.tensor(2)], continuous=torch.tensor([0.5])
    )
    assert torch.equal(a.z[:, :6], b.z[:, :6])
    assert (b.y == 7).all() and (b.categorical[0] == 2).all() and (b.continuous == 0.5).all()


def test_plain_latent_draws_exactly_torch_randn() -> None:
    """Unconditional runs keep their noise stream: the same numbers as before the latent space existed."""
    lat = LatentSpace(7).sample(20, torch.Generator().manual_seed(1))
    assert torch.equal(lat.z, torch.randn(20, 7, generator=torch.Generator().manual_seed(1)))
    assert lat.y is None


@pytest.mark.parametrize("t", [0.25, 1.0, 2.0])
def test_truncated_samples_stay_within_the_threshold(t: float) -> None:
    z = truncated_normal((2000, 16), t, torch.Generator().manual_seed(0))
    assert float(z.abs().max()) <= t
    # Not clipped: values fill the interval rather than piling up at its edges.
    assert float((z.abs() > 0.99 * t).float().mean()) < 0.05
    lat = LatentSpace(16, categorical=[3]).sample(500, torch.Generator().manual_seed(0), truncation=t)
    assert float(lat.z[:, :16].abs().max()) <= t


def test_bad_latent_and_class_choices_are_errors() -> None:
    with pytest.raises(ConfigError, match="categorical"):
        LatentSpace(4, categorical=[1])
    with pytest.raises(ConfigError, match="not class-conditional"):
        LatentSpace(4).sample(2, y=1)
    with pytest.raises(ConfigError, match=r"\[0, 2\]"):
        LatentSpace(4, num_classes=3).sample(2, y=5)
    with pytest.raises(ConfigError, match="threshold"):
        truncated_normal((2, 2), 0.0)


def test_fixed_latents_give_one_class_per_grid_row() -> None:
    lat = fixed_latents(LatentSpace(4, num_classes=10), 100, 0)
    assert torch.equal(lat.y.view(10, 10), torch.arange(10).repeat_interleave(10).view(10, 10))


# ---------------------------------------------------------------- networks


@pytest.mark.parametrize("cond", ["concat", "projection", "acgan"])
def test_conditional_dcgan_uses_the_label(cond: str) -> None:
    torch.manual_seed(0)
    G = build_generator("dcgan", 8, (1, 16, 16), {"width": 8}, num_classes=10).eval()
    D = build_discriminator("dcgan", (1, 16, 16), {"width": 8, "cond": cond}, num_classes=10).eval()
    z = torch.randn(4, 8)
    a, b = G(z, torch.zeros(4, dtype=torch.long)), G(z, torch.ones(4, dtype=torch.long))
    assert a.shape == (4, 1, 16, 16) and not torch.allclose(a, b)
    la, lb = D(a, torch.zeros(4, dtype=torch.long)), D(a, torch.ones(4, dtype=torch.long))
    if cond == "acgan":
        assert torch.equal(la, lb)  # AC-GAN's D does not see the label; it predicts it
        logit, cls = D.forward_aux(a)
        assert torch.allclose(logit, la) and cls.shape == (4, 10)
    else:
        assert not torch.allclose(la, lb)
    with pytest.raises(ValueError, match="labels"):
        G(z)


def test_projection_logit_is_the_unconditional_logit_plus_the_inner_product() -> None:
    torch.manual_seed(0)
    D = build_discriminator("dcgan", (1, 16, 16), {"width": 8, "cond": "projection"}, num_classes=5).eval()
    x, y = torch.randn(3, 1, 16, 16), torch.tensor([0, 3, 4])
    h = D.body(x)
    expected = D.head(h).flatten() + (D.embed.weight[y] * h.sum((2, 3))).sum(1)
    assert torch.allclose(D(x, y), expected, atol=1e-5)


def test_unconditional_families_refuse_classes_with_the_ones_that_can() -> None:
    with pytest.raises(ConfigError, match="cannot be class-conditional.*dcgan"):
        build_generator("mlp", 2, (2,), {}, num_classes=3)
    with pytest.raises(ConfigError, match="trainer sets it"):
        build_generator("dcgan", 8, (1, 8, 8), {"num_classes": 3}, num_classes=3)
    with pytest.raises(ConfigError, match="cond"):
        build_discriminator("dcgan", (1, 8, 8), {"cond": "bogus"}, num_classes=3)


# ---------------------------------------------------------------- training, sampling, evaluation


@pytest.mark.parametrize("cond, game", [("concat", "standard"), ("projection", "standard"), ("acgan", "acgan")])
def test_conditional_runs_train_and_sample_by_class(tmp_path: Path, cond: str, game: str) -> None:
    out = Trainer(build_recipe(cond_recipe(cond, game)), tmp_path / "run", progress=False).run()
    G, _recipe, shape = load_generator(out)
    assert G.latent_space.num_classes == 10
    x3 = sample(G, 6, seed=1, y=3)
    x5 = sample(G, 6, seed=1, y=5)
    assert x3.shape == (6, *shape) and not torch.allclose(x3, x5)
    if game == "acgan":
        import json

        rec = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
        assert {"aux_ce_real", "aux_ce_fake", "aux_ce_g", "aux_acc_real"} <= set(rec)
    assert main(["sample", str(out), "--n", "8", "--class", "2", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").is_file()


def test_d_step_gives_fakes_the_real_labels_and_g_step_draws_uniform_labels(tmp_path: Path) -> None:
    trainer = Trainer(build_recipe(cond_recipe("projection")), tmp_path / "run", progress=False)
    seen: list[tuple[str, torch.Tensor]] = []
    G = trainer.ctx.G
    orig = G.forward

    def spy(z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        seen.append(("grad" if torch.is_grad_enabled() else "nograd", y.clone()))
        return orig(z, y)

    G.forward = spy  # type: ignore[method-assign]
    batches: list[torch.Tensor] = []
    real_batch = trainer.ctx.real_batch

    def spy_real() -> tuple[torch.Tensor, torch.Tensor | None]:
        x, y = real_batch()
        batches.append(y.clone())
        return x, y

    trainer.ctx.real_batch = spy_real  # type: ignore[method-assign]
    trainer.game.step(trainer.ctx)
    (kind_d, y_d), (kind_g, y_g) = seen
    assert kind_d == "nograd" and torch.equal(y_d, batches[0])
    assert kind_g == "grad" and y_g.shape == y_d.shape


def test_conditional_is_refused_where_it_cannot_work(tmp_path: Path) -> None:
    r = cond_recipe()
    r["game"] = {"name": "unrolled", "args": {"unroll": 1}}
    with pytest.raises(ConfigError, match="does not support model.conditional"):
        Trainer(build_recipe(r), tmp_path / "a", progress=False)
    r = cond_recipe("concat", "acgan")
    with pytest.raises(ConfigError, match="auxiliary classifier head"):
        Trainer(build_recipe(r), tmp_path / "b", progress=False).run()
    r = tiny_recipe({"name": "ring", "n_points": 500})
    r["model"]["conditional"] = True
    with pytest.raises(ConfigError, match="cannot be class-conditional"):
        Trainer(build_recipe(r), tmp_path / "c", progress=False)


def test_generator_batches_yield_labels_and_cond_acc_is_measured(tmp_path: Path) -> None:
    out = Trainer(build_recipe(cond_recipe("concat")), tmp_path / "run", progress=False).run()
    G, _recipe, _ = load_generator(out)
    batches = list(generator_batches(G, G.latent_space, 30, seed=0, batch_size=10))
    assert all(y is not None and y.shape == (10,) for _, y in batches)
    fixed = list(generator_batches(G, G.latent_space, 10, seed=0, batch_size=10, y=4))
    assert (fixed[0][1] == 4).all()
    from ganforge.data import load_dataset

    data = load_dataset("digits", image_size=8)
    ev = Evaluator(data, "cond_acc,coverage", extractor="digits", n=200)
    res = ev.evaluate_generator(G, G.latent_space)
    assert 0.0 <= res["metrics"]["cond_acc_digits"] <= 1.0


def test_eval_cli_adds_conditional_accuracy_for_a_conditional_generator(tmp_path: Path, capsys) -> None:
    out = Trainer(build_recipe(cond_recipe("acgan", "acgan")), tmp_path / "run", progress=False).run()
    assert main(["eval", str(out), "--n", "100", "--extractor", "digits", "--truncation", "1.0"]) == 0
    printed = capsys.readouterr().out
    assert "cond_acc_digits" in printed and "fd_digits" in printed


def test_acgan_game_arguments_are_checked_by_name(tmp_path: Path) -> None:
    r = cond_recipe("acgan", "acgan")
    r["game"]["args"] = {"aux_wieght": 1.0}
    with pytest.raises(ConfigError, match="aux_weight"):
        Trainer(build_recipe(r), tmp_path / "run", progress=False)
