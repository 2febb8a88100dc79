"""Optimistic optimisers for min-max games (Daskalakis, Ilyas, Syrgkanis & Zeng 2018, arXiv:1711.00141)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, overload

import torch
from torch import Tensor

Params = Iterable[Tensor] | Iterable[dict[str, Any]]


def _check_lr(lr: float) -> None:
    if not lr >= 0.0:
        raise ValueError(f"invalid learning rate: {lr} (must be >= 0)")


def _check_weight_decay(weight_decay: float) -> None:
    if not weight_decay >= 0.0:
        raise ValueError(f"invalid weight_decay: {weight_decay} (must be >= 0)")


def _grads(group: dict[str, Any], name: str) -> Iterator[tuple[Tensor, Tensor]]:
    """(param, gradient with L2 weight decay added) for each parameter of `group` that has a gradient."""
    for p in group["params"]:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            raise RuntimeError(f"{name} does not support sparse gradients")
        grad = p.grad
        if group["weight_decay"]:
            grad = grad.add(p, alpha=group["weight_decay"])
        yield p, grad


class OptimisticAdam(torch.optim.Optimizer):
    """Optimistic Adam, Algorithm 1 of Daskalakis et al. 2018, "Training GANs with Optimism" (arXiv:1711.00141)."""

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        _check_lr(lr)
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"invalid beta at index {i}: {beta} (must be in [0, 1))")
        if not eps >= 0.0:
            raise ValueError(f"invalid eps: {eps} (must be >= 0)")
        _check_weight_decay(weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    @overload
    def step(self, closure: None = None) -> None: ...
    @overload
    def step(self, closure: Callable[[], float]) -> float: ...
    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """θ ← θ − lr·(2·u_t − u_{t−1}), where u_t = m̂_t / (√v̂_t + eps) is the bias-corrected Adam step."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps = group["lr"], group["eps"]
            for p, grad in _grads(group, "OptimisticAdam"):
                state = self.state[p]
                if not state:
                    # Kept as a tensor so the base class's state_dict casting and device moves treat it
                    # like the moments (as torch.optim.Adam does).
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["prev_update"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                m, v, prev = state["exp_avg"], state["exp_avg_sq"], state["prev_update"]
                state["step"] += 1
                t = float(state["step"])
                m.lerp_(grad, 1.0 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                m_hat = m / (1.0 - beta1**t)
                v_hat = v / (1.0 - beta2**t)
                update = m_hat / (v_hat.sqrt() + eps)
                p.add_(2.0 * update - prev, alpha=-lr)
                prev.copy_(update)
        return loss


class OptimisticSGD(torch.optim.Optimizer):
    """Optimistic mirror descent, Eq. 4 of Daskalakis et al. 2018 (arXiv:1711.00141); Rakhlin & Sridharan 2013."""

    def __init__(self, params: Params, lr: float = 1e-2, weight_decay: float = 0.0) -> None:
        _check_lr(lr)
        _check_weight_decay(weight_decay)
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay))

    @overload
    def step(self, closure: None = None) -> None: ...
    @overload
    def step(self, closure: Callable[[], float]) -> float: ...
    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """θ ← θ − 2·lr·g_t + lr·g_{t−1}, with g_0 = 0."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr = group["lr"]
            for p, grad in _grads(group, "OptimisticSGD"):
                state = self.state[p]
                if "prev_grad" not in state:
                    state["prev_grad"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                prev = state["prev_grad"]
                p.add_(2.0 * grad - prev, alpha=-lr)
                prev.copy_(grad)
        return loss
