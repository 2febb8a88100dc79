"""The reference-statistics cache: computed once per (images, extractor, settings), never trusted when unreadable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import ganforge.metrics.accumulate as acc
from ganforge.data import load_dataset
from ganforge.metrics.evaluate import Evaluator, dataset_batches
from ganforge.metrics.refcache import cache_dir


def _score(data, metrics: str = "fd,pr,coverage,is", heldout=None, store_max: int = 100) -> dict:
    ev = Evaluator(data, metrics, n=100, store_max=store_max, heldout=heldout)
    return ev.evaluate(dataset_batches(data, 100), 100, "first 100 images")


def _files() -> list[Path]:
    root = cache_dir()
    return sorted(root.glob("*.pt")) if root is not None and root.is_dir() else []


def _no_extraction(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count reference computations from now on (samples still go through accumulate, with n = 100)."""
    calls: list[int] = []
    real = acc.accumulate

    def counting(batches, extractor, n_expected, *a, **k):
        if n_expected != 100:
            calls.append(n_expected)
        return real(batches, extractor, n_expected, *a, **k)

    monkeypatch.setattr(acc, "accumulate", counting)
    return calls


def test_a_second_evaluation_reads_the_reference_from_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_dataset("digits", image_size=16, limit=300)
    first = _score(data)
    assert len(_files()) == 1
    calls = _no_extraction(monkeypatch)
    again = _score(load_dataset("digits", image_size=16, limit=300))  # a new Evaluator, a new dataset object
    assert calls == [] and again["metrics"] == first["metrics"]
    assert again["protocol"]["reference"] == first["protocol"]["reference"]


def test_other_images_settings_or_heldout_are_other_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_dataset("digits", image_size=16, limit=300)
    _score(data)
    calls = _no_extraction(monkeypatch)
    flipped = load_dataset("digits", image_size=16, limit=300)
    flipped.x[0, 0, 0, 0] ^= 1  # one pixel differs
    _score(flipped)
    _score(data, store_max=50)  # keeps fewer features for precision / recall
    _score(data, metrics="fd,memorisation", heldout=load_dataset("digits", image_size=16, split="test", limit=50))
    assert calls == [300, 300, 300, 50] and len(_files()) == 4
    _score(data, metrics="fd")  # the same statistics as for "fd,pr,coverage,is": read, not computed
    assert len(calls) == 4


def test_cache_off_and_unreadable_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = load_dataset("digits", image_size=16, limit=200)
    monkeypatch.setenv("GANFORGE_CACHE", "off")
    assert cache_dir() is None
    reference = _score(data)["metrics"]
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "c"))
    assert not (tmp_path / "c").exists() or not _files()
    _score(data)
    (f,) = _files()
    f.write_bytes(f.read_bytes()[:100])  # cut short by a kill
    with pytest.warns(UserWarning, match="unreadable reference-statistics cache"):
        assert _score(data)["metrics"] == reference
    assert torch.load(f, weights_only=True)["__class__"] == "Reference"  # replaced by a whole one
    # A file that names a class the cache does not build is not ours: ignored, not executed.
    torch.save({"__class__": "os.system", "fields": {}}, f)
    with pytest.warns(UserWarning, match="unreadable"):
        assert _score(data)["metrics"] == reference


def test_a_read_only_cache_costs_only_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = tmp_path / "file"  # root ignores permissions: a file where the folder should be fails for everyone
        target.write_text("not a folder")
        monkeypatch.setenv("GANFORGE_CACHE", str(target))
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        monkeypatch.setenv("GANFORGE_CACHE", str(ro))
    with pytest.warns(UserWarning, match="could not store reference statistics"):
        m = _score(load_dataset("digits", image_size=16, limit=200))["metrics"]
    assert m["fd_digits"] >= 0 and not _files()
