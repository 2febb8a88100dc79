"""Load a trained generator from a run folder, checkpoint or safetensors file (sampling itself: generation.py)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, cast

import yaml
from torch import nn

from .config import Recipe, build_recipe
from .errors import ConfigError, GanforgeError
from .generation import generator_from_recipe, sample  # noqa: F401 - sample: `from ganforge.sampling import sample`
from .latent import LatentSpace
from .training.checkpoint import latest_good_checkpoint, load_checkpoint


def _recipe_from_text(text: str) -> Recipe:
    return build_recipe(yaml.safe_load(text))


def load_generator(source: str | Path, use_ema: bool = True) -> tuple[nn.Module, Recipe, tuple[int, ...]]:
    """(generator in eval mode, its recipe, its output shape) from a run folder, .pt checkpoint or .safetensors.

    The generator carries its LatentSpace as `G.latent_space` (noise size, InfoGAN codes, classes).
    """
    from .translation import EXPORT_NAME, is_translation_run

    src = Path(source)
    if is_translation_run(src):
        raise GanforgeError(
            f"{str(src)!r} is a translation (CycleGAN) run: it has translators, not a noise generator. "
            f"Use `ganforge translate {src} INPUT --direction a2b --out DIR`, or `ganforge sample` for "
            f"triplets; its weights are in {EXPORT_NAME}."
        )
    if src.is_dir():
        names = (["generator_ema.safetensors"] if use_ema else []) + ["generator.safetensors"]
        names = [n for n in names if (src / n).is_file()]
        for i, name in enumerate(names):
            try:
                return load_generator(src / name)
            except ConfigError as e:
                # Not damage: the recipe names what this process cannot build (a component from a plugin).
                raise ConfigError(
                    f"{e} If the run used a component registered by your own code, import that module first "
                    "(or list it in the recipe's plugins:)."
                ) from None
            except GanforgeError as e:
                if i + 1 == len(names):
                    raise
                # A damaged EMA copy must not block the raw generator beside it.
                warnings.warn(f"{e} Using {names[i + 1]} (the raw generator) instead.", UserWarning, stacklevel=2)
        found = latest_good_checkpoint(src / "checkpoints")
        if found is None:
            raise GanforgeError(
                f"{str(src)!r} holds no generator.safetensors and no readable checkpoint in checkpoints/."
            )
        return _from_checkpoint(found[1], use_ema, found[0])
    if not src.exists():
        raise GanforgeError(f"{str(src)!r} does not exist: give a run folder, a .pt checkpoint or a .safetensors file.")
    if not src.is_file():
        raise GanforgeError(f"{str(src)!r} is not a file: give a run folder, a .pt checkpoint or a .safetensors file.")
    if src.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        try:
            with safe_open(str(src), framework="pt") as f:
                meta = f.metadata() or {}
            state = load_file(str(src))
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:  # truncated, not safetensors, unreadable
            raise GanforgeError(
                f"{str(src)!r} is not a readable .safetensors file (truncated or corrupt?): {_one_line(e)}."
            ) from None
        if "config" not in meta or "shape" not in meta:
            raise GanforgeError(f"{str(src)!r} was not written by ganforge (its metadata has no config/shape).")
        try:
            recipe = _recipe_from_text(meta["config"])
            shape = tuple(json.loads(meta["shape"]))
            latent = json.loads(meta["latent"]) if "latent" in meta else None
        except GanforgeError:
            raise
        except Exception as e:
            raise GanforgeError(f"{str(src)!r} has damaged ganforge metadata ({_one_line(e)}).") from None
        G = generator_from_recipe(recipe, shape, _latent_space(recipe, latent))
        _load_weights(G, state, src)
        # Which file the weights came from (an EMA copy may have been skipped); cast: Module.__setattr__ is typed
        # for tensors and modules only.
        cast(Any, G).loaded_from = str(src)
        return G.eval(), recipe, shape
    return _from_checkpoint(load_checkpoint(src), use_ema, src)


def _latent_space(recipe: Recipe, latent: dict | None) -> LatentSpace:
    """The stored LatentSpace, or (files older than its metadata) the one the recipe describes without classes."""
    m = recipe.model
    if latent:
        return LatentSpace(**latent)
    return LatentSpace(m.z_dim, 0, m.latent.categorical, m.latent.continuous, m.latent.noise)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _load_weights(G: nn.Module, state: dict, src: Path | str) -> None:
    """G.load_state_dict(state), as a GanforgeError naming `src` when the weights do not fit the network."""
    try:
        G.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as e:
        msg = _one_line(e)
        raise GanforgeError(
            f"the weights in {str(src)!r} do not fit the generator its config describes "
            f"({msg[:300]}{'...' if len(msg) > 300 else ''})."
        ) from None


def _from_checkpoint(
    state: dict, use_ema: bool, src: Path | str = "checkpoint"
) -> tuple[nn.Module, Recipe, tuple[int, ...]]:
    if isinstance(state, dict) and "G_ab" in state:
        raise GanforgeError(
            f"{str(src)!r} is a translation (CycleGAN) checkpoint, not a noise generator's: use "
            "`ganforge translate` on it, or `ganforge sample` on its run folder for triplets."
        )
    if not isinstance(state, dict) or not {"config", "shape", "G"} <= set(state):
        raise GanforgeError(
            f"{str(src)!r} is not a ganforge checkpoint (it holds no config, shape and generator weights)."
        )
    try:
        recipe = _recipe_from_text(state["config"])
        shape = tuple(state["shape"])
        G = generator_from_recipe(recipe, shape, _latent_space(recipe, state.get("latent")))
    except GanforgeError:
        raise
    except Exception as e:
        raise GanforgeError(
            f"{str(src)!r} has a damaged ganforge config, shape or latent ({_one_line(e)[:300]})."
        ) from None
    if use_ema and state.get("ema") is not None:
        # AveragedModel keeps the wrapped network under "module." plus its own counter.
        _load_weights(G, {k[len("module.") :]: v for k, v in state["ema"].items() if k.startswith("module.")}, src)
        cast(Any, G).loaded_from = f"{src} (EMA)"
    else:
        _load_weights(G, state["G"], src)
        cast(Any, G).loaded_from = str(src)
    return G.eval(), recipe, shape
