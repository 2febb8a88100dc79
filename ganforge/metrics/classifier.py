"""The small domain classifiers behind the `digits`, `fashion` and `fashion-v1` feature extractors (architecture and loading)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn as nn

from ..errors import GanforgeError

# Native input of the domain classifiers: 1 x 32 x 32, floats in [-1, 1].
INPUT_SIZE = 32
INPUT_CHANNELS = 1
FEATURE_DIM = 128
NUM_CLASSES = 10

# Where the shipped weights live; loaded through the package path so an installed wheel works too.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def _block(c_in: int, c_out: int) -> nn.Sequential:
    # Two 3x3 conv-BN-ReLU then 2x2 max-pool: VGG-style, cheap on CPU and enough for 10-class 32x32 grey images.
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class DomainCNN(nn.Module):
    """32x32x1 -> 3 conv blocks (32/64/128 ch) -> global average -> 128-d ReLU features -> 10 logits."""

    def __init__(self, num_classes: int = NUM_CLASSES, feature_dim: int = FEATURE_DIM, dropout: float = 0.3) -> None:
        super().__init__()
        self.body = nn.Sequential(_block(INPUT_CHANNELS, 32), _block(32, 64), _block(64, 128))
        self.pool = nn.AdaptiveAvgPool2d(1)
        # The penultimate layer is what FID-style metrics use, so it is a plain Linear+ReLU whose width is fixed.
        self.fc1 = nn.Linear(128, feature_dim)
        self.act = nn.ReLU(inplace=True)
        # Dropout sits *after* the feature layer so features are identical in train and eval mode up to BN.
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate (post-ReLU) activations, shape (N, feature_dim)."""
        h = self.pool(self.body(x)).flatten(1)
        return self.act(self.fc1(h))

    def forward_both(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, logits) in one pass."""
        f = self.features(x)
        return f, self.fc2(self.drop(f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_both(x)[1]


class _BasicBlock(nn.Module):
    """He et al. 2016 basic residual block: two 3x3 conv-BN, identity or 1x1-conv shortcut, ReLU after the sum."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.bn1(self.conv1(x)))
        return self.act(self.bn2(self.conv2(h)) + self.shortcut(x))


class DomainResNet(nn.Module):
    """32x32x1 -> conv stem -> 3 stages of 2 residual blocks (32/64/128 ch at 32/16/8 px) -> global average ->
    128-d ReLU features -> 10 logits (a ResNet-14 for CIFAR-sized inputs, He et al. 2016, Sec. 4.2)."""

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        feature_dim: int = FEATURE_DIM,
        dropout: float = 0.3,
        widths: tuple[int, ...] = (32, 64, 128),
        blocks: int = 2,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(INPUT_CHANNELS, widths[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        ]
        c_in = widths[0]
        for i, c in enumerate(widths):
            for j in range(blocks):
                layers.append(_BasicBlock(c_in, c, 2 if (j == 0 and i > 0) else 1))
                c_in = c
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        # Same head as DomainCNN: the 128-d post-ReLU penultimate layer is the feature space of FD and friends.
        self.fc1 = nn.Linear(c_in, feature_dim)
        self.act = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate (post-ReLU) activations, shape (N, feature_dim)."""
        return self.act(self.fc1(self.pool(self.body(x)).flatten(1)))

    def forward_both(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, logits) in one pass."""
        f = self.features(x)
        return f, self.fc2(self.drop(f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_both(x)[1]


# Architecture names as recorded in classifiers.json ("model"); entries without one are DomainCNN (format 1).
ARCHITECTURES: dict[str, type[nn.Module]] = {"DomainCNN": DomainCNN, "DomainResNet": DomainResNet}


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_domain_cnn(path: str | Path, expected_sha256: str | None = None, architecture: str = "DomainCNN") -> nn.Module:
    """Build a domain classifier (`architecture` in ARCHITECTURES) in eval mode from a safetensors file, checking
    its sha256 first when one is given."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise GanforgeError(
            f"classifier weights {str(path)!r} not found; they ship with ganforge in ganforge/metrics/weights/ "
            "(regenerate with `python scripts/train_classifiers.py`)."
        )
    if expected_sha256 is not None:
        got = sha256_file(path)
        if got != expected_sha256:
            raise GanforgeError(
                f"classifier weights {str(path)!r} have sha256 {got}, expected {expected_sha256} "
                "(from classifiers.json); the file is corrupt or was replaced without updating classifiers.json. "
                "Reinstall ganforge or rerun `python scripts/train_classifiers.py`."
            )
    if architecture not in ARCHITECTURES:
        raise GanforgeError(f"unknown classifier architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}")
    model = ARCHITECTURES[architecture]()
    model.load_state_dict(load_file(str(path)), strict=True)
    model.requires_grad_(False)
    return model.eval()
