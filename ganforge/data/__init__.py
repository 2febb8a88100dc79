"""Datasets for ganforge: 2-D mixtures and point clouds (native coordinates) and images (uint8, served in [-1, 1])."""

from __future__ import annotations

from .dataset import ArrayDataset, to_float
from .images import read_idx
from .loaders import (
    DATASETS,
    DatasetSpec,
    dataset_spec,
    has_test_split,
    is_mixture,
    load_data,
    load_dataset,
)
from .mixtures import mixture_spec
from .resize import resize_images
from .stream import BatchStream

__all__ = [
    "DATASETS",
    "ArrayDataset",
    "BatchStream",
    "DatasetSpec",
    "dataset_spec",
    "has_test_split",
    "is_mixture",
    "load_data",
    "load_dataset",
    "mixture_spec",
    "read_idx",
    "resize_images",
    "to_float",
]
