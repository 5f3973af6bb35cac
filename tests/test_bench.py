"""pixzip bench: every codec's round trip is verified, totals add up, and the
command line prints a table, writes JSON and fails cleanly on bad input."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from pixzip.cli.main import main

from pixzip.app import bench
from pixzip.learn.checkpoints import atomic_torch_save

from .conftest import tiny_model


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(1)
    smooth = np.add.outer(np.arange(9), np.arange(11)).astype(np.uint8)[..., None] * np.array([3, 5, 7], np.uint8)
    Image.fromarray(smooth).save(d / "a_smooth.png")
    Image.fromarray(rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)).save(d / "b_noise.png")
    Image.fromarray(rng.integers(0, 256, (1, 1, 3), dtype=np.uint8)).save(d / "c_one.png")
    (d / "notes.txt").write_text("not an image")
    return d


def test_bench_verifies_every_codec_and_totals_add_up(folder, model_dir):
    reports, summary = bench.run(bench.image_files([folder]), "tiny3", ("png", "webp"))
    assert [r.path.split("/")[-1] for r in reports] == ["a_smooth.png", "b_noise.png", "c_one.png"]
    total = summary["total"]
    n = sum(r.subpixels for r in reports)
    assert total["subpixels"] == n == 3 * (99 + 20 + 1)
    for name in ("pixzip-tiny3", "png", "webp"):
        assert total["codecs"][name]["bpsp"] == pytest.approx(8 * sum(r.codecs[name].bytes for r in reports) / n)
    # the file is the payload plus a fixed header; the payload tracks the cross-entropy
    for r in reports:
        m = r.models["pixzip-tiny3"]
        assert m.int_bpd > 0 and r.codecs["pixzip-tiny3"].bytes > m.payload_bytes
    assert summary["machine"]["cpus"] >= 1 and summary["models"]["pixzip-tiny3"]["name"] == "tiny3"
    assert any("float" in note for note in summary["notes"])   # no checkpoint given


def test_bench_reports_the_float_model_when_given_its_checkpoint(folder, tmp_path, model_dir):
    model = tiny_model("gated", 3, 6, 2, 3, seed=11).float()
    ckpt = tmp_path / "tiny.pt"
    atomic_torch_save({"model_config": model.config.to_dict(), "model": model.state_dict()}, ckpt)
    reports, summary = bench.run([folder / "b_noise.png"], "tiny3", ("png",), float_checkpoints=[ckpt])
    x = torch.from_numpy(np.asarray(Image.open(folder / "b_noise.png")).transpose(2, 0, 1)[None].copy())
    from pixzip.learn.likelihood import LN2, nll_nats
    with torch.no_grad():
        expected = nll_nats(model(x), x, reduction="sum").item() / x.numel() / LN2
    assert reports[0].models["pixzip-tiny3"].float_bpd == pytest.approx(expected)
    assert summary["total"]["models"]["pixzip-tiny3"]["float_bpd"] == pytest.approx(expected)


def test_a_gray_image_under_an_rgb_model_and_its_float_checkpoint_is_benched_by_the_mixers(tmp_path, model_dir):
    """A gray image with an RGB model and its float checkpoint: the mixer
    over the network's colour-0 counts (coder 7) and the mixer alone are
    measured; the network alone and the float bits/dim, which code RGB only,
    are left out instead of failing (the float model crashed on it)."""
    model = tiny_model("gated", 3, 6, 2, 3, seed=11).float()
    ckpt = tmp_path / "tiny.pt"
    atomic_torch_save({"model_config": model.config.to_dict(), "model": model.state_dict()}, ckpt)
    gray = tmp_path / "g.png"
    Image.fromarray(np.add.outer(np.arange(7), 3 * np.arange(9)).astype(np.uint8)).save(gray)
    reports, summary = bench.run([gray], "tiny3", ("png",), float_checkpoints=[ckpt])
    codecs = reports[0].codecs
    assert "pixzip-tiny3" not in codecs and {"pixzip-tiny3+cm", "pixzip-cm", "png"} <= set(codecs)
    assert reports[0].models["pixzip-tiny3+cm"].float_bpd is None
    assert reports[0].models["pixzip-tiny3+cm"].cm_bpd > 0


def test_the_float_bits_per_dim_of_an_image_taller_than_a_strip_match_one_pass():
    model = tiny_model("gated", 3, 6, 2, 3, seed=12)   # float64: rounding stays far below a context error
    rows = 2 * bench.FLOAT_TILE_PIXELS // 256 + 40        # a 256-wide image of two strips and a part
    pixels = np.random.default_rng(3).integers(0, 256, (rows, 256, 3), dtype=np.uint8)
    x = torch.from_numpy(pixels.transpose(2, 0, 1)[None].copy())
    from pixzip.learn.likelihood import LN2, nll_nats
    with torch.no_grad():
        expected = nll_nats(model(x), x, reduction="sum").item() / x.numel() / LN2
    assert bench.float_bpd(model, pixels) == pytest.approx(expected, rel=1e-10)


def test_a_round_trip_that_is_not_exact_is_an_error():
    a = np.zeros((2, 2, 3), np.uint8)
    bench._check("x", "img.png", a, a.copy())
    b = a.copy()
    b[1, 1, 2] = 1
    with pytest.raises(bench.RoundTripError, match="img.png: x round trip"):
        bench._check("x", "img.png", a, b)


@pytest.mark.skipif(bench.jxl_backend() is None, reason="no JPEG-XL here")
def test_jpeg_xl_round_trip(folder, model_dir):
    reports, summary = bench.run([folder / "a_smooth.png"], "tiny3", ("jxl",))
    assert "jxl" in reports[0].codecs and summary["codecs"]["jxl"]


def test_cli_bench_table_and_json(folder, tmp_path, model_dir):
    out = tmp_path / "bench.json"
    r = CliRunner().invoke(main, ["bench", str(folder), "-m", "tiny3", "--against", "png,webp", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "| a_smooth.png | 11x9 |" in r.output and "**total (3)**" in r.output
    data = json.loads(out.read_text())
    assert len(data["images"]) == 3
    assert set(data["total"]["codecs"]) == {"pixzip-tiny3", "pixzip-tiny3+cm", "pixzip-cm", "png", "webp"}
    # the mixer with and without the network, and the network's own cross-entropy beside the mixer's
    mixed = data["total"]["models"]["pixzip-tiny3+cm"]
    assert mixed["int_bpd"] > 0 and mixed["cm_bpd"] > 0 and "int_bpd" not in data["total"]["models"]["pixzip-cm"]


def test_bench_compares_several_models_in_one_run(folder, tmp_path, model_dir):
    other = tmp_path / "other.pxm"
    other.write_bytes((model_dir / "tiny3.pxm").read_bytes())
    r = CliRunner().invoke(main, ["bench", str(folder / "a_smooth.png"), "-m", "tiny3", "-m", str(other),
                                  "--against", "png"])
    assert r.exit_code == 0, r.output
    header = r.output.splitlines()[0]
    assert "pixzip-tiny3 bpsp" in header and "pixzip-other bpsp" in header and "png bpsp" in header
    assert "pixzip-tiny3 enc / dec s" in r.output and "pixzip-other enc / dec s" in r.output
    # the same model under two labels makes the same file
    reports, summary = bench.run([folder / "a_smooth.png"], ["tiny3", other], ("png",), methods=("network",))
    assert reports[0].codecs["pixzip-tiny3"].bytes == reports[0].codecs["pixzip-other"].bytes
    assert set(summary["models"]) == {"pixzip-tiny3", "pixzip-other"}
    with pytest.raises(bench.PixzipError, match="named twice"):
        bench.run([folder / "a_smooth.png"], ["tiny3", "tiny3"], ("png",), methods=("network",))


@pytest.mark.parametrize("args,message", [
    (["{missing}"], "no such file"),
    (["{folder}", "--against", "gif"], "unknown codec"),
    (["{empty}"], "no images found"),
])
def test_cli_bench_bad_input(folder, tmp_path, model_dir, args, message):
    (tmp_path / "empty").mkdir()
    paths = {"missing": tmp_path / "nope.png", "folder": folder, "empty": tmp_path / "empty"}
    r = CliRunner().invoke(main, ["bench", *[a.format(**paths) for a in args], "-m", "tiny3"])
    assert r.exit_code == 1
    assert message in r.output.lower()
    assert len(r.output.strip().splitlines()) == 1


def test_demo_compresses_the_bundled_sample(model_dir):
    r = CliRunner().invoke(main, ["demo", "-m", "tiny3"])
    assert r.exit_code == 0, r.output
    assert "decoded pixel-exact" in r.output and "PNG:" in r.output and "pixzip compress photo.png" in r.output


def test_demo_without_the_model_fails_in_one_line(model_dir):
    r = CliRunner().invoke(main, ["demo", "-m", "nope"])
    assert r.exit_code == 1
    assert "unknown model 'nope'" in r.output
