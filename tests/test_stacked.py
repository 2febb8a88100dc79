"""Stacked datasets (1,000 modes), the stacked mode metric, minibatch stddev, the folder recipes and bench stacked."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from ganforge.cli import main
from ganforge.data import load_dataset
from ganforge.data.stacked import mode_of, stack_images
from ganforge.errors import ConfigError
from ganforge.metrics.stacked import StackedModes
from ganforge.nn import MinibatchStdDev


@pytest.fixture(scope="module")
def digits_train():
    return load_dataset("digits", image_size=32)


def test_stacked_images_are_three_base_images_and_their_mode(digits_train) -> None:
    ds = stack_images(digits_train, 50, seed=3)
    assert ds.x.shape == (50, 3, 32, 32) and ds.num_classes == 1000
    gen = torch.Generator().manual_seed(3)
    idx = torch.randint(len(digits_train), (50, 3), generator=gen)
    for c in range(3):
        assert torch.equal(ds.x[:, c], digits_train.x[idx[:, c], 0])
    assert torch.equal(ds.y, mode_of(digits_train.y[idx]))
    assert torch.equal(stack_images(digits_train, 50, seed=3).x, ds.x)  # the seed fixes the draw


def test_the_real_stacked_modes_are_uniform(digits_train) -> None:
    """The floor: drawn channels make all 1,000 modes about equally common."""
    ds = stack_images(digits_train, 100_000, seed=0)
    p = torch.bincount(ds.y, minlength=1000).double() / len(ds)
    kl = float((p[p > 0] * torch.log(p[p > 0] * 1000)).sum())
    assert (p > 0).all() and kl < 0.01  # sampling noise alone is about 999 / (2 x 100,000) = 0.005


def test_stacked_loader_splits_and_errors() -> None:
    tr = load_dataset("stacked", base="digits", image_size=16)
    te = load_dataset("stacked", base="digits", image_size=16, split="test")
    assert tr.shape == (3, 16, 16) and len(tr) == 1437 and len(te) == 360
    assert tr.info["base"] == "digits" and tr.name == "stacked_digits"
    with pytest.raises(ConfigError, match="fashion_mnist, digits|digits, fashion_mnist"):
        load_dataset("stacked", base="cifar10")
    with pytest.raises(ConfigError, match="3 channels"):
        load_dataset("stacked", base="digits", channels=1)
    with pytest.raises(ConfigError, match="takes no base"):
        load_dataset("digits", base="digits")


def _logits(triples: list[tuple[int, int, int]], confident: bool = True) -> torch.Tensor:
    lg = torch.zeros(len(triples), 3, 10)
    for i, t in enumerate(triples):
        for c, k in enumerate(t):
            lg[i, c, k] = 10.0 if confident else 0.1
    return lg


def stacked_mode_metrics(channel_logits: torch.Tensor) -> dict:
    """Mode metrics of (N, 3, K) per-channel logits, streamed as the evaluator does."""
    acc = StackedModes(channel_logits.shape[-1])
    acc.update(channel_logits.reshape(-1, channel_logits.shape[-1]))
    return acc.result()


def test_mode_metric_on_hand_made_cases() -> None:
    r = stacked_mode_metrics(_logits([(1, 2, 3), (1, 2, 3), (4, 5, 6)]))
    assert r["modes"] == 2 and r["num_modes"] == 1000 and r["high_quality"] == 1.0
    expected = 2 / 3 * math.log(2 / 3 * 1000) + 1 / 3 * math.log(1 / 3 * 1000)
    assert r["kl"] == pytest.approx(expected)
    every = [(a, b, c) for a in range(10) for b in range(10) for c in range(10)]
    r = stacked_mode_metrics(_logits(every))
    assert r["modes"] == 1000 and r["kl"] == pytest.approx(0.0, abs=1e-12)
    # Unconfident channels (softmax 0.11 for the top class) still count a mode, but not as high quality.
    r = stacked_mode_metrics(_logits([(7, 7, 7)], confident=False))
    assert r["modes"] == 1 and r["high_quality"] == 0.0


def test_evaluator_counts_modes_of_real_stacked_digits() -> None:
    from ganforge.metrics.evaluate import Evaluator, dataset_batches

    train = load_dataset("stacked", base="digits", image_size=32)
    test = load_dataset("stacked", base="digits", image_size=32, split="test")
    ev = Evaluator(train, "modes,fd,coverage", n=len(test))
    res = ev.evaluate(dataset_batches(test), len(test), "real test")
    m = res["metrics"]
    true_modes = len(torch.unique(test.y))
    assert abs(m["modes"] - true_modes) <= 15  # the classifier is 99.7% accurate per channel
    assert m["high_quality"] > 0.9 and m["coverage_digits"] == 1.0 and m["fd_digits"] < 5
    assert "3 channels" in res["protocol"]["extractor"]["channels"]


def test_modes_on_plain_images_is_refused() -> None:
    from ganforge.metrics.evaluate import Evaluator

    with pytest.raises(ConfigError, match="stacked"):
        Evaluator(load_dataset("digits", image_size=16), "modes", n=10)


def test_minibatch_stddev_sees_a_collapsed_group() -> None:
    layer = MinibatchStdDev(group_size=4)
    same = torch.randn(1, 5, 4, 4).expand(8, -1, -1, -1)
    out = layer(same)
    assert out.shape == (8, 6, 4, 4) and torch.equal(out[:, :5], same)
    assert out[:, 5].abs().max() < 1e-3  # identical samples: no deviation
    varied = layer(torch.randn(8, 5, 4, 4))
    assert (varied[:, 5] > 0.3).all()
    assert layer(torch.randn(6, 5, 4, 4)).shape == (6, 6, 4, 4)  # 6 is split in groups of 3
    with pytest.raises(ValueError):
        MinibatchStdDev(group_size=1)


def test_dcgan_discriminator_takes_minibatch_stddev() -> None:
    from ganforge.models import build_discriminator

    D = build_discriminator("dcgan", (3, 32, 32), {"width": 8, "mbstd_group": 4})
    assert D(torch.randn(8, 3, 32, 32)).shape == (8,)
    with pytest.raises(ConfigError, match="mbstd_group"):
        build_discriminator("dcgan", (3, 32, 32), {"width": 8, "mbstd_group": 1})


TINY = [
    "--quiet",
    "train.batch_size=8",
    "model.generator.args.width=4",
    "model.discriminator.args.width=4",
    "train.n_samples=4",
    "train.sample_every=2",
    "train.checkpoint_every=2",
    "eval.n=8",
    "eval.every=2",
]


@pytest.mark.parametrize("recipe", ["dcgan-folder", "dcgan-folder-64", "dcgan-folder-128", "sngan-folder"])
def test_folder_recipes_train_and_sample_on_a_tiny_folder(tmp_path: Path, recipe: str) -> None:
    folder = tmp_path / "imgs"
    assert main(["export", "stacked", "--base", "digits", "--out", str(folder), "--n", "24", "--image-size", "16"]) == 0
    assert len(list(folder.glob("*.png"))) == 24
    size = 16
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                recipe,
                f"data.path={folder}",
                f"data.image_size={size}",
                "--steps",
                "2",
                "--out",
                str(run),
                *TINY,
            ]
        )
        == 0
    )
    ev = json.loads((run / "eval" / "step_0000002.json").read_text())["metrics"]
    assert 0 <= ev["msssim"] <= 1 and 0 <= ev["msssim_real"] <= 1  # diversity beside the data's own
    assert main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.png")]) == 0
    # Folder data gets ADA by default (issue 18): its p is logged from the first step.
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all("aug_p" in r for r in logged if "d_loss" in r)


def test_export_refuses_a_non_empty_folder(tmp_path: Path, capsys) -> None:
    (tmp_path / "x.txt").write_text("mine")
    assert main(["export", "digits", "--out", str(tmp_path)]) == 2
    assert "not an empty folder" in capsys.readouterr().err


def test_stacked_bench_rows_write_table_and_resume(tmp_path: Path) -> None:
    from ganforge.benchmarks.stacked import run_stacked_bench

    out = tmp_path / "bench"
    kw = dict(rows=["dcgan", "mbstd"], seeds=1, steps=2, eval_n=40, workers=1, progress=False, base="digits")
    res = run_stacked_bench(out, **kw)
    assert {c["row"] for c in res["cells"]} == {"dcgan", "mbstd"}
    assert all(0 <= c["metrics"]["modes"] <= 40 for c in res["cells"])
    floor = res["floor"]["metrics"]
    assert floor["modes"] >= 36 and floor["high_quality"] > 0.9  # 40 real images: nearly all distinct modes
    md = (out / "stacked.md").read_text()
    assert "| real test split |" in md and "`mbstd`" in md and "PacDCGAN2" in md
    before = {p: p.stat().st_mtime for p in (out / "cells").iterdir()}
    again = run_stacked_bench(out, **kw)
    assert again["info"]["cells_run"] == 0
    assert before == {p: p.stat().st_mtime for p in (out / "cells").iterdir()}
    # A cell whose record was lost (a session's end) continues its run folder instead of training again.
    (out / "cells" / "dcgan__s0.json").unlink()
    third = run_stacked_bench(out, **kw)
    assert third["info"]["cells_run"] == 1
    rec = json.loads((out / "cells" / "dcgan__s0.json").read_text())
    assert rec["status"] == "finished" and rec["curve"][-1]["step"] == 2
    # A cell scored by other classifier weights (an older table) is scored again, not mixed in.
    from ganforge.metrics.extractors import shipped_sha256

    assert rec["extractor_sha256"] == shipped_sha256("digits") and rec["extractor"] == "digits"
    (out / "cells" / "mbstd__s0.json").write_text(
        json.dumps({**json.loads((out / "cells" / "mbstd__s0.json").read_text()), "extractor_sha256": "0" * 64})
    )
    assert run_stacked_bench(out, **kw)["info"]["cells_run"] == 1
    with pytest.raises(ConfigError, match="dcgan"):
        run_stacked_bench(out, rows=["nope"], base="digits")
