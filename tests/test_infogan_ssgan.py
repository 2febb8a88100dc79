"""InfoGAN (Chen et al. 2016) and the semi-supervised GAN (Salimans et al. 2016, Sec. 5): networks, losses, games, metrics, figures."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.benchmarks import semisup
from ganforge.data.subsets import balanced_subset
from ganforge.errors import ConfigError
from ganforge.figures.infogan import latent_traversal_figure
from ganforge.games import build_game, build_regularizers
from ganforge.games.infogan import HALF_LOG_2PI, InfoGANGame, info_loss
from ganforge.games.semi_supervised import SemiSupervisedGame
from ganforge.latent import LatentSpace
from ganforge.metrics.mutual_information import (
    best_mapping_accuracy,
    infogan_code_report,
    majority_mapping,
    mutual_information_bits,
)
from ganforge.models import build_discriminator, build_generator

SHAPE = (1, 16, 16)


class FakeCtx:
    """The step context the trainer gives games, reduced to what these games use; counts labelled batches."""

    def __init__(
        self, G: nn.Module, D: nn.Module, latent_space: LatentSpace, batch: int = 8, classes: int = 10, seed: int = 0
    ) -> None:
        self.G, self.D = G, D
        self.opt_g = torch.optim.Adam(G.parameters(), 1e-3, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(D.parameters(), 1e-3, betas=(0.5, 0.999))
        self.batch_size = batch
        self.device = torch.device("cpu")
        self.latent_space = latent_space
        self.classes = classes
        self.gen = torch.Generator().manual_seed(seed)
        self.labelled_calls = 0

    def real_batch(self) -> tuple[Tensor, Tensor]:
        x = torch.rand(self.batch_size, *SHAPE, generator=self.gen) * 2 - 1
        return x, torch.randint(0, self.classes, (self.batch_size,), generator=self.gen)

    def labelled_batch(self) -> tuple[Tensor, Tensor]:
        self.labelled_calls += 1
        return self.real_batch()

    def sample_latent(self, n: int) -> Any:
        return self.latent_space.sample(n, generator=self.gen)

    def noise(self, n: int) -> Tensor:
        return self.sample_latent(n).z

    def autocast(self) -> Any:
        return contextlib.nullcontext()

    def share_from_first_rank(self, net: nn.Module) -> None:
        self.shared = getattr(self, "shared", 0) + 1

    @contextlib.contextmanager
    def frozen(self, net: nn.Module) -> Any:
        ps = [p for p in net.parameters() if p.requires_grad]
        for p in ps:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in ps:
                p.requires_grad_(True)

    def step_d(self, loss: Tensor, restore: Any = None) -> None:
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()

    def step_g(self, loss: Tensor, ema: bool = True, restore: Any = None) -> None:
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()


def params(net: nn.Module) -> list[Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def changed(before: list[Tensor], net: nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))


def tiny_infogan(latent: LatentSpace, shape: tuple[int, ...] = SHAPE) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    G = build_generator("infogan", latent.input_dim, shape, {"width": 8, "fc": 32})
    D = build_discriminator(
        "infogan", shape, {"width": 8, "fc": 32, "categorical": latent.categorical, "continuous": latent.continuous}
    )
    return G, D


# ----------------------------------------------------------------------------- InfoGAN networks


def test_infogan_shapes_and_one_trunk_pass() -> None:
    ls = LatentSpace(62, categorical=[10], continuous=2)
    assert ls.input_dim == 74
    G = build_generator("infogan", ls.input_dim, (1, 32, 32), {})
    D = build_discriminator("infogan", (1, 32, 32), {"categorical": [10], "continuous": 2})
    x = G(ls.sample(4).z)
    assert x.shape == (4, 1, 32, 32) and x.abs().max() <= 1
    assert D(x).shape == (4,) and D.features(x).shape == (4, 1024)
    calls = []
    D.trunk.register_forward_hook(lambda m, i, o: calls.append(1))
    D.eval()
    logits, cats, mean, logstd = D.forward_q(x)
    assert len(calls) == 1  # D's logit and Q's outputs come from one pass through the shared trunk
    assert logits.shape == (4,) and len(cats) == 1 and cats[0].shape == (4, 10)
    assert mean.shape == (4, 2) and logstd.shape == (4, 2)
    assert torch.allclose(logits, D(x))
    plain = build_discriminator("infogan", (1, 32, 32), {})
    assert plain.q is None and plain(x).shape == (4,)
    with pytest.raises(ConfigError):
        plain.forward_q(x)


@pytest.mark.parametrize("shape", [(1, 12, 12), (1, 8, 8), (1, 32, 16), (32,)])
def test_infogan_refuses_bad_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError):
        build_generator("infogan", 10, shape, {})
    with pytest.raises(ConfigError):
        build_discriminator("infogan", shape, {})


# ----------------------------------------------------------------------------- the information term


def test_info_loss_is_minimal_when_q_recovers_the_codes() -> None:
    g = torch.Generator().manual_seed(0)
    cats = torch.randint(0, 10, (64,), generator=g)
    cont = torch.rand(64, 2, generator=g) * 2 - 1
    perfect = [50.0 * F.one_hot(cats, 10).float()]
    loss, logs = info_loss(perfect, [cats], cont.clone(), None, cont, 1.0, 1.0)
    # CE ~ 0 and the Gaussian NLL (std 1) is its constant part only: 2 dims x 0.5 log(2 pi).
    assert float(logs["info_cat"]) < 1e-6
    assert float(logs["info_cont"]) == pytest.approx(2 * HALF_LOG_2PI, abs=1e-6)
    assert float(loss) == pytest.approx(2 * HALF_LOG_2PI, abs=1e-5)
    assert float(logs["info_acc"]) == 1.0
    # A learnt log-std of 0 is the same Gaussian.
    same, _ = info_loss(perfect, [cats], cont.clone(), torch.zeros(64, 2), cont, 1.0, 1.0)
    assert float(same) == pytest.approx(float(loss), abs=1e-6)
    # Wrong codes cost more, in both parts.
    wrong_cat = [50.0 * F.one_hot((cats + 1) % 10, 10).float()]
    worse, wlogs = info_loss(wrong_cat, [cats], -cont, None, cont, 1.0, 1.0)
    assert float(worse) > float(loss) + 10 and float(wlogs["info_acc"]) == 0.0
    assert float(wlogs["info_cont"]) > float(logs["info_cont"])
    # Uninformative Q: CE = log K.
    _, ulogs = info_loss([torch.zeros(64, 10)], [cats], None, None, None, 1.0, 0.1)
    assert float(ulogs["info_cat"]) == pytest.approx(math.log(10), abs=1e-5)
    # The lambdas weigh the two parts.
    half, _ = info_loss(perfect, [cats], cont.clone(), None, cont, 1.0, 0.5)
    assert float(half) == pytest.approx(HALF_LOG_2PI, abs=1e-5)
    with pytest.raises(ConfigError):
        info_loss(perfect, [], None, None, None)


# ----------------------------------------------------------------------------- the InfoGAN game


def test_infogan_game_step_trains_d_q_and_g() -> None:
    ls = LatentSpace(6, categorical=[10], continuous=2)
    G, D = tiny_infogan(ls)
    game = build_game("infogan", "non_saturating", {}, 1, {"lambda_cat": 1.0, "lambda_cont": 0.5})
    assert isinstance(game, InfoGANGame) and getattr(game, "labelled", 0) == 0  # no labelled subset
    ctx = FakeCtx(G, D, ls)
    g0, d0, q0 = params(G), params(D), params(D.q)
    logs = game.step(ctx)
    assert changed(g0, G) and changed(d0, D) and changed(q0, D.q)
    for k in ("info_cat", "info_cont", "info_acc", "d_loss", "g_loss", "g_info"):
        assert k in logs and torch.isfinite(logs[k])
    assert 0.0 <= float(logs["info_acc"]) <= 1.0
    # G's step goes through the frozen D/Q: D does not move.
    d1 = params(D)
    game.g_step(ctx)
    assert not changed(d1, D)


def test_infogan_game_raises_the_information_term_when_trained() -> None:
    # Q and G cooperate on L_I: a few steps of the full game lower Q's cross-entropy on the fakes.
    ls = LatentSpace(4, categorical=[4])
    G, D = tiny_infogan(ls)
    game = build_game("infogan", "non_saturating", {}, 1, {"lambda_cat": 1.0})
    ctx = FakeCtx(G, D, ls, batch=32)
    first = float(game.step(ctx)["info_cat"])
    for _ in range(10):
        last = float(game.step(ctx)["info_cat"])
    assert last < first - 0.3  # from log 4 = 1.39 to about 0.5 in 10 steps


def test_infogan_game_refusals() -> None:
    with pytest.raises(ConfigError, match="pack"):
        build_game("infogan", "non_saturating", {}, 1, {"pack": 2})
    with pytest.raises(ConfigError):
        build_game("infogan", "non_saturating", {}, 1, {"lambda_cat": -1.0})
    game = build_game("infogan", "non_saturating", {}, 1, {})
    ls = LatentSpace(6)  # no codes
    G, D = tiny_infogan(ls)
    with pytest.raises(ConfigError, match="latent codes"):
        game.step(FakeCtx(G, D, ls))
    with pytest.raises(ConfigError):
        InfoGANGame.check_latent(ls)
    coded = LatentSpace(6, categorical=[10], continuous=2)
    G2 = build_generator("infogan", coded.input_dim, SHAPE, {"width": 8, "fc": 32})
    dc = build_discriminator("dcgan", SHAPE, {"width": 8})
    with pytest.raises(ConfigError, match="Q head"):
        build_game("infogan", "non_saturating", {}, 1, {}).step(FakeCtx(G2, dc, coded))
    _, wrong = tiny_infogan(LatentSpace(6, categorical=[5], continuous=2))
    with pytest.raises(ConfigError, match="latent space has"):
        build_game("infogan", "non_saturating", {}, 1, {}).step(FakeCtx(G2, wrong, coded))


# ----------------------------------------------------------------------------- the semi-supervised GAN


def tiny_ssgan(classes: int = 10) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    G = build_generator("dcgan", 8, SHAPE, {"width": 8})
    D = build_discriminator("ssgan", SHAPE, {"classes": classes, "width": 8})
    return G, D


def test_ssgan_logit_is_logsumexp_of_the_class_logits() -> None:
    _, D = tiny_ssgan()
    x = torch.rand(5, *SHAPE) * 2 - 1
    D.eval()  # dropout off, so both calls see the same network
    logits = D.classify(x)
    assert logits.shape == (5, 10)
    assert torch.allclose(D(x), logits.logsumexp(1), atol=1e-6)
    # D(x) = Z / (Z + 1), i.e. sigmoid(log Z), with the fake class's logit fixed at 0.
    z = logits.exp().sum(1)
    assert torch.allclose(torch.sigmoid(D(x)), z / (z + 1), atol=1e-6)
    assert D.features(x).shape == (5, 16)
    wn = build_discriminator("ssgan", (3, 32, 32), {"weight_norm": True, "dropout": False})
    assert wn(torch.zeros(2, 3, 32, 32)).shape == (2,)
    with pytest.raises(ConfigError):
        build_discriminator("ssgan", (1, 8, 8), {})


def test_semi_supervised_game_uses_labelled_batches_and_feature_matching() -> None:
    G, D = tiny_ssgan()
    regs = build_regularizers([{"name": "feature_matching", "net": "g"}])
    game = build_game("semi_supervised", "non_saturating", {}, 2, {"labelled": 100, "g_adversarial": False}, regs)
    assert isinstance(game, SemiSupervisedGame) and game.labelled == 100
    ctx = FakeCtx(G, D, LatentSpace(8))
    g0, d0 = params(G), params(D)
    logs = game.step(ctx)
    assert ctx.labelled_calls == 2  # one labelled batch per D update (n_critic = 2), none in G's step
    assert changed(g0, G) and changed(d0, D)
    assert "reg/g_feature_matching" in logs and float(logs["g_adv"]) == 0.0
    assert float(logs["sup_ce"]) > 0 and 0.0 <= float(logs["sup_acc"]) <= 1.0
    # The adversarial G loss on log Z(x) works too.
    game2 = build_game("semi_supervised", "non_saturating", {}, 1, {"supervised_weight": 0.5})
    assert "sup_ce" in game2.step(ctx) and ctx.labelled_calls == 3


def test_semi_supervised_supervised_term_is_the_cross_entropy() -> None:
    G, D = tiny_ssgan()
    game = build_game("semi_supervised", "non_saturating", {}, 1, {"supervised_weight": 3.0})
    ctx = FakeCtx(G, D, LatentSpace(8))
    D.eval()
    fixed = ctx.real_batch()
    ctx.labelled_batch = lambda: fixed  # type: ignore[method-assign]
    ce, _logs = game.supervised_loss(ctx)
    with torch.no_grad():
        expected = float(F.cross_entropy(D.classify(fixed[0]), fixed[1]))
    assert float(ce.detach()) == pytest.approx(expected, abs=1e-6)
    real, fake = ctx.real_batch()[0], ctx.real_batch()[0]
    total, _ = game.d_loss(ctx, real, fake)
    unsup, _ = SemiSupervisedGame.__mro__[1].d_loss(game, ctx, real, fake)
    assert float(total.detach()) == pytest.approx(float(unsup.detach()) + 3.0 * float(ce.detach()), abs=1e-5)


def test_weight_norm_data_dependent_init_standardises_every_layer() -> None:
    # Salimans & Kingma 2016, Sec. 3: after the init, each layer's output on the init batch has mean 0 and spread s.
    from ganforge.nn.weight_norm import data_dependent_init, weight_norm

    torch.manual_seed(0)
    net = nn.Sequential(
        weight_norm(nn.Conv2d(1, 6, 3, padding=1)),
        nn.LeakyReLU(0.2),
        weight_norm(nn.Conv2d(6, 5, 3, stride=2, padding=1)),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        weight_norm(nn.Linear(5 * 8 * 8, 4), init_scale=0.1),
    )
    x = torch.randn(64, *SHAPE) * 3 + 1
    assert data_dependent_init(net, x) == 3
    outs = {}
    for i in (0, 2, 5):
        net[i].register_forward_hook(lambda m, a, o, i=i: outs.__setitem__(i, o.detach()))
    with torch.no_grad():
        net(x)
    for i, s in ((0, 1.0), (2, 1.0), (5, 0.1)):
        dims = [d for d in range(outs[i].dim()) if d != 1]
        assert outs[i].mean(dims).abs().max() < 1e-4
        assert torch.allclose(outs[i].std(dims, unbiased=False), torch.full((outs[i].shape[1],), s), rtol=1e-3)
    with pytest.raises(ValueError, match="bias"):
        weight_norm(nn.Linear(3, 3, bias=False))


def test_ssgan_discriminator_is_initialised_from_data_before_the_first_step() -> None:
    # With PyTorch's default init the nine weight-normed layers shrank the signal until the class logits hardly
    # depended on the input (spread 3e-5 on Fashion-MNIST): the classifier learnt badly from few labels.
    torch.manual_seed(0)
    G = build_generator("dcgan", 8, SHAPE, {"width": 8})
    D = build_discriminator("ssgan", SHAPE, {"classes": 10, "width": 8, "input_noise": 0.3})
    hidden = [m.parametrizations.weight.original0 for m in D.body.modules() if hasattr(m, "parametrizations")]
    assert len(hidden) == 9 and not any(g.requires_grad for g in hidden)  # fixed scales, as the authors
    assert D.fc.parametrizations.weight.original0.requires_grad
    assert not any(isinstance(m, nn.Dropout) for m in D.body[:1])  # input noise replaces the input dropout
    ctx = FakeCtx(G, D, LatentSpace(8), batch=32)
    x = ctx.real_batch()[0]
    D.eval()
    with torch.no_grad():
        before = float(D.classify(x).std(0).mean())
    game = build_game("semi_supervised", "non_saturating", {}, 1, {"labelled": 100, "init_examples": 64})
    assert not game.d_initialised
    game.step(ctx)
    assert game.d_initialised and ctx.shared == 1  # initialised once, then shared from rank 0
    D.eval()
    with torch.no_grad():
        after = float(D.classify(x).std(0).mean())
    assert after > 100 * before and after > 0.01
    game.step(ctx)
    assert ctx.shared == 1
    state = game.state_dict()
    fresh = build_game("semi_supervised", "non_saturating", {}, 1, {"labelled": 100})
    fresh.load_state_dict(state)
    assert fresh.d_initialised  # a resumed run is not initialised again
    fresh.load_state_dict({"d_updates": 5})  # a checkpoint from before the flag: trained already
    assert fresh.d_initialised
    with pytest.raises(ConfigError, match="init_examples"):
        build_game("semi_supervised", "non_saturating", {}, 1, {"init_examples": -1})
    with pytest.raises(ConfigError, match="input_noise"):
        build_discriminator("ssgan", SHAPE, {"input_noise": -0.1})


def test_semi_supervised_game_tests_a_running_average_of_d() -> None:
    # The authors test an average of D's weights: the last weights' accuracy swung by 15 points between checkpoints.
    G, D = tiny_ssgan()
    ctx = FakeCtx(G, D, LatentSpace(8), batch=16)
    game = build_game(
        "semi_supervised", "non_saturating", {}, 1, {"labelled": 100, "init_examples": 16, "average": 0.5}
    )
    assert game.averaged_discriminator(D) is D  # nothing averaged before the first step
    game.step(ctx)
    first = {k: v.clone() for k, v in D.state_dict().items()}
    game.step(ctx)
    avg = game.averaged_discriminator(D)
    assert avg is not D and not avg.training
    # The first update copies D; the second keeps min(0.5, (1 + 1) / (10 + 1)) = 2/11 of the old average.
    for k, v in avg.state_dict().items():
        if v.is_floating_point():
            want = 2 / 11 * first[k] + 9 / 11 * D.state_dict()[k]
            assert torch.allclose(v, want, atol=1e-6), k
    state = game.state_dict()
    again = build_game("semi_supervised", "non_saturating", {}, 1, {"labelled": 100, "average": 0.5})
    again.load_state_dict(state)
    assert all(
        torch.equal(a, b)
        for a, b in zip(again.averaged_discriminator(D).state_dict().values(), avg.state_dict().values())
    )
    off = build_game("semi_supervised", "non_saturating", {}, 1, {"labelled": 100, "average": 0.0})
    off.step(ctx)
    assert off.averaged_discriminator(D) is D
    with pytest.raises(ConfigError, match="average"):
        build_game("semi_supervised", "non_saturating", {}, 1, {"average": 1.0})


def test_ssgan_mlp_is_the_authors_mnist_classifier_initialised_from_data() -> None:
    from ganforge.models.ssgan import GaussianNoise

    # train_mnist_feature_matching.py: noise 0.3 (on [0, 1] pixels), 1000-500-250-250-250 ReLU units with noise 0.5
    # after each, 10 logits; every layer weight-normed and set from data; the hidden scales fixed.
    D = build_discriminator("ssgan_mlp", SHAPE, {"classes": 10})
    linears = [m for m in D.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [1000, 500, 250, 250, 250, 10]
    assert sum(isinstance(m, GaussianNoise) for m in D.modules()) == 6 and D.feature_dim == 250
    frozen = [m.parametrizations.weight.original0.requires_grad for m in linears]
    assert frozen == [False] * 5 + [True]  # train_scale only on the output layer
    torch.manual_seed(0)
    x = torch.rand(200, *SHAPE) * 2 - 1
    assert D.data_init(x) == 6
    D.eval()
    with torch.no_grad():
        h = D.features(x)
        logits = D.classify(x)
    assert h.shape == (200, 250) and logits.shape == (200, 10)
    assert logits.std(0).min() > 0.1  # the logits depend on the input from the first step (PyTorch init: ~1e-3)
    assert torch.allclose(D(x), logits.logsumexp(1), atol=1e-5)
    with pytest.raises(ConfigError, match="hidden"):
        build_discriminator("ssgan_mlp", SHAPE, {"hidden": []})


def test_ssgan_input_noise_is_on_in_training_only() -> None:
    from ganforge.models.ssgan import GaussianNoise

    noise = GaussianNoise(0.5)
    x = torch.zeros(1000, 4)
    assert noise(x).std().item() == pytest.approx(0.5, rel=0.05)
    assert torch.equal(noise.eval()(x), x)


def test_semi_supervised_refusals() -> None:
    G, D = tiny_ssgan()
    game = build_game("semi_supervised", "non_saturating", {}, 1, {"labelled": 5})
    with pytest.raises(ConfigError, match="fewer than the 10 classes"):
        game.step(FakeCtx(G, D, LatentSpace(8)))
    for bad in ({"labelled": 0}, {"pack": 2}, {"supervised_weight": -1.0}):
        with pytest.raises(ConfigError):
            build_game("semi_supervised", "non_saturating", {}, 1, bad)
    dc = build_discriminator("dcgan", SHAPE, {"width": 8})
    with pytest.raises(ConfigError, match="classify"):
        build_game("semi_supervised", "non_saturating", {}, 1, {}).step(FakeCtx(G, dc, LatentSpace(8)))


def test_balanced_subset_is_balanced_and_seeded() -> None:
    labels = torch.arange(1000) % 10
    a = balanced_subset(labels, 100, seed=3)
    assert a.numel() == 100 and torch.equal(torch.bincount(labels[a]), torch.full((10,), 10))
    assert torch.equal(a, balanced_subset(labels, 100, seed=3))
    assert not torch.equal(a, balanced_subset(labels, 100, seed=4))
    assert torch.equal(a, a.unique())  # sorted, no repeats
    for bad in (95, 5, 0):
        with pytest.raises(ConfigError):
            balanced_subset(labels, bad, seed=0)
    with pytest.raises(ConfigError, match="only"):
        balanced_subset(torch.tensor([0] * 50 + [1] * 3), 10, seed=0)


def test_supervised_baseline_and_test_accuracy() -> None:
    # Two trivially separable classes (dark vs bright images): the labelled-only classifier fits them.
    g = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 2
    x = (y.float() * 1.2 - 0.6).view(-1, 1, 1, 1) + 0.1 * torch.randn(40, *SHAPE, generator=g)

    def make_D() -> nn.Module:
        return build_discriminator("ssgan", SHAPE, {"classes": 2, "width": 4})

    D = semisup.train_supervised_baseline(
        make_D, x[:10], y[:10], steps=20, batch=10, lr=3e-3, seed=0, augment=True, decay_start=0.5
    )
    assert not D.training
    assert D.baseline_steps == 20  # no early stop unless asked: the GAN's D gets all its updates too
    avg = semisup.train_supervised_baseline(make_D, x[:10], y[:10], steps=20, batch=10, lr=3e-3, seed=0, average=0.9)
    assert avg.baseline_steps == 20 and not avg.training and semisup.test_accuracy(avg, (x[10:], y[10:])) == 1.0
    # `average` returns the running average of the weights, not the last ones (it was silently dropped once).
    last = semisup.train_supervised_baseline(make_D, x[:10], y[:10], steps=20, batch=10, lr=3e-3, seed=0)
    assert any(not torch.equal(a, b) for a, b in zip(avg.state_dict().values(), last.state_dict().values()))
    # `tol` stops early on the smoothed loss, also with `average` (the two once shared a variable and crashed).
    early = semisup.train_supervised_baseline(
        make_D, x[:10], y[:10], steps=200, batch=10, lr=3e-3, seed=0, average=0.9, tol=0.5
    )
    assert early.baseline_steps < 200 and not early.training
    acc = semisup.test_accuracy(D, (x[10:], y[10:]), batch=7)
    assert acc == 1.0
    untrained = make_D()
    assert 0.0 <= semisup.test_accuracy(untrained, (x, y)) <= 1.0 and untrained.training  # mode restored
    with pytest.raises(ConfigError):
        semisup.test_accuracy(build_discriminator("dcgan", SHAPE, {"width": 8}), (x, y))


# ----------------------------------------------------------------------------- mutual information


def test_mutual_information_hand_cases() -> None:
    a = torch.arange(1000) % 8
    assert mutual_information_bits(a, a) == pytest.approx(3.0, abs=1e-9)  # log2 K for K uniform classes
    assert mutual_information_bits(a, (a + 3) % 8) == pytest.approx(3.0, abs=1e-9)  # relabelling changes nothing
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 10, (200_000,), generator=g)
    z = torch.randint(0, 10, (200_000,), generator=g)
    assert mutual_information_bits(x, z) < 2e-3  # independent (plug-in bias ~ 81 / (2 N ln 2))
    six = torch.arange(600) % 6
    assert mutual_information_bits(six, six % 3) == pytest.approx(math.log2(3), abs=1e-9)  # = H(b)
    skew = torch.tensor([0, 0, 0, 1])  # H = 0.811 bits
    assert mutual_information_bits(skew, skew) == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))
    assert mutual_information_bits([1, 1, 1], [0, 1, 2]) == 0.0
    assert best_mapping_accuracy([0, 0, 0, 1, 1, 2], [5, 5, 7, 6, 6, 9]) == pytest.approx(5 / 6)
    assert majority_mapping([0, 0, 1, 1], [3, 4, 4, 4]) == {0: 3, 1: 4}  # tie -> smallest class
    with pytest.raises(ConfigError):
        mutual_information_bits([0, 1], [0, 1, 2])


class CodeEcho(nn.Module):
    """A 'generator' whose image is filled with the value of the first categorical code."""

    def __init__(self, z_dim: int) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, z: Tensor) -> Tensor:
        code = z[:, self.z_dim : self.z_dim + 10].argmax(1).float()
        return code.view(-1, 1, 1, 1).expand(-1, 1, 4, 4) + self.dummy


def test_infogan_code_report_on_a_code_that_is_the_class() -> None:
    ls = LatentSpace(3, categorical=[10, 3], continuous=1)
    rep = infogan_code_report(CodeEcho(3), ls, lambda im: (im[:, 0, 0, 0].long() + 3) % 10, n_per_value=20)
    assert rep["mi_bits"] == pytest.approx(math.log2(10)) and rep["max_bits"] == pytest.approx(math.log2(10))
    assert rep["accuracy_after_mapping"] == 1.0
    assert rep["mapping"] == {v: (v + 3) % 10 for v in range(10)}
    assert sum(map(sum, rep["confusion"])) == 200 and rep["confusion"][0][3] == 20
    constant = infogan_code_report(CodeEcho(3), ls, lambda im: torch.zeros(len(im), dtype=torch.long), n_per_value=5)
    assert constant["mi_bits"] == 0.0 and constant["accuracy_after_mapping"] == 1.0
    with pytest.raises(ConfigError):
        infogan_code_report(CodeEcho(3), LatentSpace(3, continuous=2), lambda im: im)


# ----------------------------------------------------------------------------- figure and recipes


def test_latent_traversal_figure_writes_a_png(tmp_path: Path) -> None:
    ls = LatentSpace(6, categorical=[3], continuous=2)
    G, _ = tiny_infogan(ls)
    G.train()
    p = latent_traversal_figure(G, ls, tmp_path / "sub" / "traversal.png", steps=4, continuous_index=1)
    assert p.exists() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert G.training  # mode restored
    cat_only = LatentSpace(6, categorical=[3])
    G2, _ = tiny_infogan(cat_only)
    assert latent_traversal_figure(G2, cat_only, tmp_path / "cat.png", steps=3).exists()
    with pytest.raises(ConfigError):
        latent_traversal_figure(G, ls, tmp_path / "x.png", code=1)
    with pytest.raises(ConfigError):
        latent_traversal_figure(G, ls, tmp_path / "x.png", continuous_index=2)


@pytest.mark.parametrize(
    "name,steps", [("infogan-fashion", 3000), ("ssgan-conv-fashion", 3000), ("ssgan-fashion", 9600)]
)
def test_recipes_load(name: str, steps: int) -> None:
    from ganforge.config import load_recipe

    r = load_recipe(name)
    assert r.source and r.description
    assert r.data.name == "fashion_mnist" and r.train.steps == steps
