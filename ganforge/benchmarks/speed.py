"""`ganforge bench speed`: DCGAN training-step throughput at 32x32, fp32/NCHW against the fastest settings.

Protocol (shared/BENCHMARKS.md section 3): the same DCGAN (3x32x32, width 64, z 100, batch 64,
non-saturating loss, Adam) is stepped with synthetic data in each variant; after warm-up, each
repeat times `steps` full training steps (one D and one G update each) and the median images/s
over repeats is reported, as a ratio to the plain-PyTorch fp32/NCHW step timed in the same run.
Images/s counts real images consumed by the discriminator.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__
from ..games import build_game
from ..models import build_discriminator, build_generator
from ..training.context import TrainContext
from ..training.precision import Precision

SHAPE = (3, 32, 32)
Z_DIM = 100


def _nets(channels_last: bool) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    G = build_generator("dcgan", Z_DIM, SHAPE, {"width": 64})
    D = build_discriminator("dcgan", SHAPE, {"width": 64})
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    return G, D


def _adam(net: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))


def plain_step_fn(batch_size: int) -> Callable[[], None]:
    """The same DCGAN step written in plain PyTorch (fp32, NCHW): the baseline of the ratio."""
    G, D = _nets(False)
    og, od = _adam(G), _adam(D)
    real = torch.rand(batch_size, *SHAPE) * 2 - 1

    def step() -> None:
        z = torch.randn(batch_size, Z_DIM)
        with torch.no_grad():
            fake = G(z)
        d_loss = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        od.zero_grad(set_to_none=True)
        d_loss.backward()
        od.step()
        g_loss = F.softplus(-D(G(torch.randn(batch_size, Z_DIM)))).mean()
        og.zero_grad(set_to_none=True)
        g_loss.backward()
        og.step()

    return step


def ganforge_step_fn(batch_size: int, precision: str, channels_last: bool, compile: bool) -> Callable[[], None]:
    """One ganforge standard-game step with the given precision / memory format / compilation."""
    G, D = _nets(channels_last)
    real = torch.rand(batch_size, *SHAPE) * 2 - 1
    Gr, Dr = (torch.compile(G), torch.compile(D)) if compile else (G, D)
    ctx = TrainContext(
        Gr, Dr, _adam(G), _adam(D), Precision(precision, torch.device("cpu")), torch.device("cpu"), batch_size,
        Z_DIM, lambda: (real, None), torch.Generator().manual_seed(0), channels_last=channels_last,
    )
    game = build_game("standard", "non_saturating", {}, 1, {})
    return lambda: game.step(ctx)


def step_flops(batch_size: int) -> int:
    """FLOPs of one fp32 training step, counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    fn = plain_step_fn(batch_size)
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def matmul_flops_per_s(dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    """Measured throughput of a large square matmul in `dtype` (the machine's practical peak)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times)


def time_fn(fn: Callable[[], None], steps: int, repeats: int, warmup: int) -> list[float]:
    """Seconds per step for each repeat, after `warmup` untimed steps."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            fn()
        out.append((time.perf_counter() - t) / steps)
    return out


def run_speed_bench(
    out: str | Path, batch_size: int = 64, steps: int = 10, repeats: int = 5, compile: bool = True, warmup: int = 3
) -> dict[str, Any]:
    """Time every variant, write OUT (JSON) and OUT with .md (table); return the result dict."""
    variants: list[tuple[str, Callable[[], Callable[[], None]], str]] = [
        ("plain PyTorch fp32 NCHW", lambda: plain_step_fn(batch_size), "fp32"),
        ("ganforge fp32 NCHW", lambda: ganforge_step_fn(batch_size, "fp32", False, False), "fp32"),
        ("ganforge fp32 channels_last", lambda: ganforge_step_fn(batch_size, "fp32", True, False), "fp32"),
        ("ganforge bf16 NCHW", lambda: ganforge_step_fn(batch_size, "bf16", False, False), "bf16"),
        ("ganforge bf16 channels_last", lambda: ganforge_step_fn(batch_size, "bf16", True, False), "bf16"),
    ]
    if compile:
        variants.append(
            ("ganforge bf16 channels_last compile", lambda: ganforge_step_fn(batch_size, "bf16", True, True), "bf16")
        )
    flops = step_flops(batch_size)
    peak = {"fp32": matmul_flops_per_s(torch.float32), "bf16": matmul_flops_per_s(torch.bfloat16)}
    rows = []
    for name, make, dtype in variants:
        print(f"timing {name} ...", flush=True)
        try:
            per_step = time_fn(make(), steps, repeats, warmup + (5 if "compile" in name else 0))
        except Exception as e:  # e.g. torch.compile without a working compiler: record, don't hide
            rows.append({"variant": name, "error": f"{type(e).__name__}: {e}"[:500]})
            continue
        med = statistics.median(per_step)
        rows.append(
            {
                "variant": name,
                "images_per_s": batch_size / med,
                "images_per_s_repeats": [batch_size / s for s in per_step],
                "step_ms": 1000 * med,
                "matmul_fraction": flops / med / peak[dtype],
                "matmul_dtype": dtype,
            }
        )
    base = rows[0]["images_per_s"]
    for row in rows:
        if "images_per_s" in row:
            row["ratio_vs_plain_fp32"] = row["images_per_s"] / base
    ok = [r for r in rows if "images_per_s" in r]
    best = max(ok, key=lambda r: r["images_per_s"])
    result = {
        "benchmark": "speed",
        "protocol": "DCGAN 3x32x32 width 64, z 100, non-saturating loss, Adam; synthetic data; "
        f"{warmup} warm-up steps, {repeats} repeats x {steps} steps, median; images/s = real images per second",
        "settings": {"batch_size": batch_size, "steps": steps, "repeats": repeats, "warmup": warmup, "compile": compile},
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(),
        },
        "versions": {"torch": torch.__version__, "ganforge": __version__, "python": platform.python_version()},
        "step_gflops": flops / 1e9,
        "matmul_gflops_per_s": {k: v / 1e9 for k, v in peak.items()},
        "variants": rows,
        "fastest": best["variant"],
        "fastest_ratio": best["ratio_vs_plain_fp32"],
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    out.with_suffix(".md").write_text(speed_table(result))
    print(speed_table(result))
    return result


def speed_table(result: dict[str, Any]) -> str:
    """The result as a Markdown table."""
    lines = [
        f"DCGAN 32x32 training step, batch {result['settings']['batch_size']}, "
        f"{result['machine']['threads']} threads, torch {result['versions']['torch']}; "
        f"one step = {result['step_gflops']:.2f} GFLOP; matmul peak "
        + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in result["matmul_gflops_per_s"].items()),
        "",
        "| variant | images/s (median) | ms/step | vs plain fp32 | of matmul peak |",
        "|---|---|---|---|---|",
    ]
    for r in result["variants"]:
        if "error" in r:
            lines.append(f"| {r['variant']} | failed: {r['error'][:80]} | | | |")
        else:
            lines.append(
                f"| {r['variant']} | {r['images_per_s']:.0f} | {r['step_ms']:.1f} | {r['ratio_vs_plain_fp32']:.2f}x | "
                f"{100 * r['matmul_fraction']:.0f}% ({r['matmul_dtype']}) |"
            )
    return "\n".join(lines) + "\n"
