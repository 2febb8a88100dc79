"""Class-conditioning layers: conditional batch norm (SNGAN-projection, BigGAN) and the projection head."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def check_labels(y: Tensor | None, num_classes: int, where: str) -> Tensor:
    """`y` as a (N,) LongTensor; a clear ValueError when it is missing or out of range."""
    if y is None:
        raise ValueError(f"{where} is class-conditional ({num_classes} classes): pass the labels y")
    if y.dim() != 1 or y.dtype.is_floating_point:
        raise ValueError(f"{where} expects integer class labels of shape (N,), got {y.dtype} {tuple(y.shape)}")
    return y.long()


class ConditionalBatchNorm2d(nn.Module):
    """BN(affine=False) with per-sample gain and bias linear in a conditioning vector (Brock et al. 2019, BigGAN, Sec. 3 & App. B).

    out = BN(x) * (1 + gain(c)) + bias(c). The linears have no bias and start at zero, so the
    layer starts as plain batch norm; BigGAN's `orthogonal_init_` re-initialises them, as the
    official code does.
    """

    def __init__(self, num_features: int, cond_dim: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.num_features, self.cond_dim = num_features, cond_dim
        self.bn = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=False)
        # No biases: a constant offset to the gain/bias is what plain BN's affine would learn, and
        # BigGAN's class-conditional BN linears are bias-free (G_shared).
        self.gain = nn.Linear(cond_dim, num_features, bias=False)
        self.bias = nn.Linear(cond_dim, num_features, bias=False)
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        if c.dim() != 2 or c.shape[1] != self.cond_dim:
            raise ValueError(f"ConditionalBatchNorm2d expects c of shape (N, {self.cond_dim}), got {tuple(c.shape)}")
        gain = (1 + self.gain(c)).view(-1, self.num_features, 1, 1)
        bias = self.bias(c).view(-1, self.num_features, 1, 1)
        return self.bn(x) * gain + bias


class ClassConditionalBatchNorm2d(nn.Module):
    """BN(affine=False) with per-class gamma/beta from embeddings (de Vries et al. 2017; Miyato & Koyama 2018, Sec. 4)."""

    def __init__(self, num_features: int, num_classes: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.num_features, self.num_classes = num_features, num_classes
        self.bn = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=False)
        self.gamma = nn.Embedding(num_classes, num_features)
        self.beta = nn.Embedding(num_classes, num_features)
        # gamma = 1, beta = 0: every class starts as plain batch norm.
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        y = check_labels(y, self.num_classes, "ClassConditionalBatchNorm2d")
        gamma = self.gamma(y).view(-1, self.num_features, 1, 1)
        beta = self.beta(y).view(-1, self.num_features, 1, 1)
        return self.bn(x) * gamma + beta


class ProjectionHead(nn.Module):
    """Projection discriminator output psi(phi) + <embed(y), phi> (Miyato & Koyama 2018, Eq. 3); plain linear when unconditional."""

    def __init__(self, in_features: int, num_classes: int = 0) -> None:
        super().__init__()
        self.in_features, self.num_classes = in_features, num_classes
        self.linear = nn.Linear(in_features, 1)
        self.embed = nn.Embedding(num_classes, in_features) if num_classes > 0 else None
        if self.embed is not None:
            # Glorot-uniform as in Miyato & Koyama's code: N(0, 1) embeddings would make the inner product
            # ~sqrt(in_features) times larger than the linear term at the start.
            nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, phi: Tensor, y: Tensor | None = None) -> Tensor:
        out = self.linear(phi).squeeze(1)
        if self.embed is None:
            # An unconditional head ignores labels, so a labelled data set can feed any discriminator.
            return out
        y = check_labels(y, self.num_classes, "ProjectionHead")
        return out + (self.embed(y) * phi).sum(dim=1)


@torch.no_grad()
def orthogonal_init_(module: nn.Module, gain: float = 1.0) -> nn.Module:
    """Orthogonal init (Saxe et al. 2014) of every Conv/Linear/Embedding weight, as BigGAN does (Brock et al. 2019, App. B).

    Biases are left as they are (the official BigGAN code initialises weights only). Weights
    are reshaped to (out, -1): rows are orthonormal when out <= fan-in, columns otherwise.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.init.orthogonal_(m.weight, gain=gain)
    return module
