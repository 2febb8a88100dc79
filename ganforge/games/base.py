"""What a game is: the choreography of one training step, given a context that the trainer provides."""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor, nn

from ..registry import Registry


class StepContext(Protocol):
    """What a game may use: networks, data, noise, precision and an optimiser step per network."""

    G: nn.Module
    D: nn.Module
    opt_d: torch.optim.Optimizer  # read-only for games: the unrolled game follows its update rule
    batch_size: int
    device: torch.device

    def real_batch(self) -> tuple[Tensor, Tensor | None]: ...

    def noise(self, n: int) -> Tensor: ...

    def sample_latent(self, n: int) -> Any: ...

    def labelled_batch(self) -> tuple[Tensor, Tensor]: ...

    def autocast(self) -> Any: ...

    def step_d(self, loss: Tensor, restore: list[Tensor] | None = None) -> None: ...

    def step_g(self, loss: Tensor, ema: bool = True, restore: list[Tensor] | None = None) -> None: ...

    def frozen(self, net: nn.Module) -> Any: ...


class Game:
    """One training step's choreography; subclasses implement `step` and keep any extra state."""

    # Whether the step passes class labels to G and D (model.conditional); the trainer refuses otherwise.
    supports_conditional: bool = False
    # Size of the labelled subset the trainer must provide through ctx.labelled_batch() (0: none).
    labelled: int = 0

    def d_input_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The discriminator's input shape for data of `shape` (PacGAN packing changes it)."""
        return tuple(shape)

    def step(self, ctx: StepContext) -> dict[str, Tensor]:
        """Run one generator step (and its critic steps); return detached scalars to log."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Game state to checkpoint (e.g. BEGAN's k_t); empty for stateless games."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""


GAMES: Registry[type[Game]] = Registry("game")
