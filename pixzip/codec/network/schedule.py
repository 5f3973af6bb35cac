"""The decode schedule, shared by encoder and decoder (DESIGN §4).

An image may be split into independent strips of S rows; they run the same
schedule in lockstep, and a step's symbols are ordered colour, strip, row.

Pixel (i, j) is ready once row i-1 is decoded up to column j+R and row i up
to j-1.  The wavefront decodes row i at column j = t - i*lag in step t, with
lag = R + 1.  Inside a step, colour c of every active row is decoded before
colour c+1 (three sub-steps), rows in ascending order.  The stream holds the
symbols in exactly that order.
"""
from __future__ import annotations

import numpy as np


def strip_layout(height: int, strip_height: int) -> tuple[int, int]:
    """(number of strips, rows per strip); strip_height 0 means one strip.
    Strips are coded independently and decoded in lockstep; the last one may
    be shorter."""
    rows = min(strip_height, height) if strip_height > 0 else height
    return -(-height // rows), rows


def n_steps(height: int, width: int, lag: int) -> int:
    return (height - 1) * lag + width


def plan(height: int, width: int, lag: int, n_strips: int, last_height: int, start: int, stop: int,
         ahead: int = 0, chunk: int = 1024):
    """Every step t in [start, stop), in order: yields (t, b, i, j, rows), the
    (strip, row-in-strip) pairs of the rows i whose columns j..j+ahead meet
    the image, where j = t - i*lag (ahead = 0: the rows decoded in step t),
    strip-major (stream order), leaving out rows past the end of the shorter
    last strip; rows = b*height + i, the image rows.  The
    pairs of ``chunk`` steps are made at once (arrays, no loop), and each
    step gets views of them: the decode and encode loops do no arithmetic of
    their own per step."""
    for t0 in range(start, stop, chunk):
        t = np.arange(t0, min(stop, t0 + chunk))
        lo = np.maximum(0, -(-(t - width + 1) // lag))
        hi = np.minimum(height - 1, (t + ahead) // lag)        # floor: below 0 (no row) while t + ahead < 0
        per = np.empty((len(t), n_strips), np.int64)             # pairs of each step and strip
        per[:] = np.maximum(0, hi - lo + 1)[:, None]
        per[:, -1] = np.maximum(0, np.minimum(hi, last_height - 1) - lo + 1)
        n = per.ravel()
        first = np.cumsum(n) - n
        i = np.repeat(np.repeat(lo, n_strips) - first, n) + np.arange(n.sum())
        b = np.repeat(np.tile(np.arange(n_strips), len(t)), n)
        end = np.cumsum(per.sum(axis=1))
        j = np.repeat(t, end - np.concatenate([[0], end[:-1]])) - i * lag
        rows = b * height + i
        a = 0
        for k in range(len(t)):
            z = int(end[k])
            yield int(t[k]), b[a:z], i[a:z], j[a:z], rows[a:z]
            a = z
