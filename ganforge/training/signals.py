"""Training-health signals the trainer records at every log line and sample grid (metrics.jsonl, TensorBoard).

Cheap by construction: nothing here draws random numbers or data, so a run with signals is
bit-identical to one without. At each log line: each optimiser's gradient norm on the last step (the
first update of the step: the adversarial loss, before any lazy penalty), each network's weight norm and
its relative update since the previous log line, ||w_t - w_prev|| / ||w_t||. At each sample grid, from the
grid's fixed-noise samples (written in the log line of the grid's step, or the next one): how far they
moved since the previous grid (mean absolute change) and how varied they are (mean pairwise distance
per dimension), beside the same diversity of as many real samples.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def flat_norm(tensors: list[Tensor]) -> float:
    """The L2 norm of all `tensors` taken as one vector (0.0 for none)."""
    if not tensors:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack([n.float() for n in torch._foreach_norm(tensors)])))


PAIRWISE_MAX = 512  # samples the diversity is taken on: 2,500-point grids of 2-D runs would cost 100 ms each


def mean_pairwise_distance(x: Tensor) -> float:
    """Mean L2 distance between distinct samples of the first PAIRWISE_MAX of x (N, ...), over sqrt(dimension)."""
    f = x[:PAIRWISE_MAX].detach().float().flatten(1)
    n = f.shape[0]
    if n < 2:
        return 0.0
    d = torch.cdist(f, f)
    return float(d.sum() / (n * (n - 1)) / f.shape[1] ** 0.5)


class WeightTracker:
    """Weight norms and relative updates of named networks between successive `measure` calls."""

    def __init__(self, nets: dict[str, nn.Module]) -> None:
        self.nets = nets
        self.prev: dict[str, list[Tensor]] = {name: self._params(net) for name, net in nets.items()}

    @staticmethod
    def _params(net: nn.Module) -> list[Tensor]:
        return [p.detach().clone() for p in net.parameters() if p.requires_grad]

    def measure(self) -> dict[str, float]:
        """{'weight_norm_NAME', 'update_ratio_NAME'} for every network; the current weights become the reference."""
        out: dict[str, float] = {}
        for name, net in self.nets.items():
            now = [p.detach() for p in net.parameters() if p.requires_grad]
            w = flat_norm(now)
            prev = self.prev[name]
            step = flat_norm(list(torch._foreach_sub(now, prev))) if len(prev) == len(now) and now else 0.0
            out[f"weight_norm_{name}"] = w
            out[f"update_ratio_{name}"] = step / w if w > 0 else 0.0
            self.prev[name] = [t.clone() for t in now]
        return out


class SampleTracker:
    """Movement and diversity of the fixed-noise samples from one grid to the next, and the real data's diversity."""

    def __init__(self, real: Tensor) -> None:
        self.real_diversity = mean_pairwise_distance(real)
        self.prev: Tensor | None = None

    def measure(self, x: Tensor) -> dict[str, float]:
        """{'sample_change' (absent at the first grid), 'sample_diversity', 'real_diversity'} for samples x."""
        x = x.detach().float().cpu()
        out = {"sample_diversity": mean_pairwise_distance(x), "real_diversity": self.real_diversity}
        if self.prev is not None and self.prev.shape == x.shape:
            out["sample_change"] = float((x - self.prev).abs().mean())
        self.prev = x
        return out
