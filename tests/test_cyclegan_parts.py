"""CycleGAN's parts (issue 14): the ResNet translator, PatchGAN and the seeded history pool."""

from __future__ import annotations

import pytest
import torch

from ganforge.errors import ConfigError
from ganforge.games.image_pool import ImagePool
from ganforge.models.cyclegan import PatchDiscriminator, ResnetTranslator


@pytest.mark.parametrize("size, width, layers, patches", [(32, 16, 2, 6), (64, 16, 3, 6), (256, 8, 3, 30)])
def test_translator_and_patchgan_shapes(size: int, width: int, layers: int, patches: int) -> None:
    G = ResnetTranslator((3, size, size), width=width, blocks=2)
    D = PatchDiscriminator((3, size, size), width=width, layers=layers)
    x = torch.rand(2, 3, size, size) * 2 - 1
    y = G(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    assert D(x).shape == (2, 1, patches, patches)
    assert ResnetTranslator((1, size, size), width=4, blocks=1, out_channels=3)(x[:, :1]).shape == (2, 3, size, size)


def test_patchgan_sees_a_70_pixel_patch_at_three_layers() -> None:
    D = PatchDiscriminator((1, 128, 128), width=4, layers=3)
    assert D.receptive_field() == 70
    # Instance norm's statistics span the whole image; without them, one logit's gradient covers its patch only.
    for i, m in enumerate(D.net):
        if isinstance(m, torch.nn.InstanceNorm2d):
            D.net[i] = torch.nn.Identity()
    x = torch.randn(1, 1, 128, 128, requires_grad=True)
    out = D(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = x.grad[0, 0].abs().sum(dim=1).nonzero().flatten()
    cols = x.grad[0, 0].abs().sum(dim=0).nonzero().flatten()
    assert int(rows[-1] - rows[0]) + 1 == 70 and int(cols[-1] - cols[0]) + 1 == 70


def test_bad_sizes_are_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match="divisible by 4"):
        ResnetTranslator((3, 30, 30), downsamplings=2)
    with pytest.raises(ConfigError, match="use at most"):
        PatchDiscriminator((3, 16, 16), layers=4)


def test_pool_fills_then_swaps_with_probability_half_and_is_seeded() -> None:
    pool = ImagePool(size=4, seed=0)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and len(pool.images) == 4  # filling: every image goes in and out
    returned_old = 0
    for k in range(500):
        new = torch.full((1, 1, 1, 1), 100.0 + k)
        out = pool.query(new)
        returned_old += int(out.item() != new.item())
        assert len(pool.images) == 4
    assert 200 < returned_old < 300  # p = 0.5
    a, b = ImagePool(4, seed=3), ImagePool(4, seed=3)
    seq = torch.randn(40, 1, 2, 2)
    assert torch.equal(
        torch.cat([a.query(seq[i : i + 5]) for i in range(0, 40, 5)]),
        torch.cat([b.query(seq[i : i + 5]) for i in range(0, 40, 5)]),
    )
    assert ImagePool(0).query(seq).equal(seq)


def test_pool_state_round_trips_contents_and_draws() -> None:
    a = ImagePool(3, seed=1)
    a.query(torch.randn(5, 1, 2, 2))
    b = ImagePool(3, seed=99)
    b.load_state_dict(a.state_dict())
    nxt = torch.randn(6, 1, 2, 2)
    assert torch.equal(a.query(nxt), b.query(nxt))
    with pytest.raises(ValueError, match="size"):
        ImagePool(5).load_state_dict(a.state_dict())
