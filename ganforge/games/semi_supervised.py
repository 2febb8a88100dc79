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

import torch
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

    def __init__(
        self,
        args: GameArgs,
        labelled: int = 100,
        supervised_weight: float = 1.0,
        init_examples: int = 500,
        average: float = 0.999,
    ) -> None:
        super().__init__(args)
        if not 0.0 <= float(average) < 1.0:
            raise ConfigError(
                f"game semi_supervised: average (the decay of the running average of D's weights used "
                f"for testing; 0 = none) must be in [0, 1), got {average!r}"
            )
        if isinstance(init_examples, bool) or not isinstance(init_examples, int) or init_examples < 0:
            raise ConfigError(
                f"game semi_supervised: init_examples (real images for D's data-dependent "
                f"initialisation; 0 = none) must be a non-negative integer, got {init_examples!r}"
            )
        if isinstance(labelled, bool) or not isinstance(labelled, int) or labelled < 1:
            raise ConfigError(
                f"game semi_supervised: labelled (the number of labelled training examples) must be a "
                f"positive integer, got {labelled!r}"
            )
        if supervised_weight < 0:
            raise ConfigError(f"game semi_supervised: supervised_weight must be >= 0, got {supervised_weight}")
        self.labelled = labelled  # the trainer reads this to build the labelled subset
        self.supervised_weight = float(supervised_weight)
        self.init_examples = init_examples
        self.d_initialised = init_examples == 0
        self.average = float(average)
        self._avg: Any = None  # AveragedModel of D, made at the first step
        self._avg_state: dict[str, Any] | None = None  # from a checkpoint, until D is at hand
        self._checked = False

    def step(self, ctx: StepContext) -> dict[str, Tensor]:
        """The standard step; before the first one, D's data-dependent initialisation (Salimans & Kingma 2016)."""
        if not self.d_initialised:
            self.initialise_d(ctx)
        logs = super().step(ctx)
        if self.average:
            self._average(ctx.D).update_parameters(ctx.D)
        return logs

    def _average(self, D: Any) -> Any:
        if self._avg is None:
            from ..training.ema import make_ema

            self._avg = make_ema(D, self.average)
            if self._avg_state is not None:
                self._avg.load_state_dict(self._avg_state)
                self._avg_state = None
        return self._avg

    def averaged_discriminator(self, D: Any) -> Any:
        """D with the running average of its weights (decay `average`, ramped up at the start), in eval mode: the
        classifier the authors test (openai/improved-gan keeps such an average of D's parameters); D itself when
        the game keeps no average or has not stepped yet."""
        if not self.average or (self._avg is None and self._avg_state is None):
            return D
        return self._average(D).module.eval()

    def initialise_d(self, ctx: StepContext) -> None:
        """D.data_init on `init_examples` real images (the authors use 500), where D has one (weight norm)."""
        init = getattr(ctx.D, "data_init", None)
        if callable(init):
            xs, n = [], 0
            while n < self.init_examples:
                x = ctx.real_batch()[0]
                xs.append(x)
                n += x.shape[0]
            with torch.no_grad():
                init(torch.cat(xs)[: self.init_examples])
            ctx.share_from_first_rank(ctx.D)  # every rank starts from rank 0's initialisation
        self.d_initialised = True

    def state_dict(self) -> dict[str, Any]:
        avg = self._avg.state_dict() if self._avg is not None else self._avg_state
        return {**super().state_dict(), "d_initialised": self.d_initialised, "d_average": avg}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._avg, self._avg_state = None, state.get("d_average")
        # A checkpoint from before this flag existed was trained past its first step: no initialisation then.
        self.d_initialised = bool(state.get("d_initialised", True))

    def check(self, latent: LatentSpace, dataset: Any) -> None:
        """Refuse, before training, a dataset with more classes than labelled examples."""
        super().check(latent, dataset)
        self.check_classes(dataset.num_classes)

    def check_classes(self, num_classes: int) -> None:
        """Refuse fewer labelled examples than classes (ConfigError): every class needs at least one."""
        if self.labelled < num_classes:
            raise ConfigError(
                f"game semi_supervised: labelled={self.labelled} is fewer than the {num_classes} classes; "
                f"every class needs labelled examples (the paper uses 100 for 10 classes)."
            )

    def supervised_loss(self, ctx: StepContext) -> tuple[Tensor, dict[str, Tensor]]:
        """Cross-entropy of D's class logits on one labelled batch, and its accuracy."""
        classify = getattr(ctx.D, "classify", None)
        if not callable(classify):
            raise ConfigError(
                f"game semi_supervised needs a discriminator with class logits (classify), e.g. "
                f"discriminator: {{name: ssgan}}; {type(ctx.D).__name__} has none."
            )
        x, y = ctx.labelled_batch()
        if y is None:
            raise ConfigError("game semi_supervised needs a labelled dataset (the batch came without labels).")
        with ctx.autocast():
            logits = classify(self.d_input(x)).float()
        if not self._checked:
            k = logits.shape[1]
            self.check_classes(k)
            if int(y.min()) < 0 or int(y.max()) >= k:
                raise ConfigError(
                    f"labels in [{int(y.min())}, {int(y.max())}] do not fit the discriminator's {k} "
                    f"classes (discriminator args: classes)."
                )
            self._checked = True
        ce = F.cross_entropy(logits, y.long())
        acc = (logits.argmax(1) == y).float().mean()
        return ce, {"sup_ce": ce.detach(), "sup_acc": acc.detach()}

    def d_loss(
        self, ctx: StepContext, real: Tensor, fake: Tensor, y: Tensor | None = None, z: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """L_unsupervised (the objective on log Z(x)) plus D's penalties, plus supervised_weight * L_supervised."""
        loss, logs = super().d_loss(ctx, real, fake, y, z)
        if self.supervised_weight == 0:
            return loss, logs
        ce, slogs = self.supervised_loss(ctx)
        return loss + self.supervised_weight * ce, {**logs, **slogs}
