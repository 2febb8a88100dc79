"""A custom generator, registered under a name and trained from a shipped recipe in place of the recipe's own.

`@ganforge.register_generator("upsample_conv")` makes the class below a generator family that any recipe can
name as `model.generator: {name: upsample_conv, args: {...}}`; ganforge builds it as
`UpsampleConvGenerator(z_dim=..., shape=(C, H, W), **args)` and checks the recipe's `args` against its
signature. The script trains the `demo` recipe (DCGAN on scikit-learn's digits, EMA of G) with this generator
instead of DCGAN's transposed convolutions (nearest-neighbour upsampling and 3x3 convolutions avoid their
checkerboard artefacts, Odena et al. 2016), then samples the trained run and prints its status and last
logged losses.

    python examples/custom_generator.py            # the demo recipe: 32x32, 2,000 steps, ~6 min on a CPU
    python examples/custom_generator.py --tiny     # a few steps at 16x16, for the test suite

Writes OUT/run/ (a ganforge run folder: config.yaml, metrics.jsonl, checkpoints, report.html, ...) and
OUT/samples.png (64 samples of the run's EMA generator).

The run's config.yaml names `upsample_conv`, so a process that loads the run must register it first. For the
command line (`ganforge sample OUT/run`) put the class in a module of its own and list that module in the
recipe's `plugins:` (see docs/guide/library.md, "Plugins").
"""

from __future__ import annotations

import argparse
import itertools
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.utils import save_image

import ganforge


@ganforge.register_generator("upsample_conv")
class UpsampleConvGenerator(nn.Module):
    """z -> 4x4 feature maps, then per doubling nearest 2x upsampling and a 3x3 conv (batch norm, ReLU); tanh output."""

    def __init__(self, z_dim: int, shape: tuple[int, ...], width: int = 32) -> None:
        super().__init__()
        if len(shape) != 3 or shape[1] != shape[2] or shape[1] < 8 or 2 ** round(math.log2(shape[1])) != shape[1]:
            raise ValueError(f"upsample_conv makes square images of a power-of-two size >= 8, not {shape}")
        doublings = int(math.log2(shape[1])) - 2
        widths = [width * 2 ** (doublings - 1 - i) for i in range(doublings)]  # per stage, halving: 4w, 2w, w at 32x32
        self.stem = nn.Sequential(nn.Linear(z_dim, widths[0] * 16), nn.Unflatten(1, (widths[0], 4, 4)))
        blocks: list[nn.Module] = [nn.BatchNorm2d(widths[0]), nn.ReLU()]
        for cin, cout in itertools.pairwise(widths):
            blocks += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
            ]
        # The last doubling goes straight to the image's channels, as DCGAN's last layer does.
        blocks += [
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(widths[-1], shape[0], 3, padding=1),
            nn.Tanh(),
        ]
        self.body = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.stem(z))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/examples/custom_generator"), help="output folder")
    parser.add_argument("--tiny", action="store_true", help="a few steps at 16x16 (seconds), for the test suite")
    parser.add_argument("--recipe", default="demo", help="a shipped image recipe or a YAML path (default: demo)")
    parser.add_argument(
        "--width", type=int, default=16, help="channels of the generator's last hidden stage (its `width` arg)"
    )
    args = parser.parse_args()

    overrides: dict[str, Any] = {"model.generator": {"name": "upsample_conv", "args": {"width": args.width}}}
    if args.tiny:
        overrides = {
            "model.generator": {"name": "upsample_conv", "args": {"width": 4}},
            "model.discriminator.args.width": 8,
            "model.z_dim": 16,
            "data.image_size": 16,
            "train.steps": 6,
            "train.batch_size": 16,
            "train.log_every": 2,
            "train.sample_every": 6,
            "train.checkpoint_every": 6,
            "train.n_samples": 16,
        }
    run_dir = args.out / "run"
    try:
        run = ganforge.train(args.recipe, overrides, out=run_dir)
    except ganforge.GanforgeError as e:  # e.g. OUT/run already holds a run: ganforge never overwrites one
        raise SystemExit(f"error: {e}") from None

    G = run.generator()  # the EMA generator, an UpsampleConvGenerator, in eval mode
    print(
        f"run {run.path}: status {run.status}, generator {type(G).__name__} ({sum(p.numel() for p in G.parameters()):,} weights)"
    )
    logged = [m for m in run.metrics if "g_loss" in m]
    if logged:
        last = logged[-1]
        print(
            f"last log line: step {last['step']}  d_loss {last['d_loss']:.3f}  g_loss {last['g_loss']:.3f}  "
            f"D accuracy real/fake {last.get('d_acc_real', float('nan')):.2f}/{last.get('d_acc_fake', float('nan')):.2f}"
        )
    grid = args.out / "samples.png"
    save_image(run.sample(64, seed=0), grid, nrow=8, normalize=True, value_range=(-1, 1))
    print(f"wrote {run.path}/ (report: {run.path / 'report.html'})\nwrote {grid}")


if __name__ == "__main__":
    main()
