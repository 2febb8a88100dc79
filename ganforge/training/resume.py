"""Resume semantics: the checkpoint's recipe is the truth; only safe fields may change, by explicit override.

A resumed run continues the same networks on the same data, so anything that shapes the networks,
the data or the game must stay as the checkpoint recorded it. Fields that only steer the loop
(length, cadence, device, precision, evaluation, learning rates) may change with
`ganforge train --resume RUN key=value`; each such change is recorded in run.json. Editing
config.yaml behind the run's back is refused with a diff: the file is a record, not an input.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from ..config import Recipe, apply_override, build_recipe, parse_override, to_dict, yaml_problem
from ..errors import ConfigError, GanforgeError

# Dotted prefixes that may change when a run is resumed.
SAFE_ON_RESUME = (
    "train.steps",
    "train.log_every",
    "train.sample_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.n_samples",
    "train.progress",
    "train.device",
    "train.precision",
    "train.channels_last",
    "train.compile",
    "train.threads",
    "train.signals",
    "train.doctor",
    "eval.",
    "optim.g.decay_start",
    "optim.d.decay_start",
    "optim.g.lr",
    "optim.d.lr",
    "optim.g.schedule",
    "optim.d.schedule",
    "optim.g.monitor",
    "optim.d.monitor",
    "optim.g.patience",
    "optim.d.patience",
    "optim.g.threshold",
    "optim.d.threshold",
    "optim.g.min_factor",
    "optim.d.min_factor",
    "optim.g.warmup",
    "optim.d.warmup",
    "description",
)


def is_safe(key: str) -> bool:
    """True when the dotted recipe key may change in a resumed run."""
    return any(key == p or (p.endswith(".") and key.startswith(p)) or key.startswith(p + ".") for p in SAFE_ON_RESUME)


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out or {prefix: {}}
    return {prefix: node}


def recipe_diff(old: Recipe, new: Recipe) -> list[tuple[str, Any, Any]]:
    """[(dotted key, old value, new value)] for every field that differs."""
    a, b = _flatten(to_dict(old)), _flatten(to_dict(new))
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def format_diff(diff: list[tuple[str, Any, Any]]) -> str:
    """'model.generator.args.width: 32 -> 16; ...'."""
    return "; ".join(f"{k}: {o!r} -> {n!r}" for k, o, n in diff)


def checkpoint_recipe(state: dict[str, Any]) -> Recipe:
    """The recipe a checkpoint was trained with."""
    try:
        return build_recipe(yaml.safe_load(state["config"]))
    except yaml.YAMLError as e:
        why = yaml_problem(e)
    except GanforgeError as e:
        why = str(e)
    except Exception as e:
        why = f"{type(e).__name__}: {' '.join(str(e).split())}"
    raise GanforgeError(
        f"the checkpoint's own recipe could not be read ({why}); it was not written by this version of ganforge."
    )


def config_sha256(text: str) -> str:
    """The hash run.json keeps of the config.yaml that ganforge wrote, to notice later hand edits."""
    return hashlib.sha256(text.encode()).hexdigest()


def check_config_untouched(run_dir: Path, written_sha: str | None, truth: Recipe) -> None:
    """Refuse to resume when config.yaml was edited after ganforge wrote it (diff against the checkpoint's recipe)."""
    cfg = run_dir / "config.yaml"
    if not cfg.is_file() or written_sha is None:
        return  # deleted (it is rewritten from the checkpoint) or from a run older than the record
    text = cfg.read_text(errors="replace")
    if config_sha256(text) == written_sha:
        return
    advice = (
        f"The checkpoint holds the recipe; config.yaml is only its record. Restore config.yaml (or delete it: "
        f"the resumed run writes it again) and change safe fields with overrides, e.g. "
        f"`ganforge train --resume {run_dir} optim.g.lr=1e-4 train.steps=5000`."
    )
    try:
        data = yaml.safe_load(text)
        edited = build_recipe(data if isinstance(data, dict) else {})
    except (GanforgeError, yaml.YAMLError) as e:
        why = yaml_problem(e) if isinstance(e, yaml.YAMLError) else e
        raise GanforgeError(
            f"{str(cfg)!r} was edited after the run wrote it and is no longer a valid recipe ({why}). " + advice
        ) from None
    if not isinstance(data, dict) or not data:
        raise GanforgeError(f"{str(cfg)!r} was emptied after the run wrote it. " + advice)
    diff = recipe_diff(truth, edited)
    if diff:
        raise GanforgeError(f"{str(cfg)!r} was edited after the run wrote it ({format_diff(diff)}). " + advice)


def resume_recipe(
    state: dict[str, Any], overrides: list[str] | tuple[str, ...], steps: int | None, done: int
) -> tuple[Recipe, dict[str, Any]]:
    """(recipe to continue with, {key: new value} changed) from the checkpoint's recipe plus safe overrides."""
    truth = checkpoint_recipe(state)
    data = to_dict(truth)
    changed: dict[str, Any] = {}
    for text in overrides:
        key, value = parse_override(text)
        if not is_safe(key):
            raise ConfigError(
                f"{key!r} cannot change when a run is resumed: the checkpoint's networks, data and game were built "
                f"from it. Fields that may change: {', '.join(p.rstrip('.') + ('.*' if p.endswith('.') else '') for p in SAFE_ON_RESUME)}. "
                "To train with a different setting, start a new run."
            )
        apply_override(data, key, value)
    if steps is not None:
        apply_override(data, "train.steps", steps)
    recipe = build_recipe(data)
    if recipe.train.steps < done:
        raise ConfigError(
            f"the run is already at step {done}; train.steps={recipe.train.steps} is smaller. "
            f"Give a larger --steps to extend it (e.g. --steps {done * 2})."
        )
    for key, _old, new in recipe_diff(truth, recipe):
        changed[key] = new
    return recipe, changed
