"""Errors that the CLI turns into a one-paragraph message and exit status 2."""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches


class GanforgeError(Exception):
    """A problem with the user's input (recipe, key, value, data); shown without a traceback."""

    # Set (True) only on another rank's copy of rank 0's error in a distributed run (training/distributed.py).
    echo: bool


class ConfigError(GanforgeError):
    """A recipe, key, component name, argument or value that is not valid."""


class DataError(GanforgeError):
    """A dataset that is missing, empty or unreadable."""


class TrainingError(GanforgeError):
    """Training cannot go on (e.g. a non-finite loss); the last good checkpoint is kept."""


TIME_LIMIT = "time limit"  # RunInterrupted.signal when Trainer.deadline, not a signal, stopped the run


class RunInterrupted(Exception):
    """SIGINT, SIGTERM or a time limit stopped a run cleanly at a step boundary (after a checkpoint where one could
    be written). `signal` is the signal's name, or TIME_LIMIT."""

    def __init__(self, signal: str, step: int, checkpoint_step: int, folder: object) -> None:
        super().__init__(f"{signal} at step {step}")
        self.signal, self.step, self.checkpoint_step, self.folder = signal, step, checkpoint_step, folder

    def __reduce__(self) -> tuple[type, tuple[str, int, int, object]]:
        # A benchmark's pool worker raises it in another process: it must unpickle with its four arguments.
        return type(self), (self.signal, self.step, self.checkpoint_step, self.folder)


class RunStopped(Exception):
    """train.doctor.stop_on stopped a run when the doctor diagnosed one of its states (checkpointed first)."""

    def __init__(self, state: str, title: str, since: int, step: int, best: object, folder: object) -> None:
        super().__init__(f"{title} since step {since}, stopped at step {step}")
        self.state, self.title, self.since, self.step, self.best, self.folder = state, title, since, step, best, folder


def choices_message(what: str, name: str, valid: Iterable[str]) -> str:
    """Format 'unknown X "name"; did you mean ...? valid choices: ...'."""
    # Bools are shown as YAML spells them (a choice such as train.channels_last: auto | true | false).
    valid = sorted(str(v).lower() if isinstance(v, bool) else str(v) for v in valid)
    msg = f"unknown {what} {name!r}"
    close = get_close_matches(str(name), valid, n=1)
    if close:
        msg += f" (did you mean {close[0]!r}?)"
    msg += ". Valid choices: " + ", ".join(valid) + "."
    return msg
