"""The translator service (CycleGAN runs): load both translators from a run, translate images, build triplet grids.

A translation run exports `translators.safetensors`, the two networks' weights under the prefixes
"G_ab." and "G_ba." with the run's config and image shape as metadata; a run folder without it
(stopped early) is read from its newest good checkpoint.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .config import Recipe, build_recipe
from .errors import GanforgeError
from .models import build_translator

DIRECTIONS = {"a2b": "G_ab", "b2a": "G_ba"}
EXPORT_NAME = "translators.safetensors"


def translate(
    G: nn.Module,
    x: Tensor,
    batch: int = 256,
    autocast: Callable[[], Any] | None = None,
    device: torch.device | None = None,
) -> Tensor:
    """G(x) for images x in [-1, 1], `batch` at a time, G in eval mode (its mode restored), float32 on the CPU."""
    device = device or next(G.parameters()).device
    was = G.training
    G.eval()
    out = []
    try:
        for chunk in x.split(batch):
            with torch.no_grad(), autocast() if autocast is not None else contextlib.nullcontext():
                out.append(G(chunk.to(device)).float().cpu())
    finally:
        G.train(was)
    return torch.cat(out) if out else x.new_empty((0, *x.shape[1:]))


def triplet_grid(
    G_ab: nn.Module,
    G_ba: nn.Module,
    a: Tensor,
    b: Tensor,
    autocast: Callable[[], Any] | None = None,
    device: torch.device | None = None,
) -> Tensor:
    """Rows of six for a grid of nrow=6: a, G_ab(a), G_ba(G_ab(a)), b, G_ba(b), G_ab(G_ba(b)); a short side padded with -1."""
    fake_b = translate(G_ab, a, autocast=autocast, device=device)
    fake_a = translate(G_ba, b, autocast=autocast, device=device)
    cols = [
        a,
        fake_b,
        translate(G_ba, fake_b, autocast=autocast, device=device),
        b,
        fake_a,
        translate(G_ab, fake_a, autocast=autocast, device=device),
    ]
    n = max(len(a), len(b))
    cols = [torch.cat([c, c.new_full((n - len(c), *c.shape[1:]), -1.0)]) if len(c) < n else c for c in cols]
    return torch.stack(cols, dim=1).flatten(0, 1)


def _recipe(text: str) -> Recipe:
    import yaml

    return build_recipe(yaml.safe_load(text))


def _build(
    recipe: Recipe, shape: tuple[int, ...], states: dict[str, dict[str, Tensor]], src: Path
) -> dict[str, nn.Module]:
    nets = {}
    for name in DIRECTIONS.values():
        G = build_translator(recipe.model.generator.name, shape, recipe.model.generator.args)
        try:
            G.load_state_dict(states[name])
        except (RuntimeError, KeyError, ValueError) as e:
            raise GanforgeError(
                f"the {name} weights in {str(src)!r} do not fit the translator its config describes "
                f"({' '.join(str(e).split())[:300]})."
            ) from None
        nets[name] = G.eval()
    return nets


def load_translators(source: str | Path) -> tuple[dict[str, nn.Module], Recipe, tuple[int, ...]]:
    """({"G_ab": ..., "G_ba": ...} in eval mode, the recipe, the image shape) from a run folder, checkpoint or export."""
    from .training.checkpoint import latest_good_checkpoint, load_checkpoint

    src = Path(source)
    if src.is_dir():
        if (src / EXPORT_NAME).is_file():
            return load_translators(src / EXPORT_NAME)
        found = latest_good_checkpoint(src / "checkpoints")
        if found is None:
            raise GanforgeError(
                f"{str(src)!r} holds no {EXPORT_NAME} and no readable checkpoint in checkpoints/; "
                "is it a translation (cycle) run?"
            )
        src, state = found
    elif not src.is_file():
        raise GanforgeError(
            f"{str(src)!r} does not exist: give a translation run folder, a .pt checkpoint or its {EXPORT_NAME}."
        )
    elif src.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        try:
            with safe_open(str(src), framework="pt") as f:
                meta = f.metadata() or {}
            flat = load_file(str(src))
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise GanforgeError(
                f"{str(src)!r} is not a readable .safetensors file: {' '.join(str(e).split())}."
            ) from None
        if "config" not in meta or "shape" not in meta or not any(k.startswith("G_ab.") for k in flat):
            raise GanforgeError(
                f"{str(src)!r} holds no translators (it needs G_ab./G_ba. weights and ganforge metadata); "
                "a noise generator is sampled with `ganforge sample`."
            )
        states: dict[str, dict[str, Tensor]] = {n: {} for n in DIRECTIONS.values()}
        for k, v in flat.items():
            net, _, key = k.partition(".")
            if net in states:
                states[net][key] = v
        recipe, shape = _recipe(meta["config"]), tuple(json.loads(meta["shape"]))
        return _build(recipe, shape, states, src), recipe, shape
    else:
        state = load_checkpoint(src)
    if not isinstance(state, dict) or not {"config", "shape", "G_ab", "G_ba"} <= set(state):
        raise GanforgeError(
            f"{str(src)!r} is not a translation checkpoint (no G_ab/G_ba weights); a noise generator's "
            "run is sampled with `ganforge sample`."
        )
    recipe, shape = _recipe(state["config"]), tuple(state["shape"])
    return _build(recipe, shape, {n: state[n] for n in DIRECTIONS.values()}, src), recipe, shape


def is_translation_run(source: str | Path) -> bool:
    """Whether `source` (run folder, checkpoint or export) is a translation run, judged from its config's game."""
    from .games import GAMES

    src = Path(source)
    # A run folder, or a checkpoint inside one (RUN/checkpoints/step_N.pt): the run's config.yaml says.
    cfg = src / "config.yaml" if src.is_dir() else src.parent.parent / "config.yaml" if src.suffix == ".pt" else None
    if cfg is not None and cfg.is_file():
        import yaml

        try:
            name = (yaml.safe_load(cfg.read_text()) or {}).get("game", {}).get("name", "standard")
        except Exception:
            return False
        return name in GAMES and GAMES.get(name).generator is None
    return src.name == EXPORT_NAME
