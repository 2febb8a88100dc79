"""Self-attention block for convolutional GANs (Zhang et al. 2018, SAGAN, arXiv:1805.08318)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SelfAttention(nn.Module):
    """SAGAN self-attention y = gamma * o + x (Zhang et al. 2018, Sec. 3, Eq. 1-3), gamma a scalar starting at 0.

    In the paper's notation s_ij = f(x_i)^T g(x_j) and beta_{j,i} = softmax_i(s_ij) is how much
    query position j attends to key position i; o_j = v(sum_i beta_{j,i} h(x_i)). f, g, h map
    C -> C/reduction channels and v maps back to C, all 1x1 convolutions without bias (the
    paper's W matrices). Unlike the official code, keys and values are not max-pooled.

    With `record = True` the last attention map, (N, HW_query, HW_key) with rows summing
    to 1, is kept (detached) as `last_attention`.
    """

    def __init__(self, channels: int, reduction: int = 8, record: bool = False) -> None:
        super().__init__()
        if channels < 1 or reduction < 1:
            raise ValueError(f"SelfAttention needs channels >= 1 and reduction >= 1, got {channels} and {reduction}")
        inner = max(1, channels // reduction)
        self.channels, self.inner = channels, inner
        self.f = nn.Conv2d(channels, inner, 1, bias=False)  # keys
        self.g = nn.Conv2d(channels, inner, 1, bias=False)  # queries
        self.h = nn.Conv2d(channels, inner, 1, bias=False)  # values
        self.v = nn.Conv2d(inner, channels, 1, bias=False)
        # gamma = 0: the block starts as the identity and the net first relies on local convolutions (Sec. 3).
        self.gamma = nn.Parameter(torch.zeros(()))
        self.record = record
        self.last_attention: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        n, _c, hgt, wid = x.shape
        keys = self.f(x).flatten(2)  # (N, C', HW)
        queries = self.g(x).flatten(2)
        values = self.h(x).flatten(2)
        # Explicit bmm + softmax rather than scaled_dot_product_attention: the fused kernels have no
        # double backward, which gradient penalties (R1, WGAN-GP) through D need. No 1/sqrt(d) scaling (Eq. 1).
        scores = torch.bmm(queries.transpose(1, 2), keys)  # (N, HW_query, HW_key)
        attn = torch.softmax(scores, dim=-1)
        if self.record:
            self.last_attention = attn.detach()
        o = torch.bmm(values, attn.transpose(1, 2)).view(n, self.inner, hgt, wid)
        return self.gamma * self.v(o) + x
