"""The trainer: owns the loop, devices, precision, optimisers, EMA, checkpoints, samples and logs.

The run folder and run.json (runfolder.py) and in-training evaluation (evaluation.py) are mixins it inherits.
"""

from __future__ import annotations

import copy
import json
import math
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import yaml
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

from .. import __version__
from ..config import Recipe, dump_yaml
from ..data import BatchStream, is_mixture, load_dataset, mixture_spec
from ..data.unpaired import UnpairedDataset, UnpairedStream
from ..errors import TIME_LIMIT, ConfigError, RunInterrupted, RunStopped, TrainingError
from ..games import build_game, conditional_games
from ..generation import generate, generator_from_recipe
from ..latent import fixed_latents, grid_columns, latent_space, model_extras
from ..models import build_discriminator, build_translator
from ..nn.spectral import apply_spectral_norm
from . import distributed
from .checkpoint import capture_rng, restore_rng, save_checkpoint
from .context import TrainContext
from .ema import make_ema
from .evaluation import EvalCancelled, EvaluationMixin
from .hardware import (
    check_fits,
    configure_threads,
    resolve_channels_last,
    resolve_device,
    resolve_precision,
    warn_if_cores_shared,
)
from .optim import build_optimizer, build_scheduler, plateau_factors
from .precision import Precision
from .result import RunResult
from .runfolder import RunFolderMixin
from .runinfo import RunRecord
from .runlock import RunLock
from .signals import SampleTracker, WeightTracker


def _finite_or_none(d: dict[str, float]) -> dict[str, float | None]:
    """Non-finite values as None (JSON has no inf or NaN)."""
    return {k: v if math.isfinite(v) else None for k, v in d.items()}


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _NullLog:
    """metrics.jsonl on the ranks that write nothing."""

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class Trainer(RunFolderMixin, EvaluationMixin):
    """Trains one recipe into `out_dir`; `resume=True` continues from the newest good checkpoint there."""

    def __init__(self, recipe: Recipe, out_dir: str | Path, resume: bool = False, progress: bool | None = None) -> None:
        # A copy: `auto` settings are replaced by what they resolve to on this machine, so that
        # config.yaml, the checkpoints and run.json record what the run actually used.
        self.recipe = r = copy.deepcopy(recipe)
        self.out = Path(out_dir)
        self.resume = resume
        # With torchrun (WORLD_SIZE > 1) this process is one rank of a data-parallel run (training/distributed.py).
        self.dist = distributed.from_env()
        distributed.init(self.dist)
        self.progress = (r.train.progress if progress is None else progress) and self.dist.main
        t = r.train
        self.threads = configure_threads(t.threads, share=self.dist.local_world)
        self.device = resolve_device(t.device)
        if self.dist.enabled and self.device.type == "cuda":  # one GPU per process on each node
            if torch.cuda.device_count() < self.dist.local_world:
                raise ConfigError(
                    f"{self.dist.local_world} processes on this machine need one GPU each, and it has "
                    f"{torch.cuda.device_count()}: use --nproc {torch.cuda.device_count()} (NCCL cannot "
                    "share one GPU between ranks), or train.device=cpu."
                )
            self.device = torch.device("cuda", self.dist.local_rank)
        seed_everything(r.seed)

        d = r.data
        self.dataset = load_dataset(d, seed=r.seed)
        self.shape = tuple(self.dataset.shape)
        self.is_image = len(self.shape) == 3
        prec = resolve_precision(t.precision, self.device, self.is_image)
        mem_choice = resolve_channels_last(t.channels_last, self.device, str(prec.value), self.is_image)
        device_why = "CUDA is available" if self.device.type == "cuda" else f"{self.device.type} (no CUDA device)"
        # requested -> value, and why: printed once at start and recorded in run.json.
        self.settings = {
            "device": {
                "requested": t.device,
                "value": str(self.device),
                "reason": device_why if t.device == "auto" else "set explicitly",
            },
            "precision": {"requested": t.precision, "value": prec.value, "reason": prec.reason},
            "channels_last": {"requested": t.channels_last, "value": mem_choice.value, "reason": mem_choice.reason},
            "threads": {"requested": t.threads or "auto", "value": self.threads.value, "reason": self.threads.reason},
        }
        if self.dist.enabled:
            self.settings["processes"] = {
                "requested": self.dist.world,
                "value": self.dist.world,
                "reason": f"torch.distributed, {self.dist.local_world} on this node, "
                f"{t.batch_size // self.dist.world} of the batch of {t.batch_size} each",
            }
        t.precision, t.channels_last = str(prec.value), bool(mem_choice.value)
        self.channels_last = bool(mem_choice.value)

        mem = torch.channels_last if self.channels_last else torch.contiguous_format
        self.game = build_game(
            r.game.name, r.loss.name, r.loss.args, r.game.n_critic, r.game.args, r.regularizers, r.augment
        )
        self.game.set_seed(r.seed)
        if self.dist.enabled:
            if self.game.distributed_refusal:
                raise ConfigError(
                    f"game {r.game.name!r} cannot train on several processes: {self.game.distributed_refusal}."
                )
            if t.batch_size % self.dist.world:
                raise ConfigError(
                    f"train.batch_size ({t.batch_size}) is the global batch and must split evenly across "
                    f"the {self.dist.world} processes; use a multiple of {self.dist.world}."
                )
        self.unpaired = isinstance(self.dataset, UnpairedDataset)
        self._check_data_kind()
        # A translation game (CycleGAN) has no noise generator: samples are triplets, exports are translators.
        self.translation = self.game.generator is None
        self.latent = latent_space(r, self.dataset)
        if self.latent.num_classes and not self.game.supports_conditional:
            raise ConfigError(
                f"game {r.game.name!r} does not support model.conditional: true "
                f"(conditional games: {', '.join(conditional_games())})."
            )
        # Games that need codes (InfoGAN), classes (semi-supervised) or unpacked inputs say so before anything trains.
        self.game.check(self.latent, self.dataset)

        def make_g() -> nn.Module:  # G's spectral norm waits until D is built: it draws from the global RNG
            return generator_from_recipe(r, self.shape, self.latent, spectral_norm=False)

        def make_d() -> nn.Module:
            return build_discriminator(
                r.model.discriminator.name,
                self.game.d_input_shape(self.shape),
                r.model.discriminator.args,
                **model_extras(self.latent, "d"),
            )

        # The networks the game declares, by name; each role's recipe entry builds it.
        def make_t() -> nn.Module:
            return build_translator(r.model.generator.name, self.shape, r.model.generator.args)

        make = {"generator": make_g, "translator": make_t, "discriminator": make_d}
        for net in self.game.networks:  # before allocating: an absurd size is an error, not a hang
            check_fits(make[net.role], net.role, self.device)
        self.nets: dict[str, nn.Module] = {net.name: make[net.role]() for net in self.game.networks}
        # Discriminators first: spectral norm draws its power-iteration vectors from the global RNG.
        for role, when in (("discriminator", ("d", "both")), ("generator", ("g", "both"))):
            if r.model.spectral_norm in when:
                for net in self.game.networks:
                    if net.role == role:
                        apply_spectral_norm(self.nets[net.name])
        if t.sync_batchnorm and self.dist.enabled:
            from ..nn.sync_batchnorm import convert_sync_batchnorm

            for name in list(self.nets):
                self.nets[name] = convert_sync_batchnorm(self.nets[name])
        for m in self.nets.values():
            m.to(self.device, memory_format=mem)  # type: ignore[call-overload]  # Module.to takes both; torch's overloads list them apart
        # Every rank starts from rank 0's weights (the same seed gives the same ones, but never trust that).
        distributed.broadcast_state(self.nets.values(), self.dist, params=True)
        # G: the generator that is sampled, averaged and exported; D: the standard game's discriminator.
        self.G = None if self.game.generator is None else self.nets[self.game.generator]  # None: translation
        self.D = self.nets.get("D")
        if self.translation and t.ema.enabled:
            raise ConfigError(
                f"game {r.game.name!r} trains translators; train.ema averages a noise generator and "
                "does not apply (set train.ema.enabled: false)."
            )
        self.ema: AveragedModel | None = None
        if t.ema.enabled:
            assert self.G is not None  # a translation run was refused train.ema just above
            self.ema = make_ema(self.G, t.ema.decay)

        # One optimiser per declared name (recipe optim.g / optim.d) over its networks; a lazy interval k
        # gets StyleGAN2's correction c = k / (k + 1) (Karras et al. 2020, Appendix B).
        lazy = self.game.lazy_intervals()
        self.opts: dict[str, torch.optim.Optimizer] = {
            name: build_optimizer(
                [p for n in nets for p in self.nets[n].parameters()],
                getattr(r.optim, name),
                lazy[name] / (lazy[name] + 1) if name in lazy else 1.0,
            )
            for name, nets in self.game.optimizers().items()
        }
        self.scheds = {name: build_scheduler(opt, getattr(r.optim, name), t.steps) for name, opt in self.opts.items()}
        self.opt_g, self.opt_d = self.opts.get("g"), self.opts.get("d")
        self.sched_g, self.sched_d = self.scheds.get("g"), self.scheds.get("d")
        # Schedule 'plateau' reads a logged value every step; the other schedules need nothing from the step.
        self._plateaus = [(name, f) for name, sched in self.scheds.items() for f in plateau_factors(sched)]
        self.precision = Precision(t.precision, self.device)

        if t.batch_size > len(self.dataset):
            raise ConfigError(
                f"train.batch_size ({t.batch_size}) is larger than the dataset ({len(self.dataset)} samples)."
            )
        self.stream: Any = (
            UnpairedStream(cast(UnpairedDataset, self.dataset), t.batch_size, r.seed)
            if self.unpaired
            else BatchStream(self.dataset, t.batch_size, r.seed)
        )
        self.labelled_stream: BatchStream | None = None
        if self.game.labelled:
            self.labelled_stream = BatchStream(
                self._labelled_subset(self.game.labelled), min(t.batch_size, self.game.labelled), r.seed + 1
            )
        if self.dist.enabled:  # each rank reads its slice of every global batch
            self.stream.shard(self.dist.rank, self.dist.world)
            if self.labelled_stream is not None:
                self.labelled_stream.shard(self.dist.rank, self.dist.world)
        self.noise_gen = torch.Generator().manual_seed(r.seed * 7919 + 17)
        n_fixed = 2500 if not self.is_image else t.n_samples
        # Fixed latents for sample grids; a conditional grid shows the classes in order, one per row.
        self.fixed = fixed_latents(self.latent, n_fixed, r.seed + 4242)
        # A translation run's grids show the same held-out images of each domain every time.
        self.fixed_pair = self._fixed_test_pair(min(t.n_samples, 8)) if self.translation else None

        # torch.compile of a Module gives an OptimizedModule (a Module); its annotation says only a callable.
        run_nets = {n: cast(nn.Module, torch.compile(m)) if t.compile else m for n, m in self.nets.items()}
        # The G/D/opt_g/opt_d aliases may be None for a game with other networks: it reads `nets` and `optimizers`.
        self.ctx = TrainContext(
            cast(nn.Module, run_nets.get(self.game.generator or "")),
            cast(nn.Module, run_nets.get("D")),
            cast(torch.optim.Optimizer, self.opt_g),
            cast(torch.optim.Optimizer, self.opt_d),
            self.precision,
            self.device,
            t.batch_size,
            r.model.z_dim,
            self.stream.next,
            self.noise_gen,
            channels_last=self.channels_last,
            on_g_step=self._after_g_step,
            latent_space=self.latent,
            next_labelled=None if self.labelled_stream is None else self.labelled_stream.next,
            nets=run_nets,
            optimizers=self.opts,
            dist=self.dist,
        )
        self.writer: Any = None
        # Built now, so that a metric that cannot apply here stops the run before it trains, not after.
        if self.translation and r.eval.every:
            raise ConfigError(
                f"game {r.game.name!r} trains translators; eval.every measures a noise generator and does "
                "not apply (set eval.every: 0; `ganforge bench cycle` measures translations)."
            )
        self.evaluator: Any = self._make_evaluator() if r.eval.every else None
        self.best: dict[str, Any] | None = None  # {"metric", "value", "step"} of checkpoints/best.pt
        self.step = 0
        self.elapsed = 0.0  # training wall time summed over resumed segments
        self._fresh_lrs = {name: list(sched.base_lrs) for name, sched in self.scheds.items()}
        self._last_ckpt_step = 0
        self._lock: RunLock | None = None
        self._resume_from: tuple[Path, dict[str, Any], list[tuple[Path, str]], dict[str, Any]] | None = None
        self._resume_shared: tuple[dict[str, Any], dict[str, Any]] | None = None
        self._stop_signal: str | None = None
        # A wall-clock time (time.time()) at which the run stops as if SIGTERM came: checkpoint, record, raise.
        # Set by a caller with a session to fit in (`ganforge bench fashion --minutes`); None runs to train.steps.
        self.deadline: float | None = None
        self._eval_cancellable = False  # set by run_eval while a signal may abandon the evaluation
        self.record: RunRecord | None = None
        self.weight_tracker: WeightTracker | None = None  # made when training starts (after a resume's load)
        self.sample_tracker: SampleTracker | None = None
        self._last_grid: Tensor | None = None
        self.doctor: Any = None  # ganforge.doctor.Doctor, made when training starts (a resume replays the log)
        self._doctor_stop: Any = None  # the Period that train.doctor.stop_on stops the run for
        self._agreed_halt: str | None = None  # with several processes: "signal" / "doctor" once all ranks know
        if self.dist.enabled:
            # Ranks draw their own penalty points and noise layers; data and latents are global draws, sliced.
            self._seed_rank()

    def _seed_rank(self) -> None:
        """Seed the global RNGs of this rank from (seed, rank)."""
        seed_everything(distributed.rank_seed(self.recipe.seed, self.dist.rank))

    def _check_data_kind(self) -> None:
        """A translation game needs data 'unpaired', and unpaired data needs a translation game."""
        from ..games import GAMES

        name = self.recipe.game.name
        if self.game.data == "unpaired" and not self.unpaired:
            raise ConfigError(
                f"game {name!r} translates between two image domains: use data: {{name: unpaired, "
                f"a: {{...}}, b: {{...}}}} (got data {self.dataset.name!r})."
            )
        if self.unpaired and self.game.data != "unpaired":
            able = [n for n in GAMES.names() if GAMES.get(n).data == "unpaired"]
            raise ConfigError(
                f"data 'unpaired' holds two domains for translation; game {name!r} trains on one "
                f"dataset. Games that translate: {', '.join(able)}."
            )

    def _fixed_test_pair(self, n: int) -> tuple[Tensor, Tensor]:
        """The first n held-out images of each domain (fewer if a side has fewer), in [-1, 1]."""
        test = cast(UnpairedDataset, load_dataset(self.recipe.data, split="test", seed=self.recipe.seed))
        a, b = (test.side(s).get(torch.arange(min(n, len(test.side(s)))))[0] for s in ("a", "b"))
        return a, b

    def translate(self, direction: str, x: Tensor, batch: int = 256) -> Tensor:
        """Images `x` of the source domain through G_ab ('a2b') or G_ba ('b2a'), in eval mode and the run's precision."""
        from ..translation import DIRECTIONS, translate

        if not self.translation or direction not in DIRECTIONS:
            raise ConfigError(
                f"translate() needs a translation run and a direction in {', '.join(DIRECTIONS)}; got "
                f"{direction!r} on a run of game {self.recipe.game.name!r}."
            )
        return translate(
            self.nets[DIRECTIONS[direction]], x, batch, autocast=self.precision.autocast, device=self.device
        )

    def _labelled_subset(self, n: int) -> Any:
        """A seeded, class-balanced subset of n labelled training samples (semi-supervised games)."""
        from ..data.subsets import balanced_subset

        if self.dataset.y is None:
            raise ConfigError(
                f"game {self.recipe.game.name!r} needs labels, but dataset {self.dataset.name!r} has none."
            )
        return self.dataset.subset(balanced_subset(self.dataset.y, n, self.recipe.seed))

    # ------------------------------------------------------------------ state

    def _after_g_step(self) -> None:
        if self.ema is not None and self.step + 1 > self.recipe.train.ema.start:
            assert self.G is not None  # only a noise generator has an EMA
            self.ema.update_parameters(self.G)

    def rank_states(self) -> list[dict[str, Any]] | None:
        """Every rank's own RNG and game state, in rank order (a collective: all ranks call it); None with one process."""
        if not self.dist.enabled:
            return None
        return distributed.all_gather_objects(
            {"rng": capture_rng(), "game": self.game.state_dict()}, self.dist, "the checkpoint gather"
        )

    def state_dict(self, ranks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Everything needed to continue the run exactly.

        Networks are stored under the names the game declares ("G", "D"), optimisers, schedules and
        gradient scalers as opt_NAME, sched_NAME, scaler_NAME ("opt_g", "opt_d", ...). A run on several
        processes adds `ranks` (from `rank_states`): each rank's RNG and game state.
        """
        return {
            "world": self.dist.world,
            **({"ranks": ranks} if ranks is not None else {}),
            "format": 1,
            "ganforge": __version__,
            "step": self.step,
            "elapsed": self.elapsed,
            "config": dump_yaml(self.recipe),
            "shape": list(self.shape),
            "latent": self.latent.to_dict(),
            **{name: net.state_dict() for name, net in self.nets.items()},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            **{f"opt_{name}": opt.state_dict() for name, opt in self.opts.items()},
            **{f"sched_{name}": sched.state_dict() for name, sched in self.scheds.items()},
            **{f"scaler_{name}": scaler.state_dict() for name, scaler in self.ctx.scalers.items()},
            "game": self.game.state_dict(),
            "data": self.stream.state_dict(),
            "labelled_data": None if self.labelled_stream is None else self.labelled_stream.state_dict(),
            "noise": self.noise_gen.get_state(),
            "rng": capture_rng(),
            "best": self.best,
        }

    def _observe_plateaus(self, stats: dict[str, Tensor]) -> None:
        """Feed schedule 'plateau' the step's value of its monitored log (the mean over ranks, so every rank's lr
        stays the same); an unknown name is a ConfigError listing what the game logs."""
        for name, f in self._plateaus:
            if f.monitor not in stats:
                raise ConfigError(
                    f"optim.{name}.monitor {f.monitor!r} is not a value the {self.recipe.game.name} game logs; "
                    f"it logs: {', '.join(sorted(stats))}."
                )
            value = stats[f.monitor].detach().float().mean()
            if self.dist.enabled:
                value = distributed.mean_tensors({"v": value}, self.dist)["v"]
            f.observe(float(value))

    def load_state_dict(self, s: dict[str, Any]) -> None:
        """Restore a checkpoint made by `state_dict`."""
        self.step, self.elapsed = int(s["step"]), float(s["elapsed"])
        for name, net in self.nets.items():
            net.load_state_dict(s[name])
        if self.ema is not None and s.get("ema") is not None:
            self.ema.load_state_dict(s["ema"])
        for name, opt in self.opts.items():
            opt.load_state_dict(s[f"opt_{name}"])
        for name, sched in self.scheds.items():
            sched.load_state_dict(s[f"sched_{name}"])
        for name, scaler in self.ctx.scalers.items():
            scaler.load_state_dict(s[f"scaler_{name}"])
        self.game.load_state_dict(s["game"])
        self.stream.load_state_dict(s["data"])
        if self.labelled_stream is not None and s.get("labelled_data") is not None:
            self.labelled_stream.load_state_dict(s["labelled_data"])
        self.noise_gen.set_state(s["noise"])
        restore_rng(s["rng"])
        ranks = s.get("ranks")
        if self.dist.enabled:
            if isinstance(ranks, list) and len(ranks) == self.dist.world:
                restore_rng(ranks[self.dist.rank]["rng"])
                self.game.load_state_dict(ranks[self.dist.rank]["game"])
            else:  # another process count: the run continues, but not bit for bit as it would have
                self._seed_rank()
                if self.dist.main:
                    print(
                        f"ganforge: the checkpoint was written by {s.get('world', 1)} process(es), this run has "
                        f"{self.dist.world}: the ranks' random draws are reseeded, so the run continues "
                        "correctly but not bit-identically to one that kept its process count.",
                        file=sys.stderr,
                    )
        self.best = s.get("best")

    # ------------------------------------------------------------------ outputs

    @property
    def result(self) -> RunResult:
        """The run folder, the generator to evaluate (EMA when kept) and the run's counts, as they stand now."""
        s = self.stream
        return RunResult(
            run_dir=self.out,
            generator=self.ema.module if self.ema is not None else self.G,  # None: translators
            ema=self.ema is not None,
            latent=self.latent,
            shape=self.shape,
            steps=self.step,
            d_updates=getattr(self.game, "d_updates", None),
            g_updates=getattr(self.game, "g_updates", None),
            real_images=s.drawn,
            labelled=None if self.labelled_stream is None else self.labelled_stream.dataset,
            wall_time_s=self.elapsed,
        )

    def generate(self, z: Tensor, use_ema: bool = False, batch: int = 500, y: Tensor | None = None) -> Tensor:
        """Samples for latents `z` (and labels `y` of a conditional G) in eval mode and the run's precision, float32, CPU."""
        net = self.ema.module if (use_ema and self.ema is not None) else self.G
        if net is None:
            raise ConfigError(
                f"generate() needs a noise generator; game {self.recipe.game.name!r} trains translators "
                "(use translate())."
            )
        return generate(net, z, y, batch, autocast=self.precision.autocast, device=self.device)

    def save_samples(self, name: str, use_ema: bool = False) -> Path:
        """A sample grid (images) or scatter plot (points) from the fixed noise into samples/NAME.png."""
        from ..plots import save_image_grid, save_points_plot

        path = self.out / "samples" / f"{name}.png"
        if self.translation:
            from ..translation import triplet_grid

            assert self.fixed_pair is not None  # made for every translation run
            a, b = self.fixed_pair
            rows = triplet_grid(
                self.nets["G_ab"], self.nets["G_ba"], a, b, autocast=self.precision.autocast, device=self.device
            )
            save_image_grid(rows, path, nrow=6)
            if self.writer is not None:
                self.writer.add_images("triplets", ((rows + 1) / 2).clamp(0, 1), self.step)
            return path
        x = self.generate(self.fixed.z, use_ema=use_ema, y=self.fixed.y)
        if not use_ema:
            self._last_grid = x
        if self.is_image:
            save_image_grid(x, path, nrow=grid_columns(self.latent, len(x)))
            if self.writer is not None:
                self.writer.add_images("samples", ((x[:64] + 1) / 2).clamp(0, 1), self.step)
        else:
            centres = None
            if is_mixture(self.dataset.name):
                centres = mixture_spec(self.dataset.name)[0]
            real = self.dataset.x[: len(x)]
            lim = float(real.abs().max()) * 1.3
            save_points_plot(x[:, :2], path, centres=centres, title=f"step {self.step}", limits=(-lim, lim))
        return path

    def _coverage_probe(self) -> Any:
        """A class-coverage probe where the data has a shipped classifier, a mode probe on known mixtures, else None."""
        from ..metrics.evaluate import DOMAIN_EXTRACTOR
        from ..metrics.extractors import get_extractor
        from .signals import class_probe, mode_probe

        name = self.dataset.name
        if not self.is_image and is_mixture(name):
            centres, std = mixture_spec(name)[:2]
            return mode_probe(torch.as_tensor(centres, dtype=torch.float32), float(std))
        if self.is_image and name in DOMAIN_EXTRACTOR and self.dataset.y is not None:
            clf = get_extractor(DOMAIN_EXTRACTOR[name])
            return class_probe(clf, clf.num_classes)
        return None

    # ------------------------------------------------------------------ loop

    def _install_signal_handlers(self) -> dict[int, Any]:
        """SIGINT and SIGTERM stop the run at the end of the current step (abandoning an evaluation under way), with a
        checkpoint; a second Ctrl-C stops at once."""
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum: int, frame: Any) -> None:
            # torchrun forwards the terminal's Ctrl-C to every worker again: a rank of a distributed run does not
            # give up its checkpoint for it (torchrun's own SIGKILL, 30 s later, is the hard stop).
            if self._stop_signal is not None and signum == signal.SIGINT and not self.dist.enabled:
                raise KeyboardInterrupt
            self._stop_signal = signal.Signals(signum).name
            if self._eval_cancellable:
                self._eval_cancellable = False
                raise EvalCancelled

        return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def run(self) -> Path:
        """Train to `train.steps`, writing samples, logs, checkpoints, weights and the report (the folder is locked)."""
        if self.progress:
            print(self.describe_settings(), flush=True)
        # An explicit thread count means the user has already split the cores; a distributed run splits them itself.
        if not self.recipe.train.threads and not self.dist.enabled:
            warn_if_cores_shared(self.device)

        def open_folder() -> Any:  # rank 0 alone touches the run folder; the others restore the same state
            if self._lock is None:
                self._lock = RunLock(self.out).acquire()
            self._open_run_folder()
            return self._resume_shared if self.resume and self.dist.enabled else None

        try:
            shared = distributed.main_first(self.dist, open_folder, "opening the run folder")
            if not self.dist.main and self.resume:
                self._load_resumed(*shared)
            handlers = self._install_signal_handlers()
            try:
                return self._train()
            finally:
                for sig, old in handlers.items():
                    signal.signal(sig, old)
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def _train(self) -> Path:
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        from ..report import write_report

        r, t = self.recipe, self.recipe.train
        main = self.dist.main  # only rank 0 writes: logs, TensorBoard, samples, checkpoints, run.json, report
        if main:
            self.writer = SummaryWriter(str(self.out / "tb"), purge_step=self.step + 1 if self.step else None)
            assert self.record is not None  # opened with the run folder, on rank 0
            self.record.write("running", self._run_info())
            log_f: Any = open(self.out / "metrics.jsonl", "a")
        else:
            log_f = _NullLog()
        # A terminal gets a live bar; a log file gets a plain line every 30 s instead of carriage returns.
        interactive = self.progress and sys.stderr.isatty()
        bar = tqdm(total=t.steps, initial=self.step, disable=not interactive, dynamic_ncols=True, desc=r.name)
        plain_every, plain_mark = 30.0, -1e9
        sums: dict[str, Tensor] = {}
        n_logged, n_real, t_mark = 0, 0, time.perf_counter()
        grid_signals: dict[str, float] = {}  # from the last sample grid, for the next log line
        if t.signals:  # from the weights as they are now: a resumed run measures its updates from here
            self.weight_tracker = WeightTracker(self.nets)
            if not self.translation and main:
                n_real_ref = min(len(self.fixed.z), len(self.dataset))
                # A seeded draw of its own: folders are stored class by class, and the global RNG stays untouched.
                idx = torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(self.recipe.seed))
                # Building the classifier initialises a network (global RNG draws) before its weights load: fork
                # the RNG, or a resumed run would draw differently from the uninterrupted one.
                with torch.random.fork_rng(devices=[]):
                    self.sample_tracker = SampleTracker(self.dataset.get(idx[:n_real_ref])[0], self._coverage_probe())
        if t.doctor.enabled and main:
            self._start_doctor()
        try:
            while self.step < t.steps and self._halt() is None:
                n_real += self.game.real_per_step(t.batch_size)  # asked per step: a progressive game's batch changes
                # Gradient norms are taken on the step that ends a log interval only: one norm per optimiser.
                self.ctx.measure_grads = t.signals and ((self.step + 1) % t.log_every == 0 or self.step + 1 == t.steps)
                self.ctx.grad_norms = {}
                stats = self.game.step(self.ctx)
                self._observe_plateaus(stats)
                for sched in self.scheds.values():
                    sched.step()
                if self.deadline is not None and self._stop_signal is None and time.time() >= self.deadline:
                    self._stop_signal = TIME_LIMIT
                if self.dist.enabled:
                    # BN running statistics follow rank 0 (as DDP's broadcast_buffers); a stop any rank saw stops all.
                    distributed.broadcast_state(self.nets.values(), self.dist)
                    self._agree_on_stop()
                self.step += 1
                n_logged += 1
                for k, v in stats.items():
                    sums[k] = sums[k] + v if k in sums else v.clone()
                bar.update(1)
                last = self.step == t.steps
                # The grid comes before the log line, so that the line of its step carries its signals.
                if main and (self.step % t.sample_every == 0 or last):
                    t_grid = time.perf_counter()
                    self.save_samples(f"step_{self.step:07d}")
                    if self.sample_tracker is not None and self._last_grid is not None:
                        grid_signals = self.sample_tracker.measure(self._last_grid)
                    t_mark += time.perf_counter() - t_grid  # grids are not training
                if self.step % t.log_every == 0 or last:
                    now = time.perf_counter()
                    dt = now - t_mark
                    self.elapsed += dt
                    # The global batch's averages (each rank saw its own share of it).
                    rec: dict[str, Any] = {
                        k: float(v) / n_logged for k, v in distributed.mean_tensors(sums, self.dist).items()
                    }
                    self._check_finite(rec)
                    if self.weight_tracker is not None:  # after the check: an infinite gradient is evidence, not a stop
                        rec.update(
                            _finite_or_none({f"grad_norm_{k}": float(v) for k, v in self.ctx.grad_norms.items()})
                        )
                        rec.update(_finite_or_none(self.weight_tracker.measure()))
                        rec.update(_finite_or_none({f"signals/{k}": v for k, v in grid_signals.items()}))
                        grid_signals = {}
                    rec.update(
                        step=self.step,
                        epoch=self.stream.epoch,
                        time=round(self.elapsed, 3),
                        images_per_s=round(n_real / max(dt, 1e-9), 2),
                        **{f"lr_{name}": opt.param_groups[0]["lr"] for name, opt in self.opts.items()},
                    )
                    log_f.write(json.dumps(rec) + "\n")
                    log_f.flush()
                    self._consult_doctor(rec, bar)
                    for k, v in rec.items():
                        if k not in ("step", "epoch", "time") and v is not None and self.writer is not None:
                            self.writer.add_scalar(k if k.startswith("signals/") else f"train/{k}", v, self.step)
                    status = self.game.status()
                    held = self.doctor.current() if self.doctor is not None else []
                    postfix: dict[str, Any] = {
                        "d": f"{rec['d_loss']:.3f}",
                        "g": f"{rec['g_loss']:.3f}",
                        "ips": f"{rec['images_per_s']:.0f}",
                        **({"phase": status} if status else {}),
                        **({"doctor": ",".join(held)} if held else {}),
                    }
                    bar.set_postfix(**postfix)
                    if self.progress and not interactive and (now - plain_mark >= plain_every or last):
                        plain_mark = now
                        print(
                            f"{r.name}: step {self.step}/{t.steps}{', ' + status if status else ''}, d_loss {rec['d_loss']:.3f}, g_loss "
                            f"{rec['g_loss']:.3f}, {rec['images_per_s']:.0f} img/s{', doctor: ' + ','.join(held) if held else ''}",
                            file=sys.stderr,
                            flush=True,
                        )
                    if main:
                        assert self.record is not None  # opened with the run folder, on rank 0
                        self.record.heartbeat(self._run_info)
                    sums, n_logged, n_real = {}, 0, 0
                    t_mark = time.perf_counter()
                t_aside = time.perf_counter()
                if r.eval.every and (self.step % r.eval.every == 0 or last):
                    # Before the regular checkpoint, so that it records the updated best.
                    numbers = self.run_eval(log_f)
                    if numbers is not None:
                        self._maybe_save_best(numbers)
                        self._consult_doctor({"step": self.step, **{f"eval/{k}": v for k, v in numbers.items()}}, bar)
                if self.step % t.checkpoint_every == 0 or last:
                    self._checkpoint(sums)
                # Grids, evaluation and checkpoints are not training: `time` and images/s leave them out.
                t_mark += time.perf_counter() - t_aside
            bar.close()
            if self.dist.enabled:  # a stop seen during the last step is settled by all ranks together
                self._agree_on_stop()
            if self._halt() == "signal":
                return self._stop(sums)
            if self._halt() == "doctor":
                return self._stop_for_doctor(sums)
            if main:
                self.save_samples("final")
                if self.ema is not None:
                    self.save_samples("final_ema", use_ema=True)
                self._export_generator()
                assert self.record is not None
                self.record.write("finished", self._run_info())
        except (RunInterrupted, RunStopped):
            raise
        except KeyboardInterrupt:
            bar.close()
            if main:
                self._record_quietly("interrupted", signal="SIGINT")
            raise
        except BaseException as e:
            bar.close()
            if main:
                self._record_quietly("failed", error=f"{type(e).__name__}: {e}")
            raise
        finally:
            log_f.close()
            if self.writer is not None:
                self.writer.close()
            if main:
                try:
                    write_report(self.out)
                except Exception as e:  # a report problem must never hide the training outcome
                    print(f"ganforge: warning: could not write the report: {e}", file=sys.stderr)
        return self.out

    def _halt(self) -> str | None:
        """ "signal" (SIGINT/SIGTERM) or "doctor" (train.doctor.stop_on) once the run must stop, else None.

        With several processes only what all ranks agreed on counts: a rank that left the loop on its own
        would wait in one collective while the others wait in another.
        """
        if self.dist.enabled:
            return self._agreed_halt
        if self._stop_signal is not None:
            return "signal"
        return "doctor" if self._doctor_stop is not None else None

    def _agree_on_stop(self) -> None:
        """All ranks stop together: a signal any rank caught, or rank 0's doctor (a collective, once per step)."""
        mine = [1.0 if self._stop_signal is not None else 0.0, 1.0 if self._doctor_stop is not None else 0.0]
        signalled, doctor = distributed.agree_max(mine, self.dist)
        if signalled:
            self._stop_signal = (
                self._stop_signal or "SIGTERM"
            )  # another rank was signalled (torchrun forwards one to each)
            self._agreed_halt = "signal"
        elif doctor:
            self._doctor_stop = self._doctor_stop or True  # rank 0 holds the Period; it is broadcast when the run stops
            self._agreed_halt = "doctor"

    def _checkpoint(self, sums: dict[str, Tensor]) -> None:
        """Save a checkpoint (rank 0 writes it; every rank takes part: each one's RNG and game state go in)."""
        if sums:  # steps since the last log line must be finite too (on every rank: the global batch's sums)
            self._check_finite({k: float(v) for k, v in distributed.mean_tensors(sums, self.dist).items()})
        ranks = self.rank_states()
        if self.dist.main:
            save_checkpoint(
                self.state_dict(ranks), self.out / "checkpoints", self.step, self.recipe.train.keep_checkpoints
            )
            assert self.record is not None  # opened with the run folder, on rank 0
            self.record.heartbeat(self._run_info, force=True)
        self._last_ckpt_step = self.step

    def _stop(self, sums: dict[str, Tensor]) -> Path:
        """After SIGINT/SIGTERM or the deadline: checkpoint the finished step (if finite and new), record `interrupted`,
        raise."""
        sig = self._stop_signal or "SIGINT"
        if self.step > self._last_ckpt_step:
            try:
                self._checkpoint(sums)
            except TrainingError as e:
                print(f"ganforge: no checkpoint at the interruption: {e}", file=sys.stderr)
        if self.dist.main:
            assert self.record is not None  # opened with the run folder, on rank 0
            self.record.write("interrupted", self._run_info(), signal=sig)
        raise RunInterrupted(sig, self.step, self._last_ckpt_step, self.out)

    # ------------------------------------------------------------------ doctor

    def _start_doctor(self) -> None:
        """The live doctor; a resumed run replays its log so far, so that it warns only of what is new."""
        from ..doctor import Doctor
        from ..doctor.diagnose import read_records

        self.doctor = Doctor(self.recipe.train.steps, lr_g0=self.recipe.optim.g.lr)
        log = self.out / "metrics.jsonl"
        if self.step and log.is_file():
            for rec in read_records(log):
                if int(rec.get("step", 0)) <= self.step:
                    self.doctor.feed(rec)

    def _consult_doctor(self, rec: dict[str, Any], bar: Any) -> None:
        """Feed one log record to the live doctor: a warning line per state entered, and stop_on."""
        if self.doctor is None:
            return
        from ..doctor import STATES, remedies

        for p in self.doctor.feed(rec):
            if self.progress:
                cfg = yaml.safe_load(dump_yaml(self.recipe))
                first = remedies(p.state, cfg)[:1]
                hint = f" Try {first[0]['override']};" if first else ""
                msg = (
                    f"ganforge: doctor: step {self.step:,}: {STATES[p.state]} since step {p.start:,} "
                    f"({p.evidence[-1].split(': ', 1)[-1]}).{hint} `ganforge doctor {self.out}` lists the remedies."
                )
                if bar.disable:
                    print(msg, file=sys.stderr, flush=True)
                else:  # above the live bar, not through it
                    bar.write(msg, file=sys.stderr)
            if p.state in self.recipe.train.doctor.stop_on and self._doctor_stop is None:
                self._doctor_stop = p

    def _best_checkpoint(self, before: int) -> Path | None:
        """checkpoints/best.pt when evaluation kept one, else the newest checkpoint from before step `before`."""
        ck = self.out / "checkpoints"
        if (ck / "best.pt").is_file():
            return ck / "best.pt"
        kept = sorted(ck.glob("step_*.pt"))
        early = [c for c in kept if int(c.stem.split("_")[1]) <= before]
        return early[-1] if early else (kept[0] if kept else None)

    def _stop_for_doctor(self, sums: dict[str, Tensor]) -> Path:
        """train.doctor.stop_on: checkpoint the finished step, record `stopped`, point to the best checkpoint."""
        from ..doctor import STATES

        if self.step > self._last_ckpt_step:
            self._checkpoint(sums)
        if not self.dist.main:  # rank 0's doctor decided; it says why
            state, start, best = distributed.broadcast_object(None, self.dist, "the doctor's verdict")
            raise RunStopped(state, STATES[state], start, self.step, best, self.out)
        p = self._doctor_stop
        best = self._best_checkpoint(p.start)
        distributed.broadcast_object((p.state, p.start, best), self.dist, "the doctor's verdict")
        assert self.record is not None  # opened with the run folder, on rank 0
        self.record.write(
            "stopped",
            self._run_info(),
            state=p.state,
            since=p.start,
            evidence=p.evidence,
            best_checkpoint=str(best) if best else None,
        )
        raise RunStopped(p.state, STATES[p.state], p.start, self.step, best, self.out)

    def _check_finite(self, rec: dict[str, float]) -> None:
        bad = [k for k, v in rec.items() if not math.isfinite(v)]
        if bad:
            ckpts = sorted((self.out / "checkpoints").glob("step_*.pt"))
            last = f"the last good checkpoint is {ckpts[-1]}" if ckpts else "no checkpoint was written yet"
            seen = ""
            if self.doctor is not None and self.doctor.periods:
                from ..doctor import STATES

                seen = (
                    " Before it, the doctor saw: "
                    + "; ".join(
                        f"{STATES[p.state]} from step {p.start} ({p.evidence[-1].split(': ', 1)[-1]})"
                        for p in self.doctor.periods[-2:]
                    )
                    + "."
                )
            raise TrainingError(
                f"{', '.join(bad)} became non-finite (NaN/inf) by step {self.step}; training stopped and "
                f"{last}. Usual causes: a learning rate too high for this objective, fp16 overflow "
                f"(try precision=bf16 or fp32), or an unbounded objective without a Lipschitz constraint.{seen}"
            )
