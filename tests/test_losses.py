"""Each objective against its formula on hand-made logits."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.errors import ConfigError
from ganforge.losses import OBJECTIVES, get_objective

REAL = torch.tensor([2.0, -1.0, 0.5])
FAKE = torch.tensor([-3.0, 0.0, 1.5])


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def test_minimax_d_loss_is_binary_cross_entropy_of_eq1() -> None:
    # Goodfellow et al. 2014, Eq. 1: D maximises log D(x) + log(1 - D(G(z))).
    expected = -mean([math.log(sig(r)) for r in REAL.tolist()]) - mean([math.log(1 - sig(f)) for f in FAKE.tolist()])
    for name in ("minimax", "non_saturating"):
        assert get_objective(name).d_loss(REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)


def test_saturating_generator_loss() -> None:
    expected = mean([math.log(1 - sig(f)) for f in FAKE.tolist()])
    assert get_objective("minimax").g_loss(FAKE, None).item() == pytest.approx(expected, rel=1e-6)


def test_non_saturating_generator_loss() -> None:
    expected = -mean([math.log(sig(f)) for f in FAKE.tolist()])
    assert get_objective("non_saturating").g_loss(FAKE, None).item() == pytest.approx(expected, rel=1e-6)


def test_saturation_is_what_the_names_say() -> None:
    # When D confidently rejects fakes (logit -> -inf), the saturating loss has a vanishing
    # gradient while the non-saturating one does not (Goodfellow et al. 2014, Sec. 3).
    f = torch.tensor([-10.0], requires_grad=True)
    get_objective("minimax").g_loss(f, None).backward()
    sat = f.grad.abs().item()
    f.grad = None
    get_objective("non_saturating").g_loss(f, None).backward()
    assert sat < 1e-4 < f.grad.abs().item()


def test_losses_are_stable_for_extreme_logits_and_low_precision() -> None:
    big = torch.tensor([1e4, -1e4], dtype=torch.bfloat16)
    for name in OBJECTIVES:
        obj = get_objective(name)
        assert torch.isfinite(obj.d_loss(big, -big)) and torch.isfinite(obj.g_loss(big, big))
        assert obj.d_loss(big, -big).dtype == torch.float32


def test_unknown_objective_lists_choices() -> None:
    with pytest.raises(ConfigError, match="non_saturating"):
        get_objective("nonsaturating")


# --------------------------------------------------------------------------- the zoo


def test_one_sided_label_smoothing_targets_only_real() -> None:
    # Salimans et al. 2016, Sec. 3.4: real target 0.9, fake target stays 0.
    obj = get_objective("non_saturating", {"real_label": 0.9})
    expected = mean([-(0.9 * math.log(sig(r)) + 0.1 * math.log(1 - sig(r))) for r in REAL.tolist()]) - mean(
        [math.log(1 - sig(f)) for f in FAKE.tolist()]
    )
    assert obj.d_loss(REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)
    assert obj.g_loss(FAKE, None).item() == get_objective("non_saturating").g_loss(FAKE, None).item()


def test_wasserstein() -> None:
    obj = get_objective("wasserstein")
    assert obj.d_loss(REAL, FAKE).item() == pytest.approx(mean(FAKE.tolist()) - mean(REAL.tolist()))
    assert obj.g_loss(FAKE, None).item() == pytest.approx(-mean(FAKE.tolist()))


@pytest.mark.parametrize("a,b,c", [(0.0, 1.0, 1.0), (-1.0, 1.0, 0.0)])
def test_least_squares_with_targets(a: float, b: float, c: float) -> None:
    obj = get_objective("least_squares", {"a": a, "b": b, "c": c})
    d = 0.5 * mean([(r - b) ** 2 for r in REAL.tolist()]) + 0.5 * mean([(f - a) ** 2 for f in FAKE.tolist()])
    g = 0.5 * mean([(f - c) ** 2 for f in FAKE.tolist()])
    assert obj.d_loss(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert obj.g_loss(FAKE, None).item() == pytest.approx(g, rel=1e-6)


def test_hinge() -> None:
    obj = get_objective("hinge")
    d = mean([max(0, 1 - r) for r in REAL.tolist()]) + mean([max(0, 1 + f) for f in FAKE.tolist()])
    assert obj.d_loss(REAL, FAKE).item() == pytest.approx(d)
    assert obj.g_loss(FAKE, None).item() == pytest.approx(-mean(FAKE.tolist()))


def test_relativistic_standard_pairs_samples() -> None:
    obj = get_objective("rsgan")
    r, f = REAL.tolist(), FAKE.tolist()
    assert obj.d_loss(REAL, FAKE).item() == pytest.approx(-mean([math.log(sig(a - b)) for a, b in zip(r, f)]), rel=1e-6)
    assert obj.g_loss(FAKE, REAL).item() == pytest.approx(-mean([math.log(sig(b - a)) for a, b in zip(r, f)]), rel=1e-6)
    assert obj.g_needs_real


def test_relativistic_average_family() -> None:
    r, f = REAL.tolist(), FAKE.tolist()
    mr, mf = mean(r), mean(f)
    ra = get_objective("ragan")
    d = -mean([math.log(sig(x - mf)) for x in r]) - mean([math.log(1 - sig(x - mr)) for x in f])
    g = -mean([math.log(sig(x - mr)) for x in f]) - mean([math.log(1 - sig(x - mf)) for x in r])
    assert ra.d_loss(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert ra.g_loss(FAKE, REAL).item() == pytest.approx(g, rel=1e-6)
    ls = get_objective("ralsgan")
    d = mean([(x - mf - 1) ** 2 for x in r]) + mean([(x - mr + 1) ** 2 for x in f])
    g = mean([(x - mr - 1) ** 2 for x in f]) + mean([(x - mf + 1) ** 2 for x in r])
    assert ls.d_loss(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert ls.g_loss(FAKE, REAL).item() == pytest.approx(g, rel=1e-6)
    hi = get_objective("rahinge")
    d = mean([max(0, 1 - (x - mf)) for x in r]) + mean([max(0, 1 + (x - mr)) for x in f])
    g = mean([max(0, 1 - (x - mr)) for x in f]) + mean([max(0, 1 + (x - mf)) for x in r])
    assert hi.d_loss(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert hi.g_loss(FAKE, REAL).item() == pytest.approx(g, rel=1e-6)
    with pytest.raises(ValueError, match="needs D\\(real\\)"):
        hi.g_loss(FAKE, None)


def test_unknown_loss_argument_lists_valid_ones() -> None:
    with pytest.raises(ConfigError, match="a, b, c"):
        get_objective("least_squares", {"d": 1.0})
    with pytest.raises(ConfigError, match="takes no arguments"):
        get_objective("hinge", {"margin": 2.0})


def test_every_objective_is_finite_under_extreme_logits() -> None:
    big = torch.tensor([1e4, -1e4, 0.0])
    for name in OBJECTIVES.names():
        obj = get_objective(name)
        assert torch.isfinite(obj.d_loss(big, -big))
        assert torch.isfinite(obj.g_loss(-big, big))


def test_each_objective_states_d_decision_rule_or_none() -> None:
    """D's accuracy (a training-health signal) under each objective's own decision rule."""
    import torch

    from ganforge.losses import OBJECTIVES, get_objective

    real, fake = torch.tensor([2.0, 0.7, -1.0, 3.0]), torch.tensor([-2.0, 0.2, 1.5, -0.1])
    acc = {n: get_objective(n).accuracy for n in OBJECTIVES.names()}
    assert acc["wasserstein"] is None  # a critic's level is arbitrary: no decision
    for n in ("minimax", "non_saturating", "hinge"):
        assert [float(v) for v in acc[n](real, fake)] == [0.75, 0.5]
    assert [float(v) for v in acc["least_squares"](real, fake)] == [0.75, 0.75]  # midpoint 0.5 of targets 0 and 1
    ls = get_objective("least_squares", {"a": -1.0, "b": 1.0, "c": 0.0})
    assert [float(v) for v in ls.accuracy(real, fake)] == [0.75, 0.5]  # midpoint 0
    # relativistic: real above the mean fake (-0.1), fake below the mean real (1.175)
    for n in ("rsgan", "ragan", "ralsgan", "rahinge"):
        assert [float(v) for v in acc[n](real, fake)] == [0.75, 0.75]
