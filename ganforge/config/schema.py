"""The typed recipe schema: dataclasses, size caps, fixed choices, cross-field `validate` (imports errors, metrics.spec).

A recipe is a YAML file; every key maps to a dataclass field below. Component arguments
(``args:``) are free-form here and checked against the component's signature when it is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, choices_message


@dataclass
class Component:
    """A registered component by name plus keyword arguments for it."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    """Which data to train on (see ganforge.data.load_dataset for each field)."""

    name: str = "digits"
    base: str | None = None  # data 'stacked': the grey dataset stacked three times (fashion_mnist | digits)
    path: str | None = None
    root: str | None = None
    image_size: int | None = None
    channels: int | None = None
    labels: bool = False
    split: str = "train"
    fit: str = "resize"
    n_points: int = 100_000
    download: bool = True
    limit: int | None = None
    # Keep only these classes (names as the dataset spells them, case and spaces/underscores ignored, or indices).
    classes: list[str] | None = None
    # data 'unpaired' (CycleGAN): the two domains, each any dataset spec of its own.
    a: DataConfig | None = None
    b: DataConfig | None = None


@dataclass
class LatentConfig:
    """Structured latent codes appended to the noise (InfoGAN, Chen et al. 2016, Sec. 5)."""

    categorical: list[int] = field(default_factory=list)  # sizes of categorical codes, e.g. [10]
    continuous: int = 0  # number of continuous codes, each uniform on [-1, 1]
    # The prior of the noise z: "normal" N(0, I), or "uniform" on [-1, 1]^z_dim (BEGAN, Berthelot et al. 2017, Sec. 3.5).
    noise: str = "normal"


@dataclass
class ModelConfig:
    """The generator and discriminator families, the latent size and the conditioning."""

    z_dim: int = 100
    # Class-conditional G and D (Mirza & Osindero 2014): labels come from the data; the
    # networks embed them as their family says (concatenation, projection, conditional BN).
    conditional: bool = False
    latent: LatentConfig = field(default_factory=LatentConfig)
    generator: Component = field(default_factory=lambda: Component("dcgan"))
    discriminator: Component = field(default_factory=lambda: Component("dcgan"))
    # Spectral normalisation (Miyato et al. 2018) of every weight layer of D, G or both.
    spectral_norm: str = "none"


@dataclass
class OptimizerConfig:
    """One network's optimiser and learning-rate schedule."""

    name: str = "adam"
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0
    alpha: float = 0.99
    schedule: str = "constant"
    warmup: int = 0
    # schedule 'linear': when the decay to 0 begins: a step (an integer), or a fraction of train.steps (a number
    # in (0, 1): CycleGAN's 0.5); 0 = right after warm-up; at or beyond train.steps the lr stays constant.
    decay_start: int | float = 0
    # schedule 'step': the lr is multiplied by `factor` at each milestone, a step (an integer) or a fraction of
    # train.steps (a number in (0, 1)); the authors' reference code for BEGAN halves it at fixed intervals.
    milestones: list[int | float] = field(default_factory=list)
    factor: float = 0.5
    # schedule 'plateau': the lr is multiplied by `factor` whenever the mean of the logged value `monitor` (lower is
    # better, e.g. the began game's m_global) over a window of `patience` steps is not below the best window mean by
    # `threshold` (relative), never below `min_factor` times the initial lr: the paper's "decaying by a factor of 2
    # when the measure of convergence stalls" (Berthelot et al. 2017, Sec. 4.1).
    monitor: str = ""
    patience: int = 500
    threshold: float = 0.01
    min_factor: float = 0.0


@dataclass
class OptimConfig:
    """Separate optimisers for G and D (different learning rates = TTUR, Heusel et al. 2017)."""

    g: OptimizerConfig = field(default_factory=OptimizerConfig)
    d: OptimizerConfig = field(default_factory=OptimizerConfig)


@dataclass
class GameConfig:
    """The training procedure of one step: its name, critic steps per generator step, extra arguments."""

    name: str = "standard"
    n_critic: int = 1
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class RegularizerConfig:
    """One regulariser: which network it serves, its weight and interval (every > 1: lazy), and arguments."""

    name: str
    net: str = "d"
    weight: float = 1.0
    every: int = 1
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class EMAConfig:
    """Exponential moving average of the generator's weights (Yazici et al. 2019; Karras et al. 2018)."""

    enabled: bool = False
    decay: float = 0.999
    start: int = 0


@dataclass
class DoctorConfig:
    """Live training-health diagnosis (ganforge.doctor): a warning line when a state is entered, optional stop."""

    enabled: bool = True
    # States that stop the run (checkpointed, status `stopped`): collapse, d_wins, divergence, no_learning, unstable.
    stop_on: list[str] = field(default_factory=list)


@dataclass
class TrainConfig:
    """The loop: length, batch, device, precision, cadence of logs, samples and checkpoints."""

    steps: int = 2000
    batch_size: int = 64
    # auto: CUDA when available, else the CPU (ganforge.training.hardware.resolve_device).
    device: str = "auto"
    # auto: bf16 where the device computes it natively, fp16 + scaler on older GPUs, else fp32;
    # the resolved value is what config.yaml records (ganforge.training.hardware.resolve_precision).
    precision: str = "auto"
    channels_last: bool | str = "auto"  # auto: NHWC where it is faster (CPU; GPU in mixed precision)
    compile: bool = False
    # With several processes (torchrun): batch norm takes its statistics over the global batch, not each rank's share.
    sync_batchnorm: bool = False
    threads: int | None = None  # None: OMP_NUM_THREADS if set, else the cores this process may use
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    n_samples: int = 64
    progress: bool = True
    # Training-health signals (gradient, weight and update norms; fixed-noise sample movement and diversity) in
    # metrics.jsonl and TensorBoard; they draw no random numbers, so results are the same either way.
    signals: bool = True
    doctor: DoctorConfig = field(default_factory=DoctorConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)


@dataclass
class EvalConfig:
    """Metrics during training: every N steps (0 = never) on the EMA generator when there is one."""

    every: int = 0
    metrics: list[str] = field(default_factory=lambda: ["fd", "coverage"])
    n: int = 2000
    extractor: str = "auto"
    best: str | None = None
    seed: int = 0
    # What the samples are compared with: "run" (the images the run trains on) or "full" (the dataset's whole
    # split, ignoring data.limit: how far a run on a few images is from the distribution they were drawn from).
    reference: str = "run"


@dataclass
class Recipe:
    """A complete training recipe: data, models, objective, game, optimisers and loop."""

    name: str = "custom"
    description: str = ""
    source: str = ""
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: Component = field(default_factory=lambda: Component("non_saturating"))
    game: GameConfig = field(default_factory=GameConfig)
    regularizers: list[RegularizerConfig] = field(default_factory=list)
    # Differentiable augmentation of every D input (ganforge.augment): off, diffaugment or ada, with args.
    augment: Component = field(default_factory=lambda: Component("off"))
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # Python modules imported before the recipe is read, so that components they register (ganforge.register_*)
    # can be named in it; looked up on sys.path and in the working directory.
    plugins: list[str] = field(default_factory=list)


EVAL_REFERENCES = ("run", "full")
NOISE_PRIORS = ("normal", "uniform")  # model.latent.noise
MAX_EVAL_N = 10_000_000  # 200x the usual 50,000; beyond it an evaluation runs for days
MAX_Z_DIM = 65_536  # larger latents are a typo; the first layer alone would need gigabytes
MAX_IMAGE_SIZE = 1024  # the largest resolution in the GAN literature (ProGAN, StyleGAN)
MAX_THREADS = (
    1024  # OpenMP allocates per-thread state up front: a huge count aborts the process (libgomp out of memory)
)
MAX_N_POINTS = 100_000_000  # synthetic 2-D mixtures: 10^8 points are 1.6 GB; torch cannot even index 2^63

CHOICES: dict[str, tuple[Any, ...]] = {
    "train.precision": ("auto", "fp32", "bf16", "fp16"),
    "train.channels_last": ("auto", True, False),
    "optim.g.name": ("adam", "rmsprop", "sgd", "optimistic_adam", "optimistic_sgd"),
    "optim.d.name": ("adam", "rmsprop", "sgd", "optimistic_adam", "optimistic_sgd"),
    "model.spectral_norm": ("none", "d", "g", "both"),
    "optim.g.schedule": ("constant", "linear", "step", "plateau"),
    "optim.d.schedule": ("constant", "linear", "step", "plateau"),
}


def validate(r: Recipe) -> None:
    """Cross-field checks that types alone cannot express."""
    t = r.train
    for key in (
        "steps",
        "batch_size",
        "log_every",
        "sample_every",
        "checkpoint_every",
        "keep_checkpoints",
        "n_samples",
    ):
        if getattr(t, key) < 1:
            raise ConfigError(f"train.{key} must be at least 1, got {getattr(t, key)}.")
    if not 1 <= r.game.n_critic <= 100:
        raise ConfigError(f"game.n_critic must be between 1 and 100 (WGAN uses 5), got {r.game.n_critic}.")
    if not 1 <= r.model.z_dim <= MAX_Z_DIM:
        raise ConfigError(f"model.z_dim must be between 1 and {MAX_Z_DIM}, got {r.model.z_dim}.")
    if not 0 <= r.seed < 2**63:
        raise ConfigError(f"seed must be between 0 and 2**63 - 1, got {r.seed}.")
    if r.data.image_size is not None and not 4 <= r.data.image_size <= MAX_IMAGE_SIZE:
        raise ConfigError(f"data.image_size must be between 4 and {MAX_IMAGE_SIZE} pixels, got {r.data.image_size}.")
    if r.data.channels is not None and r.data.channels not in (1, 3):
        raise ConfigError(f"data.channels must be 1 (grey) or 3 (RGB), got {r.data.channels}.")
    if t.threads is not None and not 1 <= t.threads <= MAX_THREADS:
        raise ConfigError(
            f"train.threads must be between 1 and {MAX_THREADS} (or null: use the available cores), got {t.threads}."
        )
    if r.data.limit is not None and r.data.limit < 1:
        raise ConfigError(f"data.limit must be at least 1 (or null: all samples), got {r.data.limit}.")
    if not 1 <= r.data.n_points <= MAX_N_POINTS:
        raise ConfigError(f"data.n_points must be between 1 and {MAX_N_POINTS:,}, got {r.data.n_points}.")
    if r.eval.every < 0 or not 2 <= r.eval.n <= MAX_EVAL_N:
        raise ConfigError(
            f"eval.every must be >= 0 and eval.n between 2 and {MAX_EVAL_N:,}, got {r.eval.every} and {r.eval.n}."
        )
    if r.model.latent.noise not in NOISE_PRIORS:
        raise ConfigError(choices_message("model.latent.noise", r.model.latent.noise, NOISE_PRIORS))
    if r.eval.reference not in EVAL_REFERENCES:
        raise ConfigError(choices_message("eval.reference", r.eval.reference, EVAL_REFERENCES))
    if r.eval.reference == "full" and "memorisation" in r.eval.metrics:
        raise ConfigError(
            "eval.reference: full compares samples with the whole split, but memorisation needs the images the "
            "run trained on: use eval.reference: run, or drop memorisation from eval.metrics."
        )
    if r.eval.every:
        from ..metrics.spec import parse_metrics  # the metric declarations, without loading the engine

        parse_metrics(r.eval.metrics)
    if t.doctor.stop_on:
        from ..doctor.rules import STATES  # names only: rules.py imports nothing heavy

        if not t.doctor.enabled:
            raise ConfigError(
                "train.doctor.stop_on needs the live doctor: set train.doctor.enabled: true (or stop_on: [])."
            )

        for s in t.doctor.stop_on:
            if s not in STATES:
                raise ConfigError(choices_message("train.doctor.stop_on state", s, STATES))
    if not 0.0 <= t.ema.decay < 1.0:
        raise ConfigError(f"train.ema.decay must be in [0, 1), got {t.ema.decay}.")
    for net in ("g", "d"):
        o = getattr(r.optim, net)
        if o.lr <= 0:
            raise ConfigError(f"optim.{net}.lr must be positive, got {o.lr}.")
        # What torch's optimisers would refuse with a ValueError (a traceback) once the networks are built.
        if not all(0.0 <= b < 1.0 for b in o.betas):
            raise ConfigError(f"optim.{net}.betas must both be in [0, 1), got {list(o.betas)}.")
        for key in ("eps", "weight_decay", "momentum", "alpha", "warmup", "decay_start"):
            if getattr(o, key) < 0:
                raise ConfigError(f"optim.{net}.{key} must be at least 0, got {getattr(o, key)}.")
        if o.decay_start and o.schedule != "linear":
            raise ConfigError(
                f"optim.{net}.decay_start applies to schedule 'linear' only (got schedule {o.schedule!r})."
            )
        if o.milestones and o.schedule != "step":
            raise ConfigError(f"optim.{net}.milestones apply to schedule 'step' only (got schedule {o.schedule!r}).")
        if o.schedule == "step" and not o.milestones:
            raise ConfigError(
                f"optim.{net}.schedule 'step' needs milestones: steps (integers) or fractions of "
                "train.steps at which the lr is multiplied by factor, e.g. [0.5, 0.75]."
            )
        for m in o.milestones:
            if isinstance(m, bool) or not isinstance(m, (int, float)) or m <= 0 or (isinstance(m, float) and m >= 1):
                raise ConfigError(
                    f"optim.{net}.milestones are steps (positive integers) or fractions of train.steps "
                    f"(numbers between 0 and 1), got {m!r}."
                )
        if o.monitor and o.schedule != "plateau":
            raise ConfigError(f"optim.{net}.monitor applies to schedule 'plateau' only (got schedule {o.schedule!r}).")
        if o.schedule == "plateau" and not o.monitor:
            raise ConfigError(
                f"optim.{net}.schedule 'plateau' needs monitor: a value the game logs every step, lower is "
                "better (e.g. m_global for the began game, d_loss)."
            )
        if isinstance(o.patience, bool) or not isinstance(o.patience, int) or o.patience < 1:
            raise ConfigError(f"optim.{net}.patience must be a positive number of steps, got {o.patience!r}.")
        if not 0 <= o.threshold < 1:
            raise ConfigError(f"optim.{net}.threshold (a relative improvement) must be in [0, 1), got {o.threshold}.")
        if not 0 <= o.min_factor <= 1:
            raise ConfigError(f"optim.{net}.min_factor must be in [0, 1], got {o.min_factor}.")
        if not 0 < o.factor <= 1:
            raise ConfigError(f"optim.{net}.factor must be in (0, 1], got {o.factor}.")
        if isinstance(o.decay_start, float) and not 0 < o.decay_start < 1:
            raise ConfigError(
                f"optim.{net}.decay_start is a step (an integer) or a fraction of train.steps (a number "
                f"between 0 and 1), got {o.decay_start}."
            )
