"""Batch norm whose training statistics span every process of a distributed run, on any device.

torch's own nn.SyncBatchNorm refuses CPU tensors; this one works on CPU (gloo) and GPU (NCCL)
alike. Each rank computes its share's per-channel count, mean and centred sum of squares; the
ranks exchange them in one differentiable all-reduce and merge them exactly (Chan, Golub &
LeVeque 1979), so that the normalisation, and its gradient, are those of one process on the
whole global batch (Ioffe & Szegedy 2015, Alg. 1, over the global batch).
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.distributed as dist
from torch import Tensor, nn


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks, differentiable: the gradient of every rank's loss reaches every rank's input."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        g = grad.contiguous().clone()
        dist.all_reduce(g)
        return g


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch of all ranks in training mode; ordinary batch norm otherwise."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input (N, C, ...), got {x.dim()}-D")

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        if not (self.training and _distributed()):
            return super().forward(x)
        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        shape = [1, c] + [1] * (x.dim() - 2)
        xf = x.float()
        count = torch.tensor([x.numel() / c], dtype=torch.float32, device=x.device)
        mean_l = xf.mean(dims)
        m2_l = (xf - mean_l.view(shape)).pow(2).sum(dims)
        world, rank = dist.get_world_size(), dist.get_rank()
        rows = torch.zeros(world, 2 * c + 1, dtype=torch.float32, device=x.device)
        rows = rows.index_put((torch.tensor([rank], device=x.device),), torch.cat([mean_l, m2_l, count])[None])
        table = _AllReduceSum.apply(rows)
        means, m2s, counts = table[:, :c], table[:, c : 2 * c], table[:, 2 * c :]
        n = counts.sum()
        mean = (counts * means).sum(0) / n
        m2 = m2s.sum(0) + (counts * (means - mean).pow(2)).sum(0)
        var = m2 / n  # biased, as batch norm normalises with
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            assert self.num_batches_tracked is not None  # a buffer, like the running statistics
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - factor).add_(mean.detach().to(self.running_mean.dtype), alpha=factor)
                unbiased = var.detach() * (n / (n - 1)).detach()
                self.running_var.mul_(1 - factor).add_(unbiased.to(self.running_var.dtype), alpha=factor)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """`module` with every BatchNorm1d/2d/3d replaced by a SyncBatchNorm holding the same weights and statistics."""
    if type(module) in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d):
        bn = cast(nn.modules.batchnorm._BatchNorm, module)  # exactly these types, not subclasses (SyncBatchNorm)
        new = SyncBatchNorm(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new.to(next(module.buffers(), torch.zeros(())).device)
    for name, child in module.named_children():
        new_child = convert_sync_batchnorm(child)
        if new_child is not child:
            setattr(module, name, new_child)
    return module


__all__ = ["SyncBatchNorm", "convert_sync_batchnorm"]
