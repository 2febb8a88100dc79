"""Where a self-attention generator looks: attention maps for query pixels (Zhang et al. 2018, SAGAN, Fig. 1 and 5)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..nn.attention import SelfAttention
from ..plots import as_nchw, new_figure, save_figure

_COLOURS = ("red", "lime", "cyan", "yellow", "magenta", "orange")


def _default_queries(size: int) -> list[tuple[int, int]]:
    """The centre and three off-centre pixels (row, col)."""
    q = size // 4
    return [(size // 2, size // 2), (q, q), (q, size - 1 - q), (size - 1 - q, size // 2)]


@torch.no_grad()
def attention_map_figure(
    G: nn.Module,
    z: Tensor,
    y: Tensor | None = None,
    query: tuple[int, int] | None = None,
    path: str | Path = "attention_map.png",
    layer: int = 0,
) -> Path:
    """PNG of G's first sample with query pixels marked and, per query, its attention over key positions (SAGAN, Fig. 5).

    `query` is (row, col) in image pixels, mapped to the attention grid; None shows four
    queries (the centre first). `layer` picks the SelfAttention module when G has several.
    G runs in eval mode (no batch-norm statistics or spectral-norm vectors are updated)
    and its training mode and recording flags are restored afterwards.
    """
    attns = [m for m in G.modules() if isinstance(m, SelfAttention)]
    if not attns:
        raise ConfigError(
            "attention_map_figure needs a generator with a self-attention block (e.g. model args attention: 16)"
        )
    if not 0 <= layer < len(attns):
        raise ConfigError(f"layer must be in [0, {len(attns) - 1}] ({len(attns)} self-attention blocks), got {layer}")
    module = attns[layer]
    was_training, was_recording = G.training, module.record
    module.record, module.last_attention = True, None
    try:
        G.eval()
        images = G(z) if y is None else G(z, y)
        attn = module.last_attention
    finally:
        module.record = was_recording
        G.train(was_training)
    assert attn is not None  # the module ran: it is part of G's forward

    img = as_nchw(images[:1])[0]  # (C, H, W) in [0, 1]
    _, height, width = img.shape
    side = round(attn.shape[-1] ** 0.5)
    queries = [tuple(query)] if query is not None else _default_queries(min(height, width))
    for r, c in queries:
        if not (0 <= r < height and 0 <= c < width):
            raise ConfigError(f"query pixel (row, col) = {(r, c)} lies outside the {height}x{width} image")

    shown = img.permute(1, 2, 0).numpy()
    cmap = "gray" if img.shape[0] == 1 else None
    if img.shape[0] == 1:
        shown = shown[..., 0]
    grey = img.mean(0).numpy()

    n = len(queries)
    fig = new_figure(2.4 * (n + 1), 2.6)
    axes = [fig.add_subplot(1, n + 1, i + 1) for i in range(n + 1)]
    axes[0].imshow(shown, cmap=cmap, vmin=0, vmax=1)
    axes[0].set_title("sample")
    for i, ((r, c), ax) in enumerate(zip(queries, axes[1:])):
        colour = _COLOURS[i % len(_COLOURS)]
        # The query's cell in the attention grid (nearest-neighbour mapping of pixels to cells).
        qr, qc = r * side // height, c * side // width
        row = attn[0, qr * side + qc].float().view(1, 1, side, side)
        heat = F.interpolate(row, size=(height, width), mode="nearest")[0, 0].numpy()
        axes[0].scatter([c], [r], s=40, marker="x", color=colour)
        ax.imshow(grey, cmap="gray", vmin=0, vmax=1)
        ax.imshow(heat, cmap="inferno", alpha=0.6)
        ax.scatter([c], [r], s=40, marker="x", color=colour)
        ax.set_title(f"query ({r}, {c})", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"self-attention at {side}x{side}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
