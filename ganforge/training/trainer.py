"""The trainer: owns the loop, devices, precision, optimisers, EMA, checkpoints, samples and logs."""

from __future__ import annotations

import json
import math
import os
import platform
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .. import __version__
from ..config import Recipe, dump_yaml
from ..data import BatchStream, load_dataset
from ..errors import ConfigError, TrainingError
from ..games import build_game, conditional_games
from ..latent import fixed_latents, grid_columns, latent_space, model_extras
from ..models import build_discriminator, build_generator
from ..nn.spectral import apply_spectral_norm
from ..regularizers import lazy_ratio
from .checkpoint import atomic_write_bytes, capture_rng, latest_good_checkpoint, restore_rng, save_checkpoint
from .context import TrainContext
from .ema import make_ema
from .optim import build_optimizer, build_scheduler
from .precision import Precision


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then the CPU; anything else is passed to torch.device."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device {name!r} is not a device; use auto, cpu, cuda or cuda:N.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device is {name!r} but CUDA is not available here; use auto or cpu.")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically."""
    atomic_write_bytes(path, lambda f: f.write(json.dumps(data, indent=2, default=str).encode()))


class Trainer:
    """Trains one recipe into `out_dir`; `resume=True` continues from the newest good checkpoint there."""

    def __init__(self, recipe: Recipe, out_dir: str | Path, resume: bool = False, progress: bool | None = None) -> None:
        self.recipe = r = recipe
        self.out = Path(out_dir)
        self.resume = resume
        self.progress = r.train.progress if progress is None else progress
        t = r.train
        if t.threads:
            torch.set_num_threads(t.threads)
        self.device = resolve_device(t.device)
        seed_everything(r.seed)

        d = r.data
        self.dataset = load_dataset(
            d.name, path=d.path, root=d.root, image_size=d.image_size, channels=d.channels, labels=d.labels,
            split=d.split, fit=d.fit, n_points=d.n_points, download=d.download, seed=r.seed, limit=d.limit,
        )
        self.shape = tuple(self.dataset.shape)
        self.is_image = len(self.shape) == 3
        self.channels_last = t.channels_last and self.is_image and self.device.type != "mps"

        mem = torch.channels_last if self.channels_last else torch.contiguous_format
        self.game = build_game(r.game.name, r.loss.name, r.loss.args, r.game.n_critic, r.game.args, r.regularizers)
        self.latent = latent_space(r, self.dataset)
        if self.latent.num_classes and not self.game.supports_conditional:
            raise ConfigError(f"game {r.game.name!r} does not support model.conditional: true "
                              f"(conditional games: {', '.join(conditional_games())}).")
        # Games that need codes (InfoGAN) or classes (semi-supervised) say so before anything trains.
        if hasattr(self.game, "check_latent"):
            self.game.check_latent(self.latent)
        if hasattr(self.game, "check_classes"):
            self.game.check_classes(self.dataset.num_classes)
        if self.latent.num_classes and int(r.game.args.get("pack", 1)) > 1:
            raise ConfigError("PacGAN packing (game.args.pack > 1) cannot be combined with model.conditional: true.")
        self.G = build_generator(r.model.generator.name, self.latent.input_dim, self.shape, r.model.generator.args,
                                 **model_extras(self.latent, "g"))
        self.D = build_discriminator(r.model.discriminator.name, self.game.d_input_shape(self.shape),
                                     r.model.discriminator.args, **model_extras(self.latent, "d"))
        if r.model.spectral_norm in ("d", "both"):
            apply_spectral_norm(self.D)
        if r.model.spectral_norm in ("g", "both"):
            apply_spectral_norm(self.G)
        self.G.to(self.device, memory_format=mem)
        self.D.to(self.device, memory_format=mem)
        self.ema = make_ema(self.G, t.ema.decay) if t.ema.enabled else None

        regs = getattr(self.game, "d_penalties", []) + getattr(self.game, "g_penalties", [])
        self.opt_g = build_optimizer(self.G.parameters(), r.optim.g, lazy_ratio(regs, "g"))
        self.opt_d = build_optimizer(self.D.parameters(), r.optim.d, lazy_ratio(regs, "d"))
        self.sched_g = build_scheduler(self.opt_g, r.optim.g, t.steps)
        self.sched_d = build_scheduler(self.opt_d, r.optim.d, t.steps)
        self.precision = Precision(t.precision, self.device)

        if t.batch_size > len(self.dataset):
            raise ConfigError(
                f"train.batch_size ({t.batch_size}) is larger than the dataset ({len(self.dataset)} samples)."
            )
        self.stream = BatchStream(self.dataset, t.batch_size, r.seed)
        self.labelled_stream: BatchStream | None = None
        if self.game.labelled:
            self.labelled_stream = BatchStream(self._labelled_subset(self.game.labelled),
                                               min(t.batch_size, self.game.labelled), r.seed + 1)
        self.noise_gen = torch.Generator().manual_seed(r.seed * 7919 + 17)
        n_fixed = 2500 if not self.is_image else t.n_samples
        # Fixed latents for sample grids; a conditional grid shows the classes in order, one per row.
        self.fixed = fixed_latents(self.latent, n_fixed, r.seed + 4242)
        self.fixed_noise = self.fixed.z

        G_run, D_run = self.G, self.D
        if t.compile:
            G_run, D_run = torch.compile(self.G), torch.compile(self.D)
        self.ctx = TrainContext(
            G_run, D_run, self.opt_g, self.opt_d, self.precision, self.device, t.batch_size, r.model.z_dim,
            self.stream.next, self.noise_gen, channels_last=self.channels_last, on_g_step=self._after_g_step,
            latent_space=self.latent, next_labelled=None if self.labelled_stream is None else self.labelled_stream.next,
        )
        self.writer: Any = None
        self.evaluator: Any = None
        self.best: dict[str, Any] | None = None  # {"metric", "value", "step"} of checkpoints/best.pt
        self.step = 0
        self.elapsed = 0.0  # training wall time summed over resumed segments

    def _labelled_subset(self, n: int) -> Any:
        """A seeded, class-balanced subset of n labelled training samples (semi-supervised games)."""
        from ..data.subsets import balanced_subset

        if self.dataset.y is None:
            raise ConfigError(f"game {self.recipe.game.name!r} needs labels, but dataset {self.dataset.name!r} has none.")
        return self.dataset.subset(balanced_subset(self.dataset.y, n, self.recipe.seed))

    # ------------------------------------------------------------------ state

    def _after_g_step(self) -> None:
        if self.ema is not None and self.step + 1 > self.recipe.train.ema.start:
            self.ema.update_parameters(self.G)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the run exactly."""
        return {
            "format": 1,
            "ganforge": __version__,
            "step": self.step,
            "elapsed": self.elapsed,
            "config": dump_yaml(self.recipe),
            "shape": list(self.shape),
            "latent": self.latent.to_dict(),
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
            "scaler_g": self.ctx.scaler_g.state_dict(),
            "scaler_d": self.ctx.scaler_d.state_dict(),
            "game": self.game.state_dict(),
            "data": self.stream.state_dict(),
            "labelled_data": None if self.labelled_stream is None else self.labelled_stream.state_dict(),
            "noise": self.noise_gen.get_state(),
            "rng": capture_rng(),
            "best": self.best,
        }

    def load_state_dict(self, s: dict[str, Any]) -> None:
        """Restore a checkpoint made by `state_dict`."""
        self.step, self.elapsed = int(s["step"]), float(s["elapsed"])
        self.G.load_state_dict(s["G"])
        self.D.load_state_dict(s["D"])
        if self.ema is not None and s.get("ema") is not None:
            self.ema.load_state_dict(s["ema"])
        self.opt_g.load_state_dict(s["opt_g"])
        self.opt_d.load_state_dict(s["opt_d"])
        self.sched_g.load_state_dict(s["sched_g"])
        self.sched_d.load_state_dict(s["sched_d"])
        self.ctx.scaler_g.load_state_dict(s["scaler_g"])
        self.ctx.scaler_d.load_state_dict(s["scaler_d"])
        self.game.load_state_dict(s["game"])
        self.stream.load_state_dict(s["data"])
        if self.labelled_stream is not None and s.get("labelled_data") is not None:
            self.labelled_stream.load_state_dict(s["labelled_data"])
        self.noise_gen.set_state(s["noise"])
        restore_rng(s["rng"])
        self.best = s.get("best")

    # ------------------------------------------------------------------ outputs

    @torch.no_grad()
    def generate(self, z: Tensor, use_ema: bool = False, batch: int = 500, y: Tensor | None = None) -> Tensor:
        """Samples for latents `z` (and labels `y` of a conditional G) in eval mode, float32 on the CPU."""
        net = self.ema.module if (use_ema and self.ema is not None) else self.G
        was_training = net.training
        net.eval()
        outs = []
        ys = [None] * len(z.split(batch)) if y is None else y.split(batch)
        for chunk, yc in zip(z.split(batch), ys):
            with self.precision.autocast():
                out = net(chunk.to(self.device)) if yc is None else net(chunk.to(self.device), yc.to(self.device))
                outs.append(out.float().cpu())
        net.train(was_training)
        return torch.cat(outs)

    def save_samples(self, name: str, use_ema: bool = False) -> Path:
        """A sample grid (images) or scatter plot (points) from the fixed noise into samples/NAME.png."""
        from ..plots import save_image_grid, save_points_plot

        x = self.generate(self.fixed.z, use_ema=use_ema, y=self.fixed.y)
        path = self.out / "samples" / f"{name}.png"
        if self.is_image:
            save_image_grid(x, path, nrow=grid_columns(self.latent, len(x)))
            if self.writer is not None:
                self.writer.add_images("samples", ((x[:64] + 1) / 2).clamp(0, 1), self.step)
        else:
            centres = None
            if self.dataset.name in ("ring", "grid"):
                from ..data import mixture_spec

                centres = mixture_spec(self.dataset.name)[0]
            real = self.dataset.x[: len(x)]
            lim = float(real.abs().max()) * 1.3
            save_points_plot(x[:, :2], path, centres=centres, title=f"step {self.step}", limits=(-lim, lim))
        return path

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
        nets = [("generator", self.G)] + ([("generator_ema", self.ema.module)] if self.ema is not None else [])
        for name, net in nets:
            tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
            path = self.out / f"{name}.safetensors"
            atomic_write_bytes(path, lambda f, t=tensors: f.write(save(t, metadata=meta)))
            paths.append(path)
        return paths

    def _run_info(self, status: str) -> dict[str, Any]:
        r = self.recipe
        return {
            "recipe": r.name,
            "description": r.description,
            "source": r.source,
            "status": status,
            "steps": r.train.steps,
            "step": self.step,
            "wall_time_s": round(self.elapsed, 2),
            "device": str(self.device),
            "precision": r.train.precision,
            "channels_last": self.channels_last,
            "compile": r.train.compile,
            "threads": torch.get_num_threads(),
            "seed": r.seed,
            "torch": torch.__version__,
            "ganforge": __version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "data": getattr(self.dataset, "info", {}),
            "params": {
                "generator": sum(p.numel() for p in self.G.parameters()),
                "discriminator": sum(p.numel() for p in self.D.parameters()),
            },
        }

    # ------------------------------------------------------------------ loop

    def _prepare_out(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "samples").mkdir(exist_ok=True)
        (self.out / "checkpoints").mkdir(exist_ok=True)
        if self.resume:
            found = latest_good_checkpoint(self.out / "checkpoints")
            if found is not None:
                self.load_state_dict(found[1])
            # Drop log lines written after the checkpoint so the resumed log has no duplicates.
            log = self.out / "metrics.jsonl"
            if log.exists():
                keep = []
                for line in log.read_text().splitlines():
                    try:
                        if json.loads(line)["step"] <= self.step:
                            keep.append(line)
                    except (ValueError, KeyError, TypeError):
                        continue
                atomic_write_bytes(log, lambda f: f.write(("\n".join(keep) + "\n" if keep else "").encode()))
        (self.out / "config.yaml").write_text(dump_yaml(self.recipe))

    def run(self) -> Path:
        """Train to `train.steps`, writing samples, logs, checkpoints, weights and the report."""
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        from ..report import write_report

        r, t = self.recipe, self.recipe.train
        self._prepare_out()
        self.writer = SummaryWriter(str(self.out / "tb"), purge_step=self.step + 1 if self.step else None)
        write_json(self.out / "run.json", self._run_info("running"))
        log_f = open(self.out / "metrics.jsonl", "a")
        bar = tqdm(total=t.steps, initial=self.step, disable=not self.progress, dynamic_ncols=True, desc=r.name)
        sums: dict[str, Tensor] = {}
        n_logged, t_mark = 0, time.perf_counter()
        real_per_step = t.batch_size * r.game.n_critic * int(r.game.args.get("pack", 1))
        try:
            while self.step < t.steps:
                stats = self.game.step(self.ctx)
                self.sched_g.step()
                self.sched_d.step()
                self.step += 1
                n_logged += 1
                for k, v in stats.items():
                    sums[k] = sums[k] + v if k in sums else v.clone()
                bar.update(1)
                last = self.step == t.steps
                if self.step % t.log_every == 0 or last:
                    now = time.perf_counter()
                    dt = now - t_mark
                    self.elapsed += dt
                    rec = {k: float(v) / n_logged for k, v in sums.items()}
                    self._check_finite(rec)
                    rec.update(
                        step=self.step,
                        epoch=self.stream.epoch,
                        time=round(self.elapsed, 3),
                        images_per_s=round(real_per_step * n_logged / max(dt, 1e-9), 2),
                        lr_g=self.opt_g.param_groups[0]["lr"],
                        lr_d=self.opt_d.param_groups[0]["lr"],
                    )
                    log_f.write(json.dumps(rec) + "\n")
                    log_f.flush()
                    for k, v in rec.items():
                        if k not in ("step", "epoch", "time"):
                            self.writer.add_scalar(f"train/{k}", v, self.step)
                    bar.set_postfix(d=f"{rec['d_loss']:.3f}", g=f"{rec['g_loss']:.3f}", ips=f"{rec['images_per_s']:.0f}")
                    sums, n_logged = {}, 0
                    t_mark = time.perf_counter()
                if self.step % t.sample_every == 0 or last:
                    self.save_samples(f"step_{self.step:07d}")
                if r.eval.every and (self.step % r.eval.every == 0 or last):
                    # Before the regular checkpoint, so that it records the updated best.
                    self._maybe_save_best(self.run_eval(log_f))
                if self.step % t.checkpoint_every == 0 or last:
                    if sums:  # steps since the last log line must be finite too
                        self._check_finite({k: float(v) for k, v in sums.items()})
                    save_checkpoint(self.state_dict(), self.out / "checkpoints", self.step, t.keep_checkpoints)
            bar.close()
            self.save_samples("final")
            if self.ema is not None:
                self.save_samples("final_ema", use_ema=True)
            self._export_generator()
            write_json(self.out / "run.json", self._run_info("finished"))
        except BaseException as e:
            bar.close()
            write_json(self.out / "run.json", self._run_info("failed" if isinstance(e, TrainingError) else "interrupted"))
            raise
        finally:
            log_f.close()
            self.writer.close()
            try:
                write_report(self.out)
            except Exception as e:  # a report problem must never hide the training outcome
                print(f"warning: could not write the report: {e}")
        return self.out

    # ------------------------------------------------------------------ evaluation

    def run_eval(self, log_f: Any) -> dict[str, float]:
        """Evaluate the (EMA) generator now; log to metrics.jsonl, TensorBoard and eval.jsonl."""
        from ..metrics.evaluate import Evaluator

        e = self.recipe.eval
        if self.evaluator is None:
            d = self.recipe.data
            heldout = None
            if "memorisation" in e.metrics:
                heldout = load_dataset(d.name, path=d.path, root=d.root, image_size=d.image_size, channels=d.channels,
                                       split="test", fit=d.fit, download=d.download, seed=self.recipe.seed)
            self.evaluator = Evaluator(self.dataset, e.metrics, extractor=e.extractor, n=e.n, seed=e.seed,
                                       heldout=heldout, device=self.device)
        net = self.ema.module if self.ema is not None else self.G
        res = self.evaluator.evaluate_generator(net, self.latent, autocast=self.precision.autocast,
                                                source=f"{'EMA ' if self.ema is not None else ''}generator at step {self.step}")
        numbers = res["metrics"]
        rec = {"step": self.step, **{f"eval/{k}": v for k, v in numbers.items()}}
        log_f.write(json.dumps(rec) + "\n")
        log_f.flush()
        for k, v in numbers.items():
            self.writer.add_scalar(f"eval/{k}", v, self.step)
        write_json(self.out / "eval" / f"step_{self.step:07d}.json", {"step": self.step, **res})
        return numbers

    def _maybe_save_best(self, numbers: dict[str, float]) -> None:
        from ..metrics.evaluate import higher_is_better

        key = self.recipe.eval.best
        if not key:
            return
        if key not in numbers:
            raise ConfigError(f"eval.best is {key!r}, but the evaluation gives only: {', '.join(numbers)}.")
        value = numbers[key]
        better = self.best is None or (value > self.best["value"] if higher_is_better(key) else value < self.best["value"])
        if better and math.isfinite(value):
            self.best = {"metric": key, "value": value, "step": self.step}
            path = self.out / "checkpoints" / "best.pt"
            atomic_write_bytes(path, lambda f: torch.save(self.state_dict(), f))

    def _check_finite(self, rec: dict[str, float]) -> None:
        bad = [k for k, v in rec.items() if not math.isfinite(v)]
        if bad:
            ckpts = sorted((self.out / "checkpoints").glob("step_*.pt"))
            last = f"the last good checkpoint is {ckpts[-1]}" if ckpts else "no checkpoint was written yet"
            raise TrainingError(
                f"{', '.join(bad)} became non-finite (NaN/inf) by step {self.step}; training stopped and "
                f"{last}. Usual causes: a learning rate too high for this objective, fp16 overflow "
                f"(try precision=bf16 or fp32), or an unbounded objective without a Lipschitz constraint."
            )
