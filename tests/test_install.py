"""The installed package, not the source tree: the console script runs, and the
shipped models folder and the demo's sample photo are installed."""
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(shutil.which("pixzip") is None, reason="pixzip is not installed")


def test_console_script_runs_from_the_installed_package(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run(["pixzip", "--version"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0 and "pixzip" in r.stdout
    code = "import pixzip.models, pathlib; print(pathlib.Path(pixzip.models.__file__).parent)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert os.path.isfile(os.path.join(r.stdout.strip(), "README.md"))
    code = "import pixzip.app.demo as d; print(d.SAMPLE)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert os.path.isfile(r.stdout.strip()), "the demo's sample photo is installed with the package"
