"""The `doctor` command: diagnose run folders from their logs (ganforge.doctor)."""

from __future__ import annotations

import argparse
import json


def cmd_doctor(ns: argparse.Namespace) -> int:
    from ..doctor import HEALTHY, diagnose_run, format_diagnosis

    results = [diagnose_run(r) for r in ns.runs]
    if ns.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
    else:
        print("\n\n".join(format_diagnosis(d) for d in results))
    # 0 when every run is healthy, 1 when a state was diagnosed: scripts can gate on it.
    return 0 if all(d["verdict"] == HEALTHY for d in results) else 1
