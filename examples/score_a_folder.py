"""Score a folder of PNG files written by another tool against a reference dataset, with `ganforge.evaluate`.

Any generator, in any framework, can be compared with ganforge's numbers: write its samples as image files and
point `ganforge.evaluate` at the folder. The images are read, resized to the reference's size and scored in
the feature space of the reference's extractor (for `digits`, ganforge's digits classifier; Inception for
datasets without a domain classifier), and the result carries the protocol that produced the numbers: the
extractor and its weights' hash, the reference split and size, the counts and the seed.

Without `--folder`, the script plays the other tool itself: it writes scikit-learn's digits, each shifted by a
pixel at random and blurred by Gaussian noise of `--noise` (PIL only, no ganforge), as 16x16 grey PNG files.
Raising `--noise` raises the Frechet distance and lowers precision.

    python examples/score_a_folder.py                          # 1,000 images: under a minute on a CPU
    python examples/score_a_folder.py --folder my_samples/ --reference fashion_mnist --image-size 32
    python examples/score_a_folder.py --tiny                   # 60 images, for the test suite

Writes OUT/pngs/ (the images, unless --folder is given) and OUT/scores.json (ganforge.evaluate's result).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

import ganforge


def write_pngs(folder: Path, n: int, noise: float, seed: int) -> int:
    """Write `n` noisy, shifted digits as 16x16 grey PNGs into `folder` (the stand-in for another tool's output)."""
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    digits = load_digits().images  # (1797, 8, 8), values 0..16
    folder.mkdir(parents=True, exist_ok=True)
    for i, k in enumerate(rng.choice(len(digits), size=n, replace=n > len(digits))):
        img = Image.fromarray((digits[k] * (255 / 16)).astype(np.uint8)).resize((16, 16), Image.Resampling.BILINEAR)
        x = np.roll(np.asarray(img, dtype=np.float64), tuple(rng.integers(-1, 2, size=2)), axis=(0, 1))
        x = np.clip(x + rng.normal(0.0, 255 * noise, size=x.shape), 0, 255)
        Image.fromarray(x.round().astype(np.uint8)).save(folder / f"sample_{i:05d}.png")
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/examples/score_a_folder"), help="output folder")
    parser.add_argument("--tiny", action="store_true", help="60 images (seconds), for the test suite")
    parser.add_argument("--folder", type=Path, default=None, help="score this folder of images instead")
    parser.add_argument("--reference", default="digits", help="the real dataset to compare with (default: digits)")
    parser.add_argument("--image-size", type=int, default=16, help="the reference's image size (default 16)")
    parser.add_argument("--metrics", default="fd,pr,coverage", help="metrics to compute (default fd,pr,coverage)")
    parser.add_argument("--n", type=int, default=None, help="images to write and score (default 1000; --tiny: 60)")
    parser.add_argument("--noise", type=float, default=0.1, help="noise std of the written images, in [0, 1] units")
    args = parser.parse_args()
    n = args.n or (60 if args.tiny else 1000)
    args.out.mkdir(parents=True, exist_ok=True)

    folder = args.folder
    if folder is None:
        folder = args.out / "pngs"
        write_pngs(folder, n, args.noise, seed=0)
        print(f"wrote {n} PNG files to {folder}/")
    try:
        res = ganforge.evaluate(folder, args.metrics, reference=args.reference, image_size=args.image_size, n=n)
    except ganforge.GanforgeError as e:  # an empty folder, an unknown dataset or metric, ...
        raise SystemExit(f"error: {e}") from None

    protocol = res["protocol"]
    print(f"{protocol['generated']['source']}: {protocol['generated']['n']} images against {args.reference} (train):")
    for key, value in res["metrics"].items():
        print(f"  {key} = {value:.4f}")
    ext = protocol.get("extractor") or {}  # None when no metric asked uses features or logits
    print(
        f"extractor: {ext.get('extractor', 'none')} ({ext.get('implementation', '-')}, weights sha256 {ext.get('weights_sha256', '-')[:12]})"
    )
    for note in res.get("notes", []):
        print(note)
    scores = args.out / "scores.json"
    scores.write_text(json.dumps(res, indent=2, default=str) + "\n")
    print(f"wrote {scores}")


if __name__ == "__main__":
    main()
