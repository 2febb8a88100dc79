"""Feature extractors for sample-quality metrics (FID, KID, IS, precision/recall): a registry and a common interface.

Every extractor takes float images in [-1, 1], NCHW, of any size and 1 or 3 channels, adapts them to its own
input, and returns ``{"features": (N, feature_dim) float32, "logits": (N, num_classes) float32}``.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError, GanforgeError
from ..registry import Registry
from . import classifier as _clf

__all__ = [
    "EXTRACTORS",
    "INCEPTION_FILENAME",
    "INCEPTION_SHA256",
    "INCEPTION_URL",
    "INCEPTION_WEIGHTS_ENV",
    "DomainExtractor",
    "Extractor",
    "InceptionExtractor",
    "adapt_channels",
    "domain_preprocess",
    "get_extractor",
    "inception_cache_path",
]

EXTRACTORS: Registry[Any] = Registry("feature extractor")


def get_extractor(name: str, **kwargs: Any) -> Extractor:
    """The extractor registered as `name` ('inception', 'digits', 'fashion'), built with `kwargs`."""
    return EXTRACTORS.build(name, **kwargs)


def adapt_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey -> RGB by repeating the channel; RGB -> grey by the unweighted channel mean; else ConfigError."""
    c = images.shape[1]
    if c == channels:
        return images
    if c == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1)
    if c == 3 and channels == 1:
        # Unweighted mean rather than luma weights: GAN samples of grey datasets that were trained as RGB have
        # (nearly) equal channels, for which both agree, and the mean has no colour-space assumption.
        return images.mean(dim=1, keepdim=True)
    raise ConfigError(
        f"cannot adapt images with {c} channels to a {channels}-channel feature extractor (supported: 1 or 3 channels)."
    )


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ConfigError(f"feature extractors take float images in [-1, 1] shaped (N, C, H, W); got {shape}.")


class Extractor(nn.Module):
    """Base class: adapt [-1, 1] NCHW images, then return {'features', 'logits'} computed in eval mode, no grad."""

    name: str = ""
    input_size: int = 0
    input_channels: int = 0
    feature_dim: int = 0
    num_classes: int = 0
    feature_layer: str = ""
    resize_method: str = ""
    default_batch_size: int = 64

    def _forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and logits for one batch of already-validated [-1, 1] images on the model's device."""
        raise NotImplementedError

    def protocol(self) -> dict[str, Any]:
        """JSON-serialisable description of exactly how features are computed (for reports and caches)."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        """The device the extractor's weights are on (inputs are moved there, outputs moved back)."""
        return next(self.parameters()).device

    def train(self, mode: bool = True) -> Extractor:
        """Always eval mode, whatever `mode` says."""
        # An extractor is a fixed measuring instrument: a parent's .train() must not switch on BN batch statistics.
        return super().train(False)

    @torch.no_grad()
    def extract(self, images: torch.Tensor, batch_size: int | None = None) -> dict[str, torch.Tensor]:
        """{'features': (N, feature_dim), 'logits': (N, num_classes)} float32, on the device of `images`."""
        _check_images(images)
        self.eval()
        bs = batch_size or self.default_batch_size
        feats, logits = [], []
        for start in range(0, images.shape[0], bs):
            chunk = images[start : start + bs].to(self.device, torch.float32)
            f, lg = self._forward(chunk)
            feats.append(f.float())
            logits.append(lg.float())
        if not feats:  # empty batch: keep the documented shapes
            empty = images.new_zeros((0,), dtype=torch.float32)
            return {
                "features": empty.reshape(0, self.feature_dim),
                "logits": empty.reshape(0, self.num_classes),
            }
        return {
            "features": torch.cat(feats).to(images.device),
            "logits": torch.cat(logits).to(images.device),
        }

    def forward(self, images: torch.Tensor, batch_size: int | None = None) -> dict[str, torch.Tensor]:
        """Same as extract(), so ``extractor(images)`` works."""
        return self.extract(images, batch_size=batch_size)


# ---------------------------------------------------------------------------------------------------------------
# Inception-v3 (Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer Vision"), in the
# TensorFlow-compatible port of torch-fidelity, so FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale
# Update Rule Converge to a Local Nash Equilibrium") and IS match the TensorFlow reference implementations.
# ---------------------------------------------------------------------------------------------------------------

# torch_fidelity.feature_extractor_inceptionv3.URL_INCEPTION_V3 (torch-fidelity 0.2-0.4). torch-fidelity downloads
# it with torch.hub.load_state_dict_from_url, i.e. to <torch.hub.get_dir()>/checkpoints/<file name>.
INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)
INCEPTION_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
# pytorch-fid distributes the byte-identical file under this name (same sha256), so its cache is accepted too.
PYTORCH_FID_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
# Full sha256 of that file (95,628,359 bytes). The installed torch-fidelity only carries the 8-hex prefix in the file
# name (torch.hub's check_hash convention); the full digest is the one pinned by several independent public
# projects for both the torch-fidelity and the pytorch-fid URL, and it agrees with the prefix.
INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
INCEPTION_WEIGHTS_ENV = "GANFORGE_INCEPTION_WEIGHTS"


def inception_cache_path() -> Path:
    """Where torch-fidelity's own download lands: <torch.hub.get_dir()>/checkpoints/weights-inception-...pth."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILENAME


def _inception_instructions() -> str:
    cache = inception_cache_path()
    return (
        "The Inception-v3 FID weights are needed (torch-fidelity's TF-compatible port, "
        f"file {INCEPTION_FILENAME}, sha256 {INCEPTION_SHA256}). Provide them in one of these ways: "
        "(1) pass weights_path='/path/to/file'; "
        f"(2) set the environment variable {INCEPTION_WEIGHTS_ENV}=/path/to/file; "
        f"(3) put the file at {cache} (torch-fidelity's cache; the directory follows TORCH_HOME). "
        "To fetch it on a machine with internet access run "
        '`python -c "from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3 as F; '
        "F('inception-v3-compat', ['2048'])\"` (it lands in <torch.hub.get_dir()>/checkpoints/, by default "
        f"~/.cache/torch/hub/checkpoints/{INCEPTION_FILENAME}) or download {INCEPTION_URL} directly, then copy "
        "the file to one of the places above. Or pass download=True to let ganforge fetch and check it now."
    )


class InceptionExtractor(Extractor):
    """torch-fidelity's FeatureExtractorInceptionV3: 2048-d pool3 features and 1008-way unbiased logits."""

    name = "inception"
    input_size = 299
    input_channels = 3
    feature_dim = 2048
    num_classes = 1008
    feature_layer = "2048"
    logits_layer = "logits_unbiased"
    resize_method = "tf1x_bilinear"
    default_batch_size = 32

    def __init__(
        self,
        weights_path: str | os.PathLike[str] | None = None,
        *,
        verify_hash: bool = True,
        download: bool = False,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError as e:  # torch-fidelity is an optional dependency, only needed for this extractor
            raise GanforgeError(
                "the 'inception' feature extractor needs torch-fidelity: pip install torch-fidelity"
            ) from e
        path = self._resolve_weights(weights_path, download)
        self.weights_path = path
        self.weights_sha256 = _clf.sha256_file(path)
        self.hash_verified = False
        if verify_hash:
            if self.weights_sha256 != INCEPTION_SHA256:
                raise GanforgeError(
                    f"Inception weights {str(path)!r} have sha256 {self.weights_sha256}, expected {INCEPTION_SHA256} "
                    "(the TF-FID Inception-v3 of torch-fidelity/pytorch-fid); the file is corrupt, truncated or "
                    "a different model. Delete it and fetch it again. " + _inception_instructions()
                )
            self.hash_verified = True
            # Known-good bytes: let torch-fidelity load the file exactly as it does its own download.
            source: Any = str(path)
        else:
            # Unverified file: unpickle with weights_only=True (no arbitrary code) and hand torch-fidelity an
            # in-memory copy, because its own loader unpickles without that restriction.
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as e:
                raise GanforgeError(f"cannot read Inception weights {str(path)!r}: {e}") from e
            source = io.BytesIO()
            torch.save(state, source)
            source.seek(0)
        try:
            self.model = FeatureExtractorInceptionV3(
                "inception-v3-compat",
                [self.feature_layer, self.logits_layer],
                feature_extractor_weights_path=source,
            )
        except (RuntimeError, KeyError, ValueError) as e:
            raise GanforgeError(f"Inception weights {str(path)!r} do not fit torch-fidelity's Inception-v3: {e}") from e
        self.to(device)
        self.eval()

    @staticmethod
    def _resolve_weights(weights_path: str | os.PathLike[str] | None, download: bool) -> Path:
        # Order: explicit argument, environment variable, torch-fidelity's cache (then pytorch-fid's name there).
        # An explicit path or env var that does not exist is an error rather than a silent fallback.
        if weights_path is not None:
            p = Path(weights_path).expanduser()
            if not p.is_file():
                raise GanforgeError(f"Inception weights_path {str(p)!r} does not exist. " + _inception_instructions())
            return p
        env = os.environ.get(INCEPTION_WEIGHTS_ENV)
        if env:
            p = Path(env).expanduser()
            if not p.is_file():
                raise GanforgeError(
                    f"{INCEPTION_WEIGHTS_ENV}={env!r} does not point to a file. " + _inception_instructions()
                )
            return p
        cache = inception_cache_path()
        for candidate in (cache, cache.with_name(PYTORCH_FID_FILENAME)):
            if candidate.is_file():
                return candidate
        if download:
            cache.parent.mkdir(parents=True, exist_ok=True)
            # Downloads only on explicit request; torch.hub checks the digest prefix (here the full sha256) before
            # moving the temporary file into place.
            try:
                torch.hub.download_url_to_file(INCEPTION_URL, str(cache), hash_prefix=INCEPTION_SHA256, progress=True)
            except Exception as e:  # URLError, HTTPError, RuntimeError('invalid hash value ...'), OSError
                raise GanforgeError(
                    f"downloading the Inception weights from {INCEPTION_URL} failed ({e}). " + _inception_instructions()
                ) from e
            return cache
        raise GanforgeError("Inception weights not found. " + _inception_instructions())

    @staticmethod
    def to_uint8(images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] floats -> uint8 0..255 by clamp, (x + 1) * 127.5 and round to nearest."""
        # torch-fidelity's own inputs are uint8 images read from files; rounding reproduces those bytes exactly for
        # real data stored as u / 127.5 - 1 (truncation, as in torch-fidelity's SNGAN example, can lose 1 level to
        # float error).
        return ((images.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)

    def _forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.to_uint8(adapt_channels(images, 3))
        # torch-fidelity resizes internally (TF1.x-exact bilinear to 299x299) and normalises (x - 128) / 128.
        feats, logits = self.model(x)
        return feats, logits

    def protocol(self) -> dict[str, Any]:
        """Extractor name, weights file and sha256, layers, input size, resize and channel handling."""
        import torch_fidelity

        return {
            "extractor": self.name,
            "implementation": "torch_fidelity.feature_extractor_inceptionv3.FeatureExtractorInceptionV3",
            "torch_fidelity_version": getattr(torch_fidelity, "__version__", "unknown"),
            "weights_file": self.weights_path.name,
            "weights_sha256": self.weights_sha256,
            "weights_hash_verified": self.hash_verified,
            "expected_sha256": INCEPTION_SHA256,
            "feature_layer": f"{self.feature_layer} (pool3: global average of Mixed_7c)",
            "logits_layer": f"{self.logits_layer} (fc without bias, 1008 classes)",
            "feature_dim": self.feature_dim,
            "num_classes": self.num_classes,
            "input_size": self.input_size,
            "input_range": "[-1, 1] float, clamped",
            "quantisation": "uint8 = round((x + 1) * 127.5), as image files",
            "resize_method": (
                "torch-fidelity interpolate_bilinear_2d_like_tensorflow1x to 299x299, align_corners=False, "
                "no antialias (TF1.x resize_bilinear, as the TF FID/IS reference), on the uint8 values"
            ),
            "normalisation": "(x - 128) / 128",
            "channels": "1 -> repeated to RGB; 3 -> as is",
        }


# ---------------------------------------------------------------------------------------------------------------
# Domain classifiers: the small CNN of classifier.py, trained by scripts/train_classifiers.py on one dataset.
# ---------------------------------------------------------------------------------------------------------------

CLASSIFIERS_JSON = "classifiers.json"


def _classifier_record(key: str) -> dict[str, Any]:
    meta_path = _clf.WEIGHTS_DIR / CLASSIFIERS_JSON
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as e:
        raise GanforgeError(
            f"cannot read {meta_path}: {e}. It ships with ganforge; regenerate with scripts/train_classifiers.py."
        ) from e
    rec = meta.get("classifiers", {}).get(key)
    if rec is None:
        raise GanforgeError(
            f"no '{key}' classifier in {meta_path}; run `python scripts/train_classifiers.py --which {key}`."
        )
    return rec


def shipped_sha256(name: str) -> str:
    """The sha256 classifiers.json records for the shipped domain classifier `name` (its weights are checked on load).

    Benchmarks stamp it into every result and re-run a result scored by other weights: numbers from two
    classifiers' features are on different scales.
    """
    return str(_classifier_record(name)["sha256"])


def domain_preprocess(images: torch.Tensor) -> torch.Tensor:
    """The domain CNNs' input adaptation (also used in training): grey, clamp to [-1, 1], bilinear-AA to 32x32."""
    size = _clf.INPUT_SIZE
    x = adapt_channels(images, _clf.INPUT_CHANNELS).clamp(-1.0, 1.0)
    if x.shape[-2:] != (size, size):
        # Antialias so downscaled large samples are not aliased; for upscaling it is plain bilinear.
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


class DomainExtractor(Extractor):
    """A shipped 32x32 grey-scale domain CNN: 128-d penultimate (post-ReLU) features and 10 logits."""

    input_size = _clf.INPUT_SIZE
    input_channels = _clf.INPUT_CHANNELS
    feature_dim = _clf.FEATURE_DIM
    num_classes = _clf.NUM_CLASSES
    feature_layer = "fc1_relu"
    resize_method = "bilinear_antialias"
    default_batch_size = 512

    def __init__(self, which: str, *, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.name = which
        self.record = _classifier_record(which)
        self.weights_file = self.record["file"]
        self.weights_sha256 = self.record["sha256"]
        self.architecture = self.record.get("model", "DomainCNN")
        self.model = cast(  # one of _clf.ARCHITECTURES, which all have forward_both
            "_clf.DomainCNN | _clf.DomainResNet",
            _clf.load_domain_cnn(
                _clf.WEIGHTS_DIR / self.weights_file,
                expected_sha256=self.weights_sha256,
                architecture=self.architecture,
            ),
        )
        self.to(device)
        self.eval()

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] NCHW of any size, 1 or 3 channels -> (N, 1, 32, 32) in [-1, 1]."""
        return domain_preprocess(images)

    def _forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.forward_both(self.preprocess(images))

    def protocol(self) -> dict[str, Any]:
        """Extractor name, weights file and sha256, layers, input size, resize and channel handling."""
        return {
            "extractor": self.name,
            "implementation": f"ganforge.metrics.classifier.{self.architecture}",
            "weights_file": self.weights_file,
            "weights_sha256": self.weights_sha256,
            "weights_hash_verified": True,
            "feature_layer": "fc1 after ReLU (128-d penultimate)",
            "logits_layer": "fc2 (10 classes)",
            "feature_dim": self.feature_dim,
            "num_classes": self.num_classes,
            "input_size": self.input_size,
            "input_channels": self.input_channels,
            "input_range": "[-1, 1] float, clamped",
            "resize_method": (
                "torch.nn.functional.interpolate bilinear, antialias=True, align_corners=False to 32x32 "
                "(skipped at 32x32)"
            ),
            "channels": "3 -> unweighted mean to grey; 1 -> as is",
            "test_accuracy": self.record.get("test_accuracy"),
            "dataset": self.record.get("dataset"),
        }


@EXTRACTORS.register("inception")
def _inception(
    weights_path: str | os.PathLike[str] | None = None,
    *,
    verify_hash: bool = True,
    download: bool = False,
    device: str | torch.device = "cpu",
) -> InceptionExtractor:
    """TF-FID-compatible Inception-v3 (Szegedy et al. 2016) for FID (Heusel et al. 2017) and IS."""
    return InceptionExtractor(weights_path, verify_hash=verify_hash, download=download, device=device)


@EXTRACTORS.register("digits")
def _digits(*, device: str | torch.device = "cpu") -> DomainExtractor:
    """Domain CNN trained on sklearn digits."""
    return DomainExtractor("digits", device=device)


@EXTRACTORS.register("fashion")
def _fashion(*, device: str | torch.device = "cpu") -> DomainExtractor:
    """Domain ResNet-14 trained on Fashion-MNIST (padded and resized to 32x32); the features of FD-fashion."""
    return DomainExtractor("fashion", device=device)


@EXTRACTORS.register("fashionv1")
def _fashionv1(*, device: str | torch.device = "cpu") -> DomainExtractor:
    """The first Fashion-MNIST domain CNN (until 2026-12), kept so results computed with it can be reproduced."""
    return DomainExtractor("fashionv1", device=device)
