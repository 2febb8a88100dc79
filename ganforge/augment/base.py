"""What an augmentation is to a game: a differentiable map of D's input batch, a probability, checkpointed state."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ..registry import Registry


class Augmentation:
    """x -> T(x) on a batch of images in [-1, 1], each image drawn its own transform; differentiable in x.

    `observe` receives D's logits on augmented real images (ADA's overfitting heuristic reads them);
    `update` runs once per D update and may change `p`; `logs` are per-step numbers for metrics.jsonl.
    """

    name = ""
    adaptive = False  # True: the game must feed `observe` and call `update`

    @property
    def p(self) -> float:
        """The probability with which each transform is applied (1 for fixed policies such as DiffAugment)."""
        return 1.0

    @property
    def active(self) -> bool:
        """False when this is the identity (the game then skips it entirely)."""
        return True

    def __call__(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def observe(self, real_logits: Tensor) -> None:
        """See D's logits on augmented real images (nothing to do for a fixed policy)."""

    def update(self, batch_images: int, mean_over_ranks: Any = None) -> None:
        """One D update of `batch_images` real images happened (nothing to do for a fixed policy)."""

    def logs(self) -> dict[str, float]:
        """Numbers for this step's metrics record."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


AUGMENTATIONS: Registry[type[Augmentation]] = Registry("augmentation")


@AUGMENTATIONS.register("off")
class Identity(Augmentation):
    """No augmentation (`augment: {name: off}`, the default)."""

    name = "off"

    @property
    def p(self) -> float:
        return 0.0

    @property
    def active(self) -> bool:
        return False

    def __call__(self, x: Tensor) -> Tensor:
        return x
