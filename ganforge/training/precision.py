"""Mixed precision: autocast contexts and per-network gradient scalers (fp16 only)."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from ..errors import ConfigError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """Autocast for `precision` on `device`; fp16 also gets a GradScaler per network."""

    def __init__(self, precision: str, device: torch.device) -> None:
        if precision not in DTYPES:
            raise ConfigError(f"unknown precision {precision!r}. Valid choices: fp32, bf16, fp16.")
        self.name = precision
        self.dtype = DTYPES[precision]
        self.device = device
        self.enabled = precision != "fp32"

    def autocast(self) -> Any:
        """The autocast context for forward passes (a no-op for fp32)."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def make_scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler: active only for fp16, whose narrow range underflows small gradients."""
        return torch.amp.GradScaler(self.device.type, enabled=self.name == "fp16")
