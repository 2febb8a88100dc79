"""Schedule 'plateau': the lr cut by `factor` when a logged value stalls (BEGAN's rule, Berthelot et al. 2017)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_recipe
from torch import nn

from ganforge.config import OptimizerConfig, build_recipe, load_recipe
from ganforge.errors import ConfigError
from ganforge.training.optim import PlateauFactor, build_scheduler, plateau_factors
from ganforge.training.trainer import Trainer


def _lrs(values: list[float], **cfg: object) -> list[float]:
    """The lr seen at each step while the monitored value takes `values`."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler(opt, OptimizerConfig(lr=1.0, schedule="plateau", monitor="m", **cfg), len(values))
    (f,) = plateau_factors(sched)
    out = []
    for v in values:
        out.append(opt.param_groups[0]["lr"])
        f.observe(v)
        opt.step()
        sched.step()
    return [*out, opt.param_groups[0]["lr"]]


def test_plateau_halves_the_lr_only_after_a_window_without_improvement() -> None:
    falling = [5.0, 5.0, 4.0, 4.0, 3.0, 3.0, 2.0, 2.0]
    assert _lrs(falling, patience=2) == [1.0] * 9
    # Window means 5, 4, 4, 4: the third and fourth windows stall (each cut lands after its last step).
    stall = [5.0, 5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert _lrs(stall, patience=2) == [1.0] * 6 + [0.5] * 2 + [0.25]
    # threshold: a 1% gain is not enough when 10% is asked; min_factor bounds the cuts.
    slow = [100.0, 99.0, 98.0, 97.0, 96.0]
    assert _lrs(slow, patience=1, threshold=0.1, min_factor=0.3)[-1] == pytest.approx(0.3)
    assert _lrs(slow, patience=1, threshold=0.0)[-1] == 1.0
    # A NaN step is skipped, not counted as a stall; warm-up still ramps the lr.
    assert _lrs([3.0, float("nan"), 2.0, 1.0], patience=1) == [1.0] * 5
    assert _lrs([3.0, 2.0, 1.0, 0.5], patience=1, warmup=2) == [0.5, 1.0, 1.0, 1.0, 1.0]


def test_plateau_state_but_not_its_settings_round_trip_through_the_scheduler_state() -> None:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler(opt, OptimizerConfig(schedule="plateau", monitor="m", patience=1), 10)
    (f,) = plateau_factors(sched)
    for v in (2.0, 2.0, 2.0):
        f.observe(v)
        sched.step()
    state = sched.state_dict()
    assert state["lr_lambdas"] == [{"scale": 0.25, "best": 2.0, "total": 0.0, "count": 0, "decays": 2}]
    opt2 = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    other = build_scheduler(opt2, OptimizerConfig(schedule="plateau", monitor="d_loss", patience=7), 10)
    other.load_state_dict(state)
    (g,) = plateau_factors(other)
    assert (g.scale, g.best, g.decays) == (0.25, 2.0, 2) and (g.monitor, g.patience) == ("d_loss", 7)
    assert isinstance(g, PlateauFactor) and not plateau_factors(build_scheduler(opt2, OptimizerConfig(), 10))


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["optim.g.schedule=plateau"], "needs monitor"),
        (["optim.g.monitor=d_loss"], "schedule 'plateau' only"),
        (["optim.g.schedule=plateau", "optim.g.monitor=d_loss", "optim.g.patience=0"], "patience"),
        (["optim.g.schedule=plateau", "optim.g.monitor=d_loss", "optim.g.threshold=1.5"], "threshold"),
        (["optim.g.schedule=plateau", "optim.g.monitor=d_loss", "optim.g.min_factor=2"], "min_factor"),
        (["optim.g.schedule=cosine"], "plateau"),
    ],
)
def test_plateau_settings_are_checked(overrides: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_recipe("demo", overrides)


def _began(steps: int, monitor: str = "m_global") -> dict:
    net = {"name": "began", "args": {"width": 4}}
    # threshold 0.99: no window improves by 99%, so after the first window every window is a stall.
    sched = {"schedule": "plateau", "monitor": monitor, "patience": 2, "threshold": 0.99}
    raw = tiny_recipe(
        {"name": "digits", "image_size": 8},
        steps=steps,
        model={"generator": net, "discriminator": {"name": "began", "args": {"width": 4, "hidden": 8}}},
        game={"name": "began", "args": {"gamma": 0.5}},
        optim={"g": {"name": "adam", "lr": 1e-3, **sched}, "d": {"name": "adam", "lr": 1e-3, **sched}},
    )
    raw["train"].update(log_every=2, checkpoint_every=4, sample_every=8)
    return raw


def test_a_began_run_halves_its_lr_when_m_global_stalls_and_resumes_with_the_cut_lr(tmp_path: Path) -> None:
    out = Trainer(build_recipe(_began(8)), tmp_path / "whole", progress=False).run()
    lrs = [(r["step"], r["lr_g"], r["lr_d"]) for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())]
    # Windows end at steps 2 (the first best), 4, 6, 8 (stalls): the lr after step s is 1e-3 * 0.5 ** cuts.
    assert [s for s, _, _ in lrs] == [2, 4, 6, 8]
    assert [g for _, g, _ in lrs] == pytest.approx([1e-3, 5e-4, 2.5e-4, 1.25e-4])
    assert all(g == d for _, g, d in lrs)
    # Stopped at step 4 and resumed: the same lrs as the uninterrupted run.
    half = _began(8)
    half["train"]["steps"] = 4
    Trainer(build_recipe(half), tmp_path / "parts", progress=False).run()
    resumed = Trainer.resume_run(tmp_path / "parts", [], steps=8, progress=False)
    resumed.run()
    (f,) = plateau_factors(resumed.sched_g)
    assert f.scale == pytest.approx(0.125) and f.decays == 3
    parts = [
        (r["step"], r["lr_g"]) for r in map(json.loads, (tmp_path / "parts" / "metrics.jsonl").read_text().splitlines())
    ]
    assert parts == [(s, g) for s, g, _ in lrs]


def test_an_unknown_monitor_names_what_the_game_logs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'m_globl' is not a value the began game logs; it logs: .*m_global"):
        Trainer(build_recipe(_began(4, monitor="m_globl")), tmp_path / "run", progress=False).run()
