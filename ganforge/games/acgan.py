"""AC-GAN: the standard step plus an auxiliary classifier on D (Odena, Olah & Shlens 2017, arXiv:1610.09585)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from .base import GameArgs, register
from .standard import StandardGame


@register("acgan")
class ACGANGame(StandardGame):
    """D maximises L_S + L_C and G maximises L_C - L_S (Odena et al. 2017, Eq. 2-3), L_C the class log-likelihood.

    The adversarial part L_S is the recipe's objective; the class part is a cross-entropy
    weighted by `aux_weight` on real and generated samples for D and on generated ones for G.
    D must offer `forward_aux(x) -> (logit, class logits)` (e.g. dcgan with cond: acgan).
    """

    pack_refusal = "its classifier head labels single samples (pack must be 1)"

    def __init__(self, args: GameArgs, aux_weight: float = 1.0) -> None:
        super().__init__(args)
        if aux_weight < 0:
            raise ConfigError(f"acgan aux_weight must be >= 0, got {aux_weight}")
        self.aux_weight = float(aux_weight)

    def critic(self, D: Callable[..., Tensor], x: Tensor, y: Tensor | None) -> tuple[Tensor, Any]:
        if y is None:
            raise ConfigError("the acgan game needs a class-conditional model: set model.conditional: true")
        forward_aux = getattr(D, "forward_aux", None)
        if forward_aux is None:
            raise ConfigError(
                f"the acgan game needs a discriminator with an auxiliary classifier "
                f"(e.g. dcgan with args.cond: acgan); {type(D).__name__} has none"
            )
        return forward_aux(x)

    def aux_d_loss(
        self, real_aux: Tensor, fake_aux: Tensor, y: Tensor | None, z: Tensor | None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        assert y is not None
        ce_real = F.cross_entropy(real_aux.float(), y)
        ce_fake = F.cross_entropy(fake_aux.float(), y)
        acc = (real_aux.argmax(1) == y).float().mean()
        return self.aux_weight * (ce_real + ce_fake), {
            "aux_ce_real": ce_real.detach(),
            "aux_ce_fake": ce_fake.detach(),
            "aux_acc_real": acc.detach(),
        }

    def aux_g_loss(self, fake_aux: Tensor, y: Tensor | None, z: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        assert y is not None
        ce = F.cross_entropy(fake_aux.float(), y)
        return self.aux_weight * ce, {"aux_ce_g": ce.detach()}
