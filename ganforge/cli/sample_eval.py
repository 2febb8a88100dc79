"""The `sample`, `eval` and `export` commands, and the checks of their options (--seed, --device, output files)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import GanforgeError
from ..metrics.targets import check_seed

SAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".npy", ".csv")


def _device(name: str):
    """--device: auto, cpu, cuda, cuda:N or mps (ConfigError when it is not available here)."""
    from ..training.hardware import resolve_device

    return resolve_device(name)


def _check_output_file(path: Path, option: str, example: str) -> None:
    """A path the command will write a file to: not an existing folder, and its parent is not a file."""
    if path.is_dir():
        raise GanforgeError(f"{option} {str(path)!r} is an existing folder; give a file name (e.g. {path / example}).")
    parent = next((q for q in path.parents if q.exists()), None)
    if parent is not None and not parent.is_dir():
        raise GanforgeError(f"{option} {str(path)!r} cannot be written: {str(parent)!r} is a file, not a folder.")


def _write_jpeg(path: Path, write_png) -> None:
    """Write what `write_png` draws as a JPEG at `path` (via a temporary PNG beside it)."""
    import os
    import tempfile

    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    try:
        write_png(Path(tmp))
        with Image.open(tmp) as im:
            im.convert("RGB").save(tmp + ".jpg", format="JPEG", quality=95)
        os.replace(tmp + ".jpg", path)
    finally:
        for f in (tmp, tmp + ".jpg"):
            if os.path.exists(f):
                os.unlink(f)


def cmd_export(ns: argparse.Namespace) -> int:
    import torch

    from ..config import DataConfig
    from ..data import load_dataset
    from ..plots import save_images

    out = Path(ns.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GanforgeError(f"--out {str(out)!r} exists and is not an empty folder; choose a new folder.")
    ds = load_dataset(
        DataConfig(
            name=ns.dataset, base=ns.base, image_size=ns.image_size, fit=ns.fit, split=ns.split, download=ns.download
        )
    )
    if ds.kind != "image":
        raise GanforgeError(f"dataset {ns.dataset!r} holds points, not images; nothing to export as PNG files.")
    n = min(ns.n or len(ds), len(ds))
    # Shuffled, so that the folder's first files (what a reader samples first) are not one class.
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(ns.seed))[:n]
    paths = save_images(ds.get(idx)[0], out)
    print(f"wrote {len(paths)} PNG images of {ds.name} ({ns.split} split) to {out}")
    return 0


def cmd_sample(ns: argparse.Namespace) -> int:
    import numpy as np

    from ..latent import check_truncation
    from ..plots import save_image_grid, save_images, save_points_plot
    from ..sampling import load_generator, sample

    # Every option is checked before the generator is loaded, so a typo costs nothing.
    if ns.n < 1:
        raise GanforgeError(f"--n must be at least 1, got {ns.n}.")
    if ns.nrow is not None and ns.nrow < 1:
        raise GanforgeError(f"--nrow (images per grid row) must be at least 1, got {ns.nrow}.")
    check_seed(ns.seed)
    check_truncation(ns.truncation, "--truncation")
    out = Path(ns.out)
    _check_output_file(out, "--out", "samples.png")
    suffix = out.suffix.lower()
    if suffix not in SAMPLE_SUFFIXES:
        raise GanforgeError(
            f"--out {str(out)!r}: unknown file type {suffix or '(no suffix)'!r}. Valid choices: "
            f"{', '.join(SAMPLE_SUFFIXES)} (.png/.jpg: a grid or scatter plot; .npy: the raw samples; "
            ".csv: the raw samples of point data)."
        )
    if ns.individual and Path(ns.individual).exists() and not Path(ns.individual).is_dir():
        raise GanforgeError(f"--individual {ns.individual!r} is an existing file; give a folder.")
    from ..translation import is_translation_run

    if is_translation_run(ns.source):
        from .translate import sample_triplets

        return sample_triplets(ns)
    device = _device(ns.device)
    G, recipe, shape = load_generator(ns.source, use_ema=not ns.no_ema)
    is_image = len(shape) == 3
    if suffix == ".csv" and is_image:
        raise GanforgeError(
            f"--out {str(out)!r}: .csv holds point samples; this generator makes {tuple(shape)} "
            "images, so use .png/.jpg for a grid or .npy for the raw array."
        )
    G = G.to(device)
    from ..models.progan import growth_note

    note = growth_note(G)
    if note is not None:  # a ProGAN run mid-growth: say that these images are upsampled from a lower resolution
        print(f"note: {note}", file=sys.stderr)
    from ..generation import resolve_latent

    space = resolve_latent(G, None)
    if getattr(ns, "class_", None) is not None:
        if not space.num_classes:
            raise GanforgeError(
                f"{ns.source} holds an unconditional generator; --class needs a conditional one "
                "(model.conditional: true)."
            )
        if not 0 <= ns.class_ < space.num_classes:
            raise GanforgeError(f"--class must be in 0..{space.num_classes - 1}, got {ns.class_}.")
    x = sample(G, ns.n, seed=ns.seed, truncation=ns.truncation, y=ns.class_)
    if suffix == ".npy":
        from ..atomic import atomic_file

        with atomic_file(out) as f:
            np.save(f, x.numpy())
        what = "images in [-1, 1]" if is_image else "points"
        print(f"wrote {out} ({ns.n} {what}, array shape {tuple(x.shape)})")
    elif suffix == ".csv":
        from ..atomic import atomic_file

        with atomic_file(out) as f:
            header = ",".join(f"x{i}" for i in range(x.shape[1]))
            np.savetxt(f, x.numpy(), delimiter=",", header=header, comments="", fmt="%.9g")
        print(f"wrote {out} ({ns.n} points)")
    else:
        if is_image:

            def draw(path: Path) -> None:
                save_image_grid(x, path, nrow=ns.nrow)
        else:
            centres = None
            from ..data import is_mixture, mixture_spec

            if is_mixture(recipe.data.name):
                centres = mixture_spec(recipe.data.name)[0]

            def draw(path: Path) -> None:
                save_points_plot(x[:, :2], path, centres=centres, title=f"{recipe.name}: {ns.n} samples")

        if suffix == ".png":
            draw(out)
        else:
            _write_jpeg(out, draw)
        print(f"wrote {out}")
    if ns.individual:
        if is_image:
            paths = save_images(x, Path(ns.individual))
            print(f"wrote {len(paths)} images to {ns.individual}")
        else:
            Path(ns.individual).mkdir(parents=True, exist_ok=True)
            np.save(Path(ns.individual) / "samples.npy", x.numpy())
            print(f"wrote {Path(ns.individual) / 'samples.npy'}")
    return 0


def cmd_eval(ns: argparse.Namespace) -> int:
    import json

    from ..metrics.evaluate import format_table
    from ..metrics.targets import evaluate_target

    if ns.json:
        _check_output_file(Path(ns.json), "--json", "eval.json")
    res = evaluate_target(
        ns.target,
        data=ns.data,
        floor=ns.reference,
        metrics=ns.metrics,
        n=ns.n,
        extractor=ns.extractor,
        seed=ns.seed,
        batch_size=ns.batch,
        device=ns.device,
        truncation=ns.truncation,
        use_ema=not ns.no_ema,
        base=ns.base,
        image_size=ns.image_size,
        fit=ns.fit,
        download=ns.download,
    )
    for note in res.pop("notes"):
        print(note)
    print(format_table(res["metrics"]))
    proto = res["protocol"]
    if proto.get("extractor"):
        print(
            f"extractor: {proto['extractor']['extractor']} (sha256 {proto['extractor'].get('weights_sha256', '')[:12]}...)"
        )
    print(
        f"reference: {proto['reference']['dataset']} train split, n={proto['reference']['n']}; generated n={proto['generated']['n']}"
    )
    grid = res.pop("memorisation_grid", None)
    if ns.json:
        Path(ns.json).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.json).write_text(json.dumps(res, indent=2, default=str))
        print(f"wrote {ns.json}")
    if grid is not None:
        from torchvision.utils import save_image

        pic = Path(ns.json).with_name(Path(ns.json).stem + "_memorisation.png") if ns.json else Path("memorisation.png")
        pic.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, pic)
        print(f"memorisation picture (each row: a sample, then its nearest training images): {pic}")
    return 0
