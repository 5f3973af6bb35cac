"""Peak memory of training data: does it stay flat as the image count grows?

Cuts ``--count`` tiles (PNG, ``--tile`` pixels square) from the photos of
``--photos`` into ``--work``, writes them also as WebDataset shards, then
measures, each in a fresh process, the peak RSS (``ru_maxrss`` of
RUSAGE_SELF, and of RUSAGE_CHILDREN: the largest loader worker) of opening
the source and drawing ``--steps`` batches through ``crops.loader`` with
``--workers`` workers, for the first 100 tiles and for all of them, from:
the lazy folder source (``open_source`` of the files), the shard source
(``open_source`` of the shards), and the in-memory set of before
(``load_images``).  Runs alternate, each ``--repeats`` times; medians.

    python benchmarks/data_memory.py --photos /work/shared/data/photos-train
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

KINDS = ("lazy folder", "shards", "in memory (load_images)")


def make_tiles(photos: Path, work: Path, count: int, tile: int) -> list[Path]:
    import numpy as np
    from PIL import Image
    folder = work / "tiles"
    files = [folder / f"{i:06d}.png" for i in range(count)]
    if all(f.exists() for f in files):
        return files
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for photo in sorted(photos.glob("*.png")):
        a = np.asarray(Image.open(photo).convert("RGB"))
        for y in range(0, a.shape[0] - tile + 1, tile):
            for x in range(0, a.shape[1] - tile + 1, tile):
                if n < count:
                    Image.fromarray(a[y:y + tile, x:x + tile]).save(files[n])
                    n += 1
    if n < count:
        sys.exit(f"only {n} tiles of {tile} pixels in {photos}: give a smaller --tile")
    return files


def make_shards(files: list[Path], work: Path, n: int) -> str:
    from pixzip.learn.shards import write_shards
    prefix = work / f"shards{n}" / "train"
    if not (prefix.parent / "train-000000.tar").exists():
        write_shards([str(f) for f in files[:n]], prefix, max_count=100, overwrite=True)
    return str(prefix.parent)


def measure(kind: str, paths: list[str], steps: int, batch: int, crop: int, workers: int) -> dict:
    """In this process: open the source, draw the batches; peak RSS in MiB."""
    from pixzip.learn import crops, datasets
    t = time.perf_counter()
    source = datasets.load_images(paths) if kind == KINDS[2] else datasets.open_source(paths)
    plan = crops.CropPlan(source.sizes, crop, seed=0, flip=True)
    total = 0
    for x, _ in crops.loader(source, plan, batch, 0, steps, workers=workers):
        total += int(x.shape[0])
    kib = 1024 if sys.platform != "darwin" else 1024 * 1024
    return {"self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kib,
            "child_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kib,
            "seconds": time.perf_counter() - t, "crops": total, "images": len(source)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=Path, default=Path("/work/shared/data/photos-train"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/pixzip-data-memory"))
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--tile", type=int, default=192)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--measure", nargs=2, metavar=("KIND", "PATHS_JSON"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.measure:
        print(json.dumps(measure(a.measure[0], json.loads(a.measure[1]), a.steps, a.batch, a.crop, a.workers)))
        return
    files = make_tiles(a.photos, a.work, a.count, a.tile)
    sets = {}
    for n in (100, a.count):
        sets[n] = {KINDS[0]: [str(f) for f in files[:n]], KINDS[1]: [make_shards(files, a.work, n)],
                   KINDS[2]: [str(f) for f in files[:n]]}
    runs: dict = {}
    for _ in range(a.repeats):         # alternate the configurations, so that noise falls on all alike
        for kind in KINDS:
            for n in sets:
                cmd = [sys.executable, __file__, "--measure", kind, json.dumps(sets[n][kind]), "--steps",
                       str(a.steps), "--batch", str(a.batch), "--crop", str(a.crop), "--workers", str(a.workers)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                runs.setdefault((kind, n), []).append(json.loads(out.strip().splitlines()[-1]))
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?") \
        if os.path.exists("/proc/cpuinfo") else "?"
    print(f"peak RSS (MiB, median of {a.repeats}), {a.steps} steps of {a.batch} crops of {a.crop}, "
          f"{a.workers} workers, {a.tile}x{a.tile} RGB tiles; {cpu}, {os.cpu_count()} CPUs")
    print(f"| source | images | main process | largest worker | seconds |")
    print("|---|---:|---:|---:|---:|")
    for kind in KINDS:
        for n in sets:
            r = runs[(kind, n)]
            med = {k: statistics.median(x[k] for x in r) for k in ("self_mib", "child_mib", "seconds")}
            print(f"| {kind} | {n} | {med['self_mib']:.0f} | {med['child_mib']:.0f} | {med['seconds']:.1f} |")


if __name__ == "__main__":
    main()
