"""`ganforge sample` and `ganforge eval` under hostile input: every mistake is exit 2 with one paragraph.

Each test names the behaviour before the fix it guards against.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_recipe
from PIL import Image

from ganforge.cli import main
from ganforge.config import build_recipe
from ganforge.data import load_dataset
from ganforge.errors import DataError
from ganforge.latent import TRUNCATION_MIN, truncated_normal
from ganforge.training import Trainer

NO_CUDA = not torch.cuda.is_available()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A tiny digits run with an EMA copy, and a tiny ring (2-D points) run: a few seconds in all."""
    root = tmp_path_factory.mktemp("runs")
    img = tiny_recipe(
        {"name": "digits", "image_size": 16},
        steps=2,
        train={"ema": {"enabled": True, "decay": 0.5}, "sample_every": 2, "checkpoint_every": 2},
    )
    ring = tiny_recipe({"name": "ring", "n_points": 200}, steps=2, train={"sample_every": 2, "checkpoint_every": 2})
    return {
        "img": Trainer(build_recipe(img), root / "img", progress=False).run(),
        "ring": Trainer(build_recipe(ring), root / "ring", progress=False).run(),
    }


def run_cli(capsys, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def assert_user_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert err.startswith("ganforge: error: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err  # one paragraph
    for f in fragments:
        assert f in err, (f, err)


# ------------------------------------------------------------------ 1. truncation


def _old_rejection(shape, threshold, generator):
    """The rejection loop as it was (unbounded): the reference for seeded draws at normal thresholds."""
    z = torch.randn(shape, generator=generator)
    bad = z.abs() > threshold
    while bool(bad.any()):
        z[bad] = torch.randn(int(bad.sum()), generator=generator)
        bad = z.abs() > threshold
    return z


@pytest.mark.timeout(60)
def test_truncated_normal_is_bounded_and_unchanged_at_normal_thresholds() -> None:
    # Before: threshold 1e-30 never returned (every redraw rejected).
    z = truncated_normal((2000, 16), 1e-30, torch.Generator().manual_seed(0))
    assert z.shape == (2000, 16) and bool((z.abs() <= 1e-30).all())
    # Where rejection gives up (p(accept) = 0.4% at 0.005), the rest is the exact truncated normal: |z|/t ~ U(0, 1).
    z = truncated_normal((20_000,), 0.005, torch.Generator().manual_seed(1))
    assert bool((z.abs() <= 0.005).all()) and abs(float((z.abs() / 0.005).mean()) - 0.5) < 0.02
    for t in (0.25, 0.5, 1.0, 2.0):  # the seeded draws behind the README's truncation table stay bit for bit
        got = truncated_normal((500, 64), t, torch.Generator().manual_seed(3))
        assert torch.equal(got, _old_rejection((500, 64), t, torch.Generator().manual_seed(3)))


@pytest.mark.parametrize("value", ["1e-30", "0.001", "0", "-1", "nan", "inf"])
def test_truncation_below_the_floor_is_refused_by_sample_and_eval(runs, capsys, tmp_path, value) -> None:
    code, _, err = run_cli(capsys, "sample", runs["img"], "--truncation", value, "--out", tmp_path / "s.png")
    assert_user_error(code, err, "--truncation", str(TRUNCATION_MIN))
    code, out, err = run_cli(capsys, "eval", runs["img"], "--truncation", value, "--n", "10", "--metrics", "fd")
    assert_user_error(code, err, "--truncation", str(TRUNCATION_MIN))
    assert not out  # refused before any computation


def test_truncation_at_the_floor_samples(runs, capsys, tmp_path) -> None:
    code, _, err = run_cli(
        capsys, "sample", runs["img"], "--truncation", TRUNCATION_MIN, "--n", "4", "--out", tmp_path / "s.npy"
    )
    assert code == 0, err
    assert np.load(tmp_path / "s.npy").shape == (4, 1, 16, 16)


# ------------------------------------------------------------------ 2. 16-bit and palette images


def test_16_bit_greyscale_png_is_scaled_not_saturated(tmp_path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    values = (np.arange(16 * 16, dtype=np.int64).reshape(16, 16) * 65535 // 255).astype(np.uint16)  # 0..65535
    Image.fromarray(values).save(folder / "deep.png")
    assert Image.open(folder / "deep.png").mode.startswith("I")  # really a 16-bit file
    expected = np.rint(values / 257.0).astype(np.uint8)
    grey = load_dataset("folder", path=folder, image_size=16, channels=1)
    # Before: PIL's convert() clipped at 255, so 99.6% of the pixels came out white.
    assert np.array_equal(grey.x[0, 0].numpy(), expected)
    assert float((grey.x == 255).float().mean()) < 0.01
    rgb = load_dataset("folder", path=folder, image_size=16, channels=3)
    assert all(np.array_equal(rgb.x[0, c].numpy(), expected) for c in range(3))


def test_palette_png_with_transparency_decodes_to_its_colours(tmp_path, recwarn) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    pal = Image.new("P", (4, 4))
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 10, 20, 30] + [0] * (252 * 3))
    pal.putdata([1, 2, 3, 0] * 4)
    pal.save(folder / "p.png", transparency=0)
    pal.save(folder / "q.png", transparency=bytes([0, 128, 255, 255]))
    ds = load_dataset("folder", path=folder, image_size=4, channels=3)
    row = [[255, 0, 0], [0, 255, 0], [10, 20, 30], [0, 0, 0]]
    for i in range(2):
        assert ds.x[i, :, 0, :].T.tolist() == row
    assert not [w for w in recwarn if "transparency" in str(w.message).lower()]


# ------------------------------------------------------------------ 3. sample --out / --nrow


def test_sample_out_an_existing_folder_or_bad_nrow_is_refused(runs, capsys, tmp_path) -> None:
    folder = tmp_path / "grid.png"
    folder.mkdir()
    # Before: a traceback (IsADirectoryError from os.replace).
    code, _, err = run_cli(capsys, "sample", runs["img"], "--out", folder)
    assert_user_error(code, err, "existing folder")
    for nrow in ("0", "-2"):  # before: ZeroDivisionError traceback / a garbled grid
        code, _, err = run_cli(capsys, "sample", runs["img"], "--nrow", nrow, "--out", tmp_path / "g.png")
        assert_user_error(code, err, "--nrow")
    assert not (tmp_path / "g.png").exists()


def test_sample_out_npy_and_csv_write_the_raw_array(runs, capsys, tmp_path) -> None:
    # Before: every --out got a PNG, whatever its name.
    assert run_cli(capsys, "sample", runs["ring"], "--n", "10", "--out", tmp_path / "p.npy")[0] == 0
    pts = np.load(tmp_path / "p.npy")
    assert pts.shape == (10, 2) and pts.dtype == np.float32
    assert run_cli(capsys, "sample", runs["ring"], "--n", "10", "--out", tmp_path / "p.csv")[0] == 0
    csv = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1)
    assert csv.shape == (10, 2) and np.allclose(csv, pts, atol=1e-6)  # same seed, same points
    assert run_cli(capsys, "sample", runs["img"], "--n", "5", "--out", tmp_path / "i.npy")[0] == 0
    imgs = np.load(tmp_path / "i.npy")
    assert imgs.shape == (5, 1, 16, 16) and imgs.min() >= -1 and imgs.max() <= 1
    assert run_cli(capsys, "sample", runs["img"], "--n", "4", "--out", tmp_path / "g.jpg")[0] == 0
    assert Image.open(tmp_path / "g.jpg").format == "JPEG"


def test_sample_out_unknown_suffix_or_csv_of_images_is_refused(runs, capsys, tmp_path) -> None:
    code, _, err = run_cli(capsys, "sample", runs["img"], "--out", tmp_path / "s.txt")
    assert_user_error(code, err, "'.txt'", ".png", ".jpg", ".npy", ".csv")
    code, _, err = run_cli(capsys, "sample", runs["img"], "--out", tmp_path / "s.csv")
    assert_user_error(code, err, ".npy")
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ 4. damaged weights


def test_a_corrupt_ema_file_falls_back_to_the_raw_generator(runs, capsys, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(runs["img"], run)
    ema = run / "generator_ema.safetensors"
    ema.write_bytes(ema.read_bytes()[:100])  # truncated
    # Before: a SafetensorError traceback, though generator.safetensors was fine.
    code, _, err = run_cli(capsys, "sample", run, "--n", "4", "--out", tmp_path / "a.npy")
    assert code == 0, err
    assert "ganforge: warning:" in err and "generator_ema.safetensors" in err and "Traceback" not in err
    assert run_cli(capsys, "sample", runs["img"], "--n", "4", "--no-ema", "--out", tmp_path / "b.npy")[0] == 0
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))

    raw = run / "generator.safetensors"
    raw.write_bytes(raw.read_bytes()[:100])  # now nothing usable is left
    code, _, err = run_cli(capsys, "sample", run, "--n", "4", "--out", tmp_path / "c.npy")
    warning, error = err.strip().splitlines()  # the skipped EMA copy, then why nothing could be loaded
    assert warning.startswith("ganforge: warning:")
    assert_user_error(code, error, "generator.safetensors", "not a readable .safetensors file")


def test_a_file_that_is_not_safetensors_is_a_user_error(capsys, tmp_path) -> None:
    bogus = tmp_path / "g.safetensors"
    bogus.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    code, _, err = run_cli(capsys, "sample", bogus, "--out", tmp_path / "s.png")
    assert_user_error(code, err, "g.safetensors", "not a readable .safetensors file")
    code, _, err = run_cli(capsys, "eval", bogus, "--n", "10", "--metrics", "fd")
    assert_user_error(code, err, "g.safetensors")


# ------------------------------------------------------------------ 5. eval options


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["--batch", "0"], ["--batch", "at least 1"]),  # before: ValueError traceback (range step 0)
        (["--batch", "-5"], ["--batch"]),  # before: an empty evaluation / traceback
        (["--n", "1"], ["--n", "between 2"]),
        (["--n", "-4"], ["--n"]),
        (["--metrics", "cond_acc"], ["cond_acc", "conditional"]),  # before: an empty table, exit 0
        (["--metrics", "fd", "--device", "cuda:99"], ["cuda"]),
    ],
)
def test_eval_bad_options_are_refused_up_front(runs, capsys, argv, fragments) -> None:
    if "--device" in argv and not NO_CUDA:
        pytest.skip("CUDA is available here")
    code, out, err = run_cli(capsys, "eval", runs["img"], *argv)
    assert_user_error(code, err, *fragments)
    assert not out


def test_eval_json_to_an_existing_folder_is_refused_before_computing(runs, capsys, tmp_path, monkeypatch) -> None:
    import ganforge.metrics.evaluate as evaluate

    def boom(*a, **k):
        raise AssertionError("the evaluation ran before --json was checked")

    monkeypatch.setattr(evaluate.Evaluator, "evaluate", boom)
    # Before: the whole evaluation ran, then IsADirectoryError.
    code, _, err = run_cli(capsys, "eval", runs["img"], "--n", "10", "--metrics", "fd", "--json", tmp_path)
    assert_user_error(code, err, "--json", "existing folder")


def test_eval_of_a_missing_path_says_it_does_not_exist(capsys, tmp_path) -> None:
    # Before: "evaluating a folder of images needs --data DATASET".
    code, _, err = run_cli(capsys, "eval", tmp_path / "nope")
    assert_user_error(code, err, "does not exist")
    code, _, err = run_cli(capsys, "eval", tmp_path / "nope", "--data", "digits")
    assert_user_error(code, err, "does not exist")


def test_too_few_samples_for_a_metric_is_said_in_user_terms(runs, capsys) -> None:
    # Before: "fake_feats needs at least 4 samples, got 3".
    code, _, err = run_cli(capsys, "eval", runs["img"], "--n", "3", "--metrics", "fd,pr")
    assert_user_error(code, err, "'pr'", "at least 4 generated samples", "3 were given", "--n")
    assert "fake_feats" not in err


def test_eval_folder_with_fewer_images_than_n_warns_and_scores_them(runs, capsys, tmp_path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(10):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (16, 16), dtype=np.uint8)).save(folder / f"{i}.png")
    out = tmp_path / "eval.json"
    code, _stdout, err = run_cli(
        capsys,
        "eval",
        folder,
        "--data",
        "digits",
        "--image-size",
        "16",
        "--n",
        "100",
        "--metrics",
        "fd",
        "--device",
        "cpu",
        "--json",
        out,
    )
    assert code == 0, err
    # Before: silently scored 10.
    assert "ganforge: warning:" in err and "scoring only those 10" in err
    assert json.loads(out.read_text())["protocol"]["generated"]["n"] == 10


# ------------------------------------------------------------------ 6. Ctrl-C


@pytest.mark.parametrize("command", ["sample", "eval"])
def test_ctrl_c_in_sample_or_eval_does_not_suggest_resume(runs, capsys, monkeypatch, tmp_path, command) -> None:
    import ganforge.sampling

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ganforge.sampling, "load_generator", interrupted)
    extra = ["--out", str(tmp_path / "s.png")] if command == "sample" else ["--metrics", "fd", "--n", "10"]
    code, _, err = run_cli(capsys, command, runs["img"], *extra)
    assert code == 130
    assert "interrupted" in err and "--resume" not in err  # before: "continue with --resume"


# ------------------------------------------------------------------ 7. a text file named .npy


def test_a_text_file_named_npy_is_not_a_valid_npy_array(tmp_path) -> None:
    path = tmp_path / "points.npy"
    path.write_text("0.1, 0.2\n0.3, 0.4\n")
    with pytest.raises(DataError) as info:
        load_dataset("points", path=path)
    msg = str(info.value)
    assert "not a valid .npy array" in msg and "pickle" not in msg  # before: "contains pickled data"


# ------------------------------------------------------------------ 8. --device


@pytest.mark.skipif(not NO_CUDA, reason="CUDA is available here")
def test_device_cuda_without_cuda_is_refused(runs, capsys, tmp_path) -> None:
    code, _, err = run_cli(capsys, "sample", runs["img"], "--device", "cuda", "--out", tmp_path / "s.png")
    assert_user_error(code, err, "CUDA is not available")
    code, out, err = run_cli(capsys, "eval", runs["img"], "--device", "cuda", "--n", "10", "--metrics", "fd")
    assert_user_error(code, err, "CUDA is not available")
    assert not out


def test_device_cpu_and_bad_names(runs, capsys, tmp_path) -> None:
    code, _, err = run_cli(capsys, "sample", runs["img"], "--device", "cpu", "--n", "4", "--out", tmp_path / "s.npy")
    assert code == 0, err
    code, _, err = run_cli(capsys, "sample", runs["img"], "--n", "4", "--out", tmp_path / "t.npy")  # auto
    assert code == 0, err
    assert np.allclose(np.load(tmp_path / "s.npy"), np.load(tmp_path / "t.npy"), atol=1e-5)
    code, _, err = run_cli(capsys, "sample", runs["img"], "--device", "tpu", "--out", tmp_path / "u.png")
    assert_user_error(code, err, "tpu")
    out = tmp_path / "e.json"
    code, _, err = run_cli(
        capsys, "eval", runs["img"], "--device", "cpu", "--n", "20", "--metrics", "fd", "--json", out
    )
    assert code == 0, err
    res = json.loads(out.read_text())
    assert math.isfinite(res["metrics"]["fd_digits"]) and res["protocol"]["generated"]["n"] == 20
    assert "generator_ema.safetensors" in res["protocol"]["generated"]["source"]
