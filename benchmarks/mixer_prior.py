"""Learn a mixer prior: the tables a mixer version's state starts from
(``pixzip/codec/mixer/prior.py``).

    python benchmarks/mixer_prior.py IMAGE_OR_LIST... -o prior.npz [--subsampled | --sets] [-m max] [-j 2]

Each image (a path, or a text file of paths, one a line) is coded by the
mixer version 4 over the model's counts in one state, ``-9``'s coding of
colour images before 0.12.0, from its equal starting weights.  The prior is
the mean, over the images, of each table's final values (the first mixer's
weight rows, the second mixer's, both APM stages'), rounded to the nearest
integer (half to even).  ``--subsampled``: each image also as its chroma
was once subsampled (``subsampled``: 4:2:0, as JPEG's and Photo CD's
colour, the luma kept), so that the prior knows such photos too.
``--sets``: a prior of two sets (version 6's), the mean over the images as
they are (set 0) and over their subsampled versions (set 1), each array
with a leading axis of 2.  Prints each image's bits per sub-pixel, and the
prior's digest (``prior.content_digest``), which a spec names with the file.

Learn it on photos-train images, never on Kodak or on the images it will be
measured on: version 5's was learned on 27 of them and their subsampled
versions (``--subsampled``), version 6's on 106 and theirs (``--sets``:
every RGB image of at most 1 Mpx in neither the tuning nor the check set;
``docs/mixer2.md``, "0.12.0" and "0.13.0").
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import click
import numpy as np


def _interpolated(c: np.ndarray) -> np.ndarray:
    """A plane averaged over 2x2 blocks and interpolated back linearly, the block means at even positions."""
    h, w = c.shape
    hh, ww = (h + 1) // 2, (w + 1) // 2
    means = np.pad(c, ((0, 2 * hh - h), (0, 2 * ww - w)), mode="edge").reshape(hh, 2, ww, 2).mean(axis=(1, 3))
    ys, xs = np.arange(2 * hh) / 2, np.arange(2 * ww) / 2
    y0, x0 = ys.astype(int), xs.astype(int)
    y1, x1 = np.minimum(y0 + 1, hh - 1), np.minimum(x0 + 1, ww - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None]
    rows = means[y0] * (1 - fy) + means[y1] * fy
    return (rows[:, x0] * (1 - fx) + rows[:, x1] * fx)[:h, :w]


def subsampled(img: np.ndarray) -> np.ndarray:
    """An RGB image whose chroma was once subsampled 2x2: Pillow's YCbCr, Cb and Cr through ``_interpolated``,
    the luma kept, back to RGB."""
    from PIL import Image
    y, cb, cr = (np.asarray(p, np.float64) for p in Image.fromarray(img, "RGB").convert("YCbCr").split())
    planes = np.stack([y, _interpolated(cb), _interpolated(cr)], -1)
    return np.asarray(Image.fromarray(np.clip(np.rint(planes), 0, 255).astype(np.uint8), "YCbCr").convert("RGB"))


def final_tables(path: str, model: str, once_subsampled: bool = False) -> tuple[dict, float]:
    """(the version 4 state's final tables, bits per sub-pixel) of one RGB image (``once_subsampled``:
    of its ``subsampled`` version)."""
    import numba

    from pixzip.codec.format.images import read_image
    from pixzip.codec.mixer import prior, with_network
    from pixzip.codec.mixer.v4 import coders
    from pixzip.codec.network import registry
    numba.set_num_threads(1)
    img = np.ascontiguousarray(read_image(path))
    if img.ndim != 3 or img.shape[2] != 3:
        raise click.ClickException(f"{path}: an RGB image is wanted")
    if once_subsampled:
        img = np.ascontiguousarray(subsampled(img))
    made = []

    class Encoder(coders.PartsEncoder):
        def __init__(self, *a):
            super().__init__(*a)
            made.append(self)
    with_network.encode_in_parts(img, registry.load_model(model), None, 0, "cpu", None, False, 1, encoder=Encoder)
    state = made[0].state
    return {f: np.array(getattr(state, f)[0]) for f in prior.FIELDS}, made[0].ideal_bits / img.size


def images(args) -> list[str]:
    out = []
    for a in args:
        if a.endswith(".txt"):
            out += [line.strip() for line in Path(a).read_text().splitlines() if line.strip()]
        else:
            out.append(a)
    return out


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option("-m", "--model", default="max", show_default=True)
@click.option("--subsampled", "with_subsampled", is_flag=True,
              help="Also each image with its chroma once subsampled 2x2 (4:2:0).")
@click.option("--sets", "two_sets", is_flag=True,
              help="Two sets: the images as they are (set 0) and once subsampled (set 1).")
@click.option("-j", "--jobs", default=min(2, os.cpu_count() or 1), show_default=True)
def main(paths, output, model, jobs, with_subsampled, two_sets):
    from pixzip.codec.mixer import prior
    from pixzip.app.bench import machine
    files = images(paths)
    runs = [(f, False) for f in files] + ([(f, True) for f in files] if with_subsampled or two_sets else [])
    sums: list = [None, None]       # by set (set 1: the subsampled versions, with --sets)
    with ProcessPoolExecutor(jobs) as pool:
        made = pool.map(final_tables, [f for f, _ in runs], [model] * len(runs), [s for _, s in runs])
        for (path, sub), (tables, bpsp) in zip(runs, made):
            click.echo(f"{Path(path).name + (' (4:2:0)' if sub else ''):48s} {bpsp:.4f}")
            s = int(sub and two_sets)
            if sums[s] is None:
                sums[s] = {f: np.zeros(a.shape) for f, a in tables.items()}
            for f, a in tables.items():
                sums[s][f] += a
    n = len(files) if two_sets else len(runs)
    means = [{f: np.round(a / n).astype(np.int32) for f, a in s.items()} for s in sums if s is not None]
    result = {f: np.stack([m[f] for m in means]) for f in prior.FIELDS} if two_sets else means[0]
    np.savez(output, **result)
    click.echo(f"{len(runs)} images, {machine()['cpu']}\nwrote {output}, digest {prior.content_digest(result)}")


if __name__ == "__main__":
    main()
