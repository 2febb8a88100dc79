"""`ganforge bench eval-memory`: peak memory of `ganforge eval` as the generated sample count grows.

Each count runs `ganforge eval` in a fresh process and reads that process's own peak resident
set size (getrusage ru_maxrss), so imports and reference statistics are counted identically.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_CHILD = (
    "import resource, sys\n"
    "from ganforge.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    "sys.exit(rc)\n"
)


def run_eval_memory_bench(target: str, counts: list[int], metrics: str, out: str | Path) -> dict[str, Any]:
    """Peak RSS and wall time of `ganforge eval TARGET --n N` for each N; writes JSON and a Markdown table."""
    rows = []
    for n in counts:
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, "eval", target, "--metrics", metrics, "--n", str(n)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"ganforge eval --n {n} failed:\n{proc.stderr[-2000:]}")
        kb = int(next(line.split()[1] for line in proc.stdout.splitlines() if line.startswith("MAXRSS_KB")))
        rows.append({"n": n, "peak_rss_mib": kb / 1024, "wall_s": time.perf_counter() - t})
        print(f"n={n}: peak RSS {kb / 1024:.0f} MiB, {rows[-1]['wall_s']:.1f} s", flush=True)
    base = rows[0]["peak_rss_mib"]
    for r in rows:
        r["vs_first"] = r["peak_rss_mib"] / base
    result = {
        "benchmark": "eval-memory",
        "target": target,
        "metrics": metrics,
        "rows": rows,
        "max_relative_growth": max(r["vs_first"] for r in rows) - 1,
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    table = ["| generated samples | peak RSS (MiB) | vs first | wall (s) |", "|---|---|---|---|"]
    table += [f"| {r['n']} | {r['peak_rss_mib']:.0f} | {r['vs_first']:.3f} | {r['wall_s']:.1f} |" for r in rows]
    out.with_suffix(".md").write_text(f"`ganforge eval {target} --metrics {metrics}`\n\n" + "\n".join(table) + "\n")
    return result
