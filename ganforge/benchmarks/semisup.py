"""Semi-supervised benchmark helpers: test accuracy of D's classifier and the labelled-only baseline (Salimans et al. 2016, Sec. 5).

The paper's comparison is the semi-supervised GAN's discriminator against the same
classifier trained on the labelled examples alone; `train_supervised_baseline` trains
that baseline with the GAN's D optimiser settings (Adam, beta1 = 0.5 in the authors'
code) and cross-entropy only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.subsets import balanced_subset
from ..errors import ConfigError

__all__ = ["balanced_subset", "random_shift", "test_accuracy", "train_supervised_baseline"]


def _device(net: nn.Module) -> torch.device:
    p = next(net.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def test_accuracy(D: nn.Module, dataset_test: Any, batch: int = 500) -> float:
    """Fraction of test examples whose argmax of D.classify is the label, D in eval mode (dropout off; mode restored).

    `dataset_test` is an ArrayDataset with labels (images served in [-1, 1]) or a pair
    (x in [-1, 1], y) of tensors.
    """
    classify = getattr(D, "classify", None)
    if not callable(classify):
        raise ConfigError(
            f"test_accuracy needs a discriminator with class logits (classify); {type(D).__name__} has none."
        )
    if isinstance(dataset_test, (tuple, list)):
        x_all, y_all = dataset_test
        n = len(x_all)

        def get(idx: Tensor) -> tuple[Tensor, Tensor]:
            return x_all[idx].float(), y_all[idx]
    else:
        if dataset_test.y is None:
            raise ConfigError(f"test_accuracy needs a labelled test set; {dataset_test.name!r} has no labels.")
        n = len(dataset_test)
        get = dataset_test.get
    if n == 0:
        raise ConfigError("test_accuracy needs a non-empty test set")
    device = _device(D)
    was_training = D.training
    D.eval()
    correct = 0
    try:
        for i in range(0, n, batch):
            x, y = get(torch.arange(i, min(i + batch, n)))
            pred = classify(x.to(device)).argmax(1).cpu()
            correct += int((pred == y.cpu()).sum())
    finally:
        D.train(was_training)
    return correct / n


def random_shift(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Translate each image by up to max_shift pixels in x and y, filling with the background value -1."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator).tolist()
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator).tolist()
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


def train_supervised_baseline(
    make_D: Callable[[], nn.Module],
    x_l: Tensor,
    y_l: Tensor,
    steps: int,
    batch: int,
    lr: float,
    seed: int,
    augment: bool = False,
    betas: tuple[float, float] = (0.5, 0.999),
    tol: float | None = None,
    decay_start: float | None = None,
    average: float | None = None,
) -> nn.Module:
    """The same classifier trained on the labelled examples alone with cross-entropy (the baseline of Salimans et al. 2016, Sec. 5).

    `steps` Adam updates on minibatches drawn from seeded permutations of (x_l, y_l); with
    `tol`, fewer once the moving average of the training loss falls below it. A network
    with `data_init` (weight norm) is first initialised from x_l, as the GAN's D is from
    real images; `decay_start` (a fraction of `steps`) decays the lr linearly to 0 from
    there, as the semi-supervised recipe does; with `average`, the network returned is the
    running average of its weights with that decay, as the semi-supervised game keeps of D.
    augment=True translates each image by up to 2 pixels. Returns the network in eval mode on
    x_l's device, with `baseline_steps` (the updates made) set on it.
    """
    if steps < 1 or batch < 1 or lr <= 0:
        raise ConfigError(
            f"train_supervised_baseline needs steps >= 1, batch >= 1 and lr > 0; got {steps}, {batch}, {lr}"
        )
    if len(x_l) != len(y_l) or len(x_l) == 0:
        raise ConfigError(f"x_l and y_l must be non-empty and of equal length, got {len(x_l)} and {len(y_l)}")
    torch.manual_seed(seed)  # the network's initialisation and dropout
    D = make_D().to(x_l.device)
    if not callable(getattr(D, "classify", None)):
        raise ConfigError(f"the baseline needs a network with class logits (classify); {type(D).__name__} has none.")
    init = getattr(D, "data_init", None)
    if callable(init):
        init(x_l.float())
    opt = torch.optim.Adam([p for p in D.parameters() if p.requires_grad], lr=lr, betas=betas)
    start = steps if decay_start is None else round(decay_start * steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: max(0.0, min(1.0, 1.0 - (i - start) / max(1, steps - start)))
    )
    g = torch.Generator().manual_seed(seed + 1)
    D.train()
    done = 0
    avg = None
    if average:
        from ..training.ema import make_ema

        avg = make_ema(D, average)
    n = len(x_l)
    order = torch.randperm(n, generator=g)
    at, loss_avg = 0, None
    for _ in range(steps):
        if at + min(batch, n) > n:  # a new epoch: a new permutation
            order, at = torch.randperm(n, generator=g), 0
        idx = order[at : at + min(batch, n)].to(x_l.device)
        at += min(batch, n)
        x, y = x_l[idx].float(), y_l[idx].long()
        if augment:
            x = random_shift(x.cpu(), 2, g).to(x_l.device)
        loss = F.cross_entropy(cast(Any, D).classify(x).float(), y)  # classify: checked above
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if avg is not None:
            avg.update_parameters(D)
        done += 1
        if tol is not None:
            value = float(loss.detach())
            loss_avg = value if loss_avg is None else 0.9 * loss_avg + 0.1 * value
            if loss_avg < tol:
                break
    out = avg.module if avg is not None else D
    cast(Any, out).baseline_steps = done  # a plain attribute: Module.__setattr__ is typed for tensors and modules
    return out.eval()


test_accuracy.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, whatever imports it
