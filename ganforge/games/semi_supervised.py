"""Semi-supervised GAN: D is a K-class classifier plus an implicit "fake" class (Salimans et al. 2016, arXiv:1606.03498, Sec. 5).

D's loss is L = L_supervised + L_unsupervised (Sec. 5):

    L_supervised   = -E_{x,y ~ labelled} log p(y | x, y < K+1)   (cross-entropy of D.classify)
    L_unsupervised = -E_x log D(x) - E_z log(1 - D(G(z)))         with D(x) = Z(x) / (Z(x) + 1)

so the unsupervised part is the standard objective on the logit log Z(x) (the ssgan
discriminator's forward). The labelled batch comes from a fixed class-balanced subset of
`labelled` training examples that the trainer builds (ctx.labelled_batch()). The
authors' code weighs the unsupervised term by 0.5 (loss_lab + 0.5 * (...)): the same
balance is supervised_weight = 2.0 here, up to Adam's near-invariance to the loss scale.
G is trained by feature matching in the paper's best semi-supervised results (Sec. 3.1):
set g_adversarial: false and add {name: feature_matching, net: g}.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from ..latent import LatentSpace
from .base import GameArgs, StepContext, register
from .standard import StandardGame


@register("semi_supervised")
class SemiSupervisedGame(StandardGame):
    """Standard unsupervised GAN loss on log Z(x) plus supervised_weight * CE on labelled data (Salimans et al. 2016, Sec. 5).

    Not for class-conditional models (supports_conditional is False): labels train D's
    classifier here, they do not condition G.
    """

    supports_conditional = False
    pack_refusal = "D classifies single samples."

    def __init__(self, args: GameArgs, labelled: int = 100, supervised_weight: float = 1.0) -> None:
        super().__init__(args)
        if isinstance(labelled, bool) or not isinstance(labelled, int) or labelled < 1:
            raise ConfigError(f"game semi_supervised: labelled (the number of labelled training examples) must be a "
                              f"positive integer, got {labelled!r}")
        if supervised_weight < 0:
            raise ConfigError(f"game semi_supervised: supervised_weight must be >= 0, got {supervised_weight}")
        self.labelled = labelled  # the trainer reads this to build the labelled subset
        self.supervised_weight = float(supervised_weight)
        self._checked = False

    def check(self, latent: LatentSpace, dataset: Any) -> None:
        """Refuse, before training, a dataset with more classes than labelled examples."""
        super().check(latent, dataset)
        self.check_classes(dataset.num_classes)

    def check_classes(self, num_classes: int) -> None:
        """Refuse fewer labelled examples than classes (ConfigError): every class needs at least one."""
        if self.labelled < num_classes:
            raise ConfigError(f"game semi_supervised: labelled={self.labelled} is fewer than the {num_classes} classes; "
                              f"every class needs labelled examples (the paper uses 100 for 10 classes).")

    def supervised_loss(self, ctx: StepContext) -> tuple[Tensor, dict[str, Tensor]]:
        """Cross-entropy of D's class logits on one labelled batch, and its accuracy."""
        classify = getattr(ctx.D, "classify", None)
        if not callable(classify):
            raise ConfigError(f"game semi_supervised needs a discriminator with class logits (classify), e.g. "
                              f"discriminator: {{name: ssgan}}; {type(ctx.D).__name__} has none.")
        x, y = ctx.labelled_batch()
        if y is None:
            raise ConfigError("game semi_supervised needs a labelled dataset (the batch came without labels).")
        with ctx.autocast():
            logits = classify(self.d_input(x)).float()
        if not self._checked:
            k = logits.shape[1]
            self.check_classes(k)
            if int(y.min()) < 0 or int(y.max()) >= k:
                raise ConfigError(f"labels in [{int(y.min())}, {int(y.max())}] do not fit the discriminator's {k} "
                                  f"classes (discriminator args: classes).")
            self._checked = True
        ce = F.cross_entropy(logits, y.long())
        acc = (logits.argmax(1) == y).float().mean()
        return ce, {"sup_ce": ce.detach(), "sup_acc": acc.detach()}

    def d_loss(self, ctx: StepContext, real: Tensor, fake: Tensor, y: Tensor | None = None,
               z: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """L_unsupervised (the objective on log Z(x)) plus D's penalties, plus supervised_weight * L_supervised."""
        loss, logs = super().d_loss(ctx, real, fake, y, z)
        if self.supervised_weight == 0:
            return loss, logs
        ce, slogs = self.supervised_loss(ctx)
        return loss + self.supervised_weight * ce, {**logs, **slogs}
