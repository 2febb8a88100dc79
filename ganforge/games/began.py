"""BEGAN: an auto-encoder discriminator balanced against G by a proportional controller k_t (Berthelot et al. 2017, arXiv:1703.10717)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..errors import ConfigError
from ..losses import (
    autoencoder_loss,
    began_balance,
    began_d_loss,
    began_g_loss,
    began_k_update,
    began_m_global,
)
from .base import Game, GameArgs, StepContext, register


def _check_range(name: str, value: float, lo: float, hi: float, lo_open: bool = False) -> float:
    value = float(value)
    ok = math.isfinite(value) and (value > lo if lo_open else value >= lo) and value <= hi
    if not ok:
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]" if math.isfinite(hi) else f">= {lo:g}"
        raise ConfigError(f"began game: {name} must be {'in ' if math.isfinite(hi) else ''}{interval}, got {value}")
    return value


@register("began")
class BEGANGame(Game):
    """Boundary-equilibrium step (Berthelot et al. 2017, Eq. 4): D minimises L(x) - k_t L(G(z_D)), G minimises L(G(z_G)).

    L(v) = mean |v - D(v)| is D's auto-encoder reconstruction error (the `began` model
    family's D returns reconstructions). After both updates k_t moves towards the
    equilibrium gamma = E[L(G(z))] / E[L(x)]: k_{t+1} = clip(k_t + lambda_k (gamma L(x)
    - L(G(z_G))), 0, 1), and the step logs the convergence measure M_global (Sec. 3.4.1).
    The recipe's `loss:` (a logit objective) is ignored: BEGAN's objective is its own.
    Logged `k` is k_{t+1}, the value the next step uses; `l_fake` is L(G(z_G)) from G's step.
    """

    options = ()  # none of the standard step's game.args (pack, g_adversarial)

    def __init__(self, args: GameArgs, gamma: float = 0.5, lambda_k: float = 0.001, k0: float = 0.0) -> None:
        if args.n_critic != 1:
            raise ConfigError(
                f"the began game updates D and G once each per step; use n_critic: 1 (got {args.n_critic})"
            )
        if list(args.regularizers):
            raise ConfigError(
                "the began game takes no regularizers: its auto-encoder discriminator outputs "
                "reconstructions, not logits (remove the recipe's regularizers:)"
            )
        super().__init__(args)  # args.objective is unused: BEGAN's objective is its own
        self.gamma = _check_range("gamma", gamma, 0.0, 1.0, lo_open=True)
        self.lambda_k = _check_range("lambda_k", lambda_k, 0.0, math.inf)
        self.k = _check_range("k0", k0, 0.0, 1.0)
        self.steps = 0

    def step(self, ctx: StepContext) -> dict[str, Tensor]:
        k = self.k
        # D: L_D = L(x) - k_t L(G(z_D)), the fake batch detached from G.
        real = ctx.real_batch()[0]
        z_d = ctx.noise(real.shape[0])
        with torch.no_grad(), ctx.autocast():
            fake_d = ctx.G(z_d)
        with ctx.autocast():
            l_real = autoencoder_loss(real, ctx.D(real)).mean()
            l_fake_d = autoencoder_loss(fake_d, ctx.D(fake_d)).mean()
            d_loss = began_d_loss(l_real, l_fake_d, k)
        ctx.step_d(d_loss)

        # G: L_G = L(G(z_G)); D's weights get no gradient, but G's gradient flows through D's forward
        # pass and through G(z_G) as the reconstruction target.
        z_g = ctx.noise(ctx.batch_size)
        with ctx.frozen(ctx.D), ctx.autocast():
            fake_g = ctx.G(z_g)
            l_fake = autoencoder_loss(fake_g, ctx.D(fake_g)).mean()
            g_loss = began_g_loss(l_fake)
        ctx.step_g(g_loss)

        # Proportional control of k_t with the detached means (Eq. 4), then M_global (Sec. 3.4.1).
        # With several processes the means are the global batch's, so that k_t stays the same on every rank.
        means = ctx.mean_over_ranks({"real": l_real.detach().float(), "fake": l_fake.detach().float()})
        lr, lf = means["real"], means["fake"]
        self.k = began_k_update(k, lr, lf, self.gamma, self.lambda_k)
        self.steps += 1
        return {
            "d_loss": d_loss.detach().float(),
            "g_loss": g_loss.detach().float(),
            "l_real": lr,
            "l_fake": lf,
            "l_fake_d": l_fake_d.detach().float(),
            "balance": began_balance(lr, lf, self.gamma),
            "m_global": began_m_global(lr, lf, self.gamma),
            "k": torch.tensor(self.k, dtype=torch.float32),
        }

    def state_dict(self) -> dict[str, Any]:
        return {"k": self.k, "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.k = float(state.get("k", self.k))
        self.steps = int(state.get("steps", 0))
