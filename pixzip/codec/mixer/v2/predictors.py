"""Version 2's bank of predictors, each read through residual maps of its
own, and the local coding cost: what the mixer has paid, in bits, at the
sub-pixels around the one it codes.

- ``taps``: the causal neighbourhood of one colour (W, N, NW, NE, WW, NN,
  NNE, NNW, NWW), with ``contexts.neighbours``' fallbacks where a pixel is
  outside the image or the strip.  Every tap is known in both stream
  orders: raster, and the network's wavefront (whose reach into the row
  above is at least one column).
- ``predict``: predictor i of the bank on one colour's taps.  Colour 0 reads
  them as they are; a later colour carries the colour before's error over
  (its value minus the same predictor on its taps): P(c) + p1 - P(c - 1),
  which is P applied to the colour differences, the shape that smooth,
  once-subsampled chroma makes predictable.
- The local coding cost: each sub-pixel's ideal code length under the
  mixer's probabilities, in 1/16 bit, an integer from ``COST`` (a table of
  -log2 built from integers only), kept per sub-pixel; ``cost_class``
  summarises it at the neighbours as a small class (0..7) for whoever wants
  a "smooth or noisy here" selector.

Everything is integer arithmetic on int64 values below 2^20.
"""
from __future__ import annotations

import numba
import numpy as np

from .components import sub_error
from .contexts import clamp8, log_class, median, neighbours

# ---------------------------------------------------------------- the coding cost


def ilog2_fixed(n: int, frac: int = 16) -> int:
    """floor(log2(n) * 2^frac) for n >= 1, by integer squaring of the mantissa (no float, no libm)."""
    k = n.bit_length() - 1
    res = k << frac
    one = 62
    m = (n << one) >> k             # n / 2^k in [1, 2), 62 fraction bits
    for i in range(frac):
        m = (m * m) >> one
        if m >= (2 << one):
            m >>= 1
            res |= 1 << (frac - 1 - i)
    return res


def make_cost() -> np.ndarray:
    """COST[p] = -log2(p / 4096) in 1/16 bit, rounded, for a 12-bit probability p (1..4095; 0 as 1)."""
    out = np.zeros(4096, np.int32)
    for p in range(4096):
        out[p] = ((12 << 16) - ilog2_fixed(max(1, p)) + (1 << 11)) >> 12
    return out


COST = make_cost()          # at most 192 (12 bits): a sub-pixel's 8 bits cost at most 1536 < 2^16


@numba.njit(inline="always")
def bit_cost(p16, bit):
    """The cost of coding ``bit`` at 16-bit probability p16 (of a 1), in 1/16 bit."""
    return COST[(p16 if bit else 65536 - p16) >> 4]


@numba.njit(inline="always")
def cost_class(costs, y, x, r, c):
    """The local coding cost's class, 0..7: the cost paid at W, N (twice
    each), NW and NE of the same colour, and (colour c >= 1) at the pixel's
    colour before (twice), those known in the strip; quantised on a log
    scale (a sub-pixel that cost about a bit, everywhere around: class 2).
    ``costs``: uint16 (height, width, colours), in 1/16 bit."""
    width = costs.shape[1]
    tot = np.int64(0)
    n = np.int64(0)
    if x > 0:
        tot += 2 * np.int64(costs[y, x - 1, c])
        n += 2
    if r > 0:
        tot += 2 * np.int64(costs[y - 1, x, c])
        n += 2
        if x > 0:
            tot += np.int64(costs[y - 1, x - 1, c])
            n += 1
        if x + 1 < width:
            tot += np.int64(costs[y - 1, x + 1, c])
            n += 1
    if c > 0:
        tot += 2 * np.int64(costs[y, x, c - 1])
        n += 2
    if n == 0:
        return np.int64(4)
    # tot / n in 1/16 bit: classes at 1/2, 1, 2, 3, 4, 5, 6 bits (a multiply, no division: n <= 8)
    q = np.int64(0)
    for t in (8, 16, 32, 48, 64, 80, 96):
        q += tot >= t * n
    return q


# ---------------------------------------------------------------- the bank

N_TAPS = 9
W_, N_, NW_, NE_, WW_, NN_, NNE_, NNW_, NWW_ = range(N_TAPS)


@numba.njit(inline="always")
def taps(img, y, x, r, ch, t):
    """W, N, NW, NE, WW, NN, NNE, NNW, NWW of colour ``ch`` at (y, x), r rows
    into the strip, into t; a missing one falls back on a nearer known one
    (128 at the strip's first pixel)."""
    width = img.shape[1]
    w, n, nw, ne, ww, nn = neighbours(img, y, x, r, ch)
    t[W_] = w
    t[N_] = n
    t[NW_] = nw
    t[NE_] = ne
    t[WW_] = ww
    t[NN_] = nn
    t[NNE_] = np.int64(img[y - 2, x + 1, ch]) if r > 1 and x + 1 < width else ne
    t[NNW_] = np.int64(img[y - 2, x - 1, ch]) if r > 1 and x > 0 else nw
    t[NWW_] = np.int64(img[y - 1, x - 2, ch]) if r > 0 and x > 1 else nw


@numba.njit(inline="always")
def paeth(w, n, nw):
    g = w + n - nw
    dw, dn, dnw = abs(g - w), abs(g - n), abs(g - nw)
    if dw <= dn and dw <= dnw:
        return w
    if dn <= dnw:
        return n
    return nw


@numba.njit(inline="always")
def predict(i, t):
    """Predictor i of the bank on taps t, unclamped (|value| < 2^11), and the spread of the taps it reads."""
    w, n, nw, ne, ww, nn, nne, nnw, nww = t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8]
    if i == 0:
        return w, abs(w - nw) + abs(w - ww)
    if i == 1:
        return n, abs(n - nw) + abs(n - nn)
    if i == 2:
        return w + n - nw, max(w, n, nw) - min(w, n, nw)
    if i == 3:
        return w + ne - n, max(w, n, ne) - min(w, n, ne)
    if i == 4:
        return n + ne - nne, max(n, ne, nne) - min(n, ne, nne)
    if i == 5:
        return (w + ne + 1) >> 1, abs(w - ne)
    if i == 6:
        return 2 * w - ww, abs(w - ww)
    if i == 7:
        return 2 * n - nn, abs(n - nn)
    if i == 8:
        return paeth(w, n, nw), max(w, n, nw) - min(w, n, nw)
    if i == 9:
        return (2 * w + 2 * n + ne - nw + 2) >> 2, max(w, n, nw, ne) - min(w, n, nw, ne)
    if i == 10:
        return ne, abs(ne - n) + abs(ne - nne)
    if i == 11:
        return nw + w - nww, max(w, nw, nww) - min(w, nw, nww)
    if i == 12:
        return n + nw - nnw, max(n, nw, nnw) - min(n, nw, nnw)
    if i == 13:
        return (w + n + 1) >> 1, abs(w - n)
    if i == 14:
        return w + ((ne - nw) >> 1), max(w, ne, nw) - min(w, ne, nw)
    if i == 15:
        return (w + n + nw + ne + 2) >> 2, max(w, n, nw, ne) - min(w, n, nw, ne)
    if i == 16:
        return median(w, n, ne), max(w, n, ne) - min(w, n, ne)
    if i == 17:
        return (3 * w - ww + 3 * n - nn + 2) >> 2, abs(w - ww) + abs(n - nn)
    if i == 18:
        return n + ((w - nw + ne - nne + 1) >> 1), abs(w - nw) + abs(ne - nne)
    if i == 19:
        return (w + ne + 2 * (n - nn) + 1) >> 1, max(w, ne, n, nn) - min(w, ne, n, nn)
    if i == 20:
        return median(w, n, nw), max(w, n, nw) - min(w, n, nw)
    if i == 21:
        return gap(t), abs(w - ww) + abs(n - nw) + abs(n - ne) + abs(w - nw) + abs(n - nn) + abs(ne - nne)
    if i == 22:
        return w + ((n - nw) >> 1), abs(n - nw)
    if i == 23:
        return n + ((w - nw) >> 1), abs(w - nw)
    if i == 24:
        return (n + ne + 1) >> 1, abs(n - ne)
    if i == 25:
        return (w + nw + 1) >> 1, abs(w - nw)
    if i == 26:
        return (w + n + nw + ne + ww + nn + nne + nww + 4) >> 3, max(w, n, ne, ww, nn) - min(w, n, ne, ww, nn)
    if i == 27:
        return (w + n + 2 * ne + 2) >> 2, max(w, n, ne) - min(w, n, ne)
    if i == 28:
        return ne + n - nn, abs(n - nn) + abs(ne - n)
    if i == 29:
        return (3 * w + ne + 2) >> 2, abs(w - ne)
    if i == 30:
        return (nw + ne + 1) >> 1, abs(nw - ne)
    if i == 31:
        return w + ne - nne + n - nn, abs(ne - nne) + abs(n - nn)
    if i == 32:
        return (w + ww + 1) >> 1, abs(w - ww)
    if i == 33:
        return (n + nn + 1) >> 1, abs(n - nn)
    if i == 34:
        return (3 * n + w + 2) >> 2, abs(w - n)
    if i == 35:
        return (w + n - nw + n + ne - nne + 1) >> 1, max(w, n, nw, ne, nne) - min(w, n, nw, ne, nne)
    if i == 36:
        return median(w, ne, w + ne - n), max(w, n, ne) - min(w, n, ne)
    return median(n, ne, n + ne - nne), max(n, ne, nne) - min(n, ne, nne)


@numba.njit(inline="always")
def gap(t):
    """CALIC's gradient-adjusted prediction on taps t (integers: its thresholds 80, 32, 8)."""
    w, n, nw, ne, ww, nn, nne = t[0], t[1], t[2], t[3], t[4], t[5], t[6]
    dh = abs(w - ww) + abs(n - nw) + abs(n - ne)
    dv = abs(w - nw) + abs(n - nn) + abs(ne - nne)
    if dv - dh > 80:
        return w
    if dh - dv > 80:
        return n
    p = 4 * (w + n) + 2 * (ne - nw)          # 8 times (W + N) / 2 + (NE - NW) / 4
    if dv - dh > 32:
        p = (p + 8 * w) >> 1
    elif dv - dh > 8:
        p = (3 * p + 8 * w) >> 2
    elif dh - dv > 32:
        p = (p + 8 * n) >> 1
    elif dh - dv > 8:
        p = (3 * p + 8 * n) >> 2
    return (p + 4) >> 3


@numba.njit(inline="always")
def spread_class(s):
    """The spread of a predictor's taps, 0..7 (log scale)."""
    return log_class(s >> 1)


@numba.njit(inline="always")
def error_class(berr, y, x, r, c, i):
    """Bank predictor i's recent errors at W, N (twice each), NW and NE of
    the same colour, those known in the strip, on a log scale (0..7)."""
    return log_class(sub_error(berr, y, x, r, c, i) >> 1)


@numba.njit(inline="always")
def bank(img, berr, at, nb, keys, t0, t1, out, ctx, first, qcost):
    """The bank's ``nb`` predictions of sub-pixel ``at`` = (y, x, r, c) into
    out[first:first + nb] and their maps' contexts (0..63) into ctx[...];
    with ``keys`` = 2, each prediction again in out[first + nb + i], keyed
    otherwise.  The first map of predictor i is keyed by its own recent
    error around (``error_class``) and, for colour 0, by the local coding
    cost's class ``qcost``, for a later colour by the same predictor's error
    on the colour before, here (known); the second by the spread of the
    taps it reads (of colour c, or of the colour differences c - (c - 1))
    and the local coding cost.  ``t0``, ``t1``: scratch for the taps of
    colour c and c - 1."""
    y, x, r, c = at
    taps(img, y, x, r, c, t0)
    if c == 0:
        for i in range(nb):
            p, s = predict(i, t0)
            out[first + i] = clamp8(p)
            ctx[first + i] = error_class(berr, y, x, r, c, i) * 8 + qcost
            if keys > 1:
                out[first + nb + i] = out[first + i]
                ctx[first + nb + i] = spread_class(s) * 8 + qcost
    else:
        p1 = np.int64(img[y, x, c - 1])
        taps(img, y, x, r, c - 1, t1)
        for i in range(nb):
            p, s = predict(i, t0)
            q, s1 = predict(i, t1)
            out[first + i] = clamp8(p + p1 - q)
            ctx[first + i] = error_class(berr, y, x, r, c, i) * 8 + log_class(np.int64(berr[y, x, c - 1, i]))
        if keys > 1:
            for j in range(N_TAPS):
                t1[j] = t0[j] - t1[j]
            for i in range(nb):
                _, s = predict(i, t1)
                out[first + nb + i] = out[first + i]
                ctx[first + nb + i] = spread_class(s) * 8 + qcost


@numba.njit(inline="always")
def learn_bank(berr, preds, first, nb, y, x, c, value):
    """Each bank predictor's error here, at most 255."""
    for i in range(nb):
        berr[y, x, c, i] = min(255, abs(value - preds[first + i]))
