"""The `translate` command (an image or a folder through one translator of a CycleGAN run) and `sample` on such a run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch

from ..errors import GanforgeError

if TYPE_CHECKING:
    from ..data.unpaired import UnpairedDataset


def _read_inputs(source: Path, channels: int, size: int, fit: str) -> tuple[list[str], torch.Tensor, list[str]]:
    """(relative names, images in [-1, 1] at the run's shape, unreadable names) of an image file or a folder of them."""
    from ..data.dataset import to_float
    from ..data.image_folder import IMAGE_EXTENSIONS, _decode, list_image_files
    from ..data.resize import resize_images

    if source.is_dir():
        names = list_image_files(str(source))
        if not names:
            raise GanforgeError(
                f"{str(source)!r} holds no images ({', '.join(IMAGE_EXTENSIONS)}, searched recursively)."
            )
        paths = [source / n for n in names]
    elif source.is_file():
        names, paths = [source.name], [source]
    else:
        raise GanforgeError(f"INPUT {str(source)!r} does not exist: give an image file or a folder of images.")
    good, xs, bad = [], [], []
    for name, path in zip(names, paths):
        arr = _decode(str(path), channels)
        if arr is None:
            bad.append(name)
            continue
        t = torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()
        xs.append(resize_images(t, size, fit))
        good.append(name)
    if not xs:
        raise GanforgeError(
            f"none of the {len(names)} file(s) in {str(source)!r} could be read as an image (e.g. {bad[0]!r})."
        )
    return good, to_float(torch.cat(xs)), bad


def cmd_translate(ns: argparse.Namespace) -> int:
    from ..atomic import atomic_file
    from ..translation import DIRECTIONS, load_translators, translate
    from .sample_eval import _device

    if ns.direction not in DIRECTIONS:
        raise GanforgeError(
            f"--direction must be one of {', '.join(DIRECTIONS)} (a2b: G_ab, domain a to b), got {ns.direction!r}."
        )
    out = Path(ns.out)
    if out.exists() and not out.is_dir():
        raise GanforgeError(f"--out {str(out)!r} is a file; give a folder for the translated images.")
    if ns.batch < 1:
        raise GanforgeError(f"--batch must be at least 1, got {ns.batch}.")
    device = _device(ns.device)
    nets, recipe, shape = load_translators(ns.run)
    side = recipe.data.a if ns.direction == "a2b" else recipe.data.b
    fit = side.fit if side is not None else recipe.data.fit
    names, x, bad = _read_inputs(Path(ns.input), shape[0], shape[1], fit)
    if bad:
        print(f"warning: skipped {len(bad)} unreadable file(s), e.g. {bad[0]!r}", file=sys.stderr)
    G = nets[DIRECTIONS[ns.direction]].to(device)
    y = translate(G, x, batch=ns.batch, device=device)
    from torchvision.utils import save_image

    written = 0
    for name, img in zip(names, y):
        dst = out / Path(name).with_suffix(".png")  # the input's name and sub-folder, always a PNG
        if dst.exists() and not ns.overwrite:
            raise GanforgeError(
                f"{str(dst)!r} exists; use --overwrite to replace files in --out, or choose a new folder."
            )
        dst.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(dst) as f:
            save_image(((img + 1) / 2).clamp(0, 1), f, format="PNG")
        written += 1
    print(f"wrote {written} translated image(s) ({ns.direction}, {shape[1]}x{shape[2]}) to {out}")
    return 0


def sample_triplets(ns: argparse.Namespace) -> int:
    """`ganforge sample` on a translation run: n held-out images of each domain as input | translation | reconstruction."""
    from ..data import load_dataset
    from ..plots import save_image_grid
    from ..translation import load_translators, triplet_grid
    from .sample_eval import _device, _write_jpeg

    out = Path(ns.out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise GanforgeError(
            f"--out {str(out)!r}: a translation run's samples are a grid of triplets; use .png or .jpg."
        )
    device = _device(ns.device)
    nets, recipe, _shape = load_translators(ns.source)
    # A translation run's data are unpaired: two domains.
    test = cast("UnpairedDataset", load_dataset(recipe.data, split="test", seed=recipe.seed))
    gen = torch.Generator().manual_seed(ns.seed)
    xs = []
    for s in ("a", "b"):
        ds = test.side(s)
        xs.append(ds.get(torch.randperm(len(ds), generator=gen)[: ns.n])[0])
    grid = triplet_grid(nets["G_ab"].to(device), nets["G_ba"].to(device), xs[0], xs[1], device=device)

    def draw(path: Path) -> None:
        save_image_grid(grid, path, nrow=6)

    if out.suffix.lower() == ".png":
        draw(out)
    else:
        _write_jpeg(out, draw)
    print(
        f"wrote {out}: {max(len(xs[0]), len(xs[1]))} rows of a | G_ab(a) | G_ba(G_ab(a)) | b | G_ba(b) | G_ab(G_ba(b)) "
        "on held-out test images"
    )
    return 0
