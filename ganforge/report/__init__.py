"""A self-contained, offline HTML report of one run folder (images embedded as base64, no scripts): the page itself."""

from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_file
from ..errors import ConfigError
from ..metrics.spec import (
    higher_is_better,  # one rule for the report and best-checkpoint choice
)

# The report's size limits, importable from here as before the split.
from .run_folder import MAX_PROGRESSION as MAX_PROGRESSION
from .run_folder import (
    eval_keys,
    loss_keys,
    pick_evenly,
    read_metrics,
    read_metrics_counted,
    read_run_info,
)
from .sections import FINAL_DISPLAY_WIDTH as FINAL_DISPLAY_WIDTH
from .sections import THUMB_WIDTH as THUMB_WIDTH
from .sections import (
    augmentation_section,
    began_convergence,
    config_section,
    esc,
    evaluation_section,
    files_section,
    growth_section,
    header_section,
    health_section,
    losses_section,
    samples_section,
    throughput_section,
    translation_section,
)

__all__ = ["eval_keys", "higher_is_better", "loss_keys", "pick_evenly", "read_metrics", "read_run_info", "write_report"]

_CSS = """
body{margin:0;background:#f6f7f9;color:#1d2329;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:1100px;margin:0 auto;padding:24px 28px 48px;background:#fff;min-height:100vh;box-sizing:border-box}
h1{margin:0 0 4px;font-size:28px}
h2{margin:36px 0 10px;font-size:20px;border-bottom:1px solid #e3e6ea;padding-bottom:4px}
h3{margin:18px 0 6px;font-size:16px}
p{margin:6px 0}
.muted{color:#6b7480}
.none{color:#8a929c;font-style:italic}
.badge{display:inline-block;padding:1px 10px;border-radius:10px;font-size:13px;font-weight:600;color:#fff;background:#7a828c}
.badge.running{background:#2f6fd0}.badge.finished{background:#2e8b57}.badge.failed{background:#c0392b}
table{border-collapse:collapse;margin:8px 0}
td,th{padding:4px 12px 4px 0;text-align:left;vertical-align:top}
th{font-weight:600;color:#3a424b}
table.grid td,table.grid th{border-bottom:1px solid #eceff2;padding:4px 14px 4px 4px}
table.kv th{white-space:nowrap;color:#6b7480;font-weight:500}
td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto}
img.pix{image-rendering:pixelated}
.figs{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
figure{margin:0}
figcaption{font-size:13px;color:#6b7480;text-align:center}
.figs.half img{width:calc(50% - 9px)}
.prog{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:14px;margin-top:10px}
.prog img{width:100%;border:1px solid #e3e6ea}
pre{background:#f3f4f6;border:1px solid #e3e6ea;padding:12px;overflow:auto;font-size:13px;line-height:1.4}
code{font-size:13px}
.err{color:#c0392b}
"""


# ----------------------------------------------------------------------------------------------- entry point


def _recipe_name(run_dir: Path, info: dict, config_text: str | None) -> str:
    """Recipe name from run.json, else from config.yaml, else the folder name."""
    if info.get("recipe"):
        return str(info["recipe"])
    if config_text:
        try:
            import yaml

            cfg = yaml.safe_load(config_text)
        except Exception:
            cfg = None
        if isinstance(cfg, dict):
            for key in ("recipe", "name"):
                if isinstance(cfg.get(key), str) and cfg[key]:
                    return cfg[key]
    return run_dir.resolve().name


def write_report(run_dir: str | Path) -> Path:
    """Write `run_dir/report.html`, one self-contained offline page of everything the run folder holds so far."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"run folder {str(run_dir)!r} does not exist (give the --out folder of a training run).")
    plots_dir = run_dir / "plots"

    try:
        config_text: str | None = (run_dir / "config.yaml").read_text(encoding="utf-8", errors="replace")
    except OSError:
        config_text = None
    info = read_run_info(run_dir)
    records, bad = read_metrics_counted(run_dir / "metrics.jsonl")
    recipe = _recipe_name(run_dir, info, config_text)

    body = [
        header_section(run_dir, info, records, recipe),
        losses_section(records, plots_dir, bad),
        began_convergence(records, plots_dir),
        augmentation_section(records, plots_dir),
        growth_section(run_dir, records, plots_dir),
        translation_section(records, plots_dir),
        health_section(records, plots_dir, run_dir),
        throughput_section(records, plots_dir),
        evaluation_section(records, plots_dir),
        samples_section(run_dir),
        config_section(config_text),
        files_section(run_dir),
    ]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(recipe)} · ganforge run report</title><style>{_CSS}</style></head>"
        "<body><main>\n" + "\n".join(body) + "\n</main></body></html>\n"
    )
    out = run_dir / "report.html"
    with atomic_file(out) as f:
        f.write(page.encode("utf-8"))
    return out
