"""The in-memory dataset every loader returns.

Images are kept as uint8 (N, C, H, W) at their final size and scaled to [-1, 1] only when a batch is
taken. Points are kept as float32 (N, D) in their native coordinates, because the mixture benchmarks'
standard deviations and quality thresholds are defined in those coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from ..errors import DataError


def to_float(x: Tensor) -> Tensor:
    """Scale uint8 image values 0..255 to float32 in [-1, 1] (`x / 127.5 - 1`)."""
    return x.to(torch.float32) / 127.5 - 1.0


@dataclass(eq=False)
class ArrayDataset:
    """A whole dataset held in one tensor, with optional integer labels and a JSON-able description."""

    name: str
    kind: Literal["image", "points"]
    x: Tensor
    y: Tensor | None = None
    num_classes: int = 0
    class_names: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind == "image":
            if self.x.dtype != torch.uint8 or self.x.dim() != 4:
                raise DataError(
                    f"dataset {self.name!r}: images must be a uint8 tensor (N, C, H, W), "
                    f"got {self.x.dtype} with shape {tuple(self.x.shape)}"
                )
        elif self.kind == "points":
            if self.x.dtype != torch.float32 or self.x.dim() != 2:
                raise DataError(
                    f"dataset {self.name!r}: points must be a float32 tensor (N, D), "
                    f"got {self.x.dtype} with shape {tuple(self.x.shape)}"
                )
        else:
            raise DataError(f"dataset {self.name!r}: kind must be 'image' or 'points', got {self.kind!r}")
        if len(self.x) == 0:
            raise DataError(f"dataset {self.name!r} is empty")
        if self.y is not None:
            if self.y.dtype != torch.int64 or self.y.shape != (len(self.x),):
                raise DataError(
                    f"dataset {self.name!r}: labels must be int64 of shape ({len(self.x)},), "
                    f"got {self.y.dtype} with shape {tuple(self.y.shape)}"
                )

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample: (C, H, W) for images, (D,) for points."""
        return tuple(int(s) for s in self.x.shape[1:])

    def get(self, idx: Tensor) -> tuple[Tensor, Tensor | None]:
        """The samples at `idx` as float32 (images in [-1, 1], points as stored) and their labels or None."""
        x = self.x[idx]  # indexing with a LongTensor copies, so callers may modify the batch
        if self.kind == "image":
            x = to_float(x)
        y = None if self.y is None else self.y[idx]
        return x, y

    @staticmethod
    def to_float(x: Tensor) -> Tensor:
        """Scale uint8 image values 0..255 to float32 in [-1, 1]."""
        return to_float(x)

    def subset(self, idx: Tensor) -> ArrayDataset:
        """A dataset of the samples at `idx` (copied), e.g. the labelled part of a semi-supervised run."""
        info = dict(self.info)
        info["n"] = len(idx)
        return ArrayDataset(
            name=self.name,
            kind=self.kind,
            x=self.x[idx].clone(),
            y=None if self.y is None else self.y[idx].clone(),
            num_classes=self.num_classes,
            class_names=list(self.class_names),
            info=info,
        )

    def head(self, limit: int) -> ArrayDataset:
        """A dataset holding only the first `limit` samples (all of them if there are fewer)."""
        if limit >= len(self):
            return self
        info = dict(self.info)
        info["n"] = limit
        return ArrayDataset(
            name=self.name,
            kind=self.kind,
            x=self.x[:limit].clone(),
            y=None if self.y is None else self.y[:limit].clone(),
            num_classes=self.num_classes,
            class_names=list(self.class_names),
            info=info,
        )
