"""Decompression bombs and unbounded inputs: small hostile archives, endless
inputs, devices and FIFOs.

Every archive that claims more than the decoder may take is refused by name
before anything large is allocated: the pixel limit (what the CLI can write,
Pillow's 178,956,970 pixels) and an absolute memory limit that every payload
kind obeys (``api.DEFAULT_MEMORY``, raised by name with ``--memory`` or
$PIXZIP_MAX_MEMORY).  Inputs are read in bounded steps: an archive's magic
and header first, then only the payload its header declares (and one byte to
find trailing data); devices are refused by name; a FIFO is read once.

The builders here make the audit's hostile archives; ``benchmarks/bombs.py``
writes them at their real sizes and times ``pixzip test`` on each.
"""
from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixzip.codec import api as codec
from pixzip.codec.format import container
from pixzip.codec.mixer.one_state import min_payload_bytes     # imported here: its import is not timed
from pixzip.errors import CorruptError, LimitError, PixzipError

from .test_fuzz import CaseTimeout, deadline

REPO = Path(__file__).resolve().parent.parent
DEADLINE = 10.0       # seconds: what the unbounded decoder took minutes for is interrupted here


# ---------------------------------------------------------------- the audit's archives

def header(kind: int, coder: int, h: int, w: int, c: int, plen: int, name: bytes = b"", mhash: bytes = b"") -> bytes:
    """A format-2 header (with its CRC) that claims an h x w image of c colours."""
    head = (container.MAGIC + bytes([2, 0, kind, coder, len(name)]) + name + mhash
            + struct.pack("<IIBBI", h, w, c, 1 if c == 3 else 0, 0) + bytes([0, 0]) + struct.pack("<Q", plen))
    return head + struct.pack("<I", zlib.crc32(head))


def archive(kind: int, coder: int, h: int, w: int, c: int, payload: bytes, pixcrc: int = 0, **kw) -> bytes:
    return header(kind, coder, h, w, c, len(payload), **kw) + payload + struct.pack("<I", pixcrc)


def mixer_bomb(n: int = 4096, payload_bytes: int | None = None) -> bytes:
    """The audit's mixer bomb: kind 3 claiming n x n RGB over a payload of
    zeros at the old payload-length bound (18,311 bytes for 4096 x 4096)."""
    if payload_bytes is None:
        payload_bytes = int(n * n * 3 * 8 * 0.000726 / 2 / 8) - 8 + 8
    return archive(container.MIXER, container.MIXER_CODER, n, n, 3, bytes(payload_bytes))


def parts_bomb(net, n: int = 1024, payload_bytes: int = 1145) -> bytes:
    """The audit's network bomb: kind 0, coder 3 (the mixer with the network's
    counts in 2 column parts) naming ``net``, claiming n x n over a payload of
    zeros (1,208 bytes for 1024 x 1024)."""
    body = payload_bytes - 5
    payload = bytes([2]) + struct.pack("<I", body // 2) + bytes(body)
    return archive(container.NETWORK, container.PARTS_CODER, n, n, 3, payload, name=net.name.encode(),
                   mhash=bytes.fromhex(net.sha256[:16]))


def zero_crc(n_bytes: int) -> int:
    crc, step = 0, bytes(1 << 20)
    for k in range(0, n_bytes, len(step)):
        crc = zlib.crc32(step[:min(len(step), n_bytes - k)], crc)
    return crc


def deflate_bomb(n: int = 16384, level: int = 9) -> bytes:
    """The audit's deflate bomb: PNG's filtered rows of an n x n black RGB
    image, deflated (782,789 bytes for 16384 x 16384), with its true pixel CRC."""
    co, row = zlib.compressobj(level), bytes(3 * n + 1)
    payload = b"".join([co.compress(row) for _ in range(n)] + [co.flush()])
    return archive(container.DEFLATE, 0, n, n, 3, payload, zero_crc(3 * n * n))


def _decode(data: bytes, model=None, **kw):
    """(outcome, seconds, tracemalloc peak) of decoding ``data`` under DEADLINE."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    t = time.perf_counter()
    try:
        with deadline(DEADLINE):
            codec.decompress(data, model, **kw)
        outcome = "decoded"
    except CaseTimeout:
        outcome = "hang"
    except PixzipError as e:
        outcome = e
    seconds = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] - base
    if started:
        tracemalloc.stop()
    return outcome, seconds, peak


def _refused(outcome, kind, *needles):
    assert isinstance(outcome, kind), outcome
    msg = str(outcome)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, msg
    return msg


# ---------------------------------------------------------------- the bombs, in process

def test_the_18_kb_mixer_bomb_is_refused_before_allocating(monkeypatch):
    """The audit's 18 KB archive claiming 4096 x 4096 needs 642 MB: within the
    default limit (what a 24 Mpx photo needs) it may take that much, no more;
    under a limit given by name it is refused at its header.  A claim over
    the default limit is refused at its header whatever its payload."""
    data = mixer_bomb(4096)
    assert len(data) == 18_311
    outcome, seconds, peak = _decode(data, max_memory=512 << 20)
    _refused(outcome, LimitError, "4096x4096", "MB", "--memory", "PIXZIP_MAX_MEMORY")
    assert seconds < 2.0 and peak < 4 << 20, (seconds, peak)
    monkeypatch.setenv(codec.MEMORY_ENV, "512M")
    _refused(_decode(data)[0], LimitError, "4096x4096", "--memory")
    monkeypatch.delenv(codec.MEMORY_ENV)
    big = mixer_bomb(10000)                   # needs 2.5 GiB
    outcome, seconds, peak = _decode(big)
    _refused(outcome, LimitError, "10000x10000", "--memory", "PIXZIP_MAX_MEMORY")
    assert seconds < 2.0 and peak < 4 << 20, (seconds, peak)


def test_a_claim_over_the_pixel_limit_is_refused_before_allocating():
    """The audit's 1.17 MB archive claiming 32768 x 32768 (it tried to allocate 21 GiB)."""
    data = mixer_bomb(32768, 1_169_296 + 8)
    assert len(data) == 1_169_345
    outcome, seconds, peak = _decode(data)
    _refused(outcome, LimitError, "32768x32768", f"{container.MAX_PIXELS:,}")
    assert seconds < 1.0 and peak < 4 << 20, (seconds, peak)
    assert container.MAX_PIXELS == 2 * Image.MAX_IMAGE_PIXELS == 178_956_970     # where Pillow refuses to read


def test_the_pixel_limit_is_raised_only_by_name():
    data = mixer_bomb(16384, 64)             # 268 Mpx over a payload far too short
    _refused(_decode(data)[0], LimitError, "pixels")
    # asked for by name, the claim gets past the pixel limit, and is then refused for its payload
    _refused(_decode(data, max_pixels=1 << 30)[0], CorruptError, "too short")


@pytest.fixture(scope="module")
def deflate_16k():
    return deflate_bomb(16384)


def test_the_real_size_deflate_bomb_is_refused_before_decoding(deflate_16k):
    """783 KB that inflate to 805 MB of pixels (2.67 GB of process memory):
    over the pixel limit, refused at the header."""
    assert len(deflate_16k) == 782_789
    outcome, seconds, peak = _decode(deflate_16k)
    _refused(outcome, LimitError, "16384x16384")
    assert seconds < 1.0 and peak < 4 << 20, (seconds, peak)


def test_the_deflate_kind_obeys_the_memory_limit(monkeypatch):
    """Within the pixel limit, the stored kinds' memory (the output array
    itself, and Pillow's image for deflate) is checked before decoding,
    against $PIXZIP_MAX_MEMORY; under the default limit, the largest image
    the pixel limit lets through fits."""
    big_side = int(container.MAX_PIXELS ** 0.5)
    from pixzip.codec.coders import CODERS, Frame
    assert CODERS[container.DEFLATE, 0].decode_memory(Frame(big_side, big_side, 3)) < codec.DEFAULT_MEMORY
    data = deflate_bomb(8192, level=1)       # 201 MB of pixels, 640 MB to decode
    monkeypatch.setenv(codec.MEMORY_ENV, "512M")
    outcome, seconds, peak = _decode(data)
    _refused(outcome, LimitError, "8192x8192", "--memory")
    assert seconds < 1.0 and peak < 4 << 20, (seconds, peak)
    monkeypatch.delenv(codec.MEMORY_ENV)
    small = deflate_bomb(3000, level=1)      # 27 MB of pixels: within the default limit
    assert _decode(small)[0] == "decoded"
    monkeypatch.setenv(codec.MEMORY_ENV, "16M")
    outcome, seconds, peak = _decode(small)
    _refused(outcome, LimitError, "3000x3000", "16 MB")
    assert seconds < 1.0 and peak < 4 << 20, (seconds, peak)


def test_the_raw_kind_obeys_the_memory_limit():
    img = np.zeros((300, 400, 3), np.uint8)
    data = codec.compress(img, payload="raw")
    assert np.array_equal(codec.decompress(data), img)
    _refused(_decode(data, max_memory=256 << 10)[0], LimitError, "400x300", "--memory")


@pytest.mark.parametrize("version", [1, 2])
def test_the_default_memory_limit_is_absolute(version):
    """Not a ratio of the claim: the same limit for every image, and every
    level's 768 x 512 photo within it with room to spare, with either mixer."""
    assert codec.memory_limit() == codec.DEFAULT_MEMORY
    from pixzip.codec.coders import Frame, making
    mixer, mixed, network = (making(m, version) for m in ("mixer", "mixer+network", "network"))
    fast, big = codec.load_model("fast"), codec.load_model("max")
    photo = [mixer.decode_memory(Frame(512, 768, 3)),
             mixed.decode_memory(Frame(512, 768, 3, parts=2), fast),
             mixed.decode_memory(Frame(512, 768, 3, parts=2), big),
             network.decode_memory(Frame(512, 768, 3), big)]
    assert 1.5 * max(photo) < codec.DEFAULT_MEMORY, photo
    assert mixer.decode_memory(Frame(2000, 2000, 3)) < codec.DEFAULT_MEMORY
    # a 24 Mpx photo (6000 x 4000) at every level
    for need in (mixer.decode_memory(Frame(4000, 6000, 3)),
                 mixed.decode_memory(Frame(4000, 6000, 3, parts=2), fast),
                 mixed.decode_memory(Frame(4000, 6000, 3, parts=2), big)):
        assert need < codec.DEFAULT_MEMORY, need


@pytest.mark.parametrize("text, value", [("512M", 512 << 20), ("2G", 2 << 30), ("1.5g", 3 << 29), ("64K", 64 << 10),
                                         ("1000000", 1000000), ("2GiB", 2 << 30), ("300MB", 300 << 20)])
def test_sizes_parse_in_binary_units(text, value):
    assert codec.parse_size(text) == value


@pytest.mark.parametrize("text", ["", "G", "-1G", "0", "lots", "1X", "nan", "infG"])
def test_bad_sizes_are_refused(text):
    with pytest.raises(ValueError):
        codec.parse_size(text)


def test_a_small_network_bomb_stops_once_its_payload_runs_out():
    """The audit's 1.2 KB coder-3 archive (1024 x 1024, the 'fast' network),
    scaled down to 96 x 96: a payload of zeros at the payload-length bound
    runs out (as it must: a real flat image reaches the mixer's floor, which
    the bound halves, so no tighter bound is possible) within about half the
    claim, and is refused then.  The real-size one is within the limits: a
    real flat 1024 x 1024 image decodes in that time too
    (``benchmarks/bombs.py`` times it)."""
    net = codec.load_model("fast")
    warm = np.full((4, 4, 3), 7, np.uint8)        # the kernels load (or compile) outside the timing
    assert np.array_equal(codec.decompress(codec.compress(warm, net, payload="mixer+network")), warm)
    n = 96
    data = parts_bomb(net, n, min_payload_bytes(n * n * 3) + 5)
    outcome, seconds, _ = _decode(data)
    _refused(outcome, CorruptError, "ends")
    assert seconds < DEADLINE, seconds
    _refused(_decode(parts_bomb(net, 1024, 1130))[0], CorruptError, "too short")


# ---------------------------------------------------------------- the command line

def _cli(args, stdin=subprocess.DEVNULL, timeout=30, cwd=None, input=None):
    """(exit status, stderr lines, seconds) of ``pixzip ARGS`` in a subprocess
    with 1.5 GB of address space: an unbounded read fails quickly."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))
    t = time.monotonic()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "cli.main", *map(str, args)], cwd=cwd or REPO, stdin=stdin, env=env,
                       input=input, capture_output=True, timeout=timeout, preexec_fn=limit)
    lines = [s for s in r.stderr.decode(errors="replace").splitlines() if s.strip()]
    return r.returncode, lines, time.monotonic() - t


@pytest.mark.parametrize("command", [["info"], ["test"], ["decompress", "-c"], ["compress", "-1", "-c"]])
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_devices_are_refused_by_name_at_once(command, device):
    rc, lines, seconds = _cli([*command, device])
    assert rc == 1 and len(lines) == 1 and lines[0] == f"pixzip: {device}: not a regular file", lines
    assert seconds < 5, seconds


def _feed_forever(proc, prefix=b""):
    """Write ``prefix`` then zeros to proc's stdin until it stops reading."""
    def run():
        try:
            proc.stdin.write(prefix)
            block = bytes(1 << 16)
            while True:
                proc.stdin.write(block)
        except (BrokenPipeError, ValueError, OSError):
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _endless(args, prefix=b"", timeout=30):
    """(exit status, stderr lines, seconds) of ``pixzip ARGS`` reading
    ``prefix`` and then zeros for ever on its stdin."""
    import tempfile

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with tempfile.TemporaryFile() as err:
        t = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=REPO, stdin=subprocess.PIPE, env=env,
                                stdout=subprocess.DEVNULL, stderr=err, preexec_fn=limit)
        _feed_forever(proc, prefix)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"pixzip {' '.join(args)} still reading an endless stdin after {timeout} s")
        seconds = time.monotonic() - t
        err.seek(0)
        lines = [s for s in err.read().decode(errors="replace").splitlines() if s.strip()]
    return proc.returncode, lines, seconds


def test_an_endless_stdin_of_zeros_is_refused_at_its_magic():
    for command in (["test", "-"], ["info", "-"], ["decompress", "-c", "-"]):
        rc, lines, seconds = _endless(command)
        assert rc == 1 and lines == ["pixzip: <stdin>: not a pixzip file (bad magic)"], (command, lines)
        assert seconds < 5, seconds


def test_an_endless_stdin_after_a_header_is_read_only_to_the_declared_length():
    img = np.arange(6 * 7 * 3, dtype=np.uint8).reshape(6, 7, 3)
    data = codec.compress(img, payload="raw")
    rc, lines, seconds = _endless(["test", "-"], prefix=data)
    assert rc == 1 and lines == ["pixzip: <stdin>: trailing data after the checksum"], lines
    assert seconds < 5, seconds


def test_an_endless_stdin_to_compress_stops_at_the_memory_limit():
    rc, lines, seconds = _endless(["compress", "-1", "-c", "--memory", "8M", "-"])
    assert rc == 1 and len(lines) == 1 and "<stdin>" in lines[0] and "--memory" in lines[0], lines
    assert seconds < 5, seconds


def test_an_archive_over_the_memory_limit_is_refused_before_its_payload_is_read(tmp_path):
    head = header(container.RAW, 0, 8000, 8000, 3, 3 * 8000 * 8000)       # 192 MB declared, none follows
    p = tmp_path / "big.pxz"
    p.write_bytes(head)
    rc, lines, seconds = _cli(["test", p])       # a regular file: its length is known, nothing is read
    assert rc == 1 and lines == [f"pixzip: {p}: truncated file: payload of {3 * 8000 * 8000} bytes is cut short"]
    rc, lines, seconds = _endless(["test", "--memory", "100M", "-"], prefix=head)      # a stream: refused unread
    assert rc == 1 and len(lines) == 1 and "reading this archive needs 183 MB, over the limit of 100 MB" in lines[0]
    assert "--memory 184M" in lines[0] and seconds < 5, (lines, seconds)


def test_the_memory_option_raises_the_limit_by_name(tmp_path):
    img = np.zeros((300, 400, 3), np.uint8)
    p = tmp_path / "z.png.pxz"
    p.write_bytes(codec.compress(img, payload="raw"))
    rc, lines, _ = _cli(["test", "--memory", "100K", p])
    assert rc == 1 and len(lines) == 1 and "over the limit of" in lines[0] and "--memory" in lines[0], lines
    assert _cli(["test", "--memory", "1M", p])[0] == 0
    rc, lines, _ = _cli(["decompress", "--memory", "100K", "-c", p])
    assert rc == 1 and "--memory" in lines[0]
    rc, lines, _ = _cli(["test", "--memory", "lots", p])
    assert rc == 2 and any("--memory" in s for s in lines), lines


def _fifo_writer(path: Path, data: bytes):
    def run():
        with open(path, "wb") as f:
            f.write(data)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_a_fifo_named_x_pxz_is_decompressed_reading_it_once(tmp_path):
    img = np.arange(5 * 9 * 3, dtype=np.uint8).reshape(5, 9, 3)
    fifo = tmp_path / "x.pxz"
    os.mkfifo(fifo)
    writer = _fifo_writer(fifo, codec.compress(img, payload="raw"))
    try:
        rc, lines, _ = _cli(["decompress", "x.pxz"], cwd=tmp_path, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("decompress of a FIFO named x.pxz hangs")
    writer.join(5)
    assert rc == 0, lines
    assert np.array_equal(np.asarray(Image.open(tmp_path / "x.png")), img)


def test_a_fifo_image_is_compressed_as_a_stream(tmp_path):
    """FIFOs are streams, as '-' is (zstd reads them; shells make them for
    ``<(...)``); devices are refused."""
    img = np.arange(5 * 9 * 3, dtype=np.uint8).reshape(5, 9, 3)
    import io
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    fifo = tmp_path / "f.png"
    os.mkfifo(fifo)
    writer = _fifo_writer(fifo, buf.getvalue())
    rc, lines, _ = _cli(["compress", "-1", "f.png"], cwd=tmp_path, timeout=60)
    writer.join(5)
    assert rc == 0, lines
    assert np.array_equal(codec.decompress((tmp_path / "f.png.pxz").read_bytes()), img)


def test_a_directory_is_refused_by_name(tmp_path):
    d = tmp_path / "d.pxz"
    d.mkdir()
    rc, lines, _ = _cli(["test", d])
    assert rc == 1 and lines == [f"pixzip: {d}: is a directory"], lines
