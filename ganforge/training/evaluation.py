"""In-training evaluation and checkpoints/best.pt (Trainer mixin; no trainer import; loads ganforge.metrics lazily)."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from typing import TYPE_CHECKING, Any

import torch

from ..data import load_dataset
from ..errors import ConfigError
from .checkpoint import atomic_write_bytes
from .runinfo import write_json

if TYPE_CHECKING:
    from pathlib import Path

    from torch import nn
    from torch.optim.swa_utils import AveragedModel

    from ..config import Recipe
    from ..data.dataset import ArrayDataset
    from ..latent import LatentSpace
    from .distributed import Dist
    from .precision import Precision


class EvalCancelled(BaseException):
    """Raised by the trainer's signal handler when SIGINT/SIGTERM arrives during an evaluation (single process).

    A BaseException, so that no `except Exception` inside the metrics code swallows it: the evaluation of a large
    sample set can take minutes on a CPU, longer than a scheduler's grace period between SIGTERM and SIGKILL.
    """


class EvaluationMixin:
    """The Trainer's evaluation side: metrics every eval.every steps, logged, and checkpoints/best.pt."""

    if TYPE_CHECKING:  # what this mixin uses of the Trainer (set in Trainer.__init__)
        recipe: Recipe
        out: Path
        dist: Dist
        device: torch.device
        dataset: ArrayDataset
        latent: LatentSpace
        G: nn.Module | None
        ema: AveragedModel | None
        precision: Precision
        writer: Any
        evaluator: Any
        best: dict[str, Any] | None
        step: int
        _eval_cancellable: bool

        def rank_states(self) -> list[dict[str, Any]] | None: ...
        def state_dict(self, ranks: list[dict[str, Any]] | None = None) -> dict[str, Any]: ...

    def run_eval(self, log_f: Any) -> dict[str, float] | None:
        """Evaluate the (EMA) generator now; log to metrics.jsonl, TensorBoard and eval.jsonl.

        None when a stop signal came first or during the evaluation (one process): the run checkpoints and stops
        without waiting for the numbers, which would be lost anyway if the scheduler's SIGKILL came first.
        """
        from .distributed import Collective

        net = self.ema.module if self.ema is not None else self.G
        # A distributed run cannot leave an evaluation half-way: the other ranks would wait in its collectives.
        self._eval_cancellable = not self.dist.enabled
        try:
            if self._eval_cancellable and getattr(self, "_stop_signal", None) is not None:
                raise EvalCancelled
            if self.evaluator is None:
                self.evaluator = self._make_evaluator()
            # With several processes each rank generates and scores its share of the samples; rank 0 merges them.
            res = self.evaluator.evaluate_generator(
                net,
                self.latent,
                autocast=self.precision.autocast,
                source=f"{'EMA ' if self.ema is not None else ''}generator at step {self.step}",
                collective=Collective(self.dist) if self.dist.enabled else None,
            )
        except EvalCancelled:
            print(
                f"stop requested: the evaluation at step {self.step} is skipped; checkpointing and stopping.",
                file=sys.stderr,
                flush=True,
            )
            return None
        finally:
            self._eval_cancellable = False
        numbers = res["metrics"]
        rec = {"step": self.step, **{f"eval/{k}": v for k, v in numbers.items()}}
        log_f.write(json.dumps(rec) + "\n")
        log_f.flush()
        if self.dist.main:
            for k, v in numbers.items():
                self.writer.add_scalar(f"eval/{k}", v, self.step)
            write_json(self.out / "eval" / f"step_{self.step:07d}.json", {"step": self.step, **res})
        return numbers

    def _make_evaluator(self) -> Any:
        """The in-training evaluator (its options are checked here; reference statistics wait for the first eval)."""
        from ..metrics.evaluate import Evaluator

        e, d = self.recipe.eval, self.recipe.data
        heldout = None
        if "memorisation" in e.metrics:
            heldout = load_dataset(
                dataclasses.replace(d, limit=None, labels=False), split="test", seed=self.recipe.seed
            )
        reference = self.dataset
        if e.reference == "full" and d.limit is not None:
            reference = load_dataset(dataclasses.replace(d, limit=None), seed=self.recipe.seed)
        return Evaluator(
            reference, e.metrics, extractor=e.extractor, n=e.n, seed=e.seed, heldout=heldout, device=self.device
        )

    def _maybe_save_best(self, numbers: dict[str, float]) -> None:
        from ..metrics.spec import higher_is_better

        key = self.recipe.eval.best
        if not key:
            return
        if key not in numbers:
            raise ConfigError(f"eval.best is {key!r}, but the evaluation gives only: {', '.join(numbers)}.")
        value = numbers[key]
        better = self.best is None or (
            value > self.best["value"] if higher_is_better(key) else value < self.best["value"]
        )
        if better and math.isfinite(value):  # the same verdict on every rank: they share the evaluation's numbers
            self.best = {"metric": key, "value": value, "step": self.step}
            ranks = self.rank_states()
            if self.dist.main:
                path = self.out / "checkpoints" / "best.pt"
                atomic_write_bytes(path, lambda f: torch.save(self.state_dict(ranks), f))
