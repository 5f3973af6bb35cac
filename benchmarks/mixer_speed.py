"""The context mixer's own speed: microseconds per sub-pixel on one core.

    python benchmarks/mixer_speed.py IMAGE... [-m max] [--crop 512x384] [--repeat 3]

The network's counts are made first (not timed) and kept in memory; then the
mixer codes the image in the network's stream order with them, in one column
part, on one thread, as ``-9`` does in each of its parts.  Only the compiled
coding calls are timed.  The mixer alone (no network input, raster order) is
timed too.  Prints one line per image and the medians, with the machine.
"""
from __future__ import annotations

import statistics
import time

import click
import numba
import numpy as np

from pixzip.app.bench import machine
from pixzip.codec import api as codec
from pixzip.codec.network import registry
from pixzip.codec.mixer import one_state as cm_codec
from pixzip.codec.mixer import column_parts as parts
from pixzip.codec.format.images import read_image
from pixzip.codec.network.enc_stream import symbols_and_counts


def time_mixed(img: np.ndarray, chunks) -> tuple[float, int]:
    enc = parts.Encoder(img, 1)
    seconds = 0.0
    for where, counts in chunks:
        t = time.perf_counter()
        enc.add_part(0, *where, counts)
        seconds += time.perf_counter() - t
    return seconds, len(enc.finish())


def time_mixer(img: np.ndarray) -> tuple[float, int]:
    enc = cm_codec.Encoder(img)
    t = time.perf_counter()
    enc.add_image()
    seconds = time.perf_counter() - t
    return seconds, len(enc.finish())


@click.command()
@click.argument("images", nargs=-1, required=True)
@click.option("-m", "--model", default="max", show_default=True, help="Model name or .pxm file (the network input).")
@click.option("--crop", default="512x384", show_default=True, help="HxW: code the top-left crop (0 for all).")
@click.option("--repeat", type=int, default=3, show_default=True, help="Timed runs per image (the median is kept).")
def main(images, model, crop, repeat):
    numba.set_num_threads(1)
    net = registry.load_model(model)
    codec.warm_up(net, "mixer+network")
    codec.warm_up(net, "mixer")
    print(f"machine: {machine()['cpu']}, one thread; model {net.name}")
    print(f"{'image':40s} {'sub-pixels':>10s} {'mixed us/sp':>12s} {'mixer us/sp':>12s}")
    rows = []
    for path in images:
        img = read_image(path)
        if crop != "0":
            h, w = (int(v) for v in crop.lower().split("x"))
            img = np.ascontiguousarray(img[:h, :w])
        chunks = [(tuple(a.copy() for a in where), counts.copy())
                  for _, counts, _, where in symbols_and_counts(net, img, positions=True)]
        n = img.size
        mixed = statistics.median(time_mixed(img, chunks)[0] for _ in range(repeat)) / n * 1e6
        mixer = statistics.median(time_mixer(img)[0] for _ in range(repeat)) / n * 1e6
        rows.append((mixed, mixer))
        print(f"{str(path)[-40:]:40s} {n:10d} {mixed:12.2f} {mixer:12.2f}", flush=True)
    print(f"{'median':40s} {'':10s} {statistics.median(r[0] for r in rows):12.2f} "
          f"{statistics.median(r[1] for r in rows):12.2f}")


if __name__ == "__main__":
    main()
