"""CycleGAN's step: two translators, two discriminators, cycle and identity losses, history pools (Zhu et al. 2017, arXiv:1703.10593).

G_ab: A -> B and G_ba: B -> A are trained together (one optimiser, `optim.g`), as are D_a and D_b
(`optim.d`), as in the authors' code. Every part is a game argument, so the paper's ablations are
overrides: `cycle_weight: 0` (GAN alone, Table 4; the identity weight, a fraction of it, goes too),
`identity: 0`, `pool_size: 0`.
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from ..errors import ConfigError
from ..losses import cycle_loss, identity_loss, l1_mean
from .base import Game, GameArgs, Network, StepContext, register
from .image_pool import ImagePool


@register("cycle")
class CycleGame(Game):
    """One step of Zhu et al. 2017, Eq. 3 plus the identity term (Sec. 5.2) and the history pools (Sec. 4).

    G step: L = w_adv (L_adv(G_ab, D_b) + L_adv(G_ba, D_a)) + lambda L_cyc + identity * lambda L_identity,
    with the recipe's objective for L_adv (the paper: least squares). D step: each D's objective on its
    real images and on fakes drawn through its domain's pool. `adversarial_weight` 2 with the
    `least_squares` objective gives the paper's G loss E[(D(G(a)) - 1)^2] (ganforge's LSGAN G loss has
    Mao et al.'s 1/2); its D loss, 1/2 of the two squared errors, is already the paper's halved D objective.
    """

    networks = (
        Network("G_ab", "translator", "g"),
        Network("G_ba", "translator", "g"),
        Network("D_a", "discriminator", "d"),
        Network("D_b", "discriminator", "d"),
    )
    generator = None
    data = "unpaired"
    options = ()  # none of the standard step's game.args (pack, g_adversarial)

    def __init__(
        self,
        args: GameArgs,
        cycle_weight: float = 10.0,
        identity: float = 0.5,
        pool_size: int = 50,
        adversarial_weight: float = 1.0,
    ) -> None:
        if args.n_critic != 1:
            raise ConfigError(
                f"the cycle game updates the translators and the discriminators once each per step; "
                f"use n_critic: 1 (got {args.n_critic})"
            )
        if list(args.regularizers):
            raise ConfigError(
                "the cycle game takes no regularizers: its generators' extra terms are its own "
                "(game.args cycle_weight, identity)"
            )
        super().__init__(args)
        for name, v in (
            ("cycle_weight", cycle_weight),
            ("identity", identity),
            ("adversarial_weight", adversarial_weight),
        ):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"cycle game: {name} must be a finite number >= 0, got {v!r}")
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or not 0 <= pool_size <= 100_000:
            raise ConfigError(f"cycle game: pool_size must be an integer in 0..100000 (0: no pool), got {pool_size!r}")
        self.cycle_weight = float(cycle_weight)
        self.identity = float(identity)
        self.adversarial_weight = float(adversarial_weight)
        self.pool_size = pool_size
        self.pools = {"a": ImagePool(pool_size, 0), "b": ImagePool(pool_size, 1)}

    def set_seed(self, seed: int) -> None:
        """Seed the two pools from the run's seed (each its own stream)."""
        self.pools = {s: ImagePool(self.pool_size, seed * 2 + i + 1) for i, s in enumerate(("a", "b"))}

    def real_per_step(self, batch_size: int) -> int:
        """Images of each domain one step reads (as many of the other)."""
        return batch_size

    def step(self, ctx: StepContext) -> dict[str, Tensor]:
        obj = self.objective
        assert obj is not None
        G_ab, G_ba, D_a, D_b = (ctx.nets[n] for n in ("G_ab", "G_ba", "D_a", "D_b"))
        a, b = ctx.real_pair()
        lam, w_idt = self.cycle_weight, self.identity * self.cycle_weight

        # Translators: both directions, both cycles; D's weights get no gradients here.
        with ctx.frozen(D_a), ctx.frozen(D_b), ctx.autocast():
            fake_b, fake_a = G_ab(a), G_ba(b)
            adv_ab = obj.g_loss(D_b(fake_b), None)
            adv_ba = obj.g_loss(D_a(fake_a), None)
            loss = self.adversarial_weight * (adv_ab + adv_ba)
            cyc_a = cyc_b = idt_a = idt_b = None
            if lam > 0:
                rec_a, rec_b = G_ba(fake_b), G_ab(fake_a)
                cyc_a, cyc_b = l1_mean(rec_a, a).detach(), l1_mean(rec_b, b).detach()
                loss = loss + lam * cycle_loss(a, rec_a, b, rec_b)
            if w_idt > 0:
                same_a, same_b = G_ba(a), G_ab(b)  # F(a) and G(b) should change nothing
                idt_a, idt_b = l1_mean(same_a, a).detach(), l1_mean(same_b, b).detach()
                loss = loss + w_idt * identity_loss(a, same_a, b, same_b)
        ctx.step_g(loss)

        # Discriminators: real images against fakes through the history pools.
        pool_a, pool_b = self.pools["a"].query(fake_a), self.pools["b"].query(fake_b)
        with ctx.autocast():
            d_a = obj.d_loss(D_a(a), D_a(pool_a))
            d_b = obj.d_loss(D_b(b), D_b(pool_b))
        ctx.step_d(d_a + d_b)

        stats = {
            "d_loss": (d_a + d_b).detach(),
            "g_loss": loss.detach(),
            "g_ab": adv_ab.detach(),
            "g_ba": adv_ba.detach(),
            "d_a": d_a.detach(),
            "d_b": d_b.detach(),
        }
        # cycle_aba = |G_ba(G_ab(a)) - a|, identity_ba = |G_ba(a) - a|, and the same from b.
        for k, v in (("cycle_aba", cyc_a), ("cycle_bab", cyc_b), ("identity_ba", idt_a), ("identity_ab", idt_b)):
            if v is not None:
                stats[k] = v
        return stats

    def state_dict(self) -> dict[str, Any]:
        """The pools' images and draw states."""
        return {"pools": {s: p.state_dict() for s, p in self.pools.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the pools (images go to the device of the networks when next used)."""
        for s, p in self.pools.items():
            p.load_state_dict(state["pools"][s])
