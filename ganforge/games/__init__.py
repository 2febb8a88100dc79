"""Games: one training step's choreography each, found by name."""

from __future__ import annotations

from typing import Any

from ..losses import get_objective
from ..registry import check_kwargs
from .base import GAMES, Game, StepContext
from .standard import StandardGame

__all__ = ["GAMES", "Game", "StepContext", "StandardGame", "build_game"]


def build_game(name: str, loss: str, loss_args: dict[str, Any], n_critic: int, args: dict[str, Any]) -> Game:
    """Build the game `name` around the objective `loss`; unknown names or arguments raise ConfigError."""
    cls = GAMES.get(name)
    objective = get_objective(loss)
    if loss_args:
        check_kwargs(lambda: None, loss_args, f"loss {loss!r}")
    check_kwargs(cls.__init__, args, f"game {name!r}")
    return cls(objective, n_critic=n_critic, **args)
