"""The generator service (build from a recipe, sample in eval mode in batches), Trainer.result and the bench runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_recipe
from torch import nn

from ganforge.config import build_recipe
from ganforge.generation import generate, generator_from_recipe, sample, sample_batches
from ganforge.latent import LatentSpace
from ganforge.training import Trainer


class Recorder(nn.Module):
    """A generator with batch norm (output depends on the mode) that records its inputs."""

    def __init__(self, z_dim: int = 4) -> None:
        super().__init__()
        self.lin = nn.Linear(z_dim, 3)
        self.bn = nn.BatchNorm1d(3)
        self.calls: list[tuple[torch.Tensor, torch.Tensor | None, bool]] = []

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self.calls.append((z.clone(), None if y is None else y.clone(), self.training))
        return self.bn(self.lin(z))


def test_generate_runs_in_eval_mode_and_restores_the_mode() -> None:
    G = Recorder()
    G.bn.running_mean.fill_(0.5)  # eval mode uses the running statistics, train mode the batch's
    z = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))
    x = generate(G, z)
    assert G.training and all(not training for _, _, training in G.calls)
    with torch.no_grad():
        expected = G.eval()(z).clamp(-1, 1)  # samples are images: clamped to [-1, 1]
    assert torch.equal(x, expected) and x.dtype == torch.float32


def test_batching_gives_the_samples_of_one_batch() -> None:
    G = Recorder().eval()
    z = torch.randn(23, 4, generator=torch.Generator().manual_seed(1))
    # Close, not bitwise: a CPU's matmul kernels (AMX, AVX-512) may sum in a different order for another batch size.
    torch.testing.assert_close(generate(G, z, batch=5), generate(G, z, batch=500), rtol=1e-5, atol=1e-6)
    assert [len(c[0]) for c in G.calls] == [5, 5, 5, 5, 3, 23]
    # One seeded draw of all n: the batch size changes nothing.
    torch.testing.assert_close(
        sample(G, 23, 4, seed=2, batch=4), sample(G, 23, 4, seed=2, batch=100), rtol=1e-5, atol=1e-6
    )


def test_labels_and_truncation_are_passed_through() -> None:
    space = LatentSpace(4, num_classes=5)
    G = Recorder()
    G.latent_space = space
    sample(G, 12, seed=0, truncation=0.5, y=3)
    ((z, y, _),) = G.calls
    assert (y == 3).all() and z.abs().max() <= 0.5
    G.calls.clear()
    batches = list(sample_batches(G, space, 12, seed=0, batch_size=5, truncation=0.5))
    assert [len(x) for x, _ in batches] == [5, 5, 2]
    assert all(torch.equal(yb, c[1]) for (_, yb), c in zip(batches, G.calls)) and G.training
    assert all(c[0].abs().max() <= 0.5 for c in G.calls)
    autocasts = []
    generate(G, torch.zeros(2, 4), torch.tensor([0, 1]), autocast=lambda: autocasts.append(1) or torch.no_grad())
    assert autocasts == [1]  # the caller's mixed-precision context wraps each batch


def test_generator_from_recipe_carries_its_latent_and_spectral_norm() -> None:
    raw = tiny_recipe({"name": "ring"})
    raw["model"]["spectral_norm"] = "g"
    r = build_recipe(raw)
    space = LatentSpace(2)
    G = generator_from_recipe(r, (2,), space)
    assert G.latent_space is space
    assert any("parametrizations" in name for name, _ in G.named_parameters())
    plain = generator_from_recipe(r, (2,), space, spectral_norm=False)
    assert not any("parametrizations" in name for name, _ in plain.named_parameters())


def test_trainer_result_names_the_run_and_its_counts(tmp_path: Path) -> None:
    raw = tiny_recipe({"name": "ring"}, steps=6, game={"name": "standard", "n_critic": 2})
    raw["train"]["ema"] = {"enabled": True}
    trainer = Trainer(build_recipe(raw), tmp_path / "run", progress=False)
    out = trainer.run()
    res = trainer.result
    assert res.run_dir == out and res.ema and res.generator is trainer.ema.module
    assert res.steps == 6 and res.d_updates == 12 and res.g_updates == 6
    assert res.real_images == 6 * 2 * 16  # steps x critic steps x batch
    assert res.labelled is None and res.shape == (2,) and res.latent.z_dim == 2 and res.wall_time_s > 0
    # The result's generator samples like the exported EMA generator.
    from ganforge.sampling import load_generator

    G, _, _ = load_generator(out)
    assert torch.equal(sample(res.generator, 50, seed=4), sample(G, 50, seed=4))


def test_run_cells_reuses_finished_cells_and_reruns_stale_ones(tmp_path: Path) -> None:
    from ganforge.benchmarks.runner import run_cells, wall_time

    ran: list[int] = []

    def fn(cell: int, threads: int = 1) -> dict:
        ran.append(cell)
        return {"cell": cell, "version": 1}

    done, info = run_cells(tmp_path, [3, 1, 2], key=str, fn=fn, workers=1, progress=False)
    assert ran == [3, 1, 2] and info["cells_run"] == 3 and done["1"] == {"cell": 1, "version": 1}
    (tmp_path / "cells" / "2.json").write_text(json.dumps({"cell": 2, "version": 0}))  # stale settings
    ran.clear()
    done, info = run_cells(
        tmp_path,
        [3, 1, 2],
        key=str,
        fn=fn,
        workers=1,
        progress=False,
        valid=lambda c, rec: rec["version"] == 1 and rec["cell"] == c,
    )
    assert ran == [2] and info["cells_run"] == 1 and info["cells_reused"] == 2
    (tmp_path / "summary.json").write_text(json.dumps({"wall_time_s": 99.0}))
    assert wall_time({**info, "cells_run": 0}, tmp_path / "summary.json") == 99.0
    assert wall_time(info, tmp_path / "summary.json") == info["wall_time_s"]


def test_toy_bench_runs_its_cells_through_run_cells(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ganforge.benchmarks import runner, toy

    calls = []
    monkeypatch.setattr(toy, "run_cells", lambda *a, **k: calls.append(a[1]) or runner.run_cells(*a, **k))
    toy.run_toy_bench(tmp_path, recipes=["gan-toy"], seeds=1, steps=2, workers=1, progress=False)
    assert len(calls) == 1 and [c.key for c in calls[0]] == ["gan-toy__ring__s0", "gan-toy__grid__s0"]
    monkeypatch.setattr(toy, "run_cell", lambda *a, **k: pytest.fail("a finished cell ran again"))
    res = toy.run_toy_bench(tmp_path, recipes=["gan-toy"], seeds=1, steps=2, workers=1, progress=False)
    assert [c["steps"] for c in res["cells"]] == [2, 2]


def test_fashion_bench_runs_rows_and_floor_through_run_cells(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ganforge.data
    from ganforge.benchmarks import fashion

    monkeypatch.setattr(ganforge.data, "load_dataset", lambda *a, **k: None)  # no Fashion-MNIST needed
    jobs: list[str] = []
    floor = {
        k: 0.5
        for k in (
            "fd_fashion",
            "is_fashion",
            "coverage_fashion",
            "kl_uniform_fashion",
            "precision_fashion",
            "recall_fashion",
        )
    }

    sha = fashion.extractor_record()["sha256"]

    def fake_job(
        cell: fashion.Cell, out_dir: str, images: int, eval_n: int, deadline: float | None = None, threads: int = 1
    ) -> dict:
        jobs.append(cell.key)
        stamp = {"eval_n": eval_n, "extractor_sha256": sha}
        if cell.row.key == fashion.FLOOR.key:
            return {"row": "real", "metrics": floor, **stamp}
        return {
            "row": cell.row.key,
            "seed": cell.seed,
            "recipe": cell.row.recipe,
            "what": cell.row.what,
            "overrides": [],
            "status": "failed",
            "error": "x",
            "steps": images // 64,
            "batch_size": 64,
            "g_images": images // 64 * 64,
            "wall_s": 1.0,
            "train_s": 1.0,
            **stamp,
        }

    monkeypatch.setattr(fashion, "run_job", fake_job)
    res = fashion.run_fashion_bench(
        tmp_path, rows=["dcgan", "wgan-gp"], images=640, eval_n=10, workers=1, progress=False, seeds=2
    )
    # The floor first, then seed by seed, costliest first.
    assert jobs == ["_floor", "wgan-gp__s0", "dcgan__s0", "wgan-gp__s1", "dcgan__s1"]
    assert [(c["row"], c["seed"]) for c in res["cells"]] == [("dcgan", 0), ("dcgan", 1), ("wgan-gp", 0), ("wgan-gp", 1)]
    assert res["floor"]["metrics"] == floor and res["summary"]["dcgan"]["failed"] == 2
    assert not [m for m in res["missing"] if m.startswith(("dcgan__", "wgan-gp__"))] and "lsgan__s0" in res["missing"]
    assert (tmp_path / "cells" / "_floor.json").is_file() and "| dcgan | 0 (2 failed) |" in (
        tmp_path / "fashion.md"
    ).read_text()
    jobs.clear()
    fashion.run_fashion_bench(
        tmp_path, rows=["dcgan", "wgan-gp"], images=640, eval_n=10, workers=1, progress=False, seeds=2
    )
    assert jobs == []  # every cell and the floor were reused
    fashion.run_fashion_bench(
        tmp_path, rows=["dcgan", "wgan-gp"], images=640, eval_n=20, workers=1, progress=False, seeds=1
    )
    assert jobs == ["_floor", "wgan-gp__s0", "dcgan__s0"]  # another sample count: all measured again


def test_uniform_noise_prior_is_drawn_stored_and_refuses_truncation(tmp_path: Path) -> None:
    """model.latent.noise: uniform draws z on [-1, 1] (BEGAN, Berthelot et al. 2017, Sec. 3.5) and travels with G."""
    from ganforge.errors import ConfigError
    from ganforge.sampling import load_generator

    gen = torch.Generator().manual_seed(0)
    z = LatentSpace(64, noise="uniform").sample(20_000, gen).z
    assert float(z.min()) >= -1 and float(z.max()) <= 1 and float(z.var()) == pytest.approx(1 / 3, rel=0.02)
    # The normal prior's seeded draws are unchanged by the option.
    assert torch.equal(
        LatentSpace(8).sample(5, torch.Generator().manual_seed(1)).z,
        torch.randn(5, 8, generator=torch.Generator().manual_seed(1)),
    )
    with pytest.raises(ConfigError, match="normal, uniform"):
        LatentSpace(8, noise="cauchy")
    with pytest.raises(ConfigError, match="model.latent.noise"):
        build_recipe(tiny_recipe({"name": "ring"}, steps=2, model={"latent": {"noise": "gauss"}}))
    raw = tiny_recipe({"name": "digits", "image_size": 16}, steps=2)
    raw["model"]["latent"] = {"noise": "uniform"}
    out = Trainer(build_recipe(raw), tmp_path / "run", progress=False).run()
    for src in (out, out / "generator.safetensors"):
        G = load_generator(src)[0]
        assert G.latent_space.noise == "uniform"
        with pytest.raises(ConfigError, match="uniform"):
            sample(G, 4, seed=0, truncation=0.5)
    assert "noise" not in LatentSpace(8).to_dict()  # files of normal-noise models keep their old metadata


def test_began_and_ssgan_recipes_draw_uniform_noise_as_the_papers() -> None:
    from ganforge.config import load_recipe

    assert load_recipe("began-fashion").model.latent.noise == "uniform"  # Berthelot et al. 2017, Sec. 3.5
    assert load_recipe("ssgan-fashion").model.latent.noise == "uniform"  # openai/improved-gan, MNIST script
