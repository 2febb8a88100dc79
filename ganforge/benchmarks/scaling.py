"""`ganforge bench speed --nproc N`: data-parallel throughput of the DCGAN step on 1 and N processes.

Protocol: the speed bench's DCGAN (3x32x32, width 64, z 100, non-saturating loss, Adam, synthetic
data) at the precision and memory format `auto` picks, stepped by ganforge's standard game through
the same TrainContext a distributed run uses (gradients averaged across ranks before each update).
The global batch (--batch) is split across the processes, as a recipe's batch is (strong scaling).
Each configuration runs under torchrun in a fresh process group; after warm-up, each repeat times
`steps` steps, and the median over repeats is reported as images/s of the global batch.

Scaling efficiency = images/s on N processes / (images/s on 1 process x k), where k is the number of
devices the N processes add: N on GPUs (one GPU per process), 1 on a CPU, where the processes split
the same cores between them (so there, efficiency < 1 is the cost of processes over threads).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from ..errors import GanforgeError
from ..training import hardware


def _worker(out: str, batch_size: int, steps: int, repeats: int, warmup: int, device: str) -> None:
    """One rank of a timed configuration (run by torchrun); rank 0 writes the timing to `out`."""
    from ..games import build_game
    from ..training import distributed
    from ..training.context import TrainContext
    from ..training.precision import Precision
    from .speed import SHAPE, Z_DIM, _adam, _nets, time_fn

    d = distributed.from_env()
    distributed.init(d)
    dev = hardware.resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", d.local_rank % torch.cuda.device_count())
    prec = str(hardware.resolve_precision("auto", dev).value)
    cl = bool(hardware.resolve_channels_last("auto", dev, prec).value)
    G, D = _nets(cl, dev)
    distributed.broadcast_state([G, D], d, params=True)
    local = batch_size // d.world
    real = torch.rand(local, *SHAPE, device=dev) * 2 - 1
    ctx = TrainContext(
        G,
        D,
        _adam(G),
        _adam(D),
        Precision(prec, dev),
        dev,
        batch_size,
        Z_DIM,
        lambda *a: (real, None),
        torch.Generator().manual_seed(0),
        channels_last=cl,
        dist=d,
    )
    game = build_game("standard", "non_saturating", {}, 1, {})
    per_step = time_fn(lambda: game.step(ctx), steps, repeats, warmup, dev)
    # Every rank's median: the slowest rank sets the pace of a synchronous step.
    med = max(distributed.all_gather_objects(statistics.median(per_step), d))
    if d.main:
        Path(out).write_text(
            json.dumps(
                {
                    "processes": d.world,
                    "threads": torch.get_num_threads(),
                    "precision": prec,
                    "channels_last": cl,
                    "device": str(dev),
                    "step_s": med,
                    "step_s_repeats": per_step,
                }
            )
        )
    distributed.shutdown()


def _measure(n: int, batch_size: int, steps: int, repeats: int, warmup: int, device: str, tmp: Path) -> dict[str, Any]:
    out = tmp / f"scaling_{n}.json"
    out.unlink(missing_ok=True)
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(max(1, hardware.available_cores() // n))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes",
        "1",
        "--nproc_per_node",
        str(n),
        "-m",
        "ganforge.benchmarks.scaling",
        str(out),
        str(batch_size),
        str(steps),
        str(repeats),
        str(warmup),
        device,
    ]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0 or not out.is_file():
        raise GanforgeError(
            f"the {n}-process timing failed: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}"
        )
    return json.loads(out.read_text())


def run_scaling_bench(
    out: str | Path,
    nproc: int,
    batch_size: int = 64,
    steps: int = 10,
    repeats: int = 5,
    warmup: int = 3,
    device: str = "auto",
) -> dict[str, Any]:
    """Time 1 and `nproc` processes; write OUT (JSON) and OUT with .md (table); return the result."""
    if nproc < 2:
        raise GanforgeError(f"--nproc must be at least 2 to measure scaling, got {nproc}.")
    if batch_size % nproc:
        raise GanforgeError(f"--batch {batch_size} must split evenly across {nproc} processes.")
    dev = hardware.resolve_device(device)
    if dev.type == "cuda" and torch.cuda.device_count() < nproc:
        raise GanforgeError(f"--nproc {nproc} needs one GPU per process; this machine has {torch.cuda.device_count()}.")
    import tempfile

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ganforge-scaling-") as tmp:
        for n in (1, nproc):
            print(f"timing {n} process(es) ...", flush=True)
            m = _measure(n, batch_size, steps, repeats, warmup, device, Path(tmp))
            m["images_per_s"] = batch_size / m["step_s"]
            rows.append(m)
    devices_added = nproc if dev.type == "cuda" else 1
    speedup = rows[1]["images_per_s"] / rows[0]["images_per_s"]
    result = {
        "benchmark": "speed-scaling",
        "protocol": (__doc__ or "").split("Protocol: ", 1)[-1].strip(),
        "settings": {
            "global_batch": batch_size,
            "steps": steps,
            "repeats": repeats,
            "warmup": warmup,
            "device": str(dev),
            "nproc": nproc,
        },
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cores": hardware.available_cores(),
            "gpus": torch.cuda.device_count(),
            "cpu_capability": hardware.cpu_capability(),
            "torch": torch.__version__,
        },
        "rows": rows,
        "speedup": speedup,
        "devices_added": devices_added,
        "scaling_efficiency": speedup / devices_added,
    }
    out.write_text(json.dumps(result, indent=2))
    lines = [
        f"# Data-parallel scaling: DCGAN step, global batch {batch_size}, {dev.type}",
        "",
        "| processes | threads each | precision | images/s |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['processes']} | {r['threads']} | {r['precision']} | {r['images_per_s']:.1f} |" for r in rows]
    lines += [
        "",
        f"Speedup {speedup:.2f}x; scaling efficiency {result['scaling_efficiency']:.0%} "
        f"(speedup / {devices_added} device(s) added: "
        + ("one GPU per process)." if dev.type == "cuda" else "the processes share this machine's cores)."),
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[2:]), flush=True)
    print(f"results: {out} and {out.with_suffix('.md')}")
    return result


if __name__ == "__main__":
    _worker(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
