"""Training-health diagnosis: named states with evidence and remedies, live in the trainer and after a run.

rules.py (states, thresholds, remedies) <- engine.py (the incremental Doctor) <- diagnose.py (run folders, text).
"""

from .diagnose import diagnose_final, diagnose_records, diagnose_run, format_diagnosis
from .engine import Doctor, Period
from .rules import HEALTHY, STATES, THRESHOLDS, Thresholds, remedies

__all__ = [
    "HEALTHY",
    "STATES",
    "THRESHOLDS",
    "Doctor",
    "Period",
    "Thresholds",
    "diagnose_final",
    "diagnose_records",
    "diagnose_run",
    "format_diagnosis",
    "remedies",
]
