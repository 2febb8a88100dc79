"""A progressive run's growth: resolution and fade-in alpha against step, and which sample grid ends each phase (ProGAN)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from ..plots import curve_points, new_figure, save_figure


def has_growth(records: Sequence[dict]) -> bool:
    """Whether a run's metrics hold the progressive game's resolution log."""
    return bool(curve_points(records, "resolution")[0])


def phase_label(resolution: float, alpha: float) -> str | None:
    """'16x16 fade-in' or '16x16 stable' for a log line wholly inside one resolution; None when it spans a change."""
    if resolution < 4 or not math.isclose(math.log2(resolution), round(math.log2(resolution)), abs_tol=1e-9):
        return None
    r = round(resolution)
    return f"{r}x{r} " + ("fade-in" if alpha < 1.0 else "stable")


def phase_grids(records: Sequence[dict], sample_steps: Sequence[int]) -> list[tuple[str, int, float]]:
    """(phase, step, alpha) of the last sample grid saved in each phase, in order.

    A grid's phase is that of the log line at or just after its step; the logged resolution and alpha
    are means over a log interval, so a grid whose interval spans a resolution change is not assigned.
    """
    steps_r, res = curve_points(records, "resolution")
    alpha_by_step = dict(zip(*curve_points(records, "alpha")))
    out: dict[str, tuple[int, float]] = {}
    order: list[str] = []
    for s in sorted(sample_steps):
        i = next((k for k, st in enumerate(steps_r) if st >= s), None)
        if i is None:
            continue
        alpha = alpha_by_step.get(steps_r[i], 1.0)
        label = phase_label(res[i], alpha)
        if label is None:
            continue
        if label not in out:
            order.append(label)
        out[label] = (s, alpha)
    return [(label, *out[label]) for label in order]


def plot_growth(records: Sequence[dict], path: str | Path) -> Path:
    """Two panels against step: the resolution (log scale) and the newest block's fade-in weight alpha."""
    fig = new_figure(7.5, 4.2)
    top = fig.add_subplot(2, 1, 1)
    bottom = fig.add_subplot(2, 1, 2, sharex=top)
    steps, res = curve_points(records, "resolution")
    top.step(steps, res, where="pre", color="C0")  # a log line covers the interval up to its step
    top.set_yscale("log", base=2)
    ticks = sorted({2 ** round(math.log2(r)) for r in res if r > 0})
    top.set_yticks(ticks, [f"{t}x{t}" for t in ticks])
    top.set_ylabel("resolution")
    steps_a, alpha = curve_points(records, "alpha")
    bottom.plot(steps_a, alpha, color="C1")
    bottom.set_ylim(-0.05, 1.05)
    bottom.set_ylabel("alpha")
    bottom.set_xlabel("step")
    for ax in (top, bottom):
        ax.grid(True, alpha=0.25)
    top.set_title("Progressive growing: resolution and fade-in of the newest block")
    fig.tight_layout()
    return save_figure(fig, path)
