"""InfoGAN latent traversals: one row per value of a categorical code, columns sweeping a continuous code (Chen et al. 2016, Fig. 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..plots import as_nchw, new_figure, save_figure


@torch.no_grad()
def latent_traversal_figure(
    G: nn.Module,
    latent_space: Any,
    path: str | Path,
    code: int = 0,
    steps: int = 10,
    seed: int = 0,
    continuous_index: int = 0,
    span: tuple[float, float] = (-2.0, 2.0),
) -> Path:
    """A labelled PNG grid: row r has categorical code `code` = r, column j continuous code `continuous_index` = span[0] + j * (span[1] - span[0]) / (steps - 1).

    The noise is one seeded draw shared by every cell of the figure, and every other code is
    held fixed (other categorical codes at one seeded draw, other continuous codes at 0,
    the prior's mean), so rows and columns differ only in the two codes shown. The paper
    (Fig. 2) sweeps continuous codes over [-2, 2], beyond the training prior U(-1, 1), to
    show extrapolation. Without continuous codes the columns are different noise draws
    (shared by the rows). G runs in eval mode; its mode is restored.
    """
    if not latent_space.categorical or not 0 <= code < len(latent_space.categorical):
        raise ConfigError(
            f"code must index one of the latent space's {len(latent_space.categorical)} categorical codes, got {code}"
        )
    if latent_space.continuous and not 0 <= continuous_index < latent_space.continuous:
        raise ConfigError(f"continuous_index must lie in [0, {latent_space.continuous - 1}], got {continuous_index}")
    if steps < 2 and latent_space.continuous:
        raise ConfigError(f"steps must be >= 2 to sweep a continuous code, got {steps}")
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    k = latent_space.categorical[code]
    lo, hi = float(span[0]), float(span[1])
    n = k * steps
    rows = torch.arange(k).repeat_interleave(steps)  # row-major: cell (r, j) is sample r * steps + j
    g = torch.Generator().manual_seed(seed)
    if latent_space.continuous:
        base = latent_space.sample(1, generator=g)
        noise = base.z[:, : latent_space.z_dim].expand(n, -1)
        values = torch.linspace(lo, hi, steps)
        cont = torch.zeros(n, latent_space.continuous)
        cont[:, continuous_index] = values.repeat(k)
    else:
        base = latent_space.sample(steps, generator=g)
        noise = base.z[:, : latent_space.z_dim].repeat(k, 1)
        values, cont = None, None
    cats = [c[:1].expand(n).clone() for c in base.categorical]
    cats[code] = rows
    lat = latent_space.sample(n, y=None if base.y is None else base.y[:1].expand(n), categorical=cats, continuous=cont)
    z = torch.cat([noise, lat.z[:, latent_space.z_dim :]], 1)  # the shared noise with the chosen codes
    device = next(G.parameters()).device
    was_training = G.training
    G.eval()
    try:
        images = G(z.to(device)).float().cpu()
    finally:
        G.train(was_training)
    return _labelled_grid(images, k, steps, path, code, continuous_index, values)


def _labelled_grid(
    images: torch.Tensor,
    rows: int,
    cols: int,
    path: str | Path,
    code: int,
    continuous_index: int,
    values: torch.Tensor | None,
) -> Path:
    """Draw the k x steps images as one grid with the code values as row and column labels."""
    from torchvision.utils import make_grid

    x = as_nchw(images)
    _, c, h, w = x.shape
    pad = 2
    grid = make_grid(x, nrow=cols, padding=pad, pad_value=1.0)
    fig = new_figure(1.0 + 0.6 * cols, 0.6 + 0.6 * rows)
    ax = fig.add_axes((0.12, 0.02, 0.86, 0.9))
    # make_grid repeats a grey channel three times; show grey images through a grey colour map.
    ax.imshow(
        grid[0].numpy() if c == 1 else grid.permute(1, 2, 0).numpy(),
        cmap="gray" if c == 1 else None,
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
    )
    ax.set_yticks(
        [pad + r * (h + pad) + h / 2 for r in range(rows)], [f"c{code + 1}={r}" for r in range(rows)], fontsize=7
    )
    ax.set_xticks(
        [pad + j * (w + pad) + w / 2 for j in range(cols)],
        [f"{float(v):.2g}" for v in values] if values is not None else [f"z{j}" for j in range(cols)],
        fontsize=7,
    )
    ax.xaxis.tick_top()
    ax.set_xlabel(f"continuous code {continuous_index + 1}" if values is not None else "noise draw", fontsize=8)
    ax.xaxis.set_label_position("top")
    ax.tick_params(length=0)
    return save_figure(fig, path)
