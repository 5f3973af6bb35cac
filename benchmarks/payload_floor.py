"""The fewest bits per sub-pixel each coder reaches, against the payload-length bound.

    python benchmarks/payload_floor.py [--max-side 1024] [--coders mixer,mixer+network,network] [--models tiny,fast]

A header that claims more sub-pixels than its payload's length can hold is
refused before the image is allocated (``api.decompress_with_metadata``), by
each coder's ``min_payload_bytes`` (``codec.coders``): coder 2 and 3 (the
mixer, alone or with the network) by the mixer's, coder 1 (the network
alone) by one of its model's.  The
bound must stay below what real data needs, or a legit file is refused: this
codes the images that cost least (flat: all 0, all 255, a constant colour;
gradients; 1x1; thin 1xN and Nx1), in L and RGB, with each coder (the network
alone and the mixer with it, with the tests' tiny random model and the
shipped 'fast' model; the mixer alone), and prints each payload's bits per
sub-pixel, the bound's, and their ratio (payload bytes over the bound's
bytes: it must stay over 1; the bound takes half of each coder's floor).
``compress`` stores raw or deflate when smaller; only the coded kinds'
floors matter, so each coding is forced.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from pixzip.codec import api
from pixzip.codec.coders import BY_METHOD
from pixzip.codec.format import container


def images(max_side: int, colours: int):
    """(name, image) of the cheapest kinds of content, up to max_side."""
    n = max_side
    yield "1x1 zero", np.zeros((1, 1, colours), np.uint8)
    for side in sorted({64, 256, n}):
        yield f"{side}x{side} all 0", np.zeros((side, side, colours), np.uint8)
        yield f"{side}x{side} all 255", np.full((side, side, colours), 255, np.uint8)
    yield f"{n}x{n} constant", np.full((n, n, colours), (37, 140, 201)[:colours], np.uint8)
    y, x = np.mgrid[0:n, 0:n]
    yield f"{n}x{n} gradient", np.repeat(((x + y) * 255 // (2 * n - 2))[..., None], colours, 2).astype(np.uint8)
    yield f"{n}x{n} ramp x mod 256", np.repeat((x % 256)[..., None], colours, 2).astype(np.uint8)
    yield f"1x{n * 4} all 0", np.zeros((1, n * 4, colours), np.uint8)
    yield f"{n * 4}x1 all 0", np.zeros((n * 4, 1, colours), np.uint8)


def bound_bytes(coding: str, net, n_subpixels: int) -> int:
    return BY_METHOD[coding].min_payload_bytes(n_subpixels, net)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-side", type=int, default=1024)
    ap.add_argument("--coders", default="mixer,mixer+network,network")
    ap.add_argument("--models", default="tiny,fast", help="tiny (the tests' random model), or shipped names")
    args = ap.parse_args(argv)
    codings = [c for c in args.coders.split(",") if c]
    nets = {}
    for name in args.models.split(","):
        if name == "tiny":
            from tests.conftest import tiny_int_model
            nets[name] = {3: tiny_int_model(3), 1: tiny_int_model(1)}
        else:
            net = api.load_model(name)
            nets[name] = {net.colors: net}
    print("| coder | model | mode | image | payload bytes | bits/sub-pixel | bound bits/sub-pixel | payload / bound |"
          " seconds |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    worst: dict = {}
    for coding in codings:
        for model_name, by_colours in (nets.items() if coding != "mixer" else [("-", {1: None, 3: None})]):
            for colours, net in sorted(by_colours.items()):
                for name, img in images(args.max_side, colours):
                    t = time.perf_counter()
                    data = api.compress(img, net, payload=coding)
                    seconds = time.perf_counter() - t
                    assert np.array_equal(api.decompress(data, net), img), (coding, name)
                    h, payload, _ = container.parse(data)
                    n = img.size
                    bound = max(1, bound_bytes(coding, net, n))
                    ratio = len(payload) / bound
                    key = (coding, model_name)
                    if key not in worst or ratio < worst[key][0]:
                        worst[key] = ratio, f"{'RGB' if colours == 3 else 'L'} {name}"
                    print(f"| {coding} | {model_name} | {'RGB' if colours == 3 else 'L'} | {name} | {len(payload)} | "
                          f"{8 * len(payload) / n:.5f} | {8 * max(0, bound_bytes(coding, net, n)) / n:.5f} | "
                          f"{ratio:.2f} | {seconds:.1f} |", flush=True)
    print("\nThe least payload / bound of each coder (over 1: every image above still decodes; the bound's "
          "bytes are taken at least 1):\n")
    for (coding, model_name), (ratio, name) in worst.items():
        print(f"- {coding} ({model_name}): {ratio:.2f} ({name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
