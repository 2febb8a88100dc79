"""Regularisers against their definitions: analytic values on linear and flat discriminators."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.nn.spectral import apply_spectral_norm
from ganforge.regularizers import (
    annealed_std,
    build_regularizer,
    clip_weights_,
    dragan_penalty,
    drift_penalty,
    feature_matching_loss,
    gradient_penalty,
    historical_average_penalty,
    instance_noise,
    lazy_intervals,
    orthogonal_penalty,
    r1_penalty,
    r2_penalty,
)


def linear_d(w: list[float], b: float = 0.3) -> nn.Linear:
    lin = nn.Linear(len(w), 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([w]))
        lin.bias.fill_(b)
    return lin


def test_gradient_penalty_equals_analytic_value_for_a_linear_d() -> None:
    # grad D = w everywhere, so the penalty is (||w|| - center)^2 whatever the interpolates.
    torch.manual_seed(0)
    D = linear_d([3.0, 4.0])
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    assert gradient_penalty(D, real, fake).item() == pytest.approx((5 - 1) ** 2, rel=1e-5)
    assert gradient_penalty(D, real, fake, center=0.0).item() == pytest.approx(25.0, rel=1e-5)
    assert dragan_penalty(D, real).item() == pytest.approx(16.0, rel=1e-5)


def test_gradient_penalty_is_differentiable_in_d() -> None:
    D = linear_d([3.0, 4.0])
    gp = gradient_penalty(D, torch.randn(8, 2), torch.randn(8, 2))
    gp.backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    assert torch.allclose(D.weight.grad, torch.tensor([[2 * 4 * 3 / 5, 2 * 4 * 4 / 5]]), rtol=1e-5)


def test_r1_r2_analytic_and_zero_where_d_is_flat() -> None:
    D = linear_d([1.0, -2.0])
    x = torch.randn(10, 2)
    assert r1_penalty(D, x).item() == pytest.approx(5.0, rel=1e-5)
    assert r2_penalty(D, x).item() == pytest.approx(5.0, rel=1e-5)
    # A ReLU critic is flat (zero gradient) wherever its pre-activation is negative.
    flat = nn.Sequential(linear_d([1.0, 1.0], b=-100.0), nn.ReLU())
    assert r1_penalty(flat, x).item() == 0.0
    assert r1_penalty(lambda t: t.sum(1) * 0 + 7.0, x).item() == 0.0


def test_drift_and_clip_and_instance_noise() -> None:
    assert drift_penalty(torch.tensor([1.0, -3.0])).item() == pytest.approx(5.0)
    net = nn.Linear(4, 4)
    with torch.no_grad():
        net.weight.mul_(100)
    clip_weights_(net, 0.01)
    assert all(p.abs().max() <= 0.01 for p in net.parameters())
    x = torch.zeros(1000, 2)
    noisy = instance_noise(x, 0.5, generator=torch.Generator().manual_seed(0))
    assert noisy.std().item() == pytest.approx(0.5, rel=0.05)
    assert instance_noise(x, 0.0) is x
    assert annealed_std(0.4, 100, 50) == pytest.approx(0.2)
    assert annealed_std(0.4, 100, 500) == 0.0


def test_orthogonal_penalty_is_zero_for_orthogonal_rows_and_offdiagonal_only() -> None:
    net = nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.eye(4) * 3.0)  # rows orthogonal, not normalised: BigGAN's form ignores the diagonal
    assert orthogonal_penalty(net).item() == 0.0
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]))
    # W W^T has off-diagonal entries 1 at (0,1) and (1,0): penalty 2.
    assert orthogonal_penalty(net).item() == pytest.approx(2.0)


def test_historical_averaging_penalises_distance_from_past_mean() -> None:
    net = nn.Linear(1, 1, bias=False)
    state: dict = {}
    with torch.no_grad():
        net.weight.fill_(1.0)
    assert historical_average_penalty(net, state).item() == 0.0  # first call: the average is itself
    with torch.no_grad():
        net.weight.fill_(3.0)
    assert historical_average_penalty(net, state).item() == pytest.approx(4.0)  # avg of past = 1
    with torch.no_grad():
        net.weight.fill_(2.0)
    assert historical_average_penalty(net, state).item() == pytest.approx(0.0)  # avg of (1, 3) = 2


def test_feature_matching_on_mlp_features() -> None:
    from ganforge.models import build_discriminator

    D = build_discriminator("mlp", (2,), {"hidden": 8, "layers": 2})
    x = torch.randn(32, 2)
    assert feature_matching_loss(D, x, x.clone().requires_grad_(True)).item() == pytest.approx(0.0, abs=1e-10)
    fake = (x + 3).requires_grad_(True)
    loss = feature_matching_loss(D, x, fake)
    loss.backward()
    expected = (D.features(x).mean(0) - D.features(x + 3).mean(0)).pow(2).sum()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert fake.grad is not None and fake.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "make", [lambda: nn.Linear(20, 30), lambda: nn.Conv2d(3, 8, 3), lambda: nn.ConvTranspose2d(8, 3, 4)]
)
def test_spectral_norm_brings_top_singular_value_to_one(make) -> None:
    torch.manual_seed(0)  # layers are built here, not at collection, so their weights never depend on test order
    layer = make()
    with torch.no_grad():
        layer.weight.mul_(10)
    net = apply_spectral_norm(nn.Sequential(layer))
    net.train()
    for _ in range(200):  # power iterations run in training-mode forwards
        shape = (2, 20) if isinstance(layer, nn.Linear) else (2, layer.in_channels, 6, 6)
        net(torch.randn(shape))
    w = net[0].weight
    mat = w.transpose(0, 1).flatten(1) if isinstance(layer, nn.ConvTranspose2d) else w.flatten(1)
    assert torch.linalg.matrix_norm(mat, ord=2).item() == pytest.approx(1.0, abs=1e-2)


def test_registry_checks_names_nets_args_and_lazy_correction() -> None:
    with pytest.raises(ConfigError, match="gradient_penalty"):
        build_regularizer("gradient_penalti")
    with pytest.raises(ConfigError, match="center"):
        build_regularizer("gradient_penalty", args={"centre": 0})
    with pytest.raises(ConfigError, match="applies to d"):
        build_regularizer("r1", net="g")
    with pytest.raises(ConfigError, match="only penalties"):
        build_regularizer("weight_clip", every=4)
    lazy = build_regularizer("r1", weight=5.0, every=16)
    assert lazy.lazy and lazy.due(0) and not lazy.due(1) and lazy.due(16)
    assert lazy_intervals([lazy]) == {"d": 16}
    with pytest.raises(ConfigError, match="share one interval"):
        lazy_intervals([lazy, build_regularizer("r2", every=4)])


def test_penalties_survive_fp16_autocast() -> None:
    """Under fp16 autocast the penalty's pass runs in fp32, so tiny input gradients do not underflow to 0."""
    from ganforge.regularizers import r1_penalty

    D = torch.nn.Linear(4, 1, bias=False)
    torch.nn.init.constant_(D.weight, 1e-8)  # below fp16's smallest subnormal (6e-8)
    x = torch.randn(3, 4)
    with torch.autocast("cpu", dtype=torch.float16):
        pen = r1_penalty(D, x)
    assert float(pen) == pytest.approx(4e-16, rel=1e-3)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 keeps the fast path (and fp32's range)
        assert float(r1_penalty(D, x)) == pytest.approx(4e-16, rel=2e-2)
