"""InfoGAN: the GAN game plus a variational lower bound on I(c; G(z, c)) (Chen et al. 2016, arXiv:1606.03657, Sec. 5).

min_{G,Q} max_D V(D, G) - lambda L_I(G, Q), where (Eq. 4-5)

    L_I(G, Q) = E_{c ~ P(c), x ~ G(z, c)} [log Q(c | x)] + H(c) <= I(c; G(z, c)).

H(c) is a constant, so both networks minimise lambda * E[-log Q(c | x)] on generated
samples: a cross-entropy per categorical code and a Gaussian negative log-likelihood per
continuous code. Q shares D's trunk (Sec. 6) and is trained with D's optimiser in D's
step; G gets the same term through the frozen D/Q in its step, as in the authors' code
(infogan_trainer.py subtracts lambda * MI from both losses). The codes are read back from
G's input vector with `LatentSpace.split`.

lambda: "for discrete latent codes we simply set lambda to 1"; continuous codes "typically"
use a smaller lambda when Q's log-likelihood involves a learnt variance (differential
entropy, Sec. 6). The authors' MNIST launcher fixes Q's std to 1 for the continuous codes
(Uniform(1, fix_std=True)) and uses lambda = 1 for all codes; that is the default here
(fix_std=True, lambda_cont=1.0). With fix_std=False Q's log-std is learnt and a smaller
lambda_cont (e.g. 0.1) is advisable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from ..latent import LatentSpace
from .base import GameArgs, StepContext, register
from .standard import StandardGame

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def info_loss(
    cat_logits: Sequence[Tensor],
    cat_codes: Sequence[Tensor],
    cont_mean: Tensor | None,
    cont_logstd: Tensor | None,
    cont_codes: Tensor | None,
    lambda_cat: float = 1.0,
    lambda_cont: float = 1.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """lambda_cat * sum_i CE(Q(c_i | x), c_i) + lambda_cont * Gaussian NLL of the continuous codes (Chen et al. 2016, Eq. 4-5).

    This is -L_I(G, Q) + H(c) per term: the variational bound without its constant
    entropy. The categorical terms are summed over codes and averaged over the batch; the
    continuous NLL is that of a factored Gaussian N(cont_mean, exp(cont_logstd)^2), summed
    over the code dimensions and averaged over the batch, constant 0.5 log(2 pi) per
    dimension included. cont_logstd=None fixes the std to 1 (the authors' code). Logs:
    info_cat, info_cont (unweighted) and info_acc (Q's argmax accuracy, mean over
    categorical codes).
    """
    if len(cat_logits) != len(cat_codes):
        raise ConfigError(f"info_loss: {len(cat_logits)} categorical logit tensors for {len(cat_codes)} codes")
    if (cont_mean is None) != (cont_codes is None):
        raise ConfigError("info_loss: continuous codes and Q's continuous means must be given together")
    ref = cat_logits[0] if cat_logits else cont_mean
    if ref is None:
        raise ConfigError("info_loss needs at least one categorical or continuous code")
    zero = torch.zeros((), device=ref.device)
    cat = zero
    accs = []
    for logits, codes in zip(cat_logits, cat_codes):
        logits = logits.float()  # autocast may hand bf16 logits; the loss is taken in float32
        cat = cat + F.cross_entropy(logits, codes.long())
        accs.append((logits.argmax(1) == codes).float().mean())
    cont = zero
    if cont_mean is not None and cont_codes is not None:
        mean, codes = cont_mean.float(), cont_codes.float()
        if mean.shape != codes.shape:
            raise ConfigError(
                f"info_loss: Q's continuous means {tuple(mean.shape)} and codes {tuple(codes.shape)} differ"
            )
        if cont_logstd is None:
            nll = 0.5 * (codes - mean).pow(2) + HALF_LOG_2PI
        else:
            logstd = cont_logstd.float()
            nll = logstd + 0.5 * ((codes - mean) * torch.exp(-logstd)).pow(2) + HALF_LOG_2PI
        cont = nll.sum(1).mean()
    loss = lambda_cat * cat + lambda_cont * cont
    logs = {"info_cat": cat.detach(), "info_cont": cont.detach()}
    if accs:
        logs["info_acc"] = torch.stack(accs).mean().detach()
    return loss, logs


@register("infogan")
class InfoGANGame(StandardGame):
    """The standard game plus lambda L_I on generated samples for D/Q and for G (Chen et al. 2016, Eq. 5, Sec. 6).

    Needs a latent space with codes (model.latent) and a discriminator with a Q head
    (`forward_q`, e.g. discriminator: {name: infogan}). PacGAN packing is refused: Q
    must see one sample per input to recover its codes. Class-conditional models are not
    supported (supports_conditional is False): the codes play the part of the labels.
    """

    supports_conditional = False
    pack_refusal = "Q must recover each sample's codes."

    def __init__(self, args: GameArgs, lambda_cat: float = 1.0, lambda_cont: float = 1.0, fix_std: bool = True) -> None:
        super().__init__(args)
        if lambda_cat < 0 or lambda_cont < 0:
            raise ConfigError(f"game infogan: lambda_cat and lambda_cont must be >= 0, got {lambda_cat}, {lambda_cont}")
        self.lambda_cat = float(lambda_cat)
        self.lambda_cont = float(lambda_cont)
        self.fix_std = bool(fix_std)
        self._checked = False

    # ------------------------------------------------------------------ checks

    @staticmethod
    def check_latent(latent_space: Any) -> None:
        """Refuse a latent space without InfoGAN codes (ConfigError)."""
        if latent_space is None or not latent_space.has_codes:
            raise ConfigError(
                "game infogan needs latent codes: set model.latent.categorical (e.g. [10]) and/or "
                "model.latent.continuous (e.g. 2)."
            )

    def check(self, latent: LatentSpace, dataset: Any) -> None:
        """Refuse a latent space without codes before training."""
        super().check(latent, dataset)
        self.check_latent(latent)

    def _check(self, ctx: StepContext) -> None:
        if self._checked:
            return
        ls = ctx.latent_space
        self.check_latent(ls)
        if not callable(getattr(ctx.D, "forward_q", None)):
            raise ConfigError(
                f"game infogan needs a discriminator with a Q head (forward_q), e.g. discriminator: "
                f"{{name: infogan}}; {type(ctx.D).__name__} has none."
            )
        d_cat, d_cont = list(getattr(ctx.D, "categorical", [])), int(getattr(ctx.D, "continuous", 0))
        if d_cat != ls.categorical or d_cont != ls.continuous:
            raise ConfigError(
                f"the discriminator's Q head predicts categorical={d_cat}, continuous={d_cont} but the "
                f"latent space has categorical={ls.categorical}, continuous={ls.continuous}."
            )
        self.space = ls
        self._checked = True

    # ------------------------------------------------------------------ the information term

    def critic(self, D: Any, x: Tensor, y: Tensor | None) -> tuple[Tensor, Any]:
        """D's logit and Q's posterior from one trunk pass (Q shares D's layers, Sec. 6)."""
        logit, *q = D.forward_q(x)
        return logit, tuple(q)

    def info(self, z: Tensor, q: tuple[list[Tensor], Tensor | None, Tensor | None]) -> tuple[Tensor, dict[str, Tensor]]:
        """lambda L_I for G's input z and Q's outputs on G(z) (the codes are read back from z)."""
        _, cats, cont = self.space.split(z)
        cat_logits, mean, logstd = q
        return info_loss(
            cat_logits, cats, mean, None if self.fix_std else logstd, cont, self.lambda_cat, self.lambda_cont
        )

    def aux_d_loss(
        self, real_aux: Any, fake_aux: Any, y: Tensor | None, z: Tensor | None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """lambda L_I on the (detached) fakes: trains Q's head and D's shared trunk."""
        assert z is not None
        return self.info(z, fake_aux)

    def aux_g_loss(self, fake_aux: Any, y: Tensor | None, z: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        """lambda L_I through the frozen Q: G makes its codes recoverable."""
        assert z is not None
        info, _ = self.info(z, fake_aux)
        return info, {"g_info": info.detach().float()}

    def step(self, ctx: StepContext) -> dict[str, Tensor]:
        self._check(ctx)
        return super().step(ctx)
