"""Bits per sub-pixel of PNG (Pillow, optimize=True) on a dataset, the classical
baseline next to a model's bits/dim.

    python benchmarks/png_baseline.py ../shared/data/mnist/test.npz

Every PNG is decoded again and checked pixel-exact.  Sizes are whole files
(headers included), which is what a user would store.
"""
from __future__ import annotations

import io
import statistics
import sys

import click
import numpy as np
from PIL import Image

from pixzip.learn.datasets import load_images


@click.command()
@click.argument("data", nargs=-1, required=True)
def main(data):
    images = load_images(list(data))
    bits, per_image = 0, []
    for im in images.images:
        arr = im[..., 0] if im.shape[2] == 1 else im
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG", optimize=True)
        back = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
        if not np.array_equal(back, arr):
            sys.exit("PNG round trip was not lossless")
        bits += 8 * buf.tell()
        per_image.append(8 * buf.tell() / im.size)
    print(f"images: {len(images)}")
    print(f"PNG bits/sub-pixel (total): {bits / images.n_subpixels:.4f}")
    print(f"PNG bits/sub-pixel (median image): {statistics.median(per_image):.4f}")


if __name__ == "__main__":
    main()
