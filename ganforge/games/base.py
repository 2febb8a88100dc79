"""What a game is: the choreography of one training step, given a context that the trainer provides.

The `Game` class is the whole contract between a game and the trainer: the networks and
optimisers it owns (by name), what it checks before training, its lazy-regularisation
intervals, how many real samples one step consumes, and its checkpointed state. The trainer
reads these declarations; it never probes a game for undeclared attributes.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

import torch
from torch import Tensor, nn

from ..augment import Augmentation, Identity
from ..errors import ConfigError
from ..latent import LatentSpace
from ..losses import Objective
from ..registry import Registry
from ..regularizers import BoundRegularizer


class StepContext(Protocol):
    """What a game may use: networks, data, noise, precision and an optimiser step per network."""

    G: nn.Module
    D: nn.Module
    nets: dict[str, nn.Module]  # every network the game declared, by name (G and D above are aliases)
    opt_d: torch.optim.Optimizer  # read-only for games: the unrolled game follows its update rule
    batch_size: int  # this process's share of the global batch (the recipe's train.batch_size / world)
    world: int  # processes training together (1 without torch.distributed)
    device: torch.device
    latent_space: LatentSpace  # G's input layout: noise size, InfoGAN codes, class count (0: unconditional)

    def real_batch(self, n: int | None = None) -> tuple[Tensor, Tensor | None]: ...

    def real_pair(self, n: int | None = None) -> tuple[Tensor, Tensor]: ...

    def noise(self, n: int) -> Tensor: ...

    def sample_latent(self, n: int) -> Any: ...

    def labelled_batch(self) -> tuple[Tensor, Tensor]: ...

    def autocast(self) -> Any: ...

    def mean_over_ranks(self, values: dict[str, Tensor]) -> dict[str, Tensor]: ...

    def share_from_first_rank(self, net: nn.Module) -> None: ...

    def step_d(self, loss: Tensor, restore: list[Tensor] | None = None) -> None: ...

    def step_g(self, loss: Tensor, ema: bool = True, restore: list[Tensor] | None = None) -> None: ...

    def frozen(self, net: nn.Module) -> Any: ...

    # Set by the trainer: on a measuring step a game may add health signals to `grad_norms` (see StandardGame).
    measure_grads: bool
    grad_norms: dict[str, Tensor]


def input_grad_norm(logits: Tensor, x: Tensor) -> Tensor:
    """Mean per-sample ||d logits / d x|| for inputs `x` (requires_grad) that produced `logits`; keeps the graph."""
    (g,) = torch.autograd.grad(logits.float().sum(), x, retain_graph=True)
    return g.detach().float().flatten(1).norm(dim=1).mean()


@dataclass(frozen=True)
class Network:
    """A network a game owns: its name (context attribute and checkpoint key), the recipe entry that builds it, its optimiser."""

    name: str  # "G", "D"; CycleGAN: "G_ab", "G_ba", "D_a", "D_b"
    # "generator" (model.generator builds a noise-to-data network), "translator" (model.generator builds an
    # image-to-image network from the TRANSLATORS registry) or "discriminator" (model.discriminator)
    role: str
    optimizer: str  # "g" or "d": the recipe's optim.g / optim.d; several networks may share one optimiser


@dataclass(frozen=True)
class GameArgs:
    """What every game is built from: the recipe's objective, n_critic and regularisers, and the standard step's options.

    `objective`, `n_critic` and `regularizers` come from the recipe's `loss:`, `game.n_critic` and
    `regularizers:`; the other fields are `game.args` options (see `Game.options`). A new option
    shared by the games is one new field here.
    """

    objective: Objective | None = None
    n_critic: int = 1
    regularizers: tuple[BoundRegularizer, ...] = ()
    pack: int = 1  # PacGAN: D judges `pack` samples at once (Lin et al. 2018)
    g_adversarial: bool = True  # False: G trains on its regularisers alone (feature matching)
    augment: Augmentation | None = None  # the recipe's augment: what every D input goes through (None: nothing)


# Fields of GameArgs that the recipe sets outside game.args.
RECIPE_FIELDS = ("objective", "n_critic", "regularizers", "augment")

GameT = TypeVar("GameT", bound="type[Game]")


class Game:
    """One training step's choreography; subclasses implement `step` and keep any extra state."""

    # The registry name (recipe `game.name`), set by `register`.
    name: ClassVar[str] = ""
    # Whether the step passes class labels to G and D (model.conditional); the trainer refuses otherwise.
    supports_conditional: ClassVar[bool] = False
    # Size of the labelled subset the trainer must provide through ctx.labelled_batch() (0: none).
    labelled: int = 0
    # The networks the trainer builds, checkpoints and optimises for this game, in build order.
    networks: ClassVar[tuple[Network, ...]] = (Network("G", "generator", "g"), Network("D", "discriminator", "d"))
    # The generator that sample grids, EMA, evaluation and generator.safetensors use; None for a translation
    # game, whose samples are input | translation | reconstruction triplets and whose export is translators.safetensors
    # (its translators are named G_ab and G_ba: ganforge.translation.DIRECTIONS).
    generator: ClassVar[str | None] = "G"
    # The data the step reads: "single" (one dataset, ctx.real_batch) or "unpaired" (data 'unpaired', ctx.real_pair).
    data: ClassVar[str] = "single"
    # The GameArgs options this game accepts in game.args (None: all of them).
    options: ClassVar[tuple[str, ...] | None] = None
    # Why this game cannot train on several processes (None: it can); the trainer refuses with it.
    distributed_refusal: ClassVar[str | None] = None
    # Why this game cannot augment D's inputs (None: it can); a recipe's `augment:` other than off is refused with it.
    augment_refusal: ClassVar[str | None] = (
        "it has its own step, which does not pass D's inputs through an augmentation"
    )

    def __init__(self, args: GameArgs) -> None:
        self.args = args
        self.objective = args.objective
        self.n_critic = args.n_critic
        self.augment: Augmentation = args.augment or Identity()
        if self.augment.active and self.augment_refusal is not None:
            raise ConfigError(
                f"game {self.name} cannot use augment: {self.augment.name} because {self.augment_refusal}; "
                f"use augment: {{name: off}} with it, or a game built on the standard step."
            )

    # ------------------------------------------------------------------ declarations the trainer reads

    @classmethod
    def optimizers(cls) -> dict[str, list[str]]:
        """Each optimiser's name ("g", "d") and the networks it updates, in declaration order."""
        out: dict[str, list[str]] = {}
        for net in cls.networks:
            out.setdefault(net.optimizer, []).append(net.name)
        return out

    @classmethod
    def game_options(cls) -> list[str]:
        """The GameArgs options a recipe may set in game.args for this game."""
        if cls.options is not None:
            return list(cls.options)
        return [f.name for f in dataclasses.fields(GameArgs) if f.name not in RECIPE_FIELDS]

    @classmethod
    def own_args(cls) -> list[str]:
        """The game's own game.args names: its constructor's keyword parameters after `args`."""
        params = list(inspect.signature(cls.__init__).parameters.values())[2:]
        return [
            p.name
            for p in params
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        ]

    def check(self, latent: LatentSpace, dataset: Any) -> None:
        """Refuse, before anything trains, a latent space or dataset this game cannot use (ConfigError); default: accept all."""

    def set_seed(self, seed: int) -> None:
        """Seed the game's own random draws (CycleGAN's pools) from the run's seed; default: the game draws none."""

    def lazy_intervals(self) -> dict[str, int]:
        """Each optimiser's lazy-regularisation interval k > 1 (Karras et al. 2020, StyleGAN2, App. B); none by default.

        The trainer builds that optimiser with lr * c and betas ** c, c = k / (k + 1).
        """
        return {}

    def real_per_step(self, batch_size: int) -> int:
        """Real samples D's updates see in one step: batch_size per critic update."""
        return batch_size * self.n_critic

    def d_input_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The discriminator's input shape for data of `shape` (PacGAN packing changes it)."""
        return tuple(shape)

    def status(self) -> str:
        """A short phrase for the progress line about where the game stands (ProGAN: its phase); "" for most games."""
        return ""

    # ------------------------------------------------------------------ the step and its state

    def step(self, ctx: StepContext) -> dict[str, Tensor]:
        """Run one generator step (and its critic steps); return detached scalars to log."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Game state to checkpoint (e.g. BEGAN's k_t); empty for stateless games."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""


GAMES: Registry[type[Game]] = Registry("game")


def register(name: str) -> Callable[[GameT], GameT]:
    """Register a game class as recipe `game.name` = `name` (and record the name on the class)."""

    def deco(cls: GameT) -> GameT:
        cls.name = name
        GAMES.register(name)(cls)  # returns `cls` itself, typed as the registry's type[Game]
        return cls

    return deco
