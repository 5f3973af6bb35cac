"""A mixer version's prior: the tables its adaptive state starts from.

Versions 1 to 4 start every weight row of the first mixer at ``w1_init``,
the second mixer's at equal weights and the APM stages at the identity.
Version 5 starts them from learned values (``benchmarks/mixer_prior.py``:
the mean of their final values over photos), so that rows an image visits
rarely begin where photos leave them.  The prior is part of the format: a
spec names its file (``MixerSpec2.prior``, shipped beside this module) and
the SHA-256 of its arrays (``prior_digest``), and a file that does not match
is refused by name, never used.

The file is a numpy ``.npz`` of four int32 arrays in the kernel's own
layout (``kernel.State``), for three colours:

- ``w1``: (W1_ROWS, N_PAD), the first mixer's weight rows;
- ``w2``: (3 * 8, N_SETS + 1), the second mixer's, by colour and bit;
- ``apm1``: (3 * 256, 33) and ``apm2``: (3 * 128, 33), the APM stages' rows.

An image of fewer colours takes the first rows of ``w2``, ``apm1`` and
``apm2`` (their rows are laid out colour by colour); ``w1``'s layout does
not depend on the image.  Reading it needs numpy only.

**Sets** (version 6, ``MixerSpec2.prior_sets`` > 1): each array has a
leading axis, one set of tables per kind of image, and the encoder names
the set an image starts from in its payload (``choose``: set 1 for smooth
colour, once subsampled 2x2 and interpolated back on the pixels' grid, as
Photo CD's, or smoothed by another filter, as JPEG's 4:2:0; else set 0).
The choice is the encoder's alone: a decoder reads it.
"""
from __future__ import annotations

import functools
import hashlib
import zipfile
from pathlib import Path

import numpy as np

from ...errors import FormatError

HERE = Path(__file__).resolve().parent
FIELDS = ("w1", "w2", "apm1", "apm2")


def content_digest(arrays: dict) -> str:
    """The SHA-256 of the prior's arrays: each one's name, dtype, shape and
    little-endian bytes, in ``FIELDS``' order (not the file's bytes, which
    carry a zip archive's dates)."""
    h = hashlib.sha256()
    for name in FIELDS:
        a = np.ascontiguousarray(arrays[name], dtype="<i4")
        h.update(f"{name}:{a.dtype.str}:{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@functools.lru_cache(maxsize=4)
def load(name: str, digest: str, shapes: tuple) -> dict:
    """The prior ``name`` (a file beside this module), checked against its
    spec's ``digest`` and the kernel's ``shapes`` (one per field of
    ``FIELDS``): read-only int32 arrays.  Raises FormatError naming the file
    where it is missing, unreadable or not the one the format names."""
    path = HERE / name
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {f: np.ascontiguousarray(z[f], dtype=np.int32) for f in FIELDS
                      if f in z.files and z[f].dtype == np.int32}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise FormatError(f"the mixer's prior {path} cannot be read ({e}); reinstall pixzip") from None
    if tuple(arrays) != FIELDS or tuple(a.shape for a in arrays.values()) != shapes \
            or content_digest(arrays) != digest:
        raise FormatError(f"the mixer's prior {path} is not the one this format names; reinstall pixzip")
    for a in arrays.values():
        a.flags.writeable = False
    return arrays


def sets(spec) -> int:
    """How many sets of tables a spec's prior holds (0: none, the equal start)."""
    return getattr(spec, "prior_sets", 1) if getattr(spec, "prior", "") else 0


def shapes(spec) -> tuple:
    """The shapes of a spec's prior's arrays, in ``FIELDS``' order, for its colours (three); with a
    leading axis of sets where it holds more than one (``sets``)."""
    one = ((spec.w1_rows, spec.n_pad), (spec.colours * 8, spec.n_sets + 1), (spec.colours * 256, 33),
           (spec.colours * 128, 33))
    n = sets(spec)
    return one if n <= 1 else tuple((n,) + s for s in one)


def for_spec(spec, which: int = 0) -> dict | None:
    """A spec's prior (``load``), its set ``which`` where it holds several, or None where it starts from
    equal weights (versions 1 to 4)."""
    n = sets(spec)
    if not n:
        return None
    tables = load(spec.prior, spec.prior_digest, shapes(spec))
    if n == 1:
        return tables
    if not 0 <= which < n:
        raise ValueError(f"the prior has sets 0 to {n - 1}, not {which}")
    return {f: a[which] for f, a in tables.items()}


SUBSAMPLED = 1              # the set of images whose colour is smooth: once subsampled 2x2, or smoothed
PHASE_RATIO = (13, 10)      # ``choose``: the 2x2 phase statistic above 1.3 (measured on photos-train images:
                            # photos 1.00-1.16, such images 1.45-3.4)
PHASE_UNSURE = ((116, 100), (145, 100))   # ``candidates``: the phase statistic's band with no evidence either
                            # way (photos-train: photos at most 1.157, once subsampled at least 1.453)
SMOOTH_RATIO = (1, 2)       # ``choose``: the colour's curvature-to-gradient energy, relative to the green's,
                            # below 1/2 (measured on photos-train images: untouched photos 0.51 and up; their
                            # colour smoothed by JPEG's 4:2:0 or a bicubic resampling 0.29-0.80)
_BLOCK = 256                # rows per block of the sums: their temporaries stay small for any photo


def _blocks(pixels: np.ndarray, block_rows: int):
    """(the planes B - G, R - G and G of rows y0 - 1 .. y1 (those that exist) as int16, the index of row y0
    in them, the rows y = 1 .. h - 2 in y0 .. y1 as indices into them, and their parity), block by block of
    ``block_rows`` rows."""
    h = pixels.shape[0]
    for y0 in range(0, h, block_rows):
        y1 = min(h, y0 + block_rows)
        block = pixels[max(0, y0 - 1):min(h, y1 + 1)].astype(np.int16)
        top = y0 - max(0, y0 - 1)          # the block's first own row
        g = block[..., 1]
        rows = np.arange(max(1, y0), min(h - 1, y1))                        # y = 1..h-2 in this block
        yield (block[..., 2] - g, block[..., 0] - g, g), top, y1 - y0, rows - (y0 - top), rows % 2


def phase_sums(pixels: np.ndarray, block_rows: int = _BLOCK) -> np.ndarray:
    """The 2x2 phase statistic's sums: for each colour difference (B - G, R - G) and each direction (along
    rows, along columns), the sums of |2 d[i] - d[i - 1] - d[i + 1]| over even i and over odd i: (4, 2)
    int64.  Colour once subsampled 2x2 and interpolated back is a linear interpolation at one phase of the
    grid and new at the other, so one phase's sum is about half the other's.  Computed in blocks of
    ``block_rows`` rows (the sums do not depend on it)."""
    sums = np.zeros((4, 2), np.int64)
    for planes, top, n, r, parity in _blocks(pixels, block_rows):
        for i, d in enumerate(planes[:2]):
            own = d[top:top + n]
            along = np.abs(2 * own[:, 1:-1] - own[:, :-2] - own[:, 2:])      # at column x = 1..w-2
            sums[2 * i, 0] += along[:, 1::2].sum(dtype=np.int64)     # even x
            sums[2 * i, 1] += along[:, 0::2].sum(dtype=np.int64)
            if len(r):
                down = np.abs(2 * d[r] - d[r - 1] - d[r + 1])
                sums[2 * i + 1, 0] += down[parity == 0].sum(dtype=np.int64)
                sums[2 * i + 1, 1] += down[parity == 1].sum(dtype=np.int64)
    return sums


def smoothness_sums(pixels: np.ndarray, block_rows: int = _BLOCK) -> np.ndarray:
    """The smoothness statistic's sums: for B - G, R - G and G, the sums over both directions of the
    squared curvature (2 p[i] - p[i - 1] - p[i + 1])^2 and of the squared gradient (p[i] - p[i - 1])^2:
    (3, 2) int64 (at most 1020^2 a term).  Computed in blocks of ``block_rows`` rows (the sums do not depend
    on it)."""
    sums = np.zeros((3, 2), np.int64)
    for planes, top, n, r, _ in _blocks(pixels, block_rows):
        for i, d in enumerate(planes):
            own = d[top:top + n]
            sums[i, 0] += _squares(2 * own[:, 1:-1] - own[:, :-2] - own[:, 2:])
            sums[i, 1] += _squares(own[:, 1:] - own[:, :-1])
            if len(r):
                sums[i, 0] += _squares(2 * d[r] - d[r - 1] - d[r + 1])
            # the gradient down to each own row from the row above it, where there is one
            first = 1 if top == 0 else 0
            if n > first:
                sums[i, 1] += _squares(d[top + first:top + n] - d[top + first - 1:top + n - 1])
    return sums


def _squares(a: np.ndarray) -> int:
    a = a.astype(np.int64)
    return int((a * a).sum())


def _samples(h: int, w: int) -> tuple[int, int]:
    """How many curvatures and gradients of one plane ``smoothness_sums`` adds, both directions."""
    return h * max(0, w - 2) + max(0, h - 2) * w, h * max(0, w - 1) + max(0, h - 1) * w


def phase_ratio(pixels: np.ndarray) -> float:
    """The 2x2 phase statistic of an RGB image: the mean, over the colour differences and directions, of
    the larger phase's sum over the smaller's (``phase_sums``; a sum of 0 counts as 1).  IEEE doubles in a
    fixed order: every machine computes the same."""
    s = phase_sums(pixels)
    return sum(float(max(a, b)) / max(1, min(a, b)) for a, b in s.tolist()) / len(s)


def _above(ratio: float, bound: tuple) -> bool:
    return ratio * bound[1] > bound[0]


def candidates(pixels: np.ndarray, spec) -> tuple:
    """The sets of ``spec``'s prior that an encoder should try for an RGB image, the best guess first:
    ``choose``'s set alone, or both where the phase statistic lies in ``PHASE_UNSURE`` (above 1.16 and not
    above 1.45), where the images ``choose`` was made on give no evidence either way.  An encoder that
    codes the image from each and keeps the smaller file (``Mixer6WithNetwork``) never does worse than
    ``choose``."""
    if sets(spec) != 2 or pixels.ndim != 3 or pixels.shape[2] != 3:
        return (choose(pixels, spec),)
    r = phase_ratio(pixels)
    first = _choice(pixels, r)
    unsure = _above(r, PHASE_UNSURE[0]) and not _above(r, PHASE_UNSURE[1])
    return (first, 1 - first) if unsure else (first,)


def choose(pixels: np.ndarray, spec) -> int:
    """The set of ``spec``'s prior that an RGB image (H, W, 3) starts from: ``SUBSAMPLED`` where its colour
    is smooth, else 0.  Smooth colour is told two ways, either enough:

    - once subsampled 2x2 and interpolated back on the pixels' grid (Photo CD's): the mean, over the colour
      differences and directions, of the larger phase's sum over the smaller's (``phase_sums``) is above
      1.3;
    - smoothed by another filter (JPEG's 4:2:0 among them): the colour differences' mean squared curvature
      over their mean squared gradient, each less what rounding R, G and B to integers adds to it (1 and
      1/3: the rounding errors' variance, 1/12 each, through the two differences), divided by the same
      ratio of the green, is below 1/2 (``smoothness_sums``).  Smoothing takes more from the curvature, the
      highest frequencies, than from the gradient; the green keeps its detail.

    Integers, then IEEE doubles in a fixed order, and an exact integer comparison: every machine chooses
    alike (the decoder reads the choice from the payload)."""
    if sets(spec) <= 1 or pixels.ndim != 3 or pixels.shape[2] != 3:
        return 0
    return _choice(pixels, phase_ratio(pixels))


def _choice(pixels: np.ndarray, phase: float) -> int:
    """``choose``'s set of an RGB image whose phase statistic is ``phase``."""
    if _above(phase, PHASE_RATIO):
        return SUBSAMPLED
    (bc, bg), (rc, rg), (gc, gg) = smoothness_sums(pixels).tolist()
    n_curv, n_grad = _samples(*pixels.shape[:2])
    curv = 3 * (bc + rc - 2 * n_curv)                   # 3 x (the colour's sums less the rounding's)
    grad = 3 * (bg + rg) - 2 * n_grad
    if grad <= 0 or not gc or not gg:     # colour no stronger than rounding, or flat green: nothing to tell
        return 0
    num, den = SMOOTH_RATIO               # curv / grad / (gc / gg) < num / den, exactly
    return SUBSAMPLED if curv * gg * den < num * grad * gc else 0
