"""compress / decompress / info / test / models on the command line, with
gzip/zstd conventions and exit codes."""
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from pixzip.cli.main import main


@pytest.fixture
def images(tmp_path, model_dir, network_payload):
    rng = np.random.default_rng(0)
    paths = []
    for k in range(2):
        p = tmp_path / f"img{k}.png"
        Image.fromarray(rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def pixels(path):
    with Image.open(path) as im:
        return np.asarray(im)


def test_compress_decompress_keep_inputs(images, tmp_path):
    src = images[0]
    want = pixels(src)
    r = run("compress", src, "-m", "tiny3")
    assert r.exit_code == 0, r.output
    pxz = tmp_path / "img0.png.pxz"
    assert pxz.exists() and src.exists()
    assert not (tmp_path / "img0.pxz").exists(), "the suffix is appended, not replaced"
    src.unlink()
    r = run("decompress", pxz)
    assert r.exit_code == 0, r.output
    assert np.array_equal(pixels(tmp_path / "img0.png"), want) and pxz.exists()


def test_no_overwrite_without_force(images, tmp_path):
    src = images[0]
    assert run("compress", src, "-m", "tiny3").exit_code == 0
    pxz = tmp_path / "img0.png.pxz"
    before = pxz.read_bytes()
    pxz.write_bytes(b"precious")
    r = run("compress", src, "-m", "tiny3")
    assert r.exit_code == 1 and "already exists" in r.stderr
    assert pxz.read_bytes() == b"precious"
    assert run("compress", src, "-m", "tiny3", "-f").exit_code == 0
    assert pxz.read_bytes() == before
    r = run("decompress", pxz)  # img0.png exists
    assert r.exit_code == 1 and "already exists" in r.stderr
    assert run("decompress", pxz, "-f").exit_code == 0


def test_rm_removes_only_after_success(images, tmp_path):
    src = images[0]
    r = run("compress", src, "-m", "tiny3", "--rm")
    assert r.exit_code == 0 and not src.exists() and (tmp_path / "img0.png.pxz").exists()
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    r = run("compress", bad, "-m", "tiny3", "--rm")
    assert r.exit_code == 1 and bad.exists()


def test_several_files_one_failure(images, tmp_path):
    missing = tmp_path / "missing.png"
    r = run("compress", images[0], missing, images[1], "-m", "tiny3")
    assert r.exit_code == 1
    lines = [l for l in r.stderr.splitlines() if l.startswith("pixzip:")]
    assert len(lines) == 1 and "missing.png" in lines[0] and "no such file" in lines[0]
    assert (tmp_path / "img0.png.pxz").exists() and (tmp_path / "img1.png.pxz").exists()
    assert not list(tmp_path.glob(".*.tmp")), "no half-written outputs"


def test_output_name_and_stdout(images, tmp_path):
    out = tmp_path / "named.pxz"
    assert run("compress", images[0], "-m", "tiny3", "-o", out).exit_code == 0
    r = run("compress", images[0], "-m", "tiny3", "-c")
    assert r.exit_code == 0 and r.stdout_bytes == out.read_bytes()
    r = run("decompress", out, "-c")
    assert r.exit_code == 0 and r.stdout_bytes[:8] == b"\x89PNG\r\n\x1a\n"
    r = run("decompress", "-", "-o", tmp_path / "from_stdin.bmp", input=out.read_bytes())
    assert r.exit_code == 0, r.output
    assert np.array_equal(pixels(tmp_path / "from_stdin.bmp"), pixels(images[0]))
    r = run("compress", "-", "-m", "tiny3", input=images[0].read_bytes())
    assert r.exit_code == 0 and r.stdout_bytes == out.read_bytes()
    assert run("compress", *images, "-o", out, "-f").exit_code == 2  # -o with two inputs


def test_decompress_errors(tmp_path, model_dir):
    junk = tmp_path / "junk.pxz"
    junk.write_bytes(b"hello world")
    r = run("decompress", junk)
    assert r.exit_code == 1 and "junk.pxz" in r.stderr and "magic" in r.stderr
    assert not (tmp_path / "junk.png").exists()
    other = tmp_path / "photo.xyz"
    other.write_bytes(b"x")
    r = run("decompress", other)
    assert r.exit_code == 1 and "suffix" in r.stderr
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    r = run("compress", empty, "-m", "tiny3")
    assert r.exit_code == 1 and "empty.png" in r.stderr and "empty" in r.stderr
    r = run("compress", tmp_path, "-m", "tiny3")
    assert r.exit_code == 1 and "directory" in r.stderr


def test_refuses_lossy_output_and_unsupported_modes(images, tmp_path):
    assert run("compress", images[0], "-m", "tiny3").exit_code == 0
    r = run("decompress", tmp_path / "img0.png.pxz", "-o", tmp_path / "x.jpg")
    assert r.exit_code == 1 and "lossy" in r.stderr
    cmyk = tmp_path / "cmyk.tif"
    Image.new("CMYK", (3, 3)).save(cmyk)
    r = run("compress", cmyk, "-m", "tiny3")
    assert r.exit_code == 1 and "cmyk.tif: a CMYK TIFF" in r.stderr


def test_strip_height_option(images, tmp_path):
    r = run("compress", images[0], "-m", "tiny3", "--strip-height", "2", "-o", tmp_path / "s.pxz")
    assert r.exit_code == 0, r.output
    r = run("info", tmp_path / "s.pxz")
    assert "strip_height       2" in r.output
    assert run("decompress", tmp_path / "s.pxz", "-o", tmp_path / "s.png").exit_code == 0
    assert np.array_equal(pixels(tmp_path / "s.png"), pixels(images[0]))
    assert run("compress", images[0], "-m", "tiny3", "--strip-height", "-1").exit_code == 2


def test_parts_option(images, tmp_path):
    """--parts N: the mixer's column parts with a network, each its own state (1: one state); the
    archive decodes to the image; out of 1..16 a usage error."""
    from .conftest import column_parts_of
    for parts in (1, 3):
        out = tmp_path / f"p{parts}.pxz"
        r = run("compress", images[0], "-m", "tiny3", "--method", "mixer+network", "--parts", parts, "-o", out)
        assert r.exit_code == 0, r.output
        assert column_parts_of(out.read_bytes()) == parts
        assert run("decompress", out, "-o", tmp_path / f"p{parts}.png").exit_code == 0
        assert np.array_equal(pixels(tmp_path / f"p{parts}.png"), pixels(images[0]))
    for bad in (0, 17):
        r = run("compress", images[0], "-m", "tiny3", "--parts", bad, "-o", tmp_path / "bad.pxz")
        assert r.exit_code == 2 and "--parts" in r.output and not (tmp_path / "bad.pxz").exists()


def test_info_test_models(images, tmp_path):
    assert run("compress", images[0], "-m", "tiny3").exit_code == 0
    pxz = tmp_path / "img0.png.pxz"
    r = run("info", pxz)
    assert r.exit_code == 0 and "tiny3" in r.output and "bits_per_subpixel" in r.output
    r = run("test", pxz)
    assert r.exit_code == 0 and "OK" in r.output
    bad = tmp_path / "bad.pxz"
    data = bytearray(pxz.read_bytes())
    data[-6] ^= 0xFF
    bad.write_bytes(bytes(data))
    r = run("test", bad)
    assert r.exit_code == 1 and "bad.pxz" in r.stderr
    r = run("models")
    assert r.exit_code == 0 and "tiny3" in r.output and "tiny1" in r.output


def test_binary_is_never_written_to_a_terminal(images, tmp_path, monkeypatch):
    import sys

    from pixzip.app import files
    from pixzip.errors import PixzipError

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    with pytest.raises(PixzipError, match="terminal"):
        files.compress_file(str(images[0]), files.Delivery(to_stdout=True), model="tiny3")
    assert not (tmp_path / "img0.png.pxz").exists()


@pytest.fixture
def levels(model_dir):
    """A user's folder that tries to repoint the levels (fast -> tinyfast), and an alias of its own."""
    import json

    from .conftest import tiny_int_model
    fast = tiny_int_model(3, name="tinyfast")
    (model_dir / "tinyfast.pxm").write_bytes(fast.to_bytes())
    (model_dir / "aliases.json").write_text(json.dumps({"default": "tiny3", "fast": "tinyfast", "max": "tinymax",
                                                        "mine": "tinyfast"}))
    return model_dir


def test_levels_are_aliases_and_files_name_the_real_model(images, levels):
    # the default level is the mixer 3 alone, -1 the mixer 1 alone, -m and --method force a network,
    # --method alone codes with the shipped 'max' model; a user's aliases.json cannot repoint
    # a level's alias, and its own aliases are used when named
    for flags, payload, name, coder in (
            ([], "mixer", None, "8: context mixer 3"), (["-1"], "mixer", None, "2: context mixer 1"),
            (["--method", "network"], "network", "photo-g66x8-v1", "1: range coder"),
            (["-m", "fast", "--method", "network"], "network", "photo-g36x4-v1", "1: range coder"),
            (["-m", "mine", "--method", "network"], "network", "tinyfast", "1: range coder"),
            (["-m", "tiny3", "--method", "mixed"], "network", "tiny3", "12: context mixer 6 in column parts"),
            (["--method", "mixer"], "mixer", None, "8: context mixer 3")):
        r = run("compress", images[0], "-f", *flags)
        assert r.exit_code == 0, r.output
        info = run("info", images[0].with_name("img0.png.pxz"))
        assert f"payload            {payload}" in info.output, (flags, info.output)
        assert (f"model              {name}" in info.output) if name else "model " not in info.output
        assert coder in info.output, (flags, info.output)
        assert run("test", images[0].with_name("img0.png.pxz")).exit_code == 0
    assert run("compress", images[0], "-f", "-1", "-m", "tiny3").exit_code == 2
    assert run("compress", images[0], "-f", "--method", "mixer", "-m", "tiny3").exit_code == 2
    r = run("models")
    assert "fast         -> photo-g36x4-v1" in r.output and "mine         -> tinyfast" in r.output, r.output
    assert run("compress", images[0], "-f", "-9").exit_code == 0
    assert "model              photo-g66x8-v1" in run("info", images[0].with_name("img0.png.pxz")).output


def _cuda_visible() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(_cuda_visible(), reason="this machine has a GPU")
def test_compress_on_cuda_without_a_gpu_is_refused_by_name_before_any_work(images, tmp_path):
    r = run("compress", "--device", "cuda", "-1", *images)
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "'cuda'" in lines[0], r.output
    assert not list(tmp_path.glob("*.pxz"))


def test_compress_on_the_cpu_makes_the_bytes_of_the_default_device(images, tmp_path):
    src = images[0]
    assert run("compress", "-m", "tiny3", "--device", "cpu", "-o", tmp_path / "cpu.pxz", src).exit_code == 0
    assert run("compress", "-m", "tiny3", "-o", tmp_path / "auto.pxz", src).exit_code == 0
    assert (tmp_path / "cpu.pxz").read_bytes() == (tmp_path / "auto.pxz").read_bytes()
