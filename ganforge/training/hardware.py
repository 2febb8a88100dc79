"""What this machine can do, and what `auto` resolves to: device, precision, memory format, threads.

Defaults are decided by capability, never by the machine the code was written on: bf16 autocast
is about 2x faster than fp32 on CPUs that compute bf16 natively (AVX-512-BF16 / AMX) and 10-60x
slower on the others (AVX2 only), where oneDNN emulates it.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then the CPU; anything else is passed to torch.device."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device {name!r} is not a device; use auto, cpu, cuda or cuda:N.") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device is {name!r} but CUDA is not available here; use auto or cpu.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                f"(cuda:0..cuda:{torch.cuda.device_count() - 1})."
            )
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device is {name!r} but Apple MPS is not available here; use auto or cpu.")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {name!r} is not supported; use auto, cpu, cuda, cuda:N or mps.")
    return dev


def cpu_capability() -> str:
    """The SIMD level torch dispatches its CPU kernels to (e.g. AVX2, AVX512)."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # very old or exotic builds
        return "unknown"


def cpu_has_native_bf16() -> bool:
    """True when oneDNN computes bf16 in hardware (AVX-512-BF16 or AMX); otherwise bf16 is emulated and slow."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def cuda_bf16_supported() -> bool:
    """True when the current CUDA device has bf16 tensor cores (Ampere or newer)."""
    try:
        return bool(torch.cuda.is_bf16_supported())
    except Exception:
        return False


def cuda_capability() -> tuple[int, int]:
    """The current CUDA device's compute capability, (0, 0) without one."""
    try:
        return tuple(torch.cuda.get_device_capability())  # type: ignore[return-value]
    except Exception:
        return (0, 0)


@dataclass(frozen=True)
class Choice:
    """A resolved setting and the reason for it (printed once at start, recorded in run.json)."""

    value: object
    reason: str


def resolve_precision(requested: str, device: torch.device, is_image: bool = True) -> Choice:
    """`auto` -> bf16 / fp16 / fp32 by what `device` computes fast; an explicit choice is kept (with a warning if slow)."""
    if requested not in PRECISIONS:
        raise ConfigError(f"unknown precision {requested!r}. Valid choices: {', '.join(PRECISIONS)}.")
    if requested != "auto":
        if requested == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
            warnings.warn(
                f"train.precision=bf16 on a CPU without native bf16 ({cpu_capability()}): bf16 is emulated here and "
                "runs many times (10-60x) slower than fp32. Use train.precision=auto (or fp32) to train at full speed.",
                stacklevel=2,
            )
        if requested == "fp16" and device.type == "cpu":
            warnings.warn(
                "train.precision=fp16 on the CPU is emulated and slow; use auto (bf16 where native, else fp32).",
                stacklevel=2,
            )
        return Choice(requested, "set explicitly")
    if not is_image:
        # Points in R^2 need more than bf16's 8-bit mantissa (the toy modes have std 0.01 at radius 1),
        # and MLPs this small gain nothing from lower precision.
        return Choice("fp32", "2-D point data: bf16's 8-bit mantissa is coarser than the mixtures' spread")
    if device.type == "cuda":
        if cuda_bf16_supported():
            return Choice("bf16", "this GPU computes bf16 natively")
        major, _ = cuda_capability()
        if major >= 7:
            return Choice("fp16", "this GPU has fp16 tensor cores but no bf16 (fp16 with a gradient scaler)")
        return Choice("fp32", "this GPU has no tensor cores")
    if device.type == "cpu":
        if cpu_has_native_bf16():
            return Choice("bf16", f"this CPU computes bf16 natively ({cpu_capability()} with AVX-512-BF16/AMX)")
        return Choice(
            "fp32", f"this CPU has no native bf16 ({cpu_capability()}); emulated bf16 would be many times slower"
        )
    return Choice("fp32", f"mixed precision is not tuned for {device.type}")


def resolve_channels_last(requested: bool | str, device: torch.device, precision: str, is_image: bool = True) -> Choice:
    """`auto` -> channels_last where it is faster: oneDNN on the CPU, tensor cores on a GPU in bf16/fp16."""
    if requested != "auto":
        return Choice(bool(requested) and is_image and device.type != "mps", "set explicitly")
    if not is_image:
        return Choice(False, "not image data")
    if device.type == "cpu":
        # Measured with `ganforge bench speed`: oneDNN's NHWC convolutions are 1.15-1.2x faster in fp32 and bf16.
        return Choice(True, "oneDNN's NHWC convolutions are faster on the CPU")
    if device.type == "cuda":
        if precision in ("bf16", "fp16") and cuda_capability()[0] >= 7:
            return Choice(True, "tensor-core convolutions want NHWC in mixed precision")
        return Choice(False, "fp32 on this GPU: NCHW is as fast")
    return Choice(False, f"NHWC is not tuned for {device.type}")


# --------------------------------------------------------------------------- memory


def available_memory(device: torch.device) -> int | None:
    """Bytes that can still be allocated on `device` (None: unknown)."""
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except Exception:
            return None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(build: Callable[[], torch.nn.Module], what: str, device: torch.device, copies: int = 5) -> None:
    """Build `build()` on the meta device (no memory) and refuse it if `copies` float32 copies of its parameters
    (weights, gradients, two Adam moments, an EMA) would not fit in the device's free memory."""
    with torch.device("meta"):
        net = build()
    need = sum(p.numel() for p in net.parameters()) * 4 * copies
    free = available_memory(device)
    if free is not None and need > free:
        raise ConfigError(
            f"the {what} has {need // (4 * copies):,} parameters: training it needs about "
            f"{need / 2**30:.1f} GiB for weights, gradients and optimiser state, but only "
            f"{free / 2**30:.1f} GiB is free on {device}. Reduce model.z_dim or the network's width."
        )


# --------------------------------------------------------------------------- threads


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup CPU quota (containers)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:  # cgroup v2: "max 100000" or "200000 100000"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def configure_threads(requested: int | None, share: int = 1) -> Choice:
    """Set torch's intra-op threads: the recipe's `train.threads`, else OMP_NUM_THREADS, else the available cores.

    `share` processes of one distributed run on this machine split the cores between them.
    """
    if requested:
        torch.set_num_threads(requested)
        return Choice(requested, "set explicitly")
    if os.environ.get("OMP_NUM_THREADS"):
        return Choice(torch.get_num_threads(), "OMP_NUM_THREADS")
    n = max(1, available_cores() // max(1, share))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    if share > 1:
        return Choice(n, f"the cores this process may run on, split between {share} processes")
    return Choice(n, "the cores this process may run on")


def _torch_processes() -> list[int]:
    """PIDs of other processes that have libtorch loaded (same user's view of /proc)."""
    me = os.getpid()
    family = {me, os.getppid()}
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit() or int(entry.name) in family:
            continue
        try:
            with open(entry / "maps", "rb") as f:
                if b"libtorch_cpu" in f.read():
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def busy_torch_processes(window: float = 0.3, threshold: float = 0.5) -> list[int]:
    """Other torch processes using more than `threshold` of a core over `window` seconds (Linux; else [])."""
    pids = _torch_processes()
    if not pids:
        return []
    before = {p: _cpu_seconds(p) for p in pids}
    time.sleep(window)
    busy = []
    for p, t0 in before.items():
        t1 = _cpu_seconds(p)
        if t0 is not None and t1 is not None and (t1 - t0) / window > threshold:
            busy.append(p)
    return busy


def warn_if_cores_shared(device: torch.device) -> list[int]:
    """Warn once when other busy torch processes compete for this process's CPU cores."""
    if device.type != "cpu":
        return []
    busy = busy_torch_processes()
    if busy:
        warnings.warn(
            f"{len(busy)} other busy torch process(es) share this machine's CPU cores (PID {', '.join(map(str, busy))}). "
            "Two torch processes on the same cores can slow each other down many-fold: run one at a time, or split "
            "the cores with train.threads=N in each.",
            stacklevel=2,
        )
    return busy
