"""The evaluation engine, `ganforge eval`, and metrics during training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_recipe
from PIL import Image

from ganforge.cli import main
from ganforge.config import build_recipe
from ganforge.data import load_dataset
from ganforge.metrics.evaluate import Evaluator, StreamingIS, dataset_batches, higher_is_better
from ganforge.training import Trainer


def test_streaming_inception_score_equals_the_batch_formula() -> None:
    logits = torch.randn(1000, 10) * 3
    s = StreamingIS(1000, 10, splits=10)
    for chunk in logits.split(77):
        s.update(chunk)
    mean, std = s.result()
    whole = StreamingIS(1000, 10, splits=10)  # all logits at once
    whole.update(logits)
    ref_mean, ref_std = whole.result()
    assert mean == pytest.approx(ref_mean, rel=1e-9) and std == pytest.approx(ref_std, rel=1e-6)


def test_real_vs_itself_is_perfect_and_protocol_is_recorded() -> None:
    train = load_dataset("digits", image_size=32, limit=400)
    ev = Evaluator(train, "fd,pr,coverage,kid", n=400, store_max=400)
    res = ev.evaluate(dataset_batches(train), len(train), "train itself")
    m = res["metrics"]
    assert m["fd_digits"] == pytest.approx(0.0, abs=1e-6)
    assert m["precision_digits"] == 1.0 and m["recall_digits"] == 1.0
    assert m["coverage_digits"] == 1.0
    p = res["protocol"]
    assert len(p["extractor"]["weights_sha256"]) == 64 and p["extractor"]["resize_method"]
    assert p["reference"]["dataset"] == "digits" and p["reference"]["info"]["split"] == "train"
    assert p["generated"]["n"] == 400 and p["seed"] == 0
    json.dumps(res)


def test_noise_scores_far_worse_than_real_data() -> None:
    train = load_dataset("digits", image_size=32, limit=300)
    ev = Evaluator(train, "fd,pr", n=300)
    torch.manual_seed(0)
    noise = ev.evaluate([(torch.rand(300, 1, 32, 32) * 2 - 1, None)], 300, "noise")["metrics"]
    real = ev.evaluate(dataset_batches(load_dataset("digits", image_size=32, split="test"), 300), 300, "real")[
        "metrics"
    ]
    assert noise["fd_digits"] > 50 * real["fd_digits"] and noise["fd_digits"] > 50
    # k-NN precision of noise is not near 0 on every 300-image reference: a few real digits with wide k-NN balls
    # take in the noise's features (0.46 on data.limit's balanced 300, < 0.1 on the first 300; Kynkaanniemi et al.
    # 2019 note the outlier effect). Recall, which asks whether real images are covered, is the robust signal.
    assert (
        noise["recall_digits"] < 0.05 < 0.8 < real["recall_digits"]
        and noise["precision_digits"] < real["precision_digits"] - 0.3
    )


def test_modes_on_the_ring() -> None:
    ring = load_dataset("ring", n_points=2000)
    ev = Evaluator(ring, "modes", n=2000)
    m = ev.evaluate(dataset_batches(ring, 2000), 2000, "real ring")["metrics"]
    assert (
        m["modes"] == 8 and 0.98 < m["high_quality"] < 0.995 and m["kl_modes"] < 0.01
    )  # 2-D: P(r < 3 std) = 1 - exp(-4.5) = 0.989
    with pytest.raises(Exception, match="need images"):
        Evaluator(ring, "fd", n=100)


def test_metric_directions() -> None:
    assert higher_is_better("eval/recall_fashion") and higher_is_better("is_digits")
    assert not higher_is_better("fd_digits") and not higher_is_better("kl_uniform_digits")
    assert not higher_is_better("is_digits_std")


def test_eval_cli_on_a_run_folder_an_image_folder_and_the_reference(tmp_path: Path, capsys) -> None:
    run = Trainer(
        build_recipe(tiny_recipe({"name": "digits", "image_size": 16}, steps=5)), tmp_path / "run", progress=False
    ).run()
    out = tmp_path / "eval.json"
    assert main(["eval", str(run), "--metrics", "fd,is,coverage", "--n", "200", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert {"fd_digits", "is_digits", "coverage_digits"} <= set(res["metrics"])
    assert res["protocol"]["generated"]["n"] == 200 and "weights_sha256" in res["protocol"]["extractor"]
    assert "fd_digits" in capsys.readouterr().out

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(12):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (16, 16), dtype=np.uint8)).save(folder / f"{i}.png")
    assert main(["eval", str(folder), "--data", "digits", "--metrics", "fd", "--n", "12"]) == 0
    assert (
        main(["eval", "--reference", "digits", "--metrics", "fd,pr,memorisation", "--n", "100", "--json", str(out)])
        == 0
    )
    floor = json.loads(out.read_text())
    assert floor["metrics"]["fd_digits"] < 25 and floor["protocol"]["reference"]["heldout_n"] == 360
    pic = out.with_name("eval_memorisation.png")
    assert pic.is_file() and Image.open(pic).size[0] > Image.open(pic).size[1] / 8  # rows of sample + neighbours


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["eval", "--reference", "digits", "--metrics", "fid"], "unknown metric 'fid'"),
        (["eval", "--reference", "ring"], "test split"),
        (["eval"], "give either a TARGET"),
    ],
)
def test_eval_cli_errors(argv, fragment, capsys) -> None:
    assert main(argv) == 2
    assert fragment in capsys.readouterr().err


@pytest.mark.report
def test_metrics_during_training_and_best_checkpoint(tmp_path: Path) -> None:
    raw = tiny_recipe(
        {"name": "digits", "image_size": 16},
        steps=20,
        eval={"every": 10, "metrics": ["fd", "coverage"], "n": 100, "best": "fd_digits"},
        train={"ema": {"enabled": True, "decay": 0.5}},
    )
    out = Trainer(build_recipe(raw), tmp_path / "run", progress=False).run()
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [x for x in lines if "eval/fd_digits" in x]
    assert [x["step"] for x in evals] == [10, 20]
    assert (out / "eval" / "step_0000020.json").is_file()
    best = torch.load(out / "checkpoints" / "best.pt", weights_only=True)
    assert best["best"]["metric"] == "fd_digits"
    assert best["best"]["value"] == min(x["eval/fd_digits"] for x in evals)
    assert "eval/fd_digits" in (out / "report.html").read_text() or "fd_digits" in (out / "report.html").read_text()


def test_bad_eval_best_key_is_reported(tmp_path: Path) -> None:
    raw = tiny_recipe(
        {"name": "digits", "image_size": 16}, steps=10, eval={"every": 10, "metrics": ["fd"], "n": 50, "best": "fid"}
    )
    with pytest.raises(Exception, match="eval.best is 'fid'"):
        Trainer(build_recipe(raw), tmp_path / "run", progress=False).run()


def test_eval_reference_full_scores_a_limited_run_against_the_whole_split(tmp_path: Path) -> None:
    def evaluator(reference: str) -> Evaluator:
        raw = tiny_recipe(
            {"name": "digits", "image_size": 16, "limit": 50},
            steps=1,
            eval={"every": 1, "metrics": ["fd"], "n": 20, "reference": reference},
        )
        return Trainer(build_recipe(raw), tmp_path / reference, progress=False)._make_evaluator()

    whole = len(load_dataset("digits", image_size=16))
    assert len(evaluator("run").dataset) == 50
    assert len(evaluator("full").dataset) == whole > 50


@pytest.mark.parametrize(
    ("evals", "fragment"),
    [
        ({"reference": "test"}, "eval.reference"),
        ({"reference": "full", "metrics": ["fd", "memorisation"], "every": 5}, "memorisation needs the images"),
    ],
)
def test_bad_eval_reference_is_refused(evals: dict, fragment: str) -> None:
    with pytest.raises(Exception, match=fragment):
        build_recipe(tiny_recipe({"name": "digits", "image_size": 16}, steps=10, eval=evals))
