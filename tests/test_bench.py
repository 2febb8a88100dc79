"""Benchmarks run and write their result files (numbers themselves are measured by `ganforge bench`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ganforge.benchmarks.speed import run_speed_bench


def test_speed_bench_writes_json_and_table(tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    res = run_speed_bench(out, batch_size=8, steps=1, repeats=1, compile=False, warmup=0)
    data = json.loads(out.read_text())
    names = [v["variant"] for v in data["variants"]]
    assert names[0] == "plain PyTorch fp32 NCHW" and "ganforge bf16 channels_last" in names
    # Timed, or skipped with the reason where this CPU has no native bf16 (never timed for minutes).
    assert all(v.get("images_per_s", 0) > 0 or v.get("skipped") for v in data["variants"])
    assert "cpu_capability" in data["machine"] and isinstance(data["machine"]["native_bf16"], bool)
    assert data["variants"][0]["ratio_vs_plain_fp32"] == 1.0
    assert data["step_gflops"] > 0 and res["fastest"] in names
    assert "| variant |" in out.with_suffix(".md").read_text()


def test_toy_bench_matrix_writes_results_pictures_and_resumes(tmp_path: Path) -> None:
    from ganforge.benchmarks.toy import run_toy_bench

    out = tmp_path / "toy"
    res = run_toy_bench(out, recipes=["gan-toy", "pacgan2-toy"], seeds=2, steps=4, workers=1, progress=False)
    data = json.loads((out / "toy.json").read_text())
    assert len(data["cells"]) == 2 * 2 * 2
    s = data["summary"]["gan-toy"]["grid"]
    assert s["seeds"] == 2 and 0 <= s["modes"]["mean"] <= 25 and 0 <= s["high_quality"]["mean"] <= 100
    assert data["summary"]["pacgan2-toy"]["ring"]["real_samples"] == 4 * 100 * 2  # packing doubles the real samples
    md = (out / "toy.md").read_text()
    assert "`gan-toy`" in md and "PacGAN4" in md and "ring modes (8)" in md and "| real data |" in md
    assert data["real_reference"]["grid"]["modes"]["mean"] == 25
    assert (out / "plots" / "gan-toy.png").stat().st_size > 1000
    # A second call finds every cell done and trains nothing.
    before = {p: p.stat().st_mtime for p in (out / "cells").iterdir()}
    run_toy_bench(out, recipes=["gan-toy", "pacgan2-toy"], seeds=2, steps=4, workers=1, progress=False)
    assert before == {p: p.stat().st_mtime for p in (out / "cells").iterdir()}
    assert res["settings"]["zoo_steps"] == 4


def test_toy_bench_rejects_unknown_recipe(tmp_path: Path) -> None:
    import pytest

    from ganforge.benchmarks.toy import run_toy_bench
    from ganforge.errors import ConfigError

    with pytest.raises(ConfigError, match="gan-toy"):
        run_toy_bench(tmp_path, recipes=["nope-toy"], workers=1, progress=False)


def test_mean_se_and_rank_correlation() -> None:
    from ganforge.benchmarks.runner import mean_se, spearman

    s = mean_se([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0 and s["se"] == pytest.approx(1 / 3**0.5) and (s["min"], s["max"], s["n"]) == (1.0, 3.0, 3)
    assert mean_se([4.0])["se"] == 0.0 and mean_se([None, float("nan")])["mean"] is None
    assert spearman([1, 2, 3, 4], [10, 20, 30, 45]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2], [1, 2]) is None and spearman([1, 1, 1], [1, 2, 3]) is None  # too short; constant
    assert spearman([0.1, 0.2, 0.4], [1, 0, 0]) == pytest.approx(-0.866, abs=1e-3)  # ties share their mean rank


def test_fashion_schedule_gives_the_tested_families_three_seeds_and_the_rest_one() -> None:
    from ganforge.benchmarks.fashion import FLOOR, ROWS, schedule_cells

    by = {r.key: r for r in ROWS}
    cells = schedule_cells(ROWS)
    assert cells[0].row == FLOOR and len({c.key for c in cells}) == len(cells)
    seeds = {k: sorted(c.seed for c in cells if c.row.key == k) for k in by}
    for k in ("cgan", "acgan", "projection", "biggan", "ssgan-100", "ssgan-4000", "began-0.5", "sagan", "sngan"):
        assert seeds[k] == [0, 1, 2], k
    assert seeds["dcgan"] == seeds["wgan-gp"] == seeds["lsgan"] == seeds["infogan"] == [0]
    order = [c.seed for c in cells[1:]]
    assert order == sorted(order)  # seed-major: a run cut short has whole seeds
    first = [c.row for c in cells[1:] if c.seed == 0]
    assert [r.cost * r.scale for r in first] == sorted((r.cost * r.scale for r in first), reverse=True)
    assert {c.seed for c in schedule_cells([by["dcgan"], by["sagan"]], seeds=2)} == {0, 1}  # --seeds: every row
    assert len(schedule_cells([by["sagan"]], quick=True)) == 2  # the floor and one seed


def test_fashion_table_says_which_machine_trained_which_rows_when_they_differ() -> None:
    from ganforge.benchmarks.fashion import _machines_note
    from ganforge.benchmarks.runner import machine_label, machine_record

    here = machine_record()
    assert here["cpus"] >= 1 and isinstance(here["cpu_native_bf16"], bool) and here["processor"]
    avx2 = {"processor": "AMD EPYC", "cpu_capability": "AVX2", "cpu_native_bf16": False}
    amx = {"processor": "Intel Xeon", "cpu_capability": "AVX512", "cpu_native_bf16": True}
    assert machine_label(avx2) == "AMD EPYC, AVX2" and machine_label(amx).endswith("native bf16")
    assert machine_label(None) == "unrecorded machine"
    one = _machines_note({"a": {"machines": [machine_label(avx2)]}, "b": {"machines": [machine_label(avx2)]}})
    assert "one machine: AMD EPYC, AVX2" in one[-1]
    two = _machines_note(
        {"a": {"machines": [machine_label(avx2)]}, "b": {"machines": [machine_label(avx2), machine_label(amx)]}}
    )[-1]
    assert "more than one machine" in two and "AMD EPYC, AVX2: a, b" in two and "native bf16: b" in two


def test_fashion_table_keeps_seeds_on_disk_that_this_call_did_not_ask_for(tmp_path: Path) -> None:
    """`--recipes cgan --seeds 1` after three seeds of ssgan-1000 must not drop seeds 1-2 of ssgan-1000."""
    from ganforge.benchmarks.fashion import ROWS, schedule_cells, table_cells

    def table(seeds: int | None, rows: list = ROWS) -> tuple[list, list]:  # as `--recipes ROWS --seeds N` would
        return table_cells(tmp_path, schedule_cells(rows, seeds), quick=False)

    (tmp_path / "cells").mkdir()
    for name in ("ssgan-1000__s2", "cgan__s0", "no-such-row__s1", "sagan__sx", "_floor"):
        (tmp_path / "cells" / f"{name}.json").write_text("{}")
    expected, every = table(1)
    shown, wanted = {c.key for c in every}, {c.key for c in expected}
    assert "ssgan-1000__s2" in shown and "ssgan-1000__s2" in wanted  # a row of 3 seeds by default
    assert "dcgan__s0" in wanted and "dcgan__s1" not in wanted  # one seed by default, and --seeds 1
    assert not any(k.startswith(("no-such-row", "sagan__sx")) for k in shown)
    assert every[0].key == "_floor" and len(shown) == len(every)
    (tmp_path / "cells" / "dcgan__s4.json").write_text("{}")
    expected, every = table(None)
    assert "dcgan__s4" in {c.key for c in every} and "dcgan__s4" not in {c.key for c in expected}
    assert "dcgan__s1" in {c.key for c in table(2)[0]}
    # `--recipes ssgan-100 --seeds 3`: seeds 1-2 of the one-seed rows are not "not run yet"; ssgan-100's are.
    ssgan100 = [r for r in ROWS if r.key == "ssgan-100"]
    wanted = {c.key for c in table(3, ssgan100)[0]}
    assert "ssgan-100__s2" in wanted and "dcgan__s1" not in wanted and "infogan__s2" not in wanted
    assert "dcgan__s0" in wanted  # the default schedule still counts
    wide = {c.key for c in table(4, ssgan100)[0]}
    assert "ssgan-100__s3" in wide and "sngan__s3" not in wide


def test_fashion_table_cells_put_a_sign_on_the_mean_only() -> None:
    from ganforge.benchmarks.fashion import _ms

    assert _ms({"mean": 0.031, "se": 0.008, "n": 3}, "{:+.1f}", 100) == "+3.1 ± 0.8"
    assert _ms({"mean": -0.02, "se": 0.01, "n": 2}, "{:+.1f}", 100) == "-2.0 ± 1.0"
    assert _ms({"mean": 0.5, "se": 0.0, "n": 1}, "{:+.1f}", 100) == "+50.0"
    assert _ms(None) == "—"


def test_fashion_table_relative_accuracy_keeps_a_decimal() -> None:
    """89.1% of a 93.9% classifier is 94.9% of it: the cell must not round it up to the 95% bar."""
    from ganforge.benchmarks.fashion import _cond_cell

    one = {"cond_acc": {"mean": 0.8912, "se": 0.0, "n": 1}, "cond_acc_rel": {"mean": 0.8912 / 0.939, "se": 0.0, "n": 1}}
    assert _cond_cell(one) == "89.1% (94.9%)"
    assert _cond_cell({"cond_acc": {"mean": None, "se": None, "n": 0}}) == "—"


def test_fashion_bench_rows_write_table_extras_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two rows with paper-specific evidence (AC-GAN's conditional accuracy, BEGAN's M_global) at 2 steps each."""
    import pytest

    from ganforge.benchmarks.fashion import ROW_KEYS, run_fashion_bench
    from ganforge.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown row"):
        run_fashion_bench(tmp_path / "x", rows=["nope"], progress=False)
    from ganforge.data import load_dataset

    try:
        load_dataset("fashion_mnist", image_size=32, fit="pad", download=False)
    except Exception:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    from ganforge.benchmarks import fashion
    from ganforge.metrics.evaluate import Evaluator

    # The bench's reference is the 60k train split (two minutes of features on one core); a seeded 300-image
    # subset keeps this test about the table's plumbing, not the extractor's speed.
    train = load_dataset("fashion_mnist", image_size=32, fit="pad", download=False)
    small = train.subset(torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:300])
    monkeypatch.setitem(fashion._EVALUATORS, 100, Evaluator(small, fashion.METRICS, extractor="fashion", n=100, seed=0))
    # BEGAN's in-training evaluation builds its own reference from the training data: 300 images here, not 60k.
    row_recipe = fashion.row_recipe

    def small_recipe(*a, **k):
        r = row_recipe(*a, **k)
        r.data.limit = 300
        # Narrow nets: the table's plumbing does not depend on width, and the recipes' widths made this the suite's
        # slowest test.
        r.model.generator.args["width"] = 8
        r.model.discriminator.args["width"] = 8
        return r

    monkeypatch.setattr(fashion, "row_recipe", small_recipe)
    monkeypatch.setattr(fashion, "BEGAN_EVAL_N", 50)
    monkeypatch.setattr(fashion, "CONFUSION_PER_CLASS", 10)
    out = tmp_path / "fashion"
    res = run_fashion_bench(out, rows=["acgan", "began-0.3"], images=64, eval_n=100, workers=1, progress=False, seeds=2)
    cells = {(c["row"], c["seed"]) for c in res["cells"]}
    assert cells == {("acgan", 0), ("acgan", 1), ("began-0.3", 0), ("began-0.3", 1)} and "acgan" in ROW_KEYS
    acgan = next(c for c in res["cells"] if c["row"] == "acgan" and c["seed"] == 1)
    began = next(c for c in res["cells"] if c["row"] == "began-0.3" and c["seed"] == 0)
    assert acgan["g_images"] == 256 and acgan["steps"] == 4 and acgan["conditional"]  # 4x the budget: own length
    assert began["g_images"] == 64 and began["batch_size"] == 16  # BEGAN at the paper's batch 16
    assert 0.0 <= acgan["metrics"]["cond_acc_fashion"] <= 1.0
    assert "cond_acc_fashion" not in began["metrics"]
    conf = acgan["extras"]["confusion"]
    assert sum(map(sum, conf["matrix"])) == 10 * 10 and (out / "plots" / "acgan__s1_confusion.png").is_file()
    b = began["extras"]["began"]
    assert b["m_global_first"] > 0 and (out / "plots" / "began-0.3__s0_convergence.png").is_file()
    assert b["fd_curve"] and (out / "plots" / "began-0.3__s0_mglobal_fd.png").is_file()  # FD during training
    cl = b["classes"]  # the final D's error on real images per class, against the classes of G's samples
    assert len(cl["real_error"]) == 10 and cl["n_samples"] == 100 and sum(cl["sample_share"]) == pytest.approx(1.0)
    assert cl["error_ratio"] > 0 and 0 <= cl["real_as_easy"] <= 1
    floor = res["floor"]["metrics"]
    assert floor["fd_fashion"] < 5 and floor["cond_acc_fashion"] > 0.8  # real vs real; the classifier's accuracy
    assert res["extractor"]["name"] == "fashion" and len(res["extractor"]["sha256"]) == 64
    assert all(c["extractor_sha256"] == res["extractor"]["sha256"] for c in res["cells"])
    assert all(c["machine"]["cpu_capability"] and c["precision"] in ("fp32", "bf16") for c in res["cells"])
    s = res["summary"]["acgan"]
    assert s["seeds"] == 2 and s["fd"]["n"] == 2 and s["fd"]["se"] >= 0
    assert s["cond_acc_rel"]["mean"] == pytest.approx(s["cond_acc"]["mean"] / floor["cond_acc_fashion"])
    md = (out / "fashion.md").read_text()
    assert "| real test vs train (floor) |" in md and "| acgan | 2 |" in md and "## BEGAN" in md and " ± " in md
    assert "All cells ran on one machine" in md and "CPU cores available to a cell: " in md
    assert "the default command runs 3 seeds for the rows" in md  # not the last call's --seeds
    assert "## Conditional rows: accuracy per class" in md and (out / "plots" / "began_gamma.png").is_file()
    assert "### Which classes BEGAN keeps (seed 0)" in md and (out / "plots" / "began_classes.png").is_file()
    before = {p: p.stat().st_mtime for p in (out / "cells").iterdir()}
    again = run_fashion_bench(
        out, rows=["acgan", "began-0.3"], images=64, eval_n=100, workers=1, progress=False, seeds=2
    )
    assert before == {p: p.stat().st_mtime for p in (out / "cells").iterdir()}
    # Missing: what the default command would still run (these rows' third seed, dcgan's one), not seeds 0-1.
    assert {m for m in again["missing"] if m.startswith(("acgan__", "began-0.3__"))} == {"acgan__s2", "began-0.3__s2"}
    assert "dcgan__s0" in again["missing"] and "dcgan__s1" not in again["missing"]  # --seeds 2 was for these rows
    one = run_fashion_bench(out, rows=["acgan"], images=64, eval_n=100, workers=1, progress=False, seeds=1)
    assert {(c["row"], c["seed"]) for c in one["cells"]} == cells  # seed 1 stays in the table after a --seeds 1 call
    # A cell whose record was lost (a session's end) continues its run folder instead of training again.
    log = out / "runs" / "acgan__s0" / "metrics.jsonl"
    lines = log.read_text()
    (out / "cells" / "acgan__s0.json").unlink()
    resumed = run_fashion_bench(out, rows=["acgan"], images=64, eval_n=100, workers=1, progress=False, seeds=2)
    assert resumed["info"]["cells_run"] == 1 and log.read_text() == lines  # scored again, not trained again
    # A cell scored with other classifier weights is not reused: its numbers are on another scale.
    f = out / "cells" / "acgan__s1.json"
    rec = json.loads(f.read_text())
    f.write_text(json.dumps({**rec, "extractor_sha256": "0" * 64}))
    third = run_fashion_bench(out, rows=["acgan"], images=64, eval_n=100, workers=1, progress=False, seeds=2)
    assert third["info"]["cells_run"] == 1 and json.loads(f.read_text())["extractor_sha256"] == rec["extractor_sha256"]
    # A call for one row keeps the other rows done at the same settings in the table (the bench runs in parts).
    assert {c["row"] for c in third["cells"]} == {"acgan", "began-0.3"} and "| began-0.3 |" in (
        out / "fashion.md"
    ).read_text()
    # A BEGAN cell scored before the class profile existed gets it from its kept run folder, the same numbers.
    f = out / "cells" / "began-0.3__s0.json"
    rec = json.loads(f.read_text())
    old = {**rec, "extras": {**rec["extras"], "began": {k: v for k, v in b.items() if k != "classes"}}}
    f.write_text(json.dumps(old))
    fourth = run_fashion_bench(out, rows=["began-0.3"], images=64, eval_n=100, workers=1, progress=False, seeds=2)
    assert fourth["info"]["cells_run"] == 0 and json.loads(f.read_text())["extras"]["began"]["classes"] == cl
    from ganforge.benchmarks.began_classes import load_began_nets
    from ganforge.errors import GanforgeError

    with pytest.raises(GanforgeError, match="not a began run"):  # the profile is BEGAN's alone
        load_began_nets(out / "runs" / "acgan__s0")
    from ganforge.benchmarks.d_verdicts import d_verdicts, load_run_nets

    D, G, _, step = load_run_nets(out / "runs" / "acgan__s0")  # a conditional D, built as the trainer builds it
    assert step == 4 and D.classifier.out_features == 10
    with pytest.raises(GanforgeError, match="unconditional"):
        d_verdicts(D, G, None, None, n=10)


@pytest.mark.parametrize(
    "which,fn,names_kw",
    [
        ("toy", "run_toy_bench", "recipes"),
        ("fashion", "run_fashion_bench", "rows"),
        ("stacked", "run_stacked_bench", "rows"),
    ],
)
def test_bench_command_passes_rows_and_prints_where_results_went(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    which: str,
    fn: str,
    names_kw: str,
) -> None:
    import importlib

    from ganforge.cli import main

    seen: dict = {}

    def fake(out, **kw):
        seen.update(out=Path(out), **kw)
        (Path(out) / f"{which}.md").write_text(f"the {which} table\n")
        return {"wall_time_s": 12.0, "info": {"cells_run": 3, "wall_time_s": 12.0}}

    monkeypatch.setattr(importlib.import_module(f"ganforge.benchmarks.{which}"), fn, fake)
    assert main(["bench", which, "--out", str(tmp_path), "--recipes", " a, b,"]) == 0
    printed = capsys.readouterr().out
    assert seen["out"] == tmp_path and seen[names_kw] == ["a", "b"] and seen["quick"] is False
    assert f"the {which} table" in printed and str(tmp_path / f"{which}.json") in printed
    assert ("3 cells run now" if which == "stacked" else "wall time 12 s") in printed


def test_limited_bench_trains_each_augmentation_on_a_subset_and_records_p(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ganforge.benchmarks import limited
    from ganforge.data import load_dataset
    from ganforge.errors import ConfigError
    from ganforge.metrics.evaluate import Evaluator

    with pytest.raises(ConfigError, match="unknown cell"):
        limited.run_limited_bench(tmp_path / "x", cells=["n999__off"], progress=False)
    try:
        load_dataset("fashion_mnist", image_size=32, fit="pad", download=False, limit=10)
    except Exception:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    # Small references keep this test about the plumbing: 200 real images for FD and as "training" images, 50
    # held out (the extractor runs at ~300 images/s on one AVX2 core).
    ref = load_dataset("fashion_mnist", image_size=32, fit="pad", limit=200)
    held = load_dataset("fashion_mnist", image_size=32, fit="pad", split="test", limit=50)
    monkeypatch.setitem(limited._EVALUATORS, ("full", 50), Evaluator(ref, limited.METRICS, extractor="fashion", n=50))
    monkeypatch.setitem(
        limited._EVALUATORS, ("mem", 1000, 50), Evaluator(ref, "memorisation", extractor="fashion", n=50, heldout=held)
    )
    # The FD curve during training: two points, against the run's own 1,000 images (all 60k cost minutes here).
    monkeypatch.setattr(limited, "CURVE_POINTS", 2)
    monkeypatch.setattr(limited, "CURVE_N", 20)
    monkeypatch.setattr(limited, "CURVE_REFERENCE", "run")
    out = tmp_path / "limited"
    first = limited.run_limited_bench(out, cells=["n1000__off"], steps=4, eval_n=50, workers=1, progress=False)
    assert [c["augment"] for c in first["cells"]] == ["off"] and "n1000__ada" in first["missing"]
    # A later call for another cell keeps the earlier one in the table (the bench runs in parts).
    res = limited.run_limited_bench(out, cells=["n1000__ada"], steps=4, eval_n=50, workers=1, progress=False)
    cells = {c["augment"]: c for c in res["cells"]}
    assert set(cells) == {"off", "ada"} and "n1000__off" not in res["missing"] and "n60000__off" in res["missing"]
    assert [r["step"] for r in cells["off"]["fd_curve"]] == [2, 4] and (out / "plots" / "fd_curve.png").is_file()
    assert all(
        c["size"] == 1000
        and c["steps"] == 4
        and "memorisation_ratio_fashion" in c["metrics"]
        and "fd_fashion" in c["metrics"]
        for c in cells.values()
    )
    from ganforge.config import load_recipe

    r = load_recipe(str(out / "runs" / "n1000__ada" / "config.yaml"))
    assert r.data.limit == 1000 and r.augment.name == "ada" and r.augment.args["speed_images"] == limited.ADA_SPEED
    assert cells["ada"]["p_curve"] and cells["ada"]["final_p"] >= 0 and "final_p" in cells["off"]
    md = (out / "limited.md").read_text()
    assert "| 1,000 | ada |" in md and "| 1,000 | off |" in md
    # The copier's row: the 1,000 training images scored as samples (real images, so most fall within the
    # reference's neighbourhoods), kept on disk for the next call.
    (copy,) = res["copying"]
    assert copy["size"] == 1000 and copy["metrics"]["precision_fashion"] > 0.5 and "A perfect copier" in md
    assert (out / "cells" / "_copy_n1000.json").is_file()
    assert (out / "plots" / "n1000__ada_samples.png").is_file() and (out / "plots" / "ada_p.png").is_file()
    v = cells["off"]["d_verdicts"]  # the final D on 50 of its 1,000 images, 50 test images and 50 samples
    assert v["n"] == 50 and 0 <= v["real_held"] <= 1 and "logit_gap_train_held" in v and "Does D memorise?" in md
    again = limited.run_limited_bench(
        out, cells=["n1000__off", "n1000__ada"], steps=4, eval_n=50, workers=1, progress=False
    )
    assert again["info"]["cells_run"] == 0
    # A cell scored before the verdicts were recorded gets them from its kept run folder, the same numbers.
    f = out / "cells" / "n1000__off.json"
    f.write_text(json.dumps({k: x for k, x in json.loads(f.read_text()).items() if k != "d_verdicts"}))
    limited.run_limited_bench(out, cells=["n1000__off"], steps=4, eval_n=50, workers=1, progress=False)
    assert json.loads(f.read_text())["d_verdicts"] == v


def test_a_signal_during_a_cell_stops_the_bench_without_recording_the_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before, SIGTERM during a cell (the trainer's clean stop) was recorded as a "failed" cell and never re-run.
    from ganforge.benchmarks import limited
    from ganforge.errors import RunInterrupted

    class Stopped:
        elapsed = 0.0

        def run(self) -> None:
            raise RunInterrupted("SIGTERM", 3, 0, tmp_path)

    monkeypatch.setattr(limited, "train_or_resume", lambda *a, **k: Stopped())
    import ganforge.data

    monkeypatch.setattr(ganforge.data, "load_dataset", lambda *a, **k: None)
    with pytest.raises(RunInterrupted):
        limited.run_limited_bench(tmp_path / "b", cells=["n1000__off"], steps=2, eval_n=10, workers=1, progress=False)
    assert not list((tmp_path / "b" / "cells").glob("*.json"))


def _fake_copier(size: int, eval_n: int, out: Path) -> dict:
    return {
        "size": size,
        "eval_n": eval_n,
        "metrics": {f"{m}_fashion": 0.5 for m in ("fd", "is", "precision", "recall")},
    }


def test_a_failed_limited_cell_shows_in_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cell that diverges is a result: its row says so (it is re-run by the next call, as it is not valid)."""
    import ganforge.data
    from ganforge.benchmarks import limited

    monkeypatch.setattr(ganforge.data, "load_dataset", lambda *a, **k: None)

    def failed(cell: limited.Cell, out_dir: str, eval_n: int, threads: int = 1) -> dict:
        return {
            "size": cell.size,
            "augment": cell.augment,
            "seed": 0,
            "steps": cell.steps,
            "status": "failed",
            "error": "NaN loss",
            "eval_n": eval_n,
            "train_s": 1.0,
            "metrics": None,
        }

    monkeypatch.setattr(limited, "run_cell", failed)
    monkeypatch.setattr(limited, "copying_row", _fake_copier)
    res = limited.run_limited_bench(tmp_path, cells=["n1000__off"], steps=2, eval_n=10, workers=1, progress=False)
    assert [c["status"] for c in res["cells"]] == ["failed"]
    assert "| 1,000 | off | failed: NaN loss |" in (tmp_path / "limited.md").read_text()


def test_limited_bench_small_size_is_opt_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """n200 cells run only when named; the default run is the issue's three sizes, and its table keeps n200 rows."""
    import ganforge.data
    from ganforge.benchmarks import limited

    monkeypatch.setattr(ganforge.data, "load_dataset", lambda *a, **k: None)
    ran: list[str] = []

    def fake(cell: limited.Cell, out_dir: str, eval_n: int, threads: int = 1) -> dict:
        ran.append(cell.key)
        return {
            "size": cell.size,
            "augment": cell.augment,
            "seed": 0,
            "steps": cell.steps,
            "status": "finished",
            "error": None,
            "eval_n": eval_n,
            "train_s": 1.0,
            "metrics": {f"{m}_fashion": 1.0 for m in ("fd", "is", "precision", "recall", "coverage")}
            | {"memorisation_ratio_fashion": 1.0},
            "extractor": "fashion",
        }

    monkeypatch.setattr(limited, "run_cell", fake)
    monkeypatch.setattr(limited, "scored_by", lambda r, e: True)
    monkeypatch.setattr(limited, "copying_row", _fake_copier)
    res = limited.run_limited_bench(tmp_path, cells=["n200__off"], steps=2, eval_n=10, workers=1, progress=False)
    assert ran == ["n200__off"] and "n200__ada" not in res["missing"] and "n1000__off" in res["missing"]
    ran.clear()
    res = limited.run_limited_bench(tmp_path, steps=2, eval_n=10, workers=1, progress=False)
    assert sorted(ran) == sorted(f"n{s}__{a}" for s in limited.SIZES for a in limited.AUGMENTS)
    assert res["missing"] == [] and {c["size"] for c in res["cells"]} == {200, 1000, 5000, 60000}
    assert "| 200 | off |" in (tmp_path / "limited.md").read_text()


def test_fashion_rows_load_and_the_sagan_ablations_change_one_thing_each() -> None:
    from ganforge.benchmarks.fashion import ROWS
    from ganforge.config import load_recipe

    rows = {r.key: load_recipe(r.recipe, list(r.overrides)) for r in ROWS}  # every row's overrides are valid
    base, no_attn, five = rows["sagan"], rows["sagan-no-attention"], rows["sagan-5d"]
    assert base.model.generator.args["attention"] == base.model.discriminator.args["attention"] == 16
    assert no_attn.model.generator.args["attention"] == no_attn.model.discriminator.args["attention"] == 0
    assert no_attn.game.n_critic == base.game.n_critic == 1 and five.game.n_critic == 5
    assert five.model == base.model and five.optim == base.optim
    lr, sn_d = rows["sagan-equal-lr"], rows["sagan-sn-d"]
    assert (base.optim.g.lr, base.optim.d.lr) == (1e-4, 4e-4) and lr.optim.g.lr == lr.optim.d.lr == 2e-4
    assert lr.model == base.model and lr.game == base.game and lr.optim.g.betas == base.optim.g.betas
    assert base.model.spectral_norm == "both" and sn_d.model.spectral_norm == "d"
    assert sn_d.optim == base.optim and sn_d.game == base.game
    assert sn_d.model.generator == base.model.generator and sn_d.model.discriminator == base.model.discriminator


def test_backfill_completes_only_kept_runs_and_survives_a_damaged_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ganforge.benchmarks.runner import backfill_records

    for k in ("ok", "broken", "later", "gone"):
        if k != "gone":
            (tmp_path / "runs" / k / "checkpoints").mkdir(parents=True)
    (tmp_path / "cells").mkdir()
    done = {k: {"key": k} for k in ("ok", "broken", "later", "gone", "has")}
    done["has"]["extra"] = 1

    def compute(key: str, rec: dict) -> dict | None:
        if key == "broken":
            raise RuntimeError("size mismatch for net.0.weight")
        return None if key == "later" else {**rec, "extra": 2}

    n = backfill_records(tmp_path, done, lambda r: "extra" not in r, compute)
    assert (
        n == 1 and done["ok"]["extra"] == 2 and json.loads((tmp_path / "cells" / "ok.json").read_text())["extra"] == 2
    )
    assert [p.name for p in (tmp_path / "cells").iterdir()] == ["ok.json"]  # the others are left as they were
    assert "extra" not in done["broken"] and "extra" not in done["later"] and "extra" not in done["gone"]
    assert "broken: kept as scored" in capsys.readouterr().err


def test_fashion_cells_checkpoint_within_a_cell_and_an_older_folder_resumes_at_that_cadence(tmp_path: Path) -> None:
    """A kill (a session's end) loses at most a twentieth of a cell, also for a folder started before that."""
    import dataclasses

    from conftest import tiny_recipe

    from ganforge.benchmarks.fashion import CHECKPOINTS, ROWS, row_recipe, same_recipe
    from ganforge.benchmarks.runner import train_or_resume
    from ganforge.config import build_recipe
    from ganforge.training.trainer import Trainer

    sngan = row_recipe(next(r for r in ROWS if r.key == "sngan"), images=96_000, threads=1)
    steps = sngan.train.steps
    assert CHECKPOINTS >= 10 and steps >= 1000 and sngan.train.checkpoint_every == steps // CHECKPOINTS
    # A run folder made when cells checkpointed only at their end is the same cell: it resumes, not restarts.
    end_only = dataclasses.replace(sngan, train=dataclasses.replace(sngan.train, checkpoint_every=steps))
    assert same_recipe(end_only, sngan)
    other_lr = dataclasses.replace(sngan, seed=sngan.seed + 1)
    assert not same_recipe(other_lr, sngan)

    run = tmp_path / "run"
    old = build_recipe(tiny_recipe({"name": "ring", "n_points": 200}, steps=3, train={"checkpoint_every": 3}))
    Trainer.start(old, run, progress=False).run()
    new = dataclasses.replace(old, train=dataclasses.replace(old.train, checkpoint_every=1, keep_checkpoints=2))
    trainer = train_or_resume(new, run, lambda t: True)
    assert trainer._resume_from is not None  # resumed, not started again
    assert (trainer.recipe.train.checkpoint_every, trainer.recipe.train.keep_checkpoints) == (1, 2)
    trainer.run()
    assert json.loads((run / "run.json").read_text())["resumes"][-1]["overrides"] == {
        "train.checkpoint_every": 1,
        "train.keep_checkpoints": 2,
    }


def test_a_time_limit_checkpoints_the_cell_under_way_and_the_same_call_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bench fashion --minutes`: the trainer stops at the deadline as at SIGTERM; no cell starts after it."""
    import pickle
    import time

    from conftest import tiny_recipe

    from ganforge.benchmarks import fashion
    from ganforge.benchmarks.runner import run_cells
    from ganforge.cli import main
    from ganforge.config import build_recipe
    from ganforge.errors import TIME_LIMIT, RunInterrupted
    from ganforge.training.trainer import Trainer

    # The trainer: a deadline already past stops the run after its first step, checkpointed and resumable.
    run = tmp_path / "run"
    trainer = Trainer.start(build_recipe(tiny_recipe({"name": "ring", "n_points": 200}, steps=6)), run, progress=False)
    trainer.deadline = time.time() - 1
    with pytest.raises(RunInterrupted) as stop:
        trainer.run()
    assert (stop.value.signal, stop.value.step, stop.value.checkpoint_step) == (TIME_LIMIT, 1, 1)
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert Trainer.resume_run(run, progress=False).run() == run  # the next session finishes it
    # A pool worker's stop crosses processes whole.
    again = pickle.loads(pickle.dumps(stop.value))
    assert (again.signal, again.step, again.checkpoint_step, again.folder) == (TIME_LIMIT, 1, 1, run)

    # The runner: past the deadline no cell starts.
    ran: list[str] = []

    def cell(c: str, threads: int = 1) -> dict:
        ran.append(c)
        return {"c": c}

    with pytest.raises(RunInterrupted):
        run_cells(tmp_path / "b", ["x", "y"], key=str, fn=cell, workers=1, progress=False, deadline=time.time() - 1)
    assert ran == [] and not list((tmp_path / "b" / "cells").iterdir())
    done, _ = run_cells(tmp_path / "b", ["x"], key=str, fn=cell, workers=1, progress=False, deadline=time.time() + 60)
    assert ran == ["x"] and done == {"x": {"c": "x"}}

    # The fashion bench hands its deadline to the cell's trainer.
    given: list = []

    class Stops:
        def __setattr__(self, name: str, value: object) -> None:
            if name == "deadline":
                given.append(value)

        def run(self) -> None:
            raise RunInterrupted(TIME_LIMIT, 7, 5, tmp_path / "cell")

    monkeypatch.setattr(fashion, "train_or_resume", lambda *a, **k: Stops())
    with pytest.raises(RunInterrupted):
        fashion.run_row(fashion.Cell(fashion.ROWS[0], 0), str(tmp_path / "f"), 640, 10, deadline=123.0)
    assert given == [123.0]

    # The command: a clear stop with exit status 124 and the advice to run it again; --minutes is fashion's only.
    real = fashion.run_fashion_bench

    def out_of_time(out: Path, **kw: object) -> dict:
        assert kw["minutes"] == 0.5
        raise RunInterrupted(TIME_LIMIT, 7, 5, tmp_path / "cell")

    monkeypatch.setattr(fashion, "run_fashion_bench", out_of_time)
    assert main(["bench", "fashion", "--out", str(tmp_path / "f"), "--minutes", "0.5"]) == 124
    err = capsys.readouterr().err
    assert "time limit (--minutes) stopped the benchmark" in err and "checkpoint at step 5" in err
    assert "Run the same command again" in err
    assert main(["bench", "toy", "--minutes", "5"]) == 2
    assert "--minutes applies to `bench fashion` only" in capsys.readouterr().err
    with pytest.raises(Exception, match="positive number of minutes"):
        real(tmp_path / "g", rows=["dcgan"], minutes=0)
