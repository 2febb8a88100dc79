"""Shared fixtures: tiny recipes that train in seconds on the CPU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers on two cores: one thread each (and in the processes they start), or the
    # workers' OpenMP pools would contend for the same cores.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
else:
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _own_reference_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets an empty reference-statistics cache (ganforge.metrics.refcache), never the user's."""
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True)
def _no_report(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Training in tests skips the HTML report (a second of matplotlib per run) unless marked `report`.

    The report has its own tests (test_report.py, and the runs marked `report` read theirs); the trainer
    imports write_report when a run ends, so the stub applies to every run started in this process.
    """
    if request.node.get_closest_marker("report") is None:
        import ganforge.report

        monkeypatch.setattr(ganforge.report, "write_report", lambda run_dir, *a, **k: Path(run_dir) / "report.html")


def tiny_recipe(data: dict, steps: int = 20, **extra: dict) -> dict:
    """A raw recipe dict for a few-second run (caller may override any section)."""
    image = data["name"] not in ("ring", "grid", "points")
    net = {"name": "dcgan", "args": {"width": 8}} if image else {"name": "mlp", "args": {"hidden": 32, "layers": 2}}
    r = {
        "name": "tiny",
        "description": "test recipe",
        "seed": 0,
        "data": data,
        "model": {"z_dim": 8 if image else 2, "generator": net, "discriminator": dict(net)},
        "loss": "non_saturating",
        "train": {
            "steps": steps,
            "batch_size": 16,
            "precision": "fp32",
            "log_every": 5,
            "sample_every": 10,
            "checkpoint_every": 10,
            "n_samples": 16,
            "progress": False,
        },
    }
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(r.get(k), dict):
            r[k].update(v)
        else:
            r[k] = v
    return r


@pytest.fixture
def write_recipe(tmp_path: Path):
    """Write a raw recipe dict to a YAML file and return its path."""

    def write(recipe: dict, name: str = "recipe.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(recipe))
        return path

    return write
