"""BigGAN generator and discriminator at small scale (Brock et al. 2019, arXiv:1809.11096, Sec. 3 and App. B).

G: a shared class embedding and hierarchical latent ("skip-z"): z is split into one chunk
for the 4x4 input and one per up-block, and each block's conditional batch norms read
cat(shared(y), z_i). D: the ResNet discriminator with a projection head. Both are
class-conditional and orthogonally initialised. Widths are constant over the blocks
(BigGAN's channel multipliers are not modelled); spectral norm comes from the recipe.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..nn.attention import SelfAttention
from ..nn.conditional import ConditionalBatchNorm2d, check_labels, orthogonal_init_
from .registry import DISCRIMINATORS, GENERATORS
from .resnet import GBlock, ResNetDiscriminator, check_common, check_shape, res_conv

_NEEDS_CLASSES = "biggan is class-conditional; set model.conditional: true"


@GENERATORS.register("biggan")
class BigGANGenerator(nn.Module):
    """BigGAN generator (Brock et al. 2019, Sec. 3, App. B): shared embedding, skip-z into conditional BN, ResNet up-blocks."""

    _family = "biggan generator"

    def __init__(
        self,
        z_dim: int,
        shape: tuple[int, ...],
        num_classes: int = 0,
        width: int = 64,
        shared_dim: int = 32,
        attention: int = 0,
    ) -> None:
        super().__init__()
        c, log_size = check_shape(shape, self._family)
        if num_classes < 1:
            raise ConfigError(_NEEDS_CLASSES)
        resolutions = [2**k for k in range(3, log_size + 1)]
        check_common(self._family, width, num_classes, attention, resolutions)
        if shared_dim < 1:
            raise ConfigError(f"{self._family}: shared_dim must be >= 1, got {shared_dim}")
        n = len(resolutions)
        if z_dim < n + 1:
            raise ConfigError(
                f"{self._family}: z is split into {n + 1} chunks (the 4x4 input and {n} up-blocks), "
                f"so model.z_dim must be >= {n + 1}, got {z_dim}"
            )
        self.z_dim, self.num_classes, self.width = z_dim, num_classes, width
        # Equal-ish chunks (sizes differ by at most one) so that no dimension of z is dropped.
        self.chunks = [len(t) for t in torch.tensor_split(torch.arange(z_dim), n + 1)]
        self.shared = nn.Embedding(num_classes, shared_dim)
        self.linear = nn.Linear(self.chunks[0], 4 * 4 * width)
        self.blocks = nn.ModuleList()
        for r, chunk in zip(resolutions, self.chunks[1:]):
            cond_dim = shared_dim + chunk
            self.blocks.append(GBlock(width, width, functools.partial(ConditionalBatchNorm2d, cond_dim=cond_dim)))
            if r == attention:
                self.blocks.append(SelfAttention(width))
        self.out_bn = nn.BatchNorm2d(width)
        self.out_conv = res_conv(width, c, 3)
        orthogonal_init_(self)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        y = check_labels(y, self.num_classes, self._family)
        zs = torch.split(z.flatten(1), self.chunks, dim=1)
        shared = self.shared(y)
        h = self.linear(zs[0]).view(z.shape[0], self.width, 4, 4)
        i = 0
        for block in self.blocks:
            if isinstance(block, SelfAttention):
                h = block(h)
            else:
                i += 1
                h = block(h, torch.cat([shared, zs[i]], dim=1))
        return torch.tanh(self.out_conv(F.relu(self.out_bn(h))))


@DISCRIMINATORS.register("biggan")
class BigGANDiscriminator(ResNetDiscriminator):
    """BigGAN discriminator (Brock et al. 2019, App. B): ResNet down-blocks, projection head, orthogonal init."""

    _family = "biggan discriminator"

    def __init__(self, shape: tuple[int, ...], num_classes: int = 0, width: int = 64, attention: int = 0) -> None:
        if num_classes < 1:
            raise ConfigError(_NEEDS_CLASSES)
        super().__init__(shape, num_classes=num_classes, width=width, attention=attention)
        orthogonal_init_(self)
