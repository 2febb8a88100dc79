"""Adversarial objectives as pure functions of discriminator logits.

An objective never calls ``backward`` or touches an optimiser: it maps logits to a
scalar loss. Each is registered by name (``loss: non_saturating`` in a recipe).
Logits are cast to float32 first so that bf16/fp16 autocast never degrades the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .registry import Registry

LossFn = Callable[[Tensor, Optional[Tensor]], Tensor]


@dataclass(frozen=True)
class Objective:
    """A GAN objective: the discriminator's and the generator's loss, both pure functions of logits."""

    name: str
    d_loss: Callable[[Tensor, Tensor], Tensor]
    g_loss: Callable[[Tensor, Optional[Tensor]], Tensor]
    # Relativistic objectives need D(real) in the generator step too.
    g_needs_real: bool = False
    source: str = ""


OBJECTIVES: Registry[Objective] = Registry("loss")


def _f(x: Tensor) -> Tensor:
    return x.float()


def minimax_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """D's loss -E[log D(x)] - E[log(1 - D(G(z)))] (Goodfellow et al. 2014, Eq. 1), D = sigmoid(logit)."""
    # -log sigmoid(a) = softplus(-a); -log(1 - sigmoid(a)) = softplus(a): stable for any logit.
    return F.softplus(-_f(real_logits)).mean() + F.softplus(_f(fake_logits)).mean()


def minimax_g_loss(fake_logits: Tensor, real_logits: Optional[Tensor] = None) -> Tensor:
    """Saturating G loss E[log(1 - D(G(z)))] (Goodfellow et al. 2014, Eq. 1), minimised by G."""
    return -F.softplus(_f(fake_logits)).mean()


def non_saturating_g_loss(fake_logits: Tensor, real_logits: Optional[Tensor] = None) -> Tensor:
    """Non-saturating G loss -E[log D(G(z))] (Goodfellow et al. 2014, Sec. 3)."""
    return F.softplus(-_f(fake_logits)).mean()


OBJECTIVES.register("minimax")(
    Objective(
        "minimax",
        minimax_d_loss,
        minimax_g_loss,
        source="Goodfellow et al. 2014, Generative Adversarial Nets, Eq. 1 (saturating generator loss)",
    )
)
OBJECTIVES.register("non_saturating")(
    Objective(
        "non_saturating",
        minimax_d_loss,
        non_saturating_g_loss,
        source="Goodfellow et al. 2014, Generative Adversarial Nets, Sec. 3 (maximise log D(G(z)))",
    )
)


def get_objective(name: str) -> Objective:
    """The objective registered as `name`; unknown names raise ConfigError listing the choices."""
    return OBJECTIVES.get(name)
