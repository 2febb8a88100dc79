"""Which classes BEGAN keeps: D's reconstruction error of real images per class against the classes of G's samples.

BEGAN's equilibrium asks E[L(G(z))] = gamma E[L(x)] (Berthelot et al. 2017, Eq. 3 and 4): with gamma < 1, G is
held to images that D's auto-encoder reconstructs better than the average real one. G can meet that target in two
ways: by keeping the classes that are easy to reconstruct and dropping the hard ones, or by making every sample
simpler than the real images of its class. This module tells them apart on a finished run: the per-class mean L1
reconstruction error of real test images under the final D, the share of each class (by a classifier) among the
samples with the samples' own error, and the share of real images as easy as the samples."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import GanforgeError
from .runner import spearman

__all__ = ["class_profile", "load_began_nets", "plot_class_profiles", "reconstruction_errors"]

PROFILE_SAMPLES = 10_000
PROFILE_SEED = 11  # a draw of its own, not the evaluation's


@torch.no_grad()
def reconstruction_errors(D: nn.Module, x: Tensor, batch: int = 500) -> Tensor:
    """Per-image mean |x - D(x)| (BEGAN's L with eta = 1, Eq. 1) as float32 on the CPU, D in eval mode."""
    was = D.training
    D.eval()
    try:
        dev = next(D.parameters()).device
        out = [(c.to(dev) - D(c.to(dev))).abs().flatten(1).mean(1).float().cpu() for c in x.split(batch)]
    finally:
        D.train(was)
    return torch.cat(out) if out else torch.zeros(0)


def class_profile(
    D: nn.Module,
    samples: Tensor,
    real: Tensor,
    real_labels: Tensor,
    classify: Callable[[Tensor], Tensor],
    names: Sequence[str],
) -> dict[str, Any]:
    """Per class: real images' mean reconstruction error under D, the share of samples the classifier puts there and
    those samples' mean error; with `error_ratio` = mean sample error / mean real error (gamma at equilibrium) and the
    rank correlation of the real error with the sample share (strongly negative: G keeps the easy classes), and
    `real_as_easy`, the share of real images whose error is at most the samples' mean (the part of the data that can
    meet the equilibrium as it is: near 0 means every sample is simpler than almost any real image)."""
    k = len(names)
    if len(real) != len(real_labels) or len(real) == 0 or len(samples) == 0:
        raise GanforgeError(
            f"class_profile needs real images with one label each and some samples; got {len(real)} images, "
            f"{len(real_labels)} labels, {len(samples)} samples."
        )
    if int(real_labels.min()) < 0 or int(real_labels.max()) >= k:
        raise GanforgeError(f"real labels must lie in 0..{k - 1} (one per name); got {int(real_labels.max())}.")
    e_real = reconstruction_errors(D, real)
    e_fake = reconstruction_errors(D, samples)
    pred = torch.cat([classify(c).cpu() for c in samples.split(500)])
    labels = real_labels.cpu().long()
    real_error = [float(e_real[labels == c].mean()) if (labels == c).any() else None for c in range(k)]
    share = [float((pred == c).float().mean()) for c in range(k)]
    sample_error = [float(e_fake[pred == c].mean()) if (pred == c).any() else None for c in range(k)]
    paired = [(r, s) for r, s in zip(real_error, share) if r is not None]
    return {
        "classes": list(names),
        "real_error": real_error,
        "sample_share": share,
        "sample_error": sample_error,
        "real_error_mean": float(e_real.mean()),
        "sample_error_mean": float(e_fake.mean()),
        "error_ratio": float(e_fake.mean() / e_real.mean().clamp(min=1e-12)),
        "real_as_easy": float((e_real <= e_fake.mean()).float().mean()),
        "spearman_error_share": spearman([p[0] for p in paired], [p[1] for p in paired]),
        "n_real": len(real),
        "n_samples": len(samples),
    }


def load_began_nets(run_dir: Path) -> tuple[nn.Module, nn.Module, int]:
    """(D, G, step) of a BEGAN run folder's newest readable checkpoint, both in eval mode on the CPU."""
    from .d_verdicts import load_run_nets

    D, G, _, step = load_run_nets(run_dir, game="began")
    return D.eval(), G.eval(), step


def plot_class_profiles(profiles: dict[str, dict[str, Any]], path: Path) -> Path:
    """One panel: each class's real reconstruction error (bars, from the first profile's D), each run's share of
    samples in that class (lines) and its samples' mean error (dashed), classes ordered by error."""
    from ..plots import new_figure, save_figure

    first = next(iter(profiles.values()))
    names, err = first["classes"], first["real_error"]
    order = sorted(range(len(names)), key=lambda i: err[i] if err[i] is not None else float("inf"))
    fig = new_figure(7.2, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    xs = list(range(len(order)))
    ax.bar(
        xs,
        [err[i] or 0.0 for i in order],
        color="0.8",
        label=f"real test images' error under D ({next(iter(profiles))})",
    )
    ax.set_xticks(xs, [names[i] for i in order], rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("mean L1 reconstruction error")
    ax.set_ylim(0, 1.7 * max(e for e in err if e is not None))  # room for the legend above the bars
    ax2 = ax.twinx()
    for n, (label, p) in enumerate(profiles.items()):
        colour = f"C{n}"
        ax2.plot(
            xs, [p["sample_share"][i] for i in order], marker="o", color=colour, label=f"{label}: share of samples"
        )
        # The samples' own mean error, on the error axis: below almost every real class when gamma is small.
        ax.axhline(p["sample_error_mean"], color=colour, ls="--", lw=1, label=f"{label}: samples' error under its D")
    ax2.axhline(0.1, color="0.5", lw=0.8, ls=":")
    ax2.set_ylabel("share of samples (uniform: 0.1)")
    ax2.set_ylim(0, 1.7 * max(max(p["sample_share"]) for p in profiles.values()))
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax2.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper right")
    ax.set_title("BEGAN: real images' error per class, and where the samples fall", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
