"""Model families: shapes for every resolution, the PacGAN toy networks, argument checking."""

from __future__ import annotations

import pytest
import torch

from ganforge.errors import ConfigError
from ganforge.models import build_discriminator, build_generator
from ganforge.nn import Maxout


@pytest.mark.parametrize("res", [8, 16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_any_power_of_two(res: int, channels: int) -> None:
    G = build_generator("dcgan", 10, (channels, res, res), {"width": 8})
    D = build_discriminator("dcgan", (channels, res, res), {"width": 8})
    x = G(torch.randn(4, 10))
    assert x.shape == (4, channels, res, res)
    assert x.abs().max() <= 1.0  # tanh output
    assert D(x).shape == (4,)


def test_dcgan_follows_radford_rules() -> None:
    D = build_discriminator("dcgan", (1, 32, 32), {})
    convs = [m for m in D.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.stride == (2, 2) for c in convs[:-1])  # strided convolutions, no pooling
    assert not isinstance(D.body[1], torch.nn.BatchNorm2d)  # no BN on D's input layer
    assert any(isinstance(m, torch.nn.LeakyReLU) and m.negative_slope == 0.2 for m in D.modules())
    w = convs[1].weight
    assert abs(w.std().item() - 0.02) < 0.005


@pytest.mark.parametrize("shape", [(1, 12, 12), (1, 32, 16), (1, 4, 4), (2,)])
def test_dcgan_rejects_bad_shapes(shape: tuple) -> None:
    with pytest.raises(ConfigError):
        build_generator("dcgan", 10, shape, {})


def test_pacgan_toy_networks() -> None:
    G = build_generator("mlp", 2, (2,), {"hidden": 400, "layers": 4, "norm": "batch", "act": "relu"})
    D = build_discriminator("mlp", (2,), {"hidden": 200, "layers": 3, "act": "maxout", "pieces": 5})
    linears = [m for m in G.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [400, 400, 400, 400, 2]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in G.modules()) == 4
    maxouts = [m for m in D.modules() if isinstance(m, Maxout)]
    assert len(maxouts) == 3 and all(m.pieces == 5 and m.out_features == 200 for m in maxouts)
    assert D(G(torch.randn(7, 2))).shape == (7,)


def test_maxout_is_max_over_pieces() -> None:
    m = Maxout(3, 2, pieces=4)
    x = torch.randn(5, 3)
    full = m.linear(x).view(5, 2, 4)
    assert torch.equal(m(x), full.max(-1).values)


def test_unknown_family_and_argument_list_choices() -> None:
    with pytest.raises(ConfigError, match="dcgan"):
        build_generator("dcgn", 10, (1, 8, 8), {})
    with pytest.raises(ConfigError, match="width"):
        build_generator("dcgan", 10, (1, 8, 8), {"widht": 3})
