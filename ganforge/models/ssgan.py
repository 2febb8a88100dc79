"""Semi-supervised GAN discriminator: a K-class classifier whose real/fake logit is log Z(x) (Salimans et al. 2016, Sec. 5).

After the paper's CIFAR-10 discriminator (authors' code, train_cifar_feature_matching.py),
scaled down (96/192 channels -> width/2*width):

    dropout 0.2 | conv3x3 w, conv3x3 w, conv3x3 s2 w | dropout 0.5 |
    conv3x3 2w, conv3x3 2w, conv3x3 s2 2w | dropout 0.5 |
    conv3x3 2w (no padding), 1x1 2w, 1x1 2w | global average pool | linear to K

with LeakyReLU(0.2) after every convolution. As in the authors' code, every layer is
weight-normalised (weight_norm: true, the default) and initialised from data
(`data_init`, Salimans & Kingma 2016, Sec. 3; the semi-supervised game calls it on its
first step): hidden layers start with unit-spread outputs and keep that scale fixed, the
output layer starts at spread 0.1 and learns its scale. Without it, PyTorch's default
initialisation shrinks the signal through the nine convolutions until the class logits
hardly depend on the input, and training the classifier on few labels went backwards.
No batch norm either way, as in the paper: D's statistics must not mix real, fake and
labelled batches. `input_noise` > 0 replaces the input dropout by additive Gaussian noise
(the authors' MNIST network), which, unlike dropout on a -1 background, does not turn
dropped pixels grey.

With K class logits l_1..l_K and the fake class's logit fixed at l_{K+1} = 0,
D(x) = Z(x) / (Z(x) + 1) with Z(x) = sum_k exp(l_k), so the real/fake logit that the
usual objectives take is log Z(x) = logsumexp_k l_k (Sec. 5).
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..nn.weight_norm import data_dependent_init, weight_normed_layers
from ..nn.weight_norm import weight_norm as _weight_norm
from .registry import DISCRIMINATORS

LEAK = 0.2  # nn.lrelu in the authors' code


class GaussianNoise(nn.Module):
    """x + N(0, std^2) in training mode, x in eval mode (the authors' GaussianNoiseLayer)."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = float(std)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.std * torch.randn_like(x) if self.training and self.std > 0 else x


class _Classifier(nn.Module):
    """What both semi-supervised discriminators share: data init, class logits from `body` then `_head()`, log Z(x)."""

    weight_norm: bool
    body: nn.Module

    def _head(self) -> nn.Module:
        raise NotImplementedError

    @torch.no_grad()
    def data_init(self, x: Tensor) -> int:
        """Data-dependent initialisation of the weight-normed layers from real images `x` (Salimans & Kingma 2016,
        Sec. 3), in training mode as the authors (openai/improved-gan); the number of layers set (0 without weight
        norm). The caller runs it once, before the first update (the semi-supervised game does)."""
        if not self.weight_norm:
            return 0
        was_training = self.training
        self.train()
        try:
            return data_dependent_init(self, x.float())
        finally:
            self.train(was_training)

    def features(self, x: Tensor) -> Tensor:
        """The layer the paper's feature matching reads (see each discriminator)."""
        return self.body(x)

    def classify(self, x: Tensor) -> Tensor:
        """Class logits (N, K); the fake class's logit is implicitly 0."""
        return self._head()(self.body(x))

    def forward(self, x: Tensor) -> Tensor:
        # log Z(x): the logit of D(x) = Z / (Z + 1) with l_{K+1} = 0 (Sec. 5).
        return self.classify(x).float().logsumexp(1)


@DISCRIMINATORS.register("ssgan")
class SSGANDiscriminator(_Classifier):
    """K-class conv classifier with D's logit = logsumexp of the class logits (Salimans et al. 2016, Sec. 5)."""

    def __init__(
        self,
        shape: tuple[int, ...],
        classes: int = 10,
        width: int = 64,
        dropout: bool = True,
        weight_norm: bool = True,
        input_noise: float = 0.0,
    ) -> None:
        super().__init__()
        if len(shape) != 3:
            raise ConfigError(f"ssgan needs image data of shape (C, H, W), got {tuple(shape)}")
        c, h, w = shape
        if min(h, w) < 12:
            raise ConfigError(
                f"ssgan needs images of at least 12x12 (two stride-2 stages and a 3x3 valid convolution), got {h}x{w}"
            )
        if classes < 2:
            raise ConfigError(f"ssgan classes must be >= 2, got {classes}")
        if width < 1:
            raise ConfigError(f"ssgan width must be >= 1, got {width}")
        if not 0.0 <= float(input_noise) < 10.0:
            raise ConfigError(
                f"ssgan input_noise (the std of Gaussian noise added to D's input) must be in [0, 10), "
                f"got {input_noise}"
            )
        self.classes = int(classes)
        self.weight_norm = bool(weight_norm)
        self.input_noise = float(input_noise)

        def wn(m: nn.Module, scale: float = 1.0) -> nn.Module:
            return _weight_norm(m, init_scale=scale) if weight_norm else m

        def conv(cin: int, cout: int, k: int = 3, stride: int = 1, pad: int = 1) -> list[nn.Module]:
            return [wn(nn.Conv2d(cin, cout, k, stride, pad)), nn.LeakyReLU(LEAK)]

        def drop(p: float) -> list[nn.Module]:
            return [nn.Dropout(p)] if dropout else []

        w2 = 2 * width
        head = [GaussianNoise(self.input_noise)] if self.input_noise > 0 else drop(0.2)
        self.body = nn.Sequential(
            *head,
            *conv(c, width),
            *conv(width, width),
            *conv(width, width, stride=2),
            *drop(0.5),
            *conv(width, w2),
            *conv(w2, w2),
            *conv(w2, w2, stride=2),
            *drop(0.5),
            *conv(w2, w2, pad=0),
            *conv(w2, w2, k=1, pad=0),
            *conv(w2, w2, k=1, pad=0),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.fc = wn(nn.Linear(w2, self.classes), 0.1)
        self.feature_dim = w2
        # The hidden layers' scales g are set by data_init and then fixed, as in the authors' code; only the
        # output layer learns its scale. Fixed from the start, so a resumed run's optimiser sees the same parameters.
        for m in weight_normed_layers(self.body):  # `parametrizations`: set by torch at run time, unseen by mypy
            cast(Any, m).parametrizations.weight.original0.requires_grad_(False)

    def _head(self) -> nn.Module:
        return self.fc


MLP_HIDDEN = (1000, 500, 250, 250, 250)  # the authors' MNIST discriminator


@DISCRIMINATORS.register("ssgan_mlp")
class SSGANMLPDiscriminator(_Classifier):
    """The paper's MNIST classifier (Salimans et al. 2016, Sec. 5.1; train_mnist_feature_matching.py) as a D.

    Gaussian noise on the input (`input_noise`; the authors' 0.3 on [0, 1] pixels is 0.6 on ganforge's
    [-1, 1]), then fully connected ReLU layers of `hidden` units, each followed by Gaussian noise of std
    `noise` (0.5), and a linear layer to K class logits. Every layer is weight-normalised and initialised from
    data (hidden scales then fixed, the output's trainable), as the authors' DenseLayer. `features` is the last
    hidden layer before its noise, the layer their feature matching reads. D's logit is log Z(x), as `ssgan`.
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        classes: int = 10,
        hidden: tuple[int, ...] | list[int] = MLP_HIDDEN,
        input_noise: float = 0.6,
        noise: float = 0.5,
        weight_norm: bool = True,
    ) -> None:
        super().__init__()
        if classes < 2:
            raise ConfigError(f"ssgan_mlp classes must be >= 2, got {classes}")
        hidden = [int(h) for h in hidden]
        if not hidden or min(hidden) < 1:
            raise ConfigError(f"ssgan_mlp hidden must be a non-empty list of positive layer widths, got {hidden}")
        for name, v in (("input_noise", input_noise), ("noise", noise)):
            if not 0.0 <= float(v) < 10.0:
                raise ConfigError(f"ssgan_mlp {name} (a Gaussian noise std) must be in [0, 10), got {v}")
        self.classes = int(classes)
        self.weight_norm = bool(weight_norm)

        def wn(m: nn.Module) -> nn.Module:
            return _weight_norm(m) if weight_norm else m

        layers: list[nn.Module] = [nn.Flatten(), GaussianNoise(float(input_noise))]
        width = 1
        for d in shape:
            width *= int(d)
        for i, h in enumerate(hidden):
            if i:
                layers.append(GaussianNoise(float(noise)))
            layers += [wn(nn.Linear(width, h)), nn.ReLU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(GaussianNoise(float(noise)), wn(nn.Linear(width, self.classes)))
        self.feature_dim = width
        for m in weight_normed_layers(self.body):  # hidden scales fixed after data_init (train_scale=False)
            cast(Any, m).parametrizations.weight.original0.requires_grad_(False)

    def _head(self) -> nn.Module:
        return self.head
