"""Optimistic optimisers: convergence on the bilinear game x*y, exact update rules, state round-trips."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable

import pytest
import torch
from torch import Tensor, nn

from ganforge.training.optimistic import OptimisticAdam, OptimisticSGD

MakeOpt = Callable[[Iterable[Tensor]], torch.optim.Optimizer]
START = (1.0, 1.0)
START_NORM = math.hypot(*START)


def _players() -> tuple[nn.Parameter, nn.Parameter]:
    return nn.Parameter(torch.tensor(START[0])), nn.Parameter(torch.tensor(START[1]))


def _game_grads(x: nn.Parameter, y: nn.Parameter) -> None:
    """Both players' gradients at the current point: x minimises x*y, y minimises -x*y."""
    x.grad = y.detach().clone()
    y.grad = -x.detach().clone()


def _simultaneous(make_opt: MakeOpt, steps: int) -> float:
    """Simultaneous gradient descent-ascent on min_x max_y x*y; returns the final distance to (0, 0)."""
    x, y = _players()
    ox, oy = make_opt([x]), make_opt([y])
    for _ in range(steps):
        _game_grads(x, y)
        ox.step()
        oy.step()
    return math.hypot(x.item(), y.item())


def _extragradient(make_opt: MakeOpt, steps: int) -> float:
    """Extragradient (Korpelevich 1976; Gidel et al. 2019) in the form the library's game uses:
    save params, optimizer.step(), recompute grads, restore params, optimizer.step()."""
    x, y = _players()
    ox, oy = make_opt([x]), make_opt([y])
    for _ in range(steps):
        saved = [x.detach().clone(), y.detach().clone()]
        _game_grads(x, y)
        ox.step()
        oy.step()
        _game_grads(x, y)  # the look-ahead gradient, taken at the extrapolated point
        with torch.no_grad():
            x.copy_(saved[0])
            y.copy_(saved[1])
        ox.step()
        oy.step()
    return math.hypot(x.item(), y.item())


def test_plain_gda_spirals_away_from_the_equilibrium():
    # Simultaneous GDA multiplies the distance by sqrt(1 + lr^2) every step: 1.005^500 ~ 12.
    final = _simultaneous(lambda p: torch.optim.SGD(p, lr=0.1), steps=500)
    assert final > 2 * START_NORM


def test_optimistic_sgd_converges_on_bilinear_game():
    final = _simultaneous(lambda p: OptimisticSGD(p, lr=0.1), steps=2000)
    assert final < 0.05


def test_extragradient_converges_on_bilinear_game():
    # Each step contracts by sqrt(1 - lr^2 + lr^4) ~ 0.995, leaving ~0.01 after 1000 steps.
    final = _extragradient(lambda p: torch.optim.SGD(p, lr=0.1), steps=1000)
    assert final < 0.05


# Adam on a scalar game is nearly sign-based and the outcome depends strongly on the betas. With
# beta1 >= 0.3 the momentum outweighs the optimistic correction and both variants spiral outwards;
# with beta2 <= 0.9 the normalised step never shrinks, so both lock into a limit cycle of radius
# ~lr and neither converges. No momentum and a slow second moment (beta2=0.999) let the optimistic
# step shrink with the gradient: it converges from several starting points for lr in [0.06, 0.15],
# whereas plain Adam with the same settings spirals outwards (2.6x the initial distance here).
ADAM_GAME = dict(lr=0.08, betas=(0.0, 0.999))


def test_optimistic_adam_converges_on_bilinear_game():
    final = _simultaneous(lambda p: OptimisticAdam(p, **ADAM_GAME), steps=1000)
    assert final < 0.1 * START_NORM


def test_plain_adam_does_not_converge_on_bilinear_game():
    final = _simultaneous(lambda p: torch.optim.Adam(p, **ADAM_GAME), steps=1000)
    assert final > 2 * START_NORM


def test_optimistic_sgd_update_rule():
    p = nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = OptimisticSGD([p], lr=0.1)
    g1, g2 = torch.tensor([1.0, -1.0]), torch.tensor([0.5, 3.0])
    p.grad = g1.clone()
    opt.step()
    expected = torch.tensor([1.0, 2.0]) - 0.2 * g1  # g_0 = 0
    torch.testing.assert_close(p.detach(), expected)
    p.grad = g2.clone()
    opt.step()
    torch.testing.assert_close(p.detach(), expected - 0.2 * g2 + 0.1 * g1)


def test_optimistic_adam_update_rule():
    lr, (b1, b2), eps = 0.1, (0.9, 0.999), 1e-8
    start = torch.tensor([1.0, -2.0])
    grads = [torch.tensor([0.3, -1.0]), torch.tensor([-0.5, 2.0])]
    p = nn.Parameter(start.clone())
    opt = OptimisticAdam([p], lr=lr, betas=(b1, b2), eps=eps)

    m = v = prev = torch.zeros(2)
    expected = start.clone()
    for t, g in enumerate(grads, start=1):
        p.grad = g.clone()
        opt.step()
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        u = (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
        expected = expected - lr * (2 * u - prev)
        prev = u
        torch.testing.assert_close(p.detach(), expected)


def test_weight_decay_is_added_to_the_gradient():
    for cls in (OptimisticSGD, OptimisticAdam):
        a, b = nn.Parameter(torch.tensor([2.0])), nn.Parameter(torch.tensor([2.0]))
        opt_a, opt_b = cls([a], lr=0.1, weight_decay=0.5), cls([b], lr=0.1)
        a.grad = torch.tensor([1.0])
        b.grad = torch.tensor([1.0 + 0.5 * 2.0])
        opt_a.step()
        opt_b.step()
        torch.testing.assert_close(a.detach(), b.detach())


def test_params_without_grad_are_skipped():
    for cls in (OptimisticSGD, OptimisticAdam):
        used, unused = nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(2))
        opt = cls([used, unused], lr=0.1)
        used.grad = torch.ones(2)
        opt.step()
        assert torch.equal(unused.detach(), torch.ones(2))
        assert unused not in opt.state
        assert not torch.equal(used.detach(), torch.ones(2))


def _quadratic_step(p: nn.Parameter, opt: torch.optim.Optimizer, step: int) -> None:
    opt.zero_grad()
    target = torch.tensor([1.0, -1.0, 0.5]) * (1 + step % 3)  # varies so the stored state matters
    ((p - target) ** 2).sum().backward()
    opt.step()


def test_optimistic_adam_state_dict_round_trip():
    a = nn.Parameter(torch.zeros(3))
    opt_a = OptimisticAdam([a], lr=0.05, betas=(0.5, 0.9))
    for s in range(5):
        _quadratic_step(a, opt_a, s)

    buf = io.BytesIO()
    torch.save(opt_a.state_dict(), buf)
    buf.seek(0)
    b = nn.Parameter(a.detach().clone())
    opt_b = OptimisticAdam([b], lr=0.05, betas=(0.5, 0.9))
    opt_b.load_state_dict(torch.load(buf, weights_only=True))
    fresh = nn.Parameter(a.detach().clone())
    opt_fresh = OptimisticAdam([fresh], lr=0.05, betas=(0.5, 0.9))

    for s in range(5, 10):
        _quadratic_step(a, opt_a, s)
        _quadratic_step(b, opt_b, s)
        _quadratic_step(fresh, opt_fresh, s)
    assert torch.equal(a.detach(), b.detach())
    # Without the restored moments and previous update the trajectory differs.
    assert not torch.allclose(a.detach(), fresh.detach())


def test_optimistic_adam_minimises_convex_quadratic():
    target = torch.tensor([1.0, -2.0, 3.0])
    curvature = torch.tensor([1.0, 10.0, 0.1])  # ill-conditioned on purpose
    p = nn.Parameter(torch.zeros(3))
    opt = OptimisticAdam([p], lr=0.05)
    for _ in range(1000):
        opt.zero_grad()
        (0.5 * curvature * (p - target) ** 2).sum().backward()
        opt.step()
    assert (p.detach() - target).abs().max() < 1e-3


@pytest.mark.parametrize(
    "make",
    [
        lambda p: OptimisticAdam(p, lr=-1.0),
        lambda p: OptimisticAdam(p, betas=(1.0, 0.999)),
        lambda p: OptimisticAdam(p, betas=(0.9, -0.1)),
        lambda p: OptimisticAdam(p, eps=-1e-8),
        lambda p: OptimisticAdam(p, weight_decay=-0.1),
        lambda p: OptimisticSGD(p, lr=-0.1),
        lambda p: OptimisticSGD(p, weight_decay=-0.1),
    ],
)
def test_invalid_arguments_raise(make):
    with pytest.raises(ValueError):
        make([nn.Parameter(torch.zeros(1))])
