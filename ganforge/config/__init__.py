"""The recipe configuration's public API, re-exported from schema.py (typed schema) and loading.py (YAML, overrides).

A recipe is a YAML file; every key maps to a dataclass field in schema.py. Unknown keys and
wrongly typed values raise ConfigError naming the dotted key and the valid choices.
Component arguments (``args:``) are free-form here and checked against the component's
signature when it is built.
"""

from __future__ import annotations

from .loading import (
    apply_override,
    build_recipe,
    dump_yaml,
    from_dict,
    list_recipes,
    load_raw,
    load_recipe,
    parse_override,
    recipe_path,
    to_dict,
    yaml_problem,
)
from .schema import (
    CHOICES,
    MAX_EVAL_N,
    MAX_IMAGE_SIZE,
    MAX_N_POINTS,
    MAX_THREADS,
    MAX_Z_DIM,
    Component,
    DataConfig,
    EMAConfig,
    EvalConfig,
    GameConfig,
    LatentConfig,
    ModelConfig,
    OptimConfig,
    OptimizerConfig,
    Recipe,
    RegularizerConfig,
    TrainConfig,
    validate,
)

__all__ = [
    "CHOICES",
    "MAX_EVAL_N",
    "MAX_IMAGE_SIZE",
    "MAX_N_POINTS",
    "MAX_THREADS",
    "MAX_Z_DIM",
    "Component",
    "DataConfig",
    "EMAConfig",
    "EvalConfig",
    "GameConfig",
    "LatentConfig",
    "ModelConfig",
    "OptimConfig",
    "OptimizerConfig",
    "Recipe",
    "RegularizerConfig",
    "TrainConfig",
    "apply_override",
    "build_recipe",
    "dump_yaml",
    "from_dict",
    "list_recipes",
    "load_raw",
    "load_recipe",
    "parse_override",
    "recipe_path",
    "to_dict",
    "validate",
    "yaml_problem",
]
