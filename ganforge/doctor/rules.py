"""The doctor's states, their thresholds (each with the measurement it rests on) and their remedies.

Thresholds were set on `ganforge bench doctor` (bench/results/doctor/doctor.md), where every healthy run
must stay below them and the broken runs cross them; the reason beside each says what separated the two.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from typing import Any

# Most severe first: when two states cover the same steps, the run is named by the more severe.
STATES: dict[str, str] = {
    "unstable": "instability before a non-finite loss",
    "divergence": "divergence or oscillation",
    "collapse": "mode collapse",
    "d_wins": "D overpowering G (vanishing G gradients)",
    "no_learning": "no learning: G's output barely moves",
}
HEALTHY = "healthy"
SEVERITY = list(STATES)


@dataclass(frozen=True)
class Thresholds:
    """Where each detector fires; see the module docstring for how they were measured."""

    # Fraction of the run before collapse, D-wins and no-learning are judged: every run starts from noise
    # (low diversity, D right on everything) and the healthy demo's first grids sit below the collapse line.
    warmup: float = 0.15
    # A state must hold over this fraction of the run's steps (and at least `min_obs` observations in a row)
    # before it is entered, and stop holding as long before it is left.
    persist: float = 0.08
    min_obs: int = 2
    # Collapse: fixed-noise diversity below this share of the same number of real samples' diversity (healthy runs
    # stay at 0.79 or more after warm-up; collapsed ones reach 0.002-0.28) ...
    diversity_ratio: float = 0.5
    # (low only counts as a fall: after having been above the line, or after dropping under this share of its best
    # so far; a slow G that has never been varied is still learning) ...
    collapse_drop: float = 0.25
    # (a diversity under the line that was never above it counts when it holds for this share of the run)
    collapse_persist: float = 0.25
    # ... or class / mode coverage below this share of the real samples' ...
    coverage_ratio: float = 0.6
    # ... or a class histogram with fewer than a third of the classes' worth of entropy: KL(p || U) > ln 3.
    class_kl: float = math.log(3)
    # D wins: D right on at least this share of real AND fake samples (averaged over a log interval) ...
    d_acc: float = 0.99
    # ... for this share of the run: healthy runs' D is right on everything for stretches of up to 12.5% of the
    # run (healthy-big-d; 7.5% for the demo), the broken ones' for 31% (diverge-lr10x) to 85% (dwins-minimax).
    d_wins_persist: float = 0.2
    # G's gradient has vanished when its median over 4 log lines falls below this share of its largest such
    # median so far: then D winning is the cause of a still G, not its symptom.
    g_vanish: float = 0.01
    # Divergence: FD up by at least this factor over `fd_rises` consecutive evaluations ...
    fd_rise: float = 1.10
    fd_rises: int = 3
    # ... or at least this multiple of its best so far on `min_obs` evaluations in a row (the run was better) ...
    fd_jump: float = 2.0
    # ... or the fixed-noise samples still moving this much (mean |change| over the real data's diversity)
    # after half the run (healthy runs' median: 0.17 at most; the NaN run 0.68).
    late_change: float = 0.6
    # Instability: G's gradient or D's input gradient this many times its median since warm-up, or a non-finite
    # signal. No line separates on the suite: runs that never reached a NaN grew up to 16x (collapse-gan-ring-
    # fast-g as it recovered, diverge-lr10x 9x), the NaN run 11x just before its NaN. The line sits above them all,
    # so that NaN is named at its stop, with its growth in the evidence; only a steeper blow-up warns before.
    grad_spike: float = 30.0
    # No learning: the fixed-noise samples move less than this (same scale as late_change) between grids (still
    # runs: 0.003; healthy runs with their lr in force: 0.036 or more) ...
    still: float = 0.02
    # ... while G's learning rate is at least this share of its initial value (a schedule that decays to 0
    # is meant to stop G moving).
    lr_live: float = 0.5


THRESHOLDS = Thresholds()


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def remedies(state: str, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """The literature's remedies for `state` as recipe overrides for the run's config (a dict): each a dict of
    `overrides` (a list), `override` (the same, as one shell-quoted string) and `why` (the paper)."""

    def get(*keys: str, default: Any = None) -> Any:  # a hand-edited config may hold anything anywhere
        node: Any = cfg
        for k in keys:
            node = node.get(k) if isinstance(node, dict) else None
        return default if node is None else node

    def number(*keys: str, default: float) -> float:
        v = get(*keys)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else default

    loss = str(get("loss", "name", default="")) if isinstance(get("loss"), dict) else str(get("loss", default=""))
    game = get("game", default={}) if isinstance(get("game"), dict) else {}
    model = get("model", default={}) if isinstance(get("model"), dict) else {}
    lr_g, lr_d = number("optim", "g", "lr", default=2e-4), number("optim", "d", "lr", default=2e-4)
    d_name = get("model", "discriminator", "name", default="")
    standard = game.get("name", "standard") == "standard"
    has_regs = bool(get("regularizers"))
    replace = " (this list replaces the recipe's regularizers: add back the ones it had)" if has_regs else ""
    steps = int(number("train", "steps", default=2000))
    n_critic = number("game", "n_critic", default=1)
    ema_on = get("train", "ema", "enabled") is True
    out: list[dict[str, Any]] = []

    def add(override: str | list[str], why: str) -> None:
        overrides = [override] if isinstance(override, str) else override
        out.append({"overrides": overrides, "override": " ".join(shlex.quote(o) for o in overrides), "why": why})

    if state == "collapse":
        if d_name == "dcgan":
            add(
                "model.discriminator.args.mbstd_group=4",
                "minibatch stddev lets D see a batch's variety "
                "(Karras et al. 2018, Sec. 3; Salimans et al. 2016's minibatch discrimination is the same idea)",
            )
        if standard:
            add(
                "game.args.pack=2",
                "PacGAN: D judges packs of samples, so a collapsed G is easy to spot (Lin et al. 2018)",
            )
            add("game={name: unrolled, args: {unroll: 5}}", "unrolled D: G anticipates D's response (Metz et al. 2017)")
        add(f"optim.g.lr={_fmt(lr_g / 2)}", "a slower G chases D's current weak spot less (TTUR, Heusel et al. 2017)")
    elif state == "d_wins":
        if loss == "minimax":
            add(
                "loss=non_saturating",
                "the saturating G loss has vanishing gradients when D is sure (Goodfellow et al. 2014, Sec. 3)",
            )
        if not model.get("spectral_norm") or model.get("spectral_norm") in ("none", False):
            add("model.spectral_norm=d", "spectral norm bounds D's Lipschitz constant (Miyato et al. 2018)")
        add("regularizers=[{name: r1, weight: 1.0}]", "R1 flattens D around the data (Mescheder et al. 2018)" + replace)
        add(
            f"regularizers=[{{name: instance_noise, args: {{std: 0.1, anneal_steps: {steps // 2}}}}}]",
            "instance noise makes real and fake overlap (Sonderby et al. 2017; Arjovsky & Bottou 2017)" + replace,
        )
        if n_critic > 1:
            add("game.n_critic=1", "fewer D steps per G step")
        if lr_d > lr_g:
            add(f"optim.d.lr={_fmt(lr_g)}", "D learns no faster than G")
    elif state == "divergence":
        add([f"optim.g.lr={_fmt(lr_g / 4)}", f"optim.d.lr={_fmt(lr_d / 4)}"], "smaller steps (the usual first fix)")
        add([f"optim.g.lr={_fmt(lr_g / 4)}", f"optim.d.lr={_fmt(lr_g)}"], "TTUR: D faster than G (Heusel et al. 2017)")
        if not ema_on:
            add("train.ema.enabled=true", "EMA of G averages out the oscillation (Yazici et al. 2019)")
        add(
            ["optim.g.name=optimistic_adam", "optim.d.name=optimistic_adam"],
            "optimistic Adam damps the rotation of simultaneous gradient play (Daskalakis et al. 2018)",
        )
        if standard:
            add("game.name=extragradient", "extragradient steps (Gidel et al. 2019)")
    elif state == "unstable":
        add([f"optim.g.lr={_fmt(lr_g / 10)}", f"optim.d.lr={_fmt(lr_d / 10)}"], "smaller steps")
        if loss == "wasserstein" and not has_regs:
            add(
                "regularizers=[{name: gradient_penalty, weight: 10.0}]",
                "the Wasserstein loss is unbounded without a Lipschitz constraint (Gulrajani et al. 2017)",
            )
        add("model.spectral_norm=d", "spectral norm bounds D (Miyato et al. 2018)")
        add("train.precision=fp32", "rules out fp16 overflow")
    elif state == "no_learning":
        add(f"optim.g.lr={_fmt(max(lr_g * 10, 1e-4))}", "G's steps are too small to move its output")
        add(f"optim.g.lr={_fmt(lr_d)}", "the same learning rate as D")
    return out
