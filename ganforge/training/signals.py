"""Training-health signals the trainer records at every log line and sample grid (metrics.jsonl, TensorBoard).

Cheap by construction: nothing here draws random numbers or data, so a run with signals is
bit-identical to one without. At each log line: each optimiser's gradient norm on the last step (the
first update of the step: the adversarial loss, before any lazy penalty), each network's weight norm and
its relative update since the previous log line, ||w_t - w_prev|| / ||w_t||. At each sample grid, from the
grid's fixed-noise samples (written in the log line of the grid's step, or the next one): how far they
moved since the previous grid (mean absolute change) and how varied they are (mean pairwise distance
per dimension), beside the same diversity of as many real samples; where the data has a shipped classifier
(digits, Fashion-MNIST) or known modes (2-D mixtures), their class or mode coverage beside the real samples'.
"""

from __future__ import annotations

from collections.abc import Callable

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
    """Movement, diversity and (where a probe exists) class or mode coverage of the fixed-noise samples, and the
    same figures for as many real samples."""

    def __init__(self, real: Tensor, probe: Callable[[Tensor], dict[str, float]] | None = None) -> None:
        self.real_diversity = mean_pairwise_distance(real)
        self.probe = probe
        real = real.detach().float().cpu()
        self.real_probe = {f"real_{k}": v for k, v in probe(real).items()} if probe is not None else {}
        self.prev: Tensor | None = None

    def measure(self, x: Tensor) -> dict[str, float]:
        """{'sample_change' (absent at the first grid), 'sample_diversity', 'real_diversity'} and the probe's
        figures with their real counterparts ('class_coverage', 'real_class_coverage', ...) for samples x."""
        x = x.detach().float().cpu()
        out = {"sample_diversity": mean_pairwise_distance(x), "real_diversity": self.real_diversity}
        if self.prev is not None and self.prev.shape == x.shape:
            out["sample_change"] = float((x - self.prev).abs().mean())
        if self.probe is not None:
            out.update(self.probe(x))
            out.update(self.real_probe)
        self.prev = x
        return out


def class_probe(
    classifier: Callable[[Tensor], dict[str, Tensor]], num_classes: int
) -> Callable[[Tensor], dict[str, float]]:
    """Class coverage of samples by a domain classifier: the share of classes predicted at least once, and the
    KL of the predicted-class histogram to uniform (Santurkar et al. 2018)."""

    def probe(x: Tensor) -> dict[str, float]:
        pred = classifier(x)["logits"].argmax(1)
        p = torch.bincount(pred, minlength=num_classes).double() / max(len(pred), 1)
        nz = p > 0
        return {
            "class_coverage": float(nz.sum()) / num_classes,
            "class_kl": max(float((p[nz] * torch.log(p[nz] * num_classes)).sum()), 0.0),
        }

    return probe


def mode_probe(centres: Tensor, std: float) -> Callable[[Tensor], dict[str, float]]:
    """Mode coverage of 2-D samples on a known mixture: the share of modes with a high-quality sample (within 3
    std), and the high-quality share (Lin et al. 2018, PacGAN)."""
    from ..metrics.modes import mixture_mode_metrics

    def probe(x: Tensor) -> dict[str, float]:
        m = mixture_mode_metrics(x[:, :2], centres, std)
        return {"mode_coverage": m["modes"] / m["num_modes"], "high_quality": m["high_quality"]}

    return probe
