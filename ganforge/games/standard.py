"""The standard alternating GAN step, with regularisers, constraints, instance noise and PacGAN packing.

One generator step is preceded by `n_critic` discriminator steps (Goodfellow et al. 2014,
Algorithm 1). Around that core the game applies, in this order on each D input: the recipe's
augmentation (DiffAugment, ADA; real and fake alike, in D's and G's steps), instance noise, then
packing of m samples into one D input (Lin et al. 2018, PacGAN). Penalties
are added to the loss of the network they serve; lazy ones (every > 1) run as their own
optimiser step (see ganforge.regularizers); constraints (weight clipping) run after
every D update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from ..errors import ConfigError
from ..latent import LatentSpace
from ..losses import Objective
from ..regularizers import BoundRegularizer, lazy_intervals
from .base import Game, GameArgs, StepContext, input_grad_norm, register


def conditional(ctx: StepContext) -> bool:
    """True when the run's G and D are class-conditional."""
    return ctx.latent_space.num_classes > 0


def pack(x: Tensor, m: int) -> Tensor:
    """Concatenate each run of m consecutive samples into one D input (Lin et al. 2018, PacGAN, Sec. 3).

    Points (N, d) become (N/m, m*d); images (N, C, H, W) become (N/m, m*C, H, W): the
    m samples are stacked along the feature/channel axis.
    """
    if m == 1:
        return x
    n = x.shape[0]
    if n % m:
        raise ValueError(f"cannot pack {n} samples into groups of {m}")
    return x.reshape(n // m, m * x.shape[1], *x.shape[2:])


def packed_shape(shape: Sequence[int], m: int) -> tuple[int, ...]:
    """The discriminator's input shape when m samples are packed together."""
    return (shape[0] * m, *shape[1:])


@register("standard")
class StandardGame(Game):
    """Alternating updates (Goodfellow et al. 2014, Algorithm 1) with k = n_critic D steps per G step.

    pack > 1 feeds D m samples at once (PacGAN); every D input in a step is then
    m x batch_size samples. g_adversarial=False drops G's adversarial loss so that its
    G-side regularisers alone train it (feature matching, Salimans et al. 2016, Sec. 3.1).
    A conditional model (ctx.latent_space.num_classes > 0) gets labels in both nets' calls.
    Subclasses take the same GameArgs and add their own keyword arguments; one whose D must
    see single samples sets `pack_refusal` to the reason.
    """

    supports_conditional = True
    # Why this game cannot pack samples (None: it can); the constructor refuses pack > 1 with it.
    pack_refusal: str | None = None
    augment_refusal = None  # every D input goes through d_input, which augments it

    def __init__(self, args: GameArgs) -> None:
        super().__init__(args)
        if isinstance(args.pack, bool) or not isinstance(args.pack, int) or args.pack < 1:
            raise ConfigError(f"game pack must be a whole number >= 1 (samples per D input), got {args.pack!r}")
        if args.pack != 1 and self.pack_refusal is not None:
            raise ConfigError(f"game {self.name} cannot pack samples (pack={args.pack}): {self.pack_refusal}")
        if args.objective is None:
            raise ConfigError(f"game {self.name} needs an objective (the recipe's loss:)")
        self.objective: Objective = args.objective
        self.pack_m = int(args.pack)
        self.g_adversarial = args.g_adversarial
        regs = list(args.regularizers)
        self.d_penalties = [r for r in regs if r.reg.kind == "penalty" and r.net == "d"]
        self.g_penalties = [r for r in regs if r.reg.kind == "penalty" and r.net == "g"]
        self.constraints = [r for r in regs if r.reg.kind == "constraint"]
        self.noises = [r for r in regs if r.reg.kind == "input"]
        if not self.g_adversarial and not self.g_penalties:
            raise ConfigError(
                "game g_adversarial is false but no regulariser with net: g trains the generator "
                "(add e.g. {name: feature_matching, net: g})."
            )
        self.d_updates = 0  # counts D updates (lazy schedule)
        self.g_updates = 0  # counts G updates (lazy schedule, instance-noise annealing)
        self.history: dict[str, dict[str, Any]] = {"d": {}, "g": {}}  # historical-averaging state

    # ------------------------------------------------------------------ declarations

    def check(self, latent: LatentSpace, dataset: Any) -> None:
        """Refuse packing with a class-conditional model (one input would hold m samples of different classes)
        and augmentation of data that are not images."""
        if latent.num_classes and self.pack_m > 1:
            raise ConfigError("PacGAN packing (game.args.pack > 1) cannot be combined with model.conditional: true.")
        if self.augment.active and getattr(dataset, "kind", "images") == "points":
            raise ConfigError(
                f"augment: {self.augment.name} transforms images; data {dataset.name!r} are 2-D points. "
                f"Use augment: {{name: off}}."
            )

    def lazy_intervals(self) -> dict[str, int]:
        """The lazy penalties' interval k per optimiser; lazy penalties of one network must share it."""
        return lazy_intervals(self.d_penalties + self.g_penalties)

    def real_per_step(self, batch_size: int) -> int:
        """Real samples D's updates see in one step: pack x batch_size per critic update."""
        return batch_size * self.n_critic * self.pack_m

    # ------------------------------------------------------------------ shapes and inputs

    def d_input_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        """The discriminator's input shape for data of `shape`."""
        return packed_shape(shape, self.pack_m)

    def real(self, ctx: StepContext) -> Tensor:
        """pack x batch_size real samples."""
        return self.real_labelled(ctx)[0]

    def real_labelled(self, ctx: StepContext) -> tuple[Tensor, Tensor | None]:
        """pack x batch_size real samples and, for a conditional model, their labels (else None)."""
        batches = [ctx.real_batch() for _ in range(self.pack_m)]
        x = batches[0][0] if len(batches) == 1 else torch.cat([b[0] for b in batches])
        if not conditional(ctx):
            return x, None
        y = batches[0][1]
        if y is None:
            raise ConfigError(
                "model.conditional is true but this dataset has no labels (use data.labels: true "
                "for a folder of class subfolders, or a labelled dataset)."
            )
        return x, y

    def critic(self, D: Callable[..., Tensor], x: Tensor, y: Tensor | None) -> tuple[Tensor, Any]:
        """D's logits for inputs `x` (labels `y` for a conditional D) and any auxiliary output (None here)."""
        return (D(x) if y is None else D(x, y)), None

    def aux_d_loss(
        self, real_aux: Any, fake_aux: Any, y: Tensor | None, z: Tensor | None
    ) -> tuple[Tensor | None, dict[str, Tensor]]:
        """Extra D loss from the auxiliary outputs (AC-GAN's class loss, InfoGAN's codes read from z); none here."""
        return None, {}

    def aux_g_loss(self, fake_aux: Any, y: Tensor | None, z: Tensor | None) -> tuple[Tensor | None, dict[str, Tensor]]:
        """Extra G loss from the auxiliary outputs of D on G's samples; none here."""
        return None, {}

    def critic_fn(self, D: Callable[..., Tensor], y: Tensor | None) -> Callable[[Tensor], Tensor]:
        """D's logits as a function of its (already transformed) input, through `critic` with labels `y` fixed (for penalties)."""
        return lambda x: self.critic(D, x, y)[0]

    def d_input(self, x: Tensor) -> Tensor:
        """What D sees of a batch: the augmentation, instance noise (annealed over G updates), then packing.

        Penalties are taken at these inputs, so R1 and the gradient penalty see D where it is trained: on
        augmented images (ADA differentiates through its pipeline to the clean image instead; for its
        pixel-blitting group the two agree).
        """
        if self.augment.active:
            x = self.augment(x)
        for r in self.noises:
            x = r(x=x, step=self.g_updates)
        return pack(x, self.pack_m)

    # ------------------------------------------------------------------ penalties

    def _penalties(
        self, regs: list[BoundRegularizer], count: int, lazy: bool, **tensors: Any
    ) -> tuple[Tensor | None, dict[str, Tensor]]:
        total: Tensor | None = None
        logs: dict[str, Tensor] = {}
        for r in regs:
            if r.lazy != lazy or not r.due(count) or r.weight == 0:
                continue
            state = self.history[r.net] if r.name == "historical_averaging" else None
            value = r(**tensors, state=state)
            logs[f"reg/{r.net}_{r.name}"] = value.detach().float()
            term = (r.weight * r.every) * value
            total = term if total is None else total + term
        return total, logs

    def d_loss(
        self, ctx: StepContext, real: Tensor, fake: Tensor, y: Tensor | None = None, z: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """D's objective plus its eager penalties for one batch (`fake` = G(z) detached; `y` labels both, if conditional)."""
        real_in, fake_in = self.d_input(real), self.d_input(fake)
        # A health signal, on the trainer's measuring steps only: how steep D is around the real data.
        probe = getattr(ctx, "measure_grads", False) and "d_input" not in ctx.grad_norms
        if probe:
            real_in = real_in.detach().requires_grad_(True)
        with ctx.autocast():
            real_logits, real_aux = self.critic(ctx.D, real_in, y)
            fake_logits, fake_aux = self.critic(ctx.D, fake_in, y)
            loss = self.objective.d_loss(real_logits, fake_logits)
        if probe:
            ctx.grad_norms["d_input"] = input_grad_norm(real_logits, real_in)
            real_in = real_in.detach()
        with ctx.autocast():
            aux, alogs = self.aux_d_loss(real_aux, fake_aux, y, z)
        if self.augment.adaptive:  # ADA's overfitting heuristic reads D's verdicts on the (augmented) reals
            self.augment.observe(real_logits)
        logs = {
            "logit_real": real_logits.detach().float().mean(),
            "logit_fake": fake_logits.detach().float().mean(),
            "d_adv": loss.detach().float(),
            **alogs,
        }
        logs["logit_gap"] = logs["logit_real"] - logs["logit_fake"]
        if self.objective.accuracy is not None:  # D's decisions under its objective's rule (a health signal)
            acc_real, acc_fake = self.objective.accuracy(real_logits.detach(), fake_logits.detach())
            logs["d_acc_real"], logs["d_acc_fake"] = acc_real, acc_fake
        # Penalties see D through the same critic call as the loss, with the batch's labels bound: real and
        # fake share them in D's step.
        D = self.critic_fn(ctx.D, y)
        pen, plogs = self._penalties(
            self.d_penalties, self.d_updates, False, D=D, real=real_in, fake=fake_in, real_logits=real_logits, net=ctx.D
        )
        logs.update(plogs)
        for term in (aux, pen):
            if term is not None:
                loss = loss + term
        return loss, logs

    def d_lazy_loss(
        self, ctx: StepContext, real: Tensor, fake: Tensor, y: Tensor | None = None
    ) -> tuple[Tensor | None, dict[str, Tensor]]:
        """The lazy D penalties due at this update (None when none is due)."""
        if not any(r.lazy and r.due(self.d_updates) for r in self.d_penalties):
            return None, {}
        real_in, fake_in = self.d_input(real), self.d_input(fake)
        D = self.critic_fn(ctx.D, y)
        needs_logits = any(r.lazy and "real_logits" in r.reg.needs for r in self.d_penalties)
        real_logits = None
        if needs_logits:
            with ctx.autocast():
                real_logits = D(real_in)
        return self._penalties(
            self.d_penalties, self.d_updates, True, D=D, real=real_in, fake=fake_in, real_logits=real_logits, net=ctx.D
        )

    def g_loss(self, ctx: StepContext, D: Callable[[Tensor], Tensor] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """G's objective (through `D`, default ctx.D, frozen) plus its eager penalties."""
        D = ctx.D if D is None else D
        lat = ctx.sample_latent(ctx.batch_size * self.pack_m)
        y_fake = lat.y if conditional(ctx) else None
        need_real = self.objective.g_needs_real or any("real" in r.reg.needs for r in self.g_penalties)
        real_in, y_real = None, None
        if need_real:
            real, y_real = self.real_labelled(ctx)
            real_in = self.d_input(real)
        with ctx.frozen(ctx.D), ctx.autocast():
            fake_in = self.d_input(ctx.G(lat.z) if y_fake is None else ctx.G(lat.z, y_fake))
            loss = torch.zeros((), device=ctx.device)
            logs: dict[str, Tensor] = {}
            if self.g_adversarial:
                fake_logits, fake_aux = self.critic(D, fake_in, y_fake)
                real_logits = None
                if self.objective.g_needs_real:
                    assert real_in is not None  # need_real holds whenever the objective needs D(real)
                    real_logits = self.critic(D, real_in, y_real)[0]
                loss = self.objective.g_loss(fake_logits, real_logits)
                aux, logs = self.aux_g_loss(fake_aux, y_fake, lat.z)
                logs["g_adv"] = loss.detach().float()
                if aux is not None:
                    loss = loss + aux
            else:
                logs["g_adv"] = loss.detach().float()
            pen, plogs = self._penalties(
                self.g_penalties, self.g_updates, False, D=D, real=real_in, fake=fake_in, net=ctx.G
            )
        logs.update(plogs)
        return (loss if pen is None else loss + pen), logs

    def g_lazy_loss(self, ctx: StepContext) -> tuple[Tensor | None, dict[str, Tensor]]:
        """The lazy G penalties due at this update (only network penalties can be lazy on G)."""
        if not any(r.lazy and r.due(self.g_updates) for r in self.g_penalties):
            return None, {}
        if any(r.lazy and ("real" in r.reg.needs or "fake" in r.reg.needs) for r in self.g_penalties):
            raise ConfigError(
                "lazy generator regularisers may only depend on the network (orthogonal, historical_averaging)."
            )
        return self._penalties(self.g_penalties, self.g_updates, True, net=ctx.G)

    def after_d_update(self, ctx: StepContext) -> None:
        """Constraints after every D update (weight clipping)."""
        for r in self.constraints:
            r(net=ctx.D)

    def augment_logs(self) -> dict[str, Tensor]:
        """The augmentation's numbers for this step's record (ADA's p and r_t; none for a fixed policy)."""
        return {k: torch.tensor(v) for k, v in self.augment.logs().items()}

    def augment_update(self, ctx: StepContext) -> None:
        """Tell an adaptive augmentation (ADA) that one D update on this step's real images happened."""
        if self.augment.adaptive:
            world = getattr(ctx, "world", 1)
            self.augment.update(ctx.batch_size * world * self.pack_m, ctx.mean_over_ranks if world > 1 else None)

    # ------------------------------------------------------------------ the step

    def d_step(self, ctx: StepContext) -> dict[str, Tensor]:
        """One discriminator update (plus a lazy-penalty update when one is due)."""
        real, y = self.real_labelled(ctx)
        z = ctx.noise(real.shape[0])
        with torch.no_grad(), ctx.autocast():
            # A conditional D step gives the fakes the real batch's labels, so that both halves of
            # the batch, and any penalty on interpolates between them, share one label vector.
            fake = ctx.G(z) if y is None else ctx.G(z, y)
        loss, logs = self.d_loss(ctx, real, fake, y, z)
        ctx.step_d(loss)
        self.after_d_update(ctx)
        self.augment_update(ctx)
        lazy, llogs = self.d_lazy_loss(ctx, real, fake, y)
        if lazy is not None:
            ctx.step_d(lazy)
            self.after_d_update(ctx)
        self.d_updates += 1
        return {"d_loss": loss.detach().float(), **logs, **llogs}

    def g_critic(self, ctx: StepContext) -> Callable[[Tensor], Tensor] | None:
        """The discriminator G's loss is taken through (None: ctx.D itself; the unrolled game overrides this)."""
        return None

    def g_step(self, ctx: StepContext) -> dict[str, Tensor]:
        """One generator update (plus a lazy-penalty update when one is due)."""
        loss, logs = self.g_loss(ctx, D=self.g_critic(ctx))
        ctx.step_g(loss)
        lazy, llogs = self.g_lazy_loss(ctx)
        if lazy is not None:
            ctx.step_g(lazy, ema=False)
        self.g_updates += 1
        return {"g_loss": loss.detach().float(), **logs, **llogs}

    def step(self, ctx: StepContext) -> dict[str, Tensor]:
        sums: dict[str, Tensor] = {}
        for _ in range(self.n_critic):
            for k, v in self.d_step(ctx).items():
                sums[k] = sums[k] + v if k in sums else v
        out = {k: v / self.n_critic for k, v in sums.items()}
        out.update(self.g_step(ctx))
        out.update(self.augment_logs())
        return out

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {
            "d_updates": self.d_updates,
            "g_updates": self.g_updates,
            "history": self.history,
            "augment": self.augment.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.d_updates = int(state.get("d_updates", 0))
        self.g_updates = int(state.get("g_updates", 0))
        self.history = state.get("history", {"d": {}, "g": {}})
        if state.get("augment"):  # checkpoints from before augmentation existed have none
            self.augment.load_state_dict(state["augment"])
