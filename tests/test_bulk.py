"""Bulk jobs (pixzip.bulk, pixzip bulk): 12 small images, one of them
corrupt, on a local Ray instance (one per module) and on the local pool:
the archives, the manifest's lines, a rerun that redoes nothing, an archive
changed after the run redone, and the command line's one-line errors."""
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from pixzip.cli.main import main

from pixzip import bulk
from pixzip.bulk import manifest

ray = pytest.importorskip("ray")

N_IMAGES = 12
CORRUPT = "photos/b/im05.png"


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module (its start costs seconds); the jobs use it as it is."""
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield
    ray.shutdown()


def picture(seed, h=12, w=14):
    rng = np.random.default_rng(seed)
    ramp = np.arange(w, dtype=np.int64)[None, :, None] * 7
    return (rng.integers(0, 30, (h, w, 3)) + ramp).clip(0, 255).astype(np.uint8)


@pytest.fixture
def photos(tmp_path):
    """photos/ with 12 images in two folders; im05 is a PNG cut short."""
    root = tmp_path / "photos"
    for k in range(N_IMAGES):
        path = tmp_path / ("photos/b" if k % 2 else "photos/a") / f"im{k:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture(k)).save(path)
    bad = tmp_path / CORRUPT
    bad.write_bytes(bad.read_bytes()[:60])
    return root


def lines(path):
    return [json.loads(s) for s in Path(path).read_text().splitlines()]


def archives(out):
    return {str(p.relative_to(out)): p for p in sorted(Path(out).rglob("*.pxz"))}


def pixels(path):
    with Image.open(path) as im:
        return np.asarray(im)


def test_a_ray_job_makes_eleven_exact_archives_and_one_error_line(local_ray, photos, tmp_path):
    out = tmp_path / "out"
    s = bulk.compress([photos], out, level=1, engine="ray", jobs=2, threads=1)
    assert (s.done, s.skipped, s.failed) == (11, 0, 1)
    made = archives(out)
    assert len(made) == 11 and f"{CORRUPT}.pxz" not in made
    back = tmp_path / "back"
    d = bulk.decompress([out / "photos"], back, engine="ray", jobs=2)
    assert (d.done, d.failed) == (11, 0)
    for name in made:
        original = tmp_path / name[:-len(".pxz")]
        assert np.array_equal(pixels(back / name[:-len(".pxz")]), pixels(original))
    recs = lines(out / manifest.NAME)
    assert len(recs) == 12 and set(recs[0]) == set(manifest.FIELDS)
    [bad] = [r for r in recs if r["error"]]
    assert bad["input"] == str(tmp_path / CORRUPT) and CORRUPT in bad["error"] and "\n" not in bad["error"]
    assert bad["output"] == str(out / f"{CORRUPT}.pxz") and bad["crc32"] is None
    for r in recs:
        if r["error"] is None:
            assert r["size"] == r["bytes_out"] == os.path.getsize(r["output"])
            assert r["crc32"] == manifest.checksums(r["output"])[0] and r["level"] == 1
            assert r["bits_per_subpixel"] == pytest.approx(8 * r["bytes_out"] / (12 * 14 * 3), abs=1e-5)


def test_a_rerun_redoes_nothing_but_the_failed_file(local_ray, photos, tmp_path):
    out = tmp_path / "out"
    bulk.compress([photos], out, level=1, engine="ray", jobs=2)
    # an archive takes its image's mtime: a rewrite would show in its inode and ctime instead
    stamps = {name: (p.stat().st_ino, p.stat().st_ctime_ns, p.stat().st_mtime_ns) for name, p in archives(out).items()}
    again = bulk.compress([photos], out, level=1, engine="ray", jobs=2)
    assert (again.done, again.skipped, again.failed, again.redone) == (0, 11, 1, 0)
    assert {name: (p.stat().st_ino, p.stat().st_ctime_ns, p.stat().st_mtime_ns)
            for name, p in archives(out).items()} == stamps
    recs = lines(out / manifest.NAME)
    assert len(recs) == 13 and recs[-1]["error"] and recs[-1]["input"].endswith(CORRUPT)


def test_an_archive_changed_after_the_run_is_redone_and_said(photos, tmp_path):
    out = tmp_path / "out"      # the skips are the job's, whatever the engine: here, the files one by one
    bulk.compress([photos], out, level=1, jobs=1)
    made = archives(out)
    first, second, third = (made[f"photos/a/im{k:02d}.png.pxz"] for k in (0, 2, 4))
    good = {p: p.read_bytes() for p in (first, second)}
    first.write_bytes(good[first][:-1])                                  # another size
    flipped = bytearray(good[second])
    flipped[20] ^= 1
    second.write_bytes(bytes(flipped))                                   # the same size, other bytes
    third.unlink()                                                       # missing
    notes = []
    again = bulk.compress([photos], out, level=1, jobs=1, on_note=notes.append)
    assert (again.done, again.skipped, again.redone, again.failed) == (3, 8, 3, 1)
    assert first.read_bytes() == good[first] and second.read_bytes() == good[second] and third.exists()
    said = "\n".join(notes)
    assert "im00.png: done before, but" in said and "bytes, the manifest says" in said
    assert "im02.png: done before, but" in said and "CRC-32" in said and "im04.png.pxz is missing" in said


def test_the_local_engine_makes_the_same_bytes_and_lines_as_ray(local_ray, photos, tmp_path):
    by_ray, by_pool = tmp_path / "ray", tmp_path / "pool"
    bulk.compress([photos], by_ray, level=1, engine="ray", jobs=2)
    bulk.compress([photos], by_pool, level=1, engine="local", jobs=2)
    a, b = archives(by_ray), archives(by_pool)
    assert a.keys() == b.keys() and all(a[k].read_bytes() == b[k].read_bytes() for k in a)

    def fields(out):
        recs = {r["input"]: r for r in lines(out / manifest.NAME)}
        return {k: {f: (v.replace(str(out), "OUT") if isinstance(v, str) else v) for f, v in r.items()
                    if f != "seconds"} for k, r in recs.items()}
    assert fields(by_ray) == fields(by_pool)


def test_a_test_job_writes_only_its_manifest_and_names_a_damaged_archive(local_ray, photos, tmp_path):
    out = tmp_path / "out"
    bulk.compress([photos], out, level=1, engine="local", jobs=1)
    damaged = out / "photos/a/im02.png.pxz"
    damaged.write_bytes(damaged.read_bytes()[:-3])
    checks = tmp_path / "checks"
    s = bulk.test([out], checks, engine="ray", jobs=2)
    assert (s.done, s.failed) == (10, 1)
    assert [p.name for p in checks.iterdir()] == [manifest.NAME]
    recs = lines(checks / manifest.NAME)
    [bad] = [r for r in recs if r["error"]]
    assert bad["input"] == str(damaged) and str(damaged) in bad["error"]
    assert all(r["output"] is None for r in recs)
    again = bulk.test([out], checks, engine="local", jobs=1)
    assert (again.done, again.skipped, again.failed) == (0, 10, 1)


def test_a_killed_jobs_cut_line_is_passed_over_and_the_file_done_again(photos, tmp_path):
    out = tmp_path / "out"
    bulk.compress([photos / "a"], out, level=1, jobs=1)
    path = out / manifest.NAME
    text = path.read_text().splitlines()
    done = json.loads(text[-1])
    os.unlink(done["output"])
    path.write_text("\n".join(text[:-1]) + "\n" + text[-1][:30])      # killed while writing the last line
    notes = []
    again = bulk.compress([photos / "a"], out, level=1, jobs=1, on_note=notes.append)
    assert (again.done, again.skipped) == (1, 5) and "1 line(s) that could not be read" in notes[0]
    assert [json.loads(s)["input"] for s in path.read_text().splitlines()[-1:]] == [done["input"]]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_the_command_line_says_each_failure_and_one_summary_and_exits_1(local_ray, photos, tmp_path):
    out = tmp_path / "out"
    r = run("bulk", "compress", photos, "--output-dir", out, "-1", "--engine", "ray", "-j", 2, "-T", 1)
    assert r.exit_code == 1, r.output
    said = r.output.strip().splitlines()
    assert len(said) == 2 and CORRUPT in said[0]
    assert said[1].startswith("pixzip: bulk compress (ray): 11 done, 0 skipped, 1 failed") and "MB/s" in said[1]
    r = run("bulk", "compress", photos, "--output-dir", out, "-1", "--manifest", tmp_path / "a.jsonl")
    assert r.exit_code == 1 and "already exists (use -f to overwrite)" in r.output     # not vouched for by a.jsonl
    r = run("bulk", "test", out, "--manifest", tmp_path / "t.jsonl", "-q")
    assert r.exit_code == 0 and r.output == ""


@pytest.mark.parametrize("args, message", [
    (["compress", "SRC"], "Missing option '--output-dir'"),
    (["test", "SRC"], "give --output-dir DIR or --manifest PATH"),
    (["compress", "SRC", "--output-dir", "OUT", "--address", "10.0.0.1:6379"], "--address joins a Ray cluster"),
    (["compress", "SRC", "--output-dir", "OUT", "-1", "-m", "fast"], "-1/-9 choose the model"),
])
def test_the_command_line_refuses_a_wrong_call_in_one_line(photos, tmp_path, args, message):
    r = run("bulk", *[str(photos) if a == "SRC" else str(tmp_path / "out") if a == "OUT" else a for a in args])
    assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


def test_without_ray_the_ray_engine_says_how_to_install_it(photos, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    r = run("bulk", "compress", photos, "--output-dir", tmp_path / "out", "--engine", "ray")
    assert r.exit_code == 1 and r.output.strip().splitlines()[-1].endswith("pip install 'pixzip[ray]'")
    assert len(r.output.strip().splitlines()) == 1


def test_an_interrupted_ray_job_removes_its_unrecorded_outputs_and_temporaries_only(tmp_path):
    """Ray stops its workers at once: after an interruption, the driver removes what they left with no
    manifest line (the temporary files, the outputs this job made), never a file that was there before."""
    from pixzip.bulk import ray_engine
    made, before = tmp_path / "made.png.pxz", tmp_path / "before.png.pxz"
    temporary = tmp_path / ".before.png.pxz.k2j4x9q1.tmp"
    for p in (made, before, temporary):
        p.write_bytes(b"x")
    ray_engine._remove_unrecorded([str(made), str(before)], new={str(made)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["before.png.pxz"]


def test_a_rerun_asking_for_another_coding_redoes_the_files_and_overwrites_only_with_force(photos, tmp_path):
    out = tmp_path / "out"
    first = bulk.compress([photos / "a"], out, level=1, jobs=1)
    other = bulk.compress([photos / "a"], out, method="mixer", jobs=1)     # not what the lines say was asked
    assert other.skipped == 0 and other.failed == first.done and all("exists" in e for e in other.errors)
    forced = bulk.compress([photos / "a"], out, method="mixer", jobs=1, force=True)
    assert (forced.done, forced.skipped) == (first.done, 0)
    again = bulk.compress([photos / "a"], out, method="mixer", jobs=1)
    assert (again.done, again.skipped) == (0, first.done)
    last = [json.loads(s) for s in (out / manifest.NAME).read_text().splitlines()][-1]
    assert (last["level"], last["model"], last["method"]) == (None, None, "mixer")
