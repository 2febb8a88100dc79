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
    """metrics.jsonl as dicts with an integer step; a line cut short by a kill, or not a record, is skipped."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        step = rec.get("step") if isinstance(rec, dict) else None
        if isinstance(step, int) and not isinstance(step, bool) and step >= 0:
            out.append(rec)
    return out


def _read_mapping(path: Path, parse: Any) -> dict[str, Any] | None:
    """A YAML or JSON mapping from `path`; None when it is missing, unreadable or not a mapping."""
    try:
        data = parse(path.read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def diagnose_records(
    records: list[dict[str, Any]],
    total_steps: int,
    cfg: dict[str, Any] | None = None,
    status: str | None = None,
    error: str | None = None,
    thresholds: Thresholds = THRESHOLDS,
) -> dict[str, Any]:
    """The diagnosis of a run's log: verdict, timeline of periods with evidence, remedies per state entered."""
    cfg = _safe_cfg(cfg)
    lr_g0 = cfg["optim"]["g"].get("lr")
    doc = Doctor(total_steps, thresholds, float(lr_g0) if lr_g0 is not None else None)
    for rec in records:
        doc.feed(rec)
    doc.finish(status, error)
    verdict = doc.verdict()
    symptoms = doc.symptoms()
    # Remedies for the causes only: a still G under a winning D needs D fixed, not a bigger G step.
    periods = doc.merged()
    states = sorted({p.state for p in periods} - symptoms, key=lambda s: (s != verdict, list(STATES).index(s)))
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
        "periods": [
            {**p.as_dict(), "symptom_of_another": p.state in symptoms}
            for p in sorted(periods, key=lambda p: (p.start, p.state != verdict))
        ],
        "remedies": {s: remedies(s, cfg) for s in states},
        "missing": missing,
    }


def diagnose_run(run_dir: str | Path, thresholds: Thresholds = THRESHOLDS) -> dict[str, Any]:
    """Diagnose a run folder from its metrics.jsonl, config.yaml and run.json."""
    run = Path(run_dir)
    log = run / "metrics.jsonl"
    if not log.is_file():
        raise GanforgeError(
            f"{run} is not a run folder: it has no metrics.jsonl (give the folder `ganforge train` "
            "wrote, e.g. runs/demo)."
        )
    cfg = _read_mapping(run / "config.yaml", yaml.safe_load)
    info = _read_mapping(run / "run.json", json.loads) or {}
    records = read_records(log)
    if not records:
        raise GanforgeError(
            f"{run}: metrics.jsonl has no log lines yet (the first comes at step train.log_every); "
            "run the doctor again once training has logged."
        )
    train = cfg.get("train") if cfg else None
    total = (train or {}).get("steps") if isinstance(train, dict) else None
    if not isinstance(total, int) or total < 1:
        total = info.get("steps") if isinstance(info.get("steps"), int) and info["steps"] > 0 else None
    total = total or max(int(r["step"]) for r in records)
    res = diagnose_records(records, total, _safe_cfg(cfg), info.get("status"), info.get("error"), thresholds)
    if cfg is None:
        res["missing"].append("the recipe (config.yaml is missing or unreadable): remedies assume its defaults")
    return {"run": str(run), "recipe": info.get("recipe") or (cfg or {}).get("name"), **res}


def _safe_cfg(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """The parts of a config the doctor reads, each a mapping (a hand-edited config.yaml may hold anything)."""
    cfg = dict(cfg or {})
    for key in ("game", "model", "optim", "train"):
        if not isinstance(cfg.get(key), dict):
            cfg[key] = {}
    for net in ("g", "d"):
        if not isinstance(cfg["optim"].get(net), dict):
            cfg["optim"][net] = {}
        lr = cfg["optim"][net].get("lr")
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
            cfg["optim"][net].pop("lr", None)
    return cfg


def diagnose_final(
    metrics: dict[str, float], floor: dict[str, float], thresholds: Thresholds = THRESHOLDS
) -> dict[str, Any]:
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
    return {
        "verdict": verdict,
        "title": "healthy / converging" if verdict == HEALTHY else STATES[verdict],
        "periods": [{"state": "collapse", "title": STATES["collapse"], "start": None, "end": None, "evidence": why}]
        if why
        else [],
        "remedies": {},
        "missing": ["the training log (not kept)"],
    }


def format_diagnosis(d: dict[str, Any]) -> str:
    """The diagnosis as the text `ganforge doctor` prints: verdict, timeline, evidence, what to try."""
    lines = [
        f"{d.get('run', '')}: {d['title'].upper()}"
        + (f" (run {d['status']} at step {d['steps']:,} of {d['total_steps']:,})" if d.get("status") else "")
    ]
    if not d["periods"]:
        lines.append(
            "  no state was entered: every signal stayed within the thresholds measured on `ganforge bench doctor`."
        )
    else:
        lines.append("timeline:")
        for p in d["periods"]:
            end = "end" if p["end"] is None else f"step {p['end']:,}"
            span = f"step {p['start']:,} - {end}" if p["start"] is not None else "final evaluation"
            lines.append(
                f"  {span}: {p['title']}" + (" (a symptom, not the cause)" if p.get("symptom_of_another") else "")
            )
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
