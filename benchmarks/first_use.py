"""First use: what a command compiles on a fresh install, and how long it takes.

    python benchmarks/first_use.py [--runs 3] [--cached 1] [-- demo]

Each run starts the command (default ``pixzip demo``) in a fresh process
with fresh kernel caches (new ``$NUMBA_CACHE_DIR`` and ``$XDG_CACHE_HOME``:
the cache locator tries ``$NUMBA_CACHE_DIR/pixzip`` first, so the kernels
kept beside the sources or in the user's cache are never read), records
every numba compile (``numba:compile`` events: the kernel, its argument
types, seconds, nested compiles counted in their caller's time as well as
their own), and times the whole command, interpreter start-up included.
``--cached N`` adds N runs in the last run's caches (the kernels cached).
Prints one row per run (wall and CPU seconds, the load average before it,
what compiled, what was loaded from the cache) and a table of the kernels
compiled by the median run.  Compile times are CPU seconds of the compiling
thread, which a busy machine inflates less than wall time.  Kernels that a
background process compiled (``kernel_cache.precompile_decoder``) show as loaded
from the cache; its CPU time is in the run's CPU seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from startup import cpu     # this folder's start-up benchmark: the machine's CPU

_CHILD = r"""
import json, sys, time
from numba.core import event
out, argv = sys.argv[1], sys.argv[2:]
marks = []

class _Listener(event.Listener):
    def on_start(self, e):
        marks.append(("start", time.thread_time(), e.data["dispatcher"].py_func.__qualname__, str(e.data["args"])))

    def on_end(self, e):
        marks.append(("end", time.thread_time(), e.data["dispatcher"].py_func.__qualname__, str(e.data["args"])))

from cli.main import main
with event.install_listener("numba:compile", _Listener()):
    try:
        main.main(args=argv, standalone_mode=False)
    finally:
        # compiles as (kernel, args, inclusive s, exclusive s) in CPU seconds of the thread
        # that compiled it (numba compiles one at a time, nested ones inside their caller's):
        # nested compiles are subtracted from the caller's exclusive time
        stack, rows = [], []
        for kind, t, name, args in marks:
            if kind == "start":
                stack.append([name, args, t, 0.0])
            else:
                name, args, t0, nested = stack.pop()
                rows.append((name, args, t - t0, t - t0 - nested))
                if stack:
                    stack[-1][3] += t - t0
        from pixzip.codec import kernel_cache
        loaded = sorted(k.py_func.__name__ for k in kernel_cache.kernels() if sum(k.stats.cache_hits.values()))
        json.dump({"compiles": rows, "loaded": loaded}, open(out, "w"))
"""


def run_once(argv: list[str], env: dict) -> tuple[float, float, float, list, list]:
    """(wall seconds, CPU seconds, 1-minute load before, compiles, kernels loaded
    from the cache) of one run of the command."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as f:
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", _CHILD, f.name, *argv], check=True, env=env,
                       stdout=subprocess.DEVNULL, cwd=Path(__file__).resolve().parent.parent)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_s = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        found = json.loads(f.read() or '{"compiles": [], "loaded": []}')
        return wall, cpu_s, load, found["compiles"], found["loaded"]


def fresh_env() -> dict:
    return dict(os.environ, NUMBA_CACHE_DIR=tempfile.mkdtemp(prefix="pixzip-numba-"),
                XDG_CACHE_HOME=tempfile.mkdtemp(prefix="pixzip-xdg-"))


def _ours(name: str) -> bool:
    """A pixzip kernel, not one of numba's own helpers (``ol_np_empty.<locals>.impl``)."""
    return "<locals>" not in name and not name.startswith("_")


def kernel_table(compiles: list, merge: bool = False) -> list[tuple[str, int, float, float]]:
    """(kernel, signatures, inclusive s, exclusive s) per kernel, slowest first;
    with ``merge``, numba's own helpers summed in one row."""
    per: dict[str, list] = {}
    for name, _args, incl, excl in compiles:
        key = name if not merge or _ours(name) else "numba"
        row = per.setdefault(key, [0, 0.0, 0.0])
        row[0] += 1
        row[1] += incl
        row[2] += excl
    return sorted(((k, n, i, e) for k, (n, i, e) in per.items()), key=lambda r: -r[3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="fresh-cache runs")
    ap.add_argument("--cached", type=int, default=1, help="runs in the last run's caches")
    ap.add_argument("--signatures", action="store_true", help="also list every signature compiled")
    ap.add_argument("command", nargs="*", default=["demo"], help="pixzip's arguments (default: demo)")
    args = ap.parse_args()
    results = []
    env = None
    for r in range(args.runs):
        env = fresh_env()
        wall, cpu_s, load, compiles, loaded = run_once(args.command, env)
        results.append((f"fresh {r + 1}", wall, cpu_s, load, compiles, loaded))
        print(f"{results[-1][0]}: {wall:.1f} s (load {load:.2f}), {len(compiles)} compiles", file=sys.stderr)
    if args.cached and env is None:          # fill a fresh cache first
        env = fresh_env()
        wall, cpu_s, load, compiles, loaded = run_once(args.command, env)
        results.append(("fresh (fills the cache)", wall, cpu_s, load, compiles, loaded))
    for r in range(args.cached):
        wall, cpu_s, load, compiles, loaded = run_once(args.command, env)
        results.append((f"cached {r + 1}", wall, cpu_s, load, compiles, loaded))
    cmd = "pixzip " + " ".join(args.command)
    print(f"`{cmd}`: {cpu()}, {os.cpu_count()} CPUs, Python {platform.python_version()}\n")
    print("| run | wall s | CPU s | load before | compiles | compile CPU s | kernels compiled (signatures) "
          "| loaded from the cache |\n|---|---|---|---|---|---|---|---|")
    for label, wall, cpu_s, load, compiles, loaded in results:
        spent = sum(e for *_, e in compiles)
        what = ", ".join(f"{k} {n}" for k, n, _, _ in kernel_table(compiles) if _ours(k)) or "nothing"
        print(f"| {label} | {wall:.1f} | {cpu_s:.1f} | {load:.2f} | {len(compiles)} | {spent:.1f} | {what} "
              f"| {', '.join(loaded) or 'nothing'} |")
    fresh = [r for r in results if r[0].startswith("fresh ") and r[0][6:].isdigit()]
    if fresh:
        walls = [r[1] for r in fresh]
        med = sorted(fresh, key=lambda r: r[1])[len(fresh) // 2]
        print(f"\nfresh install: median {statistics.median(walls):.1f} s wall (min {min(walls):.1f}, "
              f"max {max(walls):.1f}), {statistics.median(r[2] for r in fresh):.1f} s CPU")
        print(f"\nkernels compiled in the command's process by the median run ({med[0]}; numba's own "
              "helpers summed as 'numba'):\n")
        print("| kernel | signatures | CPU s (with nested) | CPU s (own) |\n|---|---|---|---|")
        for k, n, incl, excl in kernel_table(med[4], merge=True):
            print(f"| {k} | {n} | {incl:.1f} | {excl:.1f} |")
        if args.signatures:
            print()
            for name, sig, incl, excl in med[4]:
                print(f"- {name} {excl:.1f} s: {sig}")


if __name__ == "__main__":
    main()
