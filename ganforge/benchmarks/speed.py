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
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__
from ..games import build_game
from ..models import build_discriminator, build_generator
from ..training import hardware
from ..training.context import TrainContext
from ..training.precision import DTYPES, Precision

SHAPE = (3, 32, 32)
Z_DIM = 100


def _nets(channels_last: bool, device: torch.device) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    G = build_generator("dcgan", Z_DIM, SHAPE, {"width": 64}).to(device)
    D = build_discriminator("dcgan", SHAPE, {"width": 64}).to(device)
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    return G, D


def _adam(net: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))


CPU = torch.device("cpu")


def plain_step_fn(batch_size: int, device: torch.device = CPU) -> Callable[[], None]:
    """The same DCGAN step written in plain PyTorch (fp32, NCHW): the baseline of the ratio."""
    G, D = _nets(False, device)
    og, od = _adam(G), _adam(D)
    real = torch.rand(batch_size, *SHAPE, device=device) * 2 - 1

    def step() -> None:
        z = torch.randn(batch_size, Z_DIM, device=device)
        with torch.no_grad():
            fake = G(z)
        d_loss = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        od.zero_grad(set_to_none=True)
        d_loss.backward()
        od.step()
        g_loss = F.softplus(-D(G(torch.randn(batch_size, Z_DIM, device=device)))).mean()
        og.zero_grad(set_to_none=True)
        g_loss.backward()
        og.step()

    return step


def ganforge_step_fn(
    batch_size: int, precision: str, channels_last: bool, compile: bool, device: torch.device = CPU
) -> Callable[[], object]:
    """One ganforge standard-game step with the given precision / memory format / compilation."""
    G, D = _nets(channels_last, device)
    real = torch.rand(batch_size, *SHAPE, device=device) * 2 - 1
    # torch.compile of a Module gives an OptimizedModule (a Module); its annotation says only a callable.
    Gr, Dr = (cast(nn.Module, torch.compile(G)), cast(nn.Module, torch.compile(D))) if compile else (G, D)
    ctx = TrainContext(
        Gr,
        Dr,
        _adam(G),
        _adam(D),
        Precision(precision, device),
        device,
        batch_size,
        Z_DIM,
        lambda: (real, None),
        torch.Generator().manual_seed(0),
        channels_last=channels_last,
    )
    game = build_game("standard", "non_saturating", {}, 1, {})
    return lambda: game.step(ctx)


def step_flops(batch_size: int) -> int:
    """FLOPs of one fp32 training step, counted by torch's FlopCounterMode (on the CPU, one step)."""
    from torch.utils.flop_counter import FlopCounterMode

    fn = plain_step_fn(batch_size)
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_flops_per_s(
    dtype: torch.dtype, device: torch.device = CPU, budget_s: float = 1.0, max_n: int = 4096
) -> tuple[float, int]:
    """(FLOP/s, size) of a square matmul in `dtype`: the machine's practical peak, measured in bounded time.

    The size doubles from 256 while one product takes under budget_s / 8, so a slow dtype is measured on a
    small matrix instead of taking minutes; the repeats fit in about budget_s.
    """
    n, one = 256, 0.0
    while True:
        a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
        a @ b  # warm-up (kernel selection, allocation)
        _sync(device)
        t = time.perf_counter()
        a @ b
        _sync(device)
        one = time.perf_counter() - t
        if one * 8 > budget_s or n >= max_n:
            break
        n *= 2
    times = []
    for _ in range(max(1, min(5, int(budget_s / max(one, 1e-9))))):
        t = time.perf_counter()
        a @ b
        _sync(device)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times), n


def time_fn(
    fn: Callable[[], object],
    steps: int,
    repeats: int,
    warmup: int,
    device: torch.device = CPU,
    budget_s: float | None = None,
) -> list[float]:
    """Seconds per step for each repeat, after `warmup` untimed steps; `budget_s` caps steps x repeats."""
    for _ in range(max(1, warmup)):
        t = time.perf_counter()
        fn()
        _sync(device)
        first = time.perf_counter() - t
    if budget_s is not None:
        steps = max(1, min(steps, int(budget_s / max(first, 1e-9) / repeats)))
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            fn()
        _sync(device)
        out.append((time.perf_counter() - t) / steps)
    return out


def capability(device: torch.device) -> dict[str, Any]:
    """What the device computes natively: the facts the `auto` settings are decided from."""
    info: dict[str, Any] = {
        "device": str(device),
        "cpu_capability": hardware.cpu_capability(),
        "native_bf16": hardware.cpu_has_native_bf16(),
    }
    if device.type == "cuda":
        info.update(
            gpu=torch.cuda.get_device_name(device),
            cuda_bf16=hardware.cuda_bf16_supported(),
            cuda_capability=".".join(map(str, hardware.cuda_capability())),
        )
    return info


def _skip_reason(precision: str, device: torch.device) -> str | None:
    """Why a precision cannot run natively on `device` (None: it can)."""
    if device.type == "cpu":
        if precision == "bf16" and not hardware.cpu_has_native_bf16():
            return (
                f"this CPU has no native bf16 ({hardware.cpu_capability()}): emulated bf16 is 10-60x slower than fp32"
            )
        if precision == "fp16":
            return "fp16 is not computed natively on the CPU"
    if device.type == "cuda":
        if precision == "bf16" and not hardware.cuda_bf16_supported():
            return "this GPU has no bf16"
        if precision == "fp16" and hardware.cuda_capability()[0] < 7:
            return "this GPU has no fp16 tensor cores"
    return None


def run_speed_bench(
    out: str | Path,
    batch_size: int = 64,
    steps: int = 10,
    repeats: int = 5,
    compile: bool = True,
    warmup: int = 3,
    device: str = "auto",
    variant_budget_s: float = 12.0,
) -> dict[str, Any]:
    """Time every variant, write OUT (JSON) and OUT with .md (table); return the result dict.

    Variants that `device` cannot compute natively are recorded as skipped with the reason; each
    timed variant is capped at about `variant_budget_s`, so the bench finishes in minutes anywhere.
    """
    dev = hardware.resolve_device(device)
    low = "bf16" if dev.type == "cpu" else ("bf16" if hardware.cuda_bf16_supported() else "fp16")
    auto_prec = hardware.resolve_precision("auto", dev).value
    auto_cl = hardware.resolve_channels_last("auto", dev, str(auto_prec)).value
    variants: list[tuple[str, Callable[[], Callable[[], object]], str]] = [
        ("plain PyTorch fp32 NCHW", lambda: plain_step_fn(batch_size, dev), "fp32"),
        ("ganforge fp32 NCHW", lambda: ganforge_step_fn(batch_size, "fp32", False, False, dev), "fp32"),
        ("ganforge fp32 channels_last", lambda: ganforge_step_fn(batch_size, "fp32", True, False, dev), "fp32"),
        (f"ganforge {low} NCHW", lambda: ganforge_step_fn(batch_size, low, False, False, dev), low),
        (f"ganforge {low} channels_last", lambda: ganforge_step_fn(batch_size, low, True, False, dev), low),
    ]
    if compile:
        cp, cl = str(auto_prec), bool(auto_cl)
        variants.append(
            (
                f"ganforge {cp} {'channels_last' if cl else 'NCHW'} compile",
                lambda: ganforge_step_fn(batch_size, cp, cl, True, dev),
                cp,
            )
        )
    flops = step_flops(batch_size)
    peak: dict[str, float] = {}
    peak_n: dict[str, int] = {}
    skipped_peak: dict[str, str] = {}
    for dtype_name in dict.fromkeys(["fp32", low]):
        why = _skip_reason(dtype_name, dev)
        if why:
            skipped_peak[dtype_name] = why
            continue
        peak[dtype_name], peak_n[dtype_name] = matmul_flops_per_s(DTYPES[dtype_name], dev)
    rows: list[dict[str, Any]] = []
    for name, make, dtype in variants:
        why = _skip_reason(dtype, dev)
        if why:
            print(f"skipping {name}: {why}", flush=True)
            rows.append({"variant": name, "skipped": why})
            continue
        print(f"timing {name} ...", flush=True)
        try:
            per_step = time_fn(
                make(), steps, repeats, warmup + (5 if "compile" in name else 0), dev, budget_s=variant_budget_s
            )
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
                "auto": name == f"ganforge {auto_prec} {'channels_last' if auto_cl else 'NCHW'}",
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
        f"{warmup} warm-up steps, {repeats} repeats x up to {steps} steps (capped at about {variant_budget_s:.0f} s "
        "per variant), median; images/s = real images per second; matmul peak: a square matmul whose size "
        "doubles from 256 while one product takes under 1/8 s",
        "settings": {
            "batch_size": batch_size,
            "steps": steps,
            "repeats": repeats,
            "warmup": warmup,
            "compile": compile,
            "device": str(dev),
        },
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(),
            **capability(dev),
        },
        "auto": {"precision": auto_prec, "channels_last": auto_cl},
        "versions": {"torch": torch.__version__, "ganforge": __version__, "python": platform.python_version()},
        "step_gflops": flops / 1e9,
        "matmul_gflops_per_s": {k: v / 1e9 for k, v in peak.items()},
        "matmul_size": peak_n,
        "matmul_skipped": skipped_peak,
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
    m = result["machine"]
    hw = m.get("gpu") or f"CPU {m.get('cpu_capability', '?')}, native bf16: {'yes' if m.get('native_bf16') else 'no'}"
    lines = [
        f"DCGAN 32x32 training step, batch {result['settings']['batch_size']}, on {result['settings'].get('device', 'cpu')} "
        f"({hw}), {m['threads']} threads, torch {result['versions']['torch']}; "
        f"one step = {result['step_gflops']:.2f} GFLOP; matmul peak "
        + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in result["matmul_gflops_per_s"].items())
        + "".join(f"; {k} not measured ({why})" for k, why in result.get("matmul_skipped", {}).items()),
        "",
        "| variant | images/s (median) | ms/step | vs plain fp32 | of matmul peak |",
        "|---|---|---|---|---|",
    ]
    for r in result["variants"]:
        if "skipped" in r:
            lines.append(f"| {r['variant']} | skipped: {r['skipped']} | | | |")
        elif "error" in r:
            lines.append(f"| {r['variant']} | failed: {r['error'][:80]} | | | |")
        else:
            name = f"**{r['variant']}** (what `auto` picks)" if r.get("auto") else r["variant"]
            lines.append(
                f"| {name} | {r['images_per_s']:.0f} | {r['step_ms']:.1f} | {r['ratio_vs_plain_fp32']:.2f}x | "
                f"{100 * r['matmul_fraction']:.0f}% ({r['matmul_dtype']}) |"
            )
    return "\n".join(lines) + "\n"
