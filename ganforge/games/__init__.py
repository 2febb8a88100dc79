"""Games: one training step's choreography each, found by name."""

from __future__ import annotations

# Every other module in this package registers its game on import.
import importlib as _importlib
import pkgutil as _pkgutil
from collections.abc import Sequence
from typing import Any

from ..augment import build_augmentation
from ..errors import ConfigError, choices_message
from ..losses import get_objective
from ..regularizers import BoundRegularizer, build_regularizer
from .base import GAMES, Game, GameArgs, Network, StepContext, register
from .extragradient import ExtragradientGame
from .standard import StandardGame, pack, packed_shape
from .unrolled import UnrolledGame

for _m in _pkgutil.iter_modules(__path__):
    _importlib.import_module(f"{__name__}.{_m.name}")

__all__ = [
    "GAMES",
    "ExtragradientGame",
    "Game",
    "GameArgs",
    "Network",
    "StandardGame",
    "StepContext",
    "UnrolledGame",
    "build_game",
    "build_regularizers",
    "conditional_games",
    "pack",
    "packed_shape",
    "register",
]


def conditional_games() -> list[str]:
    """Names of the games that pass class labels to G and D."""
    return [n for n in GAMES.names() if GAMES.get(n).supports_conditional]


def build_regularizers(configs: Sequence[Any]) -> list[BoundRegularizer]:
    """Bind the recipe's `regularizers:` entries (RegularizerConfig or dicts)."""
    out = []
    for c in configs:
        c = (
            c
            if isinstance(c, dict)
            else {"name": c.name, "net": c.net, "weight": c.weight, "every": c.every, "args": c.args}
        )
        out.append(build_regularizer(**c))
    return out


def build_game(
    name: str,
    loss: str,
    loss_args: dict[str, Any],
    n_critic: int,
    args: dict[str, Any],
    regularizers: Sequence[Any] = (),
    augment: Any = None,
) -> Game:
    """Build the game `name` around the objective `loss`; unknown names or arguments raise ConfigError.

    `augment` is the recipe's augment section (a Component, a {name, args} dict or None for none).
    """
    cls = GAMES.get(name)
    objective = get_objective(loss, loss_args)
    if "regularizers" in args or "objective" in args or "n_critic" in args or "augment" in args:
        raise ConfigError(
            "game.args may not set objective, n_critic, regularizers or augment; use loss:, game.n_critic, "
            "regularizers: and augment:"
        )
    options, own = cls.game_options(), cls.own_args()
    for key in args:
        if key not in options and key not in own:
            raise ConfigError(choices_message(f"argument of game {name!r}:", key, options + own))
    aug = None
    if augment is not None:
        spec = augment if isinstance(augment, dict) else {"name": augment.name, "args": augment.args}
        aug = build_augmentation(spec.get("name", "off"), spec.get("args") or {})
    base = GameArgs(
        objective,
        n_critic,
        tuple(build_regularizers(regularizers)),
        **{k: v for k, v in args.items() if k in options},
        augment=aug,
    )
    return cls(base, **{k: v for k, v in args.items() if k in own})
