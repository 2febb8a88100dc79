"""Dataset declarations (has_test_split, is_mixture), loading from one DataConfig, `limit` applied once."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ganforge.config import DataConfig
from ganforge.data import DATASETS, ArrayDataset, dataset_spec, has_test_split, is_mixture, load_data, load_dataset
from ganforge.errors import ConfigError


def test_datasets_declare_test_splits_and_mixtures() -> None:
    assert [n for n in DATASETS if has_test_split(n)] == ["cifar10", "digits", "fashion_mnist", "mnist", "stacked", "unpaired"]
    assert [n for n in DATASETS if is_mixture(n)] == ["grid", "ring"]
    assert not has_test_split("no_such_data") and not is_mixture("stacked_digits")
    assert dataset_spec("folder").path and dataset_spec("stacked").takes_base and not dataset_spec("digits").path
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'"):
        dataset_spec("imagenet")


def test_a_dataconfig_and_keywords_load_the_same_data() -> None:
    cfg = DataConfig(name="digits", image_size=12, channels=3, limit=40)
    a = load_dataset(cfg)
    b = load_dataset("digits", image_size=12, channels=3, limit=40)
    c = load_data(cfg, 0)
    assert torch.equal(a.x, b.x) and torch.equal(a.x, c.x) and a.info == b.info
    test = load_dataset(cfg, split="test")
    assert test.info["split"] == "test" and cfg.split == "train"  # the config itself is not changed
    ring = load_dataset(DataConfig(name="ring", n_points=500), seed=3)
    assert torch.equal(ring.x, load_dataset("ring", n_points=500, seed=3).x)
    stacked = load_dataset(DataConfig(name="stacked", base="digits", image_size=16), split="test")
    assert stacked.info["base"] == "digits" and len(stacked) == 360


@pytest.mark.parametrize("name, loader_cuts", [("digits", True), ("ring", False)])
def test_limit_is_applied_once(monkeypatch, name: str, loader_cuts: bool) -> None:
    # Before, every loader cut to `limit` and load_dataset cut again with ArrayDataset.head.
    calls = []
    head = ArrayDataset.head

    def counted(self: ArrayDataset, limit: int) -> ArrayDataset:
        calls.append(limit)
        return head(self, limit)

    monkeypatch.setattr(ArrayDataset, "head", counted)
    ds = load_dataset(name, limit=25, n_points=400)
    assert len(ds) == 25 and ds.info["limit"] == 25
    assert calls == ([] if loader_cuts else [25])


def test_limit_keeps_the_first_samples() -> None:
    full = load_dataset("ring", n_points=300, seed=1)
    part = load_dataset(dataclasses.replace(DataConfig(name="ring", n_points=300), limit=30), seed=1)
    assert torch.equal(part.x, full.x[:30])
