"""The doctor: each detector on hand-made traces, remedies that are valid overrides, the CLI, live stop_on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ganforge.doctor import HEALTHY, STATES, THRESHOLDS, diagnose_records, remedies

T = 2000  # steps of the hand-made runs; logs every 25, grids every 100, evaluations every 250


def trace(
    acc: float = 0.8,
    div: float = 0.9,
    change: float = 0.1,
    grad: float = 5.0,
    fd=None,
    cov: float = 1.0,
    lr: float = 2e-4,
    steps: int = T,
    **override,
) -> list[dict]:
    """A run's metrics.jsonl as the trainer writes it; each argument a value or a function of the step."""

    def f(v, s):
        return v(s) if callable(v) else v

    out = []
    for s in range(25, steps + 1, 25):
        rec = {
            "step": s,
            "d_loss": 1.0,
            "g_loss": 1.0,
            "d_acc_real": f(acc, s),
            "d_acc_fake": f(acc, s),
            "grad_norm_g": f(grad, s),
            "grad_norm_d": f(grad, s),
            "grad_norm_d_input": f(grad, s) / 5,
            "lr_g": f(lr, s),
        }
        if s % 100 == 0:
            rec.update(
                {
                    "signals/sample_diversity": f(div, s) * 0.5,
                    "signals/real_diversity": 0.5,
                    "signals/class_coverage": f(cov, s),
                    "signals/real_class_coverage": 1.0,
                    "signals/class_kl": 0.1 if f(cov, s) > 0.5 else 1.8,
                }
            )
            if s > 100:
                rec["signals/sample_change"] = f(change, s) * 0.5
        for k, v in override.items():
            rec[k] = f(v, s)
        out.append(rec)
        if fd is not None and s % 250 == 0:
            out.append({"step": s, "eval/fd_digits": f(fd, s)})
    return out


def states(d: dict) -> list[str]:
    return [p["state"] for p in d["periods"]]


def test_a_healthy_trace_raises_nothing() -> None:
    # D's accuracy wobbling up to 1.0 now and then, gradient norms noisy over two orders of magnitude, FD falling:
    # the healthy demo's log looks like this.
    d = diagnose_records(
        trace(
            acc=lambda s: 1.0 if s % 200 == 0 else 0.85,
            grad=lambda s: 5.0 * (1 + (s % 300 == 0) * 40),
            fd=lambda s: 400 / (1 + s / 250),
        ),
        T,
    )
    assert d["verdict"] == HEALTHY and d["periods"] == [] and d["remedies"] == {}


def test_collapse_is_entered_where_diversity_falls_and_names_the_evidence() -> None:
    d = diagnose_records(trace(div=lambda s: 0.9 if s < 1000 else 0.2), T)
    assert d["verdict"] == "collapse" and states(d) == ["collapse"]
    p = d["periods"][0]
    assert p["start"] == 1000 and p["end"] is None
    assert "diversity 0.20 of the real data's" in p["evidence"][0]
    # Class coverage alone (diversity fine: one class drawn in many ways) is collapse too.
    d = diagnose_records(trace(cov=lambda s: 1.0 if s < 1200 else 0.2), T)
    assert d["verdict"] == "collapse" and d["periods"][0]["start"] == 1200
    assert any("KL to uniform" in e for e in d["periods"][0]["evidence"])


def test_early_low_diversity_is_warm_up_not_collapse() -> None:
    # Every run starts from G's initial output: low diversity before warm-up is not a diagnosis.
    d = diagnose_records(trace(div=lambda s: 0.2 if s < THRESHOLDS.warmup * T else 0.9), T)
    assert d["verdict"] == HEALTHY


def test_a_slow_generator_that_was_never_varied_yet_is_not_collapsed() -> None:
    # Collapse is a fall: a G whose uniform first output is still turning into varied samples past warm-up is
    # learning (a small G against a big D did this in the validation suite).
    d = diagnose_records(trace(div=lambda s: 0.2 if s < 800 else 0.9, cov=lambda s: 0.2 if s < 800 else 1.0), T)
    assert d["verdict"] == HEALTHY


def test_a_fall_onto_one_output_that_then_freezes_is_collapse_not_no_learning() -> None:
    # BEGAN at gamma 0.3 in the validation suite: a little variety at first, then every sample the same black
    # image, which then stops moving. The fall came first; the stillness is its symptom.
    d = diagnose_records(trace(div=lambda s: 0.2 if s <= 100 else 0.01, change=lambda s: 0.1 if s <= 300 else 0.001), T)
    assert d["verdict"] == "collapse"
    assert [p["symptom_of_another"] for p in d["periods"]] == [False, True] and "no_learning" in states(d)
    assert list(d["remedies"]) == ["collapse"]


def test_a_collapse_that_recovers_closes_its_period() -> None:
    d = diagnose_records(trace(div=lambda s: 0.2 if 800 <= s < 1400 else 0.9), T)
    (p,) = d["periods"]
    assert (p["state"], p["start"], p["end"]) == ("collapse", 800, 1400)


def test_oscillation_and_rising_fd_are_divergence() -> None:
    # Samples that keep jumping between grids late in the run ...
    d = diagnose_records(trace(change=lambda s: 0.1 if s < 900 else 0.9), T)
    assert d["verdict"] == "divergence" and d["periods"][0]["start"] >= T // 2
    # ... or FD rising over three evaluations in a row.
    d = diagnose_records(trace(fd=lambda s: 50.0 if s < 1000 else 50.0 * 1.3 ** ((s - 750) // 250)), T)
    assert "divergence" in states(d)
    assert any("FD rose 3 evaluations in a row" in e for p in d["periods"] for e in p["evidence"])


def test_d_winning_for_long_is_d_wins_but_brief_wins_are_not() -> None:
    d = diagnose_records(trace(acc=lambda s: 1.0 if s >= 600 else 0.8), T)
    assert d["verdict"] == "d_wins" and d["periods"][0]["start"] == 600
    brief = diagnose_records(trace(acc=lambda s: 1.0 if 600 <= s < 650 else 0.8), T)
    assert brief["verdict"] == HEALTHY


def test_a_still_generator_is_no_learning_unless_its_schedule_decayed() -> None:
    d = diagnose_records(trace(change=0.001), T, {"optim": {"g": {"lr": 2e-4}}})
    assert d["verdict"] == "no_learning"
    # A linear decay to 0 is meant to stop G: the last stretch of toy-best is not "no learning".
    decayed = diagnose_records(
        trace(change=lambda s: 0.001 if s > 1500 else 0.1, lr=lambda s: 2e-4 * (1 - s / T)),
        T,
        {"optim": {"g": {"lr": 2e-4}}},
    )
    assert decayed["verdict"] == HEALTHY


def test_no_learning_explains_the_rest() -> None:
    # A G that does not move keeps its initial low diversity and lets D win: the cause is named, not the symptoms.
    d = diagnose_records(trace(change=0.001, div=0.2, acc=1.0, cov=0.1), T, {"optim": {"g": {"lr": 1e-7}}})
    assert d["verdict"] == "no_learning"


def test_a_still_generator_under_a_winning_d_with_vanished_gradients_is_d_wins() -> None:
    # The minimax loss saturates when D is sure: G's gradient falls to nothing and G stops moving. D winning is
    # the cause there, and its evidence says the gradient vanished.
    d = diagnose_records(
        trace(change=0.001, div=0.2, acc=1.0, cov=0.1, grad=lambda s: 0.01 * 0.99**s),
        T,
        {"optim": {"g": {"lr": 2e-4}}, "loss": {"name": "minimax"}},
    )
    assert d["verdict"] == "d_wins" and "no_learning" in states(d)
    assert any("vanished" in e for p in d["periods"] if p["state"] == "d_wins" for e in p["evidence"])
    assert d["remedies"]["d_wins"][0]["override"] == "loss=non_saturating"


def test_growing_gradients_and_a_nan_are_instability() -> None:
    d = diagnose_records(trace(grad=lambda s: 3.0 * (1.006 ** max(0, s - 800))), T)
    assert d["verdict"] == "unstable"
    assert any("grew" in e for p in d["periods"] for e in p["evidence"])
    # A run that stopped on a NaN is unstable at its end, with the trainer's message as evidence.
    recs = trace(steps=1000)
    d = diagnose_records(
        recs, T, status="failed", error="TrainingError: d_loss became non-finite (NaN/inf) by step 1010; x"
    )
    assert d["verdict"] == "unstable" and "non-finite" in d["periods"][-1]["evidence"][-1]
    # A non-finite signal written as null is evidence on its own.
    recs = trace(steps=1000)
    recs[-1]["grad_norm_d"] = None
    recs.append({**recs[-1], "step": 1025})
    assert diagnose_records(recs, T)["verdict"] == "unstable"


def test_missing_signals_are_said_not_guessed() -> None:
    recs = [{"step": s, "d_loss": 1.0, "g_loss": 1.0} for s in range(25, 1001, 25)]
    d = diagnose_records(recs, 1000)
    assert d["verdict"] == HEALTHY and len(d["missing"]) == 2


@pytest.mark.parametrize("state", list(STATES))
def test_every_remedy_is_a_valid_override_of_the_demo(state: str) -> None:
    import yaml

    from ganforge.config import dump_yaml, load_recipe

    cfg = yaml.safe_load(dump_yaml(load_recipe("demo")))
    cfg["loss"] = {"name": "minimax", "args": {}}
    rems = remedies(state, cfg)
    assert rems, state
    for r in rems:
        load_recipe("demo", r["overrides"])  # raises on an unknown key or a bad value
    if state == "d_wins":
        assert rems[0]["overrides"] == ["loss=non_saturating"]


def test_unknown_stop_on_state_lists_the_states() -> None:
    from ganforge.config import load_recipe
    from ganforge.errors import ConfigError

    with pytest.raises(ConfigError, match="collapse"):
        load_recipe("demo", ["train.doctor.stop_on=[colapse]"])
    assert load_recipe("demo", ["train.doctor.stop_on=[collapse,divergence]"]).train.doctor.stop_on == [
        "collapse",
        "divergence",
    ]
    with pytest.raises(ConfigError, match="enabled"):
        load_recipe("demo", ["train.doctor.stop_on=[collapse]", "train.doctor.enabled=false"])


def _tiny(tmp: Path, *extra: str) -> Path:
    from ganforge.cli import main

    out = tmp / "run"
    # G without batch norm: BN's running statistics move a frozen G's eval-mode output for its first steps.
    rc = main(
        [
            "train",
            "gan-toy",
            "--out",
            str(out),
            "--steps",
            "60",
            "train.log_every=5",
            "train.sample_every=10",
            "train.checkpoint_every=10",
            "train.batch_size=32",
            "train.progress=false",
            "model.generator.args.norm=none",
            *extra,
        ]
    )
    return out if rc == 0 else Path(str(rc))


@pytest.mark.report
def test_doctor_on_a_tiny_real_run_warns_live_then_prints_a_timeline_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ganforge.cli import main

    run = _tiny(tmp_path, "optim.g.lr=1e-9", "train.progress=true")
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("ganforge: doctor:")]
    mine = [x for x in lines if "no learning" in x]
    assert len(mine) == 1 and "Try optim.g.lr=" in mine[0] and "since step" in mine[0]
    assert len(lines) == len(set(lines))  # each state is announced once, when entered
    rc = main(["doctor", str(run)])
    text = capsys.readouterr().out
    assert rc == 1 and "NO LEARNING" in text and "optim.g.lr=" in text and "timeline:" in text
    assert main(["doctor", str(run), "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["verdict"] == "no_learning" and d["total_steps"] == 60 and d["periods"][0]["evidence"]
    assert (run / "plots" / "diagnosis.png").is_file() and "Diagnosis: no learning" in (run / "report.html").read_text()
    assert main(["doctor", str(tmp_path / "nope")]) == 2


def test_stop_on_stops_the_run_and_points_to_its_best_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ganforge.training.runinfo import read_status

    rc = _tiny(tmp_path, "optim.g.lr=1e-9", "train.doctor.stop_on=[no_learning]")
    assert str(rc) == "3"
    err = capsys.readouterr().err
    run = tmp_path / "run"
    info = read_status(run)
    assert info["status"] == "stopped" and info["state"] == "no_learning" and info["step"] < 60
    best = Path(info["best_checkpoint"])
    assert best.is_file() and int(best.stem.split("_")[1]) <= info["since"]
    assert "doctor stopped the run" in err and str(best) in err
    # The stopped run resumes (say, with the remedy applied) from its checkpoint.
    from ganforge.training import Trainer

    Trainer.resume_run(run, ["train.doctor.stop_on=[]", "optim.g.lr=1e-3"], progress=False).run()
    assert read_status(run)["status"] == "finished" and read_status(run)["step"] == 60


def test_bench_doctor_writes_a_confusion_table_pictures_and_reuses_its_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ganforge.benchmarks import doctor as bd

    cases = [
        bd.Case("ok", "gan-toy", 20, "healthy", "plain GAN", "spread samples", eval_metrics="modes"),
        bd.Case(
            "still",
            "gan-toy",
            20,
            "no_learning",
            "G lr 1e-9",
            "the first grid",
            ("optim.g.lr=1e-9", "model.generator.args.norm=none"),
            eval_metrics="modes",
        ),
    ]
    monkeypatch.setattr(bd, "CASES", cases)
    monkeypatch.setattr(bd, "CASE_KEYS", [c.key for c in cases])
    monkeypatch.setattr(bd, "LOG_EVERY", 5)
    monkeypatch.setattr(bd, "SAMPLE_EVERY", 5)
    fashion = tmp_path / "fashion" / "cells"
    fashion.mkdir(parents=True)
    floor = {"coverage_fashion": 1.0, "kl_uniform_fashion": 0.003}
    (fashion / "_floor.json").write_text(json.dumps({"metrics": floor}))
    (fashion / "began-0.3.json").write_text(
        json.dumps(
            {"row": "began-0.3", "status": "finished", "metrics": {"coverage_fashion": 0.2, "kl_uniform_fashion": 2.3}}
        )
    )
    (fashion / "dcgan.json").write_text(
        json.dumps(
            {"row": "dcgan", "status": "finished", "metrics": {"coverage_fashion": 1.0, "kl_uniform_fashion": 0.13}}
        )
    )
    out = tmp_path / "doctor"
    res = bd.run_doctor_bench(out, workers=1, progress=False, fashion_dir=tmp_path / "fashion")
    rows = {r["key"]: r for r in res["rows"]}
    assert set(rows) == {"ok", "still", "fashion/began-0.3", "fashion/dcgan"}
    assert rows["still"]["diagnosed"] == "no_learning" and rows["still"]["first_alarm"] is not None
    assert rows["fashion/began-0.3"]["diagnosed"] == "collapse" and rows["fashion/dcgan"]["diagnosed"] == "healthy"
    c = res["confusion"]
    assert c["runs"] == 4 and sum(sum(v.values()) for v in c["table"].values()) == 4
    assert c["right"] == sum(r["expected"] == r["diagnosed"] for r in res["rows"])
    assert c["per_state"]["no_learning"]["recall"] == 1.0
    md = (out / "doctor.md").read_text()
    assert "| still |" in md and "## Confusion" in md and "diversity_ratio" in md
    assert (out / "plots" / "still.png").is_file() and (out / "plots" / "ok.png").is_file()
    before = {p: p.stat().st_mtime for p in (out / "cells").iterdir()}
    again = bd.run_doctor_bench(out, workers=1, progress=False, fashion_dir=tmp_path / "fashion")
    assert again["info"]["cells_run"] == 0 and before == {p: p.stat().st_mtime for p in (out / "cells").iterdir()}


def test_hostile_logs_and_configs_never_crash_the_doctor() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    keys = st.sampled_from(
        [
            "d_loss",
            "g_loss",
            "d_acc_real",
            "d_acc_fake",
            "grad_norm_g",
            "grad_norm_d",
            "grad_norm_d_input",
            "lr_g",
            "signals/sample_diversity",
            "signals/real_diversity",
            "signals/sample_change",
            "signals/class_coverage",
            "signals/real_class_coverage",
            "signals/class_kl",
            "signals/mode_coverage",
            "signals/real_mode_coverage",
            "eval/fd_digits",
            "eval/kl_uniform_digits",
            "x",
        ]
    )
    values = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 5),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=3),
        st.lists(st.integers(), max_size=2),
    )
    record = st.fixed_dictionaries({"step": st.integers(0, 3000)}, optional={}).flatmap(
        lambda base: st.dictionaries(keys, values, max_size=8).map(lambda d: {**d, **base})
    )
    cfg = st.one_of(
        st.none(),
        st.dictionaries(
            st.sampled_from(["loss", "game", "model", "optim", "train", "regularizers"]),
            st.one_of(
                values,
                st.dictionaries(
                    st.sampled_from(["g", "d", "name", "lr", "steps", "discriminator", "n_critic"]), values, max_size=3
                ),
            ),
            max_size=5,
        ),
    )

    @settings(max_examples=150, deadline=None, derandomize=True)
    @given(
        st.lists(record, max_size=40),
        st.integers(1, 3000),
        cfg,
        st.sampled_from([None, "failed", "finished"]),
        st.sampled_from([None, "x non-finite y; z", ""]),
    )
    def check(records, total, cfg, status, error) -> None:
        d = diagnose_records(records, total, cfg, status, error)
        assert d["verdict"] == HEALTHY or d["verdict"] in STATES
        assert all(p["state"] in STATES for p in d["periods"])
        json.dumps(d)  # what --json prints

    check()


def test_doctor_refuses_a_folder_without_a_log_and_reads_around_a_bad_config(tmp_path: Path) -> None:
    from ganforge.doctor import diagnose_run
    from ganforge.errors import GanforgeError

    (tmp_path / "metrics.jsonl").write_text("")
    with pytest.raises(GanforgeError, match="no log lines yet"):
        diagnose_run(tmp_path)
    recs = trace(div=lambda s: 0.9 if s < 1000 else 0.2)
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n{cut sho")
    (tmp_path / "config.yaml").write_text(": : [")
    (tmp_path / "run.json").write_text(json.dumps({"steps": T, "status": "finished"}))
    d = diagnose_run(tmp_path)
    assert d["verdict"] == "collapse" and d["total_steps"] == T and any("config.yaml" in m for m in d["missing"])
