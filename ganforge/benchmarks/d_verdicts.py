"""D's verdicts on its own training images, on held-out real images and on G's samples, from a run's checkpoint.

The direct measure of a discriminator that memorises its training set (Karras et al. 2020, arXiv:2006.06676,
Fig. 1b-c): its outputs on the real images it trained on and on real images it never saw drift apart, the unseen
ones towards the fakes'. A D that merely separates real from fake keeps the two real sets together. Logits are taken
as in training: batches of one kind at a time, D in train mode (batch-norm statistics of the batch), no augmentation,
the raw (not averaged) G that D was trained against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import GanforgeError

__all__ = ["d_verdicts", "load_run_nets", "verdict_stats"]

BATCH = 64  # the benches' training batch: batch-norm statistics as D saw them
SEED = 13


@torch.no_grad()
def logits(D: nn.Module, x: Tensor, batch: int = BATCH) -> Tensor:
    """D's logits for `x`, `batch` images at a time in train mode (restored after), as float32 on the CPU."""
    was = D.training
    D.train()
    try:
        dev = next(D.parameters()).device
        out = [D(c.to(dev)).float().flatten().cpu() for c in x.split(batch)]
    finally:
        D.train(was)
    return torch.cat(out) if out else torch.zeros(0)


def verdict_stats(train: Tensor, held: Tensor, fake: Tensor) -> dict[str, float]:
    """Mean logit, share called real (logit > 0) and E[sign] (ADA's r_t) on each set, and the train-held gap."""
    out: dict[str, float] = {}
    for name, v in (("train", train), ("held", held), ("fake", fake)):
        out[f"logit_{name}"] = float(v.mean())
        out[f"real_{name}"] = float((v > 0).float().mean())
        out[f"rt_{name}"] = float(torch.sign(v).mean())
    out["logit_gap_train_held"] = out["logit_train"] - out["logit_held"]
    # Where the held-out images sit between fakes (0) and training images (1): near 1, D generalises; near 0, it
    # treats unseen real images like fakes.
    span = out["logit_train"] - out["logit_fake"]
    out["held_position"] = (out["logit_held"] - out["logit_fake"]) / span if abs(span) > 1e-9 else float("nan")
    return out


def load_run_nets(run_dir: Path, game: str | None = None) -> tuple[nn.Module, nn.Module, Any, int]:
    """(D, raw G, recipe, step) of a run folder's newest readable checkpoint, on the CPU, D built as the trainer
    builds it (the classes and codes of G's latent space, spectral norm); `game` refuses a run of another game."""
    from ..generation import resolve_latent
    from ..latent import model_extras
    from ..models import build_discriminator
    from ..nn.spectral import apply_spectral_norm
    from ..sampling import _from_checkpoint, _recipe_from_text
    from ..training.checkpoint import latest_good_checkpoint

    found = latest_good_checkpoint(Path(run_dir) / "checkpoints")
    if found is None:
        raise GanforgeError(f"{str(run_dir)!r} has no readable checkpoint.")
    path, state = found
    recipe = _recipe_from_text(state["config"])
    if game is not None and recipe.game.name != game:
        raise GanforgeError(f"{str(run_dir)!r} is not a {game} run (game {recipe.game.name!r}).")
    if "D" not in state:
        raise GanforgeError(f"{str(path)!r} holds no discriminator.")
    G, _, shape = _from_checkpoint(state, use_ema=False, src=path)
    spec = recipe.model.discriminator
    D = build_discriminator(spec.name, tuple(shape), spec.args, **model_extras(resolve_latent(G, None), "d"))
    if recipe.model.spectral_norm in ("d", "both"):
        apply_spectral_norm(D)
    D.load_state_dict(state["D"])
    return D, G, recipe, int(state.get("step", 0))


@torch.no_grad()
def _train_mode_samples(G: nn.Module, m: int, g: torch.Generator) -> Tensor:
    """m samples of G in train mode, BATCH at a time: the fakes as D saw them (batch-norm statistics of the batch)."""
    from ..generation import resolve_latent

    lat = resolve_latent(G, None).sample(m, g)
    was = G.training
    G.train()
    try:
        dev = next(G.parameters()).device
        zs, ys = lat.z.split(BATCH), (lat.y.split(BATCH) if lat.y is not None else [None] * len(lat.z.split(BATCH)))
        return torch.cat(
            [(G(z.to(dev)) if y is None else G(z.to(dev), y.to(dev))).float().cpu() for z, y in zip(zs, ys)]
        )
    finally:
        G.train(was)


def d_verdicts(D: nn.Module, G: nn.Module, train: Any, held: Any, n: int, seed: int = SEED) -> dict[str, Any]:
    """verdict_stats on up to `n` seeded training images, as many held-out images and as many samples of G.

    The count is rounded down to whole batches (at least one), so that every batch's statistics are a full one's.
    """
    from ..generation import resolve_latent

    if resolve_latent(G, None).num_classes:
        raise GanforgeError("d_verdicts scores an unconditional D; this run's G and D take class labels.")
    m = min(n, len(train), len(held))
    m = max(min(BATCH, m), (m // BATCH) * BATCH)
    if m < 2:
        raise GanforgeError(f"d_verdicts needs at least 2 images in each set; got {len(train)} and {len(held)}.")
    g = torch.Generator().manual_seed(seed)
    xt = train.get(torch.randperm(len(train), generator=g)[:m].sort().values)[0].float()
    xh = held.get(torch.randperm(len(held), generator=g)[:m].sort().values)[0].float()
    torch.manual_seed(seed)  # dropout or noise layers, if any, draw the same way every call
    fake = _train_mode_samples(G, m, g)
    return {"n": m, **verdict_stats(logits(D, xt), logits(D, xh), logits(D, fake))}
