"""The metric declarations (metrics/spec.py): one spec per engine metric, directions, protocol text."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from ganforge.data import load_dataset
from ganforge.errors import ConfigError
from ganforge.metrics.evaluate import COMPUTE, Evaluator, dataset_batches
from ganforge.metrics.spec import METRIC_SPECS, NEEDS, higher_is_better, metric_keys, parse_metrics


def test_every_engine_metric_has_a_spec_and_every_spec_a_compute_function() -> None:
    assert set(COMPUTE) == set(METRIC_SPECS)
    for name, spec in METRIC_SPECS.items():
        assert spec.name == name and spec.keys and spec.needs <= NEEDS and spec.higher <= set(spec.keys)


def test_each_declared_key_reads_back_with_its_declared_direction() -> None:
    for spec in METRIC_SPECS.values():
        for ext in (None, "digits", "inception"):
            for template, key in zip(spec.keys, spec.result_keys(ext)):
                assert higher_is_better(key) == (template in spec.higher), key
                assert higher_is_better(f"eval/{key}") == (template in spec.higher), key


def test_memorisation_ratio_is_higher_is_better() -> None:
    # A ratio below 1 means the samples copy the training set; before, it read as lower-is-better.
    assert higher_is_better("memorisation_ratio_digits") and higher_is_better("eval/memorisation_ratio_inception")


def test_best_checkpoint_keeps_the_least_copying_ratio(tmp_path: Path) -> None:
    from ganforge.training.trainer import Trainer

    (tmp_path / "checkpoints").mkdir()
    t = SimpleNamespace(
        recipe=SimpleNamespace(eval=SimpleNamespace(best="memorisation_ratio_digits")),
        best=None,
        out=tmp_path,
        step=1,
        state_dict=lambda ranks=None: {},
        rank_states=lambda: None,
        dist=SimpleNamespace(main=True),
    )
    Trainer._maybe_save_best(t, {"memorisation_ratio_digits": 1.0})  # as far from the train set as fresh data
    t.step = 2
    Trainer._maybe_save_best(t, {"memorisation_ratio_digits": 0.4})  # copies: not the best
    assert t.best == {"metric": "memorisation_ratio_digits", "value": 1.0, "step": 1}


def test_metric_keys_name_the_engine_outputs() -> None:
    keys = metric_keys("fd,is,pr", "fashion")
    assert keys == {
        "fd": "fd_fashion",
        "is": "is_fashion",
        "is_std": "is_fashion_std",
        "precision": "precision_fashion",
        "recall": "recall_fashion",
    }
    assert metric_keys(["modes"], "digits") == {
        "modes": "modes",
        "high_quality": "high_quality",
        "kl_modes": "kl_modes",
    }


def test_unknown_metric_lists_the_choices() -> None:
    with pytest.raises(ConfigError, match="unknown metric 'fid'.*Valid choices: .*cond_acc.*fd"):
        parse_metrics("fd,fid")
    with pytest.raises(ConfigError, match="no metrics asked for"):
        parse_metrics(" , ")


def test_engine_writes_exactly_the_declared_keys() -> None:
    train = load_dataset("digits", image_size=16, limit=120)
    ev = Evaluator(train, "fd,is,kid,pr,coverage,cond_acc", n=120, store_max=120, kid_subset_size=50, kid_subsets=5)
    numbers = ev.evaluate(dataset_batches(train), len(train), "train")["metrics"]
    declared = {k for m in ev.metrics for k in METRIC_SPECS[m].result_keys("digits")}
    assert set(numbers) == declared


def test_protocol_records_the_inception_score_splits_used() -> None:
    # Before, the protocol said "10 contiguous splits" whatever StreamingIS used.
    train = load_dataset("digits", image_size=16, limit=60)
    few = Evaluator(train, "is", n=6).evaluate(dataset_batches(train, 6), 6, "6 samples")["protocol"]
    assert "over 6 contiguous splits" in few["is"]
    five = Evaluator(train, "is", n=60, is_splits=5).evaluate(dataset_batches(train), 60, "train")["protocol"]
    assert "over 5 contiguous splits" in five["is"]
    ten = Evaluator(train, "is", n=60).evaluate(dataset_batches(train), 60, "train")["protocol"]
    assert "over 10 contiguous splits" in ten["is"] and ten["pr"]["k"] == 3


def test_spec_module_does_not_load_torch_heavy_parts() -> None:
    import subprocess
    import sys

    code = "import sys, ganforge.metrics.spec, ganforge.config; print('ganforge.metrics.evaluate' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
