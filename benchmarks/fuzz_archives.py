"""The long fuzz campaign of the decoder against hostile archives.

    python benchmarks/fuzz_archives.py --cases 10000 --seed 2 [--threads 1] [--default-lies] [--bugs bugs.txt]

Builds the seeds of ``tests/test_fuzz.py`` (format-2 archives of every payload
kind, RGB and grey, with and without metadata, and the format-1 golden files),
feeds the decoder ``--cases`` mutants of them (bit flips, byte overwrites,
insertions, deletions, truncations, splices, duplicated regions, and header
fields rewritten to lie under a valid header CRC), each under a deadline of
--seconds, and prints a Markdown table: the outcomes by kind (decoded exactly,
decoded another valid archive, each PixzipError subclass, and bugs: anything
else that escaped, wrong pixels, a case past the deadline, a case that
allocated more than --max-mb), the slowest case with its mutation and the
first 64 of its bytes (all of them in --slowest), the worst time and
tracemalloc peak per input byte, and the peak memory (RSS of the process and
the largest tracemalloc peak of a case).  The header lies include bombs: 18 KB
to 1 MB payloads claiming the largest image their length allows.
Bugs are listed below the table with the mutant's bytes (all of them in --bugs).
"""
from __future__ import annotations

import argparse
import collections
import platform
import resource
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numba

from tests import test_fuzz as F


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024     # KB on Linux


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=F.CASE_SECONDS, help="deadline of a case")
    ap.add_argument("--max-mb", type=float, default=F.CASE_BYTES / 2**20, help="tracemalloc peak bound of a case")
    ap.add_argument("--threads", type=int, default=0,
                    help="numba threads (default: numba's, as the CLI runs; a step too small to share runs on one)")
    ap.add_argument("--default-lies", action="store_true",
                    help="leave out the claims at the payload-length bound, as the default test run does")
    ap.add_argument("--bugs", default=None, help="write every bug (description, bytes, traceback) here")
    ap.add_argument("--slowest", default=None, help="write the slowest case's bytes to this file")
    args = ap.parse_args(argv)
    if args.threads:
        numba.set_num_threads(args.threads)

    t0 = time.perf_counter()
    seeds = F.make_seeds()
    models = F.models_of(seeds)
    for s in seeds:      # compile the kernels, and check the seeds
        assert F.run_case(s.data, s, models).kind == "decoded exactly", s.name
    rss_start = rss_mb()
    setup = time.perf_counter() - t0

    tracemalloc.start()
    counts: collections.Counter = collections.Counter()
    slowest = (0.0, "", "", b"")
    biggest = (0, "")
    per_byte = (0.0, "", 0)          # the most seconds per input byte
    peak_per_byte = (0.0, "", 0)     # the largest tracemalloc peak per input byte
    bombs = collections.Counter()
    bugs = []
    t0 = time.perf_counter()
    lies = F.LIES_DEFAULT if args.default_lies else F.LIES
    progress_every = max(1, args.cases // 20)

    def progress(k):
        if (k + 1) % progress_every == 0:
            print(f"  {k + 1} cases, {time.perf_counter() - t0:.0f} s, {len(bugs)} bugs", file=sys.stderr, flush=True)

    for desc, o, data in F.campaign(seeds, args.cases, args.seed, args.seconds, progress, lies):
        counts[o.kind] += 1
        if "bomb:" in desc:
            bombs[o.kind] += 1
        if o.seconds > slowest[0]:
            slowest = (o.seconds, desc, o.kind, data)
        size = max(1, len(data))
        if o.seconds / size > per_byte[0]:
            per_byte = (o.seconds / size, desc, len(data))
        if o.peak_bytes / size > peak_per_byte[0]:
            peak_per_byte = (o.peak_bytes / size, desc, len(data))
        if o.peak_bytes > biggest[0]:
            biggest = (o.peak_bytes, desc)
        if o.bug:
            bugs.append((desc, o, data))
    wall = time.perf_counter() - t0
    tracemalloc.stop()

    n = sum(counts.values())
    order = ["decoded exactly", "decoded a valid archive"]
    rows = [k for k in order if k in counts] + sorted(k for k in counts if k not in order and not k.startswith("BUG")) \
        + sorted(k for k in counts if k.startswith("BUG"))
    print(f"\nFuzz campaign: {n} cases, seed {args.seed}, {len(seeds)} seeds, "
          f"{'default' if args.default_lies else 'all'} header lies, deadline {args.seconds:g} s, "
          f"numba threads {numba.get_num_threads()}, {platform.machine()} {platform.python_version()}; "
          f"{wall:.0f} s ({1000 * wall / max(n, 1):.1f} ms a case) after {setup:.0f} s of setup\n")
    print("| outcome | cases | share |")
    print("|---|---:|---:|")
    for k in rows:
        print(f"| {k} | {counts[k]} | {100 * counts[k] / n:.1f} % |")
    print(f"| **total** | **{n}** | |")
    print(f"| bugs (anything but a decode or a PixzipError) | {sum(v for k, v in counts.items() if k.startswith('BUG'))}"
          f" | |")
    print()
    print("| measure | value | case |")
    print("|---|---:|---|")
    print(f"| slowest case | {slowest[0]:.3f} s | {slowest[1]} -> {slowest[2]}; {len(slowest[3])} bytes, "
          f"the first 64: `{slowest[3][:64].hex()}` |")
    print(f"| most time per input byte | {1e6 * per_byte[0]:.1f} us | {per_byte[1]} ({per_byte[2]} bytes) |")
    print(f"| largest tracemalloc peak per input byte | {peak_per_byte[0]:.0f} B | {peak_per_byte[1]} "
          f"({peak_per_byte[2]} bytes) |")
    print(f"| bombs (18 KB to 1 MB payloads at the bound) | {sum(bombs.values())} | "
          f"{', '.join(f'{k} {v}' for k, v in sorted(bombs.items()))} |")
    print(f"| largest tracemalloc peak of a case | {biggest[0] / 2**20:.1f} MB | {biggest[1]} |")
    print(f"| peak RSS of the process | {rss_mb():.0f} MB | {rss_start:.0f} MB after setup (torch, numba, models) |")
    if bugs:
        print(f"\n{len(bugs)} bugs; the first ones:\n")
        for desc, o, data in bugs[:10]:
            print(f"- {o.kind} ({o.seconds:.2f} s, {o.peak_bytes / 2**20:.0f} MB): {desc}; {len(data)} bytes"
                  f"{': ' + o.detail.strip().splitlines()[-1] if o.detail else ''}")
    if args.bugs:
        Path(args.bugs).write_text(F.bug_report(bugs, limit=None) + "\n")
    if args.slowest:
        Path(args.slowest).write_bytes(slowest[3])
    return 1 if bugs else 0


if __name__ == "__main__":
    sys.exit(main())
