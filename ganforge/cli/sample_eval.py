"""The `sample`, `eval` and `export` commands, and the checks of their options (--seed, --device, output files)."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ..errors import GanforgeError

SAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".npy", ".csv")


def _device(name: str):
    """--device: auto, cpu, cuda, cuda:N or mps (ConfigError when it is not available here)."""
    from ..training.hardware import resolve_device

    return resolve_device(name)


def _check_seed(seed: int) -> None:
    """--seed of sample and eval: what torch's generators take (the same range as a recipe's seed)."""
    if not 0 <= seed < 2**63:
        raise GanforgeError(f"--seed must be between 0 and 2**63 - 1, got {seed}.")


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
    _check_seed(ns.seed)
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
    space = G.latent_space
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


def _is_run_target(path: Path) -> bool:
    return path.is_file() or (path / "config.yaml").is_file() or (path / "generator.safetensors").is_file()


EVAL_DEFAULT_N = 10_000


def cmd_eval(ns: argparse.Namespace) -> int:
    import dataclasses
    import json

    from ..config import DataConfig
    from ..data import DATASETS, has_test_split, load_dataset
    from ..latent import check_truncation
    from ..metrics.evaluate import (
        DEFAULT_IMAGE_METRICS,
        Evaluator,
        dataset_batches,
        format_table,
        generator_batches,
        parse_metrics,
    )

    def load(split: str):
        return load_dataset(dcfg, split=split)

    # Options first: a mistake must not cost the minutes of computing reference statistics.
    if (ns.target is None) == (ns.reference is None):
        raise GanforgeError(
            "give either a TARGET (run folder, checkpoint, safetensors or image folder) or --reference DATASET."
        )
    n_given = ns.n is not None
    n_wanted = ns.n if n_given else EVAL_DEFAULT_N
    from ..config import MAX_EVAL_N

    if not 2 <= n_wanted <= MAX_EVAL_N:
        raise GanforgeError(
            f"--n must be between 2 (the metrics compare sample statistics) and {MAX_EVAL_N:,}, got {n_wanted}."
        )
    if ns.batch < 1:
        raise GanforgeError(f"--batch must be at least 1, got {ns.batch}.")
    _check_seed(ns.seed)
    check_truncation(ns.truncation, "--truncation")
    if ns.json:
        _check_output_file(Path(ns.json), "--json", "eval.json")
    if ns.metrics:
        parse_metrics(ns.metrics)  # unknown names: listed now, not after loading data
    device = _device(ns.device)
    G = None
    if ns.reference:
        dcfg = DataConfig(name=ns.reference, base=ns.base, image_size=ns.image_size, fit=ns.fit, download=ns.download)
        if not has_test_split(ns.reference):
            with_test = ", ".join(n for n in DATASETS if has_test_split(n))
            raise GanforgeError(f"--reference needs a dataset with a test split ({with_test}), not {ns.reference!r}.")
    elif not Path(ns.target).exists():
        raise GanforgeError(
            f"TARGET {ns.target!r} does not exist: give a run folder, a .pt checkpoint, a .safetensors "
            "file or a folder of images."
        )
    elif _is_run_target(Path(ns.target)):
        from ..sampling import load_generator

        G, recipe, _shape = load_generator(ns.target, use_ema=not ns.no_ema)
        G = G.to(device)
        dcfg = dataclasses.replace(
            recipe.data, download=recipe.data.download and ns.download, split="train", limit=None, labels=False
        )
    else:
        if not ns.data:
            raise GanforgeError(
                "evaluating a folder of images needs --data DATASET to compare with (e.g. --data fashion_mnist)."
            )
        dcfg = DataConfig(name=ns.data, base=ns.base, image_size=ns.image_size, fit=ns.fit, download=ns.download)
    data_name = dcfg.name
    if ns.truncation is not None and G is None:
        raise GanforgeError(
            "--truncation applies to the noise of a generator; TARGET here is not a generator "
            "(a run folder, checkpoint or .safetensors file)."
        )
    conditional = G is not None and getattr(G, "latent_space", None) is not None and G.latent_space.num_classes > 0
    if ns.metrics and "cond_acc" in parse_metrics(ns.metrics) and not conditional and not ns.reference:
        what = "an image folder" if G is None else f"{ns.target} holds an unconditional generator"
        raise GanforgeError(
            f"metric 'cond_acc' (conditional accuracy) needs a class-conditional generator "
            f"(model.conditional: true), but {what}; leave cond_acc out of --metrics."
        )

    train = load("train")
    points = train.kind == "points"
    metrics = ns.metrics or ("modes" if points else ",".join(DEFAULT_IMAGE_METRICS))
    if not ns.metrics and train.name.startswith("stacked_"):
        metrics += ",modes"  # modes of 1,000 (channel classes), KL to uniform, high-quality share
    if not ns.metrics and conditional:
        metrics += ",cond_acc"  # a conditional generator: does each sample show its class?
    heldout = load("test") if "memorisation" in metrics and has_test_split(data_name) else None
    imgs = test = None
    n = n_wanted
    if ns.reference:
        test = load("test")
        n = min(n_wanted, len(test))
        if n_given and n < n_wanted:
            warnings.warn(
                f"--n {n_wanted} asks for more images than the {n} of the {data_name} test split; "
                f"scoring only those {n}.",
                UserWarning,
                stacklevel=2,
            )
    elif G is None:
        c, h, _ = train.shape
        imgs = load_dataset("folder", path=ns.target, image_size=h, channels=c, limit=n_wanted)
        n = min(n_wanted, len(imgs))
        if n_given and n < n_wanted:
            warnings.warn(
                f"--n {n_wanted} asks for more images than the {n} readable ones in {ns.target}; scoring "
                f"only those {n}.",
                UserWarning,
                stacklevel=2,
            )
        if n < 2:
            raise GanforgeError(f"{ns.target} holds {n} readable image; evaluation needs at least 2.")
    ev = Evaluator(
        train, metrics, extractor=ns.extractor, n=n, seed=ns.seed, heldout=heldout, batch_size=ns.batch, device=device
    )
    if ns.reference:
        res = ev.evaluate(dataset_batches(test, n, ns.batch), n, f"real {data_name} test split (first {n})")
    elif G is not None:
        from ..models.progan import growth_note

        trunc = f", truncation {ns.truncation}" if ns.truncation else ""
        note = growth_note(G)  # a ProGAN run mid-growth: its images are upsampled from a lower resolution
        res = ev.evaluate(
            generator_batches(G, G.latent_space, n, ns.seed, ns.batch, truncation=ns.truncation),
            n,
            f"generator from {getattr(G, 'loaded_from', ns.target)}{trunc}" + (f" ({note})" if note else ""),
        )
        if note:
            print(f"note: {note}")
    else:
        res = ev.evaluate(dataset_batches(imgs, n, ns.batch), n, f"images in {ns.target}")
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
