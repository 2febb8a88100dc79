"""Every Fashion-MNIST paper recipe of the fashion benchmark trains end to end (shrunk to seconds, on digits) and reloads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganforge.benchmarks.fashion import ROWS
from ganforge.config import load_recipe
from ganforge.sampling import load_generator, sample
from ganforge.training.trainer import Trainer

SHRINK = [
    "data.name=digits",
    "data.image_size=16",
    "train.steps=2",
    "train.batch_size=10",
    "train.log_every=1",
    "train.progress=false",
    "train.threads=1",
    "train.precision=fp32",
    "train.n_samples=20",
    "model.generator.args.width=8",
    "model.discriminator.args.width=8",
]
EXTRA = {
    "infogan-fashion": ["model.generator.args.fc=16", "model.discriminator.args.fc=16"],
    "ssgan-fashion": [
        "game.args.labelled=20",
        "model.generator.args.hidden=16",
        "model.discriminator.args.hidden=[16, 8]",
    ],
    "ssgan-conv-fashion": ["game.args.labelled=20"],
    "biggan-fashion": ["model.generator.args.shared_dim=4"],
    "began-fashion": ["model.discriminator.args.hidden=8"],
    "sagan-fashion": ["model.generator.args.attention=8", "model.discriminator.args.attention=8"],
}


NO_WIDTH = {"ssgan-fashion"}  # fully connected networks: their size is `hidden`, set in EXTRA


def shrink(recipe: str) -> list[str]:
    """SHRINK and the recipe's EXTRA overrides (without the width ones for networks that have no width)."""
    base = [o for o in SHRINK if not (recipe in NO_WIDTH and ".args.width=" in o)]
    return base + EXTRA.get(recipe, [])


@pytest.mark.parametrize("recipe", sorted({r.recipe for r in ROWS} | {"ssgan-conv-fashion"}))
def test_paper_recipe_trains_and_samples(recipe: str, tmp_path: Path) -> None:
    r = load_recipe(recipe, shrink(recipe))
    assert r.source and r.description and "arXiv" in r.source  # each recipe names its paper
    out = Trainer(r, tmp_path / recipe, progress=False).run()
    G, _rec, _shape = load_generator(out)
    kwargs = {"y": 3} if G.latent_space.num_classes else {}
    x = sample(G, 6, **kwargs)
    assert x.shape == (6, 1, 16, 16) and torch.isfinite(x).all()
    if r.model.conditional:
        assert G.latent_space.num_classes == 10
