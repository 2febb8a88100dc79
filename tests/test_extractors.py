"""Feature extractors: registry, Inception loading rules (on random weights, no download), shipped domain CNNs."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from ganforge.errors import ConfigError, GanforgeError
from ganforge.metrics import extractors as ex
from ganforge.metrics.classifier import WEIGHTS_DIR, sha256_file
from ganforge.metrics.extractors import EXTRACTORS, get_extractor

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def _images(n: int, c: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, size, size, generator=g) * 2 - 1


def inception_random_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A randomly initialised state dict of torch-fidelity's Inception-v3 (no download, no real weights)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class _Skeleton(FeatureExtractorInceptionV3):
        # torch-fidelity always loads weights in __init__; skipping that load leaves PyTorch's default random init.
        def load_state_dict(self, *args: Any, **kwargs: Any) -> Any:
            return None

    empty = io.BytesIO()
    torch.save({}, empty)
    empty.seek(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _Skeleton("inception-skeleton", ["2048"], feature_extractor_weights_path=empty)
    return {k: v.clone() for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------- registry


def test_registry_names() -> None:
    assert {"inception", "digits", "fashion", "fashionv1"} <= set(EXTRACTORS.names())


def test_unknown_extractor_lists_names() -> None:
    with pytest.raises(ConfigError) as e:
        get_extractor("incepton")
    msg = str(e.value)
    for name in ("inception", "digits", "fashion"):
        assert name in msg
    assert "did you mean 'inception'" in msg


def test_unknown_argument_is_config_error() -> None:
    with pytest.raises(ConfigError, match="device"):
        get_extractor("digits", weights="x")


# --------------------------------------------------------------------------- inception


@pytest.fixture()
def no_inception_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An environment where no real Inception weights can be found (empty torch hub dir, no env var)."""
    monkeypatch.delenv(ex.INCEPTION_WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # in case a test set it with torch.hub.set_dir
    assert not ex.inception_cache_path().exists()
    return tmp_path


@pytest.fixture(scope="module")
def random_inception_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch_fidelity")
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(inception_random_state_dict(seed=0), path)
    return path


def test_inception_cache_location_matches_torch_fidelity() -> None:
    tf_mod = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    assert tf_mod.URL_INCEPTION_V3 == ex.INCEPTION_URL
    assert ex.INCEPTION_URL.endswith("/" + ex.INCEPTION_FILENAME)
    # torch.hub's check_hash convention: the hex between the last '-' and '.' is a prefix of the sha256.
    assert ex.INCEPTION_SHA256.startswith(ex.INCEPTION_FILENAME.rsplit("-", 1)[1].split(".")[0])
    assert ex.inception_cache_path() == Path(torch.hub.get_dir()) / "checkpoints" / ex.INCEPTION_FILENAME


def test_inception_random_weights_shapes(random_inception_file: Path) -> None:
    ext = get_extractor("inception", weights_path=random_inception_file, verify_hash=False)
    assert (ext.name, ext.input_size, ext.input_channels) == ("inception", 299, 3)
    assert (ext.feature_dim, ext.num_classes) == (2048, 1008)
    # Grey 28x28 input: repeated to RGB, resized to 299 inside torch-fidelity.
    out = ext(_images(2, 1, 28))
    assert out["features"].shape == (2, 2048) and out["features"].dtype == torch.float32
    assert out["logits"].shape == (2, 1008) and out["logits"].dtype == torch.float32
    assert torch.isfinite(out["features"]).all() and torch.isfinite(out["logits"]).all()
    assert not out["features"].requires_grad
    proto = ext.protocol()
    json.dumps(proto)
    assert proto["weights_sha256"] == sha256_file(random_inception_file)
    assert proto["weights_hash_verified"] is False
    assert proto["feature_layer"].startswith("2048") and proto["logits_layer"].startswith("logits_unbiased")


def test_inception_uint8_conversion_is_exact_for_real_data() -> None:
    u = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert torch.equal(ex.InceptionExtractor.to_uint8(u.float() / 127.5 - 1), u)
    assert ex.InceptionExtractor.to_uint8(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]


def _no_download(*args: object, **kwargs: object) -> None:
    raise AssertionError("a download was attempted without download=True")


def test_inception_missing_weights_explains(no_inception_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch_fidelity")
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)
    with pytest.raises(GanforgeError) as e:
        get_extractor("inception")
    msg = str(e.value)
    assert ex.INCEPTION_WEIGHTS_ENV in msg and "weights_path" in msg
    assert str(ex.inception_cache_path()) in msg and ex.INCEPTION_URL in msg
    assert "python -c" in msg and "download=True" in msg and ex.INCEPTION_SHA256 in msg


def test_inception_download_only_on_request(
    random_inception_file: Path, no_inception_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def fake_download(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        calls.append((url, dst, hash_prefix))
        Path(dst).write_bytes(random_inception_file.read_bytes())  # stands in for the real file

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    # The fetched file lands in torch-fidelity's cache and still goes through the full sha256 check.
    with pytest.raises(GanforgeError, match="sha256"):
        get_extractor("inception", download=True)
    assert calls == [(ex.INCEPTION_URL, str(ex.inception_cache_path()), ex.INCEPTION_SHA256)]


def test_inception_env_var_pointing_nowhere(no_inception_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch_fidelity")
    monkeypatch.setenv(ex.INCEPTION_WEIGHTS_ENV, str(no_inception_weights / "nope.pth"))
    with pytest.raises(GanforgeError, match=ex.INCEPTION_WEIGHTS_ENV):
        get_extractor("inception")


def test_inception_wrong_hash_rejected(
    random_inception_file: Path, no_inception_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(GanforgeError, match="sha256"):
        get_extractor("inception", weights_path=random_inception_file)
    # Same through the env var and through the cache location torch-fidelity downloads to.
    monkeypatch.setenv(ex.INCEPTION_WEIGHTS_ENV, str(random_inception_file))
    with pytest.raises(GanforgeError, match=ex.INCEPTION_SHA256):
        get_extractor("inception")
    monkeypatch.delenv(ex.INCEPTION_WEIGHTS_ENV)
    cache = ex.inception_cache_path()
    cache.parent.mkdir(parents=True)
    os.symlink(random_inception_file, cache)
    with pytest.raises(GanforgeError, match="sha256"):
        get_extractor("inception")


def test_inception_rejects_wrong_architecture(tmp_path: Path) -> None:
    pytest.importorskip("torch_fidelity")
    bad = tmp_path / "bad.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, bad)
    with pytest.raises(GanforgeError, match="do not fit"):
        get_extractor("inception", weights_path=bad, verify_hash=False)


# --------------------------------------------------------------------------- domain classifiers


def _meta() -> dict:
    return json.loads((WEIGHTS_DIR / "classifiers.json").read_text())


@pytest.mark.parametrize("name", ["digits", "fashion", "fashionv1"])
def test_domain_extractor_loads_with_hash(name: str) -> None:
    rec = _meta()["classifiers"][name]
    path = WEIGHTS_DIR / rec["file"]
    assert path.stat().st_size < 3_000_000  # shipped in the wheel: kept small (the ResNet-14 is 2.9 MB)
    assert sha256_file(path) == rec["sha256"]
    ext = get_extractor(name)
    assert (ext.input_size, ext.input_channels, ext.feature_dim, ext.num_classes) == (32, 1, 128, 10)
    proto = ext.protocol()
    json.dumps(proto)
    assert proto["weights_sha256"] == rec["sha256"] and proto["weights_file"] == rec["file"]
    assert proto["extractor"] == name and proto["input_size"] == 32 and "bilinear" in proto["resize_method"]
    assert proto["implementation"].endswith(rec.get("model", "DomainCNN"))


def test_fashion_is_the_resnet_and_fashionv1_the_first_cnn() -> None:
    # FD-fashion moved to a stronger classifier (issue 17); the first one stays loadable, bit for bit, under its own
    # name so that results computed with it can be reproduced.
    from ganforge.metrics.classifier import DomainCNN, DomainResNet

    meta = _meta()["classifiers"]
    assert isinstance(get_extractor("fashion").model, DomainResNet) and meta["fashion"]["model"] == "DomainResNet"
    assert isinstance(get_extractor("fashionv1").model, DomainCNN)
    assert meta["fashionv1"]["sha256"] == "81afb5df33f7551be166bb3358c17ad361614e348c74c92512de8ef3a064468e"
    assert meta["fashion"]["sha256"] != meta["fashionv1"]["sha256"]
    assert meta["fashion"]["test_accuracy"] >= 0.935  # on the padded test images the GANs are trained on


@pytest.mark.parametrize("shape", [(3, 1, 32, 32), (2, 3, 64, 64), (4, 1, 16, 16), (1, 3, 28, 20)])
def test_domain_extractor_adapts_inputs(shape: tuple[int, ...]) -> None:
    ext = get_extractor("digits")
    out = ext.extract(torch.rand(shape) * 2 - 1)
    n = shape[0]
    assert out["features"].shape == (n, 128) and out["logits"].shape == (n, 10)
    assert out["features"].dtype == torch.float32 and (out["features"] >= 0).all()  # post-ReLU


def test_rgb_of_grey_equals_grey() -> None:
    ext = get_extractor("fashion")
    grey = _images(3, 1, 64)
    a, b = ext(grey), ext(grey.repeat(1, 3, 1, 1))
    torch.testing.assert_close(a["features"], b["features"])
    # Batching does not change the result (eval mode: BN uses running statistics).
    c = ext.extract(grey, batch_size=1)
    torch.testing.assert_close(a["logits"], c["logits"], rtol=1e-4, atol=1e-4)


def test_extractor_stays_in_eval_mode() -> None:
    ext = get_extractor("digits")
    parent = torch.nn.ModuleDict({"e": ext})
    parent.train()
    assert not ext.training and not any(m.training for m in ext.modules())


def test_bad_channels_and_shapes() -> None:
    ext = get_extractor("digits")
    with pytest.raises(ConfigError, match="channels"):
        ext(torch.zeros(1, 4, 32, 32))
    with pytest.raises(ConfigError, match="N, C, H, W"):
        ext(torch.zeros(32, 32))
    assert ext(torch.zeros(0, 1, 32, 32))["features"].shape == (0, 128)


def test_corrupted_classifier_weights_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ganforge.metrics import classifier as clf

    fake_dir = tmp_path / "weights"
    fake_dir.mkdir()
    meta = _meta()
    for _name, rec in meta["classifiers"].items():
        data = bytearray((WEIGHTS_DIR / rec["file"]).read_bytes())
        data[-1] ^= 0xFF  # flip one weight byte: still loadable, but not the trained file
        (fake_dir / rec["file"]).write_bytes(bytes(data))
    (fake_dir / "classifiers.json").write_text(json.dumps(meta))
    monkeypatch.setattr(clf, "WEIGHTS_DIR", fake_dir)
    with pytest.raises(GanforgeError, match="sha256"):
        get_extractor("digits")


def test_digits_accuracy_on_test_split() -> None:
    from ganforge.data import load_dataset

    rec = _meta()["classifiers"]["digits"]
    ext = get_extractor("digits")
    # The loader's default size (16) and a GAN-typical RGB 32x32 version of the same held-out images.
    for size, channels in ((16, 1), (32, 3)):
        ds = load_dataset("digits", split="test", image_size=size, channels=channels)
        assert len(ds) == 360 == rec["split"]["test_size"]
        x, y = ds.get(torch.arange(len(ds)))
        acc = (ext(x)["logits"].argmax(1) == y).float().mean().item()
        assert acc >= 0.95, (size, channels, acc)


def test_digits_split_is_the_one_trained_on() -> None:
    from ganforge.data.images import digits_split_indices

    rec = _meta()["classifiers"]["digits"]
    assert digits_split_indices("test").tolist() == rec["split"]["test_indices"]


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="Fashion-MNIST not installed (dataset-fashion-mnist)")
def test_fashion_accuracy_first_1000_test() -> None:
    from ganforge.data import load_dataset

    for fit, name, least in (("pad", "fashion", 0.93), ("resize", "fashion", 0.93), ("resize", "fashionv1", 0.88)):
        ds = load_dataset("fashion_mnist", split="test", limit=1000, image_size=32, fit=fit, download=False)
        x, y = ds.get(torch.arange(len(ds)))
        acc = (get_extractor(name)(x)["logits"].argmax(1) == y).float().mean().item()
        assert acc >= least, (fit, name, acc)


@pytest.mark.parametrize("native, fp32, want", [(True, False, True), (False, False, False), (True, True, False)])
def test_classifier_script_uses_bf16_only_where_the_cpu_has_it(
    monkeypatch: pytest.MonkeyPatch, native: bool, fp32: bool, want: bool
) -> None:
    # On an AVX2-only CPU bf16 autocast is 20-60x slower than fp32: the default must follow the capability.
    import importlib.util

    import ganforge.training.hardware as hw

    script = Path(__file__).resolve().parent.parent / "scripts" / "train_classifiers.py"
    spec = importlib.util.spec_from_file_location("train_classifiers", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(hw, "cpu_has_native_bf16", lambda: native)
    assert mod.use_bf16(fp32) is want
