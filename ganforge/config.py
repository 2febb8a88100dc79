"""The typed recipe schema, YAML loading, dotted command-line overrides and validation errors.

A recipe is a YAML file; every key maps to a dataclass field below. Unknown keys and
wrongly typed values raise ConfigError naming the dotted key and the valid choices.
Component arguments (``args:``) are free-form here and checked against the component's
signature when it is built.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Union

import yaml

from .errors import ConfigError, choices_message


@dataclass
class Component:
    """A registered component by name plus keyword arguments for it."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    """Which data to train on (see ganforge.data.load_dataset for each field)."""

    name: str = "digits"
    base: str | None = None  # data 'stacked': the grey dataset stacked three times (fashion_mnist | digits)
    path: str | None = None
    root: str | None = None
    image_size: int | None = None
    channels: int | None = None
    labels: bool = False
    split: str = "train"
    fit: str = "resize"
    n_points: int = 100_000
    download: bool = True
    limit: int | None = None


@dataclass
class LatentConfig:
    """Structured latent codes appended to the noise (InfoGAN, Chen et al. 2016, Sec. 5)."""

    categorical: list[int] = field(default_factory=list)  # sizes of categorical codes, e.g. [10]
    continuous: int = 0  # number of continuous codes, each uniform on [-1, 1]


@dataclass
class ModelConfig:
    """The generator and discriminator families, the latent size and the conditioning."""

    z_dim: int = 100
    # Class-conditional G and D (Mirza & Osindero 2014): labels come from the data; the
    # networks embed them as their family says (concatenation, projection, conditional BN).
    conditional: bool = False
    latent: LatentConfig = field(default_factory=LatentConfig)
    generator: Component = field(default_factory=lambda: Component("dcgan"))
    discriminator: Component = field(default_factory=lambda: Component("dcgan"))
    # Spectral normalisation (Miyato et al. 2018) of every weight layer of D, G or both.
    spectral_norm: str = "none"


@dataclass
class OptimizerConfig:
    """One network's optimiser and learning-rate schedule."""

    name: str = "adam"
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0
    alpha: float = 0.99
    schedule: str = "constant"
    warmup: int = 0


@dataclass
class OptimConfig:
    """Separate optimisers for G and D (different learning rates = TTUR, Heusel et al. 2017)."""

    g: OptimizerConfig = field(default_factory=OptimizerConfig)
    d: OptimizerConfig = field(default_factory=OptimizerConfig)


@dataclass
class GameConfig:
    """The training procedure of one step: its name, critic steps per generator step, extra arguments."""

    name: str = "standard"
    n_critic: int = 1
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class RegularizerConfig:
    """One regulariser: which network it serves, its weight and interval (every > 1: lazy), and arguments."""

    name: str
    net: str = "d"
    weight: float = 1.0
    every: int = 1
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class EMAConfig:
    """Exponential moving average of the generator's weights (Yazici et al. 2019; Karras et al. 2018)."""

    enabled: bool = False
    decay: float = 0.999
    start: int = 0


@dataclass
class TrainConfig:
    """The loop: length, batch, device, precision, cadence of logs, samples and checkpoints."""

    steps: int = 2000
    batch_size: int = 64
    # auto: CUDA when available, else the CPU (ganforge.training.hardware.resolve_device).
    device: str = "auto"
    # auto: bf16 where the device computes it natively, fp16 + scaler on older GPUs, else fp32;
    # the resolved value is what config.yaml records (ganforge.training.hardware.resolve_precision).
    precision: str = "auto"
    channels_last: bool | str = "auto"  # auto: NHWC where it is faster (CPU; GPU in mixed precision)
    compile: bool = False
    threads: int | None = None  # None: OMP_NUM_THREADS if set, else the cores this process may use
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    n_samples: int = 64
    progress: bool = True
    ema: EMAConfig = field(default_factory=EMAConfig)


@dataclass
class EvalConfig:
    """Metrics during training: every N steps (0 = never) on the EMA generator when there is one."""

    every: int = 0
    metrics: list[str] = field(default_factory=lambda: ["fd", "coverage"])
    n: int = 2000
    extractor: str = "auto"
    best: str | None = None
    seed: int = 0


@dataclass
class Recipe:
    """A complete training recipe: data, models, objective, game, optimisers and loop."""

    name: str = "custom"
    description: str = ""
    source: str = ""
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: Component = field(default_factory=lambda: Component("non_saturating"))
    game: GameConfig = field(default_factory=GameConfig)
    regularizers: list[RegularizerConfig] = field(default_factory=list)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


MAX_EVAL_N = 10_000_000  # 200x the usual 50,000; beyond it an evaluation runs for days
MAX_Z_DIM = 65_536  # larger latents are a typo; the first layer alone would need gigabytes
MAX_IMAGE_SIZE = 1024  # the largest resolution in the GAN literature (ProGAN, StyleGAN)
MAX_THREADS = 1024  # OpenMP allocates per-thread state up front: a huge count aborts the process (libgomp out of memory)
MAX_N_POINTS = 100_000_000  # synthetic 2-D mixtures: 10^8 points are 1.6 GB; torch cannot even index 2^63

CHOICES: dict[str, tuple[Any, ...]] = {
    "train.precision": ("auto", "fp32", "bf16", "fp16"),
    "train.channels_last": ("auto", True, False),
    "optim.g.name": ("adam", "rmsprop", "sgd", "optimistic_adam", "optimistic_sgd"),
    "optim.d.name": ("adam", "rmsprop", "sgd", "optimistic_adam", "optimistic_sgd"),
    "model.spectral_norm": ("none", "d", "g", "both"),
    "optim.g.schedule": ("constant", "linear"),
    "optim.d.schedule": ("constant", "linear"),
}


# --------------------------------------------------------------------------- conversion


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin is tuple:
        return "a list of " + str(len(typing.get_args(tp))) + " numbers"
    if origin is dict:
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, str) and tp in (Component, RegularizerConfig):
            return tp(value)  # `loss: hinge` is shorthand for `loss: {name: hinge}`
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of {tp.__name__} fields, got {value!r}.")
        return from_dict(tp, value, key)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError:
                pass
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}.")
    if origin is tuple:
        items = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(items):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}.")
        return tuple(_coerce(v, t, f"{key}[{i}]") for i, (v, t) in enumerate(zip(value, items)))
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]  # `metrics=fd,is` on the command line
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}.")
        (item,) = typing.get_args(tp)
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}.")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}.")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}.")
    if tp is float:
        number: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            # YAML 1.1 reads "1e-4" (no dot) as a string.
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise ConfigError(f"{key}: expected a number, got {value!r}.")
        if not math.isfinite(number):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}.")
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}.")
    raise TypeError(f"unsupported schema type {tp!r} at {key}")


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass `cls` from a nested dict, checking every key and value type."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in hints:
            raise ConfigError(choices_message("recipe key", dotted, [f"{prefix}.{n}" if prefix else n for n in names]))
        kwargs[key] = _coerce(value, hints[key], dotted)
        valid = CHOICES.get(dotted)
        if valid is not None and kwargs[key] not in valid:
            raise ConfigError(choices_message(f"value for {dotted}:", kwargs[key], valid))
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        where = prefix or "the recipe"
        raise ConfigError(f"{where} needs {' and '.join(repr(m) for m in missing)}: the registered component to use, "
                          f"e.g. {where}: {{name: ...}} (the README lists the components of each kind).")
    return cls(**kwargs)


def to_dict(obj: Any) -> Any:
    """A dataclass tree as plain YAML-friendly Python values."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def dump_yaml(recipe: Recipe) -> str:
    """The recipe as YAML text (the run's resolved config.yaml)."""
    return yaml.safe_dump(to_dict(recipe), sort_keys=False)


# --------------------------------------------------------------------------- overrides


def parse_override(text: str) -> tuple[str, Any]:
    """Split `a.b=value` into the dotted key and a YAML-parsed value."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.sub=value (e.g. train.steps=500).")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has no key before '='.")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def apply_override(data: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted `key` in the raw recipe dict; checks each step against the schema."""
    parts = key.split(".")
    cls: Any = Recipe
    node = data
    for i, part in enumerate(parts):
        dotted = ".".join(parts[: i + 1])
        free_form = cls is None  # inside an `args:` mapping every key is allowed here
        if not free_form:
            hints = typing.get_type_hints(cls)
            if part not in hints:
                prefix = ".".join(parts[:i])
                names = [f"{prefix}.{n}" if prefix else n for n in hints]
                raise ConfigError(choices_message("recipe key", dotted, names))
            tp = hints[part]
        if i == len(parts) - 1:
            if not free_form and dataclasses.is_dataclass(tp) and tp not in (Component, RegularizerConfig) \
                    and not isinstance(value, dict):
                fields = ", ".join(f"{dotted}.{f.name}" for f in dataclasses.fields(tp))
                raise ConfigError(f"recipe key {dotted!r} is a section, not a value: set one of its fields ({fields}).")
            node[part] = value
            return
        child = node.get(part)
        if isinstance(child, str) and not free_form and tp is Component:
            child = {"name": child}
        if not isinstance(child, dict):
            child = {}
        node[part] = child
        node = child
        if free_form:
            cls = None
        elif dataclasses.is_dataclass(tp):
            cls = tp
        elif typing.get_origin(tp) is dict:
            cls = None
        else:
            raise ConfigError(f"recipe key {dotted!r} is a value, not a section: cannot set {key!r}.")


# --------------------------------------------------------------------------- recipes


def _recipe_dir() -> Path:
    return Path(str(resources.files("ganforge") / "recipes"))


def list_recipes() -> dict[str, str]:
    """Name -> one-line description of every recipe shipped with the package."""
    out = {}
    for path in sorted(_recipe_dir().glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        out[path.stem] = str(data.get("description", "")).strip().splitlines()[0] if data.get("description") else ""
    return out


def recipe_path(name_or_path: str) -> Path:
    """Resolve a shipped recipe name or a path to a YAML file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise ConfigError(f"recipe file {str(p)!r} does not exist.")
        return p
    shipped = _recipe_dir() / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    raise ConfigError(choices_message("recipe", name_or_path, list_recipes()))


def yaml_problem(e: BaseException) -> str:
    """A YAML error on one line ('line 3, column 7: ...'); PyYAML's own text spans lines and echoes the source."""
    mark = getattr(e, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    what = "; ".join(str(x) for x in (getattr(e, "context", None), getattr(e, "problem", None)) if x)
    return where + " ".join((what or str(e) or type(e).__name__).split())


def load_raw(name_or_path: str) -> dict[str, Any]:
    """The recipe's YAML as a dict (not yet validated)."""
    path = recipe_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"recipe {str(path)!r} is not valid YAML: {yaml_problem(e)}.") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {str(path)!r} must be a mapping of keys, got {type(data).__name__}.")
    data.setdefault("name", path.stem)
    return data


def load_recipe(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Load a shipped recipe or YAML path, apply `key.sub=value` overrides and validate."""
    data = load_raw(name_or_path)
    return build_recipe(data, overrides)


def build_recipe(data: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Validate a raw recipe dict after applying overrides."""
    for text in overrides:
        apply_override(data, *parse_override(text))
    recipe = from_dict(Recipe, data)
    validate(recipe)
    return recipe


def validate(r: Recipe) -> None:
    """Cross-field checks that types alone cannot express."""
    t = r.train
    for key in ("steps", "batch_size", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints", "n_samples"):
        if getattr(t, key) < 1:
            raise ConfigError(f"train.{key} must be at least 1, got {getattr(t, key)}.")
    if not 1 <= r.game.n_critic <= 100:
        raise ConfigError(f"game.n_critic must be between 1 and 100 (WGAN uses 5), got {r.game.n_critic}.")
    if not 1 <= r.model.z_dim <= MAX_Z_DIM:
        raise ConfigError(f"model.z_dim must be between 1 and {MAX_Z_DIM}, got {r.model.z_dim}.")
    if not 0 <= r.seed < 2**63:
        raise ConfigError(f"seed must be between 0 and 2**63 - 1, got {r.seed}.")
    if r.data.image_size is not None and not 4 <= r.data.image_size <= MAX_IMAGE_SIZE:
        raise ConfigError(f"data.image_size must be between 4 and {MAX_IMAGE_SIZE} pixels, got {r.data.image_size}.")
    if r.data.channels is not None and r.data.channels not in (1, 3):
        raise ConfigError(f"data.channels must be 1 (grey) or 3 (RGB), got {r.data.channels}.")
    if t.threads is not None and not 1 <= t.threads <= MAX_THREADS:
        raise ConfigError(f"train.threads must be between 1 and {MAX_THREADS} (or null: use the available cores), "
                          f"got {t.threads}.")
    if r.data.limit is not None and r.data.limit < 1:
        raise ConfigError(f"data.limit must be at least 1 (or null: all samples), got {r.data.limit}.")
    if not 1 <= r.data.n_points <= MAX_N_POINTS:
        raise ConfigError(f"data.n_points must be between 1 and {MAX_N_POINTS:,}, got {r.data.n_points}.")
    if r.eval.every < 0 or not 2 <= r.eval.n <= MAX_EVAL_N:
        raise ConfigError(f"eval.every must be >= 0 and eval.n between 2 and {MAX_EVAL_N:,}, got {r.eval.every} and "
                          f"{r.eval.n}.")
    if r.eval.every:
        from .metrics.spec import parse_metrics  # the metric declarations, without loading the engine

        parse_metrics(r.eval.metrics)
    if not 0.0 <= t.ema.decay < 1.0:
        raise ConfigError(f"train.ema.decay must be in [0, 1), got {t.ema.decay}.")
    for net in ("g", "d"):
        o = getattr(r.optim, net)
        if o.lr <= 0:
            raise ConfigError(f"optim.{net}.lr must be positive, got {o.lr}.")
        # What torch's optimisers would refuse with a ValueError (a traceback) once the networks are built.
        if not all(0.0 <= b < 1.0 for b in o.betas):
            raise ConfigError(f"optim.{net}.betas must both be in [0, 1), got {list(o.betas)}.")
        for key in ("eps", "weight_decay", "momentum", "alpha", "warmup"):
            if getattr(o, key) < 0:
                raise ConfigError(f"optim.{net}.{key} must be at least 0, got {getattr(o, key)}.")
