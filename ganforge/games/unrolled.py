"""Unrolled GAN: G's loss is taken through k differentiable updates of a copy of D (Metz et al. 2017, arXiv:1611.02163)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.func import functional_call

from ..errors import ConfigError, choices_message
from .base import GameArgs, StepContext, register
from .standard import StandardGame

UNROLL_RULES = ("auto", "sgd", "adam")


@register("unrolled")
class UnrolledGame(StandardGame):
    """The standard D update, then a G update on f_K(theta_G, theta_D) = f(theta_G, theta_D^K) (Metz et al. 2017, Eqs. 5-7).

    theta_D^K is reached from the current D by `unroll` differentiable steps of D's
    objective on fresh batches, with the D optimiser's own rule: plain gradient descent
    (`sgd`) or Adam continuing from the optimiser's current moments (`adam`; `auto`
    picks adam when D's optimiser is Adam). The gradient reaches G through every unrolled
    step (create_graph=True); unroll=0 is exactly the standard game. The unrolled steps
    use the objective only, not D's regularisers.
    """

    distributed_refusal = (
        "its look-ahead copies of D take differentiable optimiser steps on one process's batch; "
        "train it on one process (or use PacGAN / R1, which do)"
    )

    supports_conditional = False  # its own step calls G and D without labels

    def __init__(self, args: GameArgs, unroll: int = 5, rule: str = "auto") -> None:
        super().__init__(args)
        if unroll < 0:
            raise ConfigError(f"game unroll must be >= 0, got {unroll}")
        if rule not in UNROLL_RULES:
            raise ConfigError(choices_message("unroll rule", rule, UNROLL_RULES))
        if unroll and not self.g_adversarial:
            raise ConfigError("the unrolled game needs the adversarial generator loss (g_adversarial: true)")
        self.unroll = int(unroll)
        self.rule = rule

    def _update_rule(self, ctx: StepContext) -> tuple[str, dict[str, Any]]:
        opt = ctx.opt_d
        group = opt.param_groups[0]
        rule = self.rule
        if rule == "auto":
            rule = "adam" if isinstance(opt, torch.optim.Adam) else "sgd"
        return rule, group

    def unrolled_d(self, ctx: StepContext) -> Callable[[Tensor], Tensor]:
        """D after `unroll` differentiable steps, as a function of its input."""
        base = getattr(ctx.D, "_orig_mod", ctx.D)
        names = [n for n, p in base.named_parameters() if p.requires_grad]
        real_params = dict(base.named_parameters())
        params = {n: real_params[n].detach().requires_grad_(True) for n in names}
        # Clones so that batch-norm statistics of the copy never leak into the real D.
        buffers = {n: b.detach().clone() for n, b in base.named_buffers()}
        rule, group = self._update_rule(ctx)
        lr = float(group["lr"])
        state = ctx.opt_d.state
        moments: dict[str, tuple[Tensor, Tensor, float]] = {}
        if rule == "adam":
            for n in names:
                st = state.get(real_params[n], {})
                m = st.get("exp_avg", torch.zeros_like(params[n])).detach()
                v = st.get("exp_avg_sq", torch.zeros_like(params[n])).detach()
                moments[n] = (m, v, float(st.get("step", 0)))
        beta1, beta2 = group.get("betas", (0.9, 0.999))
        eps = float(group.get("eps", 1e-8))

        def call(p: dict[str, Tensor], x: Tensor) -> Tensor:
            return functional_call(base, {**p, **buffers}, (x,))

        cur = params
        for _ in range(self.unroll):
            real_in = self.d_input(self.real(ctx))
            z = ctx.noise(real_in.shape[0] * self.pack_m)
            with ctx.autocast():
                # Not detached: how D moves depends on G's samples, and that is the point.
                fake_in = self.d_input(ctx.G(z))
                loss = self.objective.d_loss(call(cur, real_in), call(cur, fake_in))
            grads = torch.autograd.grad(loss, [cur[n] for n in names], create_graph=True)
            new = {}
            for n, g in zip(names, grads):
                if rule == "adam":
                    m, v, t = moments[n]
                    m = beta1 * m + (1 - beta1) * g
                    v = beta2 * v + (1 - beta2) * g * g
                    t = t + 1
                    m_hat = m / (1 - beta1**t)
                    v_hat = v / (1 - beta2**t)
                    # The tiny constant keeps sqrt differentiable where a gradient is exactly zero.
                    new[n] = cur[n] - lr * m_hat / ((v_hat + 1e-30).sqrt() + eps)
                    moments[n] = (m, v, t)
                else:
                    new[n] = cur[n] - lr * g
            cur = new
        final = cur
        return lambda x: call(final, x)

    def g_critic(self, ctx: StepContext) -> Callable[[Tensor], Tensor] | None:
        return self.unrolled_d(ctx) if self.unroll else None
