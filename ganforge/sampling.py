"""Load a trained generator from a run folder, checkpoint or safetensors file, and draw samples."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml
from torch import Tensor, nn

from .config import Recipe, build_recipe
from .errors import GanforgeError
from .latent import LatentSpace
from .models import build_generator
from .training.checkpoint import latest_good_checkpoint, load_checkpoint


def _recipe_from_text(text: str) -> Recipe:
    return build_recipe(yaml.safe_load(text))


def load_generator(source: str | Path, use_ema: bool = True) -> tuple[nn.Module, Recipe, tuple[int, ...]]:
    """(generator in eval mode, its recipe, its output shape) from a run folder, .pt checkpoint or .safetensors.

    The generator carries its LatentSpace as `G.latent_space` (noise size, InfoGAN codes, classes).
    """
    src = Path(source)
    if src.is_dir():
        names = (["generator_ema.safetensors"] if use_ema else []) + ["generator.safetensors"]
        for name in names:
            if (src / name).is_file():
                return load_generator(src / name)
        found = latest_good_checkpoint(src / "checkpoints")
        if found is None:
            raise GanforgeError(f"{str(src)!r} holds no generator.safetensors and no readable checkpoint in checkpoints/.")
        return _from_checkpoint(found[1], use_ema)
    if not src.exists():
        raise GanforgeError(f"{str(src)!r} does not exist: give a run folder, a .pt checkpoint or a .safetensors file.")
    if src.suffix == ".safetensors":
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(src), framework="pt") as f:
            meta = f.metadata() or {}
        if "config" not in meta or "shape" not in meta:
            raise GanforgeError(f"{str(src)!r} was not written by ganforge (its metadata has no config/shape).")
        recipe = _recipe_from_text(meta["config"])
        shape = tuple(json.loads(meta["shape"]))
        G = _build(recipe, shape, json.loads(meta["latent"]) if "latent" in meta else None)
        G.load_state_dict(load_file(str(src)))
        return G.eval(), recipe, shape
    return _from_checkpoint(load_checkpoint(src), use_ema)


def _build(recipe: Recipe, shape: tuple[int, ...], latent: dict | None) -> nn.Module:
    from .latent import model_extras

    m = recipe.model
    space = LatentSpace(**latent) if latent else LatentSpace(m.z_dim, 0, m.latent.categorical, m.latent.continuous)
    G = build_generator(m.generator.name, space.input_dim, shape, m.generator.args, **model_extras(space, "g"))
    if m.spectral_norm in ("g", "both"):
        from .nn.spectral import apply_spectral_norm

        apply_spectral_norm(G)
    G.latent_space = space
    return G


def _from_checkpoint(state: dict, use_ema: bool) -> tuple[nn.Module, Recipe, tuple[int, ...]]:
    recipe = _recipe_from_text(state["config"])
    shape = tuple(state["shape"])
    G = _build(recipe, shape, state.get("latent"))
    if use_ema and state.get("ema") is not None:
        # AveragedModel keeps the wrapped network under "module." plus its own counter.
        G.load_state_dict({k[len("module."):]: v for k, v in state["ema"].items() if k.startswith("module.")})
    else:
        G.load_state_dict(state["G"])
    return G.eval(), recipe, shape


@torch.no_grad()
def sample(G: nn.Module, n: int, latent: int | LatentSpace | None = None, seed: int = 0, batch: int = 500,
           truncation: float | None = None, y: int | None = None) -> Tensor:
    """n samples (float32, CPU) from a seed-fixed draw of G's latent (default `G.latent_space`).

    `truncation` redraws noise values beyond that magnitude (BigGAN's truncation trick);
    `y` picks the class of a conditional generator (default: uniform over classes).
    """
    space = getattr(G, "latent_space", None) if latent is None else latent
    if space is None:
        raise GanforgeError("sample() needs the latent size: pass latent= or load G with load_generator")
    if isinstance(space, int):
        space = LatentSpace(space)
    lat = space.sample(n, torch.Generator().manual_seed(seed), truncation=truncation, y=y)
    device = next(G.parameters()).device
    ys = [None] * len(lat.z.split(batch)) if lat.y is None else lat.y.split(batch)
    return torch.cat([(G(z.to(device)) if yc is None else G(z.to(device), yc.to(device))).float().cpu()
                      for z, yc in zip(lat.z.split(batch), ys)])
