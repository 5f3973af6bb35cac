"""The expansion bound: bits per sub-pixel of whole .pxz files on images a
network codes badly (noise, flat, tiny), next to the network's own payload,
the raw pixels and PNG.

    python benchmarks/expansion.py [-m MODEL] [--photo IMAGE]
"""
from __future__ import annotations

import io

import click
import numpy as np
from PIL import Image

from pixzip.app.demo import SAMPLE
from pixzip.codec import api as codec
from pixzip.codec.format.images import read_image


def png_bytes(img: np.ndarray) -> int:
    buf = io.BytesIO()
    Image.fromarray(img[..., 0] if img.shape[2] == 1 else img).save(buf, format="PNG", optimize=True)
    return len(buf.getvalue())


def images(photo) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:48]
    crop = read_image(photo)[100:116, 100:116]
    return {
        "noise 24x24 RGB": rng.integers(0, 256, (24, 24, 3), dtype=np.uint8),
        "constant 64x64 RGB": np.full((64, 64, 3), (40, 90, 200), np.uint8),
        "flat 48x32 RGB (two colours)": np.stack([yy * 0 + 90, xx * 0 + 20, (yy > 15) * 255], -1).astype(np.uint8),
        "synthetic 48x32 RGB (stripes)": np.stack([(xx % 8) * 32, (yy % 4) * 64, xx * 0 + 3], -1).astype(np.uint8),
        "1x1 RGB": rng.integers(0, 256, (1, 1, 3), dtype=np.uint8),
        "1x64 RGB": rng.integers(0, 256, (1, 64, 3), dtype=np.uint8),
        "16x16 photo crop": np.ascontiguousarray(crop),
    }


@click.command()
@click.option("-m", "--model", default="max", show_default=True)
@click.option("--photo", default=str(SAMPLE), show_default=True, help="Image to take the 16x16 crop from.")
def main(model, photo) -> None:
    net = codec.load_model(model)
    print(f"model: {net.name}\n")
    print("| image | pixzip file | payload | network only | raw + header | PNG (optimize) | file / PNG |")
    print("|---|---|---|---|---|---|---|")
    for name, img in images(photo).items():
        n = img.size
        data = codec.compress(img, net)
        h = codec.read_header(data)
        net_only = codec.compress(img, net, payload="network")
        raw = codec.compress(img, net, payload="raw")
        assert np.array_equal(codec.decompress(data, net), img)
        kind = {0: "network", 1: "raw", 2: "deflate"}[h.kind]
        png = png_bytes(img)
        print(f"| {name} | {8 * len(data) / n:.3f} ({len(data)} B) | {kind} | {8 * len(net_only) / n:.3f} "
              f"| {8 * len(raw) / n:.3f} | {8 * png / n:.3f} ({png} B) | {len(data) / png:.2f} |")
    print("\nbits per sub-pixel of whole files (headers and checksums included)")


if __name__ == "__main__":
    main()
