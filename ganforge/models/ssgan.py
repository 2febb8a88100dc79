"""Semi-supervised GAN discriminator: a K-class classifier whose real/fake logit is log Z(x) (Salimans et al. 2016, Sec. 5).

After the paper's CIFAR-10 discriminator (authors' code, train_cifar_feature_matching.py),
scaled down (96/192 channels -> width/2*width):

    dropout 0.2 | conv3x3 w, conv3x3 w, conv3x3 s2 w | dropout 0.5 |
    conv3x3 2w, conv3x3 2w, conv3x3 s2 2w | dropout 0.5 |
    conv3x3 2w (no padding), 1x1 2w, 1x1 2w | global average pool | linear to K

with LeakyReLU(0.2) after every convolution. The authors use weight normalisation with a
data-dependent initialisation on every layer; here it is optional (weight_norm: true)
and initialised as PyTorch does (no batch norm either way, as in the paper: D's
statistics must not mix real, fake and labelled batches).

With K class logits l_1..l_K and the fake class's logit fixed at l_{K+1} = 0,
D(x) = Z(x) / (Z(x) + 1) with Z(x) = sum_k exp(l_k), so the real/fake logit that the
usual objectives take is log Z(x) = logsumexp_k l_k (Sec. 5).
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm as _weight_norm

from ..errors import ConfigError
from .registry import DISCRIMINATORS

LEAK = 0.2  # nn.lrelu in the authors' code


@DISCRIMINATORS.register("ssgan")
class SSGANDiscriminator(nn.Module):
    """K-class conv classifier with D's logit = logsumexp of the class logits (Salimans et al. 2016, Sec. 5)."""

    def __init__(self, shape: tuple[int, ...], classes: int = 10, width: int = 64, dropout: bool = True,
                 weight_norm: bool = False) -> None:
        super().__init__()
        if len(shape) != 3:
            raise ConfigError(f"ssgan needs image data of shape (C, H, W), got {tuple(shape)}")
        c, h, w = shape
        if min(h, w) < 12:
            raise ConfigError(f"ssgan needs images of at least 12x12 (two stride-2 stages and a 3x3 valid "
                              f"convolution), got {h}x{w}")
        if classes < 2:
            raise ConfigError(f"ssgan classes must be >= 2, got {classes}")
        if width < 1:
            raise ConfigError(f"ssgan width must be >= 1, got {width}")
        self.classes = int(classes)
        wn = _weight_norm if weight_norm else (lambda m: m)

        def conv(cin: int, cout: int, k: int = 3, stride: int = 1, pad: int = 1) -> list[nn.Module]:
            return [wn(nn.Conv2d(cin, cout, k, stride, pad)), nn.LeakyReLU(LEAK)]

        def drop(p: float) -> list[nn.Module]:
            return [nn.Dropout(p)] if dropout else []

        w2 = 2 * width
        self.body = nn.Sequential(
            *drop(0.2),
            *conv(c, width), *conv(width, width), *conv(width, width, stride=2),
            *drop(0.5),
            *conv(width, w2), *conv(w2, w2), *conv(w2, w2, stride=2),
            *drop(0.5),
            *conv(w2, w2, pad=0), *conv(w2, w2, k=1, pad=0), *conv(w2, w2, k=1, pad=0),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.fc = wn(nn.Linear(w2, self.classes))
        self.feature_dim = w2

    def features(self, x: Tensor) -> Tensor:
        """The globally pooled features (N, 2*width): the layer the paper's feature matching uses."""
        return self.body(x)

    def classify(self, x: Tensor) -> Tensor:
        """Class logits (N, K); the fake class's logit is implicitly 0."""
        return self.fc(self.body(x))

    def forward(self, x: Tensor) -> Tensor:
        # log Z(x): the logit of D(x) = Z / (Z + 1) with l_{K+1} = 0 (Sec. 5).
        return self.classify(x).float().logsumexp(1)
