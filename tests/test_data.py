"""Tests for ganforge.data: mixtures, points, digits, IDX/Fashion-MNIST discovery, folders and BatchStream."""

from __future__ import annotations

import functools
import gzip
import json
import math
import operator
import os
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import DATASETS, ArrayDataset, BatchStream, load_dataset, mixture_spec, read_idx, resize_images
from ganforge.errors import ConfigError, DataError

# ---------------------------------------------------------------- mixtures


def test_ring_spec_has_8_distinct_centres_on_unit_circle():
    centres, std = mixture_spec("ring")
    assert centres.shape == (8, 2) and centres.dtype == torch.float32
    assert std == 0.01
    for i, (cx, cy) in enumerate(centres.tolist()):
        angle = i * 2 * math.pi / 8
        assert cx == pytest.approx(math.cos(angle), abs=1e-6)
        assert cy == pytest.approx(math.sin(angle), abs=1e-6)
    assert torch.cdist(centres, centres).add(torch.eye(8)).min() > 0.7  # all distinct


def test_grid_spec_has_25_distinct_centres():
    centres, std = mixture_spec("grid")
    assert centres.shape == (25, 2) and std == 0.05
    got = {(round(x), round(y)) for x, y in centres.tolist()}
    assert got == {(x, y) for x in range(-4, 5, 2) for y in range(-4, 5, 2)}


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_mixture_samples_match_spec(name):
    ds = load_dataset(name, n_points=20_000, seed=3)
    centres, std = mixture_spec(name)
    assert ds.kind == "points" and ds.shape == (2,) and len(ds) == 20_000
    assert ds.x.dtype == torch.float32 and ds.num_classes == len(centres)
    nearest = torch.cdist(ds.x, centres).argmin(dim=1)
    assert torch.equal(nearest, ds.y)
    counts = torch.bincount(ds.y, minlength=len(centres))
    assert counts.min() > 0.5 * 20_000 / len(centres)  # roughly uniform over components
    for k in range(len(centres)):
        resid = ds.x[ds.y == k] - centres[k]
        assert resid.std(dim=0).tolist() == pytest.approx([std, std], rel=0.2)
    # Same seed -> same data; different seed -> different data.
    assert torch.equal(load_dataset(name, n_points=20_000, seed=3).x, ds.x)
    assert not torch.equal(load_dataset(name, n_points=20_000, seed=4).x, ds.x)
    part = load_dataset(name, n_points=20_000, seed=3, limit=100)  # data.limit: a class-balanced subset of the draw
    assert (part.x[:, None] == ds.x[None]).all(-1).any(1).all() and torch.bincount(part.y).min() >= 100 // len(centres)
    json.dumps(ds.info)


def test_mixture_does_not_touch_global_rng():
    before = torch.get_rng_state()
    load_dataset("ring", n_points=50)
    assert torch.equal(before, torch.get_rng_state())


# ---------------------------------------------------------------- points


def test_points_npy_loads(tmp_path):
    arr = np.random.default_rng(0).normal(size=(40, 3)) * 10
    np.save(tmp_path / "p.npy", arr)
    ds = load_dataset("points", path=str(tmp_path / "p.npy"))
    assert ds.kind == "points" and ds.shape == (3,) and ds.y is None and ds.num_classes == 0
    assert torch.allclose(ds.x, torch.from_numpy(arr).float())  # native coordinates kept
    x, y = ds.get(torch.tensor([0, 5]))
    assert y is None and torch.allclose(x, ds.x[[0, 5]])
    assert ds.info["source"] == str(tmp_path / "p.npy")
    json.dumps(ds.info)


def test_points_errors(tmp_path):
    bad = np.zeros((5, 2))
    bad[2, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(DataError, match="NaN"):
        load_dataset("points", path=str(tmp_path / "nan.npy"))
    np.save(tmp_path / "flat.npy", np.zeros(7))
    with pytest.raises(DataError, match=r"\(N, D\)"):
        load_dataset("points", path=str(tmp_path / "flat.npy"))
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("points", path=str(tmp_path / "missing.npy"))
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError):
        load_dataset("points", path=str(tmp_path / "junk.npy"))
    with pytest.raises(ConfigError, match="needs a path"):
        load_dataset("points")


# ---------------------------------------------------------------- digits


def test_digits():
    ds = load_dataset("digits")
    assert len(ds) == 1437 and ds.kind == "image"
    assert ds.x.dtype == torch.uint8 and ds.x.shape == (1437, 1, 16, 16) and ds.shape == (1, 16, 16)
    assert ds.x.max() > 200  # 0..16 was scaled to 0..255
    x, y = ds.get(torch.arange(64))
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1 and x.min() == -1
    assert y is not None and y.dtype == torch.int64
    assert sorted(ds.y.unique().tolist()) == list(range(10)) and ds.num_classes == 10
    small = load_dataset("digits", image_size=12, channels=3, limit=50)
    assert small.x.shape == (50, 3, 12, 12) and torch.bincount(small.y).tolist() == [5] * 10  # balanced
    json.dumps(ds.info)
    test = load_dataset("digits", split="test")
    assert len(test) == 360 and sorted(test.y.unique().tolist()) == list(range(10))
    from ganforge.data.images import digits_split_indices

    tr, te = set(digits_split_indices("train").tolist()), set(digits_split_indices("test").tolist())
    assert not tr & te and len(tr | te) == 1797


def test_option_errors():
    with pytest.raises(ConfigError) as err:
        load_dataset("imagenet")
    assert "ring" in str(err.value) and "digits" in str(err.value)
    with pytest.raises(ConfigError, match="split"):
        load_dataset("digits", split="validation")
    with pytest.raises(ConfigError, match="only a 'train' split"):
        load_dataset("ring", split="test")
    with pytest.raises(ConfigError, match="fit"):
        load_dataset("digits", fit="stretch")
    with pytest.raises(ConfigError, match="image_size"):
        load_dataset("digits", image_size=0)
    with pytest.raises(ConfigError, match="does not read a path"):
        load_dataset("ring", path="x.npy")
    with pytest.raises(ConfigError, match="channels"):
        load_dataset("digits", channels=2)
    assert {"ring", "grid", "points", "digits", "mnist", "fashion_mnist", "cifar10", "folder"} <= set(DATASETS.names())


# ---------------------------------------------------------------- resizing


def test_resize_images_fits():
    x = torch.full((2, 1, 28, 28), 200, dtype=torch.uint8)
    padded = resize_images(x, 32, "pad")
    assert padded.shape == (2, 1, 32, 32)
    assert padded[:, :, :2].max() == 0 and padded[:, :, 2:30, 2:30].min() == 200
    resized = resize_images(x, 32, "resize")
    assert resized.shape == (2, 1, 32, 32) and resized.min() == 200 and resized.max() == 200
    wide = torch.zeros((1, 3, 10, 40), dtype=torch.uint8)
    wide[..., 15:25] = 255  # a bright centre band survives the centre crop
    out = resize_images(wide, 8, "resize")
    assert out.shape == (1, 3, 8, 8) and out.float().mean() > 200


# ---------------------------------------------------------------- IDX / Fashion-MNIST


def _write_idx(path, arr: np.ndarray, compress: bool = True) -> None:
    code = {np.dtype(np.uint8): 0x08}[arr.dtype]
    data = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    if compress:
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def _fake_fashion(d, n_train: int = 5, n_test: int = 3):
    rng = np.random.default_rng(0)
    d.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(1, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        _write_idx(d / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx(d / f"{prefix}-labels-idx1-ubyte.gz", labels)
        arrays[prefix] = (images, labels)
    return arrays


def test_read_idx_roundtrip_and_bad_magic(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.gz", arr)
    _write_idx(tmp_path / "a", arr, compress=False)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), arr)
    assert np.array_equal(read_idx(tmp_path / "a"), arr)
    (tmp_path / "bad").write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(DataError, match="magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 10) + b"\x00" * 3)
    with pytest.raises(DataError, match="needs"):
        read_idx(tmp_path / "short")


@pytest.fixture
def no_download(monkeypatch):
    """Fail the test if anything tries to download through torchvision."""
    import torchvision.datasets.utils as tv_utils

    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(tv_utils, "download_url", refuse)
    monkeypatch.setattr(tv_utils, "download_and_extract_archive", refuse)


def test_fashion_mnist_found_in_search_dir(tmp_path, monkeypatch, no_download):
    arrays = _fake_fashion(tmp_path / "fm")
    monkeypatch.setenv("GANFORGE_FASHION_MNIST_DIR", str(tmp_path / "fm"))
    root = tmp_path / "root"
    ds = load_dataset("fashion_mnist", root=str(root), fit="pad", download=False)
    assert ds.x.shape == (5, 1, 32, 32) and ds.x.dtype == torch.uint8
    images, labels = arrays["train"]
    assert torch.equal(ds.x[:, 0, 2:30, 2:30], torch.from_numpy(images))  # padded, not scaled
    assert ds.x[:, :, :2].max() == 0
    assert ds.y.tolist() == labels.tolist() and ds.num_classes == 10
    assert ds.info["source"] == str(tmp_path / "fm")
    resized = load_dataset("fashion_mnist", root=str(root), fit="resize", download=False)
    assert resized.x.shape == (5, 1, 32, 32) and not torch.equal(resized.x, ds.x)
    test = load_dataset("fashion_mnist", root=str(root), split="test", download=False, image_size=28)
    assert test.x.shape == (3, 1, 28, 28) and torch.equal(test.x[:, 0], torch.from_numpy(arrays["t10k"][0]))
    assert not root.exists()  # nothing was written or downloaded
    json.dumps(ds.info)


def test_fashion_mnist_found_in_root(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("GANFORGE_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    _fake_fashion(tmp_path / "root" / "FashionMNIST" / "raw")
    ds = load_dataset("fashion_mnist", root=str(tmp_path / "root"), download=False, limit=2)
    assert ds.x.shape == (2, 1, 32, 32)


def test_missing_dataset_without_download_mentions_apt(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("GANFORGE_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion_mnist", root=str(tmp_path / "root"), download=False)
    monkeypatch.setenv("GANFORGE_MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="download"):
        load_dataset("mnist", root=str(tmp_path / "root"), download=False)


def test_corrupt_idx_gives_data_error(tmp_path, monkeypatch):
    d = tmp_path / "fm"
    _fake_fashion(d)
    (d / "train-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    monkeypatch.setenv("GANFORGE_FASHION_MNIST_DIR", str(d))
    with pytest.raises(DataError):
        load_dataset("fashion_mnist", root=str(tmp_path / "root"), download=False)


SYSTEM_FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.isdir(SYSTEM_FASHION), reason="dataset-fashion-mnist is not installed")
def test_system_fashion_mnist(monkeypatch, tmp_path):
    monkeypatch.delenv("GANFORGE_FASHION_MNIST_DIR", raising=False)
    ds = load_dataset("fashion_mnist", root=str(tmp_path), download=False, limit=100)
    assert ds.x.shape == (100, 1, 32, 32) and ds.info["source"] == SYSTEM_FASHION


# ---------------------------------------------------------------- folders


def _make_tree(root):
    rng = np.random.default_rng(1)
    sizes = {"cats/a.png": (20, 30), "cats/b.jpg": (40, 24), "dogs/c.png": (16, 16), "dogs/sub/d.bmp": (50, 10)}
    for rel, (h, w) in sizes.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).save(p)
    (root / "dogs" / "broken.png").write_bytes(rng.integers(0, 256, size=300, dtype=np.uint8).tobytes())
    (root / "dogs" / "notes.txt").write_text("not an image")


def test_folder_loads_skips_corrupt_and_labels(tmp_path):
    _make_tree(tmp_path / "imgs")
    with pytest.warns(UserWarning, match=r"skipped 1 of 5 .*broken\.png"):
        ds = load_dataset("folder", path=str(tmp_path / "imgs"), image_size=8, labels=True)
    assert ds.x.shape == (4, 3, 8, 8) and ds.x.dtype == torch.uint8
    assert ds.info["skipped"] == 1 and ds.info["skipped_files"] == ["dogs/broken.png"]
    assert ds.class_names == ["cats", "dogs"] and ds.num_classes == 2
    assert ds.y.tolist() == [0, 0, 1, 1]  # sorted: cats/a, cats/b, dogs/c, dogs/sub/d
    json.dumps(ds.info)
    with pytest.warns(UserWarning):
        gray = load_dataset("folder", path=str(tmp_path / "imgs"), image_size=8, channels=1)
    assert gray.x.shape == (4, 1, 8, 8) and gray.y is None and gray.num_classes == 0
    with pytest.warns(UserWarning):
        again = load_dataset("folder", path=str(tmp_path / "imgs"), image_size=8, labels=True)
    assert torch.equal(again.x, ds.x)  # deterministic decode order


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("folder", path=str(tmp_path / "missing"))
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(3):
        (bad / f"x{i}.png").write_bytes(os.urandom(64))
    with pytest.warns(UserWarning), pytest.raises(DataError, match="could be read"):
        load_dataset("folder", path=str(bad))
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (8, 8)).save(flat / "a.png")
    with pytest.raises(DataError, match="subfolder per class"):
        load_dataset("folder", path=str(flat), labels=True)
    with pytest.raises(ConfigError, match="needs a path"):
        load_dataset("folder")


# ---------------------------------------------------------------- BatchStream


def _tiny(n: int = 10) -> ArrayDataset:
    return ArrayDataset(
        name="tiny", kind="points", x=torch.arange(n, dtype=torch.float32).unsqueeze(1), y=torch.arange(n)
    )


def _take(stream: BatchStream, k: int) -> list[list[int]]:
    return [stream.next()[1].tolist() for _ in range(k)]


def test_batch_stream_deterministic_and_seeded():
    ds = _tiny()
    assert _take(BatchStream(ds, 3, seed=1), 8) == _take(BatchStream(ds, 3, seed=1), 8)
    assert _take(BatchStream(ds, 3, seed=1), 8) != _take(BatchStream(ds, 3, seed=2), 8)


def test_batch_stream_epochs_cover_every_index_once():
    ds = _tiny(10)
    stream = BatchStream(ds, 5, seed=0)
    for epoch in range(3):
        seen = functools.reduce(operator.iadd, _take(stream, 2), [])
        assert sorted(seen) == list(range(10)), epoch
    s3 = BatchStream(ds, 3, seed=0)  # 3 batches per epoch, the 10th index of each epoch dropped
    for _ in range(3):
        seen = functools.reduce(operator.iadd, _take(s3, 3), [])
        assert len(set(seen)) == 9
    assert s3.state_dict() == {"epoch": 2, "pos": 9, "drawn": 27}


def test_batch_stream_draws_batches_of_any_size_and_counts_them():
    ds = _tiny(10)
    stream = BatchStream(ds, 4, seed=0)
    sizes = [len(stream.next_indices(n)) for n in (4, 2, 3, None, 1)]
    assert sizes == [4, 2, 3, 4, 1] and stream.drawn == 14
    assert stream.state_dict() == {"epoch": 1, "pos": 5, "drawn": 14}  # 9 in epoch 0, then a fresh epoch for 4
    old = BatchStream(ds, 4, seed=0)
    old.load_state_dict({"epoch": 1, "pos": 4})  # a checkpoint from before the count: fixed-size batches
    assert old.drawn == 2 * 4 + 4
    with pytest.raises(DataError, match="cannot be drawn"):
        stream.next_indices(11)


def test_batch_stream_resume():
    ds = _tiny(10)
    for k in (0, 1, 3, 4, 7):
        original = BatchStream(ds, 3, seed=5)
        _take(original, k)
        state = json.loads(json.dumps(original.state_dict()))
        resumed = BatchStream(ds, 3, seed=5)
        resumed.load_state_dict(state)
        assert _take(resumed, 6) == _take(original, 6), k


def test_batch_stream_images_and_rng():
    ds = load_dataset("digits", image_size=8, limit=40)
    before = torch.get_rng_state()
    stream = BatchStream(ds, 16, seed=0)
    x, y = next(iter(stream))
    assert x.shape == (16, 1, 8, 8) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1
    assert y.shape == (16,)
    for _ in range(5):
        stream.next()
    assert torch.equal(before, torch.get_rng_state())


def test_batch_stream_errors():
    with pytest.raises(DataError, match="larger than"):
        BatchStream(_tiny(4), 5, seed=0)
    stream = BatchStream(_tiny(4), 2, seed=0)
    with pytest.raises(DataError):
        stream.load_state_dict({"epoch": 0, "pos": 99})
    with pytest.raises(DataError):
        stream.load_state_dict({"epoch": 0})
