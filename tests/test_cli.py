"""The command line: exit codes and one-line errors, through click's CliRunner."""
import pytest
from click.testing import CliRunner
from PIL import Image
from pixzip.cli.main import main

from .test_training import make_npz

TINY = ["--channels", "4", "--layers", "1", "--kernel", "3", "--batch-size", "4", "--device", "cpu"]


@pytest.fixture
def trained(tmp_path, rng):
    data = make_npz(tmp_path / "d.npz", rng)
    out = tmp_path / "m.pt"
    r = CliRunner().invoke(main, ["train", str(data), "--out", str(out), "--steps", "3", *TINY])
    assert r.exit_code == 0, r.output
    return data, out


def test_train_eval_sample(trained, tmp_path):
    data, ckpt = trained
    assert ckpt.exists() and (tmp_path / "m.pt.log.csv").exists()
    r = CliRunner().invoke(main, ["eval", str(ckpt), str(data), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "bits/dim: " in r.output
    grid = tmp_path / "grid.png"
    r = CliRunner().invoke(main, ["sample", str(ckpt), "-n", "4", "-o", str(grid), "--size", "3x5", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    with Image.open(grid) as im:
        assert im.mode == "L" and im.size == (2 * 7 + 2, 2 * 5 + 2)


def one_line_error(result, *needles):
    assert result.exit_code == 1, result.output
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, result.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_train_missing_data_fails_cleanly(tmp_path):
    r = CliRunner().invoke(main, ["train", str(tmp_path / "nope"), "--out", str(tmp_path / "o.pt"), *TINY])
    one_line_error(r, "nope", "no such file")
    assert not (tmp_path / "o.pt").exists()


def test_train_not_an_image(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    r = CliRunner().invoke(main, ["train", str(bad), "--out", str(tmp_path / "o.pt"), *TINY])
    one_line_error(r, "bad.png", "not a readable image")


def test_resume_without_checkpoint(tmp_path, rng):
    data = make_npz(tmp_path / "d.npz", rng)
    r = CliRunner().invoke(main, ["train", str(data), "--out", str(tmp_path / "o.pt"), "--resume", *TINY])
    one_line_error(r, "o.pt", "no checkpoint")


def test_resume_keeps_the_runs_settings_and_changes_only_what_may_change(trained):
    data, ckpt = trained                 # a run of 3 steps at batch 4
    from pixzip.learn.checkpoints import load_checkpoint
    r = CliRunner().invoke(main, ["train", str(data), "--out", str(ckpt), "--resume", "--device", "cpu"])
    assert r.exit_code == 0, r.output   # no --steps: the run's own 3 steps, not the option's default
    assert load_checkpoint(ckpt)["step"] == 3
    r = CliRunner().invoke(main, ["train", str(data), "--out", str(ckpt), "--resume", *TINY,   # the run's own
                                  "--steps", "5", "--batch-size", "2"])
    assert r.exit_code == 0, r.output
    saved = load_checkpoint(ckpt)
    assert saved["step"] == 5 and saved["train_config"]["batch_size"] == 2
    for option, value in [("--channels", "8"), ("--lr", "0.5"), ("--classes", "3")]:
        r = CliRunner().invoke(main, ["train", str(data), "--out", str(ckpt), "--resume", option, value])
        one_line_error(r, "m.pt", option, "cannot change on --resume")
    assert load_checkpoint(ckpt)["step"] == 5


def test_eval_bad_checkpoint(tmp_path, rng):
    data = make_npz(tmp_path / "d.npz", rng)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    r = CliRunner().invoke(main, ["eval", str(junk), str(data), "--device", "cpu"])
    one_line_error(r, "junk.pt", "not a pixzip checkpoint")
    r = CliRunner().invoke(main, ["eval", str(tmp_path / "missing.pt"), str(data), "--device", "cpu"])
    one_line_error(r, "missing.pt")


def test_sample_bad_arguments(trained, tmp_path):
    _, ckpt = trained
    out = tmp_path / "g.png"
    r = CliRunner().invoke(main, ["sample", str(ckpt), "-o", str(out), "--size", "big"])
    assert r.exit_code == 2  # usage error
    r = CliRunner().invoke(main, ["sample", str(ckpt), "-o", str(out), "--label", "1", "--device", "cpu"])
    one_line_error(r, "not class-conditional")
    assert not out.exists()


def test_usage_errors_exit_2(tmp_path):
    assert CliRunner().invoke(main, ["train"]).exit_code == 2
    assert CliRunner().invoke(main, ["nonsense"]).exit_code == 2
    assert CliRunner().invoke(main, ["--help"]).exit_code == 0


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version_flag_prints_the_installed_version(flag):
    import pixzip
    r = CliRunner().invoke(main, [flag])
    assert r.exit_code == 0 and r.output.strip() == f"pixzip, version {pixzip.__version__}"


def test_python_dash_m_pixzip_is_the_command_line():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "pixzip", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "compress" in r.stdout and "decompress" in r.stdout


def test_a_reader_that_goes_away_stops_the_command_quietly(tmp_path):
    """``pixzip info ... | head -1``: when standard output's reader closes it,
    pixzip stops at once, with status 1 and nothing said (click's way; it
    used to print "pixzip: [Errno 32] Broken pipe" for every file left)."""
    import subprocess
    import sys

    import numpy as np
    from pixzip.codec import api as codec
    archive = tmp_path / "a.pxz"
    archive.write_bytes(codec.compress(np.zeros((2, 3, 3), np.uint8), payload="raw"))
    # far more output than a pipe holds, so the writer meets the closed end
    p = subprocess.Popen([sys.executable, "-m", "pixzip", "info"] + [str(archive)] * 3000,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline().startswith(b"file")
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=60) == 1
    assert err == b""
