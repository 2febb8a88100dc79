"""Weight normalisation with data-dependent initialisation (Salimans & Kingma 2016, arXiv:1602.07868, Sec. 2 and 3).

w = g v / ||v|| per output unit (torch's weight-norm parametrisation). With PyTorch's
default initialisation g starts at ||v|| and a deep stack of such layers shrinks the
spread of its outputs from layer to layer: in the semi-supervised discriminator the
class logits at initialisation varied by 3e-5 across examples. Data-dependent
initialisation fixes the scale instead: one forward pass over a batch, layer by layer,
each pre-activation t = v.x / ||v|| is standardised over the batch (and positions, for a
convolution) by setting g = s / sigma[t] and b = -mu[t] s / sigma[t] (Eq. 6), so every
layer starts with outputs of zero mean and spread s, seen by the next layer already
normalised. The authors' semi-supervised code uses s = 1 for hidden layers and s = 0.1
for the output layer (openai/improved-gan, nn.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm as _torch_weight_norm

__all__ = ["data_dependent_init", "weight_norm", "weight_normed_layers"]

_SCALE = "_ganforge_wn_init_scale"


def weight_norm(module: nn.Module, init_scale: float = 1.0) -> nn.Module:
    """`module` (a Conv or Linear with bias) weight-normalised over its output units; `init_scale` is the s of the
    data-dependent initialisation (Salimans & Kingma 2016, Eq. 2 and 6)."""
    if getattr(module, "bias", None) is None:
        raise ValueError(
            f"weight_norm with data-dependent init needs a layer with a bias; {type(module).__name__} has none"
        )
    module = _torch_weight_norm(module, name="weight", dim=0)
    setattr(module, _SCALE, float(init_scale))
    return module


def weight_normed_layers(model: nn.Module) -> Iterator[nn.Module]:
    """The layers of `model` made by `weight_norm` above, in registration order."""
    return (m for m in model.modules() if hasattr(m, _SCALE) and parametrize.is_parametrized(m, "weight"))


@torch.no_grad()
def data_dependent_init(model: nn.Module, x: Tensor, eps: float = 1e-8) -> int:
    """Initialise every `weight_norm` layer of `model` from one forward pass of `x` (Salimans & Kingma 2016, Sec. 3).

    The pass runs in `model`'s current mode (the authors initialise in training mode, noise and dropout on);
    each layer's output is replaced by its standardised pre-activation times s before the next layer sees it.
    Returns the number of layers initialised.
    """
    layers = list(weight_normed_layers(model))
    handles = []

    # The hooks' `m` is one of `layers`: `parametrizations` and `bias` are attributes torch sets at run time.
    def pre_hook(m: Any, args: tuple) -> None:
        # g = 1 and b = 0 make the layer compute t = v.x / ||v|| itself.
        m.parametrizations.weight.original0.fill_(1.0)
        m.bias.zero_()

    def hook(m: Any, args: tuple, out: Tensor) -> Tensor:
        t = out.float()
        dims = [d for d in range(t.dim()) if d != 1]  # all but the output units
        mu, sigma = t.mean(dims), t.std(dims, unbiased=False)
        s = getattr(m, _SCALE)
        g = s / (sigma + eps)
        shape = [1] * t.dim()
        shape[1] = -1
        m.parametrizations.weight.original0.copy_(g.view(-1, *[1] * (m.parametrizations.weight.original0.dim() - 1)))
        m.bias.copy_(-mu * g)
        return ((t - mu.view(shape)) * g.view(shape)).to(out.dtype)

    for m in layers:
        handles.append(m.register_forward_pre_hook(pre_hook))
        handles.append(m.register_forward_hook(hook))
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return len(layers)
