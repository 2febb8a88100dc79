"""The history pool of generated images (Shrivastava et al. 2017, Sec. 2.3; CycleGAN, Zhu et al. 2017, Sec. 4).

D is updated on a mix of the newest fakes and fakes from earlier generators: a pool of up to `size`
images; while it is filling every new image goes in and is returned; once full, each new image is,
with probability 0.5, returned as is, or swapped for a random stored one, which is returned instead.
The draws come from the pool's own seeded generator, and its images and generator state are part of
the checkpoint, so a resumed run returns the same images.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class ImagePool:
    """A seeded history pool of generated images; `query(batch)` returns a batch of the same size."""

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        if size < 0:
            raise ValueError(f"the image pool size must be >= 0, got {size}")
        self.size = int(size)
        self.images: list[Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, batch: Tensor) -> Tensor:
        """For each image of `batch` (detached): itself, or, once the pool is full, with p = 0.5 an older one it replaces."""
        batch = batch.detach()
        if self.size == 0:
            return batch
        out = []
        for img in batch:
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif float(torch.rand((), generator=self.generator)) < 0.5:
                k = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.images[k].to(img.device))
                self.images[k] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        """The stored images (on the CPU) and the generator state."""
        images = torch.stack([i.cpu() for i in self.images]) if self.images else torch.empty(0)
        return {"size": self.size, "images": images, "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        """Restore what `state_dict` returned (images go to `device`)."""
        if int(state["size"]) != self.size:
            raise ValueError(f"image pool of size {state['size']} cannot load into one of size {self.size}")
        images = state["images"]
        self.images = [] if images.numel() == 0 else [img.to(device) for img in images]
        self.generator.set_state(state["rng"])
