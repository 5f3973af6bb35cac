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

from . import SPEC
from .components import BLEND_WEIGHT, sub_errors     # (the derived blend weighs as ``components.blend``)
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
def cost_class(costs, y0, y1, x, r, c):
    """The local coding cost's class, 0..7: the cost paid at W, N (twice
    each), NW and NE of the same colour, and (colour c >= 1) at the pixel's
    colour before (twice), those known in the strip; quantised on a log
    scale (a sub-pixel that cost about a bit, everywhere around: class 2).
    ``costs``: uint16 (ring rows, width, colours), in 1/16 bit: y0 is row
    y's ring row, y1 row y - 1's (``kernel.ring_rows``)."""
    width = costs.shape[1]
    tot = np.int64(0)
    n = np.int64(0)
    if x > 0:
        tot += 2 * np.int64(costs[y0, x - 1, c])
        n += 2
    if r > 0:
        tot += 2 * np.int64(costs[y1, x, c])
        n += 2
        if x > 0:
            tot += np.int64(costs[y1, x - 1, c])
            n += 1
        if x + 1 < width:
            tot += np.int64(costs[y1, x + 1, c])
            n += 1
    if c > 0:
        tot += 2 * np.int64(costs[y0, x, c - 1])
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


N_FORMULAS = 38     # the predictors the bank may take (``SPEC.bank`` names those it does)
BANK_IDS = np.array(SPEC.bank + (0,), np.int64)     # (a trailing 0: never empty)
N_BANK = SPEC.n_bank                  # the predictors the bank tracks
BANK_MAPS = SPEC.bank_maps            # the first of them with a map each
BANK_DERIVED = SPEC.bank_derived      # the derived predictions (the blend, the best), each with a map
BANK_N_MAPS = BANK_MAPS + BANK_DERIVED
BANK_ERRORS = max(1, N_BANK + BANK_DERIVED)      # the errors kept per sub-pixel (``kernel.State.berr``)
BP = 5                                  # the row of the bank's scratch holding its predictions
BANK_SCRATCH = (6, max(N_FORMULAS, N_BANK + BANK_DERIVED))


@numba.njit(inline="always")
def predict_all(t, p):
    """Every predictor's prediction on taps t into p, unclamped (|value| < 2^11):
    straight-line code, no branch on the predictor (an if-chain on i cost
    0.067 us per sub-pixel for 32, this 0.047).  (A second map per predictor
    keyed by the spread of the taps it reads: rgb +0.00%, smooth -0.12%,
    gray +0.05%, for 16 more maps: dropped.)"""
    w, n, nw, ne, ww, nn, nne, nnw, nww = t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8]
    p[0] = w
    p[1] = n
    p[2] = w + n - nw
    p[3] = w + ne - n
    p[4] = n + ne - nne
    p[5] = (w + ne + 1) >> 1
    p[6] = 2 * w - ww
    p[7] = 2 * n - nn
    p[8] = paeth(w, n, nw)
    p[9] = (2 * w + 2 * n + ne - nw + 2) >> 2
    p[10] = ne
    p[11] = nw + w - nww
    p[12] = n + nw - nnw
    p[13] = (w + n + 1) >> 1
    p[14] = w + ((ne - nw) >> 1)
    p[15] = (w + n + nw + ne + 2) >> 2
    p[16] = median(w, n, ne)
    p[17] = (3 * w - ww + 3 * n - nn + 2) >> 2
    p[18] = n + ((w - nw + ne - nne + 1) >> 1)
    p[19] = (w + ne + 2 * (n - nn) + 1) >> 1
    p[20] = median(w, n, nw)
    p[21] = gap(t)
    p[22] = w + ((n - nw) >> 1)
    p[23] = n + ((w - nw) >> 1)
    p[24] = (n + ne + 1) >> 1
    p[25] = (w + nw + 1) >> 1
    p[26] = (w + n + nw + ne + ww + nn + nne + nww + 4) >> 3
    p[27] = (w + n + 2 * ne + 2) >> 2
    p[28] = ne + n - nn
    p[29] = (3 * w + ne + 2) >> 2
    p[30] = (nw + ne + 1) >> 1
    p[31] = w + ne - nne + n - nn
    p[32] = (w + ww + 1) >> 1
    p[33] = (n + nn + 1) >> 1
    p[34] = (3 * n + w + 2) >> 2
    p[35] = (w + n - nw + n + ne - nne + 1) >> 1
    p[36] = median(w, ne, w + ne - n)
    p[37] = median(n, ne, n + ne - nne)


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
def bank(img, berr, at, ring, tp, out, ctx, first, qcost):
    """The bank of sub-pixel ``at`` = (y, x, r, c): predictors BANK_IDS (of
    ``predict_all``; a later colour carries the colour before's error over,
    P(c) + p1 - P(c - 1)) into bp = tp[BP], and after them the derived
    predictions: the bank blended by the inverse square of each one's recent
    error around, then the locally best one (the least error).  The first
    BANK_MAPS predictors and the derived ones each have a map: its
    prediction into out[first:...] and its context (0..63) into ctx[...],
    keyed by the predictor's own recent error around (its errors at W, N
    (twice each), NW and NE of the same colour, ``components.sub_errors``, on
    a log scale) and,
    for colour 0, the local coding cost's class ``qcost``, for a later colour
    the same predictor's error on the colour before, here (known).  ``tp``:
    scratch (``BANK_SCRATCH``); ``ring``: the ring rows (y0, y1) of ``berr``
    (``kernel.ring_rows``)."""
    y, x, r, c = at
    y0, y1 = ring
    t0, t1, p0, p1s, errs, bp = tp[0], tp[1], tp[2], tp[3], tp[4], tp[BP]
    taps(img, y, x, r, c, t0)
    predict_all(t0, p0)
    if c == 0:
        for i in range(N_BANK):
            bp[i] = clamp8(p0[BANK_IDS[i]])
    else:
        v1 = np.int64(img[y, x, c - 1])
        taps(img, y, x, r, c - 1, t1)
        predict_all(t1, p1s)
        for i in range(N_BANK):
            j = BANK_IDS[i]
            bp[i] = clamp8(p0[j] + v1 - p1s[j])
    sub_errors(berr, y0, y1, x, r, c, N_BANK + BANK_DERIVED, errs)
    if BANK_DERIVED > 0:
        num = np.int64(0)
        den = np.int64(0)
        best = np.int64(0)
        for i in range(N_BANK):     # num < 32 * 2^30 * 255: no overflow
            wt = BLEND_WEIGHT[errs[i]]
            num += wt * bp[i]
            den += wt
            if errs[i] < errs[best]:
                best = i
        bp[N_BANK] = (num + (den >> 1)) // den
        if BANK_DERIVED > 1:
            bp[N_BANK + 1] = bp[best]
    k = 0
    for i in range(N_BANK + BANK_DERIVED):
        if i < BANK_MAPS or i >= N_BANK:
            out[first + k] = bp[i]
            ctx[first + k] = log_class(errs[i] >> 1) * 8 + (
                qcost if c == 0 else log_class(np.int64(berr[y0, x, c - 1, i])))
            k += 1


@numba.njit(inline="always")
def learn_bank(berr, bp, y0, x, c, value):
    """Each bank predictor's and derived prediction's error here, at most 255."""
    for i in range(N_BANK + BANK_DERIVED):
        berr[y0, x, c, i] = min(255, abs(value - bp[i]))
