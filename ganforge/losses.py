"""Adversarial objectives as pure functions of discriminator logits.

An objective never calls ``backward`` or touches an optimiser: it maps logits to a
scalar loss. Each is registered by name (``loss: non_saturating`` in a recipe) and may
take keyword arguments (``loss: {name: least_squares, args: {a: -1, b: 1, c: 0}}``).
Logits are cast to float32 first so that bf16/fp16 autocast never degrades the loss.

Relativistic objectives pair D(real) and D(fake) by index (RSGAN) or compare each
logit with the other batch's mean (RaGAN and its LS/hinge variants); they need
D(real) in the generator step too, which `Objective.g_needs_real` tells the game.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch.nn.functional as F
from torch import Tensor

from .errors import ConfigError, choices_message
from .registry import Registry

_R = TypeVar("_R")


@dataclass(frozen=True)
class Objective:
    """A GAN objective: the discriminator's and the generator's loss, both pure functions of logits."""

    name: str
    d_loss: Callable[..., Tensor]  # d_loss(real_logits, fake_logits, **args)
    g_loss: Callable[..., Tensor]  # g_loss(fake_logits, real_logits or None, **args)
    # Relativistic objectives need D(real) in the generator step too.
    g_needs_real: bool = False
    source: str = ""
    args: dict[str, Any] = field(default_factory=dict)  # bound keyword arguments
    # D's decision rule: accuracy(real_logits, fake_logits, **args) -> (on real, on fake); None where the
    # outputs carry no decision (a Wasserstein critic's level is arbitrary).
    accuracy: Callable[..., tuple[Tensor, Tensor]] | None = None

    def params(self) -> dict[str, Any]:
        """The keyword arguments this objective accepts, with their defaults."""
        out: dict[str, Any] = {}
        for fn in (self.d_loss, self.g_loss):
            fn = getattr(fn, "func", fn)
            for p in list(inspect.signature(fn).parameters.values())[2:]:
                out.setdefault(p.name, p.default)
        return out

    def bind(self, **args: Any) -> Objective:
        """This objective with `args` fixed; unknown names raise ConfigError listing the valid ones."""
        valid = self.params()
        for k in args:
            if k not in valid:
                raise ConfigError(
                    choices_message(f"argument for loss {self.name!r}:", k, list(valid))
                    if valid
                    else f"loss {self.name!r} takes no arguments, got {k!r}."
                )

        def pick(fn: Callable[..., _R]) -> Callable[..., _R]:
            names = {p.name for p in list(inspect.signature(fn).parameters.values())[2:]}
            return functools.partial(fn, **{k: v for k, v in args.items() if k in names})

        return Objective(
            self.name,
            pick(self.d_loss),
            pick(self.g_loss),
            self.g_needs_real,
            self.source,
            dict(args),
            None if self.accuracy is None else pick(self.accuracy),
        )


OBJECTIVES: Registry[Objective] = Registry("loss")


def _f(x: Tensor) -> Tensor:
    return x.float()


# ----------------------------------------------------------------------------- minimax family


def minimax_d_loss(real_logits: Tensor, fake_logits: Tensor, real_label: float = 1.0) -> Tensor:
    """D's loss -E[log D(x)] - E[log(1 - D(G(z)))] (Goodfellow et al. 2014, Eq. 1), D = sigmoid(logit).

    real_label < 1 is one-sided label smoothing (Salimans et al. 2016, Sec. 3.4): the real
    target becomes e.g. 0.9 while the fake target stays 0.
    """
    if not 0.0 < real_label <= 1.0:
        raise ConfigError(f"real_label must be in (0, 1], got {real_label}")
    r = _f(real_logits)
    # -log sigmoid(a) = softplus(-a); -log(1 - sigmoid(a)) = softplus(a): stable for any logit.
    real_term = real_label * F.softplus(-r) + (1.0 - real_label) * F.softplus(r)
    return real_term.mean() + F.softplus(_f(fake_logits)).mean()


def minimax_g_loss(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """Saturating G loss E[log(1 - D(G(z)))] (Goodfellow et al. 2014, Eq. 1), minimised by G."""
    return -F.softplus(_f(fake_logits)).mean()


def non_saturating_g_loss(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """Non-saturating G loss -E[log D(G(z))] (Goodfellow et al. 2014, Sec. 3)."""
    return F.softplus(-_f(fake_logits)).mean()


# ----------------------------------------------------------------------------- Wasserstein, LS, hinge


def wasserstein_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Critic loss E[f(G(z))] - E[f(x)] (Arjovsky et al. 2017, Eq. 3 / Algorithm 1)."""
    return _f(fake_logits).mean() - _f(real_logits).mean()


def wasserstein_g_loss(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """Generator loss -E[f(G(z))] (Arjovsky et al. 2017, Algorithm 1)."""
    return -_f(fake_logits).mean()


def least_squares_d_loss(real_logits: Tensor, fake_logits: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """D's loss 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2] (Mao et al. 2017, Eq. 2)."""
    return 0.5 * (_f(real_logits) - b).pow(2).mean() + 0.5 * (_f(fake_logits) - a).pow(2).mean()


def least_squares_g_loss(fake_logits: Tensor, real_logits: Tensor | None = None, c: float = 1.0) -> Tensor:
    """G's loss 1/2 E[(D(G(z)) - c)^2] (Mao et al. 2017, Eq. 2)."""
    return 0.5 * (_f(fake_logits) - c).pow(2).mean()


def hinge_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """D's hinge loss E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))] (Lim & Ye 2017; Miyato et al. 2018, Eq. 16)."""
    return F.relu(1.0 - _f(real_logits)).mean() + F.relu(1.0 + _f(fake_logits)).mean()


def hinge_g_loss(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """G's hinge-GAN loss -E[D(G(z))] (Miyato et al. 2018, Eq. 17)."""
    return -_f(fake_logits).mean()


# ----------------------------------------------------------------------------- relativistic


def _need_real(real_logits: Tensor | None, name: str) -> Tensor:
    if real_logits is None:
        raise ValueError(f"{name} is relativistic: its generator loss needs D(real)")
    return _f(real_logits)


def _paired(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    if real.shape != fake.shape:
        raise ValueError(
            f"RSGAN pairs real and fake logits by index; got shapes {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    return real, fake


def rsgan_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """-E[log sigmoid(C(x_r) - C(x_f))] (Jolicoeur-Martineau 2018, RSGAN, Eq. 8 with paired samples)."""
    r, f = _paired(_f(real_logits), _f(fake_logits))
    return F.softplus(-(r - f)).mean()


def rsgan_g_loss(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """-E[log sigmoid(C(x_f) - C(x_r))] (Jolicoeur-Martineau 2018, RSGAN)."""
    r, f = _paired(_need_real(real_logits, "rsgan"), _f(fake_logits))
    return F.softplus(-(f - r)).mean()


def ragan_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """-E_r[log sig(C(x_r) - E_f C)] - E_f[log(1 - sig(C(x_f) - E_r C))] (Jolicoeur-Martineau 2018, RaSGAN)."""
    r, f = _f(real_logits), _f(fake_logits)
    return F.softplus(-(r - f.mean())).mean() + F.softplus(f - r.mean()).mean()


def ragan_g_loss(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """The RaSGAN D loss with real and fake swapped (Jolicoeur-Martineau 2018)."""
    r, f = _need_real(real_logits, "ragan"), _f(fake_logits)
    return F.softplus(-(f - r.mean())).mean() + F.softplus(r - f.mean()).mean()


def ralsgan_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E_r[(C(x_r) - E_f C - 1)^2] + E_f[(C(x_f) - E_r C + 1)^2] (Jolicoeur-Martineau 2018, RaLSGAN)."""
    r, f = _f(real_logits), _f(fake_logits)
    return (r - f.mean() - 1.0).pow(2).mean() + (f - r.mean() + 1.0).pow(2).mean()


def ralsgan_g_loss(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """E_f[(C(x_f) - E_r C - 1)^2] + E_r[(C(x_r) - E_f C + 1)^2] (Jolicoeur-Martineau 2018, RaLSGAN)."""
    r, f = _need_real(real_logits, "ralsgan"), _f(fake_logits)
    return (f - r.mean() - 1.0).pow(2).mean() + (r - f.mean() + 1.0).pow(2).mean()


def rahinge_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E_r[max(0, 1 - (C(x_r) - E_f C))] + E_f[max(0, 1 + (C(x_f) - E_r C))] (Jolicoeur-Martineau 2018, RaHingeGAN)."""
    r, f = _f(real_logits), _f(fake_logits)
    return F.relu(1.0 - (r - f.mean())).mean() + F.relu(1.0 + (f - r.mean())).mean()


def rahinge_g_loss(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """The RaHinge D loss with real and fake swapped (Jolicoeur-Martineau 2018)."""
    r, f = _need_real(real_logits, "rahinge"), _f(fake_logits)
    return F.relu(1.0 - (f - r.mean())).mean() + F.relu(1.0 + (r - f.mean())).mean()


# ----------------------------------------------------------------------------- D's decisions (training-health signals)


def sign_accuracy(real_logits: Tensor, fake_logits: Tensor) -> tuple[Tensor, Tensor]:
    """Fractions of real logits > 0 and of fake logits < 0 (D's decision for the minimax, non-saturating and hinge losses)."""
    return (_f(real_logits) > 0).float().mean(), (_f(fake_logits) < 0).float().mean()


def least_squares_accuracy(
    real_logits: Tensor, fake_logits: Tensor, a: float = 0.0, b: float = 1.0
) -> tuple[Tensor, Tensor]:
    """Fractions of outputs on the right side of the midpoint (a + b) / 2 between LSGAN's fake and real targets."""
    mid = (a + b) / 2
    real_ok = _f(real_logits) > mid if b > a else _f(real_logits) < mid
    fake_ok = _f(fake_logits) < mid if b > a else _f(fake_logits) > mid
    return real_ok.float().mean(), fake_ok.float().mean()


def relativistic_accuracy(real_logits: Tensor, fake_logits: Tensor) -> tuple[Tensor, Tensor]:
    """Fractions of real outputs above the mean fake output, and of fake outputs below the mean real output."""
    r, f = _f(real_logits), _f(fake_logits)
    return (r > f.mean()).float().mean(), (f < r.mean()).float().mean()


# ----------------------------------------------------------------------------- registry

_RELATIVISTIC = "Jolicoeur-Martineau 2018, The relativistic discriminator (arXiv:1807.00734)"
for _obj in (
    Objective(
        "minimax",
        minimax_d_loss,
        minimax_g_loss,
        source="Goodfellow et al. 2014, Generative Adversarial Nets, Eq. 1 (saturating generator loss)",
        accuracy=sign_accuracy,
    ),
    Objective(
        "non_saturating",
        minimax_d_loss,
        non_saturating_g_loss,
        source="Goodfellow et al. 2014, Generative Adversarial Nets, Sec. 3 (maximise log D(G(z)))",
        accuracy=sign_accuracy,
    ),
    Objective(
        "wasserstein",
        wasserstein_d_loss,
        wasserstein_g_loss,
        source="Arjovsky et al. 2017, Wasserstein GAN (arXiv:1701.07875), Algorithm 1",
    ),
    Objective(
        "least_squares",
        least_squares_d_loss,
        least_squares_g_loss,
        source="Mao et al. 2017, Least Squares GANs (arXiv:1611.04076), Eq. 2",
        accuracy=least_squares_accuracy,
    ),
    Objective(
        "hinge",
        hinge_d_loss,
        hinge_g_loss,
        source="Lim & Ye 2017, Geometric GAN; Miyato et al. 2018 (arXiv:1802.05957), Eqs. 16-17",
        accuracy=sign_accuracy,
    ),
    Objective(
        "rsgan",
        rsgan_d_loss,
        rsgan_g_loss,
        g_needs_real=True,
        source=_RELATIVISTIC + ", RSGAN",
        accuracy=relativistic_accuracy,
    ),
    Objective(
        "ragan",
        ragan_d_loss,
        ragan_g_loss,
        g_needs_real=True,
        source=_RELATIVISTIC + ", RaSGAN",
        accuracy=relativistic_accuracy,
    ),
    Objective(
        "ralsgan",
        ralsgan_d_loss,
        ralsgan_g_loss,
        g_needs_real=True,
        source=_RELATIVISTIC + ", RaLSGAN",
        accuracy=relativistic_accuracy,
    ),
    Objective(
        "rahinge",
        rahinge_d_loss,
        rahinge_g_loss,
        g_needs_real=True,
        source=_RELATIVISTIC + ", RaHingeGAN",
        accuracy=relativistic_accuracy,
    ),
):
    OBJECTIVES.register(_obj.name)(_obj)


def get_objective(name: str, args: dict[str, Any] | None = None) -> Objective:
    """The objective registered as `name` with `args` bound; unknown names or arguments raise ConfigError."""
    obj = OBJECTIVES.get(name)
    return obj.bind(**args) if args else obj


# ============================================================================= BEGAN (auto-encoder D)
# Not logit Objectives and not registered: BEGAN's discriminator is an auto-encoder and the
# `began` game (ganforge.games.began) calls these directly on reconstruction errors.
# Berthelot, Schumm & Metz 2017, "BEGAN: Boundary Equilibrium GANs" (arXiv:1703.10717).


def autoencoder_loss(x: Tensor, recon: Tensor) -> Tensor:
    """Per-sample L(v) = mean |v - D(v)| over pixels, shape (N,) (Berthelot et al. 2017, Eq. 1-2 with eta = 1)."""
    if x.shape != recon.shape:
        raise ValueError(f"autoencoder_loss needs matching shapes, got {tuple(x.shape)} and {tuple(recon.shape)}")
    return (_f(x) - _f(recon)).abs().flatten(1).mean(dim=1)


def began_d_loss(l_real: Tensor, l_fake: Tensor, k: float) -> Tensor:
    """L_D = L(x) - k_t L(G(z_D)) (Berthelot et al. 2017, Eq. 4)."""
    return l_real - k * l_fake


def began_g_loss(l_fake: Tensor) -> Tensor:
    """L_G = L(G(z_G)) (Berthelot et al. 2017, Eq. 4)."""
    return l_fake


def began_balance(l_real: Any, l_fake: Any, gamma: float) -> Any:
    """The equilibrium term gamma L(x) - L(G(z_G)) that drives k_t (Berthelot et al. 2017, Eq. 4)."""
    return gamma * l_real - l_fake


def began_m_global(l_real: Any, l_fake: Any, gamma: float) -> Any:
    """Convergence measure M_global = L(x) + |gamma L(x) - L(G(z_G))| (Berthelot et al. 2017, Sec. 3.4.1)."""
    return l_real + abs(began_balance(l_real, l_fake, gamma))


def began_k_update(k: float, l_real: Any, l_fake: Any, gamma: float, lambda_k: float) -> float:
    """k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z_G))), 0, 1) (Berthelot et al. 2017, Eq. 4)."""
    k_next = float(k) + float(lambda_k) * float(began_balance(float(l_real), float(l_fake), gamma))
    if k_next != k_next:  # NaN from a non-finite loss: keep k_t (the trainer stops the run on it anyway)
        return min(max(float(k), 0.0), 1.0)
    return min(max(k_next, 0.0), 1.0)


# --------------------------------------------------------------------------- translation
# The `cycle` game (ganforge.games.cycle) adds these to its generators' adversarial losses.
# Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
# Adversarial Networks" (arXiv:1703.10593). Means over pixels, as the authors' code (nn.L1Loss).


def l1_mean(x: Tensor, y: Tensor) -> Tensor:
    """E|x - y|, the mean absolute difference over every element (nn.L1Loss), in float32."""
    if x.shape != y.shape:
        raise ValueError(f"an L1 distance needs matching shapes, got {tuple(x.shape)} and {tuple(y.shape)}")
    return (_f(x) - _f(y)).abs().mean()


def cycle_loss(a: Tensor, rec_a: Tensor, b: Tensor, rec_b: Tensor) -> Tensor:
    """L_cyc = E|F(G(a)) - a|_1 + E|G(F(b)) - b|_1, each a mean over pixels (Zhu et al. 2017, Eq. 2)."""
    return l1_mean(rec_a, a) + l1_mean(rec_b, b)


def identity_loss(a: Tensor, f_of_a: Tensor, b: Tensor, g_of_b: Tensor) -> Tensor:
    """L_identity = E|G(b) - b|_1 + E|F(a) - a|_1 for G: A -> B and F: B -> A (Zhu et al. 2017, Sec. 5.2, after Taigman et al.)."""
    return l1_mean(g_of_b, b) + l1_mean(f_of_a, a)
