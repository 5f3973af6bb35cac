"""The command line's edges: outputs that are devices or FIFOs, the input's
permissions and times kept, one line (never a traceback) for every kind of
failure, archive strings escaped on the terminal, `test` and `decompress`
agreeing on metadata, `decompress -c` writing only the formats pixzip
writes on purpose, and the commands that need PyTorch when it is missing."""
import math
import os
import re
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from pixzip.cli import main as cli

from pixzip.codec import api as codec
from pixzip.codec import coders
from pixzip.codec.format import container
from pixzip.codec.format.metadata import Metadata

from .test_cli_safety import clean_failure, photo_pixels, read_pixels, save_png, segments

CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")    # every control character but the newline


def run(*args, input=None, env=None):
    return CliRunner().invoke(cli.main, [str(a) for a in args], input=input, env=env)


@pytest.fixture
def work(tmp_path, model_dir):
    d = tmp_path / "work"
    d.mkdir()
    png = save_png(photo_pixels(12, 16, seed=3), d / "a.png")
    return {"dir": d, "png": png, "pixels": read_pixels(png)}


def stored_archive(path, pixels, md, payload="raw"):
    Path(path).write_bytes(codec.compress(pixels, payload=payload, metadata=md))
    return Path(path)


# ------------------------------------------------------------ outputs that are not regular files

def _char_device(path):
    """A private copy of /dev/null (character device 1, 3)."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (OSError, AttributeError) as e:
        pytest.skip(f"cannot make a device node here: {e}")
    return path


def test_compress_and_decompress_write_into_a_character_device_and_leave_it_a_device(work):
    null = _char_device(work["dir"] / "null")
    r = run("compress", "-1", work["png"], "-o", null, "-f")
    assert r.exit_code == 0, r.output
    assert stat.S_ISCHR(null.lstat().st_mode), "the device node was replaced"
    pxz = work["dir"] / "a.png.pxz"
    assert run("compress", "-1", "-q", work["png"]).exit_code == 0
    r = run("decompress", pxz, "-o", null, "-f")
    assert r.exit_code == 0, r.output
    assert stat.S_ISCHR(null.lstat().st_mode)
    assert sorted(p.name for p in work["dir"].iterdir()) == ["a.png", "a.png.pxz", "null"]   # no temp file


def test_rm_with_a_device_output_keeps_the_input_and_says_so(work):
    null = _char_device(work["dir"] / "null")
    r = run("compress", "-1", "--rm", work["png"], "-o", null, "-f")
    assert r.exit_code == 0, r.output
    assert work["png"].exists(), "the input was deleted though its output went to a device"
    assert "not a regular file" in r.stderr and "kept" in r.stderr


def test_a_terminal_named_as_output_is_refused(work):
    master, slave = os.openpty()
    try:
        line = clean_failure(run("compress", "-1", work["png"], "-o", os.ttyname(slave), "-f"), "terminal")
        assert os.ttyname(slave) in line
    finally:
        os.close(master)
        os.close(slave)


def test_a_fifo_output_is_refused_by_name_and_left_a_fifo(work):
    fifo = work["dir"] / "out.pxz"
    os.mkfifo(fifo)
    line = clean_failure(run("compress", "-1", work["png"], "-o", fifo, "-f"), fifo, "not a regular file")
    assert "FIFO" in line or "fifo" in line
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


# ------------------------------------------------------------ permissions and times

OLD = 978_307_200_123_456_789     # 2001-01-01, with nanoseconds


@pytest.mark.parametrize("force", [False, True], ids=["fresh", "force"])
def test_outputs_keep_the_inputs_mode_and_times(work, force):
    png, d = work["png"], work["dir"]
    png.chmod(0o600)
    os.utime(png, ns=(OLD, OLD))
    pxz, back = d / "a.png.pxz", d / "back.png"
    if force:        # existing world-readable outputs, replaced
        for p in (pxz, back):
            p.write_bytes(b"old")
            p.chmod(0o644)
    assert run("compress", "-1", "-q", png, *(["-f"] if force else [])).exit_code == 0
    assert stat.S_IMODE(pxz.stat().st_mode) == 0o600
    assert pxz.stat().st_mtime_ns == OLD
    assert run("decompress", "-q", pxz, "-o", back, *(["-f"] if force else [])).exit_code == 0
    assert stat.S_IMODE(back.stat().st_mode) == 0o600
    assert back.stat().st_mtime_ns == OLD
    assert np.array_equal(read_pixels(back), work["pixels"])


def test_setuid_and_setgid_bits_are_not_passed_on(work):
    png = work["png"]
    png.chmod(0o6750)
    assert run("compress", "-1", "-q", png).exit_code == 0
    assert stat.S_IMODE(Path(f"{png}.pxz").stat().st_mode) == 0o750


def test_standard_input_gives_the_usual_mode(work):
    out = work["dir"] / "in.pxz"
    mask = os.umask(0o022)
    try:
        r = run("compress", "-1", "-q", "-", "-o", out, input=work["png"].read_bytes())
    finally:
        os.umask(mask)
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


# ------------------------------------------------------------ one line, never a traceback

def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def test_metadata_over_the_limit_is_one_line_naming_it_before_any_coding(work, monkeypatch):
    """A PNG with a 65 MB eXIf chunk (over the 64 MB per item the format holds)."""
    big = work["dir"] / "big.png"
    ihdr = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" + bytes(6) + b"\0" + bytes(6))
    exif = b"MM\0*\0\0\0\x08" + bytes(65 * 2**20)
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"eXIf", exif)
                    + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b""))

    def no_coding(*a, **k):
        raise AssertionError("the image was coded before its metadata was checked")
    monkeypatch.setattr(coders.Mixer, "encode", no_coding)
    line = clean_failure(run("compress", "-1", big), big, str(container.MAX_CHUNK_BYTES), "--strip")
    assert re.search(r": EXIF is 6815\d{4} bytes, over the limit", line), line
    assert not Path(f"{big}.pxz").exists()


def test_a_strip_height_over_the_format_is_a_usage_error_before_any_work(work, monkeypatch):
    def no_coding(*a, **k):
        raise AssertionError("coded before the option was checked")
    monkeypatch.setattr(coders.Mixer, "encode", no_coding)
    r = run("compress", "-1", "--strip-height", 5_000_000_000, work["png"])
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit), (r.exit_code, r.output, r.exception)
    assert "Traceback" not in r.output and "--strip-height" in r.stderr
    assert not Path(f"{work['png']}.pxz").exists()


def test_the_library_refuses_a_strip_height_it_cannot_store_before_coding(monkeypatch):
    monkeypatch.setattr(coders.Mixer, "encode", lambda *a, **k: pytest.fail("coded first"))
    with pytest.raises(ValueError, match="strip_height"):
        codec.compress(np.zeros((2, 2, 3), np.uint8), options=codec.Options(strip_height=2**32))


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("boom\nsecond line \x1b[2J")],
                         ids=["memory", "unexpected"])
def test_any_failure_of_a_file_is_one_line_and_the_batch_goes_on(work, monkeypatch, error):
    b = save_png(photo_pixels(10, 12, seed=4), work["dir"] / "b.png")
    seen = []
    real = codec.compress

    def failing(image, *a, **k):
        seen.append(len(seen))
        if len(seen) == 1:
            raise error
        return real(image, *a, **k)
    monkeypatch.setattr(codec, "compress", failing)
    r = run("compress", "-1", "-j", "1", work["png"], b)     # in this process, where the patch is
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), (r.exit_code, r.output, r.exception)
    assert "Traceback" not in r.output
    lines = segments(r.stderr)
    assert len(lines) == 2, lines      # the failure, then b's success line
    assert lines[0].startswith(f"pixzip: {work['png']}: ")
    assert not CONTROL.search(lines[0])
    if isinstance(error, MemoryError):
        assert "out of memory" in lines[0]
    else:
        assert "RuntimeError" in lines[0] and "boom" in lines[0] and "PIXZIP_DEBUG=1" in lines[0]
    assert Path(f"{b}.pxz").exists() and not Path(f"{work['png']}.pxz").exists()


def test_pixzip_debug_shows_the_traceback_of_an_unexpected_error(work, monkeypatch):
    monkeypatch.setattr(codec, "compress", lambda *a, **k: 1 / 0)
    r = run("compress", "-1", work["png"], env={"PIXZIP_DEBUG": "1"})
    assert r.exit_code == 1
    assert "Traceback" in r.stderr and "ZeroDivisionError" in r.stderr


def test_an_unexpected_error_outside_a_file_is_one_line_too(monkeypatch, capsys):
    from pixzip.codec.network import registry
    monkeypatch.setattr(registry, "available", lambda: 1 / 0)
    monkeypatch.delenv("PIXZIP_DEBUG", raising=False)
    with pytest.raises(SystemExit) as e:
        cli.entry(["models"])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(segments(err)) == 1 and "ZeroDivisionError" in err and "PIXZIP_DEBUG=1" in err


# ------------------------------------------------------------ archive strings on the terminal

def test_info_escapes_every_control_character_from_the_archive(work):
    evil_name = "\x1b]0;pwned\x07\x1b[31mRED"
    pixels = work["pixels"]
    md = Metadata(format="\x1b[2J\x1b[31mCLEARED\x9b", text=(("\x1b]0;key\x07", "value \x1b[5m"),))
    a = stored_archive(work["dir"] / "fmt.pxz", pixels, md)
    payload = b"\0" * 8
    h = container.Header(evil_name, b"\0" * 8, 4, 4, "RGB", 0, len(payload))
    b = work["dir"] / "name.pxz"
    b.write_bytes(container.pack(h, payload, 0))
    r = run("info", a, b)
    assert r.exit_code == 0, r.output
    assert not CONTROL.search(r.stdout), repr(r.stdout)
    assert "CLEARED" in r.stdout and "RED" in r.stdout and "key" in r.stdout
    assert "\\x1b" in r.stdout


# ------------------------------------------------------------ test and decompress agree

@pytest.mark.parametrize("md", [
    Metadata(format="PNG", dpi=(math.nan, 72.0)),
    Metadata(format="PNG", dpi=(-300.0, -300.0)),
    Metadata(format="PNG", text=(("\u20ac", "euro"),)),
    Metadata(format="PNG", text=(("a\0b", "nul"),)),
], ids=["dpi-nan", "dpi-negative", "text-key-not-latin1", "text-key-nul"])
def test_test_refuses_what_decompress_refuses_and_strip_still_recovers(work, md):
    pxz = stored_archive(work["dir"] / "m.png.pxz", work["pixels"], md)
    d = clean_failure(run("decompress", pxz), "PNG")
    t = clean_failure(run("test", pxz), pxz, "PNG")
    reason = lambda line: line.split(": ", 2)[2]   # noqa: E731  (after "pixzip: FILE: ")
    assert reason(t) == reason(d), (t, d)
    assert not (work["dir"] / "m.png").exists()
    assert run("decompress", "--strip", "-q", pxz).exit_code == 0
    assert np.array_equal(read_pixels(work["dir"] / "m.png"), work["pixels"])


def test_test_passes_an_archive_whose_metadata_can_be_written(work):
    pxz = stored_archive(work["dir"] / "ok.png.pxz", work["pixels"], Metadata(format="PNG", dpi=(300.0, 300.0),
                                                                          text=(("Title", "ok"),)))
    r = run("test", pxz)
    assert r.exit_code == 0 and "OK" in r.stdout


# ------------------------------------------------------------ decompress -c picks only pixzip's formats

@pytest.mark.parametrize("fmt", ["DDS", "ICO", "EPS", "JPEG2000", "PDF"])
def test_decompress_to_stdout_writes_png_for_formats_pixzip_does_not_write(work, fmt):
    pxz = stored_archive(work["dir"] / "x.pxz", work["pixels"], Metadata(format=fmt))
    r = run("decompress", "-c", pxz)
    assert r.exit_code == 0, r.output
    assert r.stdout_bytes.startswith(b"\x89PNG\r\n\x1a\n")
    assert np.array_equal(np.asarray(Image.open(__import__("io").BytesIO(r.stdout_bytes))), work["pixels"])


@pytest.mark.parametrize("fmt,magic", [("TIFF", (b"II*\0", b"MM\0*")), ("BMP", (b"BM",)), ("PPM", (b"P6",))])
def test_decompress_to_stdout_keeps_the_formats_pixzip_writes(work, fmt, magic):
    pxz = stored_archive(work["dir"] / "x.pxz", work["pixels"], Metadata(format=fmt))
    r = run("decompress", "-c", pxz)
    assert r.exit_code == 0, r.output
    assert r.stdout_bytes.startswith(magic)


# ------------------------------------------------------------ without PyTorch

# torch (and safetensors) absent as after `pip install .`: `import torch` raises
# ModuleNotFoundError and importlib.util.find_spec("torch") is None
NO_TORCH = """
import sys
sys.modules["torch"] = None
sys.modules["safetensors"] = None
from pixzip.cli.main import entry
entry(sys.argv[1:])
"""


def no_torch(args, cwd, env=None, timeout=300):
    return subprocess.run([sys.executable, "-c", NO_TORCH, *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ, **(env or {})))


@pytest.mark.parametrize("args", [
    ["train", "data", "-o", "run.pt"],
    ["eval", "run.pt", "data"],
    ["sample", "run.pt", "-o", "grid.png"],
    ["export", "run.pt", "--name", "mine", "--calib", "data"],
], ids=["train", "eval", "sample", "export"])
def test_commands_that_need_torch_say_so_in_one_line_without_it(tmp_path, args):
    r = no_torch(args, tmp_path)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = segments(r.stderr)
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"pixzip: {args[0]} needs PyTorch") and "pip install 'pixzip[train]'" in lines[0]


def test_bench_runs_without_torch(work):
    r = no_torch(["bench", "--method", "mixer", "--against", "png", work["png"]], work["dir"])
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "pixzip -1 bpsp" in r.stdout and "png bpsp" in r.stdout     # without -m: the levels


@pytest.mark.slow
def test_bench_of_a_network_without_torch_leaves_out_only_the_float_figure(work, model_dir):
    r = no_torch(["bench", "-m", "tiny3", "--method", "network", "--against", "png", work["png"]], work["dir"],
                 env={"PIXZIP_MODELS": str(model_dir)}, timeout=600)
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith("| a.png"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "—" and all(c != "—" for c in cells[3:4])    # no float bits/dim; the network's own
    assert "PyTorch" in r.stdout


def test_bench_with_a_float_checkpoint_without_torch_says_what_to_install(work):
    r = no_torch(["bench", "--method", "mixer", "--float", "x.safetensors", "--against", "png", work["png"]],
                 work["dir"])
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "pip install 'pixzip[train]'" in r.stderr
