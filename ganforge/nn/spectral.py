"""Spectral normalisation of every weight layer of a network (Miyato et al. 2018, arXiv:1802.05957)."""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def apply_spectral_norm(net: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    """Reparameterise every Linear/Conv/ConvTranspose weight of `net` as W / sigma(W), in place (Miyato et al. 2018, Eq. 8)."""
    layers = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d))]
    for m in layers:
        # A transposed convolution's output channels are its weight's dim 1.
        dim = 1 if isinstance(m, nn.ConvTranspose2d) else 0
        spectral_norm(m, n_power_iterations=n_power_iterations, dim=dim)
    return net
