"""Encode/decode time and coding overhead of the integer codec on real images.

    python benchmarks/codec_speed.py -m MODEL.pxm IMAGE... [--crop 64x192] [--threads 2]

For each image: encode and decode seconds, the file size, the integer model's
cross-entropy, the payload's overhead over it, the header size, and whether
the round trip is pixel-exact.  Medians are printed at the end.
"""
from __future__ import annotations

import statistics
import time

import click
import numpy as np
import torch

from pixzip import codec, registry
from pixzip.images import read_image


@click.command()
@click.argument("images", nargs=-1, required=True)
@click.option("-m", "--model", required=True, help="Model name or .pxm file.")
@click.option("--crop", default=None, help="HxW: code only the top-left crop.")
@click.option("--threads", type=int, default=None)
def main(images, model, crop, threads):
    if threads:
        torch.set_num_threads(threads)
    net = registry.load(model)
    rows = []
    print("| image | size | encode s | decode s | bits/sub-px | cross-entropy | overhead | header B | exact |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in images:
        img = read_image(path)
        if crop:
            h, w = (int(v) for v in crop.split("x"))
            img = np.ascontiguousarray(img[:h, :w])
        t = time.perf_counter()
        data = codec.compress(img, net)
        enc = time.perf_counter() - t
        t = time.perf_counter()
        out = codec.decompress(data, net)
        dec = time.perf_counter() - t
        ideal = net.cross_entropy_bits(img)
        payload = codec.read_header(data).payload_length
        header = len(data) - payload
        over = 100 * (8 * payload / ideal - 1)
        exact = bool(np.array_equal(out, img))
        rows.append((enc, dec, over))
        print(f"| {path} | {img.shape[1]}x{img.shape[0]} | {enc:.2f} | {dec:.2f} | {8 * len(data) / img.size:.4f} "
              f"| {ideal / img.size:.4f} | {over:+.4f}% | {header} | {exact} |")
    print(f"\nmedian encode {statistics.median(r[0] for r in rows):.2f} s, "
          f"decode {statistics.median(r[1] for r in rows):.2f} s, "
          f"overhead {statistics.median(r[2] for r in rows):+.4f}% "
          f"({torch.get_num_threads()} threads, {net.name})")


if __name__ == "__main__":
    main()
