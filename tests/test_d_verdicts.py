"""D's verdicts on training, held-out and generated images: the memorisation measure of the limited bench."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from ganforge.benchmarks.d_verdicts import d_verdicts, logits, verdict_stats
from ganforge.errors import GanforgeError
from ganforge.latent import LatentSpace


def test_stats_place_held_out_images_between_fakes_and_training_images() -> None:
    train, held, fake = torch.tensor([2.0, 4.0]), torch.tensor([-1.0, 1.0]), torch.tensor([-2.0, -4.0])
    v = verdict_stats(train, held, fake)
    assert (v["logit_train"], v["logit_held"], v["logit_fake"]) == (3.0, 0.0, -3.0)
    assert (v["real_train"], v["real_held"], v["real_fake"]) == (1.0, 0.5, 0.0)
    assert (v["rt_train"], v["rt_held"], v["rt_fake"]) == (1.0, 0.0, -1.0)
    assert v["logit_gap_train_held"] == 3.0 and v["held_position"] == 0.5
    # A memorising D: unseen real images score below the fakes.
    assert verdict_stats(train, torch.tensor([-5.0]), fake)["held_position"] < 0
    assert math.isnan(verdict_stats(fake, held, fake)["held_position"])  # no span between fakes and training images


class BatchCentred(nn.Module):
    """A D whose logit is each image's mean minus its batch's: it shows which images shared a batch."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x: Tensor) -> Tensor:
        m = x.flatten(1).mean(1)
        return (m - m.mean()) * self.w


def test_logits_are_taken_in_batches_in_train_mode_and_restore_the_mode() -> None:
    D = BatchCentred().eval()
    x = torch.cat([torch.zeros(3, 1, 2, 2), torch.ones(3, 1, 2, 2)])
    assert torch.equal(logits(D, x, batch=3), torch.zeros(6))  # each batch of one kind: centred to 0
    assert torch.allclose(logits(D, x, batch=6), torch.tensor([-0.5] * 3 + [0.5] * 3))
    assert not D.training


class Images:
    def __init__(self, x: Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def get(self, idx: Tensor) -> tuple[Tensor, None]:
        return self.x[idx], None


class Mean(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1).mean(1) * self.w


class Constant(nn.Module):
    latent_space = LatentSpace(3)

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, z: Tensor) -> Tensor:
        return torch.full((len(z), 1, 2, 2), self.value) * self.w


def test_verdicts_draw_equal_sets_in_whole_batches() -> None:
    train, held = Images(torch.full((200, 1, 2, 2), 1.0)), Images(torch.full((150, 1, 2, 2), -0.5))
    v = d_verdicts(Mean(), Constant(-1.0), train, held, n=1000)
    assert v["n"] == 128  # min(1000, 200, 150) rounded down to whole batches of 64
    assert (v["logit_train"], v["logit_held"], v["logit_fake"]) == (1.0, -0.5, -1.0)
    assert v["held_position"] == pytest.approx(0.25)
    assert d_verdicts(Mean(), Constant(-1.0), train, Images(held.x[:10]), n=1000)["n"] == 10  # under one batch
    with pytest.raises(GanforgeError, match="at least 2"):
        d_verdicts(Mean(), Constant(-1.0), train, Images(held.x[:1]), n=1000)
