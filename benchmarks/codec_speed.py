"""Encode/decode time and coding overhead of the integer codec on real images.

    python benchmarks/codec_speed.py -m MODEL.pxm IMAGE... [--crop 64x192] [--threads 2] [--repeat 3]

For each image: encode and decode seconds (the median of --repeat runs, after
one warm-up that loads the compiled kernels), the peak memory that numpy
allocated in each, the file size, the integer model's cross-entropy, the
payload's overhead over it, the header size, and whether the round trip is
pixel-exact.  Medians over the images are printed at the end, with the machine.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
import tracemalloc

import click
import numba
import numpy as np
import torch

from pixzip.codec import api as codec
from pixzip.codec.network import registry
from pixzip.codec.format.images import read_image


@click.command()
@click.argument("images", nargs=-1, required=True)
@click.option("-m", "--model", required=True, help="Model name or .pxm file.")
@click.option("--crop", default=None, help="HxW: code only the top-left crop.")
@click.option("--threads", type=int, default=None)
@click.option("--repeat", type=int, default=1, help="Timed runs per image (the median is reported).")
def main(images, model, crop, threads, repeat):
    if threads:
        torch.set_num_threads(threads)
        numba.set_num_threads(threads)
    net = registry.load_model(model)
    codec.warm_up(net)
    rows = []
    print("| image | size | encode s | decode s | encode MB | decode MB | bits/sub-px | cross-entropy | overhead "
          "| header B | exact |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for path in images:
        img = read_image(path)
        if crop:
            h, w = (int(v) for v in crop.split("x"))
            img = np.ascontiguousarray(img[:h, :w])
        encs, decs = [], []
        for k in range(repeat):
            t = time.perf_counter()
            data = codec.compress(img, net)
            encs.append(time.perf_counter() - t)
            t = time.perf_counter()
            out = codec.decompress(data, net)
            decs.append(time.perf_counter() - t)
        enc, dec = statistics.median(encs), statistics.median(decs)
        mem = []
        for run in (lambda: codec.compress(img, net), lambda: codec.decompress(data, net)):
            tracemalloc.start()
            run()
            mem.append(tracemalloc.get_traced_memory()[1] / 2 ** 20)
            tracemalloc.stop()
        ideal = codec.ideal_bits(img, net)
        payload = codec.read_header(data).payload_length
        header = len(data) - payload
        over = 100 * (8 * payload / ideal - 1)
        exact = bool(np.array_equal(out, img))
        rows.append((enc, dec, over))
        print(f"| {path} | {img.shape[1]}x{img.shape[0]} | {enc:.2f} | {dec:.2f} | {mem[0]:.0f} | {mem[1]:.0f} "
              f"| {8 * len(data) / img.size:.4f} "
              f"| {ideal / img.size:.4f} | {over:+.4f}% | {header} | {exact} |")
    print(f"\nmedian encode {statistics.median(r[0] for r in rows):.2f} s, "
          f"decode {statistics.median(r[1] for r in rows):.2f} s, "
          f"overhead {statistics.median(r[2] for r in rows):+.4f}% "
          f"({numba.get_num_threads()} threads, {net.name}; {repeat} runs per image; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
