"""Start-up and first-use times of the command line, as a user sees them.

    python benchmarks/startup.py [--runs 5] [--first-use 0] [--pixzip "pixzip"]

Times (wall, /usr/bin/time) of ``pixzip --help``, ``pixzip info FILE`` and
``pixzip decompress`` of a 32x32 archive once the kernels are cached; with
``--first-use N``, also ``pixzip demo`` N times in a fresh numba cache
(the first run after an install, which compiles the kernels) and once more
in that cache.  Prints medians, and the machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(cmd: str, env=None, cwd=None) -> float:
    """Wall seconds of one run of a shell command, as /usr/bin/time reports it."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        full = f"/usr/bin/time -f %e -o {t.name} {cmd} >/dev/null 2>&1"
        subprocess.run(full, shell=True, check=True, env=env, cwd=cwd)
        return float(t.read().split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--first-use", type=int, default=0, help="fresh-cache runs of `pixzip demo` (slow)")
    ap.add_argument("--pixzip", default="pixzip", help="the command that runs pixzip")
    args = ap.parse_args()
    px = args.pixzip
    work = Path(tempfile.mkdtemp(prefix="pixzip-startup-"))
    make = "import numpy as np, pixzip, pathlib\nfrom PIL import Image\n"
    sample = subprocess.run([sys.executable, "-c", "import pixzip, pathlib; "
                             "print(pathlib.Path(pixzip.__file__).parent / 'data' / 'astronaut.png')"],
                            capture_output=True, text=True, check=True).stdout.strip()
    code = (make + f"a = np.asarray(Image.open({sample!r}).convert('RGB'))[100:132, 200:232]\n"
            f"pathlib.Path({str(work / 'c.pxz')!r}).write_bytes(pixzip.compress(np.ascontiguousarray(a), "
            "payload='network'))\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    arc = shlex.quote(str(work / "c.pxz"))
    out = shlex.quote(str(work / "out.png"))
    dec = f"{px} decompress -q -f {arc} -o {out}"
    subprocess.run(dec, shell=True, check=True)        # the kernels cached
    rows = []
    for label, cmd in (("pixzip --help", f"{px} --help"), ("pixzip info FILE", f"{px} info {arc}"),
                       ("pixzip decompress (32x32)", dec)):
        t = [timed(cmd) for _ in range(args.runs)]
        rows.append((label, statistics.median(t), min(t), max(t)))
    if args.first_use:
        first, again = [], []
        for _ in range(args.first_use):
            env = dict(os.environ, NUMBA_CACHE_DIR=tempfile.mkdtemp(prefix="pixzip-numba-"))
            first.append(timed(f"{px} demo", env=env))
        again.append(timed(f"{px} demo", env=env))
        rows.append(("pixzip demo, fresh cache", statistics.median(first), min(first), max(first)))
        rows.append(("pixzip demo, cached", again[0], again[0], again[0]))
    print("| command | median s | min | max |\n|---|---|---|---|")
    for label, med, lo, hi in rows:
        print(f"| `{label}` | {med:.2f} | {lo:.2f} | {hi:.2f} |")
    print(f"\n{cpu()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; {args.runs} runs "
          f"(first use: {args.first_use})")


if __name__ == "__main__":
    main()
