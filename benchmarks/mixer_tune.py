"""The context mixer's ideal code length on whole images: the measure every
mixer change is tuned and ablated by.

    python benchmarks/mixer_tune.py DIR_OR_IMAGE... [--version 3] [-m max [--parts 2]] [-j 2]
                                    [--json out.json] [--against before.json]

Each image is coded by one version's mixer (``--version``, 1 or 2) and its
ideal code length under the mixer's probabilities is kept (the payload is
within 0.02% of it):

(version 3 codes RGB images; a gray image is coded by version 2, as the
levels do)

- without ``-m``, the mixer alone, one state, raster order (``-1``'s coding);
- with ``-m MODEL``, the mixer over the network's counts in ``--parts`` column
  parts (``-9``'s coding with ``-m max``; 1: one state); a gray image over an RGB network by
  version 2 over its counts of colour 0, the image seen as (L, L, L) (coder
  7, ``-9``'s coding of gray), and by version 1 alone.

Prints bits per sub-pixel per image, the total of each folder given (its
bits over its sub-pixels), and of all; with ``--against`` (an earlier
``--json``), each one's change in %.  Tune on photos-train images, never
on Kodak.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import click

from pixzip.app.bench import machine

SUFFIXES = (".png", ".ppm", ".pgm", ".tif", ".tiff", ".bmp")


def _coders(version: int):
    if version == 1:
        from pixzip.codec.mixer import column_parts, one_state
        return one_state.Encoder, column_parts.Encoder
    if version == 2:
        from pixzip.codec.mixer.v2 import coders
    else:
        from pixzip.codec.mixer.v3 import coders
    return coders.OneStateEncoder, coders.PartsEncoder


def ideal_bits(path: str, version: int, model: str | None, parts: int = 2) -> tuple[float, int, float]:
    """(ideal bits, sub-pixels, seconds) of one image."""
    import numba
    import numpy as np

    from pixzip.codec.format.images import read_image
    numba.set_num_threads(1)
    img = np.ascontiguousarray(read_image(path))
    if img.ndim == 2:
        img = img[:, :, None]
    if version == 3 and img.shape[2] == 1:
        version = 2                 # version 3 codes colour: gray images keep version 2, as the levels do
    one, parts_enc = _coders(version)
    n_parts = parts
    t = time.perf_counter()
    net = None
    if model is not None:
        from pixzip.codec.network import registry
        net = registry.load_model(model)
    gray = net is not None and version == 2 and img.shape[2] == 1 and net.colors == 3
    if net is None or (img.shape[2] != net.colors and not gray):
        enc = one(img)
        enc.add_image()
        bits = enc.ideal_bits
    else:
        from pixzip.codec.mixer import with_network
        _, bits, _, _ = with_network.encode_in_parts(img, net, None, 0, "cpu", None, True, n_parts, encoder=parts_enc,
                                                     gray=gray)
    return bits, img.size, time.perf_counter() - t


def _images(paths) -> list[tuple[str, str]]:
    """(group, image) pairs: a folder's images are its group; a lone image is its own folder's."""
    out = []
    for p in map(Path, paths):
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in SUFFIXES) if p.is_dir() else [p]
        out += [(p.name if p.is_dir() else p.parent.name, str(f)) for f in files]
    return out


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--version", type=click.Choice(["1", "2", "3"]), default="3", show_default=True, help="The mixer version.")
@click.option("-m", "--model", default=None, help="Mix with this network (-9's is max); none: the mixer alone.")
@click.option("--parts", type=int, default=2, show_default=True,
              help="With -m: the column parts (each its own state; 1: one state).")
@click.option("-j", "--jobs", type=int, default=1, show_default=True, help="Images coded at once.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the results here.")
@click.option("--against", type=click.Path(exists=True, dir_okay=False), help="An earlier --json: print the change.")
def main(paths, version, model, parts, jobs, json_out, against):
    images = _images(paths)
    before = json.loads(Path(against).read_text())["images"] if against else {}
    print(f"machine: {machine()['cpu']}; mixer version {version}; "
          f"{f'network {model}, {parts} part(s)' if model else 'the mixer alone'}; {len(images)} images", flush=True)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(ideal_bits, f, int(version), model, parts) for _, f in images]
        results = {}
        for (group, f), fut in zip(images, futures):
            bits, n, sec = fut.result()
            results[f] = {"group": group, "bits": bits, "subpixels": n, "seconds": sec}
            old = before.get(f)
            change = f" {100 * (bits / old['bits'] - 1):+7.3f}%" if old else ""
            print(f"{Path(f).name[:44]:44s} {bits / n:7.4f}{change} {sec:6.1f} s", flush=True)

    def total(rows, old):
        b, n = sum(r["bits"] for r in rows), sum(r["subpixels"] for r in rows)
        line = f"{b / n:7.4f}"
        olds = [old[k] for k in old if k in results and results[k] in rows]
        if old and len(olds) == len(rows):
            line += f" {100 * (b / sum(o['bits'] for o in olds) - 1):+7.3f}%"
        return line
    groups = dict.fromkeys(g for g, _ in images)
    for g in groups:
        print(f"{'total ' + g:44s} {total([r for r in results.values() if r['group'] == g], before)}")
    print(f"{'total':44s} {total(list(results.values()), before)}   ({time.perf_counter() - t0:.0f} s)")
    if json_out:
        Path(json_out).write_text(json.dumps({"version": version, "model": model, "parts": parts, "images": results}, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
