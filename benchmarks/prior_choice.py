"""Which of the mixer 6's prior sets an image should start from, and which the encoder chooses.

    python benchmarks/prior_choice.py IMAGE_OR_LIST... [--variants] [-j 2] [--json out.json]

For each RGB image (a path, or a text file of paths, one a line), and with
``--variants`` also its colour smoothed two ways (a JPEG round trip at
quality 90 with 4:2:0 colour, as Pillow's libjpeg decodes it; its Cb and Cr
halved by box averaging and enlarged again bicubically, the luma kept),
codes ``-9``'s file twice, its payload naming set 0 and then set 1, and
prints: the 2x2 phase statistic, the smoothness statistic (``prior.choose``
tells smooth colour by them), the set ``prior.choose`` names, each set's
bits per sub-pixel (the real file's bytes), and by how much the choice is
larger than the better set.  Every file is decoded back and compared.  The
totals compare three ways of choosing: 0.13.0's (the phase statistic
alone), ``prior.choose``'s and the better set of each image.

Learn or check the choice on photos-train images, never on Kodak or on the
images it will be measured on (``docs/mixer2.md``, "0.13.1").
"""
from __future__ import annotations

import io
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import click
import numpy as np

from mixer_prior import images

KINDS = ("as it is", "jpeg 4:2:0", "bicubic chroma")


def variant(img: np.ndarray, kind: str) -> np.ndarray:
    """The RGB image as it is, through a JPEG round trip (quality 90, 4:2:0), or with its chroma halved by
    box averaging and enlarged bicubically (the luma kept)."""
    from PIL import Image
    im = Image.fromarray(img, "RGB")
    if kind == "jpeg 4:2:0":
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=90, subsampling=2)
        buf.seek(0)
        return np.asarray(Image.open(buf).convert("RGB"))
    if kind == "bicubic chroma":
        y, cb, cr = im.convert("YCbCr").split()
        w, h = im.size
        half = ((w + 1) // 2, (h + 1) // 2)
        cb, cr = (c.resize(half, Image.BOX).resize((w, h), Image.BICUBIC) for c in (cb, cr))
        return np.asarray(Image.merge("YCbCr", (y, cb, cr)).convert("RGB"))
    return img


def statistics(img: np.ndarray) -> tuple[float, float]:
    """(the 2x2 phase statistic, the smoothness statistic) that ``prior.choose`` compares with its bounds."""
    from pixzip.codec.mixer import prior
    phase = prior.phase_ratio(img)
    (bc, bg), (rc, rg), (gc, gg) = prior.smoothness_sums(img).tolist()
    n_curv, n_grad = prior._samples(*img.shape[:2])
    grad = 3 * (bg + rg) - 2 * n_grad
    smooth = 3 * (bc + rc - 2 * n_curv) * gg / (grad * gc) if grad > 0 and gc else float("nan")
    return phase, smooth


def measure(path: str, kind: str) -> dict:
    """The image's statistics, the chosen set and each set's bits per sub-pixel in a real ``-9`` file."""
    import numba

    import pixzip
    from pixzip.codec.format.images import read_image
    from pixzip.codec.mixer import prior
    from pixzip.codec.mixer.spec import SPEC_6
    numba.set_num_threads(1)
    img = np.ascontiguousarray(read_image(path))
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise click.ClickException(f"{path}: an 8-bit RGB image is wanted")
    img = np.ascontiguousarray(variant(img, kind))
    phase, smooth = statistics(img)
    out = {"image": Path(path).name, "kind": kind, "phase": phase, "smooth": smooth,
           "chosen": prior.choose(img, SPEC_6), "phase_only": int(prior._above(phase, prior.PHASE_RATIO))}
    choose = prior.choose
    try:
        for s in (0, 1):
            prior.choose = lambda pixels, spec, s=s: s
            data = pixzip.compress(img, level=9)
            if not np.array_equal(pixzip.decompress(data), img):
                raise click.ClickException(f"{path} ({kind}): set {s}'s file does not decode to the image")
            out[f"set{s}"] = 8 * len(data) / img.size
    finally:
        prior.choose = choose
    return out


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--variants", is_flag=True, help="Also each image's colour smoothed two ways (JPEG 4:2:0, bicubic).")
@click.option("-j", "--jobs", default=min(2, os.cpu_count() or 1), show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the rows here.")
def main(paths, variants, jobs, json_path):
    from pixzip.app.bench import machine
    runs = [(f, k) for f in images(paths) for k in (KINDS if variants else KINDS[:1])]
    rows = []
    click.echo(f"{'image':40s} {'kind':15s} {'phase':>6s} {'smooth':>7s} set {'set 0':>7s} {'set 1':>7s} {'cost':>7s}")
    with ProcessPoolExecutor(jobs) as pool:
        for r in pool.map(measure, [f for f, _ in runs], [k for _, k in runs]):
            rows.append(r)
            chosen, best = r[f"set{r['chosen']}"], min(r["set0"], r["set1"])
            click.echo(f"{r['image']:40s} {r['kind']:15s} {r['phase']:6.3f} {r['smooth']:7.3f} {r['chosen']:3d} "
                       f"{r['set0']:7.4f} {r['set1']:7.4f} {100 * (chosen / best - 1):+6.2f}%")
    click.echo(f"\n{'kind':15s} {'n':>3s} {'phase only':>10s} {'choose':>9s} {'better set':>10s}")
    for kind in KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        if mine:
            old = np.mean([r[f"set{r['phase_only']}"] for r in mine])
            new = np.mean([r[f"set{r['chosen']}"] for r in mine])
            best = np.mean([min(r["set0"], r["set1"]) for r in mine])
            click.echo(f"{kind:15s} {len(mine):3d} {old:10.4f} {new:9.4f} {best:10.4f}   "
                       f"(choose {100 * (new / old - 1):+.3f}%, better set {100 * (best / old - 1):+.3f}%)")
    click.echo(f"bits per sub-pixel of -9's files (means over images), {machine()['cpu']}")
    if json_path:
        Path(json_path).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
