"""Recipe schema, overrides, and the CLI's one-paragraph errors with exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ganforge.cli import main
from ganforge.config import list_recipes, load_recipe
from ganforge.errors import ConfigError


def test_every_shipped_recipe_validates_and_names_its_source() -> None:
    recipes = list_recipes()
    assert {"demo", "gan-toy", "wgan-gp-toy", "dcgan-fashion"} <= set(recipes)
    for name, desc in recipes.items():
        r = load_recipe(name)
        assert desc and r.source, f"{name} needs a description and a source paper"


def test_overrides_reach_any_field_and_are_typed() -> None:
    r = load_recipe(
        "demo",
        [
            "train.steps=7",
            "optim.g.lr=1e-4",
            "optim.d.betas=[0.0, 0.9]",
            "model.generator.args.width=16",
            "train.ema.enabled=true",
            "loss=minimax",
            "data.image_size=16",
        ],
    )
    assert r.train.steps == 7 and r.optim.g.lr == 1e-4 and r.optim.d.betas == (0.0, 0.9)
    assert r.model.generator.args["width"] == 16 and r.train.ema.enabled and r.loss.name == "minimax"
    assert r.data.image_size == 16


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("train.stepz=5", "train.steps"),
        ("trian.steps=5", "train"),
        ("train.steps=abc", "expected an integer"),
        ("train.precision=fp8", "bf16"),
        ("optim.g.name=adamw", "rmsprop"),
        ("train.steps.x=1", "not a section"),
        ("nokey", "key.sub=value"),
    ],
)
def test_bad_overrides_are_config_errors(override: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_recipe("demo", [override])


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["train", "dmeo"], "unknown recipe 'dmeo' (did you mean 'demo'?)"),
        (["train", "demo", "train.stepz=3"], "Valid choices: train.batch_size"),
        (["train", "demo", "train.steps=many"], "train.steps: expected an integer, got 'many'"),
        (["train", "demo", "model.generator.name=dcgun"], "unknown generator 'dcgun'"),
        (["train", "demo", "model.discriminator.args.widht=3"], "widht"),
        (["train", "demo", "loss=hinj"], "Valid choices: hinge, least_squares, minimax"),
        (["train", "demo", "data.name=imagenet"], "unknown dataset 'imagenet'"),
        (["train", "demo", "game.name=chess"], "unknown game 'chess'"),
        (["train", "--resume", "/nonexistent/run"], "no such run folder"),
        (["sample", "/nonexistent/run"], "does not exist"),
    ],
)
def test_cli_errors_exit_2_with_message(capsys, tmp_path, argv, fragment) -> None:
    if argv[0] == "train" and "--resume" not in argv:
        argv = [*argv, "--out", str(tmp_path / "run")]
    code, err = run_cli(capsys, *argv)
    assert code == 2
    assert fragment in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1  # one paragraph


def test_console_script_exit_status_and_no_traceback(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ganforge.cli", "train", "nope", "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "unknown recipe 'nope'" in proc.stderr and "Traceback" not in proc.stderr


def test_recipes_command_lists_descriptions(capsys) -> None:
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "PacGAN" in out


def test_user_recipe_file(write_recipe, capsys) -> None:
    path = write_recipe({"name": "mine", "train": {"steps": 3}, "data": {"name": "ring"}})
    r = load_recipe(str(path))
    assert r.name == "mine" and r.train.steps == 3
    bad = write_recipe({"trainer": {}}, "bad.yaml")
    with pytest.raises(ConfigError, match="unknown recipe key 'trainer'"):
        load_recipe(str(bad))


def test_overrides_may_follow_options(tmp_path) -> None:
    code = main(
        [
            "train",
            "gan-toy",
            "data.name=ring",
            "--steps",
            "3",
            "train.batch_size=8",
            "data.n_points=100",
            "--quiet",
            "--out",
            str(tmp_path / "r"),
            "train.log_every=1",
        ]
    )
    assert code == 0
    assert "batch_size: 8" in (tmp_path / "r" / "config.yaml").read_text()
