"""Diagnosing a run folder (or a final evaluation) and writing the result for people and scripts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from ..errors import GanforgeError
from .engine import Doctor
from .rules import HEALTHY, STATES, THRESHOLDS, Thresholds, remedies


def read_records(path: Path) -> list[dict[str, Any]]:
    """metrics.jsonl as dicts; a line cut short by a kill is skipped."""
    out = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def diagnose_records(records: list[dict[str, Any]], total_steps: int, cfg: dict[str, Any] | None = None,
                     status: str | None = None, error: str | None = None,
                     thresholds: Thresholds = THRESHOLDS) -> dict[str, Any]:
    """The diagnosis of a run's log: verdict, timeline of periods with evidence, remedies per state entered."""
    cfg = cfg or {}
    lr_g0 = ((cfg.get("optim") or {}).get("g") or {}).get("lr")
    doc = Doctor(total_steps, thresholds, float(lr_g0) if lr_g0 is not None else None)
    for rec in records:
        doc.feed(rec)
    doc.finish(status, error)
    verdict = doc.verdict()
    symptoms = doc.symptoms()
    # Remedies for the causes only: a still G under a winning D needs D fixed, not a bigger G step.
    states = sorted({p.state for p in doc.periods} - symptoms, key=lambda s: (s != verdict, list(STATES).index(s)))
    missing = []
    if not any(k.startswith("signals/") for r in records for k in r):
        missing.append("fixed-noise sample signals (train.signals was off, or no sample grid was written)")
    if not any(k.startswith("d_acc_") for r in records for k in r):
        missing.append("D's accuracy (this objective has no decision rule, or an older ganforge wrote the log)")
    return {
        "verdict": verdict,
        "title": "healthy / converging" if verdict == HEALTHY else STATES[verdict],
        "steps": doc.last_step,
        "total_steps": total_steps,
        "status": status,
        "periods": [{**p.as_dict(), "symptom_of_another": p.state in symptoms}
                    for p in sorted(doc.periods, key=lambda p: (p.start, p.state != verdict))],
        "remedies": {s: remedies(s, cfg) for s in states},
        "missing": missing,
    }


def diagnose_run(run_dir: str | Path, thresholds: Thresholds = THRESHOLDS) -> dict[str, Any]:
    """Diagnose a run folder from its metrics.jsonl, config.yaml and run.json."""
    run = Path(run_dir)
    log = run / "metrics.jsonl"
    if not log.is_file():
        raise GanforgeError(f"{run} is not a run folder: it has no metrics.jsonl (give the folder `ganforge train` "
                            "wrote, e.g. runs/demo).")
    cfg: dict[str, Any] = {}
    if (run / "config.yaml").is_file():
        cfg = yaml.safe_load((run / "config.yaml").read_text()) or {}
    info: dict[str, Any] = {}
    if (run / "run.json").is_file():
        try:
            info = json.loads((run / "run.json").read_text())
        except ValueError:
            info = {}
    total = int((cfg.get("train") or {}).get("steps") or info.get("steps") or 1)
    res = diagnose_records(read_records(log), total, cfg, info.get("status"), info.get("error"), thresholds)
    return {"run": str(run), "recipe": info.get("recipe") or cfg.get("name"), **res}


def diagnose_final(metrics: dict[str, float], floor: dict[str, float], thresholds: Thresholds = THRESHOLDS) -> dict[str, Any]:
    """A run known only by its final evaluation (thousands of samples): collapse when it misses a class the real
    test split covers, or its class histogram is more peaked than a third of the classes (KL to uniform > ln 3)."""
    why: list[str] = []
    for k, v in metrics.items():
        # Thousands of samples: a class the real test split shows that G never produces is a dropped mode.
        if k.startswith("coverage_") and k in floor and v < floor[k]:
            why.append(f"{k} {v:.2f} against the real data's {floor[k]:.2f}")
        if k.startswith("kl_uniform_") and isinstance(v, float) and math.isfinite(v) and v > thresholds.class_kl:
            why.append(f"{k} {v:.2f} (> ln 3: under a third of the classes' entropy)")
    verdict = "collapse" if why else HEALTHY
    return {"verdict": verdict, "title": "healthy / converging" if verdict == HEALTHY else STATES[verdict],
            "periods": [{"state": "collapse", "title": STATES["collapse"], "start": None, "end": None,
                         "evidence": why}] if why else [], "remedies": {}, "missing": ["the training log (not kept)"]}


def format_diagnosis(d: dict[str, Any]) -> str:
    """The diagnosis as the text `ganforge doctor` prints: verdict, timeline, evidence, what to try."""
    lines = [f"{d.get('run', '')}: {d['title'].upper()}"
             + (f" (run {d['status']} at step {d['steps']:,} of {d['total_steps']:,})" if d.get("status") else "")]
    if not d["periods"]:
        lines.append("  no state was entered: every signal stayed within the thresholds measured on `ganforge bench doctor`.")
    else:
        lines.append("timeline:")
        for p in d["periods"]:
            end = "end" if p["end"] is None else f"step {p['end']:,}"
            span = f"step {p['start']:,} - {end}" if p["start"] is not None else "final evaluation"
            lines.append(f"  {span}: {p['title']}" + (" (a symptom, not the cause)" if p.get("symptom_of_another") else ""))
            for e in p["evidence"][:4]:
                lines.append(f"      {e}")
    for state, rems in d.get("remedies", {}).items():
        if rems:
            lines.append(f"to try against {STATES[state]} (one at a time, as overrides of `ganforge train`):")
            for r in rems:
                lines.append(f"  {r['override']}\n      {r['why']}")
    for m in d.get("missing", []):
        lines.append(f"note: not in this log: {m}")
    return "\n".join(lines)
