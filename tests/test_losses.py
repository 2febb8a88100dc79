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
