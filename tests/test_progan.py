"""ProGAN (issue 13): equalised learning rate, pixel norm, minibatch stddev, growing networks, the schedule, growth."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_recipe

from ganforge.config import build_recipe
from ganforge.errors import ConfigError
from ganforge.games.progressive import Schedule
from ganforge.models import build_discriminator, build_generator
from ganforge.models.progan import growth_note
from ganforge.nn import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm, he_constant
from ganforge.training import Trainer

WIDTHS = {"fmap_base": 64, "fmap_max": 16}


def progan_recipe(
    steps: int, fade: int = 320, stab: int = 320, batch_sizes: list[int] | int = 16, **train: object
) -> dict:
    """A tiny progressive run on 16x16 digits: 4 -> 8 -> 16."""
    return tiny_recipe(
        {"name": "digits", "image_size": 16},
        steps=steps,
        model={
            "z_dim": 8,
            "generator": {"name": "progan", "args": dict(WIDTHS)},
            "discriminator": {"name": "progan", "args": dict(WIDTHS)},
        },
        loss="wasserstein",
        game={
            "name": "progressive",
            "n_critic": 1,
            "args": {
                "resolutions": [4, 8, 16],
                "fade_images": fade,
                "stabilize_images": stab,
                "batch_sizes": batch_sizes,
            },
        },
        regularizers=[{"name": "gradient_penalty", "weight": 10.0}, {"name": "drift", "weight": 0.001}],
        optim={
            "g": {"name": "adam", "lr": 0.001, "betas": [0.0, 0.99]},
            "d": {"name": "adam", "lr": 0.001, "betas": [0.0, 0.99]},
        },
        train={"log_every": 1, **train},
    )


# ----------------------------------------------------------------------------------------------- components


def test_equalized_layers_equal_plain_layers_with_scaled_weights() -> None:
    torch.manual_seed(0)
    conv = EqualizedConv2d(6, 5, 3, padding=1)
    x = torch.randn(2, 6, 7, 7)
    c = math.sqrt(2) / math.sqrt(6 * 9)
    assert conv.scale == pytest.approx(c) == he_constant(6 * 9)
    plain = torch.nn.Conv2d(6, 5, 3, padding=1)
    with torch.no_grad():
        plain.weight.copy_(conv.weight * c)
        plain.bias.copy_(conv.bias)
    torch.testing.assert_close(conv(x), plain(x))
    lin = EqualizedLinear(40, 3, gain=1.0)
    plain_l = torch.nn.Linear(40, 3)
    with torch.no_grad():
        plain_l.weight.copy_(lin.weight / math.sqrt(40))
        plain_l.bias.copy_(lin.bias)
    v = torch.randn(4, 40)
    torch.testing.assert_close(lin(v), plain_l(v))
    # Stored weights are N(0, 1) (the scale is applied at run time), biases zero.
    big = EqualizedConv2d(64, 64, 3)
    w = big.weight.detach()
    assert abs(float(w.std()) - 1.0) < 0.02 and abs(float(w.mean())) < 0.02
    assert torch.equal(big.bias, torch.zeros(64))


def test_pixel_norm_and_minibatch_stddev_match_hand_formulas() -> None:
    torch.manual_seed(1)
    x = torch.randn(8, 5, 3, 3)
    y = PixelNorm()(x)
    for n, i, j in ((0, 0, 0), (3, 1, 2), (7, 2, 1)):
        a = x[n, :, i, j]
        torch.testing.assert_close(y[n, :, i, j], a / torch.sqrt((a**2).mean() + 1e-8))
    # Group of 4 over a batch of 8: sample k is in group k mod 2 (the authors' reshape); std over the group,
    # averaged over channels and positions, broadcast as one more feature map.
    out = MinibatchStdDev(4)(x)
    for k in range(8):
        group = x[k % 2 :: 2]
        expect = torch.sqrt(group.var(dim=0, unbiased=False) + 1e-8).mean()
        torch.testing.assert_close(out[k, 5], torch.full((3, 3), float(expect)))


def test_resnet_discriminator_takes_minibatch_stddev() -> None:
    D = build_discriminator("resnet", (3, 32, 32), {"width": 16, "mbstd_group": 4})
    x = torch.randn(8, 3, 32, 32)
    assert D(x).shape == (8,) and D.features(x).shape == (8, 16)
    # The layer is in the path: with the same weights, a collapsed batch and a varied one that share sample 0
    # give sample 0 different logits only through the stddev map.
    varied = x.clone()
    collapsed = x[:1].expand(8, -1, -1, -1).clone()
    assert not torch.allclose(D(varied)[0], D(collapsed)[0])
    D0 = build_discriminator("resnet", (3, 32, 32), {"width": 16})
    assert D0.mbstd is None and torch.allclose(D0(varied)[0], D0(collapsed)[0], atol=1e-5)
    with pytest.raises(ConfigError, match="mbstd_group"):
        build_discriminator("resnet", (3, 32, 32), {"width": 16, "mbstd_group": 1})


# ----------------------------------------------------------------------------------------------- growing networks


def test_generator_fade_in_runs_from_the_previous_network_to_the_new_one() -> None:
    torch.manual_seed(2)
    G = build_generator("progan", 8, (1, 16, 16), dict(WIDTHS)).eval()
    z = torch.randn(6, 8)
    with torch.no_grad():
        G.set_phase(1)
        prev = G(z)  # 8x8, upsampled to 16x16
        G.set_phase(2)
        new = G(z)
        G.set_phase(2, 0, 100)
        at0 = G(z)
        G.set_phase(2, 100, 100)
        at1 = G(z)
        G.set_phase(2, 30, 100)
        mid = G(z)
    assert torch.equal(at0, prev) and torch.equal(at1, new)
    torch.testing.assert_close(mid, 0.7 * prev + 0.3 * new)
    # Below full size the output is the low-resolution image, nearest-upsampled: 2x2 blocks are constant.
    assert torch.equal(prev, F.interpolate(prev[..., ::2, ::2], scale_factor=2, mode="nearest"))
    assert not torch.equal(new, F.interpolate(new[..., ::2, ::2], scale_factor=2, mode="nearest"))


def test_discriminator_fade_in_runs_from_the_previous_network_to_the_new_one() -> None:
    torch.manual_seed(3)
    D = build_discriminator("progan", (1, 16, 16), dict(WIDTHS))
    x = torch.randn(8, 1, 16, 16)
    with torch.no_grad():
        D.set_phase(1)
        prev = D(F.avg_pool2d(x, 2))  # the 8x8 network on the half-size images
        assert torch.equal(D(x), prev)  # a bigger input is average-pooled to the current resolution
        D.set_phase(2)
        new = D(x)
        D.set_phase(2, 0, 10)
        at0 = D(x)
        D.set_phase(2, 10, 10)
        at1 = D(x)
    torch.testing.assert_close(at0, prev)
    assert torch.equal(at1, new)
    with pytest.raises(ValueError, match="cannot take"):
        D(torch.randn(2, 1, 8, 8))


def test_phase_state_is_in_the_state_dict_and_the_ema_copy() -> None:
    from ganforge.training.ema import make_ema

    G = build_generator("progan", 8, (1, 16, 16), dict(WIDTHS))
    G.set_phase(1, 3, 12)
    H = build_generator("progan", 8, (1, 16, 16), dict(WIDTHS))
    H.load_state_dict(G.state_dict())
    assert H.phase() == (1, 0.25) and H.describe() == "8x8, fading in (alpha 0.25)"
    ema = make_ema(G, 0.999)
    G.set_phase(2, 5, 10)
    ema.update_parameters(G)
    ema.update_parameters(G)  # not averaged: copied
    assert ema.module.phase() == (2, 0.5)
    assert growth_note(ema) == "progressive generator at 16x16, fading in (alpha 0.50)"  # full size: nothing upsampled
    G.set_phase(1)
    assert growth_note(G) == "progressive generator at 8x8, nearest-upsampled to 16x16"
    G.set_phase(2)
    assert growth_note(G) is None
    with pytest.raises(ValueError):
        G.set_phase(3)
    with pytest.raises(ValueError, match="4x4"):
        G.set_phase(0, 1, 10)


# ----------------------------------------------------------------------------------------------- the schedule


def test_schedule_phases_and_alpha_at_exact_image_counts() -> None:
    s = Schedule([4, 8, 16], fade_images=320, stabilize_images=[160, 320, 480], batch_sizes=[16, 16, 8])
    assert [(p.name, p.start, p.length, p.batch_size) for p in s.phases] == [
        ("4x4 stabilise", 0, 160, 16),
        ("8x8 fade-in", 160, 320, 16),
        ("8x8 stabilise", 480, 320, 16),
        ("16x16 fade-in", 800, 320, 8),
        ("16x16 stabilise", 1120, 480, 8),
    ]
    assert s.at(159).resolution == 4 and s.at(160).name == "8x8 fade-in"
    assert (
        s.alpha(160) == 0.0 and s.alpha(320) == 0.5 and s.alpha(479) == pytest.approx(319 / 320) and s.alpha(480) == 1.0
    )
    assert s.at(10**9).name == "16x16 stabilise"  # training goes on at the final resolution
    assert s.phases[1].name == "8x8 fade-in" and s.phases[1].level == 1
    assert s.images_total == 1600 and s.steps() == 10 + 20 + 20 + 40 + 60


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(resolutions=[4, 16]), "double"),
        (dict(resolutions=[4, 6]), "powers of two"),
        (dict(fade_images=100), "whole number of steps"),
        (dict(stabilize_images=[160, 320]), "list of 3"),
        (dict(fade_images=0), "fade_images must be > 0"),
        (dict(batch_sizes=0), "batch sizes"),
    ],
)
def test_schedule_refuses_bad_input_with_a_clear_message(kwargs: dict, match: str) -> None:
    args = dict(resolutions=[4, 8, 16], fade_images=320, stabilize_images=320, batch_sizes=16) | kwargs
    with pytest.raises(ConfigError, match=match):
        Schedule(**args)


def test_progressive_game_refuses_fixed_networks_and_a_wrong_final_size(tmp_path: Path) -> None:
    raw = progan_recipe(4)
    raw["model"]["generator"] = {"name": "dcgan", "args": {"width": 8}}
    with pytest.raises(ConfigError, match="name: progan"):
        Trainer(build_recipe(raw), tmp_path / "a", progress=False).run()
    raw = progan_recipe(4)
    raw["game"]["args"]["resolutions"] = [4, 8]
    with pytest.raises(ConfigError, match="data size"):
        Trainer(build_recipe(raw), tmp_path / "b", progress=False)


def test_phases_change_at_the_exact_image_counts_and_optimiser_state_survives_growth(tmp_path: Path) -> None:
    # 4x4 for 160 images (10 steps of 16), 8x8 fades in over 160 (10 steps), stabilises 160 (10 steps), 16x16 fades in
    # over 160 images at batch 8 (20 steps), then stays.
    raw = progan_recipe(55, fade=160, stab=160, batch_sizes=[16, 16, 8], checkpoint_every=100, sample_every=100)
    trainer = Trainer(build_recipe(raw), tmp_path / "run", progress=False)
    trainer.run()
    recs = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    by_step = {r["step"]: r for r in recs if "resolution" in r}
    res = [by_step[s]["resolution"] for s in range(1, 56)]
    assert res == [4.0] * 10 + [8.0] * 20 + [16.0] * 25
    alphas = [by_step[s]["alpha"] for s in range(1, 56)]
    assert alphas[10:20] == pytest.approx([k / 10 for k in range(10)])  # step 11 starts the fade at image 160
    assert alphas[30:50] == pytest.approx([k / 20 for k in range(20)]) and alphas[50:] == [1.0] * 5
    assert by_step[55]["kimg"] == pytest.approx((30 * 16 + 25 * 8) / 1000)
    assert trainer.game.status() == "16x16 stabilise"
    assert trainer.stream.drawn == 30 * 16 + 25 * 8 == trainer.game.images
    images_per_s = [by_step[s]["images_per_s"] for s in (10, 40)]
    assert all(v > 0 for v in images_per_s)
    # One optimiser over every resolution's parameters: old ones kept their moments through each growth,
    # new ones joined when their block first ran, blocks never grown (none here) would have no state.
    G, opt = trainer.G, trainer.opts["g"]

    def adam_steps(p: torch.nn.Parameter) -> int:
        return int(opt.state[p]["step"]) if p in opt.state else 0

    assert adam_steps(G.dense.weight) == 55
    assert adam_steps(G.to_rgb[0].weight) == 20  # used until the 8x8 fade ended (steps 1-20)
    assert adam_steps(G.blocks[0].conv1.weight) == 45  # from the 8x8 fade on
    assert adam_steps(G.to_rgb[2].weight) == 25 and adam_steps(G.blocks[1].conv1.weight) == 25
    assert adam_steps(G.to_rgb[1].weight) == 40  # 8x8 fade, stable, then the old branch of the 16x16 fade


@pytest.mark.report
def test_a_mid_growth_run_samples_and_evaluates_at_its_resolution(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from ganforge.cli import main

    raw = progan_recipe(25, checkpoint_every=25, sample_every=25)
    raw["eval"] = {"every": 25, "metrics": ["fd"], "n": 64}
    out = Trainer(build_recipe(raw), tmp_path / "run", progress=False).run()  # ends in the 8x8 fade
    ev = json.loads((out / "eval" / "step_0000025.json").read_text())
    source = ev["protocol"]["generated"]["source"]
    assert "progressive generator at 8x8, fading in (alpha 0.20)" in source and "nearest-upsampled to 16x16" in source
    html = (out / "report.html").read_text()
    assert 'id="growth"' in html and "8x8 fade-in, step 25" in html
    assert main(["eval", str(out), "--n", "32", "--metrics", "fd", "--json", str(tmp_path / "e.json")]) == 0
    assert (
        "nearest-upsampled to 16x16" in json.loads((tmp_path / "e.json").read_text())["protocol"]["generated"]["source"]
    )
    assert main(["sample", str(out), "--n", "8", "--out", str(tmp_path / "s.npy")]) == 0
    assert "nearest-upsampled to 16x16" in capsys.readouterr().err
    x = np.load(tmp_path / "s.npy")
    assert x.shape == (8, 1, 16, 16)
    assert np.array_equal(x, x[..., ::2, ::2].repeat(2, axis=-2).repeat(2, axis=-1))  # 8x8 content, upsampled


@pytest.mark.parametrize("recipe", ["progan-fashion", "progan-folder"])
def test_progan_recipes_train_and_sample_shrunk(recipe: str, tmp_path: Path) -> None:
    from ganforge.cli import main
    from ganforge.config import load_recipe
    from ganforge.sampling import load_generator, sample

    shrink = [
        "data.image_size=16",
        "game.args.resolutions=[4,8,16]",
        "game.args.fade_images=32",
        "game.args.stabilize_images=32",
        "game.args.batch_sizes=8",
        "train.steps=10",
        "train.log_every=1",
        "train.precision=fp32",
        "train.threads=1",
        "train.n_samples=8",
        "eval.n=16",
        "eval.every=10",
        "model.generator.args.fmap_base=64",
        "model.discriminator.args.fmap_base=64",
    ]
    if recipe == "progan-folder":
        folder = tmp_path / "imgs"
        assert (
            main(["export", "stacked", "--base", "digits", "--out", str(folder), "--n", "24", "--image-size", "16"])
            == 0
        )
        shrink.append(f"data.path={folder}")
    else:
        shrink.append("data.name=digits")
    r = load_recipe(recipe, shrink)
    assert "arXiv:1710.10196" in r.source
    out = Trainer(r, tmp_path / recipe, progress=False).run()
    G, _, shape = load_generator(out)
    # 10 steps of 8 images: 4x4 for 4 steps, the 8x8 fade for 4, then 8x8 stable.
    assert growth_note(G) == "progressive generator at 8x8, nearest-upsampled to 16x16"
    x = sample(G, 4)
    assert x.shape == (4, shape[0], 16, 16) and torch.isfinite(x).all()


# 160 s on one thread (two 14-step runs evaluated at every step): it alone would push `make test` past its
# 10-minute budget on two cores; the bench's parts (fd_at_time, speedup, phases) keep fast tests below.
@pytest.mark.slow
def test_bench_progan_compares_growing_with_fixed_and_resumes(tmp_path: Path) -> None:
    from ganforge.benchmarks.progan import THRESHOLD, run_progan_bench

    kw = dict(phase_images=128, eval_n=100, workers=1, progress=False, base="digits", quick=True)
    res = run_progan_bench(tmp_path, **kw)
    runs = res["runs"]
    assert set(runs) == {"progressive", "fixed"} and res["info"]["cells_run"] == 2
    prog, fixed = runs["progressive"], runs["fixed"]
    assert prog["steps"] == fixed["steps"] == 14
    assert [p["phase"] for p in prog["phases"]] == [
        "4x4 stabilise",
        "8x8 fade-in",
        "8x8 stabilise",
        "16x16 fade-in",
        "16x16 stabilise",
        "32x32 fade-in",
        "32x32 stabilise",
    ]
    assert all(p["images"] == 128 and p["time_s"] > 0 for p in prog["phases"] + fixed["phases"])
    assert [c["step"] for c in prog["curve"]] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    assert res["speedup"]["total"] == pytest.approx(fixed["train_s"] / prog["train_s"])
    for r in runs.values():
        hit = next((c for c in r["curve"] if c["fd"] <= THRESHOLD), None)
        assert r["time_to_threshold_s"] == (hit["time"] if hit else None)
        assert {"fd_digits", "precision_digits", "recall_digits", "swd_x1e3"} <= set(r["metrics"])
    md = (tmp_path / "progan.md").read_text()
    assert "| progressive |" in md and "| 32x32 stabilise | 128 |" in md and "Speed-up" in md
    assert f"progressive {prog['curve'][-1]['fd']:.2f}" in md  # equal training time: its own last FD
    for name in (
        "fd_vs_time.png",
        "fixed_final_ema.png",
        "progressive_end_of_phase_1.png",
        "progressive_end_of_phase_7.png",
    ):
        assert (tmp_path / "plots" / name).is_file(), name
    again = run_progan_bench(tmp_path, **kw)  # finished runs are reused, not retrained
    assert again["info"]["cells_run"] == 0 and again["runs"]["fixed"]["train_s"] == fixed["train_s"]


def test_fd_at_equal_time_and_speedup_from_curves() -> None:
    from ganforge.benchmarks.progan import fd_at_time, speedup

    curve = [{"step": 10, "time": 5.0, "fd": 80.0}, {"step": 20, "time": 11.0, "fd": 50.0}]
    assert fd_at_time(curve, 4.9) is None and fd_at_time(curve, 5.0) == 80.0 and fd_at_time(curve, 30.0) == 50.0
    runs = {
        "progressive": {"train_s": 10.0, "time_to_threshold_s": 4.0},
        "fixed": {"train_s": 18.0, "time_to_threshold_s": None},
    }
    assert speedup(runs) == {"total": 1.8, "to_threshold": None}
    runs["fixed"]["time_to_threshold_s"] = 10.0
    assert speedup(runs)["to_threshold"] == 2.5
