"""Folders and many files (-r, --output-dir, -j, -T, one progress bar) and
zstd's habits (-d, pixzip FILE, -k, -v, -q, -V, stdin, info --json,
--list-levels), through click's CliRunner on small images of their own."""
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from pixzip.cli.main import main

from pixzip.app import batch


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def picture(seed, h=9, w=11, c=3):
    rng = np.random.default_rng(seed)
    ramp = np.arange(w, dtype=np.int64)[None, :, None] * 5
    return (rng.integers(0, 40, (h, w, c)) + ramp).clip(0, 255).astype(np.uint8).squeeze()


def pixels(path):
    with Image.open(path) as im:
        return np.asarray(im)


def lines(text):
    return [s for s in re.split(r"[\r\n]", text) if s.strip()]


@pytest.fixture
def tree(tmp_path):
    """photos/ with images in nested folders, a .pxz, a text file, a link to a
    file and a link to a folder above it (a loop, were it followed)."""
    root = tmp_path / "photos"
    (root / "a" / "b").mkdir(parents=True)
    names = ["one.png", "a/two.bmp", "a/b/three.png", "a/b/four.tif"]
    for k, name in enumerate(names):
        Image.fromarray(picture(k, c=1 if name.endswith(".bmp") else 3)).save(root / name)
    (root / "notes.txt").write_text("not an image")
    (root / "old.png.pxz").write_bytes(b"PXZ\0 an archive, never compressed again")
    os.symlink("one.png", root / "link.png")
    os.symlink("..", root / "a" / "up")
    return root, names + ["link.png"]


def test_a_folder_is_mirrored_under_the_output_dir_and_back(tree, tmp_path):
    root, names = tree
    out = tmp_path / "out"
    r = run("compress", "-1", "-r", root, "--output-dir", out)
    assert r.exit_code == 0, r.output
    made = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert made == sorted(f"photos/{n}.pxz" for n in names)
    back = tmp_path / "back"
    r = run("decompress", "-r", out, "--output-dir", back)
    assert r.exit_code == 0, r.output
    for n in names:          # out/photos/... -> back/out/photos/...: each folder given under its own name
        assert np.array_equal(pixels(back / "out" / "photos" / n), pixels(root / n)), n
    assert not (root / "notes.txt.pxz").exists() and not (out / "photos" / "old.png.pxz.pxz").exists()


def test_a_walk_follows_links_to_files_not_to_folders_and_names_what_it_passes_over(tree):
    root, names = tree
    walk = batch.find([str(root)], True, archives=False)
    assert sorted(os.path.relpath(f.path, root) for f in walk.found) == sorted(names)
    notes = "\n".join(walk.notes)
    assert "a link to a folder" in notes and "notes.txt" in notes and "old.png.pxz" in notes
    r = run("compress", "-1", "-r", "-v", root)
    assert r.exit_code == 0, r.output
    assert "a link to a folder (not followed)" in r.stderr and "notes.txt: skipped" in r.stderr
    assert "files done, 0 failed" in r.stderr and " s\n" in r.stderr     # -v: timings and a summary
    (root / "link.png.pxz").unlink()                # its output, link.png, is one.png
    r = run("decompress", "-r", root, "-f")         # the .pxz files only, old.png.pxz (broken) among them
    assert r.exit_code == 1
    assert [l for l in lines(r.stderr) if l.startswith("pixzip:")] == [
        l for l in lines(r.stderr) if "old.png.pxz" in l]


def test_two_workers_make_the_same_archives_as_one(tree, tmp_path):
    root, names = tree
    made = {}
    for j in (1, 2):
        out = tmp_path / f"j{j}"
        r = run("compress", "-1", "-r", root, "--output-dir", out, "-j", j, "-T", 1)
        assert r.exit_code == 0, r.output
        made[j] = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*.pxz")}
    assert made[1] == made[2] and len(made[1]) == len(names)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_corrupt_file_among_good_ones_is_one_line_and_the_others_are_done(tmp_path, jobs):
    good = []
    for k in range(3):
        Image.fromarray(picture(k)).save(tmp_path / f"g{k}.png")
        assert run("compress", "-1", tmp_path / f"g{k}.png").exit_code == 0
        (tmp_path / f"g{k}.png").rename(tmp_path / f"want{k}.png")
        good.append(k)
    data = bytearray((tmp_path / "g1.png.pxz").read_bytes())
    data[-10] ^= 0x40
    (tmp_path / "bad.png.pxz").write_bytes(bytes(data))
    r = run("decompress", "-j", jobs, *sorted(tmp_path.glob("*.pxz")))
    assert r.exit_code == 1
    errors = [l for l in lines(r.stderr) if l.startswith("pixzip:")]
    assert len(errors) == 1 and "bad.png.pxz" in errors[0], r.stderr
    assert not (tmp_path / "bad.png").exists()
    for k in good:
        assert np.array_equal(pixels(tmp_path / f"g{k}.png"), pixels(tmp_path / f"want{k}.png"))


def test_existing_outputs_in_a_folder_are_refused_without_force_and_kept(tree):
    root, names = tree
    assert run("compress", "-1", "-r", root, "-j", 2).exit_code == 0
    one = root / "one.png.pxz"
    one.write_bytes(b"precious")
    r = run("compress", "-1", "-r", root, "-j", 2)
    assert r.exit_code == 1
    errors = [l for l in lines(r.stderr) if l.startswith("pixzip:")]
    assert len(errors) == len(names) and all("already exists (use -f to overwrite)" in l for l in errors)
    assert one.read_bytes() == b"precious"
    assert not list(root.rglob(".*.tmp")), "no temporary file is left"
    assert run("compress", "-1", "-r", root, "-j", 2, "-f").exit_code == 0
    assert one.read_bytes()[:4] == b"PXZ\0"


def test_two_inputs_of_one_mirrored_output_are_refused_before_any_work(tmp_path):
    for d in ("x/photos", "y/photos"):
        (tmp_path / d).mkdir(parents=True)
        Image.fromarray(picture(0)).save(tmp_path / d / "p.png")
    out = tmp_path / "out"
    r = run("compress", "-1", "-r", tmp_path / "x/photos", tmp_path / "y/photos", "--output-dir", out)
    assert r.exit_code == 1 and "would both be written to" in r.stderr
    assert not out.exists()


def test_dash_d_is_decompress_and_a_file_with_no_command_is_compressed(tmp_path):
    src = tmp_path / "p.png"
    Image.fromarray(picture(3)).save(src)
    r = run(src, "-1")
    assert r.exit_code == 0, r.output
    src.rename(tmp_path / "want.png")
    r = run("-d", tmp_path / "p.png.pxz")
    assert r.exit_code == 0, r.output
    assert np.array_equal(pixels(src), pixels(tmp_path / "want.png"))
    assert run("nonsense").exit_code == 2      # no command and no such file: a usage error
    r = run("-f", tmp_path / "p.png.pxz")     # an archive is not compressed again
    assert r.exit_code == 1 and "already a .pxz file" in r.stderr
    assert not (tmp_path / "p.png.pxz.pxz").exists()
    r = run("-1", "-z", "-f", "-c", src)       # the flag after other options
    assert r.exit_code == 0 and r.stdout_bytes == (tmp_path / "p.png.pxz").read_bytes()


def test_dash_k_is_accepted_and_keeps_the_inputs(tmp_path):
    src = tmp_path / "p.png"
    Image.fromarray(picture(4)).save(src)
    assert run("compress", "-1", "-k", src).exit_code == 0
    src.rename(tmp_path / "want.png")
    assert run("decompress", "-k", tmp_path / "p.png.pxz").exit_code == 0
    assert (tmp_path / "p.png.pxz").exists() and src.exists()


@pytest.mark.parametrize("command", ["compress", "decompress", "test", "info", "models", "demo", "bench", "train"])
def test_dash_capital_v_prints_the_version_on_every_command(command):
    import pixzip
    r = run(command, "-V")
    assert r.exit_code == 0 and r.output.strip() == f"pixzip, version {pixzip.__version__}"


def test_quiet_says_nothing_and_verbose_says_more_on_every_file_command(tmp_path):
    src = tmp_path / "p.png"
    Image.fromarray(picture(5)).save(src)
    r = run("-q", "compress", "-1", src)
    assert r.exit_code == 0 and r.output == ""
    pxz = tmp_path / "p.png.pxz"
    r = run("test", "-v", pxz)
    assert r.exit_code == 0 and re.search(r": OK in \d+\.\d\d s", r.stdout), r.stdout
    r = run("decompress", "-q", pxz, "-o", tmp_path / "q.png")
    assert r.exit_code == 0 and r.output == ""
    r = run("info", "-q", pxz)
    assert r.exit_code == 0 and "width" in r.stdout


def test_with_no_file_and_stdin_not_a_terminal_stdin_is_read_and_stdout_written(tmp_path):
    src = tmp_path / "p.png"
    Image.fromarray(picture(6)).save(src)
    r = run("compress", "-1", input=src.read_bytes())
    assert r.exit_code == 0 and r.stdout_bytes[:4] == b"PXZ\0", r.output
    archive = r.stdout_bytes
    r = run("-d", input=archive)
    assert r.exit_code == 0 and r.stdout_bytes[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "back.png").write_bytes(r.stdout_bytes)
    assert np.array_equal(pixels(tmp_path / "back.png"), pixels(src))
    assert run("test", input=archive).exit_code == 0


def test_info_json_is_one_list_of_an_object_per_file(tmp_path):
    paths = []
    for k in range(2):
        Image.fromarray(picture(k, c=1 + 2 * k)).save(tmp_path / f"p{k}.png")
        assert run("compress", "-1", tmp_path / f"p{k}.png").exit_code == 0
        paths.append(tmp_path / f"p{k}.png.pxz")
    r = run("info", "--json", *paths)
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert [o["file"] for o in got] == [str(p) for p in paths]
    assert [o["mode"] for o in got] == ["L", "RGB"] and all(o["width"] == 11 for o in got)
    r = run("info", "--json", "-r", tmp_path)
    assert r.exit_code == 0 and len(json.loads(r.stdout)) == 2


def test_list_levels_lists_every_level_and_help_describes_them():
    from pixzip.codec.levels import LEVELS
    r = run("compress", "--list-levels")
    assert r.exit_code == 0
    assert [l.split()[0] for l in lines(r.stdout)] == [f"-{n}" for n in sorted(LEVELS)]
    help_text = run("compress", "--help").output
    assert all(f"-{n}" in help_text for n in LEVELS) and "--list-levels" in help_text


def test_the_progress_bar_is_sized_from_the_headers(tmp_path):
    """Every job of a run has its pixels and raw bytes before any is coded,
    from the image's header (compress) or the archive's (decompress), so the
    one bar has a total and an ETA, even for one big file."""
    src = tmp_path / "p.png"
    Image.fromarray(picture(7, h=9, w=11)).save(src)
    job = batch.plan(batch.find([str(src)], False, False), "compress", None, None, False, True)[0][0]
    assert (job.pixels, job.raw_bytes) == (99, 297)
    assert run("compress", "-1", src).exit_code == 0
    job = batch.plan(batch.find([str(src) + ".pxz"], False, True), "test", None, None, False, True)[0][0]
    assert (job.pixels, job.raw_bytes) == (99, 297)
    bar = batch.Bar("compress", [job], show=False, quiet=False)
    assert bar.bar.total == 297
    bar.close()


def test_a_worker_has_its_share_of_the_threads():
    """NUMBA_NUM_THREADS is set in a worker before numba loads."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx, initializer=batch.start_worker, initargs=(1, ctx.Queue())) as pool:
        assert pool.submit(_numba_threads).result() == 1
    assert batch.threads_each(jobs=2, threads=3) == 3
    assert batch.threads_each(jobs=10 ** 6, threads=None) == 1


def _numba_threads():
    import numba
    return numba.get_num_threads()


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_an_interrupted_run_with_workers_stops_them_and_leaves_no_partial_output(tmp_path, sig):
    """Ctrl-C (or SIGTERM) while two workers code: status 128 + the signal,
    one line, every worker gone, and no temporary file; an output that is
    there is whole (it decodes)."""
    import signal
    import subprocess
    import sys
    import time
    src = tmp_path / "in"
    src.mkdir()
    for k in range(4):
        Image.fromarray(picture(k, h=384, w=512)).save(src / f"p{k}.png")
    err = tmp_path / "err"
    with open(err, "wb") as e:
        p = subprocess.Popen([sys.executable, "-m", "pixzip", "compress", "-1", "-r", src, "--output-dir",
                              tmp_path / "out", "-j", "2", "--progress"], stdin=subprocess.DEVNULL, stderr=e,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 120
        while b"B/" not in err.read_bytes() and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.05)       # the bar: both workers are coding
        assert p.poll() is None, err.read_text()
        children = Path(f"/proc/{p.pid}/task/{p.pid}/children")
        workers = [c for c in (children.read_text().split() if children.exists() else [])
                   if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
        assert len(workers) == 2 or not children.exists(), workers
        p.send_signal(getattr(signal, sig))
        rc = p.wait(timeout=60)
    time.sleep(1)
    assert not [w for w in workers if Path(f"/proc/{w}").exists()], "a worker is left running"
    text = err.read_text(errors="replace")
    assert rc == 128 + getattr(signal, sig), text
    assert "Traceback" not in text
    assert [l for l in lines(text) if l.startswith("pixzip:")] == [
        f"pixzip: interrupted ({sig}); no partial output is left"]
    assert not list(tmp_path.rglob(".*.tmp"))
    from pixzip.codec import api as codec
    for pxz in (tmp_path / "out").rglob("*.pxz"):
        codec.decompress(pxz.read_bytes())
