"""BEGAN's convergence measure M_global and its controller k_t against step (Berthelot et al. 2017, Sec. 3.4.1, Fig. 3)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..plots import curve_points, moving_average, new_figure, save_figure


def has_convergence(records: Sequence[dict]) -> bool:
    """Whether a run's metrics hold BEGAN's M_global (only the `began` game logs it)."""
    return bool(curve_points(records, "m_global")[0])


def plot_convergence(records: Sequence[dict], path: str | Path, smooth: int = 0) -> Path:
    """Two stacked panels against step: M_global = L(x) + |gamma L(x) - L(G(z))| on top, k_t below (Sec. 3.4.1)."""
    fig = new_figure(7.5, 4.8)
    top = fig.add_subplot(2, 1, 1)
    bottom = fig.add_subplot(2, 1, 2, sharex=top)
    for ax, key, label, color in ((top, "m_global", "M_global", "C0"), (bottom, "k", "k_t", "C1")):
        steps, values = curve_points(records, key)
        if not steps:
            ax.text(0.5, 0.5, "(no data yet)", ha="center", va="center", transform=ax.transAxes, color="0.5")
        elif smooth > 1 and len(values) > smooth:
            ax.plot(steps, values, color=color, alpha=0.25, linewidth=1.0)
            ax.plot(steps, moving_average(values, smooth), color=color, linewidth=1.8, label=label)
        else:
            ax.plot(
                steps,
                values,
                color=color,
                linewidth=1.6,
                marker="o" if len(steps) <= 30 else None,
                markersize=3.5,
                label=label,
            )
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.25)
    if curve_points(records, "k")[0]:
        bottom.set_ylim(bottom=0.0)  # k_t lives in [0, 1]; anchoring at 0 shows how far from "no fake term" it is
    bottom.set_xlabel("step")
    top.set_title("BEGAN convergence: M_global (lower is better) and k_t")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_convergence_against_fd(
    records: Sequence[dict], path: str | Path, fd_key: str, smooth: int = 10, title: str = ""
) -> Path:
    """M_global (smoothed) and the in-training FD against step on two axes: does the convergence measure fall
    while sample quality improves (Berthelot et al. 2017, Sec. 3.4.1 and Fig. 3)?"""
    fig = new_figure(7.5, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    steps, values = curve_points(records, "m_global")
    if steps:
        ax.plot(steps, values, color="C0", alpha=0.2, linewidth=1.0)
        ax.plot(
            steps,
            moving_average(values, smooth) if len(values) > smooth > 1 else values,
            color="C0",
            linewidth=1.8,
            label="M_global",
        )
    ax.set_xlabel("step")
    ax.set_ylabel("M_global (lower is better)", color="C0")
    ax.grid(True, alpha=0.25)
    right = ax.twinx()
    fs, fv = curve_points(records, fd_key)
    if fs:
        right.plot(fs, fv, "s-", color="C3", linewidth=1.6, markersize=4, label=fd_key.replace("eval/", ""))
    right.set_ylabel(f"{fd_key.replace('eval/', '')} (lower is better)", color="C3")
    fig.suptitle(title or "BEGAN: convergence measure M_global against FD during training")
    fig.tight_layout()
    return save_figure(fig, path)
