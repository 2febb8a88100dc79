"""ResNet / BigGAN families, conditional normalisation, projection head, self-attention and the attention figure."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.figures.attention import attention_map_figure
from ganforge.models import build_discriminator, build_generator
from ganforge.models.biggan import BigGANGenerator
from ganforge.nn.attention import SelfAttention
from ganforge.nn.conditional import ClassConditionalBatchNorm2d, ConditionalBatchNorm2d, ProjectionHead
from ganforge.nn.spectral import apply_spectral_norm
from ganforge.regularizers import orthogonal_penalty

W = 8  # tiny widths keep every test well under a second on the CPU


def _case_ids(case: tuple) -> str:
    return "-".join(str(v) for v in case)


CASES = [
    # family, shape, num_classes, attention
    (fam, shape, k, att)
    for fam in ("resnet", "biggan")
    for shape, att_res in (((1, 32, 32), 16), ((3, 16, 16), 8))
    for k in ((0, 3) if fam == "resnet" else (3,))
    for att in (0, att_res)
]


@pytest.mark.parametrize("sn", [False, True])
@pytest.mark.parametrize("case", CASES, ids=_case_ids)
def test_shapes(case: tuple, sn: bool) -> None:
    fam, shape, k, att = case
    torch.manual_seed(0)
    # The trainer passes num_classes beside the recipe's args, and only for a conditional model.
    extras = {"num_classes": k} if k else {}
    G = build_generator(fam, 12, shape, {"width": W, "attention": att}, **extras)
    D = build_discriminator(fam, shape, {"width": W, "attention": att}, **extras)
    if sn:
        apply_spectral_norm(G), apply_spectral_norm(D)
    z = torch.randn(4, 12)
    y = torch.randint(0, k, (4,)) if k else None
    x = G(z, y)
    assert x.shape == (4, *shape)
    assert x.abs().max() <= 1
    logits = D(x, y)
    assert logits.shape == (4,)
    assert D.features(x).shape == (4, W)
    logits.sum().backward()  # the whole graph is differentiable, spectral norm included
    assert sum(isinstance(m, SelfAttention) for m in G.modules()) == (1 if att else 0)
    assert sum(isinstance(m, SelfAttention) for m in D.modules()) == (1 if att else 0)


def test_resnet_d_matches_sngan_layout() -> None:
    # 32x32: optimized down-block, down-block, then two blocks at 8x8 (Miyato et al. 2018, Table 4).
    D = build_discriminator("resnet", (3, 32, 32), {"width": W})
    assert [(b.down, b.optimized) for b in D.blocks] == [(True, True), (True, False), (False, False), (False, False)]
    G = build_generator("resnet", 16, (3, 32, 32), {"width": W})
    assert len(G.blocks) == 3


def test_missing_labels_raise() -> None:
    G = build_generator("resnet", 8, (1, 16, 16), {"width": W}, num_classes=3)
    D = build_discriminator("resnet", (1, 16, 16), {"width": W}, num_classes=3)
    with pytest.raises(ValueError, match="class-conditional"):
        G(torch.randn(2, 8))
    with pytest.raises(ValueError, match="class-conditional"):
        D(torch.randn(2, 1, 16, 16))


def test_class_conditional_bn_equals_bn_with_class_affine() -> None:
    torch.manual_seed(0)
    ccbn = ClassConditionalBatchNorm2d(5, 4).train()
    nn.init.normal_(ccbn.gamma.weight)
    nn.init.normal_(ccbn.beta.weight)
    x = torch.randn(6, 5, 3, 3)
    for k in range(4):
        bn = nn.BatchNorm2d(5).train()
        with torch.no_grad():
            bn.weight.copy_(ccbn.gamma.weight[k])
            bn.bias.copy_(ccbn.beta.weight[k])
        y = torch.full((6,), k, dtype=torch.long)
        torch.testing.assert_close(ccbn(x, y), bn(x))


def test_conditional_bn_starts_as_plain_bn() -> None:
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(5, 7).train()
    assert cbn.gain.weight.abs().sum() == 0 and cbn.bias.weight.abs().sum() == 0
    x, c = torch.randn(6, 5, 3, 3), torch.randn(6, 7)
    torch.testing.assert_close(cbn(x, c), nn.BatchNorm2d(5, affine=False).train()(x))
    # Non-zero linears give per-sample scales and shifts: out = bn(x) * (1 + gain(c)) + bias(c).
    nn.init.normal_(cbn.gain.weight)
    nn.init.normal_(cbn.bias.weight)
    ref = (
        nn.BatchNorm2d(5, affine=False).train()(x) * (1 + c @ cbn.gain.weight.t())[:, :, None, None]
        + (c @ cbn.bias.weight.t())[:, :, None, None]
    )
    torch.testing.assert_close(cbn(x, c), ref)


def test_projection_head_by_hand() -> None:
    torch.manual_seed(0)
    head = ProjectionHead(6, 3)
    phi, y = torch.randn(5, 6), torch.tensor([0, 2, 1, 2, 0])
    ref = phi @ head.linear.weight[0] + head.linear.bias[0] + (head.embed.weight[y] * phi).sum(1)
    torch.testing.assert_close(head(phi, y), ref)
    plain = ProjectionHead(6, 0)
    assert plain.embed is None
    torch.testing.assert_close(plain(phi), phi @ plain.linear.weight[0] + plain.linear.bias[0])


def test_self_attention_identity_rows_and_by_hand() -> None:
    torch.manual_seed(0)
    att = SelfAttention(16, reduction=4)
    x = torch.randn(2, 16, 4, 5)
    torch.testing.assert_close(att(x), x)  # gamma = 0 at init
    assert att.last_attention is None
    att.record = True
    att(x)
    a = att.last_attention
    assert a.shape == (2, 20, 20) and not a.requires_grad
    torch.testing.assert_close(a.sum(-1), torch.ones(2, 20))
    with torch.no_grad():
        att.gamma.fill_(1.0)
    out = att(x)
    # By hand: beta = softmax_keys(g(x)^T f(x)); o = v(h(x) beta^T); y = x + o.
    flat = lambda conv: conv(x).flatten(2)  # noqa: E731
    beta = torch.softmax(flat(att.g).transpose(1, 2) @ flat(att.f), dim=-1)
    torch.testing.assert_close(beta, att.last_attention)
    o = (flat(att.h) @ beta.transpose(1, 2)).view(2, 4, 4, 5)
    torch.testing.assert_close(out, x + att.v(o))


def test_biggan_orthogonal_init() -> None:
    torch.manual_seed(0)
    G = BigGANGenerator(12, (1, 16, 16), num_classes=3, width=W)
    conv = G.blocks[0].conv1  # (8, 8*9): rows <= columns, so orthonormal rows
    assert conv.weight.shape[0] <= conv.weight[0].numel()
    default = nn.Conv2d(W, W, 3)
    assert orthogonal_penalty(conv) < 1e-6 * orthogonal_penalty(default)
    w = conv.weight.flatten(1)
    torch.testing.assert_close(w @ w.t(), torch.eye(W), atol=1e-5, rtol=0)


def test_biggan_skip_z_and_labels() -> None:
    torch.manual_seed(0)
    G = BigGANGenerator(12, (1, 32, 32), num_classes=3, width=W).eval()
    assert G.chunks == [3, 3, 3, 3] and sum(G.chunks) == 12
    z, y = torch.randn(2, 12), torch.tensor([0, 1])
    base = G(z, y)
    for i in range(len(G.chunks)):
        z2 = z.clone()
        lo = sum(G.chunks[:i])
        z2[:, lo : lo + G.chunks[i]] += 1.0
        assert not torch.allclose(G(z2, y), base), f"chunk {i} has no effect"
    assert not torch.allclose(G(z, torch.tensor([2, 2])), base)
    # Uneven split: 13 dims over 4 chunks, none dropped.
    assert BigGANGenerator(13, (1, 32, 32), num_classes=3, width=W).chunks == [4, 3, 3, 3]


def test_resnet_conditional_g_depends_on_labels() -> None:
    torch.manual_seed(0)
    G = build_generator("resnet", 8, (1, 16, 16), {"width": W}, num_classes=3).eval()
    for bn in G.modules():
        if isinstance(bn, ClassConditionalBatchNorm2d):
            nn.init.normal_(bn.gamma.weight)
    z = torch.randn(2, 8)
    assert not torch.allclose(G(z, torch.tensor([0, 0])), G(z, torch.tensor([1, 1])))


@pytest.mark.parametrize(
    "kind, name, shape, args, k, match",
    [
        ("g", "resnet", (1, 32, 32), {"attention": 4}, 0, "attention resolution"),
        ("d", "resnet", (1, 32, 32), {"attention": 32}, 0, "attention resolution"),
        ("g", "biggan", (1, 32, 32), {"attention": 12}, 3, "attention resolution"),
        ("g", "biggan", (1, 32, 32), {}, 0, "class-conditional"),
        ("d", "biggan", (1, 32, 32), {}, 0, "class-conditional"),
        ("g", "resnet", (1, 24, 24), {}, 0, "power-of-two"),
        ("d", "resnet", (1, 32, 16), {}, 0, "power-of-two"),
        ("d", "biggan", (1, 4, 4), {}, 3, "power-of-two"),
        ("g", "resnet", (32,), {}, 0, r"\(C, H, W\)"),
        ("g", "resnet", (1, 16, 16), {"width": 0}, 0, "width"),
        ("g", "resnet", (1, 16, 16), {"depth": 3}, 0, "depth"),
    ],
)
def test_invalid_args_raise(kind: str, name: str, shape: tuple, args: dict, k: int, match: str) -> None:
    extras = {"num_classes": k} if k else {}
    with pytest.raises(ConfigError, match=match):
        if kind == "g":
            build_generator(name, 16, shape, args, **extras)
        else:
            build_discriminator(name, shape, args, **extras)


def test_biggan_z_too_small() -> None:
    with pytest.raises(ConfigError, match="z_dim must be >= 4"):
        build_generator("biggan", 3, (1, 32, 32), {}, num_classes=3)


def test_attention_map_figure(tmp_path) -> None:
    torch.manual_seed(0)
    G = build_generator("resnet", 8, (1, 16, 16), {"width": W, "attention": 8})
    G.train()
    att = next(m for m in G.modules() if isinstance(m, SelfAttention))
    p = attention_map_figure(G, torch.randn(2, 8), None, None, tmp_path / "att.png")
    assert p.exists() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert G.training and not att.record  # state restored
    p2 = attention_map_figure(G, torch.randn(1, 8), query=(3, 12), path=tmp_path / "one.png")
    assert p2.exists()
    with pytest.raises(ConfigError, match="outside"):
        attention_map_figure(G, torch.randn(1, 8), query=(16, 0), path=tmp_path / "bad.png")
    with pytest.raises(ConfigError, match="self-attention"):
        attention_map_figure(
            build_generator("resnet", 8, (1, 16, 16), {"width": W}), torch.randn(1, 8), path=tmp_path / "x.png"
        )
