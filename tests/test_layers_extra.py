"""Minibatch discrimination and virtual batch norm (Salimans et al. 2016, Sec. 3.2 and 3.5)."""

from __future__ import annotations

import pytest
import torch

from ganforge.nn import MinibatchDiscrimination, VirtualBatchNorm


def test_mbd_shape_and_out_features() -> None:
    torch.manual_seed(0)
    mbd = MinibatchDiscrimination(6, kernels=4, dims=3)
    y = mbd(torch.randn(5, 6))
    assert y.shape == (5, 10) and mbd.out_features == 10


def test_mbd_input_passes_through_unchanged() -> None:
    torch.manual_seed(0)
    x = torch.randn(5, 6)
    assert torch.equal(MinibatchDiscrimination(6, 4, 3)(x)[:, :6], x)


def test_mbd_identical_rows_count_the_others() -> None:
    torch.manual_seed(0)
    n = 7
    x = torch.randn(1, 6).repeat(n, 1)
    o = MinibatchDiscrimination(6, kernels=4, dims=3)(x)[:, 6:]
    torch.testing.assert_close(o, torch.full((n, 4), float(n - 1)))


def test_mbd_far_row_is_isolated() -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 6)
    x[2] *= 1000.0
    o = MinibatchDiscrimination(6, kernels=4, dims=3)(x)[:, 6:]
    assert o[2].abs().max() < 1e-6
    assert (o[torch.arange(6) != 2] > 1e-3).all()


def test_mbd_single_row_is_zero() -> None:
    torch.manual_seed(0)
    o = MinibatchDiscrimination(6, kernels=4, dims=3)(torch.randn(1, 6))[:, 6:]
    assert torch.equal(o, torch.zeros(1, 4))


def test_mbd_matches_pairwise_loop() -> None:
    torch.manual_seed(0)
    mbd = MinibatchDiscrimination(3, kernels=2, dims=2)
    x = torch.randn(4, 3)
    m = (x @ mbd.T).view(4, 2, 2)
    want = torch.zeros(4, 2)
    for i in range(4):
        for j in range(4):
            if i != j:
                want[i] += torch.exp(-(m[i] - m[j]).abs().sum(-1))
    torch.testing.assert_close(mbd(x)[:, 3:], want)


def test_mbd_gradient_reaches_t() -> None:
    torch.manual_seed(0)
    mbd = MinibatchDiscrimination(6, kernels=4, dims=3)
    mbd(torch.randn(5, 6))[:, 6:].sum().backward()
    assert mbd.T.grad is not None and mbd.T.grad.abs().sum() > 0


def test_vbn_example_output_independent_of_other_examples() -> None:
    torch.manual_seed(0)
    vbn = VirtualBatchNorm(5, n_ref=8)
    ref, a, b = torch.randn(8, 5), torch.randn(1, 5), torch.randn(3, 5) * 10 + 4
    out_ab = vbn(torch.cat([ref, a, b]))
    out_a = vbn(torch.cat([ref, a]))
    torch.testing.assert_close(out_ab[8], out_a[8])
    torch.testing.assert_close(out_ab[:8], out_a[:8])


def test_vbn_example_output_independent_of_other_examples_4d() -> None:
    torch.manual_seed(0)
    vbn = VirtualBatchNorm(3, n_ref=4)
    ref, a, b = torch.randn(4, 3, 5, 5), torch.randn(1, 3, 5, 5), torch.randn(2, 3, 5, 5) * 5 - 2
    torch.testing.assert_close(vbn(torch.cat([ref, a, b]))[4], vbn(torch.cat([ref, a]))[4])


def test_vbn_reference_rows_are_standardised() -> None:
    torch.manual_seed(0)
    vbn = VirtualBatchNorm(5, n_ref=16)
    x = torch.randn(20, 5) * 3 + 7
    ref_out = vbn(x)[:16]
    torch.testing.assert_close(ref_out.mean(0), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(ref_out.var(0, unbiased=False), torch.ones(5), atol=1e-3, rtol=0)


def test_vbn_reference_channels_are_standardised_4d() -> None:
    torch.manual_seed(0)
    vbn = VirtualBatchNorm(3, n_ref=4)
    x = torch.randn(6, 3, 4, 4) * 2 - 1
    y = vbn(x)
    assert y.shape == x.shape
    ref_out = y[:4]
    torch.testing.assert_close(ref_out.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(ref_out.var((0, 2, 3), unbiased=False), torch.ones(3), atol=1e-3, rtol=0)


def test_vbn_example_matches_hand_computation_2d() -> None:
    # One feature, reference {0, 2}: mu_ref = 1, ms_ref = 2; example x = 4, a = 1/3.
    # mean = 4/3 + 2/3 = 2, meansq = 16/3 + 4/3 = 20/3, var = 20/3 - 4 = 8/3.
    vbn = VirtualBatchNorm(1, n_ref=2, eps=0.0)
    x = torch.tensor([[0.0], [2.0], [4.0]])
    y = vbn(x)
    torch.testing.assert_close(y[2, 0], torch.tensor((4.0 - 2.0) / (8.0 / 3.0) ** 0.5))
    torch.testing.assert_close(y[:2, 0], torch.tensor([-1.0, 1.0]))


def test_vbn_example_matches_openai_formula_4d() -> None:
    torch.manual_seed(0)
    n_ref, eps = 3, 1e-5
    vbn = VirtualBatchNorm(2, n_ref=n_ref, eps=eps)
    with torch.no_grad():
        vbn.gamma.copy_(torch.tensor([2.0, 0.5]))
        vbn.beta.copy_(torch.tensor([0.1, -0.3]))
    x = torch.randn(5, 2, 3, 3)
    ref = x[:n_ref]
    a = 1.0 / (n_ref + 1)
    mu_ref, ms_ref = ref.mean((0, 2, 3), keepdim=True), (ref**2).mean((0, 2, 3), keepdim=True)
    ex = x[n_ref:]
    mean = a * ex.mean((2, 3), keepdim=True) + (1 - a) * mu_ref
    meansq = a * (ex**2).mean((2, 3), keepdim=True) + (1 - a) * ms_ref
    want = (ex - mean) / torch.sqrt(meansq - mean**2 + eps) * vbn.gamma.view(1, -1, 1, 1) + vbn.beta.view(1, -1, 1, 1)
    torch.testing.assert_close(vbn(x)[n_ref:], want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("n", [3, 4])
def test_vbn_needs_an_example_row(n: int) -> None:
    with pytest.raises(ValueError):
        VirtualBatchNorm(2, n_ref=4)(torch.randn(n, 2))


def test_vbn_gradients_reach_params_input_and_reference() -> None:
    torch.manual_seed(0)
    vbn = VirtualBatchNorm(3, n_ref=4)
    x = torch.randn(6, 3, requires_grad=True)
    w = torch.randn(6, 3)
    (vbn(x) * w).sum().backward()
    assert vbn.gamma.grad is not None and vbn.gamma.grad.abs().sum() > 0
    assert vbn.beta.grad is not None and vbn.beta.grad.abs().sum() > 0
    assert x.grad is not None and x.grad[:4].abs().sum() > 0 and x.grad[4:].abs().sum() > 0
    # Example outputs depend on the reference rows through the recomputed statistics.
    x2 = x.detach().clone().requires_grad_(True)
    vbn(x2)[4:].sum().backward()
    assert x2.grad[:4].abs().sum() > 0
