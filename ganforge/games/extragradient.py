"""Extragradient: both players look one step ahead, then update from where they stand (Gidel et al. 2019, arXiv:1802.10551)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError
from .base import GameArgs, StepContext, register
from .standard import StandardGame


@register("extragradient")
class ExtragradientGame(StandardGame):
    """Simultaneous extragradient (Korpelevich 1976; Gidel et al. 2019, Algorithm "Extra-Adam").

    Each step: both players take an optimiser step from theta with gradients at theta
    (the extrapolation theta'); then gradients are taken at theta', theta is restored and
    both take the real step with those gradients. The optimiser's state (e.g. Adam's
    moments) sees both gradients, as in Gidel et al.'s Extra-Adam. The EMA of G follows
    only the real step.
    """

    supports_conditional = False  # its own step calls G and D without labels

    def __init__(self, args: GameArgs) -> None:
        if args.n_critic != 1:
            raise ConfigError("the extragradient game updates both players simultaneously; use n_critic: 1")
        regs = args.regularizers
        if any(r.lazy for r in regs) or any(r.reg.kind == "constraint" for r in regs):
            raise ConfigError(
                "the extragradient game supports eager penalties only (no lazy regularisers or weight clipping)"
            )
        super().__init__(args)

    def _losses(self, ctx: StepContext) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        real = self.real(ctx)
        z = ctx.noise(real.shape[0])
        with torch.no_grad(), ctx.autocast():
            fake = ctx.G(z)
        d_loss, dlogs = self.d_loss(ctx, real, fake)
        g_loss, glogs = self.g_loss(ctx)
        return d_loss, g_loss, {**dlogs, **glogs}

    def step(self, ctx: StepContext) -> dict[str, Tensor]:
        g_params = [p for p in ctx.G.parameters() if p.requires_grad]
        d_params = [p for p in ctx.D.parameters() if p.requires_grad]
        with torch.no_grad():
            g_saved = [p.detach().clone() for p in g_params]
            d_saved = [p.detach().clone() for p in d_params]
        # Extrapolation. G first: its loss was formed through D's current weights, which
        # D's update would otherwise overwrite before G's backward pass.
        d_loss, g_loss, _ = self._losses(ctx)
        ctx.step_g(g_loss, ema=False)
        ctx.step_d(d_loss)
        # The update, with gradients from the extrapolated point applied at the saved one.
        d_loss, g_loss, logs = self._losses(ctx)
        ctx.step_g(g_loss, restore=g_saved)
        ctx.step_d(d_loss, restore=d_saved)
        self.augment_update(ctx)
        self.d_updates += 1
        self.g_updates += 1
        return {"d_loss": d_loss.detach().float(), "g_loss": g_loss.detach().float(), **logs, **self.augment_logs()}
