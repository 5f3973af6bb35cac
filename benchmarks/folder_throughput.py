"""Folder throughput: ``pixzip compress -r`` with -j 1 against -j 2 (or any).

    python benchmarks/folder_throughput.py FOLDER [--jobs 1,2] [--level 6] [--repeats 3]

Each run compresses every image under FOLDER (``-r``, ``--output-dir`` a
fresh temporary folder, ``-q``) in a new process, as a user runs it: the
worker processes' start is counted.  The runs of each -j alternate (1, 2,
1, 2, ...) so that a change in the machine's load falls on both; the table
gives the median wall time of each, the images and raw megabytes (the
images' samples) per second, the speed against the first -j, and that
ratio run by run (the paired runs, side by side in time).  The
archives of every -j are checked byte-identical.  One image is compressed
first, so that the compiled kernels are in the cache before any run is
timed.  The machine is named (CPU, usable cores) and its load average
printed before and after: on a shared machine, say so with the numbers.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine() -> dict:
    from pixzip.app.bench import machine
    return machine()


def images_under(folder: Path) -> list[Path]:
    from pixzip.app import batch
    walk = batch.find([str(folder)], True, False)
    return [Path(f.path) for f in walk.found]


def raw_bytes(paths: list[Path]) -> int:
    from PIL import Image
    total = 0
    for p in paths:
        with Image.open(p) as im:
            total += im.width * im.height * len(im.getbands())
    return total


def pixzip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pixzip", *args], check=True, stdin=subprocess.DEVNULL)


def archives(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.pxz"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--jobs", default="1,2", help="the -j values to compare (default 1,2)")
    ap.add_argument("--level", type=int, default=6, help="the level (default 6, pixzip's default)")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    jobs = [int(j) for j in a.jobs.split(",")]
    paths = images_under(a.folder)
    if not paths:
        sys.exit(f"no images under {a.folder}")
    raw = raw_bytes(paths)
    print(f"machine: {machine()['cpu']}, {len(os.sched_getaffinity(0))} usable cores; load average before: {load()}")
    print(f"{len(paths)} images, {raw / 1e6:.1f} MB raw, level -{a.level}, medians of {a.repeats}, "
          f"-j runs alternated", flush=True)
    times: dict[int, list[float]] = {j: [] for j in jobs}
    made: dict[int, dict[str, bytes]] = {}
    with tempfile.TemporaryDirectory(prefix="pixzip-throughput-") as tmp:
        warm = Path(tmp) / "warm"
        warm.mkdir()
        pixzip("compress", f"-{a.level}", "-q", "-j", "1", str(paths[0]), "--output-dir", str(warm))
        for r in range(a.repeats):
            for j in jobs:
                out = Path(tmp) / f"j{j}-{r}"
                t = time.perf_counter()
                pixzip("compress", f"-{a.level}", "-q", "-r", str(a.folder), "--output-dir", str(out), "-j", str(j))
                times[j].append(time.perf_counter() - t)
                print(f"  -j {j} run {r + 1}: {times[j][-1]:.1f} s (load average {load()})", flush=True)
                got = archives(out)
                if made and got != next(iter(made.values())):
                    sys.exit(f"-j {j} made other archives than an earlier run")
                made[j] = got
    print(f"load average after: {load()}")
    print()
    print(f"| -j | median s | all runs, s | images/s | raw MB/s | speed vs -j {jobs[0]} | paired, each run |")
    print("|---|---|---|---|---|---|---|")
    base = statistics.median(times[jobs[0]])
    for j in jobs:
        m = statistics.median(times[j])
        runs = ", ".join(f"{t:.1f}" for t in times[j])
        paired = ", ".join(f"{a / b:.2f}x" for a, b in zip(times[jobs[0]], times[j]))
        print(f"| {j} | {m:.1f} | {runs} | {len(paths) / m:.3f} | {raw / 1e6 / m:.3f} | {base / m:.2f}x | {paired} |")
    print(f"\nThe archives of every -j are byte-identical ({len(next(iter(made.values())))} files).")


if __name__ == "__main__":
    main()
