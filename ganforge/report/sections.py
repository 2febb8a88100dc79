"""The HTML sections of the run report (header, losses, evaluation, samples, files, ...) and the formatting they share."""

from __future__ import annotations

import html
import io
import math
import re
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..metrics.spec import higher_is_better
from ..plots import curve_points, plot_curves, to_data_uri
from .run_folder import MAX_PROGRESSION, eval_keys, loss_keys, pick_evenly, step_samples

THUMB_WIDTH = 320  # progression images wider than this are downscaled before embedding (keeps the HTML small)
FINAL_DISPLAY_WIDTH = 640  # small final grids are shown enlarged (integer factor, pixelated) up to this width


# ----------------------------------------------------------------------------------------------- formatting


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt_num(v: Any) -> str:
    """Ints with thousands separators, floats to 4 significant digits, anything else as text."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:.4g}"
    return str(v)


def _fmt_duration(s: Any) -> str:
    """Seconds as '12.3 s', '2 min 20 s' or '1 h 02 min'."""
    if not isinstance(s, (int, float)) or isinstance(s, bool) or not math.isfinite(s):
        return str(s)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def _fmt_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _none(what: str = "") -> str:
    return f'<p class="none">(none yet){" — " + esc(what) if what else ""}</p>'


def _img_tag(uri: str, alt: str, cls: str = "", width: int | None = None) -> str:
    attrs = f' class="{cls}"' if cls else ""
    if width:
        attrs += f' width="{width}"'
    return f'<img src="{uri}" alt="{esc(alt)}"{attrs}>'


def _image_uri(path: Path, max_width: int | None = None) -> tuple[str, int]:
    """Data URI of an image (downscaled to max_width if wider) and its natural width."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        width, height = im.size
        if max_width is None or width <= max_width:
            return to_data_uri(path), width
        thumb = im.convert("RGBA" if "A" in im.getbands() else "RGB")
        # Image.Resampling.LANCZOS would need Pillow >= 9.1; the module constant exists at run time in every version.
        thumb.thumbnail((max_width, max(1, round(height * max_width / width))), Image.LANCZOS)  # type: ignore[attr-defined]
        buf = io.BytesIO()
        thumb.save(buf, format="PNG", optimize=True)
        return to_data_uri(data=buf.getvalue(), mime="image/png"), thumb.size[0]


def _safe_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("_") or "metric"


def _smooth_window(n: int) -> int:
    """Moving-average window for a series of n points: ~1/25 of it, none for short series, at most 50."""
    w = min(50, n // 25)
    return w if w >= 2 else 0


# ----------------------------------------------------------------------------------------------- sections


def header_section(run_dir: Path, info: dict, records: list[dict], recipe: str) -> str:
    parts = [f"<h1>{esc(recipe)}</h1>"]
    if info.get("description"):
        parts.append(f"<p>{esc(info['description'])}</p>")
    if info.get("source"):
        parts.append(f'<p class="muted">Source: {esc(info["source"])}</p>')

    status = str(info.get("status", "")) or ("unknown" if info else "")
    rows: list[tuple[str, str]] = []
    if status:
        cls = status if status in ("running", "finished", "failed") else ""
        rows.append(("status", f'<span class="badge {cls}">{esc(status)}</span>'))
    else:
        rows.append(("status", '<span class="none">(no run.json yet)</span>'))
    if info.get("error"):
        rows.append(("error", f'<span class="err">{esc(info["error"])}</span>'))

    last_step = next((r["step"] for r in reversed(records) if "step" in r), None)
    step = info.get("step", last_step)
    total = info.get("steps")
    if step is not None or total is not None:
        txt = _fmt_num(step) if step is not None else "?"
        if total is not None:
            txt += f" / {_fmt_num(total)}"
        rows.append(("steps", esc(txt)))
    wall = info.get("wall_time_s")
    if wall is None:
        wall = next((r["time"] for r in reversed(records) if "time" in r), None)
    if wall is not None:
        rows.append(("training time", esc(_fmt_duration(wall) + " (grids, evaluation and checkpoints excluded)")))

    hw = [str(info[k]) for k in ("device", "precision") if info.get(k) is not None]
    flags = [k for k in ("channels_last", "compile") if info.get(k) is True]
    if hw or flags:
        rows.append(("device / precision", esc(" / ".join(hw) + ("  (" + ", ".join(flags) + ")" if flags else ""))))
    if isinstance(info.get("params"), dict) and info["params"]:
        rows.append(("parameters", esc(" · ".join(f"{k} {_fmt_num(v)}" for k, v in info["params"].items()))))
    if isinstance(info.get("data"), dict) and info["data"]:
        rows.append(("data", esc(", ".join(f"{k}={v}" for k, v in info["data"].items()))))
    elif info.get("data") is not None:
        rows.append(("data", esc(info["data"])))
    if info.get("seed") is not None:
        rows.append(("seed", esc(info["seed"])))
    versions = [f"{k} {info[k]}" for k in ("torch", "ganforge") if info.get(k)]
    if versions:
        rows.append(("versions", esc(", ".join(versions))))

    parts.append('<table class="kv">' + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    parts.append(
        f'<p class="muted">Report of <code>{esc(run_dir)}</code>, written {esc(stamp)} by ganforge {esc(__version__)}.</p>'
    )
    return "<header>" + "".join(parts) + "</header>"


def _figure(records: list[dict], keys: list[str], path: Path, title: str, smooth: int, logy: bool = False) -> str:
    """Make one curve figure and return its <img>; a failure is shown in the page instead of killing the report."""
    try:
        plot_curves(records, keys, path, title=title, smooth=smooth, logy=logy)
        return _img_tag(to_data_uri(path), title)
    except Exception as exc:  # a report is also written mid-training: it must never take the run down
        return f'<p class="err">(figure {esc(title)} failed: {esc(type(exc).__name__)}: {esc(exc)})</p>'


def losses_section(records: list[dict], plots_dir: Path, bad_lines: int) -> str:
    out = ['<section id="losses"><h2>Losses</h2>']
    if not records:
        out.append(_none("no metrics have been logged yet."))
    else:
        keys = loss_keys(records)
        if not keys:
            out.append(_none("no loss values logged yet."))
        else:
            n = max(len(curve_points(records, k)[0]) for k in keys)
            w = _smooth_window(n)
            out.append(_figure(records, keys, plots_dir / "losses.png", "Losses", w))
            note = f"{len(records):,} logged steps"
            if w:
                note += f"; bold lines are a {w}-point moving average over the faint raw values"
            out.append(f'<p class="muted">{esc(note)}.</p>')
        if bad_lines:
            out.append(
                f'<p class="muted">{bad_lines} unreadable line(s) of metrics.jsonl skipped '
                f"(a run stopped mid-write leaves a truncated last line).</p>"
            )
    out.append("</section>")
    return "".join(out)


def throughput_section(records: list[dict], plots_dir: Path) -> str:
    out = ['<section id="throughput"><h2>Throughput</h2>']
    steps, values = curve_points(records, "images_per_s")
    if not steps:
        out.append(_none("no throughput logged yet."))
    else:
        out.append(
            _figure(
                records,
                ["images_per_s"],
                plots_dir / "throughput.png",
                "Throughput (images/s)",
                _smooth_window(len(steps)),
            )
        )
        tail = sorted(values[-20:])
        median = tail[len(tail) // 2]
        out.append(
            f'<p class="muted">latest {esc(_fmt_num(values[-1]))} images/s; '
            f"median of the last {len(tail)} logs {esc(_fmt_num(median))} images/s.</p>"
        )
    out.append("</section>")
    return "".join(out)


def evaluation_section(records: list[dict], plots_dir: Path) -> str:
    out = ['<section id="evaluation"><h2>Evaluation</h2>']
    keys = [k for k in eval_keys(records) if curve_points(records, k)[0]]
    if not keys:
        out.append(_none("no evaluation logged yet."))
        out.append("</section>")
        return "".join(out)
    rows = []
    for k in keys:
        steps, values = curve_points(records, k)
        higher = higher_is_better(k)
        best_i = (
            max(range(len(values)), key=values.__getitem__)
            if higher
            else min(range(len(values)), key=values.__getitem__)
        )
        rows.append(
            f"<tr><td><code>{esc(k)}</code></td><td>{'higher' if higher else 'lower'}</td>"
            f'<td class="num">{esc(_fmt_num(values[-1]))}</td><td class="num">{esc(_fmt_num(steps[-1]))}</td>'
            f'<td class="num">{esc(_fmt_num(values[best_i]))}</td><td class="num">{esc(_fmt_num(steps[best_i]))}</td>'
            f'<td class="num">{len(values)}</td></tr>'
        )
    out.append(
        '<table class="grid eval"><thead><tr><th>metric</th><th>better</th><th>last</th><th>at step</th>'
        "<th>best</th><th>at step</th><th>evaluations</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )
    out.append(f'<div class="figs{" half" if len(keys) > 1 else ""}">')
    for k in keys:
        out.append(_figure(records, [k], plots_dir / f"eval_{_safe_name(k.split('/', 1)[-1])}.png", k, 0))
    out.append("</div></section>")
    return "".join(out)


def samples_section(run_dir: Path) -> str:
    out = ['<section id="samples"><h2>Samples</h2>']
    samples_dir = run_dir / "samples"
    steps = step_samples(samples_dir)
    big: list[tuple[Path, str]] = [
        (samples_dir / n, c)
        for n, c in (("final.png", "final"), ("final_ema.png", "final (EMA)"))
        if (samples_dir / n).is_file()
    ]
    if not big and steps:
        # Mid-training there is no final grid yet: show the latest one large instead.
        big = [(steps[-1][1], f"latest (step {steps[-1][0]:,})")]
    if not big and not steps:
        out.append(_none("no samples saved yet."))
        out.append("</section>")
        return "".join(out)

    out.append('<div class="figs">')
    for path, caption in big:
        try:
            uri, width = _image_uri(path)
        except Exception as exc:  # e.g. a PNG being replaced right now; skip it rather than fail the report
            out.append(f'<p class="err">({esc(path.name)} unreadable: {esc(exc)})</p>')
            continue
        # Small grids (e.g. 16 px digits) are shown enlarged by an integer factor with crisp pixels.
        factor = max(1, FINAL_DISPLAY_WIDTH // max(width, 1)) if width < FINAL_DISPLAY_WIDTH // 2 else 1
        img = _img_tag(uri, caption, "pix" if factor > 1 else "", width * factor if factor > 1 else None)
        out.append(f"<figure>{img}<figcaption>{esc(caption)}</figcaption></figure>")
    out.append("</div>")

    out.append("<h3>Progression</h3>")
    if not steps:
        out.append(_none("no intermediate sample grids saved yet."))
    else:
        shown = pick_evenly(steps, MAX_PROGRESSION)
        if len(shown) < len(steps):
            out.append(f'<p class="muted">{len(shown)} of {len(steps)} sample grids, evenly spaced.</p>')
        out.append('<div class="prog">')
        for step, path in shown:
            try:
                uri, _ = _image_uri(path, THUMB_WIDTH)
            except Exception as exc:
                out.append(f'<figure><p class="err">({esc(path.name)} unreadable: {esc(exc)})</p></figure>')
                continue
            out.append(f"<figure>{_img_tag(uri, f'step {step}')}<figcaption>step {step:,}</figcaption></figure>")
        out.append("</div>")
    out.append("</section>")
    return "".join(out)


def config_section(config_text: str | None) -> str:
    body = f"<pre>{esc(config_text)}</pre>" if config_text is not None else _none("no config.yaml.")
    return f'<section id="config"><h2>Config</h2>{body}</section>'


def files_section(run_dir: Path) -> str:
    rows: list[str] = []

    def row(name: str, size: str) -> None:
        rows.append(f'<tr><td><code>{esc(name)}</code></td><td class="num">{esc(size)}</td></tr>')

    def stat_size(p: Path) -> int | None:
        try:
            return p.stat().st_size
        except OSError:  # e.g. an old checkpoint rotated away while we list
            return None

    entries = sorted(run_dir.iterdir(), key=lambda p: (p.is_dir(), p.name))
    for p in entries:
        if p.name.startswith(".") or p.name == "report.html":  # temp files of atomic writes; this page itself
            continue
        if p.is_file():
            size = stat_size(p)
            if size is not None:
                row(p.name, _fmt_size(size))
        elif p.is_dir() and p.name == "checkpoints":
            for c in sorted(p.iterdir()):
                if c.is_file() and not c.name.startswith("."):
                    size = stat_size(c)
                    if size is not None:
                        row(f"checkpoints/{c.name}", _fmt_size(size))
        elif p.is_dir():
            files = [f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")]
            total = sum(s for s in (stat_size(f) for f in files) if s is not None)
            row(f"{p.name}/ ({len(files)} files)", _fmt_size(total))
    body = '<table class="grid files">' + "".join(rows) + "</table>" if rows else _none()
    return f'<section id="files"><h2>Files</h2>{body}</section>'


# ----------------------------------------------------------------------------------------------- BEGAN


def began_convergence(records: list[dict], plots_dir: Path) -> str:
    """BEGAN's M_global and k_t against step (Berthelot et al. 2017, Sec. 3.4.1); "" unless the run logged m_global."""
    from ..figures.began import has_convergence, plot_convergence

    if not has_convergence(records):
        return ""
    out = ['<section id="began-convergence"><h2>Convergence (BEGAN M_global)</h2>']
    path = plots_dir / "began_convergence.png"
    try:
        plot_convergence(records, path, smooth=_smooth_window(len(curve_points(records, "m_global")[0])))
        out.append(_img_tag(to_data_uri(path), "BEGAN convergence: M_global and k_t"))
    except Exception as exc:  # never let a figure take the report (or the run) down
        out.append(f'<p class="err">(figure M_global failed: {esc(type(exc).__name__)}: {esc(exc)})</p>')
    out.append(
        '<p class="muted">M_global = L(x) + |gamma L(x) - L(G(z))| (lower is better); '
        "k_t is the weight of the fake term in D's loss, kept in [0, 1].</p></section>"
    )
    return "".join(out)


def augmentation_section(records: list[dict], plots_dir: Path) -> str:
    """ADA's augmentation probability p and its overfitting heuristic r_t over training; "" unless the run logged p."""
    steps, values = curve_points(records, "aug_p")
    if not steps:
        return ""
    keys = ["aug_p"] + (["ada_rt"] if curve_points(records, "ada_rt")[0] else [])
    out = [
        '<section id="augmentation"><h2>Augmentation (ADA)</h2>',
        _figure(records, keys, plots_dir / "augmentation.png", "ADA: p and r_t", 0),
        f'<p class="muted">p (latest {esc(_fmt_num(values[-1]))}, highest {esc(_fmt_num(max(values)))}) is the '
        "probability of each transform on each image D sees; r_t = E[sign(D(real))] is D's overfitting heuristic, "
        "which ADA steers towards its target (0.6 in the paper) by raising p while r_t is above it. p above about "
        "0.8 risks transforms leaking into the samples (Karras et al. 2020, Sec. 2.2).</p></section>",
    ]
    return "".join(out)


def growth_section(run_dir: Path, records: list[dict], plots_dir: Path) -> str:
    """A progressive run's resolution and alpha over time, and the last sample grid of each phase; "" for other runs."""
    from ..figures.progressive import has_growth, phase_grids, plot_growth

    if not has_growth(records):
        return ""
    out = ['<section id="growth"><h2>Progressive growing</h2>']
    path = plots_dir / "growth.png"
    try:
        plot_growth(records, path)
        out.append(_img_tag(to_data_uri(path), "resolution and alpha against step"))
    except Exception as exc:  # never let a figure take the report (or the run) down
        out.append(f'<p class="err">(figure growth failed: {esc(type(exc).__name__)}: {esc(exc)})</p>')
    samples = dict(step_samples(run_dir / "samples"))
    grids = phase_grids(records, list(samples))
    if grids:
        out.append('<h3>The last grid of each phase</h3><div class="prog">')
        for label, step, alpha in grids:
            try:
                uri, _ = _image_uri(samples[step], THUMB_WIDTH)
            except Exception as exc:
                out.append(f'<figure><p class="err">({esc(samples[step].name)} unreadable: {esc(exc)})</p></figure>')
                continue
            cap = f"{label}, step {step:,}" + (f" (alpha ~{alpha:.2f})" if alpha < 1 else "")
            out.append(f"<figure>{_img_tag(uri, cap)}<figcaption>{esc(cap)}</figcaption></figure>")
        out.append("</div>")
    out.append(
        '<p class="muted">Images below the data size are the generator\'s output at its current resolution, '
        "nearest-upsampled; resolution and alpha are means over each log interval.</p></section>"
    )
    return "".join(out)


def translation_section(records: list[dict], plots_dir: Path) -> str:
    """A CycleGAN run: the four networks' losses, the cycle and identity terms, and how to read the triplet grids."""
    if not any("g_ab" in r for r in records):
        return ""
    n = sum(1 for r in records if "g_ab" in r)
    w = _smooth_window(n)
    out = [
        '<section id="translation"><h2>Translation</h2>',
        _figure(records, ["g_ab", "g_ba", "d_a", "d_b"], plots_dir / "networks.png", "Losses of the four networks", w),
        '<p class="muted">g_ab, g_ba: the adversarial losses of the translators G_ab (a to b, judged by D_b) and '
        "G_ba (b to a, judged by D_a); d_a, d_b: the discriminators' losses on real images against pooled "
        "translations.</p>",
    ]
    terms = [k for k in ("cycle_aba", "cycle_bab", "identity_ab", "identity_ba") if any(k in r for r in records)]
    if terms:
        out += [
            _figure(
                records, terms, plots_dir / "cycle_terms.png", "Cycle and identity terms (mean |.|, unweighted)", w
            ),
            '<p class="muted">cycle_aba = |G_ba(G_ab(a)) - a|, cycle_bab = |G_ab(G_ba(b)) - b|; identity_ab = '
            "|G_ab(b) - b|, identity_ba = |G_ba(a) - a|.</p>",
        ]
    out.append(
        '<p class="muted">Sample grids below are triplets on held-out test images, one row per image pair: '
        "a | G_ab(a) | G_ba(G_ab(a)) | b | G_ba(b) | G_ab(G_ba(b)) (input, translation, reconstruction "
        "in each direction).</p></section>"
    )
    return "".join(out)


def _diagnosis_html(run_dir: Path, records: list[dict], plots_dir: Path) -> str:
    """The doctor's verdict, timeline and first remedies, with the evidence plot (diagnosed periods shaded)."""
    from ..doctor import diagnose_run
    from ..plots import plot_health_timeline

    try:
        d = diagnose_run(run_dir)
    except Exception as e:  # the report must come out even if the diagnosis cannot
        return f'<p class="muted">No diagnosis: {html.escape(str(e))}</p>'
    out = [
        f"<p><b>Diagnosis: {html.escape(d['title'])}</b> (<code>ganforge doctor {html.escape(str(run_dir))}</code>"
        " prints it with every remedy).</p>"
    ]
    if d["periods"]:
        items = []
        for p in d["periods"]:
            end = "the end" if p["end"] is None else f"step {p['end']:,}"
            ev = html.escape(p["evidence"][-1]) if p["evidence"] else ""
            items.append(f"<li>step {p['start']:,} to {end}: <b>{html.escape(p['title'])}</b>. {ev}</li>")
        out.append("<ul>" + "".join(items) + "</ul>")
        for state, rems in d["remedies"].items():
            if rems:
                out.append(
                    f"<p>To try against {html.escape(state)}: "
                    + ", ".join(f"<code>{html.escape(r['override'])}</code>" for r in rems[:3])
                    + ".</p>"
                )
    try:
        fig = plot_health_timeline(records, d["periods"], plots_dir / "diagnosis.png", d["total_steps"])
        out.append(_img_tag(to_data_uri(fig), "diagnosis timeline"))
    except Exception as exc:  # a report is also written mid-training: it must never take the run down
        out.append(f'<p class="err">(diagnosis figure failed: {esc(type(exc).__name__)}: {esc(exc)})</p>')
    return "".join(out)


def health_section(records: list[dict], plots_dir: Path, run_dir: Path | None = None) -> str:
    """The training-health signals (train.signals) and the doctor's diagnosis: gradient norms, relative updates,
    sample movement and diversity, with the diagnosed periods shaded."""
    keys = {k for r in records for k in r}
    grads = sorted(k for k in keys if k.startswith("grad_norm_"))
    if not grads:
        return ""
    n = sum(1 for r in records if grads[0] in r)
    w = _smooth_window(n)
    updates = sorted(k for k in keys if k.startswith("update_ratio_"))
    out = [
        '<section id="health"><h2>Health</h2>',
        _diagnosis_html(run_dir, records, plots_dir) if run_dir is not None else "",
        _figure(records, grads, plots_dir / "grad_norms.png", "Gradient norm of each optimiser's update", w, logy=True),
        _figure(
            records, updates, plots_dir / "update_ratios.png", "Relative weight update per log interval", w, logy=True
        ),
    ]
    diversity = [
        k for k in ("signals/sample_diversity", "signals/real_diversity", "signals/sample_change") if k in keys
    ]
    if diversity:
        out.append(
            _figure(
                records,
                diversity,
                plots_dir / "sample_signals.png",
                "Fixed-noise samples: diversity (beside the data's) and movement",
                0,
            )
        )
    out.append(
        '<p class="muted">Gradient norms: one step per log line (the adversarial update). Updates: '
        "||w_t - w_prev|| / ||w_t|| since the previous log line. Sample diversity: mean pairwise distance per "
        "dimension of the grid's fixed-noise samples, against as many real samples; far below the data's "
        "means the samples look alike (mode collapse); a movement near 0 means G has stopped changing.</p>"
        "</section>"
    )
    return "".join(out)
