"""Run by torchrun from test_distributed.py: trains and evaluates the given cases on every rank (rank 0 writes).

Gradient-penalty interpolation points are drawn from each rank's own RNG in real runs; here they are
a function of the sample, so that the one-process reference (the test process) uses the same points
and the comparison tests the synchronisation alone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch


def sample_uniform(n: int, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """U[0, 1)-like values that depend only on each sample (same points on one process or several)."""
    u = torch.frac(like.detach().float().flatten(1)[:n].sum(1).abs() * 97.0 + 0.123)
    return u.view(n, *([1] * (like.dim() - 1)))


def patch() -> None:
    import ganforge.regularizers as regs

    regs._uniform = sample_uniform


def eval_case(collective: object | None = None) -> dict:
    """Evaluate a fixed, untrained small generator on digits (with `collective`: sharded over the ranks)."""
    from ganforge.config import load_recipe
    from ganforge.data import load_dataset
    from ganforge.generation import generator_from_recipe
    from ganforge.latent import latent_space
    from ganforge.metrics.evaluate import Evaluator

    r = load_recipe("dcgan-digits", ["model.generator.args.width=8", "model.z_dim=16"])
    ds = load_dataset(r.data, seed=0)
    lat = latent_space(r, ds)
    torch.manual_seed(0)
    G = generator_from_recipe(r, tuple(ds.shape), lat, spectral_norm=False).eval()
    ev = Evaluator(ds, ["fd", "is", "kid", "pr", "coverage"], n=300, batch_size=64, kid_subsets=10, kid_subset_size=100)
    return ev.evaluate_generator(G, lat, collective=collective)


def main() -> None:
    patch()
    from ganforge.config import load_recipe
    from ganforge.training import Trainer, distributed

    out, spec = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
    for name, (recipe, overrides) in spec.get("train", {}).items():
        Trainer.start(load_recipe(recipe, overrides), out / name, progress=False).run()
    if spec.get("eval"):
        d = distributed.from_env()
        distributed.init(d)
        result = eval_case(distributed.Collective(d))
        if d.main:
            (out / "eval.json").write_text(json.dumps(result["metrics"]))
    distributed.shutdown()


if __name__ == "__main__":
    main()
