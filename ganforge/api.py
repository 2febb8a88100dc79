"""The public Python API: train and resume runs, load and sample generators, evaluate anything, register components.

Everything here is re-exported from `ganforge` itself and listed in `ganforge.__all__`; that list is the stable
surface. Modules and names not exported there are private and may change between versions.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .config import Recipe, build_recipe, load_recipe
from .config.loading import to_dict
from .errors import ConfigError, GanforgeError

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn

    from .data import ArrayDataset
    from .metrics.compute import MetricInputs

RecipeLike = str | Path | Recipe | Mapping[str, Any]
Overrides = Sequence[str] | Mapping[str, Any]
F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)


# ----------------------------------------------------------------------------- recipes


def _plain(value: Any) -> Any:
    """A recipe value as YAML holds it: paths as strings, containers copied."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return copy.copy(value)


def _override_list(overrides: Overrides | None) -> list[str]:
    """Overrides as the CLI's `key=value` strings; a mapping's values are written as YAML (JSON is YAML)."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [f"{k}={json.dumps(_plain(v)) if not isinstance(v, str) else v}" for k, v in overrides.items()]
    if isinstance(overrides, str):
        raise ConfigError(f"overrides must be a list of 'key=value' strings or a dict, got the string {overrides!r}.")
    return [str(o) for o in overrides]


def recipe(source: RecipeLike = "demo", overrides: Overrides | None = None) -> Recipe:
    """A validated Recipe from a shipped recipe's name, a YAML path, a dict or a Recipe, with `key=value` overrides."""
    extra = _override_list(overrides)
    if isinstance(source, Recipe):
        return build_recipe(to_dict(source), extra)
    if isinstance(source, Mapping):
        return build_recipe(_plain(source), extra)  # a copy: overrides must not leak back
    if isinstance(source, (str, Path)):
        return load_recipe(str(source), extra)
    raise ConfigError(f"a recipe is a name, a YAML path, a dict or a Recipe, got {type(source).__name__}.")


# ----------------------------------------------------------------------------- runs


class Run:
    """A run folder: its recipe, status, logged metrics, generator, samples and evaluation."""

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        if not p.is_dir():
            raise GanforgeError(f"{str(p)!r} is not a run folder (no such directory).")
        if not any((p / f).exists() for f in ("run.json", "config.yaml", "checkpoints")):
            raise GanforgeError(f"{str(p)!r} is not a ganforge run folder (no run.json, config.yaml or checkpoints/).")
        self.path = p

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, status={self.status!r})"

    @property
    def info(self) -> dict[str, Any]:
        """The run's run.json: status, step, timings, hardware and settings chosen."""
        from .training.runinfo import read_status

        return read_status(self.path)

    @property
    def status(self) -> str:
        """finished, running, stopped, failed, diverged, ... (unknown when run.json is missing)."""
        return str(self.info.get("status", "unknown"))

    @property
    def recipe(self) -> Recipe:
        """The recipe the run trained with (its config.yaml)."""
        import yaml

        cfg = self.path / "config.yaml"
        if not cfg.is_file():
            raise GanforgeError(f"{str(self.path)!r} has no config.yaml (the run never started?).")
        return build_recipe(yaml.safe_load(cfg.read_text()) or {})

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """Every record of metrics.jsonl (training logs and evaluations), in order; a torn last line is skipped."""
        f = self.path / "metrics.jsonl"
        if not f.is_file():
            return []
        out = []
        for line in f.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # the line a killed run was writing
        return out

    def metrics_frame(self) -> Any:
        """The metrics as a pandas DataFrame (needs pandas: `pip install pandas`)."""
        try:
            import pandas as pd
        except ImportError:
            raise GanforgeError(
                "metrics_frame() needs pandas (pip install pandas); .metrics is a list of dicts."
            ) from None
        return pd.DataFrame(self.metrics)

    def generator(self, ema: bool = True) -> nn.Module:
        """The trained generator in eval mode (the EMA copy when the run kept one and `ema`), on the CPU."""
        return load_generator(self.path, ema=ema)

    def sample(
        self,
        n: int,
        *,
        seed: int = 0,
        y: int | None = None,
        truncation: float | None = None,
        ema: bool = True,
        device: str | torch.device = "cpu",
    ) -> Tensor:
        """`n` samples (float32 on the CPU; images in [-1, 1]) from the run's generator."""
        return sample(self.generator(ema=ema), n, seed=seed, y=y, truncation=truncation, device=device)

    def evaluate(self, metrics: str | Sequence[str] | None = None, **options: Any) -> dict[str, Any]:
        """`ganforge.evaluate` on this run (against its own dataset's train split)."""
        return evaluate(self.path, metrics, **options)


def _default_out(r: Recipe) -> Path:
    return Path("runs") / f"{r.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(
    source: RecipeLike = "demo",
    overrides: Overrides | None = None,
    out: str | Path | None = None,
    *,
    progress: bool | None = None,
) -> Run:
    """Train a recipe (name, YAML path, dict or Recipe) with overrides into `out` (default runs/NAME-TIME)."""
    from .training import Trainer

    r = recipe(source, overrides)
    folder = Path(out) if out is not None else _default_out(r)
    Trainer.start(r, folder, progress=progress).run()
    return Run(folder)


def resume(
    path: str | Path, overrides: Overrides | None = None, *, steps: int | None = None, progress: bool | None = None
) -> Run:
    """Continue a run from its newest loadable checkpoint; only safe fields (train.steps, lr, ...) may change."""
    from .training import Trainer

    Trainer.resume_run(path, _override_list(overrides), steps=steps, progress=progress).run()
    return Run(path)


# ----------------------------------------------------------------------------- generators


def load_generator(source: str | Path, ema: bool = True) -> nn.Module:
    """A generator in eval mode from a run folder, .pt checkpoint or .safetensors file; `G.latent_space` describes z."""
    from .sampling import load_generator as _load

    G, _recipe, _shape = _load(source, use_ema=ema)
    return G


def sample(
    generator: nn.Module | str | Path,
    n: int,
    *,
    seed: int = 0,
    y: int | None = None,
    truncation: float | None = None,
    latent: Any | None = None,
    batch_size: int = 500,
    device: str | torch.device = "cpu",
) -> Tensor:
    """`n` samples (float32, CPU) from a generator module or a saved one, from one seed-fixed draw of the latents.

    `y` picks the class of a conditional generator (default: uniform), `truncation` redraws noise beyond that
    magnitude (Brock et al. 2019), `latent` is the noise size or LatentSpace of a generator not made by ganforge.
    """
    import torch

    from .generation import resolve_latent
    from .generation import sample as _sample
    from .latent import check_truncation
    from .metrics.targets import check_seed
    from .training.hardware import resolve_device

    if n < 1:
        raise GanforgeError(f"n must be at least 1, got {n}.")
    check_seed(seed, "seed")
    check_truncation(truncation, "truncation")
    G = load_generator(generator) if isinstance(generator, (str, Path)) else generator
    space = resolve_latent(G, latent)
    if y is not None and not space.num_classes:
        raise GanforgeError("y is for a class-conditional generator; this one is unconditional.")
    if y is not None and not 0 <= y < space.num_classes:
        raise GanforgeError(f"y must be a class of this generator, 0..{space.num_classes - 1}; got {y}.")
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    with _returned(G):
        return _sample(G.to(dev), n, latent=space, seed=seed, batch=batch_size, truncation=truncation, y=y)


@contextlib.contextmanager
def _returned(module: Any) -> Iterator[None]:
    """A caller's module (if `module` is one) is put back on the device it was on when the block ends."""
    from torch import nn

    was = next((p.device for p in module.parameters()), None) if isinstance(module, nn.Module) else None
    try:
        yield
    finally:
        if was is not None:
            module.to(was)


def evaluate(
    target: str | Path | nn.Module | Tensor | Any,
    metrics: str | Sequence[str] | None = None,
    reference: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Score a run, checkpoint, .safetensors file, image folder, generator module or image array; returns a plain dict.

    `reference` names the real dataset to compare with (default: a run's own dataset); its train split is the
    reference. The result has `metrics` (numbers keyed as in the logs, e.g. fd_fashion), `protocol` (everything
    needed to reproduce them: extractor and hash, reference, counts, seed) and `notes`. `options` are those of
    `ganforge eval`: n, extractor, seed, batch_size, device, truncation, use_ema, latent, base, image_size (default:
    the size of the images or generator given, else 32), fit, download.
    """
    from .metrics.targets import evaluate_target

    chosen = metrics if metrics is None or isinstance(metrics, str) else list(metrics)
    with _returned(target):  # a generator module is moved to the evaluation device, then back
        res = evaluate_target(target, data=reference, metrics=chosen, **options)
    res.pop("memorisation_grid", None)
    return res


# ----------------------------------------------------------------------------- custom components


def register_generator(name: str) -> Callable[[C], C]:
    """Class decorator: a generator family usable as `model.generator.name: NAME` in recipes.

    The class is built as `cls(z_dim=..., shape=(C, H, W) or (D,), **args)` and called as `G(z)` (or `G(z, y)` when
    conditional: then `__init__` takes `num_classes`); it returns images in [-1, 1] (tanh) or points.
    """
    from .models import GENERATORS

    def deco(cls: C) -> C:
        GENERATORS.register(name)(cls)
        return cls

    return deco


def register_discriminator(name: str) -> Callable[[C], C]:
    """Class decorator: a discriminator family usable as `model.discriminator.name: NAME` in recipes.

    Built as `cls(shape=(C, H, W) or (D,), **args)`, called as `D(x)` (or `D(x, y)` when conditional) and returning
    one logit per sample, shape (N,) or (N, 1).
    """
    from .models import DISCRIMINATORS

    def deco(cls: C) -> C:
        DISCRIMINATORS.register(name)(cls)
        return cls

    return deco


def register_objective(
    name: str,
    *,
    g_loss: Callable[..., Tensor],
    g_needs_real: bool = False,
    accuracy: Callable[..., tuple[Tensor, Tensor]] | None = None,
    source: str = "",
) -> Callable[[F], F]:
    """Decorator on a D loss `d_loss(real_logits, fake_logits, **args)`: the objective `loss: NAME` in recipes.

    `g_loss(fake_logits, real_logits_or_None, **args)` is G's loss (`g_needs_real`: it needs D(real), as the
    relativistic losses do); keyword arguments of either become the recipe's `loss.args`.
    """
    from .losses import OBJECTIVES, Objective

    def deco(d_loss: F) -> F:
        OBJECTIVES.register(name, origin=d_loss)(Objective(name, d_loss, g_loss, g_needs_real, source, {}, accuracy))
        return d_loss

    return deco


# What the games hand a penalty, by parameter name (games/standard.py, _penalties).
PENALTY_INPUTS = ("D", "real", "fake", "real_logits", "net", "state")


def register_regularizer(
    name: str, *, nets: Sequence[str] = ("d",), kind: str = "penalty", source: str = ""
) -> Callable[[F], F]:
    """Decorator: a regulariser usable in a recipe's `regularizers:` list as `{name: NAME, net: d, weight: w}`.

    A penalty `fn(<inputs>, **args) -> scalar` takes any of D (D's logits as a function of its input), real, fake,
    real_logits, net (the regularised network) and state (a dict kept between calls) as required parameters; its
    keyword parameters are the recipe's `args`. A constraint `fn(net, **args)` changes the net in place after
    each update (`kind="constraint"`).
    """
    import inspect

    from .regularizers import REGULARIZERS, Regularizer

    if kind not in ("penalty", "constraint"):
        raise ConfigError(f"regulariser kind must be 'penalty' or 'constraint', got {kind!r}.")
    if not nets or any(n not in ("g", "d") for n in nets):
        raise ConfigError(f"regulariser nets must name 'g' and/or 'd', got {list(nets)!r}.")

    def deco(fn: F) -> F:
        required = [p.name for p in inspect.signature(fn).parameters.values() if p.default is inspect.Parameter.empty]
        allowed = ("net",) if kind == "constraint" else PENALTY_INPUTS
        unknown = [p for p in required if p not in allowed]
        if unknown:
            raise ConfigError(
                f"regulariser {name!r}: required parameter(s) {unknown} are not inputs the games provide "
                f"(valid: {', '.join(allowed)}); give arguments a default to make them recipe args."
            )
        REGULARIZERS.register(name, origin=fn)(Regularizer(name, fn, kind, tuple(nets), source))
        return fn

    return deco


def register_dataset(
    name: str, *, summary: str = "", has_test_split: bool = False, path: str | None = None
) -> Callable[[F], F]:
    """Decorator on a loader `fn(cfg: DataConfig) -> ArrayDataset | images | (images, labels)`: `data.name: NAME`.

    Images are uint8 (N, C, H, W) and points float (N, D); labels are integer classes. `cfg` carries the recipe's
    data section (split, image_size, path, ...). `data.limit` (a class-balanced subset) is applied afterwards.
    `path` describes what `data.path` must point to, for a loader that reads one.
    """
    from .data.loaders import DATASETS, DatasetSpec, limit_dataset

    def deco(fn: F) -> F:
        def load(cfg: Any, seed: int) -> ArrayDataset:
            return limit_dataset(_as_dataset(name, fn(cfg)), cfg.limit)

        DATASETS.register(name, origin=fn)(
            DatasetSpec(
                name,
                load,
                summary or (fn.__doc__ or name).strip().splitlines()[0],
                has_test_split=has_test_split,
                path=path,
            )
        )
        return fn

    return deco


def _as_dataset(name: str, out: Any) -> ArrayDataset:
    """What a registered loader returned, as an ArrayDataset (clear errors for anything else)."""
    import numpy as np
    import torch

    from .data import ArrayDataset

    if isinstance(out, ArrayDataset):
        return out
    x, y = out if isinstance(out, tuple) and len(out) == 2 else (out, None)
    try:
        x = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
        y = None if y is None else torch.as_tensor(np.asarray(y)).long()
    except (TypeError, ValueError) as e:
        raise GanforgeError(f"dataset {name!r}: the loader returned something that is not an array ({e}).") from None
    kind: Literal["image", "points"] = "image" if x.dim() == 4 else "points"
    if kind == "points" and (x.dim() != 2 or not x.is_floating_point()):
        raise GanforgeError(
            f"dataset {name!r}: the loader must return uint8 images (N, C, H, W) or float points (N, D), "
            f"got {x.dtype} of shape {tuple(x.shape)}."
        )
    if y is not None and len(y) != len(x):
        raise GanforgeError(f"dataset {name!r}: {len(y)} labels for {len(x)} samples.")
    classes = int(y.max()) + 1 if y is not None and len(y) else 0
    return ArrayDataset(name, kind, x if kind == "image" else x.float(), y, classes, [str(i) for i in range(classes)])


def register_metric(
    name: str, *, on: str = "features", higher: bool = False, title: str | None = None
) -> Callable[[F], F]:
    """Decorator on `fn(fake, real) -> float`: a metric usable in `eval.metrics` and `evaluate`.

    `on="features"`: fake and real are the extractor's feature matrices (N, d) of the samples and of the reference
    (the result key is NAME_<extractor>, like fd_fashion); `on="images"`: the samples and reference images
    (N, C, H, W) in [-1, 1] (key NAME). `higher` says whether larger is better (for best-checkpoint selection and
    the report).
    """
    from .metrics.compute import register_metric_compute
    from .metrics.spec import MetricSpec

    if on not in ("features", "images"):
        raise ConfigError(f"register_metric(on=...) must be 'features' or 'images', got {on!r}.")
    key = f"{name}{{x}}" if on == "features" else name

    def deco(fn: F) -> F:
        def compute(c: MetricInputs) -> dict[str, float]:
            if on == "features":
                fake, real = c.fake.stacked_features(), c.ref.stats.stacked_features()
            else:
                fake, real = c.fake.stacked_images(), c.ref.stats.stacked_images()
            return {key.replace("{x}", c.sfx): float(fn(fake, real))}

        spec = MetricSpec(
            name, title or name, frozenset({on, "reference"}), (key,), frozenset({key}) if higher else frozenset()
        )
        register_metric_compute(spec, compute, origin=fn)
        return fn

    return deco
