"""The step context a game runs in: networks, data, noise, precision and one optimiser step per network."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
from torch import Tensor, nn

from ..latent import Latent, LatentSpace
from .distributed import SINGLE, Dist, average_gradients, broadcast_state, mean_tensors
from .precision import Precision


class TrainContext:
    """Everything a game may touch during a step; the trainer builds it and owns its parts."""

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer,
        precision: Precision,
        device: torch.device,
        batch_size: int,
        z_dim: int,
        next_batch: Callable[..., tuple[Tensor, Tensor | None]],
        noise_generator: torch.Generator,
        channels_last: bool = False,
        on_g_step: Callable[[], None] | None = None,
        latent_space: LatentSpace | None = None,
        next_labelled: Callable[[], tuple[Tensor, Tensor | None]] | None = None,
        nets: dict[str, nn.Module] | None = None,
        optimizers: dict[str, torch.optim.Optimizer] | None = None,
        dist: Dist = SINGLE,
    ) -> None:
        # Networks and optimisers by the names the game declared; G, D, opt_g and opt_d are the standard
        # game's aliases (a game with other networks reads them from `nets`).
        self.nets: dict[str, nn.Module] = dict(nets) if nets is not None else {"G": G, "D": D}
        self.optimizers: dict[str, torch.optim.Optimizer] = (
            dict(optimizers) if optimizers is not None else {"g": opt_g, "d": opt_d}
        )
        self.G, self.D = G, D
        self.opt_g, self.opt_d = opt_g, opt_d
        self.precision = precision
        self.device = device
        # With several processes `batch_size` is this rank's share of the recipe's global batch; every draw
        # (data, noise) is rank's slice of the global draw, and gradients are averaged before each update.
        self.dist = dist
        self.world = dist.world
        self.batch_size = batch_size // dist.world
        self.z_dim = z_dim
        self._next_batch = next_batch
        self.noise_generator = noise_generator
        self.channels_last = channels_last
        # One gradient scaler per optimiser: fp16 loss scales of G and D evolve separately.
        self.scalers = {name: precision.make_scaler() for name in self.optimizers}
        self.scaler_g, self.scaler_d = self.scalers.get("g"), self.scalers.get("d")
        self._on_g_step = on_g_step
        self.latent_space: LatentSpace = latent_space if latent_space is not None else LatentSpace(z_dim)
        self._next_labelled = next_labelled
        # Training-health signals: when the trainer sets `measure_grads` for a step, the first update of each
        # optimiser in it records its gradient norm (unscaled from fp16's loss scale) in `grad_norms`.
        self.measure_grads = False
        self.grad_norms: dict[str, Tensor] = {}

    def real_batch(self, n: int | None = None) -> tuple[Tensor, Tensor | None]:
        """The next batch (of `n` samples, default batch_size) of real data on the device (images in [-1, 1]) and its labels."""
        return self._to_device(*(self._next_batch() if n is None else self._next_batch(n)))

    def real_pair(self, n: int | None = None) -> tuple[Tensor, Tensor]:
        """The next batch of each domain of unpaired data (translation games), on the device, images in [-1, 1]."""
        a, b = self._next_batch() if n is None else self._next_batch(n)
        # An unpaired stream gives two image batches where BatchStream gives (images, labels or None).
        return self._to_device(a, None)[0], self._to_device(cast(Tensor, b), None)[0]

    def labelled_batch(self) -> tuple[Tensor, Tensor]:
        """The next batch of the fixed labelled subset (semi-supervised games; the trainer builds the subset)."""
        if self._next_labelled is None:
            raise RuntimeError("this run has no labelled subset: the game must declare `labelled` > 0")
        x, y = self._to_device(*self._next_labelled())
        assert y is not None
        return x, y

    def _to_device(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor | None]:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if y is not None:
            y = y.to(self.device, non_blocking=True)
        return x, y

    def sample_latent(self, n: int) -> Latent:
        """n draws of G's input (noise, InfoGAN codes, class labels) from the run's checkpointed generator."""
        # Drawn on the CPU so the same seed gives the same z on every device. With several processes each
        # rank draws the global n x world and keeps its slice: the ranks' draws together are one process's.
        lat = self.latent_space.sample(n * self.world, self.noise_generator)
        if self.world > 1:
            part = slice(self.dist.rank * n, (self.dist.rank + 1) * n)
            lat = Latent(
                lat.z[part],
                None if lat.y is None else lat.y[part],
                [c[part] for c in lat.categorical],
                None if lat.continuous is None else lat.continuous[part],
            )
        dev = self.device
        return Latent(
            lat.z.to(dev, non_blocking=True),
            None if lat.y is None else lat.y.to(dev),
            [c.to(dev) for c in lat.categorical],
            None if lat.continuous is None else lat.continuous.to(dev),
        )

    def noise(self, n: int) -> Tensor:
        """n generator input vectors (noise plus any InfoGAN codes); class labels are dropped."""
        return self.sample_latent(n).z

    def mean_over_ranks(self, values: dict[str, Tensor]) -> dict[str, Tensor]:
        """Scalars averaged over the ranks (a game's own statistics, e.g. BEGAN's balance); unchanged with one process."""
        return mean_tensors(values, self.dist)

    def share_from_first_rank(self, net: nn.Module) -> None:
        """Copy rank 0's parameters and buffers of `net` to every rank (after a game changed them outside an
        optimiser step, e.g. a data-dependent initialisation); nothing with one process."""
        broadcast_state([net], self.dist, params=True)

    def autocast(self) -> Any:
        """The mixed-precision context for forward passes."""
        return self.precision.autocast()

    def _step(
        self,
        loss: Tensor,
        opt: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        restore: list[Tensor] | None,
        name: str = "",
    ) -> None:
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        average_gradients([p for g in opt.param_groups for p in g["params"]], self.dist)
        if self.measure_grads and name not in self.grad_norms:
            grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
            if grads:
                norm = torch.linalg.vector_norm(torch.stack([n.float() for n in torch._foreach_norm(grads)]))
                self.grad_norms[name] = (norm / scaler.get_scale() if scaler.is_enabled() else norm).detach()
        if restore is not None:
            with torch.no_grad():
                params = [p for g in opt.param_groups for p in g["params"]]
                for p, v in zip(params, restore, strict=True):
                    p.copy_(v)
        scaler.step(opt)
        scaler.update()

    def step_d(self, loss: Tensor, restore: list[Tensor] | None = None) -> None:
        """Backpropagate `loss` and update the discriminator.

        `restore` (extragradient): parameter values to put back after the backward pass
        and before the update, so gradients taken at one point are applied at another.
        """
        self._step(loss, self.optimizers["d"], self.scalers["d"], restore, "d")

    def step_g(self, loss: Tensor, ema: bool = True, restore: list[Tensor] | None = None) -> None:
        """Backpropagate `loss` and update the generator, then its EMA unless ema=False."""
        self._step(loss, self.optimizers["g"], self.scalers["g"], restore, "g")
        if ema and self._on_g_step is not None:
            self._on_g_step()

    def frozen(self, net: nn.Module) -> Any:
        """Within this context `net` gets no weight gradients (saves D's weight-gradient work in G's step)."""
        return _Frozen(net)


class _Frozen:
    def __init__(self, net: nn.Module) -> None:
        self.params = [p for p in net.parameters() if p.requires_grad]

    def __enter__(self) -> None:
        for p in self.params:
            p.requires_grad_(False)

    def __exit__(self, *exc: object) -> None:
        for p in self.params:
            p.requires_grad_(True)
