"""Dataset declarations (has_test_split, is_mixture), loading from one DataConfig, `limit` applied once."""

from __future__ import annotations

import pytest
import torch

from ganforge.config import DataConfig
from ganforge.data import DATASETS, ArrayDataset, dataset_spec, has_test_split, is_mixture, load_data, load_dataset
from ganforge.errors import ConfigError


def test_datasets_declare_test_splits_and_mixtures() -> None:
    assert [n for n in DATASETS if has_test_split(n)] == [
        "cifar10",
        "digits",
        "fashion_mnist",
        "mnist",
        "stacked",
        "unpaired",
    ]
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
    # Before, every loader cut to `limit` and load_dataset cut again.
    calls = []
    subset = ArrayDataset.subset

    def counted(self: ArrayDataset, idx) -> ArrayDataset:
        calls.append(len(idx))
        return subset(self, idx)

    monkeypatch.setattr(ArrayDataset, "subset", counted)
    ds = load_dataset(name, limit=25, n_points=400)
    assert len(ds) == 25 and ds.info["limit"] == 25
    assert calls == ([] if loader_cuts else [25])


@pytest.mark.parametrize("name", ["digits", "ring"])
def test_limit_draws_a_seeded_class_balanced_subset(name: str) -> None:
    full = load_dataset(name, n_points=800, image_size=8, seed=1)
    part = load_dataset(name, n_points=800, image_size=8, limit=40, seed=1)
    k = full.num_classes
    counts = torch.bincount(part.y, minlength=k)
    assert len(part) == 40 and counts.max() - counts.min() <= 1  # 40 over 10 (digits) or 8 (ring) classes
    assert (part.x.flatten(1)[:, None] == full.x.flatten(1)[None]).all(-1).any(1).all()  # a subset of the data
    again = load_dataset(name, n_points=800, image_size=8, limit=40, seed=1)
    assert torch.equal(part.x, again.x)  # seeded: the same images every time
    assert not torch.equal(part.x, full.x[:40])  # not simply the first ones
    assert torch.equal(load_dataset(name, n_points=800, image_size=8, limit=5000, seed=1).x, full.x)


def test_limit_order_is_balanced_and_seeded_and_handles_small_classes() -> None:
    from ganforge.data.subsets import limit_indices, limit_order

    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 3)
    order = limit_order(len(y), y)
    assert sorted(order.tolist()) == list(range(len(y)))  # a permutation
    assert torch.bincount(y[order[:9]]).tolist() == [3, 3, 3]
    assert torch.bincount(y[order[:21]], minlength=3).tolist() == [9, 9, 3]  # class 2 ran out: the others go on
    assert torch.equal(order, limit_order(len(y), y)) and not torch.equal(order, limit_order(len(y), y, seed=1))
    assert limit_indices(10, None) is None and limit_indices(10, 10) is None
    idx = limit_indices(100, 7)
    assert len(idx) == 7 and torch.equal(idx, idx.sort().values) and len(set(idx.tolist())) == 7
