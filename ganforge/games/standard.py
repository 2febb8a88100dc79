"""The standard alternating GAN step: n_critic discriminator updates, then one generator update."""

from __future__ import annotations

import torch
from torch import Tensor

from ..losses import Objective
from .base import GAMES, Game, StepContext


@GAMES.register("standard")
class StandardGame(Game):
    """Alternating updates (Goodfellow et al. 2014, Algorithm 1) with k = n_critic D steps per G step."""

    def __init__(self, objective: Objective, n_critic: int = 1) -> None:
        self.objective = objective
        self.n_critic = n_critic

    def step(self, ctx: StepContext) -> dict[str, Tensor]:
        obj = self.objective
        d_total = torch.zeros((), device=ctx.device)
        for _ in range(self.n_critic):
            real, _ = ctx.real_batch()
            z = ctx.noise(real.shape[0])
            with ctx.autocast():
                with torch.no_grad():
                    fake = ctx.G(z)
                # Real and fake go through D separately so batch norm sees pure batches,
                # as in the reference DCGAN implementation.
                real_logits = ctx.D(real)
                fake_logits = ctx.D(fake)
                d_loss = obj.d_loss(real_logits, fake_logits)
            ctx.step_d(d_loss)
            d_total += d_loss.detach()
        logit_real = real_logits.detach().float().mean()
        logit_fake = fake_logits.detach().float().mean()

        z = ctx.noise(ctx.batch_size)
        with ctx.frozen(ctx.D), ctx.autocast():
            fake = ctx.G(z)
            g_fake_logits = ctx.D(fake)
            g_real_logits = ctx.D(ctx.real_batch()[0]) if obj.g_needs_real else None
            g_loss = obj.g_loss(g_fake_logits, g_real_logits)
        ctx.step_g(g_loss)
        return {
            "d_loss": d_total / self.n_critic,
            "g_loss": g_loss.detach(),
            "logit_real": logit_real,
            "logit_fake": logit_fake,
        }
