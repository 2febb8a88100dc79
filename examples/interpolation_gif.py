"""Load a trained run and make an animated GIF of its generator walking between two points of its latent space.

`ganforge.load_generator(RUN)` returns the run's generator (the EMA copy when the run kept one) in eval mode,
carrying its `LatentSpace` as `G.latent_space`: the noise size, any InfoGAN codes and, for a class-conditional
model, the number of classes. The script draws pairs of latent points from that space, walks from one to the
other along the great circle of the Gaussian noise (spherical interpolation, White 2016: a straight line
through N(0, I) passes through atypically short vectors near its middle) and back, and writes one frame per
step, each a row of `--pairs` walks. InfoGAN codes stay those of the first point; a conditional generator keeps
one class for the whole walk (`--class`).

Without `--run`, the script first trains the `demo` recipe (DCGAN on scikit-learn's digits) with
`ganforge.train`, so it runs on its own; after `make demo`, pass `--run runs/demo` instead.

    python examples/interpolation_gif.py --run runs/demo        # seconds
    python examples/interpolation_gif.py                        # trains the demo first: several minutes on a CPU
    python examples/interpolation_gif.py --tiny                 # a few training steps and frames, for the test suite

Writes OUT/interpolation.gif (and OUT/run/, the run it trained, when `--run` is not given).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torchvision.utils import make_grid

import ganforge


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between the rows of `a` and `b` (linear where they are nearly parallel)."""
    cos = ((a * b).sum(1, keepdim=True) / (a.norm(dim=1, keepdim=True) * b.norm(dim=1, keepdim=True))).clamp(-1, 1)
    omega = torch.acos(cos)
    sin = torch.sin(omega)
    spherical = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / sin.clamp_min(1e-6)
    return torch.where(sin > 1e-4, spherical, (1 - t) * a + t * b)


def latent_space_of(G: nn.Module) -> ganforge.LatentSpace:
    """The LatentSpace `ganforge.load_generator` attaches to G: z_dim, input_dim, num_classes, InfoGAN codes."""
    space = getattr(G, "latent_space", None)
    if not isinstance(space, ganforge.LatentSpace):
        raise ganforge.GanforgeError(f"{type(G).__name__} has no latent_space: load it with ganforge.load_generator.")
    return space


def frames(
    G: nn.Module, space: ganforge.LatentSpace, pairs: int, steps: int, seed: int, label: int | None
) -> list[Image.Image]:
    """One image per step of the walk there and back, each a row of `pairs` walks, upscaled for viewing."""
    gen = torch.Generator().manual_seed(seed)
    y = None
    if space.num_classes:
        y = torch.full((pairs,), label if label is not None else 0, dtype=torch.long)
    start, end = space.sample(pairs, gen, y=y), space.sample(pairs, gen, y=y)
    noise_a, noise_b = start.z[:, : space.z_dim], end.z[:, : space.z_dim]
    codes = start.z[:, space.z_dim :]  # InfoGAN's one-hot and continuous codes (empty for a plain GAN): kept fixed
    ts = [i / (steps - 1) for i in range(steps)]
    out = []
    with torch.no_grad():
        for t in ts + ts[-2:0:-1]:  # there and back, so the loop has no jump
            z = torch.cat([slerp(noise_a, noise_b, t), codes], 1)
            x = G(z) if y is None else G(z, y)  # a conditional generator takes the labels beside z
            grid = make_grid(x.float().clamp(-1, 1), nrow=pairs, padding=2, normalize=True, value_range=(-1, 1))
            img = Image.fromarray(grid.mul(255).round().byte().permute(1, 2, 0).numpy())
            scale = max(1, 96 // x.shape[-1])  # small images (16 or 32 px) are hard to see at their own size
            out.append(img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/examples/interpolation_gif"), help="output folder")
    parser.add_argument("--tiny", action="store_true", help="a few training steps and frames, for the test suite")
    parser.add_argument("--run", type=Path, default=None, help="a trained run folder (default: train the demo)")
    parser.add_argument("--pairs", type=int, default=None, help="walks side by side (default 8; --tiny: 2)")
    parser.add_argument("--steps", type=int, default=None, help="frames from one point to the other (default 24)")
    parser.add_argument("--class", dest="label", type=int, default=None, help="the class of a conditional model")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latent points")
    parser.add_argument("--no-ema", action="store_true", help="the raw generator instead of its EMA copy")
    args = parser.parse_args()
    pairs = args.pairs or (2 if args.tiny else 8)
    steps = args.steps or (4 if args.tiny else 24)
    if steps < 2:
        parser.error("--steps must be at least 2")
    args.out.mkdir(parents=True, exist_ok=True)

    try:
        run_dir = args.run
        if run_dir is None:
            tiny = {
                "train.steps": 4,
                "train.batch_size": 16,
                "data.image_size": 16,
                "model.z_dim": 16,
                "model.generator.args.width": 8,
                "model.discriminator.args.width": 8,
                "train.log_every": 2,
                "train.sample_every": 4,
                "train.checkpoint_every": 4,
                "train.n_samples": 16,
            }
            run_dir = ganforge.train("demo", tiny if args.tiny else None, out=args.out / "run").path
            print(f"wrote {run_dir}/ (trained the demo recipe)")
        G = ganforge.load_generator(run_dir, ema=not args.no_ema)
        space = latent_space_of(G)
        if args.label is not None and not 0 <= args.label < space.num_classes:
            raise ganforge.GanforgeError(
                f"--class {args.label}: the generator is "
                + (f"conditional with classes 0..{space.num_classes - 1}." if space.num_classes else "unconditional.")
            )
    except ganforge.GanforgeError as e:
        raise SystemExit(f"error: {e}") from None

    images = frames(G, space, pairs, steps, args.seed, args.label)
    gif = args.out / "interpolation.gif"
    images[0].save(gif, save_all=True, append_images=images[1:], duration=80, loop=0)
    kind = f"conditional, class {args.label or 0}" if space.num_classes else "unconditional"
    print(
        f"generator {type(G).__name__} ({kind}, noise {space.z_dim}, input {space.input_dim}): "
        f"{len(images)} frames of {pairs} walks"
    )
    print(f"wrote {gif}")


if __name__ == "__main__":
    main()
