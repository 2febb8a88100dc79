"""Tests of the metric functions: known closed forms, hand-made cases and reference implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError
from ganforge.metrics.classes import class_coverage
from ganforge.metrics.evaluate import StreamingIS
from ganforge.metrics.frechet import frechet_distance, frechet_distance_from_moments
from ganforge.metrics.kid import kid
from ganforge.metrics.memorisation import memorisation, memorisation_grid
from ganforge.metrics.modes import mixture_mode_metrics
from ganforge.metrics.msssim import ms_ssim, ms_ssim_diversity, ms_ssim_protocol
from ganforge.metrics.precision_recall import precision_recall
from ganforge.metrics.stats import StreamingMoments
from ganforge.metrics.swd import sliced_wasserstein


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # The test machines are shared: one torch / BLAS thread avoids oversubscription stalls that
    # make these small CPU workloads 10-50x slower (threadpoolctl comes with scikit-learn).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
    else:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(n)


def ring_centres() -> np.ndarray:
    angles = np.arange(8) * 2 * np.pi / 8
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def smooth_images(n: int, seed: int, size: int = 32, low: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, low, low, generator=g)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False).clamp(-1, 1)


# ---------------------------------------------------------------- streaming moments


def test_streaming_moments_match_batch_statistics_for_any_split_and_merge():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(1000, 6)) * np.arange(1, 7) + 100.0  # large mean: tests cancellation
    ref_mean, ref_cov = data.mean(axis=0), np.cov(data, rowvar=False)

    one = StreamingMoments(6)
    for lo, hi in [(0, 1), (1, 8), (8, 300), (300, 301), (301, 1000)]:
        one.update(torch.from_numpy(data[lo:hi]))
    assert one.n == 1000
    np.testing.assert_allclose(one.mean.numpy(), ref_mean, rtol=0, atol=1e-10)
    np.testing.assert_allclose(one.cov.numpy(), ref_cov, rtol=0, atol=1e-10)

    a, b = StreamingMoments(6), StreamingMoments(6)
    a.update(data[:123])  # numpy input
    b.update(data[123:500]).update(data[500:])
    b = StreamingMoments.from_state_dict(b.state_dict())  # as after a gather across processes
    a.merge(b).merge(StreamingMoments(6))  # merging an empty accumulator is a no-op
    assert a.n == 1000
    np.testing.assert_allclose(a.mean.numpy(), ref_mean, rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.cov.numpy(), ref_cov, rtol=0, atol=1e-10)
    assert all(isinstance(v, torch.Tensor) for v in a.state_dict().values())


def test_streaming_moments_reject_bad_input():
    m = StreamingMoments(3)
    with pytest.raises(GanforgeError):
        m.update(torch.zeros(4, 2))
    with pytest.raises(GanforgeError):
        m.cov  # noqa: B018 - fewer than 2 samples
    with pytest.raises(GanforgeError):
        m.merge(StreamingMoments(4))
    with pytest.raises(GanforgeError):
        StreamingMoments(0)


# ---------------------------------------------------------------- Frechet distance


def test_frechet_distance_closed_form_and_self():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 9.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)
    # Torch inputs give the same number.
    t = frechet_distance(torch.tensor(mu1), torch.tensor(np.diag(a)), torch.tensor(mu2), torch.tensor(np.diag(b)))
    assert t == pytest.approx(expected, rel=1e-12)

    # Full covariances: agrees with the reference sqrtm formula.
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = x @ x.T + np.eye(5), y @ y.T + np.eye(5)
    ref = np.trace(s1 + s2 - 2 * np.real(scipy.linalg.sqrtm(s1 @ s2)))
    assert frechet_distance(np.zeros(5), s1, np.zeros(5), s2) == pytest.approx(ref, rel=1e-9)

    # Large samples through the streaming moments approach the closed form.
    n = 200_000
    g = torch.Generator().manual_seed(0)
    xa = torch.randn(n, 3, generator=g, dtype=torch.float64) * torch.tensor(a).sqrt() + torch.tensor(mu1)
    xb = torch.randn(n, 3, generator=g, dtype=torch.float64) * torch.tensor(b).sqrt() + torch.tensor(mu2)
    ma, mb = StreamingMoments(3).update(xa), StreamingMoments(3).update(xb)
    assert frechet_distance_from_moments(ma, mb) == pytest.approx(expected, rel=0.02)
    assert frechet_distance_from_moments(ma, ma) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_near_singular_is_finite_and_non_negative():
    rng = np.random.default_rng(2)
    dim = 64
    for n in (10, 40):  # fewer samples than dimensions: rank-deficient covariances
        x, y = rng.normal(size=(n, dim)), rng.normal(size=(n, dim)) + 0.1
        fd = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
        assert isinstance(fd, float) and math.isfinite(fd) and fd >= 0
        same = frechet_distance(x.mean(0), np.cov(x, rowvar=False), x.mean(0), np.cov(x, rowvar=False))
        assert math.isfinite(same) and 0 <= same < 1e-6
    zero = np.zeros((dim, dim))
    assert frechet_distance(np.zeros(dim), zero, np.ones(dim), zero) == pytest.approx(dim)


def test_frechet_distance_rejects_bad_shapes():
    with pytest.raises(GanforgeError):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(GanforgeError):
        frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(GanforgeError):
        frechet_distance(np.zeros(3), np.full((3, 3), np.nan), np.zeros(3), np.eye(3))


# ---------------------------------------------------------------- KID


def test_kid_same_distribution_near_zero_and_shift_positive():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    mean, std = kid(a, b, num_subsets=20, subset_size=200)
    assert abs(mean) < 0.01 and std >= 0
    shifted, _ = kid(a, b + 1.0, num_subsets=20, subset_size=200)
    assert shifted > 0.5 and shifted > 20 * abs(mean)


def test_kid_subset_larger_than_n_and_too_few_samples():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(30, 8)), rng.normal(size=(50, 8))
    mean, std = kid(torch.from_numpy(a), b, num_subsets=5, subset_size=1000)
    assert math.isfinite(mean) and math.isfinite(std)
    with pytest.raises(GanforgeError):
        kid(a[:1], b)
    with pytest.raises(GanforgeError):
        kid(a, rng.normal(size=(50, 9)))


def test_kid_matches_torch_fidelity():
    tf_kid = pytest.importorskip("torch_fidelity.metric_kid")
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(120, 10)), rng.normal(size=(100, 10)) + 0.2
    ref = tf_kid.kid_features_to_metric(
        torch.from_numpy(a),
        torch.from_numpy(b),
        kid_subsets=10,
        kid_subset_size=50,
        kid_degree=3,
        kid_gamma=None,
        kid_coef0=1,
        rng_seed=7,
        verbose=False,
    )
    mean, std = kid(a, b, num_subsets=10, subset_size=50, seed=7)
    assert mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-9)
    assert std == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-9)


# ---------------------------------------------------------------- Inception score


def inception_score(logits: torch.Tensor, splits: int = 10, shuffle_seed: int | None = None) -> tuple[float, float]:
    """The engine's Inception Score of `logits`; shuffle_seed=2020 shuffles as torch-fidelity does."""
    if shuffle_seed is not None:
        logits = logits[torch.from_numpy(np.random.RandomState(shuffle_seed).permutation(len(logits)))]
    s = StreamingIS(len(logits), logits.shape[1], splits=splits)
    s.update(logits)
    return s.result()


def test_inception_score_extremes():
    mean, std = inception_score(torch.zeros(100, 10), splits=5)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)
    k = 10
    logits = torch.full((200, k), -1e4)
    logits[torch.arange(200), torch.arange(200) % k] = 1e4  # confident, balanced over K classes
    mean, _ = inception_score(logits, splits=10)
    assert mean == pytest.approx(k, rel=1e-9)
    # More splits than samples is clamped rather than producing empty splits.
    mean, _ = inception_score(logits[:3], splits=10)
    assert math.isfinite(mean)


def test_inception_score_matches_torch_fidelity():
    tf_isc = pytest.importorskip("torch_fidelity.metric_isc")
    # 100 samples: the engine's contiguous splits are torch-fidelity's when they divide the sample count.
    logits = torch.randn(100, 7, generator=torch.Generator().manual_seed(0)) * 3
    ref = tf_isc.isc_features_to_metric(logits, splits=4, shuffle=True, rng_seed=2020)
    mean, std = inception_score(logits, splits=4, shuffle_seed=2020)
    assert mean == pytest.approx(ref["inception_score_mean"], rel=1e-12)
    assert std == pytest.approx(ref["inception_score_std"], rel=1e-9)


# ---------------------------------------------------------------- precision / recall


def test_precision_recall_identical_and_disjoint():
    rng = np.random.default_rng(6)
    real = rng.normal(size=(300, 8))
    assert precision_recall(real, real.copy(), k=3, batch_size=64) == (1.0, 1.0)
    p, r = precision_recall(real, rng.normal(size=(300, 8)) + 100.0, k=3, batch_size=64)
    assert p == 0.0 and r == 0.0
    # Half the fakes on the real manifold, half far away: precision ~ 0.5.
    fake = np.concatenate([rng.normal(size=(150, 8)), rng.normal(size=(150, 8)) + 100.0])
    p, r = precision_recall(real, fake, k=3)
    assert 0.4 < p <= 0.5 and r > 0.5
    with pytest.raises(GanforgeError):
        precision_recall(real[:3], real, k=3)  # k neighbours need k + 1 samples


def test_precision_recall_batching_does_not_change_result():
    rng = np.random.default_rng(7)
    real, fake = rng.normal(size=(200, 5)), rng.normal(size=(180, 5)) * 1.5
    assert precision_recall(real, fake, k=5, batch_size=7) == precision_recall(real, fake, k=5, batch_size=10_000)


# ---------------------------------------------------------------- mixture modes


def test_mixture_mode_metrics_hand_made():
    c = ring_centres()
    res = mixture_mode_metrics(c, c, std=0.01)
    assert res == {
        "modes": 8,
        "num_modes": 8,
        "high_quality": 1.0,
        "kl": pytest.approx(0.0, abs=1e-12),
        "counts": [1] * 8,
    }

    one = mixture_mode_metrics(np.repeat(c[:1], 50, axis=0) + 0.005, c, std=0.01)
    assert one["modes"] == 1 and one["high_quality"] == 1.0
    assert one["kl"] == pytest.approx(math.log(8)) and one["counts"] == [50] + [0] * 7

    far = mixture_mode_metrics(np.full((20, 2), 10.0), c, std=0.01)
    assert far["modes"] == 0 and far["high_quality"] == 0.0 and far["kl"] == pytest.approx(math.log(8))

    # Three of four samples high quality (0.029 < 3 std, 0.031 > 3 std), covering two modes.
    pts = np.array([c[0] + [0.029, 0], c[0], c[2], c[2] + [0, 0.031]])
    res = mixture_mode_metrics(torch.tensor(pts), torch.tensor(c), std=0.01)
    assert res["modes"] == 2 and res["high_quality"] == 0.75 and res["counts"][0] == 2 and res["counts"][2] == 1
    p = np.array([2 / 3, 1 / 3])
    assert res["kl"] == pytest.approx(float(np.sum(p * np.log(p * 8))))

    with pytest.raises(GanforgeError):
        mixture_mode_metrics(np.zeros((5, 3)), c, std=0.01)
    with pytest.raises(GanforgeError):
        mixture_mode_metrics(c, c, std=0.0)


# ---------------------------------------------------------------- classes


def test_class_coverage_and_conditional_accuracy():
    res = class_coverage(torch.tensor([0, 1, 2, 3] * 5), num_classes=4)
    assert res["coverage"] == 1.0 and res["kl_uniform"] == pytest.approx(0.0, abs=1e-12)
    assert res["histogram"] == [5, 5, 5, 5]
    res = class_coverage(np.array([2, 2, 2]), num_classes=4)
    assert res["coverage"] == 0.25 and res["kl_uniform"] == pytest.approx(math.log(4))
    res = class_coverage([0, 0, 0, 1], num_classes=4)
    p = np.array([0.75, 0.25])
    assert res["coverage"] == 0.5 and res["kl_uniform"] == pytest.approx(float(np.sum(p * np.log(p * 4))))
    with pytest.raises(GanforgeError):
        class_coverage([0, 4], num_classes=4)
    with pytest.raises(GanforgeError):
        class_coverage([], num_classes=4)


# ---------------------------------------------------------------- memorisation


def test_memorisation_ratio_copies_vs_fresh_samples():
    rng = np.random.default_rng(8)
    train, heldout = rng.normal(size=(300, 8)), rng.normal(size=(200, 8))
    copies = train[rng.permutation(300)[:200]] + 1e-6 * rng.normal(size=(200, 8))
    res = memorisation(copies, train, heldout, k=3)
    assert res["ratio"] < 0.01 and res["ratio_median"] < 0.01
    assert res["gen_nn_index"].shape == (200, 3) and res["heldout_nn_dist"].shape == (200, 3)
    assert bool((res["gen_nn_dist"][:, 0] <= res["gen_nn_dist"][:, 1]).all())

    fresh = memorisation(rng.normal(size=(200, 8)), train, heldout)
    assert 0.85 < fresh["ratio"] < 1.15


def test_memorisation_grid_layout():
    g = torch.Generator().manual_seed(0)
    gen = torch.rand(5, 1, 8, 8, generator=g) * 2 - 1
    train = torch.rand(20, 1, 8, 8, generator=g) * 2 - 1
    res = memorisation(gen.flatten(1), train.flatten(1), train[:5].flatten(1), k=2)
    grid = memorisation_grid(gen, train, res["gen_nn_index"], n_rows=4)
    # 4 rows x (1 generated + 2 neighbours), 8px tiles with make_grid's 2px padding; grey -> 3 channels.
    assert grid.shape == (3, 4 * 10 + 2, 3 * 10 + 2)
    assert float(grid.min()) >= 0 and float(grid.max()) <= 1
    with pytest.raises(GanforgeError):
        memorisation_grid(gen, train, torch.full((5, 2), 99))


# ---------------------------------------------------------------- SWD


def test_sliced_wasserstein_same_different_and_deterministic():
    def noise(seed: int) -> torch.Tensor:
        return torch.rand(32, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1

    # Piecewise-constant 8x8 blocks: a Laplacian patch distribution far from that of noise.
    a, b, blocks = noise(0), noise(1), F.interpolate(noise(2)[:, :, :4, :4], size=32, mode="nearest")
    kw = dict(descriptors_per_image=64, dir_repeats=2, dirs_per_repeat=64, seed=3)

    same = sliced_wasserstein(a, a, **kw)
    assert same["resolutions"] == [32, 16] and len(same["swd_x1e3"]) == 2
    assert same["swd_x1e3_avg"] == pytest.approx(0.0, abs=1e-6)

    iid = sliced_wasserstein(a, b, **kw)["swd_x1e3_avg"]
    diff = sliced_wasserstein(a, blocks, **kw)
    # Two samples of one distribution are not at 0: SWD on a few thousand overlapping patches
    # has a sampling floor (ProGAN used 16k images); a different distribution is well above it.
    assert diff["swd_x1e3_avg"] > 1.5 * iid > 0
    assert sliced_wasserstein(a, blocks, **kw, batch_size=5) == diff  # deterministic, batch-independent
    assert sliced_wasserstein(a, blocks, **{**kw, "seed": 4})["swd_x1e3_avg"] != diff["swd_x1e3_avg"]

    with pytest.raises(GanforgeError):
        sliced_wasserstein(a, b[:10])
    with pytest.raises(GanforgeError):
        sliced_wasserstein(a[:, :, :8, :8], b[:, :, :8, :8])


# ---------------------------------------------------------------- MS-SSIM


def test_ms_ssim_identical_and_noise():
    a = smooth_images(8, seed=5)
    assert torch.allclose(ms_ssim(a, a), torch.ones(8))
    assert ms_ssim_diversity(a[:1].repeat(6, 1, 1, 1), n_pairs=20) == pytest.approx(1.0)
    noise = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(6)) * 2 - 1
    assert ms_ssim_diversity(noise, n_pairs=50) < 0.1
    assert ms_ssim_diversity(noise, n_pairs=50, seed=1) == ms_ssim_diversity(noise, n_pairs=50, seed=1)
    with pytest.raises(GanforgeError):
        ms_ssim_diversity(noise[:1])


def test_ms_ssim_protocol_for_small_images():
    p32 = ms_ssim_protocol(32, 32)
    assert p32["scales"] == 2 and sum(p32["weights"]) == pytest.approx(1.0)
    assert p32["weights"][0] == pytest.approx(0.0448 / (0.0448 + 0.2856))
    assert ms_ssim_protocol(256, 256)["weights"] == pytest.approx([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
    with pytest.raises(GanforgeError):
        ms_ssim_protocol(8, 8)
