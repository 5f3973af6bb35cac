"""The context mixer's integer tables: squash, stretch and the counters'
reciprocals.  They are built from integer literals with integer arithmetic
only, so every machine has the same tables (no libm anywhere on the path).

The logistic domain ("stretch") is ln(p / (1 - p)) in units of 1/256 nat,
clamped to +-2047; probabilities are 12-bit (1..4095 of 4096) where they meet
the mixer, and 16-bit in the counters, the APM stages and the coder.
"""
from __future__ import annotations

import numpy as np

ST_MAX = 2047            # stretch domain: -ST_MAX..ST_MAX
P_BITS = 12              # the mixer's probabilities
P_ONE = 1 << P_BITS
# 4096 / (1 + e^(-x)) at x = -8, -7.5, ..., 8 nats, rounded: squash() interpolates these
SQUASH_POINTS = (1, 2, 4, 6, 10, 17, 27, 45, 74, 120, 194, 311, 488, 747, 1102, 1546, 2048,
                 2550, 2994, 3349, 3608, 3785, 3902, 3976, 4022, 4051, 4069, 4079, 4086, 4090, 4092, 4094, 4095)
COUNT_LIMIT = 1023       # a counter's count saturates here (its slowest rate is 1/(limit + 1.5))


def squash_int(d: int) -> int:
    """The 12-bit probability of a stretch value d (linear interpolation of
    SQUASH_POINTS, 128 units apart), in integers."""
    d = max(-ST_MAX, min(ST_MAX, d))
    w = d & 127
    i = (d >> 7) + 16
    return (SQUASH_POINTS[i] * (128 - w) + SQUASH_POINTS[i + 1] * w + 64) >> 7


def make_squash() -> np.ndarray:
    """squash(d) for d in -ST_MAX..ST_MAX, at index d + ST_MAX."""
    return np.array([squash_int(d) for d in range(-ST_MAX, ST_MAX + 1)], np.int32)


def make_stretch(squash: np.ndarray) -> np.ndarray:
    """stretch(p) for p in 0..4095: the smallest d whose squash reaches p
    (squash's inverse; ST_MAX past the top)."""
    out = np.full(P_ONE, ST_MAX, np.int32)
    p = 0
    for d in range(-ST_MAX, ST_MAX + 1):
        v = int(squash[d + ST_MAX])
        while p <= v:
            out[p] = d
            p += 1
    return out


def make_reciprocals() -> np.ndarray:
    """A counter's rate at count n: 65536 / (n + 1.5), floored."""
    n = np.arange(COUNT_LIMIT + 1, dtype=np.int64)
    return ((2 << 16) // (2 * n + 3)).astype(np.int32)


SQUASH = make_squash()
STRETCH = make_stretch(SQUASH)
RECIPROCALS = make_reciprocals()
