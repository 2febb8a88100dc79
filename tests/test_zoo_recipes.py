"""Every shipped toy recipe trains end to end (shrunk to seconds) and its generator reloads for sampling."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganforge.benchmarks.toy import SHOWCASE, ZOO
from ganforge.config import load_recipe
from ganforge.sampling import load_generator, sample
from ganforge.training.trainer import Trainer

SHRINK = [
    "train.steps=3",
    "train.batch_size=16",
    "train.log_every=1",
    "train.progress=false",
    "data.n_points=400",
    "model.generator.args.hidden=16",
    "model.discriminator.args.hidden=16",
    "train.threads=1",
]


@pytest.mark.parametrize("recipe", [r for r, _ in ZOO + SHOWCASE])
def test_toy_recipe_trains_and_samples(recipe: str, tmp_path: Path) -> None:
    r = load_recipe(recipe, [*SHRINK, "data.name=ring"])
    assert r.source and r.description  # each recipe names its paper
    out = Trainer(r, tmp_path / recipe, progress=False).run()
    G, rec, _shape = load_generator(out)
    x = sample(G, 50, rec.model.z_dim)
    assert x.shape == (50, 2) and torch.isfinite(x).all()
