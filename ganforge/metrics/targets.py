"""Score any target against a real dataset: a run folder, checkpoint, .safetensors file, image folder, a generator
module, a tensor of images, or a dataset's own test split (the floor). `ganforge eval` and `ganforge.evaluate` both
call `evaluate_target`, so the command and the library give the same numbers with the same protocol.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import GanforgeError

if TYPE_CHECKING:  # torch loads only when something is evaluated: `ganforge --help` stays fast
    import torch
    from torch import Tensor, nn

EVAL_DEFAULT_N = 10_000


def is_run_target(path: Path) -> bool:
    """Whether `path` is a run folder, a checkpoint or a .safetensors file (not a folder of images)."""
    return path.is_file() or (path / "config.yaml").is_file() or (path / "generator.safetensors").is_file()


def check_seed(seed: int, option: str = "--seed") -> None:
    """A seed torch's generators take (the same range as a recipe's seed)."""
    if not 0 <= seed < 2**63:
        raise GanforgeError(f"{option} must be between 0 and 2**63 - 1, got {seed}.")


def _tensor_batches(x: Tensor, n: int, batch_size: int) -> Iterator[tuple[Tensor, None]]:
    for start in range(0, n, batch_size):
        yield x[start : min(start + batch_size, n)].float(), None


def _as_image_tensor(x: Any, shape: tuple[int, ...], data_name: str) -> Tensor:
    """Images given in memory as float (N, C, H, W) in [-1, 1], checked against the reference's shape."""
    import numpy as np
    import torch

    t = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
    if t.dim() != 4 or tuple(t.shape[1:]) != tuple(shape):
        raise GanforgeError(
            f"images given as an array must be (N, {', '.join(map(str, shape))}) to compare with {data_name} at this "
            f"size, got shape {tuple(t.shape)}; set image_size (and channels via the dataset) to match."
        )
    if not t.is_floating_point():
        raise GanforgeError(f"images given as an array must be floats in [-1, 1], got dtype {t.dtype}.")
    t = t.detach().cpu()
    if not torch.isfinite(t).all():
        raise GanforgeError("images given as an array hold NaN or infinite values.")
    if t.min() < -1.001 or t.max() > 1.001:
        raise GanforgeError(
            f"images given as an array must lie in [-1, 1] (a generator's tanh range), got values in "
            f"[{float(t.min()):.3g}, {float(t.max()):.3g}]; scale them with x * 2 - 1 if they are in [0, 1]."
        )
    return t


def _capped(wanted: int, have: int, given: bool, asked: str, where: str) -> int:
    """min(wanted, have), warning when the user asked for more images than `where` holds."""
    if given and have < wanted:
        # stacklevel 3: the warning points at the caller of evaluate_target (the CLI or ganforge.evaluate)
        warnings.warn(
            f"{asked} asks for more images than the {have} of {where}; scoring only those {have}.",
            UserWarning,
            stacklevel=3,
        )
    return min(wanted, have)


def evaluate_target(
    target: str | Path | nn.Module | Tensor | Any | None,
    *,
    data: str | None = None,
    floor: str | None = None,
    metrics: str | list[str] | None = None,
    n: int | None = None,
    extractor: str = "auto",
    seed: int = 0,
    batch_size: int = 500,
    device: str | torch.device = "auto",
    truncation: float | None = None,
    use_ema: bool = True,
    latent: Any | None = None,
    base: str | None = None,
    image_size: int | None = None,
    fit: str = "resize",
    download: bool = True,
) -> dict[str, Any]:
    """Metrics and protocol of `target` against the real train split of its dataset (or `data`).

    `target`: a run folder, .pt checkpoint, .safetensors file or image folder (a path), a generator module, or
    images as a float (N, C, H, W) array in [-1, 1]; None with `floor=DATASET` scores that dataset's real test split
    (the floor). `data` names the reference dataset for anything but a run. The result holds `metrics`, `protocol`,
    `notes` (lines worth showing a user) and, for the memorisation metric, `memorisation_grid` (an image tensor).
    """
    import torch
    from torch import nn

    from ..config import MAX_EVAL_N, DataConfig
    from ..data import DATASETS, ArrayDataset, has_test_split, load_dataset
    from ..latent import check_truncation
    from ..training.hardware import resolve_device
    from .evaluate import DEFAULT_IMAGE_METRICS, Evaluator, dataset_batches, generator_batches, parse_metrics

    # Options first: a mistake must not cost the minutes of computing reference statistics.
    if (target is None) == (floor is None):
        raise GanforgeError(
            "give either a TARGET (run folder, checkpoint, safetensors or image folder) or --reference DATASET."
        )
    n_given = n is not None
    n_wanted = n if n is not None else EVAL_DEFAULT_N
    if not 2 <= n_wanted <= MAX_EVAL_N:
        raise GanforgeError(
            f"--n must be between 2 (the metrics compare sample statistics) and {MAX_EVAL_N:,}, got {n_wanted}."
        )
    if batch_size < 1:
        raise GanforgeError(f"--batch must be at least 1, got {batch_size}.")
    check_seed(seed)
    check_truncation(truncation, "--truncation")
    if metrics:
        parse_metrics(metrics)  # unknown names: listed now, not after loading data
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    G: nn.Module | None = None
    images: Tensor | None = None
    label = ""
    in_memory = target is not None and not isinstance(target, (str, Path))
    if floor:
        dcfg = DataConfig(name=floor, base=base, image_size=image_size or 32, fit=fit, download=download)
        if not has_test_split(floor):
            with_test = ", ".join(name for name in DATASETS if has_test_split(name))
            raise GanforgeError(f"--reference needs a dataset with a test split ({with_test}), not {floor!r}.")
    elif in_memory:
        if not data:
            raise GanforgeError(
                "evaluating a generator or images given in memory needs data=DATASET to compare with "
                "(e.g. data='fashion_mnist')."
            )
        if isinstance(target, nn.Module):
            from ..generation import resolve_latent, sample

            G = target.to(dev)
            latent = resolve_latent(G, latent)
            label = f"generator {type(target).__name__} (in memory)"
            if image_size is None:  # compare at the size the generator draws
                first = sample(G, 1, latent, seed=seed)
                image_size = int(first.shape[-1]) if first.dim() == 4 else None
        elif image_size is None:
            shape = getattr(target, "shape", None)
            image_size = int(shape[-1]) if shape is not None and len(shape) == 4 else None
        dcfg = DataConfig(name=data, base=base, image_size=image_size or 32, fit=fit, download=download)
    elif not Path(str(target)).exists():
        raise GanforgeError(
            f"TARGET {str(target)!r} does not exist: give a run folder, a .pt checkpoint, a .safetensors "
            "file or a folder of images."
        )
    elif is_run_target(Path(str(target))):
        from ..sampling import load_generator

        G, recipe, _shape = load_generator(str(target), use_ema=use_ema)
        G = G.to(dev)
        latent = G.latent_space
        label = f"generator from {getattr(G, 'loaded_from', target)}"
        dcfg = dataclasses.replace(
            recipe.data, download=recipe.data.download and download, split="train", limit=None, labels=False
        )
    else:
        if not data:
            raise GanforgeError(
                "evaluating a folder of images needs --data DATASET to compare with (e.g. --data fashion_mnist)."
            )
        dcfg = DataConfig(name=data, base=base, image_size=image_size or 32, fit=fit, download=download)
    data_name = dcfg.name
    if truncation is not None and G is None:
        raise GanforgeError(
            "--truncation applies to the noise of a generator; TARGET here is not a generator "
            "(a run folder, checkpoint or .safetensors file)."
        )
    space = latent if G is not None else None
    conditional = space is not None and getattr(space, "num_classes", 0) > 0
    if metrics and "cond_acc" in parse_metrics(metrics) and not conditional and not floor:
        if G is None:
            what = "images given in memory" if in_memory else "an image folder"
        else:
            what = "the generator given is unconditional" if in_memory else f"{target} holds an unconditional generator"
        raise GanforgeError(
            f"metric 'cond_acc' (conditional accuracy) needs a class-conditional generator "
            f"(model.conditional: true), but {what}; leave cond_acc out of --metrics."
        )

    def load(split: str) -> ArrayDataset:
        return load_dataset(dcfg, split=split)

    train = load("train")
    points = train.kind == "points"
    chosen = (
        ",".join(metrics)
        if isinstance(metrics, list)
        else metrics or ("modes" if points else ",".join(DEFAULT_IMAGE_METRICS))
    )
    if not metrics and train.name.startswith("stacked_"):
        chosen += ",modes"  # modes of 1,000 (channel classes), KL to uniform, high-quality share
    if not metrics and conditional:
        chosen += ",cond_acc"  # a conditional generator: does each sample show its class?
    heldout = load("test") if "memorisation" in chosen and has_test_split(data_name) else None
    imgs = test = None
    count = n_wanted
    if floor:
        test = load("test")
        count = _capped(n_wanted, len(test), n_given, f"--n {n_wanted}", f"the {data_name} test split")
    elif in_memory and G is None:
        images = _as_image_tensor(target, tuple(train.shape), data_name)
        count = _capped(n_wanted, len(images), n_given, f"n={n_wanted}", "those given")
        if count < 2:
            raise GanforgeError(f"{count} image given; evaluation needs at least 2.")
    elif G is None:
        c, h, _ = train.shape
        imgs = load_dataset("folder", path=str(target), image_size=h, channels=c, limit=n_wanted)
        count = _capped(n_wanted, len(imgs), n_given, f"--n {n_wanted}", f"the readable ones in {target}")
        if count < 2:
            raise GanforgeError(f"{target} holds {count} readable image; evaluation needs at least 2.")
    ev = Evaluator(
        train, chosen, extractor=extractor, n=count, seed=seed, heldout=heldout, batch_size=batch_size, device=dev
    )
    notes: list[str] = []
    if floor:
        assert test is not None
        res = ev.evaluate(
            dataset_batches(test, count, batch_size), count, f"real {data_name} test split (first {count})"
        )
    elif G is not None:
        from ..models.progan import growth_note

        trunc = f", truncation {truncation}" if truncation else ""
        note = growth_note(G)  # a ProGAN run mid-growth: its images are upsampled from a lower resolution
        assert latent is not None  # resolved with G above
        res = ev.evaluate(
            generator_batches(G, latent, count, seed, batch_size, truncation=truncation),
            count,
            label + trunc + (f" ({note})" if note else ""),
        )
        if note:
            notes.append(f"note: {note}")
    elif images is not None:
        res = ev.evaluate(_tensor_batches(images, count, batch_size), count, f"{count} images given in memory")
    else:
        res = ev.evaluate(dataset_batches(imgs, count, batch_size), count, f"images in {target}")
    res["notes"] = notes
    return res
