"""The run folder: lock, open (new or resumed), config.yaml, run.json, exported generators (Trainer mixin; imports Trainer for type hints only)."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from .. import __version__
from ..config import Recipe, dump_yaml
from ..errors import ConfigError, GanforgeError
from . import distributed
from .checkpoint import atomic_write_bytes, find_resumable, move_aside, remove_stale_temp_files
from .resume import (
    check_config_untouched,
    checkpoint_recipe,
    config_sha256,
    format_diff,
    is_safe,
    recipe_diff,
    resume_recipe,
)
from .runinfo import RunRecord
from .runlock import LOCK_NAME, RunLock

if TYPE_CHECKING:
    from torch import nn
    from torch.optim.lr_scheduler import LambdaLR
    from torch.optim.swa_utils import AveragedModel

    from ..data.dataset import ArrayDataset
    from ..games import Game
    from ..latent import LatentSpace
    from .distributed import Dist
    from .trainer import Trainer


def _check_free(out: Path) -> None:
    """Refuse to start a new run in a folder that holds anything but our lock file."""
    held = sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME)
    if held:
        what = (
            "already holds a run"
            if {"config.yaml", "run.json", "checkpoints"} & set(held)
            else f"is not empty ({', '.join(held[:5])}{', ...' if len(held) > 5 else ''})"
        )
        raise GanforgeError(
            f"output folder {str(out)!r} {what}; continue a run with "
            f"`ganforge train --resume {out}` or choose another --out."
        )


class RunFolderMixin:
    """The Trainer's run-folder side: start or resume a locked run, write config.yaml, run.json and the generators."""

    if TYPE_CHECKING:  # what this mixin uses of the Trainer (set in Trainer.__init__)
        recipe: Recipe
        out: Path
        resume: bool
        dist: Dist
        device: torch.device
        channels_last: bool
        settings: dict[str, dict[str, Any]]
        dataset: ArrayDataset
        shape: tuple[int, ...]
        game: Game
        latent: LatentSpace
        nets: dict[str, nn.Module]
        ema: AveragedModel | None
        opts: dict[str, torch.optim.Optimizer]
        scheds: dict[str, LambdaLR]
        step: int
        elapsed: float
        record: RunRecord | None
        _fresh_lrs: dict[str, list[float | torch.Tensor]]
        _last_ckpt_step: int
        _lock: RunLock | None
        _resume_from: tuple[Path, dict[str, Any], list[tuple[Path, str]], dict[str, Any]] | None
        _resume_shared: tuple[dict[str, Any], dict[str, Any]] | None

        def load_state_dict(self, s: dict[str, Any]) -> None: ...

    @classmethod
    def start(cls, recipe: Recipe, out_dir: str | Path, progress: bool | None = None) -> Trainer:
        """A trainer for a new run in `out_dir`, which is locked and checked to be free before any data is loaded."""
        out = Path(out_dir)
        d = distributed.from_env()
        distributed.init(d)
        created = not out.exists()

        def claim() -> RunLock:
            lock = RunLock(out).acquire()
            try:
                _check_free(out)
            except BaseException:
                lock.release()
                raise
            return lock

        # Rank 0 alone locks and checks the folder; the other ranks hear its verdict (training/distributed.py).
        lock = distributed.main_first(d, claim, "claiming the run folder", share=lambda _: None)
        try:
            trainer = cast("type[Trainer]", cls)(recipe, out, progress=progress)
        except BaseException:
            if lock is not None:
                lock.release()
                if created and {p.name for p in out.iterdir()} <= {LOCK_NAME}:
                    (out / LOCK_NAME).unlink(missing_ok=True)
                    out.rmdir()
            raise
        trainer._lock = lock
        return trainer

    @classmethod
    def resume_run(
        cls,
        run_dir: str | Path,
        overrides: list[str] | tuple[str, ...] = (),
        steps: int | None = None,
        progress: bool | None = None,
    ) -> Trainer:
        """A trainer that continues `run_dir` from its newest loadable checkpoint; only safe fields may be overridden.

        The run folder is locked first, and nothing in it changes unless a checkpoint loads and the
        recipe checks pass (see training/resume.py).
        """
        run_dir = Path(run_dir)
        d = distributed.from_env()
        distributed.init(d)

        def prepare() -> tuple[Any, ...]:
            if not run_dir.is_dir():
                raise GanforgeError(f"cannot resume {str(run_dir)!r}: there is no such run folder.")
            lock = RunLock(run_dir).acquire()
            try:
                path, state, refused = find_resumable(run_dir / "checkpoints")
                check_config_untouched(run_dir, RunRecord(run_dir).config_sha256, checkpoint_recipe(state))
                recipe, changed = resume_recipe(state, list(overrides), steps, int(state["step"]))
            except BaseException:
                lock.release()
                raise
            return lock, path, state, refused, changed, recipe

        # Rank 0 reads the checkpoint; the others build the same recipe and get the state when the run opens.
        got = distributed.main_first(
            d, prepare, "reading the checkpoint to resume", share=lambda g: (None, None, None, None, g[4], g[5])
        )
        lock, path, state, refused, changed, recipe = got
        try:
            trainer = cast("type[Trainer]", cls)(recipe, run_dir, resume=True, progress=progress)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        trainer._lock = lock
        if lock is not None:
            trainer._resume_from = (path, state, refused, changed)
        return trainer

    def _open_run_folder(self) -> None:
        """Under the lock: refuse a folder that holds something else, or restore the resumed state; write config.yaml."""
        remove_stale_temp_files(self.out)
        if not self.resume:
            _check_free(self.out)
        self.record = RunRecord(self.out)
        if self.resume:
            if self._resume_from is None:  # Trainer(recipe, out, resume=True) from Python
                path, state, refused = find_resumable(self.out / "checkpoints")
                diff = recipe_diff(checkpoint_recipe(state), self.recipe)
                unsafe = [d for d in diff if not is_safe(d[0])]
                if unsafe:
                    raise ConfigError(
                        f"cannot resume {str(self.out)!r} with a different recipe ({format_diff(unsafe)}): "
                        "the checkpoint's networks, data and game were built from its own recipe."
                    )
                self._resume_from = (path, state, refused, {k: n for k, _, n in diff})
            path, state, refused, changed = self._resume_from
            self._resume_shared = (state, changed)  # for the other ranks of a distributed run
            for bad, why in refused:
                dest = move_aside(bad)
                print(f"ganforge: checkpoint {bad.name} could not be read ({why}); moved to {dest}.", file=sys.stderr)
            self._load_resumed(state, changed, path)
            fell_back = f" (falling back past {len(refused)} unreadable newer checkpoint(s))" if refused else ""
            print(f"resuming {self.out} from {path.name} at step {self.step}{fell_back}", file=sys.stderr)
            self.record.history.append(
                {
                    "from_step": self.step,
                    "checkpoint": path.name,
                    "overrides": changed,
                    "refused": {p.name: why for p, why in refused},
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                }
            )
            self._truncate_log()
        (self.out / "samples").mkdir(exist_ok=True)
        (self.out / "checkpoints").mkdir(exist_ok=True)
        header = "".join(f"# {line}\n" for line in self.describe_settings().splitlines())
        text = "# settings resolved on this machine:\n" + header + dump_yaml(self.recipe)
        atomic_write_bytes(self.out / "config.yaml", lambda f: f.write(text.encode()))
        self.record.config_sha256 = config_sha256(text)

    def _load_resumed(
        self, state: dict[str, Any], changed: dict[str, Any], path: Path | str = "the checkpoint"
    ) -> None:
        """Restore a checkpoint's state and any learning rates changed on resume (every rank of a run does this)."""
        try:
            self.load_state_dict(state)
        except GanforgeError:
            raise
        except Exception as e:  # a checkpoint that unpickles safely but lacks or mangles part of the state
            from .checkpoint import why_unreadable

            raise GanforgeError(
                f"checkpoint {str(path)!r} could not be restored: it is not a complete ganforge "
                f"checkpoint of this run ({why_unreadable(e)}). Nothing was changed in the run "
                "folder."
            ) from None
        self._apply_changed_lrs(changed)
        self._last_ckpt_step = self.step

    def _truncate_log(self) -> None:
        """Drop log lines written after the checkpoint so the resumed log has no duplicates."""
        log = self.out / "metrics.jsonl"
        if not log.exists():
            return
        keep = []
        for line in log.read_text().splitlines():
            try:
                if json.loads(line)["step"] <= self.step:
                    keep.append(line)
            except (ValueError, KeyError, TypeError):
                continue
        atomic_write_bytes(log, lambda f: f.write(("\n".join(keep) + "\n" if keep else "").encode()))

    def _apply_changed_lrs(self, changed: dict[str, Any]) -> None:
        """Learning rates and schedules overridden on resume: the optimiser state restored the old ones."""
        for net, sched in self.scheds.items():
            opt = self.opts[net]
            if not any(k.startswith(f"optim.{net}.") for k in changed):
                continue
            sched.base_lrs = list(self._fresh_lrs[net])
            for group, base, lam in zip(opt.param_groups, sched.base_lrs, sched.lr_lambdas):
                group["initial_lr"] = base
                group["lr"] = base * lam(sched.last_epoch)

    def _record_quietly(self, status: str, **extra: Any) -> None:
        """Record a final status without letting a second failure (a full disk) hide the first."""
        assert self.record is not None  # opened with the run folder, before anything is recorded
        try:
            self.record.write(status, self._run_info(), **extra)
        except OSError as e:
            print(f"ganforge: warning: could not update run.json ({e.strerror or e})", file=sys.stderr)

    def _export_generator(self) -> list[Path]:
        from safetensors.torch import save

        meta = {
            "config": dump_yaml(self.recipe),
            "shape": json.dumps(list(self.shape)),
            "latent": json.dumps(self.latent.to_dict()),
            "step": str(self.step),
            "ganforge": __version__,
        }
        paths = []
        if self.game.generator is None:  # a translation game: both translators in one file, by network name
            from ..translation import EXPORT_NAME

            tensors = {
                f"{n.name}.{k}": v.detach().cpu().contiguous()
                for n in self.game.networks
                if n.role == "translator"
                for k, v in self.nets[n.name].state_dict().items()
            }
            path = self.out / EXPORT_NAME
            atomic_write_bytes(path, lambda f: f.write(save(tensors, metadata=meta)))
            return [path]
        # Every generator the game declares: the sampled one as generator.safetensors, others by name.
        nets = [
            ("generator" if n.name == self.game.generator else f"generator_{n.name}", self.nets[n.name])
            for n in self.game.networks
            if n.role == "generator"
        ]
        nets += [("generator_ema", self.ema.module)] if self.ema is not None else []
        for name, net in nets:
            tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
            path = self.out / f"{name}.safetensors"
            atomic_write_bytes(path, lambda f, t=tensors: f.write(save(t, metadata=meta)))
            paths.append(path)
        return paths

    def _run_info(self) -> dict[str, Any]:
        """The run's description for run.json (RunRecord adds the status)."""
        r = self.recipe
        return {
            "recipe": r.name,
            "description": r.description,
            "source": r.source,
            "steps": r.train.steps,
            "step": self.step,
            "last_checkpoint_step": self._last_ckpt_step,
            "wall_time_s": round(self.elapsed, 2),
            "device": str(self.device),
            "precision": r.train.precision,
            "channels_last": self.channels_last,
            "compile": r.train.compile,
            "threads": torch.get_num_threads(),
            # What each `auto` (or explicit) setting became on this machine, and why.
            "settings": self.settings,
            "hardware": self.hardware_info(),
            "seed": r.seed,
            "pid": os.getpid(),
            "processes": self.dist.world,
            **(
                {"elastic_run_id": os.environ["TORCHELASTIC_RUN_ID"]}
                if self.dist.enabled and os.environ.get("TORCHELASTIC_RUN_ID")
                else {}
            ),
            "torch": torch.__version__,
            "ganforge": __version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "data": getattr(self.dataset, "info", {}),
            "params": {
                role: sum(
                    p.numel() for n in self.game.networks if n.role == role for p in self.nets[n.name].parameters()
                )
                for role in ("generator", "translator", "discriminator")
                if any(n.role == role for n in self.game.networks)
            },
        }

    def hardware_info(self) -> dict[str, Any]:
        """The capabilities the `auto` settings were decided from."""
        from . import hardware

        info: dict[str, Any] = {
            "cpu_capability": hardware.cpu_capability(),
            "native_bf16": hardware.cpu_has_native_bf16(),
        }
        if self.device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(self.device)
            info["cuda_bf16"] = torch.cuda.is_bf16_supported()
        return info

    def describe_settings(self) -> str:
        """One line per setting, e.g. 'precision auto -> fp32: this CPU has no native bf16 (AVX2) ...'."""

        def show(v: Any) -> str:
            return str(v).lower() if isinstance(v, bool) else str(v)

        return "\n".join(
            f"{k} {show(s['value'])} (set explicitly)"
            if s["reason"] == "set explicitly"
            else f"{k} {show(s['requested'])} -> {show(s['value'])}: {s['reason']}"
            for k, s in self.settings.items()
        )
