"""BEGAN's class profile: D's per-class reconstruction error of real images against the classes of G's samples."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from ganforge.benchmarks.began_classes import class_profile, plot_class_profiles, reconstruction_errors
from ganforge.errors import GanforgeError


class Shrink(nn.Module):
    """A stand-in auto-encoder that returns half of its input: the error of x is half of mean |x|."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x + 0 * self.w


def _images(values: list[float], per: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.cat([torch.full((per, 1, 4, 4), v) for v in values])
    y = torch.arange(len(values)).repeat_interleave(per)
    return x, y


def test_reconstruction_errors_are_per_image_l1_and_keep_the_mode() -> None:
    D = Shrink().train()
    x = torch.randn(7, 1, 4, 4)
    e = reconstruction_errors(D, x, batch=3)
    assert e.shape == (7,) and torch.allclose(e, 0.5 * x.abs().flatten(1).mean(1))
    assert D.training  # restored after the no-grad, eval-mode pass


def test_profile_finds_which_classes_the_samples_fall_in() -> None:
    # Three classes whose real images have errors 0.1, 0.2 and 0.4; the samples are all of the easiest class, and
    # simpler still (error 0.05), so none of the real images is as easy as the samples.
    real, labels = _images([0.2, 0.4, 0.8], per=4)
    samples = torch.full((6, 1, 4, 4), 0.1)

    def classify(im: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(im), dtype=torch.long)

    p = class_profile(Shrink(), samples, real, labels, classify, ["a", "b", "c"])
    assert p["real_error"] == pytest.approx([0.1, 0.2, 0.4])
    assert p["sample_share"] == [1.0, 0.0, 0.0] and p["sample_error"][0] == pytest.approx(0.05)
    assert p["sample_error"][1:] == [None, None]
    assert p["error_ratio"] == pytest.approx(0.05 / (0.7 / 3)) and p["real_as_easy"] == 0.0
    assert p["spearman_error_share"] == pytest.approx(-0.866, abs=1e-3)  # ties among the zero shares
    # Samples as hard as the hardest class: every real image is at most that hard.
    p2 = class_profile(
        Shrink(), torch.full((6, 1, 4, 4), 0.8), real, labels, lambda im: torch.full((len(im),), 2), "abc"
    )
    assert p2["real_as_easy"] == 1.0 and p2["sample_share"] == [0.0, 0.0, 1.0]


def test_profile_refuses_mismatched_or_out_of_range_labels() -> None:
    real, labels = _images([0.2, 0.4], per=2)
    with pytest.raises(GanforgeError, match="one label each"):
        class_profile(Shrink(), real, real, labels[:-1], lambda im: im.new_zeros(len(im)).long(), ["a", "b"])
    with pytest.raises(GanforgeError, match="0..0"):
        class_profile(Shrink(), real, real, labels, lambda im: im.new_zeros(len(im)).long(), ["a"])


def test_profile_plot_is_written(tmp_path: Path) -> None:
    real, labels = _images([0.2, 0.4, 0.8], per=2)
    p = class_profile(Shrink(), real, real, labels, lambda im: (im.flatten(1).mean(1) > 0.5).long(), "abc")
    assert plot_class_profiles({"gamma 0.5": p, "gamma 0.7": p}, tmp_path / "p.png").is_file()
