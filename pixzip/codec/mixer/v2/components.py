"""The mixer's components, each a few compiled steps over its part of the
adaptive state (``kernel.State``), inlined into the coding loop:

- the hashed table: each context's bucket (a nibble's 15 tree nodes and a
  check), asked for from memory before it is looked at; its inputs; its
  counters' updates;
- the residual maps: an adaptive histogram of (value - prediction) mod 256
  per map, colour and error context, read as P(bit | the bits known so
  far) through the sums of its 16-bin blocks and the running sums inside
  each block;
- the blend: sub-predictions weighted by the inverse square of their recent
  errors around the pixel;
- the mixer: weight sets chosen by small contexts, and a second mixer over
  their outputs;
- the APM stages: a probability refined in a context by interpolation.

The numbers are the package's spec's (version 2's ``spec.SPEC_2``, or
version 3's in ``v3``): numba freezes these module constants into the
compiled code.  (``benchmarks/context_worth.py``
builds a kernel of its own that can mute inputs; this one has no such
check: a mask that numba should have compiled away cost about 5%.)
"""
from __future__ import annotations

import numba
import numpy as np

from . import SPEC     # the package's spec: version 2's, or a later version's (``v3`` to ``v5``)
from .vector_ops import add_from16, block_prefix16, dot_row, map_stretches, prefetch, update_row
from .contexts import mix

N_HASHED = SPEC.n_hashed
N_MAPS = SPEC.n_maps
N_BLEND = SPEC.n_blend
N_INPUTS = SPEC.n_inputs
N_PAD = SPEC.n_pad
N_SETS = SPEC.n_sets
MAP_CONTEXTS = SPEC.map_contexts
MAX_COLOURS = SPEC.colours
H_INC = SPEC.h_inc
H_LIMIT = SPEC.h_limit
COUNT_MAX = SPEC.count_max
MIX_LR = SPEC.mix_lr
MIX2_LR = SPEC.mix2_lr
APM_RATE = SPEC.apm_rate
W1_INIT = SPEC.w1_init
BIAS = SPEC.bias
ROUND = SPEC.rounding
SET_ROWS = SPEC.set_rows
SET_OFFSETS = SPEC.set_offsets
W1_ROWS = SPEC.w1_rows
STRIPES = SPEC.stripes
MIX_SKIP = SPEC.mix_skip
NET_INPUT = N_HASHED + N_MAPS          # the network's input; the bias follows it
# the rows of the maps' working values ``mv`` (6, N_MAPS): each map's prediction, error context, where its
# histogram starts in the flat histograms, and the prefix sums at the open range's ends and middle
PRED, CTX, ROW_AT, LO, HI, UPPER = range(6)
# the rows of the mixers' working values ``ms`` (3, N_SETS): each weight set's row, its output's stretch and probability
SET_ROW, DOT, PROB = range(3)


# ---------------------------------------------------------------- the hashed table

@numba.njit(inline="always")
def fetch_buckets(table, hashes, nib, mask, hn):
    """The hashes of one nibble's buckets (``hn``), each of its two candidate
    buckets asked for from memory at once: the lookups that follow find them
    there (the table is far larger than the caches)."""
    for i in range(N_HASHED):
        h = mix(hashes[i], nib + 1)
        hn[i] = h
        b0 = h & mask
        prefetch(table, b0 * 16)
        prefetch(table, (b0 ^ 1) * 16)


@numba.njit(inline="always")
def find_buckets(table, hn, mask, base):
    """Each context's bucket: the one of its two candidates whose check
    matches, else the one whose first node has seen less, emptied."""
    for i in range(N_HASHED):
        h = hn[i]
        b0 = h & mask
        b1 = b0 ^ 1
        chk = h | 1
        if table[b0 * 16] == chk:
            b = b0
        elif table[b1 * 16] == chk:
            b = b1
        else:
            b = b0 if (table[b0 * 16 + 1] & 0xFFFF) <= (table[b1 * 16 + 1] & 0xFFFF) else b1
            table[b * 16] = chk
            for j in range(1, 16):
                table[b * 16 + j] = 32768 << 16
        base[i] = b * 16


@numba.njit(inline="always")
def hashed_inputs(table, base, node, stretch, x_in):
    """Each context's counter at this tree node, stretched: a context seen
    once says half as much; never seen, nothing."""
    for i in range(N_HASHED):
        s = np.int64(table[base[i] + node])
        cnt = s & 0xFFFF
        x_in[i] = 0 if cnt == 0 else (stretch[s >> 20] >> 1 if cnt == 1 else stretch[s >> 20])


@numba.njit(inline="always")
def hashed_update(table, base, node, recip, bit):
    for i in range(N_HASHED):
        sl = base[i] + node
        s = np.int64(table[sl])
        p = s >> 16
        cnt = s & 0xFFFF
        p += (((bit << 16) - p) * recip[cnt]) >> 16
        table[sl] = (p << 16) | min(COUNT_MAX, cnt + 1)


# ---------------------------------------------------------------- the residual maps

@numba.njit(inline="always")
def prefix(hist, row, blocks, m, x):
    """The sum of bins 0..x-1 (0 <= x < 512) of map m's circular 256-bin
    histogram at hist[row:row + 256], counting past 256 on into a second
    turn: its blocks' running sums blocks[m] (17 of them) and one entry of
    the histogram's row, which holds each bin's sum of the bins before it
    in its 16-bin block (``learn_maps``): one load, where the bins took a
    masked sum of 16 (until 0.13.4), and the same sums."""
    turn = x >> 8
    x &= 255
    return blocks[m, 16] * turn + blocks[m, x >> 4] + np.int64(hist[row + x])


@numba.njit(inline="always")
def open_maps(hist, hblock, mv, blocks, c, colours):
    """Each map's histogram in its context: its blocks' running sums (one
    vector scan, ``vector_ops.block_prefix16``: 24% less time in this step
    than a loop of 16 additions), and the
    prefix sums at the ends of the open range (all of it), in residual order
    unwrapped: the range starts at (-prediction) mod 256."""
    for m in range(N_MAPS):
        row = (m * colours + c) * MAP_CONTEXTS + mv[CTX, m]
        mv[ROW_AT, m] = row * 256
        acc = block_prefix16(hblock, row * 16, blocks, m)
        mv[LO, m] = prefix(hist, mv[ROW_AT, m], blocks, m, (-mv[PRED, m]) & 255)
        mv[HI, m] = mv[LO, m] + acc


def make_map_reciprocals() -> np.ndarray:
    """round(2^28 / t) for t in 1..4095 (0 at 0): a map's probability without a division."""
    t = np.arange(4096, dtype=np.int64)
    out = np.zeros(4096, np.int64)
    out[1:] = ((1 << 29) // t[1:] + 1) >> 1
    return out


MAP_RECIP = make_map_reciprocals()
# a map's bins and totals are below 2^16 (uint16): a bin reaches at most H_LIMIT + H_INC before it is halved
assert H_LIMIT + H_INC < 1 << 16
# a map's total t (at most H_LIMIT < 2^16) is read at 12 bits: t >> MAP_SHIFT[t >> 12] < 4096
MAP_SHIFT = np.array([0] + [int(v).bit_length() for v in range(1, 17)], np.int64)
assert SPEC.h_limit <= 1 << 16


@numba.njit(inline="always")
def p12_map(hi, total):
    """(hi + 16) / (total + 32) as a 12-bit probability (1..4095), for
    0 <= hi <= total <= 2^16, without a division: both shifted to below
    2^12, then a reciprocal (hi * MAP_RECIP < 2^40).  The prior (half a
    value's count, H_INC = 32, on each side) keeps a histogram that has
    seen one value from saying 0 or 1: with 46 maps, a 32x32 noise image
    cost 3.1% (one colour) and 4.4% (three) above 8 bits per sub-pixel
    without it, 0.2% and 0.3% with it."""
    hi += 16
    total += 32                 # at most 2^16 + 32: MAP_SHIFT[total >> 12] is defined
    s = MAP_SHIFT[total >> 12]
    return min(4095, max(1, ((hi >> s) * MAP_RECIP[total >> s] + (1 << 15)) >> 16))


@numba.njit(inline="always")
def map_inputs(hist, mv, blocks, lo, half, stretch, x_in):
    """Each map's P(the upper half of the open range | the open range): the
    prefix sums first, then every map's ``p12_map`` and stretch at once, as
    one vector (``vector_ops.map_stretches``: 28-37 ns against 60-71 for the
    24 maps' loop, AMD EPYC; the loop fused with the sums' took 28% more
    time in this step)."""
    for m in range(N_MAPS):
        mv[UPPER, m] = prefix(hist, mv[ROW_AT, m], blocks, m, ((-mv[PRED, m]) & 255) + lo + half)
    map_stretches(mv, HI, UPPER, LO, MAP_RECIP, stretch, x_in, N_HASHED)


@numba.njit(inline="always")
def narrow_maps(mv, bit):
    """The open range is now the half the bit chose."""
    for m in range(N_MAPS):
        if bit:
            mv[LO, m] = mv[UPPER, m]
        else:
            mv[HI, m] = mv[UPPER, m]


@numba.njit(inline="always")
def learn_maps(hist, hblock, mv, blocks, value):
    """Each map's histogram counts the value's residual; past H_LIMIT, every
    bin is halved.  A histogram's row does not hold its bins: entry j holds
    the sum of the bins before j in j's 16-bin block (entry 16b is 0), and
    hblock the blocks' sums, so that ``prefix`` reads one entry.  A bin's
    count adds to the entries after it in its block (``vector_ops.add_from16``),
    and halving recovers each bin as the difference of two entries.  Every
    entry is at most its block's sum, below 2^16 (uint16).  Both arrays are
    flat, each map's row where ``open_maps`` found it (ROW_AT: the
    histogram's; a sixteenth of it, the blocks')."""
    for m in range(N_MAPS):
        at = mv[ROW_AT, m]
        bat = at >> 4
        v = (value - mv[PRED, m]) & 255
        add_from16(hist, at + (v & 240), (v & 15) + 1, H_INC)
        hblock[bat + (v >> 4)] += H_INC
        if blocks[m, 16] + H_INC > H_LIMIT:      # the total before this value, and this value
            for b in range(16):
                start = at + 16 * b
                before = np.int64(0)             # the block's sum of the bins before j: as it was, and halved
                halved = np.int64(0)
                for j in range(16):
                    after = np.int64(hist[start + j + 1]) if j < 15 else np.int64(hblock[bat + b])
                    hist[start + j] = halved
                    halved += (after - before) >> 1
                    before = after
                hblock[bat + b] = halved


# ---------------------------------------------------------------- the blend

@numba.njit(inline="always")
def sub_error(perr, y0, y1, x, r, c, i):
    """Sub-predictor i's recent error around (y, x): 2W + 2N + NW + NE of its
    errors there (those known in the strip).  ``perr`` is a ring of rows
    (``kernel.ring_rows``): y0 is row y's, y1 row y - 1's (when r > 0)."""
    err = np.int64(0)
    if x > 0:
        err += 2 * np.int64(perr[y0, x - 1, c, i])
    if r > 0:
        err += 2 * np.int64(perr[y1, x, c, i])
        if x > 0:
            err += np.int64(perr[y1, x - 1, c, i])
        if x + 1 < perr.shape[1]:
            err += np.int64(perr[y1, x + 1, c, i])
    return err


@numba.njit(inline="always")
def sub_errors(perr, y0, y1, x, r, c, n, out):
    """``sub_error`` of predictors 0..n-1 into out[:n]; where all four
    neighbours are known, in one loop without a branch, which the compiler
    vectorises (with ``contexts.log_class``'s table, the bank's step took half
    its time before: waterloo_sail, AMD EPYC)."""
    if x > 0 and r > 0 and x + 1 < perr.shape[1]:
        pw, pn, pnw, pne = perr[y0, x - 1, c], perr[y1, x, c], perr[y1, x - 1, c], perr[y1, x + 1, c]
        for i in range(n):
            out[i] = 2 * np.int64(pw[i]) + 2 * np.int64(pn[i]) + np.int64(pnw[i]) + np.int64(pne[i])
    else:
        for i in range(n):
            out[i] = sub_error(perr, y0, y1, x, r, c, i)


# a blend's weights: round down 2^32 / (e^2 + 4) for an error sum e (2W + 2N + NW + NE of errors at most 255)
MAX_ERR_SUM = 6 * 255
BLEND_WEIGHT = np.array([(1 << 32) // (e * e + 4) for e in range(MAX_ERR_SUM + 1)], np.int64)


@numba.njit(inline="always")
def blend(perr, sub, y0, y1, x, r, c):
    """The sub-predictions ``sub`` blended, each weighted by the inverse
    square of its errors at W, N, NW and NE (those known in the strip); the
    smallest of those error sums, and the locally best sub-predictor: the
    one with it (the first on a tie; 0 where none is known)."""
    num = np.int64(0)
    den = np.int64(0)
    least = np.int64(1 << 20)
    best = np.int64(0)
    for i in range(N_BLEND):
        err = sub_error(perr, y0, y1, x, r, c, i)
        if err < least:
            least = err
            best = i
        wt = BLEND_WEIGHT[err]
        num += wt * sub[i]
        den += wt
    return (num + (den >> 1)) // den, least, best


@numba.njit(inline="always")
def learn_blend(perr, sub, y0, x, c, value, blended):
    """Each sub-predictor's error here (at most 255), and the blend's residual mod 256."""
    for i in range(N_BLEND):
        perr[y0, x, c, i] = min(255, abs(value - sub[i]))
    perr[y0, x, c, N_BLEND] = (value - blended) & 255


# ---------------------------------------------------------------- the mixers

@numba.njit(inline="always")
def mix_sets(w1, w2, x_in, ms, ck, squash):
    """The first mixer's weight sets (rows ms[SET_ROW]) over the inputs,
    each one's output kept (ms[DOT], ms[PROB]), and the second mixer over
    them: its stretch."""
    dot2 = np.int64(0)
    for s in range(N_SETS):
        acc = dot_row(w1, ms[SET_ROW, s], x_in)
        d = min(2047, max(-2047, acc >> 16))
        ms[DOT, s] = d
        ms[PROB, s] = squash[d + 2047]
        dot2 += w2[ck, s] * d
    dot2 += w2[ck, N_SETS] * BIAS
    return min(2047, max(-2047, dot2 >> 16))


@numba.njit(inline="always")
def learn_sets(w1, w2, x_in, ms, ck, pm, bit):
    """The weight sets learn at MIX_LR, except where their error is at most
    MIX_SKIP (12 bits); the second mixer at MIX2_LR."""
    t = bit << 12
    for s in range(N_SETS):
        e = t - ms[PROB, s]
        if abs(e) > MIX_SKIP:
            update_row(w1, ms[SET_ROW, s], x_in, np.int32(e * MIX_LR))   # |err| < 2^16
    err = (t - pm) * MIX2_LR
    for s in range(N_SETS):
        w2[ck, s] += (ms[DOT, s] * err + ROUND) >> 16
    w2[ck, N_SETS] += (BIAS * err + ROUND) >> 16


# ---------------------------------------------------------------- APM and the rest

@numba.njit(inline="always")
def p12(hi, total):
    if total <= 0:
        return 2048
    return min(4095, max(1, (hi * 4096 + (total >> 1)) // total))


@numba.njit(inline="always")
def apm(t, row, d):
    """The APM's probability at stretch d in row ``row``, and the point to update."""
    s = d + 2048
    lo = s >> 7
    wt = s & 127
    return (t[row, lo] * (128 - wt) + t[row, lo + 1] * wt) >> 7, lo + (wt >> 6)


@numba.njit(inline="always")
def learn_apm(t, row, j, bit):
    t[row, j] += ((bit << 16) - t[row, j]) >> APM_RATE


@numba.njit(inline="always")
def add_cost(st, ccost):
    st.cost[0] += ccost.sum()
    for c in range(len(ccost)):         # (element by element: a slice's += makes a temporary array)
        st.cost[1 + c] += ccost[c]
