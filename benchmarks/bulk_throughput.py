"""Bulk throughput: one process against the local pool against Ray Data.

    python benchmarks/bulk_throughput.py FOLDER [--level 1] [--repeats 3] [--jobs 2]

Every image under FOLDER is compressed, in a new process each time, as a
user runs it:

- one process: ``pixzip compress -r -j 1`` (the files one after another);
- the local pool: ``pixzip bulk compress --engine local -j N``;
- Ray: ``pixzip.bulk.compress(engine="ray", jobs=N, threads=1)`` after a
  ``ray.init(num_cpus=N)`` of its own, timed apart, so that the table gives
  Ray both with its start-up (the whole process) and without it (the job
  alone: its workers' start and model loading are counted, as the pool's are).

The modes alternate run by run, so that a change in the machine's load
falls on each; the table gives the median wall time, seconds per image and
raw megabytes per second (the images' samples, 10**6 bytes), and the speed
against one process.  The archives of every mode are checked byte-identical.
One image is compressed first, so that the compiled kernels are cached
before any run is timed.  The CPU is named and the load average printed
before and after: on a shared machine, say so with the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from folder_throughput import archives, images_under, load, machine, pixzip, raw_bytes  # noqa: E402

RAY_JOB = """
import json, logging, os, sys, time
t0 = time.perf_counter()
import ray
os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
ray.init(num_cpus={jobs}, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
t1 = time.perf_counter()
from pixzip import bulk
s = bulk.compress([{folder!r}], {out!r}, level={level}, engine="ray", jobs={jobs}, threads=1)
t2 = time.perf_counter()
ray.shutdown()
print(json.dumps(dict(start=t1 - t0, job=t2 - t1, failed=s.failed)))
"""


def ray_run(folder: Path, out: Path, level: int, jobs: int) -> tuple[float, float]:
    """(wall seconds of the whole process, seconds of the job after ray.init)."""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", RAY_JOB.format(folder=str(folder), out=str(out), level=level,
                                                             jobs=jobs)],
                       check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    got = json.loads(r.stdout.strip().splitlines()[-1])
    if got["failed"]:
        sys.exit(f"the ray run failed on {got['failed']} files:\n{r.stderr}")
    return wall, got["job"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--level", type=int, default=1, help="the level (default 1)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2, help="workers of the pool and of Ray (default 2)")
    a = ap.parse_args()
    paths = images_under(a.folder)
    if not paths:
        sys.exit(f"no images under {a.folder}")
    raw = raw_bytes(paths)
    cpu = machine()["cpu"]
    cores = len(os.sched_getaffinity(0))
    print(f"machine: {cpu}, {cores} usable cores; load average before: {load()}")
    print(f"{len(paths)} images, {raw / 1e6:.1f} MB raw, level -{a.level}, medians of {a.repeats}, modes alternated",
          flush=True)
    modes = ["one process (-j 1)", f"local pool (-j {a.jobs})", f"Ray, {a.jobs} workers x 1 thread, with start-up",
             f"Ray, {a.jobs} workers x 1 thread, without start-up"]
    times: dict[str, list[float]] = {m: [] for m in modes}
    made: dict[str, bytes] | None = None
    with tempfile.TemporaryDirectory(prefix="pixzip-bulk-throughput-") as tmp:
        warm = Path(tmp) / "warm"
        pixzip("compress", f"-{a.level}", "-q", "-j", "1", str(paths[0]), "--output-dir", str(warm))
        for r in range(a.repeats):
            for k, mode in enumerate(modes[:3]):
                out = Path(tmp) / f"m{k}-{r}"
                t = time.perf_counter()
                if k == 0:
                    pixzip("compress", f"-{a.level}", "-q", "-r", str(a.folder), "--output-dir", str(out), "-j", "1")
                elif k == 1:
                    pixzip("bulk", "compress", f"-{a.level}", "-q", str(a.folder), "--output-dir", str(out),
                           "--engine", "local", "-j", str(a.jobs))
                else:
                    wall, job = ray_run(a.folder, out, a.level, a.jobs)
                    times[modes[3]].append(job)
                times[mode].append(time.perf_counter() - t)
                print(f"  {mode} run {r + 1}: {times[mode][-1]:.1f} s"
                      f"{f' (job alone {job:.1f} s)' if k == 2 else ''} (load average {load()})", flush=True)
                got = archives(out)
                if made is not None and got != made:
                    sys.exit(f"{mode} made other archives than an earlier run")
                made = got
    print(f"load average after: {load()}")
    print()
    print(f"| {len(paths)} images at -{a.level} | median s | all runs, s | s per image | raw MB/s | "
          f"speed vs one process |")
    print("|---|---|---|---|---|---|")
    base = statistics.median(times[modes[0]])
    for mode in modes:
        m = statistics.median(times[mode])
        runs = ", ".join(f"{t:.1f}" for t in times[mode])
        print(f"| {mode} | {m:.1f} | {runs} | {m / len(paths):.2f} | {raw / 1e6 / m:.2f} | {base / m:.2f}x |")
    print(f"\n{cpu}, {cores} cores; the archives of every mode are byte-identical ({len(made or {})} files). "
          f"Ray's start-up: ray.init of a local instance; its workers' start and model loading are in the job.")


if __name__ == "__main__":
    main()
