"""Regularisers, constraints and input noise for GAN training, as pure functions plus a registry.

A penalty is a pure function of the discriminator (or a network) and named tensors; it
returns an unweighted scalar. The recipe's ``regularizers:`` list says which network it
serves (``net: d`` or ``g``), its weight and how often it runs: ``every: k > 1`` is lazy
regularisation (Karras et al. 2020, StyleGAN2, Appendix B): the penalty runs as a separate
optimiser step every k steps with its weight multiplied by k, and that network's Adam
learning rate and betas are corrected by c = k / (k + 1) (lr * c, beta ** c).

The game decides which tensors to pass (`Regularizer.needs` lists them by name):
``D`` the discriminator, ``real`` / ``fake`` its inputs (fake detached for D-side
penalties, carrying G's graph for G-side ones), ``real_logits``, ``net`` the regularised
network and ``state`` the game-held state of a stateful regulariser. Constraints (weight
clipping) and input noise are registered the same way, with the function the game calls:
``net`` for a constraint, ``x`` and ``step`` for input noise.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .errors import ConfigError, choices_message
from .registry import Registry

# ----------------------------------------------------------------------------- helpers


def _fp16_autocast(device_type: str) -> bool:
    """True inside an fp16 autocast region (where small input gradients would underflow)."""
    try:
        return torch.is_autocast_enabled(device_type) and torch.get_autocast_dtype(device_type) == torch.float16
    except (AttributeError, RuntimeError, TypeError):  # older torch: no per-device query
        return False


def _grad_sq_norm(D: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Per-sample ||grad_x D(x)||^2, keeping the graph so the penalty can be differentiated.

    Under fp16 autocast the penalty's pass runs in fp32: fp16's narrow range underflows the small
    input gradients these penalties square, and the step's GradScaler does not reach inside
    autograd.grad. bf16 keeps fp32's range, so bf16 runs keep their speed.
    """
    x = x.detach().float().requires_grad_(True)
    with torch.autocast(x.device.type, enabled=False) if _fp16_autocast(x.device.type) else contextlib.nullcontext():
        out = D(x).float()
        (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return g.flatten(1).pow(2).sum(1)


def _uniform(n: int, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """U[0, 1) per sample, broadcastable against `like`."""
    u = torch.rand(n, generator=generator, device="cpu").to(like.device)
    return u.view(n, *([1] * (like.dim() - 1)))


# ----------------------------------------------------------------------------- penalties


def gradient_penalty(
    D: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    center: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """E[(||grad D(x_hat)|| - center)^2] on random interpolates of real and fake.

    center=1 is WGAN-GP (Gulrajani et al. 2017, Eq. 3); center=0 is the zero-centred
    penalty of Thanh-Tung et al. 2019 (arXiv:1902.03984).
    """
    n = min(real.shape[0], fake.shape[0])
    real, fake = real[:n].detach().float(), fake[:n].detach().float()
    eps = _uniform(n, real, generator)
    x_hat = eps * real + (1 - eps) * fake
    norm = (_grad_sq_norm(D, x_hat) + 1e-12).sqrt()
    return (norm - center).pow(2).mean()


def dragan_penalty(
    D: Callable[[Tensor], Tensor],
    real: Tensor,
    c: float = 0.5,
    center: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """E[(||grad D(x + delta)|| - center)^2] around perturbed real data (Kodali et al. 2017, DRAGAN, Eq. 5).

    As in the authors' code, x_p = x + c * std(x) * U[0, 1) and the penalty is taken at a
    random point between x and x_p.
    """
    real = real.detach().float()
    noise = torch.rand(real.shape, generator=generator, device="cpu").to(real.device)
    perturbed = real + c * real.std() * noise
    alpha = _uniform(real.shape[0], real, generator)
    x_hat = real + alpha * (perturbed - real)
    norm = (_grad_sq_norm(D, x_hat) + 1e-12).sqrt()
    return (norm - center).pow(2).mean()


def r1_penalty(D: Callable[[Tensor], Tensor], real: Tensor) -> Tensor:
    """E_real[||grad D(x)||^2] (Mescheder et al. 2018, Eq. 9; the recipe weight is gamma / 2)."""
    return _grad_sq_norm(D, real).mean()


def r2_penalty(D: Callable[[Tensor], Tensor], fake: Tensor) -> Tensor:
    """E_fake[||grad D(x)||^2] (Mescheder et al. 2018, Eq. 10; the recipe weight is gamma / 2)."""
    return _grad_sq_norm(D, fake).mean()


def drift_penalty(real_logits: Tensor) -> Tensor:
    """E_real[D(x)^2], keeping a Wasserstein critic's output near zero (Karras et al. 2018, ProGAN, Sec. A.1; weight 0.001)."""
    return real_logits.float().pow(2).mean()


def _weight_matrices(net: nn.Module) -> list[Tensor]:
    # On a spectrally normalised layer m.weight is the normalised matrix, the one the net uses.
    out = []
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            out.append(
                m.weight.flatten(1) if not isinstance(m, nn.ConvTranspose2d) else m.weight.transpose(0, 1).flatten(1)
            )
    return out


def orthogonal_penalty(net: nn.Module) -> Tensor:
    """sum_W ||W W^T * (1 - I)||_F^2 over weight matrices (Brock et al. 2019, BigGAN, Eq. 3; weight beta = 1e-4)."""
    total = torch.zeros((), device=next(net.parameters()).device)
    for w in _weight_matrices(net):
        w = w.float()
        gram = w @ w.t()
        total = total + (gram * (1 - torch.eye(gram.shape[0], device=gram.device))).pow(2).sum()
    return total


def historical_average_penalty(net: nn.Module, state: dict[str, Any]) -> Tensor:
    """||theta - (1/t) sum_i theta_i||^2 over the network's parameters (Salimans et al. 2016, Sec. 3.3).

    `state` holds the running average of past parameters ("avg", "count"); it is updated
    here after the penalty is formed, so the penalty uses the average of earlier steps.
    """
    params = [p for p in net.parameters() if p.requires_grad]
    if "avg" not in state:
        state["avg"] = [p.detach().clone() for p in params]
        state["count"] = 1
        return sum((0.0 * p.sum() for p in params), torch.zeros((), device=params[0].device))
    total = sum(
        ((p.float() - a.float()).pow(2).sum() for p, a in zip(params, state["avg"])),
        torch.zeros((), device=params[0].device),
    )
    with torch.no_grad():
        state["count"] += 1
        for p, a in zip(params, state["avg"]):
            a.add_((p.detach() - a) / state["count"])
    return total


def feature_matching_loss(D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """||E f(x) - E f(G(z))||_2^2 on D's penultimate features (Salimans et al. 2016, Sec. 3.1)."""
    features = getattr(D, "features", None)
    if features is None:
        raise ConfigError(
            f"feature matching needs a discriminator with a .features() method; {type(D).__name__} has none."
        )
    with torch.no_grad():
        f_real = features(real).float().flatten(1).mean(0)
    f_fake = features(fake).float().flatten(1).mean(0)
    return (f_real - f_fake).pow(2).sum()


# ----------------------------------------------------------------------------- constraints and input noise


@torch.no_grad()
def clip_weights_(net: nn.Module, c: float = 0.01) -> None:
    """Clamp every parameter of `net` to [-c, c] in place (Arjovsky et al. 2017, Algorithm 1, c = 0.01)."""
    for p in net.parameters():
        p.clamp_(-c, c)


def instance_noise(x: Tensor, std: float, generator: torch.Generator | None = None) -> Tensor:
    """x + N(0, std^2) noise on D's inputs (Sonderby et al. 2017, Sec. 3.2; Arjovsky & Bottou 2017)."""
    if std <= 0:
        return x
    noise = torch.randn(x.shape, generator=generator, device="cpu").to(x.device, x.dtype)
    return x + std * noise


def annealed_std(std: float, anneal_steps: int, step: int) -> float:
    """Instance-noise std decayed linearly from `std` to 0 over `anneal_steps` (0 = constant)."""
    if anneal_steps <= 0:
        return std
    return std * max(0.0, 1.0 - step / anneal_steps)


def annealed_instance_noise(
    x: Tensor, step: int, std: float = 0.1, anneal_steps: int = 0, generator: torch.Generator | None = None
) -> Tensor:
    """x + N(0, s^2) with s decayed linearly from `std` to 0 over `anneal_steps` G updates (Sonderby et al. 2017, Sec. 3.2)."""
    return instance_noise(x, annealed_std(std, anneal_steps, step), generator)


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Regularizer:
    """A named regulariser: its function, which tensors it needs, which networks it may serve."""

    name: str
    fn: Callable[..., Any]
    # penalty: fn(tensors) -> scalar added to the net's loss; constraint: fn(net, **args) applied in place after
    # every update of the net; input: fn(x, step, **args) -> what D sees of x (step: the game's G updates so far).
    kind: str
    nets: tuple[str, ...]
    source: str

    @property
    def needs(self) -> tuple[str, ...]:
        """The tensors the game must pass (parameter names of `fn` before its keyword arguments)."""
        return tuple(
            p.name for p in inspect.signature(self.fn).parameters.values() if p.default is inspect.Parameter.empty
        )

    def arg_names(self) -> dict[str, Any]:
        """The recipe arguments `fn` accepts (its keyword parameters, minus the RNG)."""
        return {
            p.name: p.default
            for p in inspect.signature(self.fn).parameters.values()
            if p.default is not inspect.Parameter.empty and p.name != "generator"
        }


REGULARIZERS: Registry[Regularizer] = Registry("regularizer")


for _r in (
    Regularizer(
        "gradient_penalty",
        gradient_penalty,
        "penalty",
        ("d",),
        "Gulrajani et al. 2017, Improved Training of Wasserstein GANs (arXiv:1704.00028), Eq. 3",
    ),
    Regularizer(
        "dragan",
        dragan_penalty,
        "penalty",
        ("d",),
        "Kodali et al. 2017, On Convergence and Stability of GANs (arXiv:1705.07215), DRAGAN",
    ),
    Regularizer(
        "r1",
        r1_penalty,
        "penalty",
        ("d",),
        "Mescheder et al. 2018, Which Training Methods for GANs do actually Converge? (arXiv:1801.04406), Eq. 9",
    ),
    Regularizer("r2", r2_penalty, "penalty", ("d",), "Mescheder et al. 2018 (arXiv:1801.04406), Eq. 10"),
    Regularizer(
        "drift",
        drift_penalty,
        "penalty",
        ("d",),
        "Karras et al. 2018, Progressive Growing of GANs (arXiv:1710.10196), Appendix A.1",
    ),
    Regularizer(
        "orthogonal",
        orthogonal_penalty,
        "penalty",
        ("g", "d"),
        "Brock et al. 2019, Large Scale GAN Training (arXiv:1809.11096), Eq. 3",
    ),
    Regularizer(
        "historical_averaging",
        historical_average_penalty,
        "penalty",
        ("g", "d"),
        "Salimans et al. 2016, Improved Techniques for Training GANs (arXiv:1606.03498), Sec. 3.3",
    ),
    Regularizer(
        "feature_matching",
        feature_matching_loss,
        "penalty",
        ("g",),
        "Salimans et al. 2016 (arXiv:1606.03498), Sec. 3.1",
    ),
    Regularizer(
        "weight_clip",
        clip_weights_,
        "constraint",
        ("d",),
        "Arjovsky et al. 2017, Wasserstein GAN (arXiv:1701.07875), Algorithm 1",
    ),
    Regularizer(
        "instance_noise",
        annealed_instance_noise,
        "input",
        ("d",),
        "Sonderby et al. 2017, Amortised MAP Inference for Image Super-resolution (arXiv:1610.04490), Sec. 3.2",
    ),
):
    REGULARIZERS.register(_r.name)(_r)


@dataclass
class BoundRegularizer:
    """A regulariser as configured in a recipe: which net, weight, interval and arguments."""

    reg: Regularizer
    net: str
    weight: float
    every: int
    args: dict[str, Any]

    @property
    def name(self) -> str:
        return self.reg.name

    @property
    def lazy(self) -> bool:
        return self.every > 1

    def due(self, count: int) -> bool:
        """Whether this regulariser runs at the `count`-th (0-based) update of its network."""
        return count % self.every == 0

    def __call__(self, **tensors: Any) -> Tensor:
        """The unweighted penalty, given the tensors it needs (extra ones are ignored)."""
        missing = [n for n in self.reg.needs if n not in tensors]
        if missing:
            raise RuntimeError(f"regulariser {self.name!r} needs {missing} from the game")
        kw = {n: tensors[n] for n in self.reg.needs}
        if "generator" in inspect.signature(self.reg.fn).parameters and "generator" in tensors:
            kw["generator"] = tensors["generator"]
        return self.reg.fn(**kw, **self.args)


def build_regularizer(
    name: str, net: str = "d", weight: float = 1.0, every: int = 1, args: dict[str, Any] | None = None
) -> BoundRegularizer:
    """A configured regulariser; unknown names, nets or arguments raise ConfigError listing the choices."""
    reg = REGULARIZERS.get(name)
    args = dict(args or {})
    valid = reg.arg_names()
    for k in args:
        if k not in valid:
            raise ConfigError(
                choices_message(f"argument for regulariser {name!r}:", k, list(valid))
                if valid
                else f"regulariser {name!r} takes no arguments, got {k!r}."
            )
    if net not in reg.nets:
        raise ConfigError(f"regulariser {name!r} applies to {' or '.join(reg.nets)}, not {net!r}.")
    if every < 1:
        raise ConfigError(f"regulariser {name!r}: every must be >= 1, got {every}.")
    if every > 1 and reg.kind != "penalty":
        raise ConfigError(f"regulariser {name!r} is a {reg.kind}; only penalties can run lazily (every > 1).")
    if weight < 0:
        raise ConfigError(f"regulariser {name!r}: weight must be >= 0, got {weight}.")
    return BoundRegularizer(reg, net, float(weight), int(every), args)


def lazy_intervals(regs: list[BoundRegularizer]) -> dict[str, int]:
    """Each network's lazy interval k ("g"/"d" -> k) for StyleGAN2's optimiser correction (Karras et al. 2020, App. B)."""
    out: dict[str, int] = {}
    for net in ("g", "d"):
        intervals = {r.every for r in regs if r.net == net and r.lazy}
        if len(intervals) > 1:
            raise ConfigError(f"lazy regularisers of {net} must share one interval; got every = {sorted(intervals)}.")
        if intervals:
            out[net] = intervals.pop()
    return out
