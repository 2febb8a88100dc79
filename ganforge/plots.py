"""Sample grids, 2-D scatter frames and metric curves, written as PNG files (headless, atomic)."""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import torch
from torch import Tensor

from .atomic import atomic_file

if TYPE_CHECKING:  # matplotlib is imported lazily: importing ganforge.plots must stay cheap and headless-safe
    from matplotlib.figure import Figure

__all__ = [
    "curve_points",
    "moving_average",
    "plot_curves",
    "save_image_grid",
    "save_images",
    "save_points_plot",
    "to_data_uri",
]

# Cells of small images (<= SMALL_SIDE px) are upscaled with nearest so that each is at least MIN_CELL px.
SMALL_SIDE = 16
MIN_CELL = 32

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".svg": "image/svg+xml"}


def as_nchw(images: Tensor) -> Tensor:
    """Bring (H,W), (C,H,W) or (N,C,H,W) images in [-1, 1] to a float (N,C,H,W) CPU tensor in [0, 1]."""
    x = torch.as_tensor(images).detach()
    if x.dim() == 2:
        x = x[None, None]
    elif x.dim() == 3:
        # A single (C,H,W) image when C looks like channels, else a batch of (H,W) grey images.
        x = x[None] if x.shape[0] in (1, 3) else x[:, None]
    if x.dim() != 4:
        raise ValueError(f"expected NCHW images, got shape {tuple(images.shape)}")
    x = x.to("cpu", torch.float32)
    # A diverging generator can emit NaN/inf; show them as black/white rather than failing the save.
    x = torch.nan_to_num(x, nan=-1.0, posinf=1.0, neginf=-1.0)
    return ((x + 1.0) / 2.0).clamp_(0.0, 1.0)


def _upscale_factor(height: int, width: int) -> int:
    """Integer nearest-neighbour factor making small images at least MIN_CELL px on their short side."""
    side = min(height, width)
    if side > SMALL_SIDE or side <= 0:
        return 1
    return math.ceil(MIN_CELL / side)


def save_image_grid(images: Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Save images in [-1, 1] (NCHW, 1 or 3 channels) as one PNG grid, upscaling tiny images; returns the path."""
    from torchvision.utils import make_grid, save_image

    x = as_nchw(images)
    n, _, h, w = x.shape
    if n == 0:
        raise ValueError("save_image_grid needs at least one image")
    factor = _upscale_factor(h, w)
    if factor > 1:
        x = torch.nn.functional.interpolate(x, scale_factor=factor, mode="nearest")
    if nrow is None:
        nrow = max(1, math.ceil(math.sqrt(n)))
    grid = make_grid(x, nrow=nrow, padding=2, pad_value=1.0)
    path = Path(path)
    with atomic_file(path) as f:
        save_image(grid, f, format="PNG")
    return path


def save_images(images: Tensor, folder: str | Path, prefix: str = "sample") -> list[Path]:
    """Save each image in [-1, 1] as its own PNG `{prefix}_00000.png`... at native resolution; returns the paths."""
    from torchvision.utils import save_image

    x = as_nchw(images)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for i, img in enumerate(x):
        p = folder / f"{prefix}_{i:05d}.png"
        with atomic_file(p) as f:
            save_image(img, f, format="PNG")
        paths.append(p)
    return paths


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib Figure on the Agg canvas, without pyplot (no global backend state, no GUI, thread-safe)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write a figure as PNG atomically."""
    path = Path(path)
    with atomic_file(path) as f:
        fig.savefig(f, format="png")
    return path


def _parse_limits(limits: Any) -> tuple[float, float, float, float] | None:
    """Accept L (-> [-L, L]^2), (lo, hi), ((xlo, xhi), (ylo, yhi)) or (xlo, xhi, ylo, yhi)."""
    if limits is None:
        return None
    if isinstance(limits, (int, float)):
        lim = abs(float(limits))
        return (-lim, lim, -lim, lim)
    vals = list(limits)
    if len(vals) == 2 and all(isinstance(v, (int, float)) for v in vals):
        lo, hi = float(vals[0]), float(vals[1])
        return (lo, hi, lo, hi)
    if len(vals) == 2:
        (xlo, xhi), (ylo, yhi) = vals
        return (float(xlo), float(xhi), float(ylo), float(yhi))
    if len(vals) == 4:
        return tuple(float(v) for v in vals)  # type: ignore[return-value]
    raise ValueError(f"limits must be L, (lo, hi), ((xlo, xhi), (ylo, yhi)) or (xlo, xhi, ylo, yhi); got {limits!r}")


def save_points_plot(
    points: Tensor,
    path: str | Path,
    centres: Tensor | None = None,
    title: str | None = None,
    limits: Any = None,
) -> Path:
    """Scatter generated 2-D points (small, translucent) over the true centres (red x); returns the path."""
    xy = torch.as_tensor(points).detach().to("cpu", torch.float32).reshape(-1, 2)
    # Diverged points would wreck autoscaled axes; fixed limits clip them visually anyway.
    pts = xy[torch.isfinite(xy).all(dim=1)].numpy()
    fig = new_figure(5.0, 5.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.4, c="tab:blue", linewidths=0, label="generated")
    if centres is not None:
        c = torch.as_tensor(centres).detach().to("cpu", torch.float32).reshape(-1, 2).numpy()
        ax.scatter(c[:, 0], c[:, 1], s=60, marker="x", c="red", linewidths=1.5, label="true modes")
    lim = _parse_limits(limits)
    if lim is not None:
        # Fixed limits keep successive frames comparable over training.
        ax.set_xlim(lim[0], lim[1])
        ax.set_ylim(lim[2], lim[3])
    ax.set_aspect("equal", adjustable="box")
    ax.grid(True, alpha=0.25)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """Centred mean over `window` values (narrower at the ends), so the smooth curve does not lag the raw one."""
    n = len(values)
    if window <= 1 or n == 0:
        return [float(v) for v in values]
    prefix = [0.0]
    for v in values:
        prefix.append(prefix[-1] + float(v))
    before = (window - 1) // 2
    after = window - 1 - before
    out: list[float] = []
    for i in range(n):
        lo, hi = max(0, i - before), min(n, i + after + 1)
        out.append((prefix[hi] - prefix[lo]) / (hi - lo))
    return out


def _is_number(v: Any) -> TypeGuard[int | float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def curve_points(records: Sequence[dict], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of `key` over records that have both a numeric step and a finite value, in step order."""
    pairs = [
        (r["step"], r[key])
        for r in records
        if isinstance(r, dict) and _is_number(r.get("step")) and _is_number(r.get(key))
    ]
    pairs.sort(key=lambda p: p[0])  # stable: a resumed run's repeated steps keep their log order
    return [float(s) for s, _ in pairs], [float(v) for _, v in pairs]


def plot_curves(
    records: list[dict],
    keys: list[str],
    path: str | Path,
    title: str | None = None,
    smooth: int = 0,
    logy: bool = False,
) -> Path:
    """Line plot of metric `keys` vs "step" (records lacking a key are skipped); smoothed over a faint raw line."""
    fig = new_figure(7.5, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    drawn = 0
    for i, key in enumerate(keys):
        steps, values = curve_points(records, key)
        if not steps:
            continue
        color = f"C{i % 10}"
        few = len(steps) <= 30  # sparse series (e.g. evaluations): markers make single points visible
        marker = "o" if few else None
        if smooth > 1 and len(values) > smooth:
            ax.plot(steps, values, color=color, alpha=0.25, linewidth=1.0)
            ax.plot(steps, moving_average(values, smooth), color=color, linewidth=1.8, label=key)
        else:
            ax.plot(steps, values, color=color, linewidth=1.6, marker=marker, markersize=3.5, label=key)
        drawn += 1
    if drawn:
        ax.legend(loc="best", fontsize="small", frameon=False)
    else:
        ax.text(0.5, 0.5, "(no data yet)", ha="center", va="center", transform=ax.transAxes, color="0.5")
    ax.set_xlabel("step")
    ax.grid(True, alpha=0.25)
    if logy and drawn:
        ax.set_yscale("log")  # norms span orders of magnitude; a blow-up shows as a climb, not a wall
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


STATE_COLORS = {
    "unstable": "#d62728",
    "divergence": "#ff7f0e",
    "collapse": "#9467bd",
    "d_wins": "#8c564b",
    "no_learning": "#7f7f7f",
}


def plot_health_timeline(
    records: list[dict], periods: list[dict], path: str | Path, total_steps: int, title: str | None = None
) -> Path:
    """The doctor's evidence against steps: sample diversity and coverage over the data's, D's accuracy, gradient
    norms; each diagnosed period (ganforge.doctor) shaded in its state's colour."""
    panels: list[tuple[str, list[tuple[str, list[float], list[float]]], bool]] = []

    def ratio(num: str, den: str) -> tuple[list[float], list[float]]:
        xs, ys = [], []
        for r in records:
            a, b = r.get(num), r.get(den)
            if _is_number(a) and _is_number(b) and b:
                xs.append(float(r["step"]))
                ys.append(float(a) / float(b))
        return xs, ys

    div = [
        (label, *ratio(f"signals/{k}", f"signals/real_{k2}"))
        for label, k, k2 in (
            ("diversity / real", "sample_diversity", "diversity"),
            ("class coverage / real", "class_coverage", "class_coverage"),
            ("mode coverage / real", "mode_coverage", "mode_coverage"),
            ("movement / real diversity", "sample_change", "diversity"),
        )
    ]
    panels.append(("fixed-noise samples", [d for d in div if d[1]], False))
    panels.append(
        (
            "D's accuracy",
            [(k, *curve_points(records, k)) for k in ("d_acc_real", "d_acc_fake") if curve_points(records, k)[0]],
            False,
        )
    )
    panels.append(
        (
            "gradient norms",
            [
                (k, *curve_points(records, k))
                for k in ("grad_norm_g", "grad_norm_d", "grad_norm_d_input")
                if curve_points(records, k)[0]
            ],
            True,
        )
    )
    panels = [p for p in panels if p[1]] or [("(no health signals in this log)", [], False)]
    fig = new_figure(7.5, 1.0 + 1.9 * len(panels))
    axes = [fig.add_subplot(len(panels), 1, i + 1) for i in range(len(panels))]
    seen_states: set[str] = set()
    last = max((float(r["step"]) for r in records if _is_number(r.get("step"))), default=float(total_steps))
    for ax, (name, series, logy) in zip(axes, panels):
        for i, (label, xs, ys) in enumerate(series):
            ax.plot(
                xs, ys, color=f"C{i}", linewidth=1.4, marker="o" if len(xs) <= 30 else None, markersize=3, label=label
            )
        for p in periods:
            if p.get("start") is None:
                continue
            end = last if p.get("end") is None else p["end"]
            ax.axvspan(
                p["start"], max(end, p["start"] + 1), color=STATE_COLORS.get(p["state"], "0.5"), alpha=0.18, lw=0
            )
            seen_states.add(p["state"])
        if logy and series:
            ax.set_yscale("log")
        ax.set_xlim(0, max(total_steps, 1))
        ax.set_ylabel(name, fontsize="small")
        ax.grid(True, alpha=0.25)
        if series:
            ax.legend(loc="best", fontsize="x-small", frameon=False)
    axes[-1].set_xlabel("step")
    if seen_states:
        from matplotlib.patches import Patch

        fig.legend(
            handles=[Patch(color=STATE_COLORS[s], alpha=0.35, label=s) for s in STATE_COLORS if s in seen_states],
            loc="upper right",
            fontsize="small",
            frameon=False,
            ncol=len(seen_states),
        )
    axes[0].set_title(
        title or "diagnosis: no state entered (healthy)" if not seen_states else title or "diagnosis",
        fontsize="medium",
        loc="left",
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return save_figure(fig, path)


def to_data_uri(path: str | Path | None = None, data: bytes | None = None, mime: str | None = None) -> str:
    """A base64 `data:` URI of an image file (or of raw `data` bytes), for self-contained HTML."""
    if data is None:
        if path is None:
            raise ValueError("to_data_uri needs a path or data")
        data = Path(path).read_bytes()
    if mime is None:
        mime = _MIME.get(Path(path).suffix.lower(), "image/png") if path is not None else "image/png"
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
