"""The public Python API (issue 19): exports, train/resume/Run, sample, evaluate, and custom components by name."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

import ganforge
from ganforge.errors import ConfigError, GanforgeError

TINY = {
    "train.steps": 4,
    "train.batch_size": 16,
    "train.log_every": 1,
    "train.progress": False,
    "train.sample_every": 4,
    "train.checkpoint_every": 2,
    "data.n_points": 400,
    "model.generator.args.hidden": 16,
    "model.discriminator.args.hidden": 16,
}
REPO = Path(__file__).resolve().parents[1]


def test_every_public_name_imports_and_has_a_docstring() -> None:
    assert len(ganforge.__all__) == len(set(ganforge.__all__)) > 40
    for name in ganforge.__all__:
        obj = getattr(ganforge, name)
        assert (getattr(obj, "__doc__", None) or "").strip(), f"ganforge.{name} has no docstring"
    assert set(dir(ganforge)) >= set(ganforge.__all__)
    guide = (REPO / "docs" / "guide" / "library.md").read_text()
    undocumented = [n for n in ganforge.__all__ if f"`{n}" not in guide and f"`ganforge.{n}" not in guide]
    assert not undocumented, f"docs/guide/library.md does not mention {undocumented}"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ganforge.nope  # noqa: B018


def test_import_ganforge_does_not_load_torch() -> None:
    code = "import sys, ganforge; print('torch' in sys.modules); ganforge.hinge_d_loss; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


def test_train_returns_a_run_with_metrics_samples_and_an_evaluation(tmp_path: Path) -> None:
    run = ganforge.train("gan-toy", {**TINY, "data.name": "ring"}, out=tmp_path / "r")
    assert isinstance(run, ganforge.Run) and run.path == tmp_path / "r"
    assert run.status == "finished" and run.recipe.name == "gan-toy"
    logged = [m for m in run.metrics if "d_loss" in m]
    assert [m["step"] for m in logged] == [1, 2, 3, 4]
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(GanforgeError, match="pip install pandas"):
            run.metrics_frame()
    else:
        assert list(run.metrics_frame().dropna(subset=["d_loss"])["step"]) == [1, 2, 3, 4]
    x = run.sample(7, seed=3)
    assert x.shape == (7, 2) and torch.equal(x, run.sample(7, seed=3)) and not torch.equal(x, run.sample(7, seed=4))
    G = run.generator()
    assert isinstance(G, nn.Module) and not G.training
    assert torch.equal(ganforge.sample(G, 7, seed=3), x)
    res = run.evaluate("modes", n=200)
    assert set(res) >= {"metrics", "protocol"} and 0 <= res["metrics"]["modes"] <= 8
    assert res["protocol"]["generated"]["n"] == 200

    # Resume continues the same run to a longer length; a recipe change that is not safe is refused.
    again = ganforge.resume(run.path, ["train.steps=6"])
    assert again.status == "finished" and max(m["step"] for m in again.metrics if "d_loss" in m) == 6
    with pytest.raises(GanforgeError, match="model.z_dim"):
        ganforge.resume(run.path, {"model.z_dim": 3})


def test_recipe_accepts_names_dicts_and_recipes_and_rejects_bad_overrides() -> None:
    r = ganforge.recipe("gan-toy", {"train.steps": 7, "optim.g.betas": [0.5, 0.9]})
    assert r.train.steps == 7 and tuple(r.optim.g.betas) == (0.5, 0.9)
    assert ganforge.recipe(r, ["seed=3"]).seed == 3 and r.seed == 0  # a copy: the original is untouched
    raw = {"name": "mine", "data": {"name": "ring"}, "model": {"z_dim": 2}}
    assert ganforge.recipe(raw).data.name == "ring" and raw == {
        "name": "mine",
        "data": {"name": "ring"},
        "model": {"z_dim": 2},
    }
    as_path = ganforge.recipe({"data": {"name": "points", "path": Path("/x.npy")}}, {"data.root": Path("/r")})
    assert as_path.data.path == "/x.npy" and as_path.data.root == "/r"  # pathlib paths are taken as strings
    with pytest.raises(ConfigError, match="train.stepz"):
        ganforge.recipe("gan-toy", ["train.stepz=3"])
    with pytest.raises(ConfigError, match="list of 'key=value'"):
        ganforge.recipe("gan-toy", "train.steps=3")  # type: ignore[arg-type]


def test_run_refuses_folders_that_are_not_runs(tmp_path: Path) -> None:
    with pytest.raises(GanforgeError, match="no such directory"):
        ganforge.Run(tmp_path / "missing")
    with pytest.raises(GanforgeError, match="not a ganforge run folder"):
        ganforge.Run(tmp_path)


def test_sample_checks_its_arguments() -> None:
    G = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(GanforgeError, match="latent"):
        ganforge.sample(G, 3)
    assert ganforge.sample(G, 3, latent=4).shape == (3, 2)
    with pytest.raises(GanforgeError, match="at least 1"):
        ganforge.sample(G, 0, latent=4)
    with pytest.raises(GanforgeError, match="unconditional"):
        ganforge.sample(G, 3, latent=4, y=1)


def test_evaluate_scores_images_in_memory_and_checks_them() -> None:
    from ganforge.data import load_dataset

    real = load_dataset("digits", split="test", image_size=16)
    x = real.x.float() / 127.5 - 1
    res = ganforge.evaluate(x, "fd,pr", reference="digits", image_size=16, n=300)
    noise = ganforge.evaluate(torch.rand(300, 1, 16, 16) * 2 - 1, "fd,pr", reference="digits")  # size from the images
    assert res["metrics"]["fd_digits"] < noise["metrics"]["fd_digits"] / 5
    assert res["protocol"]["generated"]["n"] == 300
    # A generator module of one's own: its image size is taken from a first sample, its noise size from latent=.
    G = nn.Sequential(nn.Linear(8, 256), nn.Tanh(), nn.Unflatten(1, (1, 16, 16)))
    own = ganforge.evaluate(G, "fd", reference="digits", latent=8, n=100)
    assert own["protocol"]["generated"]["n"] == 100 and own["metrics"]["fd_digits"] > res["metrics"]["fd_digits"]
    with pytest.raises(GanforgeError, match=r"\[-1, 1\]"):
        ganforge.evaluate(x + 1, "fd", reference="digits", image_size=16)
    with pytest.raises(GanforgeError, match=r"\(N, 1, 16, 16\)"):
        ganforge.evaluate(x[:, :, :8], "fd", reference="digits", image_size=16)
    with pytest.raises(GanforgeError, match="data=DATASET"):
        ganforge.evaluate(x, "fd")
    with pytest.raises(ConfigError, match="Valid choices"):
        ganforge.evaluate(x, "fdd", reference="digits")


# ----------------------------------------------------------------------------- custom components


class _LinearG(nn.Module):
    """A one-layer generator for points, registered by a test."""

    def __init__(self, z_dim: int, shape: tuple[int, ...], scale: float = 1.0) -> None:
        super().__init__()
        self.net = nn.Linear(z_dim, shape[0])
        self.scale = scale

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z) * self.scale


def _softplus_g(fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
    return nn.functional.softplus(-fake_logits).mean()


def _margin_d(real_logits: torch.Tensor, fake_logits: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    return nn.functional.relu(margin - real_logits).mean() + nn.functional.relu(margin + fake_logits).mean()


CALLS: list[float] = []


def _logit_l2(real_logits: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    CALLS.append(scale)
    return scale * real_logits.pow(2).mean()


def _line(cfg: object) -> torch.Tensor:
    t = torch.linspace(-1, 1, 500)[:, None]
    return torch.cat([t, 0.5 * t], 1)


def _mean_gap(fake: torch.Tensor, real: torch.Tensor) -> float:
    return float((fake.mean(0) - real.mean(0)).norm())


@pytest.fixture
def registered() -> Iterator[None]:
    """The components above registered by name for one test, and removed after it (the registries are global:
    other tests that walk them, such as the objectives' contract tests, must see only the shipped ones)."""
    from ganforge.data.loaders import DATASETS
    from ganforge.losses import OBJECTIVES
    from ganforge.metrics import compute, spec
    from ganforge.models import GENERATORS
    from ganforge.regularizers import REGULARIZERS

    registries = [GENERATORS, OBJECTIVES, REGULARIZERS, DATASETS]
    saved = [(dict(r._items), dict(r._origins)) for r in registries]
    saved_specs, saved_compute, saved_origins = dict(spec.METRIC_SPECS), dict(compute.COMPUTE), dict(spec._ORIGINS)
    ganforge.register_generator("test_api_linear")(_LinearG)
    ganforge.register_objective("test_api_margin", g_loss=_softplus_g, source="a test")(_margin_d)
    ganforge.register_regularizer("test_api_logit_l2", nets=["d"])(_logit_l2)
    ganforge.register_dataset("test_api_line", summary="points on a line")(_line)
    ganforge.register_metric("test_api_mean_gap", on="features")(_mean_gap)
    try:
        yield
    finally:
        for r, (items, origins) in zip(registries, saved):
            r._items.clear()
            r._items.update(items)
            r._origins.clear()
            r._origins.update(origins)
        spec.METRIC_SPECS.clear()
        spec.METRIC_SPECS.update(saved_specs)
        spec._ORIGINS.clear()
        spec._ORIGINS.update(saved_origins)
        compute.COMPUTE.clear()
        compute.COMPUTE.update(saved_compute)
        spec._index_directions()


def test_registered_components_train_from_a_recipe_by_name(
    registered: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overrides = {
        **TINY,
        "data.name": "test_api_line",
        "model.z_dim": 3,
        "model.generator": {"name": "test_api_linear", "args": {"scale": 0.5}},
        "loss": {"name": "test_api_margin", "args": {"margin": 2.0}},
        "regularizers": [{"name": "test_api_logit_l2", "net": "d", "weight": 0.1, "args": {"scale": 3.0}}],
        "data.limit": 100,
    }
    CALLS.clear()
    run = ganforge.train("gan-toy", overrides, out=tmp_path / "custom")
    assert run.status == "finished"
    assert CALLS == [3.0] * 4  # the penalty ran at every D update with its recipe argument
    G = run.generator()
    assert isinstance(G, _LinearG) and G.scale == 0.5
    # In a process that has not registered it, loading says so (no fallback to the raw generator's file).
    from ganforge.models import GENERATORS

    with monkeypatch.context() as m:
        m.delitem(GENERATORS._items, "test_api_linear")
        with pytest.raises(ConfigError, match="plugins:"):
            ganforge.load_generator(run.path)
    assert "test_api_margin" in ganforge.recipe("gan-toy", ["loss=test_api_margin"]).loss.name
    # A registered metric is computed on the extractor's features like a shipped one, with its key and direction.
    from ganforge.data import load_dataset
    from ganforge.metrics.spec import higher_is_better

    x = load_dataset("digits", split="test", image_size=16).x.float() / 127.5 - 1
    res = ganforge.evaluate(x, ["test_api_mean_gap"], reference="digits", image_size=16)
    noise = ganforge.evaluate(
        torch.rand(360, 1, 16, 16) * 2 - 1, ["test_api_mean_gap"], reference="digits", image_size=16
    )
    assert set(res["metrics"]) == {"test_api_mean_gap_digits"}
    assert 0 <= res["metrics"]["test_api_mean_gap_digits"] < noise["metrics"]["test_api_mean_gap_digits"]
    assert not higher_is_better("test_api_mean_gap_digits")
    assert ganforge.recipe("gan-toy", {"eval.every": 2, "eval.metrics": ["test_api_mean_gap"]}).eval.every == 2
    # The same argument checking as a shipped component: unknown arguments list the valid ones.
    with pytest.raises(ConfigError, match="scale"):
        ganforge.train("gan-toy", {**overrides, "model.generator.args": {"scal": 1}}, out=tmp_path / "bad")
    with pytest.raises(ConfigError, match="margin"):
        ganforge.train("gan-toy", {**overrides, "loss.args": {"margn": 1}}, out=tmp_path / "bad2")


def test_registration_mistakes_are_clear(registered: None) -> None:
    class Other(_LinearG):
        pass

    with pytest.raises(ValueError, match=r"registered twice: by .*_LinearG and by .*Other; choose another name"):
        ganforge.register_generator("test_api_linear")(Other)
    with pytest.raises(ValueError, match="registered twice"):
        ganforge.register_generator("dcgan")(_LinearG)  # a shipped name
    with pytest.raises(ConfigError, match="already declared"):
        ganforge.register_metric("test_api_mean_gap")(lambda a, b: 0.0)
    with pytest.raises(ConfigError, match="valid: D, real, fake"):
        ganforge.register_regularizer("test_api_bad")(lambda images: images.sum())
    with pytest.raises(ConfigError, match="'g' and/or 'd'"):
        ganforge.register_regularizer("test_api_bad2", nets=["x"])
    with pytest.raises(ConfigError, match="already declared"):
        ganforge.register_metric("fd")(lambda a, b: 0.0)
    with pytest.raises(ConfigError, match="'features' or 'images'"):
        ganforge.register_metric("test_api_m", on="logits")


def test_the_same_definition_registered_again_replaces_itself(
    registered: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notebook cell run twice, or a script that is also its recipe's plugin (imported once as __main__ and
    once by name), registers the same definition twice: accepted, the later one wins. Before, it was an error."""
    import importlib.util

    from ganforge.models import GENERATORS

    ganforge.register_generator("test_api_linear")(_LinearG)
    ganforge.register_objective("test_api_margin", g_loss=_softplus_g)(_margin_d)
    ganforge.register_regularizer("test_api_logit_l2", nets=["d"])(_logit_l2)
    ganforge.register_dataset("test_api_line")(_line)
    ganforge.register_metric("test_api_mean_gap", on="features")(_mean_gap)
    src = tmp_path / "script_gans.py"
    src.write_text(
        "import ganforge\nfrom torch import nn\n\n"
        "@ganforge.register_generator('test_api_script_g')\nclass ScriptG(nn.Linear):\n    pass\n"
    )
    loaded = []
    for module_name in ("__main_like__", "script_gans"):  # one file, imported under two module names
        spec_ = importlib.util.spec_from_file_location(module_name, src)
        assert spec_ is not None and spec_.loader is not None
        mod = importlib.util.module_from_spec(spec_)
        monkeypatch.setitem(sys.modules, module_name, mod)  # as an import does
        spec_.loader.exec_module(mod)
        loaded.append(mod.ScriptG)
    assert GENERATORS.get("test_api_script_g") is loaded[1]
    other = tmp_path / "other_gans.py"  # another file with a class of the same name is another definition
    other.write_text(src.read_text())
    spec_ = importlib.util.spec_from_file_location("other_gans", other)
    assert spec_ is not None and spec_.loader is not None
    mod = importlib.util.module_from_spec(spec_)
    monkeypatch.setitem(sys.modules, "other_gans", mod)
    with pytest.raises(ValueError, match="registered twice"):
        spec_.loader.exec_module(mod)


PLUGIN = '''
import torch
from torch import nn
import ganforge


@ganforge.register_generator("plugin_points")
class PluginG(nn.Module):
    """A generator found through the recipe's plugins: list."""

    def __init__(self, z_dim, shape, width=8):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(z_dim, width), nn.ReLU(), nn.Linear(width, shape[0]))

    def forward(self, z):
        return self.net(z)
'''


def test_a_plugin_named_in_the_recipe_is_found_by_the_cli(tmp_path: Path) -> None:
    (tmp_path / "my_gans.py").write_text(textwrap.dedent(PLUGIN))
    recipe = tmp_path / "mine.yaml"
    recipe.write_text(
        textwrap.dedent("""
        plugins: [my_gans]
        data: {name: ring, n_points: 300}
        model: {z_dim: 2, generator: {name: plugin_points, args: {width: 6}}, discriminator: {name: mlp, args: {hidden: 8}}}
        train: {steps: 2, batch_size: 16, log_every: 1, progress: false, sample_every: 2, checkpoint_every: 2}
        """)
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cli = [sys.executable, "-m", "ganforge"]
    done = subprocess.run(
        [*cli, "train", str(recipe), "--out", "run"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    # The run's config names the plugin, so sampling it in a new process finds the generator again.
    done = subprocess.run(
        [*cli, "sample", "run", "--n", "5", "--out", "s.npy"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "s.npy").is_file()
    (tmp_path / "typo.yaml").write_text(recipe.read_text().replace("my_gans", "my_ganz"))
    done = subprocess.run(
        [*cli, "train", "typo.yaml", "--out", "run2"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0 and "plugins: cannot import 'my_ganz'" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "run2").exists()


def test_plugins_must_be_a_list_of_module_names() -> None:
    with pytest.raises(ConfigError, match="list of Python module names"):
        ganforge.recipe("gan-toy", {"plugins": "my_gans"})
    with pytest.raises(ConfigError, match="cannot import 'no_such_module_x'"):
        ganforge.recipe("gan-toy", {"plugins": ["no_such_module_x"]})
