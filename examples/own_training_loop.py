"""Your own training loop with ganforge's building blocks: hinge loss, R1 penalty and an EMA of G.

ganforge's recipes and trainer are optional. Here a small DCGAN-like generator and discriminator written in
plain torch are trained on scikit-learn's handwritten digits (16x16) by a loop of about thirty lines that uses
only ganforge's loss functions (`hinge_d_loss`, `hinge_g_loss`), its R1 gradient penalty (`r1_penalty`, Mescheder
et al. 2018) and its weight average (`make_ema`). The EMA generator is then scored with `ganforge.evaluate`
against the `digits` dataset: Frechet distance and precision/recall in the feature space of ganforge's digits
classifier, with the protocol that makes the numbers reproducible.

    python examples/own_training_loop.py                 # 2,000 steps: about two minutes on a CPU
    python examples/own_training_loop.py --tiny          # a few steps, for the test suite

Writes OUT/samples.png (64 samples of the EMA generator), OUT/generator_ema.pt (its state dict) and
OUT/evaluation.json (ganforge.evaluate's result: metrics and protocol).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn
from torchvision.utils import save_image

import ganforge

IMAGE_SIZE = 16
Z_DIM = 32


def real_digits() -> torch.Tensor:
    """The `digits` train split (sklearn's 8x8 digits, 1,437 images) as (N, 1, 16, 16) floats in [-1, 1]."""
    return ganforge.load_dataset("digits", image_size=IMAGE_SIZE).x.float() / 127.5 - 1


class Generator(nn.Module):
    """z -> 4x4 -> 8x8 -> 16x16 with transposed convolutions and batch norm; tanh output in [-1, 1]."""

    def __init__(self, z_dim: int = Z_DIM, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(z_dim, 4 * width, 4, 1, 0, bias=False),  # 1x1 -> 4x4
            nn.BatchNorm2d(4 * width),
            nn.ReLU(),
            nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1, bias=False),  # -> 8x8
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, 1, 4, 2, 1),  # -> 16x16
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


class Discriminator(nn.Module):
    """16x16 -> 8x8 -> 4x4 -> one logit, strided convolutions and leaky ReLU (no batch norm: R1 is per sample)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 4, 1, 0),  # 4x4 -> 1x1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


def train(steps: int, batch_size: int, width: int, r1_gamma: float, seed: int) -> nn.Module:
    """Train G and D with the hinge loss and R1; return the EMA generator, in eval mode."""
    torch.manual_seed(seed)
    data = real_digits()
    G, D = Generator(Z_DIM, width), Discriminator(width)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    ema = ganforge.make_ema(G, decay=0.999)  # a torch AveragedModel; its .module is the averaged generator
    for step in range(1, steps + 1):
        real = data[torch.randint(len(data), (batch_size,))]

        # D step: hinge loss on real and (detached) fake images, plus gamma/2 * E||grad D(real)||^2.
        fake = G(torch.randn(batch_size, Z_DIM))
        d_adv = ganforge.hinge_d_loss(D(real), D(fake.detach()))
        r1 = ganforge.r1_penalty(D, real)
        opt_d.zero_grad(set_to_none=True)
        (d_adv + 0.5 * r1_gamma * r1).backward()
        opt_d.step()

        # G step: -E[D(G(z))], then fold G's new weights into the average.
        g_loss = ganforge.hinge_g_loss(D(G(torch.randn(batch_size, Z_DIM))))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        ema.update_parameters(G)

        if step == 1 or step % max(1, steps // 10) == 0 or step == steps:
            print(
                f"step {step:5d}  d_loss {d_adv.item():.3f}  r1 {r1.item():.3f}  g_loss {g_loss.item():.3f}", flush=True
            )
    return ema.module.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/examples/own_training_loop"), help="output folder")
    parser.add_argument("--tiny", action="store_true", help="a few steps and samples (seconds), for the test suite")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 2000; --tiny: 20)")
    parser.add_argument("--width", type=int, default=None, help="channel width of G and D (default 16; --tiny: 8)")
    parser.add_argument("--n", type=int, default=None, help="samples to evaluate (default 2000; --tiny: 100)")
    parser.add_argument("--r1-gamma", type=float, default=1.0, help="R1 weight gamma (the penalty gets gamma / 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    steps = args.steps or (20 if args.tiny else 2000)
    n = args.n or (100 if args.tiny else 2000)
    width = args.width or (8 if args.tiny else 16)
    batch_size = 16 if args.tiny else 64
    args.out.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    G_ema = train(steps, batch_size, width, args.r1_gamma, args.seed)
    print(f"trained {steps} steps in {time.perf_counter() - start:.0f} s")

    # The averaged generator as images, and scored: `latent` tells evaluate and sample its noise size.
    grid = args.out / "samples.png"
    save_image(
        ganforge.sample(G_ema, 64, latent=Z_DIM, seed=args.seed), grid, nrow=8, normalize=True, value_range=(-1, 1)
    )
    weights = args.out / "generator_ema.pt"
    torch.save(G_ema.state_dict(), weights)
    res = ganforge.evaluate(G_ema, "fd,pr", reference="digits", image_size=IMAGE_SIZE, latent=Z_DIM, n=n)
    report = args.out / "evaluation.json"
    report.write_text(json.dumps(res, indent=2, default=str) + "\n")

    print(f"evaluation of the EMA generator on {res['protocol']['generated']['n']} samples against digits (train):")
    for key, value in res["metrics"].items():
        print(f"  {key} = {value:.4f}")
    print(f"wrote {grid}\nwrote {weights}\nwrote {report}")


if __name__ == "__main__":
    main()
