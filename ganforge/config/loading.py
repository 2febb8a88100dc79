"""Recipe loading: dict <-> schema, YAML text, dotted overrides, shipped-recipe lookup (imports config.schema, errors).

Unknown keys and wrongly typed values raise ConfigError naming the dotted key and the valid choices.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import sys
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Union

import yaml

from ..errors import ConfigError, GanforgeError, choices_message
from .schema import CHOICES, Component, Recipe, RegularizerConfig, validate

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
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
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
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        where = prefix or "the recipe"
        raise ConfigError(
            f"{where} needs {' and '.join(repr(m) for m in missing)}: the registered component to use, "
            f"e.g. {where}: {{name: ...}} (the README lists the components of each kind)."
        )
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


def _optional_dataclass(tp: Any) -> Any:
    """`X | None` as X when X is a dataclass (data.a of an unpaired dataset), so overrides can reach inside it."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(inner) == 1 and dataclasses.is_dataclass(inner[0]):
            return inner[0]
    return tp


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
            tp = _optional_dataclass(hints[part])
        if i == len(parts) - 1:
            if (
                not free_form
                and dataclasses.is_dataclass(tp)
                and tp not in (Component, RegularizerConfig)
                and not isinstance(value, dict)
            ):
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


def import_plugins(names: Any) -> None:
    """Import the recipe's `plugins:` modules (their ganforge.register_* calls add components by name)."""
    if names is None:
        return
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise ConfigError(f"plugins: a list of Python module names to import (e.g. [my_pkg.gans]), got {names!r}.")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)  # what `python -m` would find: a plugin beside the recipe the user runs from
    for name in names:
        try:
            importlib.import_module(name.strip())
        except ImportError as e:
            raise ConfigError(
                f"plugins: cannot import {name!r} ({e}); install it, or run from the folder that holds it."
            ) from None
        except GanforgeError:
            raise
        except Exception as e:
            raise ConfigError(f"plugins: importing {name!r} failed: {type(e).__name__}: {e}") from e


def build_recipe(data: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Validate a raw recipe dict after applying overrides (importing its plugins first)."""
    for text in overrides:
        apply_override(data, *parse_override(text))
    import_plugins(data.get("plugins"))
    recipe = from_dict(Recipe, data)
    validate(recipe)
    return recipe
