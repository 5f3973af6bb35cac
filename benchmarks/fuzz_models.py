"""The fuzz campaign of the model loader against hostile model files.

    python benchmarks/fuzz_models.py --cases 2000 --seed 0 [--subprocess 200] [--bugs bugs.txt]

Mutates the tiny test models (``tests/conftest.py::tiny_int_model``, RGB and
grey) and ``tests/data/golden-tiny.pxm`` with ``tests/test_model_files.mutate``:
byte flips in the zip, truncations, members dropped, renamed or duplicated,
tensors reshaped, retyped or given extreme values, tables cut or refilled,
config fields set to extreme or ill-typed values, hostile ``__meta__`` JSON,
and zip bombs (a member, or a new one, of up to 256 MiB of zeros in a file
of a few hundred KB).  Each mutant is loaded (``ModelFile.from_bytes``) and,
if it loads, used to compress and decompress a small image, in-process under
a deadline (--seconds) and a tracemalloc bound (--max-mb).  A sample
(--subprocess) also runs in child processes, so a segfault shows as a bug.

Prints a Markdown table: the outcomes by kind (refused with a one-line
ModelFileError, loaded and round-tripped, loaded and refused by the codec
with a PixzipError, and bugs: anything else that escaped, a case past the
deadline or the memory bound, a crashed child), by mutation, the slowest
case, and the worst peak memory per input byte.
"""
from __future__ import annotations

import argparse
import collections
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numba
import numpy as np

from pixzip.app.bench import machine
from tests import test_model_files as T

CHILD = r"""
import sys, numpy as np
from pixzip.codec import api
from pixzip.codec.network.modelfile import ModelFile
from pixzip.errors import ModelFileError, PixzipError
for path in sys.argv[1:]:
    print("start", path, flush=True)
    try:
        net = ModelFile.from_bytes(open(path, "rb").read())
    except ModelFileError:
        print("refused", flush=True)
        continue
    x = np.random.default_rng(1).integers(0, 256, (3, 4, net.colors), dtype=np.uint8)
    try:
        data = api.compress(x, net, method="network", payload="network")
    except PixzipError:
        print("codec refused", flush=True)
        continue
    assert np.array_equal(api.decompress(data, net), x)
    print("round-tripped", flush=True)
"""


def run_case(blob: bytes, seconds: float, max_bytes: int) -> tuple[str, float, int, str]:
    """(outcome, seconds, tracemalloc peak, detail) of one mutant."""
    from pixzip.codec import api
    from pixzip.codec.network.modelfile import ModelFile
    from pixzip.errors import ModelFileError, PixzipError
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    detail = ""
    try:
        net = ModelFile.from_bytes(blob)
    except ModelFileError as e:
        kind = "refused (ModelFileError)" if "\n" not in str(e) else "bug: multi-line error"
        detail = str(e)
    except Exception:   # noqa: BLE001 - any other escape is what the campaign looks for
        kind, detail = "bug: escaped", traceback.format_exc()
    else:
        x = np.random.default_rng(1).integers(0, 256, (3, 4, net.colors), dtype=np.uint8)
        try:
            data = api.compress(x, net, method="network", payload="network")
            ok = np.array_equal(api.decompress(data, net), x)
            kind = "loaded, round-tripped" if ok else "bug: wrong pixels"
        except PixzipError as e:
            kind, detail = f"loaded, codec refused ({type(e).__name__})", str(e)
        except Exception:   # noqa: BLE001
            kind, detail = "bug: escaped in the codec", traceback.format_exc()
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] - base
    if dt > seconds and not kind.startswith("bug"):
        kind = "bug: past the deadline"
    if peak > max_bytes and not kind.startswith("bug"):
        kind = "bug: over the memory bound"
    return kind, dt, peak, detail


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=10.0, help="deadline of a case")
    ap.add_argument("--max-mb", type=float, default=64.0, help="tracemalloc peak bound of a case")
    ap.add_argument("--subprocess", type=int, default=200, help="cases also run in child processes")
    ap.add_argument("--bugs", default=None, help="write every bug (mutation, traceback) here")
    args = ap.parse_args(argv)
    numba.set_num_threads(1)

    from tests.conftest import tiny_int_model
    t0 = time.perf_counter()
    seeds = [("tiny3", tiny_int_model(3).to_bytes()), ("tiny1", tiny_int_model(1).to_bytes()),
             ("golden-tiny", T.GOLDEN_TINY.read_bytes())]
    for name, blob in seeds:    # compile the kernels, and check the seeds
        assert run_case(blob, 1e9, 1 << 40)[0] == "loaded, round-tripped", name
    setup = time.perf_counter() - t0

    rng = np.random.default_rng(args.seed)
    tracemalloc.start()
    counts: collections.Counter = collections.Counter()
    by_mutation: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    slowest, worst_ratio, biggest = (0.0, ""), (0.0, ""), (0, "")
    bugs, sample = [], []
    t0 = time.perf_counter()
    for k in range(args.cases):
        seed_name, base = seeds[int(rng.integers(len(seeds)))]
        mutation = T.MUTATIONS[int(rng.integers(len(T.MUTATIONS)))]
        desc, blob = T.mutate(base, rng, mutation)
        desc = f"{seed_name}: {desc}"
        kind, dt, peak, detail = run_case(blob, args.seconds, int(args.max_mb * 2**20))
        counts[kind] += 1
        by_mutation[mutation][kind.split(" (")[0]] += 1
        if dt > slowest[0]:
            slowest = (dt, desc)
        if peak > biggest[0]:
            biggest = (peak, desc)
        if peak / max(len(blob), 1) > worst_ratio[0]:
            worst_ratio = (peak / max(len(blob), 1), desc)
        if kind.startswith("bug"):
            bugs.append((desc, kind, detail))
            print(f"  bug: {kind}: {desc}: {detail.strip().splitlines()[-1] if detail.strip() else ''}",
                  file=sys.stderr, flush=True)
        if len(sample) < args.subprocess and k % max(1, args.cases // max(args.subprocess, 1)) == 0:
            sample.append((desc, blob))
        if (k + 1) % max(1, args.cases // 10) == 0:
            print(f"  {k + 1} cases, {time.perf_counter() - t0:.0f} s, {len(bugs)} bugs", file=sys.stderr, flush=True)
    in_process = time.perf_counter() - t0
    tracemalloc.stop()

    # the sample again, in child processes (25 a child): a crash is the case the child did not finish
    t0 = time.perf_counter()
    children = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(0, len(sample), 25):
            batch = sample[i:i + 25]
            paths = []
            for j, (_, blob) in enumerate(batch):
                paths.append(str(Path(tmp) / f"m{i + j}.pxm"))
                Path(paths[-1]).write_bytes(blob)
            r = subprocess.run([sys.executable, "-c", CHILD, *paths], capture_output=True, text=True,
                               timeout=600, env={**__import__("os").environ, "NUMBA_NUM_THREADS": "1"})
            done = [line for line in r.stdout.splitlines() if not line.startswith("start")]
            for line in done:
                children[line] += 1
            if r.returncode != 0:
                crashed = batch[len(done)][0] if len(done) < len(batch) else "?"
                children[f"bug: child exit {r.returncode}"] += 1
                bugs.append((crashed, f"child exit {r.returncode}", r.stderr[-2000:]))
    in_children = time.perf_counter() - t0

    print(f"## Model-file fuzz campaign: {args.cases} cases, seed {args.seed}\n")
    print(f"{machine()['cpu']}, one thread, Python {platform.python_version()}, "
          f"numpy {np.__version__}; setup {setup:.0f} s, in-process {in_process:.0f} s "
          f"({1000 * in_process / max(args.cases, 1):.1f} ms a case), children {in_children:.0f} s\n")
    print("| outcome | cases |\n|---|---|")
    for kind, n in counts.most_common():
        print(f"| {kind} | {n} |")
    print(f"\n| mutation | {' | '.join(sorted({k for c in by_mutation.values() for k in c}))} |")
    kinds = sorted({k for c in by_mutation.values() for k in c})
    print("|---" * (len(kinds) + 1) + "|")
    for m in sorted(by_mutation):
        print(f"| {m} | {' | '.join(str(by_mutation[m][k]) for k in kinds)} |")
    print(f"\nchild processes ({len(sample)} cases): " + ", ".join(f"{k} {n}" for k, n in children.most_common()))
    print(f"\nslowest case: {slowest[0] * 1000:.0f} ms ({slowest[1]})")
    print(f"largest tracemalloc peak: {biggest[0] / 2**20:.1f} MiB ({biggest[1]})")
    print(f"worst peak per input byte: {worst_ratio[0]:.1f} ({worst_ratio[1]})")
    print(f"\nbugs: {len(bugs)}")
    for desc, kind, detail in bugs[:20]:
        print(f"- {kind}: {desc}: {detail.strip().splitlines()[-1] if detail.strip() else ''}")
    if args.bugs and bugs:
        Path(args.bugs).write_text("\n\n".join(f"{k}: {d}\n{t}" for d, k, t in bugs))
    return 1 if bugs else 0


if __name__ == "__main__":
    sys.exit(main())
