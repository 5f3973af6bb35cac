"""The command line never loses data: interruptions, unwritable or full
folders, an output that is the input, overwriting, --rm, -q, damaged
archives and batches with one bad input.  Each failure is one line naming
the file and exit status 1 (128 + the signal for an interruption); nothing
is left half-written, and no input or old output is touched."""
import functools
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from pixzip.cli.main import main

from pixzip.codec import api as codec
from pixzip.codec.format import container

from .conftest import tiny_int_model

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- helpers

def photo_pixels(h=512, w=768, seed=0, noise=2.0):
    """A photo-like RGB image: smooth gradients plus a little sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = [128 + 90 * np.sin(x / 97 + c) * np.cos(y / 61 - c) + 20 * np.sin((x + y) / 23 + 2 * c)
             for c in range(3)]
    img = np.stack(chans, -1) + rng.normal(0, noise, (h, w, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def save_png(pixels, path):
    Image.fromarray(pixels).save(path)
    return path


def read_pixels(path):
    with Image.open(path) as im:
        return np.asarray(im)


def network_archive(src, dst, net=None):
    """An archive whose payload is the network's (the tiny random models never
    beat the stored payloads, so the automatic choice would store the pixels)."""
    data = codec.compress(str(src), net or tiny_int_model(3), payload="network")
    assert codec.read_header(data).kind == container.NETWORK
    Path(dst).write_bytes(data)
    return Path(dst)


def listing(folder):
    """Every name in a folder, hidden ones (temp files) included."""
    return sorted(p.name for p in Path(folder).iterdir())


def temp_files(folder):
    return [p.name for p in Path(folder).glob(".*.tmp")]


def segments(text):
    """stderr cut at newlines and carriage returns (progress bars), blanks dropped."""
    return [s for s in re.split(r"[\r\n]", text) if s.strip()]


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def clean_failure(result, *needles):
    """Exit 1 by sys.exit (not a crash), no traceback, exactly one line on
    stderr, starting with 'pixzip:' and containing every needle."""
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), f"crashed: {result.exception!r}"
    assert "Traceback" not in result.output
    lines = segments(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pixzip: "), lines[0]
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])
    return lines[0]


def snapshot(*paths):
    return {Path(p): (Path(p).read_bytes(), Path(p).stat().st_mtime_ns) for p in paths}


def unchanged(snap):
    for p, (data, mtime) in snap.items():
        assert p.exists(), f"{p} is gone"
        assert p.read_bytes() == data, f"{p} was changed"
        assert p.stat().st_mtime_ns == mtime, f"{p} was rewritten"


def _sigint_default():
    # a child started from a non-interactive shell's background job inherits
    # SIGINT ignored, and Python then never raises KeyboardInterrupt
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli_process(args, models, stdout, stderr):
    env = dict(os.environ, PIXZIP_MODELS=str(models))
    return subprocess.Popen([sys.executable, "-m", "cli.main", *map(str, args)], cwd=REPO, env=env,
                            stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                            preexec_fn=_sigint_default)


def cli_run(args, models, timeout=120):
    env = dict(os.environ, PIXZIP_MODELS=str(models))
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "cli.main", *map(str, args)], cwd=REPO, env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return r, time.monotonic() - t


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """Models tiny3/tiny1, a 768x512 photo-like PNG and its network-payload archive.
    This tiny3 has 6 layers of 12 channels, so that coding the photo takes a few
    seconds on a fast CPU too: a signal must land while the work is going on."""
    root = tmp_path_factory.mktemp("cli_safety")
    models = root / "models"
    models.mkdir()
    slow = tiny_int_model(3, layers=6, channels=12, name="tiny3")
    for net in (slow, tiny_int_model(1)):
        (models / f"{net.name}.pxm").write_bytes(net.to_bytes())
    png = save_png(photo_pixels(), root / "photo.png")
    pxz = network_archive(png, root / "photo.png.pxz", slow)
    return {"models": models, "png": png, "pxz": pxz}


@pytest.fixture
def force_network(monkeypatch):
    """In-process compression always codes with the network payload."""
    monkeypatch.setattr(codec, "compress", functools.partial(codec.compress, payload="network"))


@pytest.fixture
def small(tmp_path, model_dir):
    """A folder with two small photo-like PNGs and a network archive of the first."""
    work = tmp_path / "work"
    work.mkdir()
    a = save_png(photo_pixels(24, 32, seed=1), work / "a.png")
    b = save_png(photo_pixels(20, 28, seed=2), work / "b.png")
    return {"dir": work, "a": a, "b": b, "pixels": read_pixels(a)}


def _mount_tmpfs(path, size="64k"):
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip() or r.returncode}")


def _umount(path):
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def tmpfs(tmp_path):
    """A 64 KiB tmpfs: a full disk for any file of more than a few dozen KiB."""
    d = tmp_path / "tmpfs"
    _mount_tmpfs(d)
    yield d
    _umount(d)


@pytest.fixture
def readonly_dir(tmp_path):
    """make(fill) -> a folder holding what fill(folder) puts there, that this
    process cannot write in.  chmod 0o555 does not stop root, so as root it is
    a tmpfs remounted read-only."""
    made = []

    def make(fill):
        d = tmp_path / "readonly"
        if os.geteuid() != 0:
            d.mkdir()
            fill(d)
            d.chmod(0o555)
            made.append(("chmod", d))
        else:
            _mount_tmpfs(d, "4m")
            made.append(("mount", d))
            fill(d)
            r = subprocess.run(["mount", "-o", "remount,ro", str(d)], capture_output=True, text=True)
            if r.returncode != 0:
                pytest.skip(f"cannot remount a tmpfs read-only: {r.stderr.strip()}")
        if os.access(d, os.W_OK):
            pytest.skip("this process can write in a read-only folder")
        return d

    yield make
    for how, d in made:
        if how == "chmod":
            d.chmod(0o755)
        else:
            _umount(d)


# ------------------------------------- 1. interruptions (SIGINT, SIGTERM)

def _interrupt(args, models, sig, logs):
    """Run the CLI, signal it once it has been coding for over a second (its
    progress bar appears after one second of work), and return (rc, stderr)."""
    logs.mkdir(exist_ok=True)
    err_path = logs / "stderr"
    with open(logs / "stdout", "wb") as out, open(err_path, "wb") as err:
        p = cli_process(args, models, out, err)
        try:
            deadline = time.monotonic() + 90
            while p.poll() is None and time.monotonic() < deadline:
                if b"B/" in err_path.read_bytes():     # the progress bar (raw bytes done/total): well into the work
                    break
                time.sleep(0.05)
            assert p.poll() is None, (f"the process ended (rc {p.returncode}) before it could be "
                                      f"signalled: {err_path.read_text(errors='replace')}")
            p.send_signal(sig)
            rc = p.wait(timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    return rc, err_path.read_text(errors="replace")


@pytest.mark.parametrize("force", [False, True], ids=["fresh", "force"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("command", ["compress", "decompress"])
def test_an_interrupted_compress_or_decompress_leaves_the_input_and_any_old_output_untouched_and_no_partial_file(
        big, tmp_path, command, sig, force):
    work = tmp_path / "work"
    work.mkdir()
    src = work / ("photo.png" if command == "compress" else "photo.png.pxz")
    src.write_bytes((big["png"] if command == "compress" else big["pxz"]).read_bytes())
    dst = work / ("photo.png.pxz" if command == "compress" else "photo.png")
    args = [command, "--progress", src, *(["-m", "tiny3"] if command == "compress" else [])]
    keep = {src}
    if force:
        dst.write_bytes(b"the old output, which must survive")
        keep.add(dst)
        args.append("-f")
    before = snapshot(*keep)

    rc, stderr = _interrupt(args, big["models"], sig, tmp_path / "logs")

    assert rc == 128 + sig, (rc, stderr)
    unchanged(before)
    assert listing(work) == sorted(p.name for p in keep), "no output and no temp file is left"
    assert "Traceback" not in stderr
    lines = [s for s in segments(stderr) if s.startswith("pixzip:")]
    assert lines == [f"pixzip: interrupted ({signal.Signals(sig).name}); no partial output is left"], stderr
    others = [s for s in segments(stderr) if not s.startswith("pixzip:")]
    bar = "compress " if command == "compress" else "decode "
    assert all(s.strip().startswith(bar) for s in others), f"only progress bars besides the line: {others}"


def test_an_interruption_while_the_output_is_written_removes_the_temp_file_and_keeps_the_old_output(
        small, monkeypatch, capsys):
    """The window the subprocess tests cannot aim at: the signal arrives while
    the temp file is being written.  Through ``entry``, as the console script runs."""
    from pixzip.cli.main import entry

    from pixzip.app import files

    real = files.atomic_write

    def interrupted(path, write, **kw):
        def write_then_interrupt(tmp):
            write(tmp)
            assert Path(tmp).exists() and Path(tmp).stat().st_size > 0
            raise KeyboardInterrupt
        return real(path, write_then_interrupt, **kw)

    monkeypatch.setattr(files, "atomic_write", interrupted)
    work, src = small["dir"], small["a"]
    dst = work / "a.png.pxz"
    dst.write_bytes(b"old archive")
    before = snapshot(src, dst, small["b"])
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        with pytest.raises(SystemExit) as e:
            entry(["compress", str(src), "-m", "tiny3", "-f"])
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    assert e.value.code == 128 + signal.SIGINT
    unchanged(before)
    assert listing(work) == ["a.png", "a.png.pxz", "b.png"]
    err = capsys.readouterr().err
    assert [s for s in segments(err) if s.startswith("pixzip:")] == \
        ["pixzip: interrupted (SIGINT); no partial output is left"]


# ------------------------- 2. read-only folder, output = input, full disk

def test_compress_in_a_read_only_folder_fails_with_one_line_naming_the_output_and_keeps_the_input(
        readonly_dir, model_dir):
    pixels = photo_pixels(24, 32, seed=3)
    d = readonly_dir(lambda d: save_png(pixels, d / "p.png"))
    before = snapshot(d / "p.png")
    line = clean_failure(run("compress", d / "p.png", "-m", "tiny3", "--rm"), "p.png.pxz")
    assert "permission denied" in line or "read-only" in line, line
    unchanged(before)
    assert listing(d) == ["p.png"]


def test_decompress_in_a_read_only_folder_fails_with_one_line_naming_the_output_and_keeps_the_archive(
        readonly_dir, model_dir, tmp_path):
    png = save_png(photo_pixels(24, 32, seed=3), tmp_path / "p.png")
    d = readonly_dir(lambda d: network_archive(png, d / "p.png.pxz"))
    before = snapshot(d / "p.png.pxz")
    line = clean_failure(run("decompress", d / "p.png.pxz", "--rm"), str(d / "p.png"))
    assert "permission denied" in line or "read-only" in line, line
    unchanged(before)
    assert listing(d) == ["p.png.pxz"]


@pytest.mark.parametrize("force", [[], ["-f"]], ids=["plain", "force"])
def test_an_output_that_is_the_input_is_refused_for_compress_and_decompress(small, force):
    work, src = small["dir"], small["a"]
    pxz = network_archive(src, work / "a.png.pxz")
    os.symlink(src.name, work / "link.png")
    os.link(pxz, work / "hard.pxz")
    before = snapshot(src, pxz)
    names = listing(work)
    for args in (["compress", src, "-m", "tiny3", "-o", src],
                 ["compress", src, "-m", "tiny3", "-o", work / "." / "a.png"],
                 ["compress", src, "-m", "tiny3", "-o", work / "link.png"],
                 ["decompress", pxz, "-o", pxz],
                 ["decompress", pxz, "-o", work / "hard.pxz"]):
        clean_failure(run(*args, *force), "overwrite the input")
        unchanged(before)
        assert listing(work) == names, args


def test_compress_onto_a_full_disk_fails_with_one_line_and_leaves_no_partial_archive(tmpfs, model_dir):
    noise = np.random.default_rng(7).integers(0, 256, (100, 120, 3), dtype=np.uint8)   # 36 KB: no room for two
    src = save_png(noise, tmpfs / "n.png")
    before = snapshot(src)
    line = clean_failure(run("compress", src, "-m", "tiny3", "--rm"), "n.png.pxz")
    assert "No space left" in line, line
    unchanged(before)
    assert listing(tmpfs) == ["n.png"], "no partial archive and no temp file"


def test_decompress_onto_a_full_disk_fails_with_one_line_and_leaves_no_partial_image(tmpfs, model_dir, tmp_path):
    noise = np.random.default_rng(7).integers(0, 256, (100, 120, 3), dtype=np.uint8)
    src = save_png(noise, tmp_path / "n.png")
    assert run("compress", src, "-m", "tiny3", "-o", tmpfs / "n.png.pxz").exit_code == 0
    before = snapshot(tmpfs / "n.png.pxz")
    line = clean_failure(run("decompress", tmpfs / "n.png.pxz", "--rm"), str(tmpfs / "n.png"))
    assert "No space left" in line, line
    unchanged(before)
    assert listing(tmpfs) == ["n.png.pxz"], "no partial image and no temp file"


# ------------------------------------------ 3. decompress never clobbers

def test_decompress_refuses_to_overwrite_an_existing_file_without_force(small, force_network):
    work = small["dir"]
    pxz = network_archive(small["a"], work / "a.png.pxz")
    small["a"].write_bytes(b"someone else's file")
    before = snapshot(small["a"], pxz)
    clean_failure(run("decompress", pxz), "a.png", "already exists", "-f")
    unchanged(before)
    assert not temp_files(work)


def test_decompress_without_force_never_replaces_a_file_that_appears_while_it_decodes(small, monkeypatch):
    from pixzip.app import files
    work = small["dir"]
    pxz = network_archive(small["a"], work / "a.png.pxz")
    small["a"].unlink()
    real = files.encode_picture_file

    def encode_and_race(*a, **kw):
        data = real(*a, **kw)
        (work / "a.png").write_bytes(b"appeared meanwhile")
        return data

    monkeypatch.setattr(files, "encode_picture_file", encode_and_race)
    clean_failure(run("decompress", pxz), "a.png", "already exists")
    assert (work / "a.png").read_bytes() == b"appeared meanwhile"
    assert not temp_files(work)


def _failing_write(kind):
    """A wrapper of files.atomic_write whose write step fails in one way."""
    from pixzip import atomic
    from pixzip.app import files
    real = files.atomic_write

    def wrapped(path, write, **kw):
        def bad_write(tmp):
            write(tmp)
            data = Path(tmp).read_bytes()
            if kind == "short":                     # a silently short write: the read-back must catch it
                Path(tmp).write_bytes(data[:len(data) // 2])
            elif kind == "flipped":                 # a flipped byte on the way to the disk
                Path(tmp).write_bytes(data[:-10] + bytes([data[-10] ^ 1]) + data[-9:])
            elif kind == "enospc":                  # the disk fills half way
                Path(tmp).write_bytes(data[:len(data) // 2])
                raise OSError(28, "No space left on device")
        return real(path, bad_write, **kw)

    def fsync_fails(path, directory=False):
        raise OSError(5, "Input/output error")

    return (atomic, "_fsync", fsync_fails) if kind == "fsync" else (files, "atomic_write", wrapped)


WRITE_FAILURES = ["short", "flipped", "enospc", "fsync"]


@pytest.mark.parametrize("kind", WRITE_FAILURES)
def test_decompress_force_replaces_the_old_file_only_with_a_complete_verified_one(small, monkeypatch, kind):
    work = small["dir"]
    pxz = network_archive(small["a"], work / "a.png.pxz")
    small["a"].write_bytes(b"the old image")
    before = snapshot(small["a"], pxz)
    monkeypatch.setattr(*_failing_write(kind))
    clean_failure(run("decompress", pxz, "-f"), "a.png")
    unchanged(before)
    assert listing(work) == ["a.png", "a.png.pxz", "b.png"], "no temp file"


def _lossy_writer(monkeypatch):
    """The image writer flips one bit of the pixels it writes."""
    from pixzip.codec.format import images
    real = images.encode_image

    def lossy(im, fmt, md):
        a = np.asarray(im).copy()
        a[0, 0, 0] ^= 1
        return real(Image.fromarray(a), fmt, md)

    monkeypatch.setattr(images, "encode_image", lossy)


def test_decompress_force_keeps_the_old_file_when_the_written_image_does_not_decode_to_the_pixels(
        small, monkeypatch):
    work = small["dir"]
    pxz = network_archive(small["a"], work / "a.png.pxz")
    small["a"].write_bytes(b"the old image")
    before = snapshot(small["a"], pxz)
    _lossy_writer(monkeypatch)
    clean_failure(run("decompress", pxz, "-f"), "a.png", "pixels")
    unchanged(before)
    assert not temp_files(work)


def test_decompress_force_swaps_in_the_new_file_only_once_it_is_complete(small, monkeypatch):
    from pixzip import atomic
    work = small["dir"]
    pxz = network_archive(small["a"], work / "a.png.pxz")
    small["a"].write_bytes(b"the old image")
    seen = []
    real = atomic.os.replace

    def replace(a, b):
        if Path(b) == small["a"]:
            seen.append((Path(b).read_bytes(), np.array_equal(read_pixels(a), small["pixels"])))
        return real(a, b)

    monkeypatch.setattr(atomic.os, "replace", replace)
    r = run("decompress", pxz, "-f")
    assert r.exit_code == 0, r.output
    assert seen == [(b"the old image", True)], "the old file stays until a complete new one replaces it"
    assert np.array_equal(read_pixels(small["a"]), small["pixels"])


# --------------------------------------------------------------- 4. --rm

def test_compress_rm_deletes_the_input_only_after_the_archive_on_disk_decodes_pixel_exact(small, monkeypatch,
                                                                                            force_network):
    from pixzip.app import files
    src = small["a"]
    checked = []
    real = files._remove_input

    def remove(path, key, warnings):
        archive = (small["dir"] / "a.png.pxz").read_bytes()
        checked.append(np.array_equal(codec.decompress(archive, tiny_int_model(3)), small["pixels"]))
        assert Path(path).exists()
        return real(path, key, warnings)

    monkeypatch.setattr(files, "_remove_input", remove)
    r = run("compress", src, "-m", "tiny3", "--rm")
    assert r.exit_code == 0, r.output
    assert checked == [True] and not src.exists()
    assert codec.read_header((small["dir"] / "a.png.pxz").read_bytes()).kind == container.NETWORK


def test_compress_rm_keeps_the_input_when_verification_fails(small, monkeypatch, force_network):
    src = small["a"]
    before = snapshot(src)
    real = codec.decompress_picture

    def wrong(*a, **kw):
        picture, md = real(*a, **kw)
        pixels = picture.pixels.copy()
        pixels[-1, -1, -1] ^= 1
        return replace(picture, pixels=pixels), md

    monkeypatch.setattr(codec, "decompress_picture", wrong)
    clean_failure(run("compress", src, "-m", "tiny3", "--rm"), "a.png", "verification failed")
    unchanged(before)
    assert listing(small["dir"]) == ["a.png", "b.png"]


@pytest.mark.parametrize("kind", WRITE_FAILURES)
def test_compress_rm_keeps_the_input_when_writing_the_archive_fails(small, monkeypatch, force_network, kind):
    src = small["a"]
    before = snapshot(src)
    monkeypatch.setattr(*_failing_write(kind))
    clean_failure(run("compress", src, "-m", "tiny3", "--rm"), "a.png.pxz")
    unchanged(before)
    assert listing(small["dir"]) == ["a.png", "b.png"]


def test_compress_rm_keeps_the_input_when_the_target_is_unwritable(small, readonly_dir):
    src = small["a"]
    before = snapshot(src)
    d = readonly_dir(lambda d: None)
    clean_failure(run("compress", src, "-m", "tiny3", "--rm", "-o", d / "a.pxz"), "a.pxz")
    unchanged(before)
    assert listing(d) == []


def test_compress_rm_keeps_an_input_that_changes_while_it_is_compressed(small, monkeypatch):
    from pixzip.app import files
    src = small["a"]
    real = files.codec.compress

    def compress_while_edited(*a, **kw):
        out = real(*a, **kw)
        save_png(photo_pixels(24, 32, seed=9), src)     # the user saves a new version meanwhile
        return out

    monkeypatch.setattr(files.codec, "compress", compress_while_edited)
    r = run("compress", src, "-m", "tiny3", "--rm")
    assert r.exit_code == 0, r.output
    assert src.exists() and "changed while it was being processed; not removed" in r.stderr


@pytest.mark.parametrize("kind", WRITE_FAILURES + ["lossy"])
def test_decompress_rm_keeps_the_archive_when_any_step_fails(small, monkeypatch, kind):
    pxz = network_archive(small["a"], small["dir"] / "a.png.pxz")
    small["a"].unlink()
    before = snapshot(pxz)
    if kind == "lossy":
        _lossy_writer(monkeypatch)
    else:
        monkeypatch.setattr(*_failing_write(kind))
    clean_failure(run("decompress", pxz, "--rm"), "a.png")
    unchanged(before)
    assert listing(small["dir"]) == ["a.png.pxz", "b.png"]


def test_decompress_rm_deletes_the_archive_after_the_image_is_written_pixel_exact(small):
    pxz = network_archive(small["a"], small["dir"] / "a.png.pxz")
    small["a"].unlink()
    r = run("decompress", pxz, "--rm")
    assert r.exit_code == 0, r.output
    assert not pxz.exists() and np.array_equal(read_pixels(small["a"]), small["pixels"])


@pytest.mark.parametrize("command", ["compress", "decompress"])
def test_rm_with_stdout_keeps_the_input_and_warns(small, command):
    src = small["a"] if command == "compress" else network_archive(small["a"], small["dir"] / "a.png.pxz")
    before = snapshot(src)
    names = listing(small["dir"])
    r = run(command, src, *(["-m", "tiny3"] if command == "compress" else []), "--rm", "-c")
    assert r.exit_code == 0, r.output
    unchanged(before)
    assert listing(small["dir"]) == names
    lines = segments(r.stderr)
    assert len(lines) == 1 and lines[0].startswith("pixzip: warning:") and "--rm is ignored" in lines[0] \
        and src.name in lines[0], r.stderr
    out = r.stdout_bytes
    if command == "compress":
        assert np.array_equal(codec.decompress(out, tiny_int_model(3)), small["pixels"])
    else:
        assert out[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------ 5. quiet

def test_quiet_prints_nothing_at_all_on_success_for_compress_decompress_and_test(big, tmp_path):
    """Jobs of a few seconds, over the one second after which a progress bar appears
    (the interruption tests see the bar of these same jobs with --progress, without -q)."""
    work = tmp_path / "work"
    work.mkdir()
    png = work / "photo.png"
    png.write_bytes(big["png"].read_bytes())
    pxz = work / "photo.pxz"
    pxz.write_bytes(big["pxz"].read_bytes())
    for args in (["compress", "-q", "--progress", png, "-m", "tiny3"],      # -q wins over a forced bar
                 ["decompress", "-q", "--progress", pxz, "-o", work / "back.png"],
                 ["test", "-q", "--progress", pxz]):
        r, seconds = cli_run(args, big["models"])
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        assert r.stdout == b"" and r.stderr == b"", (args, r.stdout[:200], r.stderr[:500])
    assert np.array_equal(read_pixels(work / "back.png"), read_pixels(png))
    assert (work / "photo.png.pxz").exists()


# ------------------------------------------------------ 6. damaged archives

def _damaged(work, src):
    """Damaged copies of a network archive and of a stored (raw) one."""
    good = network_archive(src, work / "good.pxz").read_bytes()
    raw = codec.compress(str(src), payload="raw")
    h = codec.read_header(good)
    start = len(good) - h.payload_length - 4
    flip = lambda d, i: d[:i] + bytes([d[i] ^ 0x55]) + d[i + 1:]  # noqa: E731
    cases = {
        "empty.png.pxz": b"",
        "header-cut.png.pxz": good[:start // 2],
        "payload-cut.png.pxz": good[:start + h.payload_length // 2],
        "crc-cut.png.pxz": good[:-1],
        "payload-flip.png.pxz": flip(good, start + h.payload_length // 2),
        "payload-end-flip.png.pxz": flip(good, len(good) - 6),
        "header-flip.png.pxz": flip(good, start - 12),
        "crc-flip.png.pxz": flip(good, len(good) - 1),
        "raw-flip.png.pxz": flip(raw, len(raw) - 40),
        "raw-cut.png.pxz": raw[:-30],
        "noname-cut.pxz": good[:start + 3],     # no image suffix: the output name comes from the header
    }
    (work / "good.pxz").unlink()
    for name, data in cases.items():
        (work / name).write_bytes(data)
    return sorted(cases)


@pytest.mark.parametrize("command", ["decompress", "test"])
def test_a_damaged_archive_is_one_clean_error_line_naming_it_and_leaves_no_output(small, command):
    work = small["dir"] / "damaged"
    work.mkdir()
    names = _damaged(work, small["a"])
    for name in names:
        f = work / name
        before = snapshot(f)
        r = run(command, f)
        clean_failure(r, str(f))
        unchanged(before)
        assert listing(work) == names, f"no output left by {name}"
        assert r.stdout == ""


@pytest.mark.parametrize("command", ["decompress", "test"])
def test_damaged_archives_in_a_subprocess_fail_cleanly_one_line_each_without_a_traceback(small, model_dir,
                                                                                         command):
    work = small["dir"] / "damaged"
    work.mkdir()
    names = _damaged(work, small["a"])
    r, _ = cli_run([command, *(work / n for n in names)], model_dir)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 1, err
    assert "Traceback" not in err
    lines = segments(err)
    assert len(lines) == len(names), err
    for name, line in zip(names, lines):
        assert line.startswith("pixzip: ") and str(work / name) in line, (name, line)
    assert listing(work) == names
    assert r.stdout == b""


# ----------------------------------------- 7. several inputs, one bad

def test_compress_of_several_inputs_with_one_bad_does_the_others_and_names_the_bad_one(small):
    work = small["dir"]
    bad = work / "bad.png"
    bad.write_bytes(b"\x89PNG but not really")
    r = run("compress", small["a"], bad, small["b"], "-m", "tiny3", "--rm")
    clean_line = [s for s in segments(r.stderr) if s.startswith("pixzip:")]
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert len(clean_line) == 1 and "bad.png" in clean_line[0], r.stderr
    assert listing(work) == ["a.png.pxz", "b.png.pxz", "bad.png"], "the good ones done, the bad one kept"


@pytest.mark.parametrize("command", ["decompress", "test"])
def test_decompress_or_test_of_several_archives_with_one_bad_does_the_others_and_names_the_bad_one(small,
                                                                                                  command):
    work = small["dir"]
    a = network_archive(small["a"], work / "a.png.pxz")
    b = network_archive(small["b"], work / "b.png.pxz")
    data = a.read_bytes()
    bad = work / "bad.png.pxz"
    bad.write_bytes(data[:len(data) // 2])
    small["a"].unlink()
    small["b"].unlink()
    r = run(command, a, bad, b)
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    errors = [s for s in segments(r.stderr) if s.startswith("pixzip:")]
    assert len(errors) == 1 and str(bad) in errors[0], r.stderr
    if command == "decompress":
        assert listing(work) == ["a.png", "a.png.pxz", "b.png", "b.png.pxz", "bad.png.pxz"]
        assert np.array_equal(read_pixels(work / "a.png"), small["pixels"])
    else:
        assert r.stdout.splitlines() == [f"{a}: OK", f"{b}: OK"]
        assert listing(work) == ["a.png.pxz", "b.png.pxz", "bad.png.pxz"]
