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


def rows_at(t: int, offset: int, height: int, width: int, lag: int) -> np.ndarray:
    """Rows i (ascending) whose column t - i*lag + offset lies inside the image."""
    lo = max(0, -(-(t + offset - width + 1) // lag))
    hi = min(height - 1, (t + offset) // lag) if t + offset >= 0 else -1
    return np.arange(lo, hi + 1)


def active_rows(t: int, height: int, width: int, lag: int) -> np.ndarray:
    """Rows decoded in step t (ascending); their column is t - row*lag."""
    return rows_at(t, 0, height, width, lag)


def step_pairs(local: np.ndarray, n_strips: int, last_height: int) -> tuple[np.ndarray, np.ndarray]:
    """(strip, row-in-strip) of the given strip rows in every strip, strip-major
    (stream order); rows past the end of the shorter last strip are left out."""
    if n_strips == 1:
        return np.zeros(len(local), np.int64), local
    b = np.repeat(np.arange(n_strips), len(local))
    i = np.tile(local, n_strips)
    keep = (b < n_strips - 1) | (i < last_height)
    return b[keep], i[keep]
