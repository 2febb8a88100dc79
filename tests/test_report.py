"""Plots (image grids, scatter frames, curves) and the offline HTML run report."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
from PIL import Image

from ganforge.plots import moving_average, plot_curves, save_image_grid, save_images, save_points_plot, to_data_uri
from ganforge.report import pick_evenly, read_metrics, write_report

CONFIG = """\
recipe: demo
model:
  generator: dcgan  # <G> & "friends"
train:
  steps: 1500
  lr: 0.0002
"""


def _fake_run(root: Path, n_steps: int = 5, n_lines: int = 50) -> Path:
    """A run folder like the trainer writes, with a truncated last metrics line."""
    run = root / "run"
    (run / "samples").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "config.yaml").write_text(CONFIG)
    lines = []
    for i in range(1, n_lines + 1):
        rec = {
            "step": i * 10,
            "time": i * 0.5,
            "images_per_s": 800.0 + i,
            "d_loss": 1.4 - i / 100,
            "g_loss": 0.7 + math.sin(i) / 10,
            "lr_g": 2e-4,
            "epoch": i // 10,
        }
        if i % 10 == 0:
            rec["eval/fd_digits"] = 50.0 / i
            rec["eval/precision"] = i / 100
        lines.append(json.dumps(rec))
        if i == 20:
            lines.append("")  # blank lines are tolerated
    lines.append('{"step": 510, "time": 25.6, "d_lo')  # killed mid-write
    (run / "metrics.jsonl").write_text("\n".join(lines))
    (run / "run.json").write_text(
        json.dumps(
            {
                "recipe": "demo",
                "description": "DCGAN on tiny digits",
                "source": "Radford et al. 2015",
                "status": "finished",
                "steps": 500,
                "step": 500,
                "wall_time_s": 140.2,
                "device": "cpu",
                "precision": "bf16",
                "channels_last": True,
                "compile": False,
                "torch": "2.x",
                "ganforge": "0.1.0",
                "seed": 0,
                "data": {"name": "digits", "size": 16},
                "params": {"generator": 1234, "discriminator": 5678},
            }
        )
    )
    g = torch.Generator().manual_seed(0)
    for s in range(1, n_steps + 1):
        save_image_grid(torch.rand(16, 1, 16, 16, generator=g) * 2 - 1, run / "samples" / f"step_{s * 100:06d}.png")
    save_image_grid(torch.rand(64, 1, 16, 16, generator=g) * 2 - 1, run / "samples" / "final.png")
    save_points_plot(
        torch.randn(500, 2, generator=g),
        run / "samples" / "final_ema.png",
        centres=torch.tensor([[1.0, 0.0], [-1.0, 0.0]]),
        title="final",
        limits=3,
    )
    (run / "checkpoints" / "step_000400.pt").write_bytes(b"x" * 2048)
    (run / "generator.safetensors").write_bytes(b"y" * 100)
    return run


def _srcs(page: str) -> list[str]:
    return re.findall(r'src="([^"]*)"', page)


def test_report_full_run(tmp_path: Path) -> None:
    run = _fake_run(tmp_path)
    # A toy-data frame (500 px scatter plot) in the progression is downscaled before embedding.
    save_points_plot(torch.randn(200, 2), run / "samples" / "step_000600.png", limits=3)
    out = write_report(run)
    assert out == run / "report.html" and out.is_file()
    page = out.read_text(encoding="utf-8")

    assert "<h1>demo</h1>" in page
    assert "DCGAN on tiny digits" in page and "Radford et al. 2015" in page
    assert "finished" in page and "bf16" in page
    # Losses, throughput, 2 eval figures, final + final_ema, 6 progression grids.
    srcs = _srcs(page)
    assert len(srcs) >= 2 + 2 + 2 + 6
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    # Offline: no remote resources of any kind.
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower() and "<link" not in page.lower()
    # Config shown verbatim, escaped.
    assert "# &lt;G&gt; &amp; &quot;friends&quot;" in page
    assert "<G>" not in page
    # Eval table: last and best of each metric, with the right direction.
    assert 'class="grid eval"' in page
    assert "<code>eval/fd_digits</code></td><td>lower" in page
    assert "<code>eval/precision</code></td><td>higher" in page
    assert "unreadable line" in page  # the truncated line is reported, not fatal
    # Progression labelled with steps, files listed.
    for s in (100, 300, 500, 600):
        assert f"step {s}</figcaption>" in page
    assert "checkpoints/step_000400.pt" in page and "generator.safetensors" in page
    for name in ("losses.png", "throughput.png", "eval_fd_digits.png", "eval_precision.png"):
        assert (run / "plots" / name).is_file()
    # Rewriting (mid-training refresh) works and leaves no temp files behind.
    write_report(run)
    assert not [p for p in run.rglob(".*") if p.is_file()]


def test_report_thins_long_progression(tmp_path: Path) -> None:
    run = _fake_run(tmp_path, n_steps=40, n_lines=5)
    page = write_report(run).read_text(encoding="utf-8")
    captions = re.findall(r"<figcaption>step ([\d,]+)</figcaption>", page)
    assert 10 <= len(captions) <= 16
    assert captions[0] == "100" and captions[-1] == "4,000"


def test_report_nearly_empty_run(tmp_path: Path) -> None:
    run = tmp_path / "empty"
    run.mkdir()
    (run / "config.yaml").write_text("recipe: toy_ring\n")
    page = write_report(run).read_text(encoding="utf-8")
    assert "toy_ring" in page
    assert "(none yet)" in page and "no metrics have been logged yet" in page
    assert "no samples saved yet" in page
    assert "recipe: toy_ring" in page
    assert not _srcs(page)


def test_report_mid_training_shows_latest_grid(tmp_path: Path) -> None:
    run = tmp_path / "live"
    (run / "samples").mkdir(parents=True)
    (run / "run.json").write_text('{"recipe": "demo", "status": "running", "step": 300, "steps": 1500')  # mid-write
    (run / "metrics.jsonl").write_text('{"step": 100, "d_loss": 1.0, "g_loss": 2.0}\n')
    for s in (100, 200, 300):
        save_image_grid(torch.zeros(4, 1, 16, 16), run / "samples" / f"step_{s:06d}.png")
    page = write_report(run).read_text(encoding="utf-8")
    assert "<h1>demo</h1>" not in page  # run.json unreadable: falls back to the folder name
    assert "<h1>live</h1>" in page
    assert "latest (step 300)" in page and "no throughput logged yet" in page and "no config.yaml" in page


def test_report_missing_folder(tmp_path: Path) -> None:
    from ganforge.errors import GanforgeError

    with pytest.raises(GanforgeError):
        write_report(tmp_path / "nope")


def test_read_metrics_tolerates_garbage(tmp_path: Path) -> None:
    p = tmp_path / "metrics.jsonl"
    p.write_text('{"step": 1}\n\n[1, 2]\nnot json\n{"step": 2, "d_loss": NaN}\n{"step": 3, "d_')
    recs = read_metrics(p)
    assert [r["step"] for r in recs] == [1, 2]
    assert read_metrics(tmp_path / "missing.jsonl") == []


@pytest.mark.parametrize(
    ("n", "c", "size", "nrow", "expect_wh"),
    [
        (8, 1, 16, None, (3 * 34 + 2, 3 * 34 + 2)),  # 16 px cells upscaled x2 to 32; ceil(sqrt(8)) = 3 columns
        (6, 3, 8, 2, (2 * 34 + 2, 3 * 34 + 2)),  # 8 px cells upscaled x4
        (4, 3, 28, None, (2 * 30 + 2, 2 * 30 + 2)),  # larger images kept at native size
    ],
)
def test_save_image_grid_size(tmp_path: Path, n: int, c: int, size: int, nrow: int | None, expect_wh: tuple) -> None:
    path = save_image_grid(torch.rand(n, c, size, size) * 2 - 1, tmp_path / "g" / "grid.png", nrow=nrow)
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == expect_wh
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]  # atomic: no temp file left


def test_save_image_grid_maps_range(tmp_path: Path) -> None:
    x = torch.full((2, 1, 4, 4), -1.0)
    x[1] = 1.0
    x[0, 0, 0, 0] = float("nan")  # must not crash
    path = save_image_grid(x, tmp_path / "g.png", nrow=2)
    with Image.open(path) as im:
        px = im.convert("L")
        assert px.getpixel((2 + 5, 2 + 5)) == 0  # inside the first (all -1) cell
        assert px.getpixel((2 + 34 + 5, 2 + 5)) == 255  # inside the second (all +1) cell


def test_save_images(tmp_path: Path) -> None:
    paths = save_images(torch.rand(3, 3, 8, 8) * 2 - 1, tmp_path / "imgs")
    assert [p.name for p in paths] == ["sample_00000.png", "sample_00001.png", "sample_00002.png"]
    with Image.open(paths[0]) as im:
        assert im.size == (8, 8)


def test_save_points_plot(tmp_path: Path) -> None:
    pts = torch.randn(300, 2)
    pts[0] = float("inf")  # a diverged point is dropped, not fatal
    path = save_points_plot(
        pts, tmp_path / "pts.png", centres=torch.zeros(8, 2), title="step 100", limits=(-2, 2, -2, 2)
    )
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 100
    assert to_data_uri(path).startswith("data:image/png;base64,")


def test_plot_curves_ignores_records_without_key(tmp_path: Path) -> None:
    records = [{"step": i, "d_loss": 1.0 / (i + 1)} for i in range(40)]
    records += [{"step": 5, "eval/fd": 3.0}, {"time": 1.0}, {"step": 7, "d_loss": "bad"}]
    path = plot_curves(records, ["d_loss", "g_loss", "eval/fd"], tmp_path / "c.png", title="t", smooth=5)
    assert path.is_file()
    # No record has the key at all: still a (blank) figure, no error.
    assert plot_curves(records, ["nothing"], tmp_path / "empty.png").is_file()


def test_eval_direction_heuristic() -> None:
    from ganforge.report import higher_is_better

    for k in ("eval/is", "eval/inception_score", "eval/precision", "eval/modes", "eval/high_quality", "eval/coverage"):
        assert higher_is_better(k), k
    for k in ("eval/fid", "eval/fd_digits", "eval/kid", "eval/kl", "eval/ms_ssim", "eval/swd_x1e3_avg"):
        assert not higher_is_better(k), k


def test_pick_evenly() -> None:
    items = list(range(100))
    picked = pick_evenly(items, 16)
    assert picked[0] == 0 and picked[-1] == 99 and len(picked) == 16
    assert pick_evenly([1, 2, 3], 16) == [1, 2, 3]


def test_moving_average_is_centred() -> None:
    assert moving_average([1.0, 2.0, 3.0], 1) == [1.0, 2.0, 3.0]
    assert moving_average([0.0, 0.0, 3.0, 0.0, 0.0], 3) == [0.0, 1.0, 1.0, 1.0, 0.0]
