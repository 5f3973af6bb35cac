"""The readable definition of versions 2 and 3 of the mixer's format
(coders 5, 6, 7; 8, 9): a slow, independent, plain-Python model of the
context mixer (the compiled one is ``v2/kernel.code``), which the tests
check the kernel against, byte for byte.  Imported as ``v2.definition`` it
follows ``SPEC_2``; as ``v3.definition``, ``SPEC_3``: version 2 and the 2x2
phase of colours 1 and 2 (``phase``: their least-squares systems, their maps
from PHASE_MAP on, and weight set 4).

Its numbers are the spec's (``spec.SPEC_2`` or ``SPEC_3``, the same object the kernel
reads), and the least-squares predictors' tables of inputs, forgetting
shifts, ridges and solve intervals (plain data of ``ols``); its rules are
written here apart from the kernel: no numba, nothing imported from
``kernel``, ``tables``, ``bitcoder`` or the compiled modules' functions,
Python integers throughout (numpy only to read the image, the counts and
version 5's prior, ``mixer/prior.py``),
and the adaptive state kept in small objects keyed by what each entry means
(a pixel, a predictor, a context) rather than in the kernel's flat arrays.
Tables (the coding cost, the maps' reciprocals) are rebuilt here from their
definitions.  Where the kernel stores into int32 arrays, the stores wrap the
same way; where it claims an int64 value never overflows, this module
asserts it.

What version 2 keeps of version 1 is imported from version 1's definition
(``mixer/definition.py``), rule for rule: the squash and stretch tables, the
context hash, the neighbours and their fallbacks, the network's summary,
the hashed table, the blend of six sub-predictions, the first 8 maps'
predictions and contexts, the APM stages and the range coder.  (The numbers
those rules read from ``SPEC_1`` are asserted equal in ``SPEC_2``.)  What it
changes or adds is written here:

- hashed contexts: a one-colour image replaces contexts 6, 8, 12, 14, 15 of
  its colour by longer-range extrapolations (``hashed_contexts``); a later
  colour's context 12 is the colour differences' prediction, their activity
  against the colour before's, and the pixel's 2x2 phase;
- residual maps read as (upper + 16) / (total + 32) through a reciprocal
  table, and after version 1's 8 maps come the bank's (``PredictorBank``:
  the predictors of ``PREDICTORS`` that the spec's ``bank`` names, the first
  ``bank_maps`` of them and the bank's blend and best through a map each,
  keyed by the prediction's recent error and the local coding cost or the
  colour before's error) and the least-squares predictors' (``LeastSquares``,
  two maps each);
- the local coding cost (``COST``, ``cost_class``): what the mixer paid at the
  neighbouring sub-pixels, a small class;
- 7 weight sets (``weight_set_keys``): version 1's 4 and the locally best
  blend sub-predictor (version 3: the 2x2 phase), the local activity, the
  column stripe; a set whose error is at most ``MIX_SKIP`` does not learn.

- version 5 (``SPEC_5``): version 4 whose mixers and APM stages start from
  the prior's tables (``Mixer``, ``APM``), each row found by its meaning
  (``set_row``).
- version 6 (``SPEC_6``): version 5 whose prior holds two sets; an image
  starts from the one ``prior.choose`` names (its 2x2 phase statistic),
  written as the payload's first byte (``encode_parts``).

- ``trace(img, positions, counts)``: the (p16, bit) of every decision;
- ``probabilities(img, positions, counts)``: the p16 values alone;
- ``encode(img, positions, counts)``: the payload (one state);
- ``encode_parts(img, positions, counts, parts)``: the payload in column parts;
- ``ideal_bits(trace)``: the ideal code length of a trace.

The kernel keeps the memories per sub-pixel (the blend's, the bank's and the
least-squares predictors' errors, the costs paid) for the row coded and the
row above only, in rings of 3 rows per strip (``kernel.RING``); kept here by
pixel, they are the same in every order the coders use: each strip's rows
in order (raster, or the network's wavefront), and strips interleaved only
in a state made for those strips (the column parts' ``strip_rows``).

``positions`` yields (y, x, colour, strip_top) per sub-pixel, in coding order,
and with a network (``counts`` given) a fifth item: the index of the
sub-pixel's row in ``counts`` (an (n, 256) array of the network's counts).
A position without the fifth item (or any, when ``counts`` is None) is coded
without a network; one model serves the whole sequence.
"""
from __future__ import annotations

from itertools import accumulate
from operator import mul
from typing import NamedTuple

from .. import definition as v1, prior
from ..spec import SPEC_1
from .ols import EVERY, FEATURES, N_FEATURES, RIDGE, SHIFT

from . import SPEC     # the package's spec: version 2's, or a later version's (``v3`` to ``v5``)

# version 1's rules imported here read these numbers of SPEC_1: version 2 must keep them
for _field in ("n_hashed", "n_blend", "count_max", "table_bits_min", "table_bits_max", "part_table_bits_max"):
    assert getattr(SPEC, _field) == getattr(SPEC_1, _field), f"version {SPEC.version} changed {_field}: define its rule here"

# ---------------------------------------------------------------- what version 2 keeps of version 1

squash, stretch = v1.squash, v1.stretch
wrap32 = v1._wrap32              # a store into an int32 array
hash_of = v1._hash               # the context hash of a sequence of values
clamp8, log_class, median = v1._clamp8, v1._log_class, v1._median
Neighbourhood = v1.Neighbourhood       # W, N, NW, NE, WW, NN, NNE with their fallbacks
NetworkView = v1.NetworkView           # the network's counts: P(bit), mode, mean, confidence
BlendPredictor = v1.BlendPredictor     # six sub-predictions weighted by their recent errors
HashedContexts = v1.HashedContexts     # buckets of 15 counters per nibble, two candidates per context
FirstMaps = v1.SubpixelContext         # the hashed contexts and maps 0..7 (amended by ``hashed_contexts``)
RangeEncoder, encode_decisions, ideal_bits = v1.RangeEncoder, v1.encode_decisions, v1.ideal_bits


class APM(v1.APM):
    """Version 1's APM; a row starts at the identity, or (version 5) at ``start(context)``, its prior's."""
    RATE = SPEC.apm_rate

    def __init__(self, start=None):
        super().__init__()
        self.start = start

    def _row(self, ctx):
        row = self.rows.get(ctx)
        if row is None and self.start is not None:
            row = self.rows[ctx] = [int(v) for v in self.start(ctx)]
        return super()._row(ctx)


INT64 = 1 << 63


def checked(v: int) -> int:
    """v, asserted to be an int64 (the kernel's arithmetic never overflows)."""
    assert -INT64 <= v < INT64, "an int64 would overflow"
    return v


# ---------------------------------------------------------------- the numbers

N_HASHED = SPEC.n_hashed
N_BLEND = SPEC.n_blend
BANK = tuple(SPEC.bank)        # the predictors the bank tracks: indices into PREDICTORS
BANK_MAPS = SPEC.bank_maps     # the first of them with a map each
BLEND, BEST = "blend", "best"  # the bank's derived predictions, each with a map
DERIVED = (BLEND, BEST)[:SPEC.bank_derived]
N_OLS = SPEC.n_ols
N_MAPS = SPEC.n_maps
assert len(BANK) == SPEC.n_bank and BANK_MAPS <= len(BANK) and len(DERIVED) == SPEC.bank_derived
assert N_MAPS == 8 + BANK_MAPS + len(DERIVED) + 2 * N_OLS   # version 1's maps, the bank's, the least squares'
N_INPUTS = N_HASHED + N_MAPS + 2                            # hashed contexts, maps, the network, the bias
assert N_INPUTS == SPEC.n_inputs
BIAS = SPEC.bias
STRIPES = SPEC.stripes
MIX_SKIP = SPEC.mix_skip
# the weight sets' rows per colour: each selector's values for each of the 8 bits (set 0: the bits known)
# (version 3: set 4 by the 2x2 phase, and a row for a flat neighbourhood, not the locally best blend
# sub-predictor)
assert SPEC.set_rows == (256, 8 * 8, 8 * 8, 8 * 3, 8 * 5 if SPEC.phase else 8 * N_BLEND, 8 * 8, 8 * STRIPES)
N_SETS = len(SPEC.set_rows)
# every map's context below is a class (0..7) times 8 plus a class (0..7); with the phase, colours 1 and 2
# add 64 times the phase to the contexts of maps PHASE_MAP on, except in a flat neighbourhood (``map_phase``)
assert SPEC.map_contexts == 64 << 2 * SPEC.phase
PHASE_MAP = 8


def phase(y: int, x: int, c: int) -> int:
    """The 2x2 phase that colour c reads at (y, x): (y & 1) * 2 + (x & 1) for
    colours 1 and 2 in version 3 (``SPEC.phase``), else 0.  Chroma once
    subsampled 2x2 and interpolated is predictable at some phases, new at others."""
    return (y & 1) * 2 + (x & 1) if SPEC.phase and c > 0 else 0


FLAT = 4        # version 3: set 4's row where the local activity is 0, after the 4 phases'


def set_phase(y: int, x: int, qa: int) -> int:
    """Version 3's weight set 4 row (every colour): the 2x2 phase, or FLAT
    where the local activity ``qa`` is 0.  A flat neighbourhood shows no
    phase, and a flat image learns once, not four times."""
    return (y & 1) * 2 + (x & 1) if qa > 0 else FLAT


def map_phase(y: int, x: int, c: int, qa: int) -> int:
    """The phase that colour c's maps from PHASE_MAP on read: ``phase``, but 0
    where the neighbourhood is flat (``set_phase``)."""
    return phase(y, x, c) if set_phase(y, x, qa) != FLAT else 0


# ---------------------------------------------------------------- which neighbours are known

def known(y: int, x: int, r: int, dy: int, dx: int, width: int) -> bool:
    """Whether pixel (y - dy, x + dx) is coded before (y, x), r rows into its
    strip, in both stream orders (raster, and the network's wavefront, whose
    reach into the row above is at least one column): in the row, those to
    the left; dy rows above (in the strip), up to dy columns to the right."""
    if dy == 0:
        return dx < 0 and x + dx >= 0
    return dy <= r and dx <= dy and 0 <= x + dx < width


def around(y: int, x: int, r: int, width: int) -> list[tuple[int, int, int]]:
    """(weight, y, x) of W and N (weight 2) and NW and NE (weight 1), those
    known in the strip: where recent errors and costs are read."""
    out = []
    if x > 0:
        out.append((2, y, x - 1))
    if r > 0:
        out.append((2, y - 1, x))
        if x > 0:
            out.append((1, y - 1, x - 1))
        if x + 1 < width:
            out.append((1, y - 1, x + 1))
    return out


# ---------------------------------------------------------------- hashed contexts

def hashed_contexts(img, y: int, x: int, r: int, c: int, first: list[int]) -> list[int]:
    """Version 2's hashed contexts: version 1's (``first``), except where amended."""
    h = list(first)
    seed = (c + 1) << 16
    nb = Neighbourhood(img, y, x, r, c)
    w, n, nw, ne, ww, nn = nb.w, nb.n, nb.nw, nb.ne, nb.ww, nb.nn
    if c == 0 and img.shape[2] == 1:
        # a one-colour image: longer-range extrapolations of the row, the column and the diagonal
        def far(dy, dx, fallback):
            return int(img[y - dy, x + dx, 0]) if known(y, x, r, dy, dx, img.shape[1]) else fallback
        www = far(0, -3, ww)
        nnn = far(3, 0, nn)
        nne = far(2, 1, ne)
        nnne = far(3, 1, nne)
        h[6] = hash_of(seed + 7, clamp8(2 * n - nn), w >> 2)
        h[8] = hash_of(seed + 9, clamp8(2 * w - ww), n >> 2)
        h[12] = hash_of(seed + 13, clamp8(3 * n - 3 * nn + nnn), clamp8(3 * w - 3 * ww + www) >> 1)
        h[14] = hash_of(seed + 15, w, nw)
        h[15] = hash_of(seed + 16, (w + clamp8(3 * ne - 3 * nne + nnne) + 1) >> 1, n >> 2)
    elif c >= 1:
        # the colour differences' prediction, their activity against the colour before's, the 2x2 phase
        p1 = int(img[y, x, c - 1])
        one = Neighbourhood(img, y, x, r, c - 1)
        w1, n1, nw1, ne1 = one.w, one.n, one.nw, one.ne
        diff_activity = abs(w - w1 - nw + nw1) + abs(n - n1 - nw + nw1) + abs(n - n1 - ne + ne1)
        activity = abs(w1 - nw1) + abs(n1 - nw1) + abs(n1 - ne1)
        h[12] = hash_of(seed + 13, clamp8(p1 + ((w - w1 + n - n1) >> 1)), log_class(diff_activity),
                        log_class(activity) >> 1, (y & 1) * 2 + (x & 1))
    return h


# ---------------------------------------------------------------- the local coding cost

def log2_fixed(n: int, frac: int = 16, bits: int = 256) -> int:
    """floor(log2(n) * 2^frac) for n >= 1: the fraction's bits one at a time,
    by squaring the mantissa n / 2^floor(log2 n) (in [1, 2)), carried at
    ``bits`` bits: far more than the 16 fraction bits need."""
    k = n.bit_length() - 1
    m = (n << bits) >> k
    res = k << frac
    for i in range(1, frac + 1):
        m = (m * m) >> bits
        if m >= 2 << bits:
            m >>= 1
            res += 1 << (frac - i)
    return res


# COST[p]: -log2(p / 4096) in 1/16 bit, rounded half up from 16 fraction bits, for a 12-bit p (0 as 1)
COST = [((12 << 16) - log2_fixed(max(1, p)) + (1 << 11)) >> 12 for p in range(4096)]


def bit_cost(p16: int, bit: int) -> int:
    """What coding ``bit`` at P(1) = p16 / 65536 costs, in 1/16 bit (its probability read at 12 bits)."""
    return COST[(p16 if bit else 65536 - p16) >> 4]


def cost_class(costs: dict, y: int, x: int, r: int, c: int, width: int) -> int:
    """The local coding cost, 0..7: the mean of the costs (``costs``: (y, x,
    c) -> 1/16 bits; 0 for a sub-pixel this model did not code) paid at W, N
    (weight 2), NW, NE of the same colour and (colour c >= 1) at the pixel's
    colour before (weight 2), those known in the strip; how many of 1/2, 1,
    2, 3, 4, 5, 6 bits it reaches.  4 where none is known."""
    near = [(wt, (yy, xx, c)) for wt, yy, xx in around(y, x, r, width)]
    if c > 0:
        near.append((2, (y, x, c - 1)))
    weight = sum(wt for wt, _ in near)
    if weight == 0:
        return 4
    total = sum(wt * costs.get(at, 0) for wt, at in near)
    return sum(total >= bits16 * weight for bits16 in (8, 16, 32, 48, 64, 80, 96))


# ---------------------------------------------------------------- the bank of predictors

class Taps(NamedTuple):
    """One colour's causal neighbourhood (``Neighbourhood``'s, and NNW, NWW)."""
    w: int
    n: int
    nw: int
    ne: int
    ww: int
    nn: int
    nne: int
    nnw: int
    nww: int


def taps(img, y: int, x: int, r: int, ch: int) -> Taps:
    nb = Neighbourhood(img, y, x, r, ch)
    nnw = int(img[y - 2, x - 1, ch]) if r >= 2 and x >= 1 else nb.nw
    nww = int(img[y - 1, x - 2, ch]) if r >= 1 and x >= 2 else nb.nw
    return Taps(nb.w, nb.n, nb.nw, nb.ne, nb.ww, nb.nn, nb.nne, nnw, nww)


def paeth(w: int, n: int, nw: int) -> int:
    """PNG's Paeth predictor: of W, N, NW the nearest to W + N - NW (in that order on a tie)."""
    g = w + n - nw
    return min((abs(g - w), 0, w), (abs(g - n), 1, n), (abs(g - nw), 2, nw))[2]


def gap(t: Taps) -> int:
    """CALIC's gradient-adjusted prediction (its thresholds 80, 32, 8), in eighths, rounded."""
    dh = abs(t.w - t.ww) + abs(t.n - t.nw) + abs(t.n - t.ne)
    dv = abs(t.w - t.nw) + abs(t.n - t.nn) + abs(t.ne - t.nne)
    if dv - dh > 80:
        return t.w
    if dh - dv > 80:
        return t.n
    p8 = 4 * (t.w + t.n) + 2 * (t.ne - t.nw)          # (W + N) / 2 + (NE - NW) / 4, times 8
    if dv - dh > 32:
        p8 = (p8 + 8 * t.w) >> 1
    elif dv - dh > 8:
        p8 = (3 * p8 + 8 * t.w) >> 2
    elif dh - dv > 32:
        p8 = (p8 + 8 * t.n) >> 1
    elif dh - dv > 8:
        p8 = (3 * p8 + 8 * t.n) >> 2
    return (p8 + 4) >> 3


# Each predictor: taps -> its prediction, unclamped.
PREDICTORS = (
    lambda t: t.w,                                                      # 0 W
    lambda t: t.n,                                                      # 1 N
    lambda t: t.w + t.n - t.nw,                                         # 2 the plane through W, N, NW
    lambda t: t.w + t.ne - t.n,                                         # 3 the plane through W, N, NE
    lambda t: t.n + t.ne - t.nne,                                       # 4 the plane through N, NE, NNE
    lambda t: (t.w + t.ne + 1) >> 1,                                    # 5 (W + NE) / 2
    lambda t: 2 * t.w - t.ww,                                           # 6 the row, extrapolated
    lambda t: 2 * t.n - t.nn,                                           # 7 the column, extrapolated
    lambda t: paeth(t.w, t.n, t.nw),                                    # 8 Paeth
    lambda t: (2 * t.w + 2 * t.n + t.ne - t.nw + 2) >> 2,               # 9 (2W + 2N + NE - NW) / 4
    lambda t: t.ne,                                                     # 10 NE
    lambda t: t.nw + t.w - t.nww,                                       # 11 the plane through NWW, NW, W
    lambda t: t.n + t.nw - t.nnw,                                       # 12 the plane through NNW, NW, N
    lambda t: (t.w + t.n + 1) >> 1,                                     # 13 (W + N) / 2
    lambda t: t.w + ((t.ne - t.nw) >> 1),                               # 14 W + (NE - NW) / 2
    lambda t: (t.w + t.n + t.nw + t.ne + 2) >> 2,                       # 15 the mean of W, N, NW, NE
    lambda t: median(t.w, t.n, t.ne),                                   # 16 the median of W, N, NE
    lambda t: (3 * t.w - t.ww + 3 * t.n - t.nn + 2) >> 2,               # 17 the row's and column's trends
    lambda t: t.n + ((t.w - t.nw + t.ne - t.nne + 1) >> 1),             # 18
    lambda t: (t.w + t.ne + 2 * (t.n - t.nn) + 1) >> 1,                 # 19
    lambda t: median(t.w, t.n, t.nw),                                   # 20 MED (LOCO-I)
    gap,                                                                # 21 CALIC's GAP
    lambda t: t.w + ((t.n - t.nw) >> 1),                                # 22
    lambda t: t.n + ((t.w - t.nw) >> 1),                                # 23
    lambda t: (t.n + t.ne + 1) >> 1,                                    # 24
    lambda t: (t.w + t.nw + 1) >> 1,                                    # 25
    lambda t: (t.w + t.n + t.nw + t.ne + t.ww + t.nn + t.nne + t.nww + 4) >> 3,  # 26 the mean of 8
    lambda t: (t.w + t.n + 2 * t.ne + 2) >> 2,                          # 27
    lambda t: t.ne + t.n - t.nn,                                        # 28 NE with the column's trend
    lambda t: (3 * t.w + t.ne + 2) >> 2,                                # 29
    lambda t: (t.nw + t.ne + 1) >> 1,                                   # 30
    lambda t: t.w + t.ne - t.nne + t.n - t.nn,                          # 31
    lambda t: (t.w + t.ww + 1) >> 1,                                    # 32
    lambda t: (t.n + t.nn + 1) >> 1,                                    # 33
    lambda t: (3 * t.n + t.w + 2) >> 2,                                 # 34
    lambda t: (t.w + t.n - t.nw + t.n + t.ne - t.nne + 1) >> 1,         # 35 two planes' mean
    lambda t: median(t.w, t.ne, t.w + t.ne - t.n),                      # 36
    lambda t: median(t.n, t.ne, t.n + t.ne - t.nne),                    # 37
)
assert all(0 <= i < len(PREDICTORS) for i in BANK) and len(set(BANK)) == len(BANK)


class PredictorBank:
    """The bank: the predictors ``BANK`` tracked, and the predictions derived
    from them; the first BANK_MAPS predictors and the derived ones each read
    through a residual map of its own.

    Colour 0 predicts from its own taps; a later colour carries the colour
    before's error over: P(c) + p1 - P(c - 1); clamped to 0..255.  The
    derived predictions (BANK_DERIVED of them, in this order): the bank's
    predictions blended, each weighted 2^32 // (e^2 + 4) by its error sum
    e around, as the blend of version 1 weighs its sub-predictions; and the
    prediction of the locally best predictor (the least error sum, the
    first in BANK on a tie).  A map's context: the class of its
    prediction's error sum around (halved) and, for colour 0, the local
    coding cost's class, for a later colour its prediction's error on the
    colour before, here.

    The errors, each at most 255, are kept per pixel, colour and prediction
    (a predictor's index in PREDICTORS, or BLEND, BEST); 0 where this model
    did not code the sub-pixel."""

    def __init__(self):
        self.errors = {}     # (y, x, c) -> {prediction: |value - it|, at most 255}

    def error_sum(self, y, x, r, c, width, name) -> int:
        return sum(wt * self.errors.get((yy, xx, c), {}).get(name, 0) for wt, yy, xx in around(y, x, r, width))

    def predictions(self, img, y, x, r, c, qcost):
        """(every prediction by name, and the maps' predictions and contexts in map order)."""
        width = img.shape[1]
        t0 = taps(img, y, x, r, c)
        if c == 0:
            preds = {i: clamp8(PREDICTORS[i](t0)) for i in BANK}
        else:
            p1 = int(img[y, x, c - 1])
            t1 = taps(img, y, x, r, c - 1)
            preds = {i: clamp8(PREDICTORS[i](t0) + p1 - PREDICTORS[i](t1)) for i in BANK}
        errs = {name: self.error_sum(y, x, r, c, width, name) for name in BANK + DERIVED}
        if BLEND in DERIVED:
            weights = [(1 << 32) // (errs[i] * errs[i] + 4) for i in BANK]
            total = sum(weights)
            preds[BLEND] = (sum(wt * preds[i] for wt, i in zip(weights, BANK)) + total // 2) // total
        if BEST in DERIVED:
            preds[BEST] = preds[min(BANK, key=lambda i: errs[i])]      # min: the first of the least
        before = self.errors.get((y, x, c - 1), {})
        mapped = BANK[:BANK_MAPS] + DERIVED
        ctx = [log_class(errs[name] >> 1) * 8 + (qcost if c == 0 else log_class(before.get(name, 0)))
               for name in mapped]
        return preds, [preds[name] for name in mapped], ctx

    def learn(self, y, x, c, preds, value):
        self.errors[(y, x, c)] = {name: min(255, abs(value - p)) for name, p in preds.items()}


# ---------------------------------------------------------------- online least squares

GRAY, FIRST, LATER = 0, 1, 2        # the input sets (``ols.FEATURES``' first axis): one-colour images, colour 0, later
W_ONE = 16                          # the weights' fixed point: 2^16 = 1
W_MAX = 1 << 20                     # |weight| at most 16
ENTRY_MAX = 1 << 30                 # the solve's entries, at most


def input_set(colours: int, c: int) -> int:
    if colours == 1:
        return GRAY
    return FIRST if c == 0 else LATER


def rounded_div(num: int, den: int) -> int:
    """num / den rounded to nearest, halves up (den > 0)."""
    return (num + (den >> 1)) // den


def clamp(v: int, m: int) -> int:
    return min(m, max(-m, v))


class LeastSquares:
    """One colour's least-squares predictor: value - W from inputs that are
    differences of known values (``ols`` explains them), the normal
    equations forgotten at 2^-shift, re-solved every ``every`` updates."""

    def __init__(self, inputs, shift: int, ridge: int, every: int):
        self.inputs = inputs            # (kind, dy, dx) of each input
        self.shift, self.ridge, self.every = shift, ridge, every
        n = len(inputs)
        self.a = {(i, j): 0 for i in range(n) for j in range(i, n)}   # the matrix's upper triangle
        self.b = [0] * n
        self.w = [0] * n                # the weights, 2^16 = 1
        self.updates = 0
        self.solves = 0

    def features(self, img, y, x, r, c, ref):
        """Input (kind, dy, dx): kind 0, the pixel (y - dy, x + dx) of colour c
        less W; kind k >= 1, colour c - k's difference from that pixel to this
        one; 0 where the pixel is not known (or colour c - k does not exist)."""
        f = []
        for kind, dy, dx in self.inputs:
            v = 0
            if known(y, x, r, dy, dx, img.shape[1]):
                if kind == 0:
                    v = int(img[y - dy, x + dx, c]) - ref
                elif kind <= c:
                    v = int(img[y, x, c - kind]) - int(img[y - dy, x + dx, c - kind])
            f.append(v)
        return f

    def predict(self, f) -> int:
        return checked(sum(wi * fi for wi, fi in zip(self.w, f)) + (1 << (W_ONE - 1))) >> W_ONE

    def learn(self, f, t) -> None:
        s = self.shift
        for (i, j), a in self.a.items():
            self.a[i, j] = a - (a >> s) + f[i] * f[j]
        self.b = [b - (b >> s) + fi * t for b, fi in zip(self.b, f)]
        self.updates += 1
        if self.updates % self.every == 0:
            self.solve()

    def solve(self) -> None:
        """The weights: the matrix (its diagonal plus ridge * 2^shift) and b
        scaled up by the largest power of two keeping them below 2^30, then
        Gaussian elimination on the upper triangle without pivoting, each
        row's ratio in the largest fixed point q <= 30 that keeps it within
        2^32 + 1, clamping the entries to 2^30; a pivot <= 0 or below 2^-32
        of its row's largest entry drops its input (weight 0).  Then back
        substitution, each weight rounded and clamped to W_MAX."""
        self.solves += 1
        n = len(self.b)
        m = {ij: a + (self.ridge << self.shift if ij[0] == ij[1] else 0) for ij, a in self.a.items()}
        v = list(self.b)
        top = max([1] + [abs(e) for e in m.values()] + [abs(e) for e in v])
        sh = 0
        while top << (sh + 1) < ENTRY_MAX:
            sh += 1
        m = {ij: e << sh for ij, e in m.items()}
        v = [e << sh for e in v]
        for i in range(n):
            piv = m[i, i]
            mx = max([0] + [abs(m[i, j]) for j in range(i + 1, n)])
            if piv <= 0 or mx > piv << 32:
                m[i, i] = 0
                continue
            q = 30
            while q > 0 and mx << q > piv << 32:
                q -= 1
            half = (1 << q) >> 1
            for j in range(i + 1, n):
                if m[i, j] == 0:
                    continue
                lj = rounded_div(checked(m[i, j] << q), piv)
                for k in range(j, n):
                    m[j, k] = clamp(m[j, k] - (checked(lj * m[i, k] + half) >> q), ENTRY_MAX)
                v[j] = clamp(v[j] - (checked(lj * v[i] + half) >> q), ENTRY_MAX)
        for i in reversed(range(n)):
            piv = m[i, i]
            if piv <= 0:
                self.w[i] = 0
                continue
            num = checked((v[i] << W_ONE) - sum(m[i, j] * self.w[j] for j in range(i + 1, n)))
            self.w[i] = clamp(rounded_div(num, piv), W_MAX)


def least_squares(colours: int) -> dict:
    """Each colour's N_OLS predictors, keyed (colour, phase, k), with ``ols``' inputs and rates: one
    per phase that the colour reads (``phase``: version 3's colours 1 and 2 four, else one)."""
    out = {}
    for c in range(colours):
        g = input_set(colours, c)
        for ph in range(4 if SPEC.phase and c > 0 else 1):
            for k in range(N_OLS):
                inputs = tuple(tuple(int(v) for v in FEATURES[g, k, i]) for i in range(int(N_FEATURES[g, k])))
                out[c, ph, k] = LeastSquares(inputs, int(SHIFT[g, k]), int(RIDGE[g, k]), int(EVERY[g, k]))
    return out


def signed_class(e: int) -> int:
    """-4 and below, -3..-2, -1, 0, 1, 2..3, 4 and above -> 0..6."""
    m = min(3, log_class(e))
    return 3 + m if e >= 0 else 3 - m


# ---------------------------------------------------------------- adaptive models

MAP_RECIP = [0] + [((1 << 29) // t + 1) >> 1 for t in range(1, 4096)]    # round(2^28 / t), halves up


def map_p12(upper: int, total: int) -> int:
    """(upper + 16) / (total + 32) as a 12-bit probability (1..4095), without a
    division: both shifted right by the fewest bits that bring the total
    below 2^12, times the total's reciprocal, rounded."""
    hi, tot = upper + 16, total + 32
    s = max(0, tot.bit_length() - 12)
    return min(4095, max(1, ((hi >> s) * MAP_RECIP[tot >> s] + (1 << 15)) >> 16))


class ResidualMaps(v1.ResidualMaps):
    """Version 1's histograms of (value - prediction) mod 256 per map, colour
    and context (each value counts h_inc; past h_limit every bin is halved),
    with version 2's numbers; ``halvings`` counts the halvings."""

    INC = SPEC.h_inc
    LIMIT = SPEC.h_limit

    def __init__(self):
        super().__init__()
        self.halvings = 0

    def value_prefix(self, m, c, ctx, pred) -> list[int]:
        """Prefix sums of the histogram re-indexed by value (bin (v - pred) mod 256 for value v)."""
        bins = self._bins((m, c, ctx))
        return [0] + list(accumulate(bins[-pred:] + bins[:-pred] if pred else bins))

    def learn(self, m, c, ctx, pred, value) -> None:
        before = self.total.get((m, c, ctx), 0)
        assert before + self.INC < 1 << 16          # the kernel's bins and totals are uint16
        super().learn(m, c, ctx, pred, value)
        self.halvings += self.total[m, c, ctx] != before + self.INC


def set_row(key) -> int:
    """A weight set's row (``weight_set_keys``) in the kernel's table, where a prior stores it: the sets
    one after another, each colour by colour; set 0's rows by the bits known (with their leading 1), the
    others' by the bit index, then the selector's value."""
    s, c = key[0], key[1]
    rows = SPEC.set_rows[s]
    return sum(SPEC.set_rows[:s]) * SPEC.colours + c * rows + (key[2] if s == 0 else key[2] * (rows // 8) + key[3])


class Mixer:
    """N_SETS weight sets, each chosen by a small context and each a
    logistic mix of the inputs, then a second mixer over their outputs (per
    colour and bit).  A set learns only when its error (12 bits) exceeds
    MIX_SKIP.  Each row starts at ``w1_init`` (the second mixer's at equal
    weights), or (version 5) at the prior's row (``mixer/prior.py``)."""

    def __init__(self, start: dict | None = None):
        self.w1 = {}     # (set, colour, context...) -> [N_INPUTS weights]
        self.w2 = {}     # (colour, bit index) -> [N_SETS weights, the bias's weight]
        self.start = start

    def predict(self, keys, xs):
        """The chosen rows, and each one's output (a clamped stretch)."""
        rows = []
        dots = []
        for key in keys:
            row = self.w1.get(key)
            if row is None:
                row = self.w1[key] = ([SPEC.w1_init] * N_INPUTS if self.start is None else
                                      [int(v) for v in self.start["w1"][set_row(key)][:N_INPUTS]])
            rows.append(row)
            dots.append(min(2047, max(-2047, sum(map(mul, row, xs)) >> 16)))
        return rows, dots

    def final(self, ck, dots):
        w2 = self.w2.get(ck)
        if w2 is None:
            w2 = self.w2[ck] = ([65536 // N_SETS] * N_SETS + [0] if self.start is None else
                                [int(v) for v in self.start["w2"][ck[0] * 8 + ck[1]]])
        acc = sum(map(mul, w2, dots)) + w2[N_SETS] * BIAS
        return w2, min(2047, max(-2047, acc >> 16))

    @staticmethod
    def learn(rows, dots, xs, w2, pm, bit):
        target = bit << 12
        for row, d in zip(rows, dots):
            e = target - squash(d)
            if abs(e) > MIX_SKIP:
                err = e * SPEC.mix_lr
                row[:] = [wrap32(wi + ((xi * err + SPEC.rounding) >> 16)) for wi, xi in zip(row, xs)]
        err = (target - pm) * SPEC.mix2_lr
        w2[:] = [wrap32(wi + ((d * err + SPEC.rounding) >> 16)) for wi, d in zip(w2, dots + [BIAS])]


def weight_set_keys(c, k, known, conf, berr_class, blend, best, qa, y, x, width):
    """Each weight set's row for bit k of colour c (``known``: its bits so far)."""
    if blend >> (8 - k) == known:       # the blend agrees with the bits known: and its next bit
        agree = 1 + ((blend >> (7 - k)) & 1)
    else:
        agree = 0
    return [(0, c, (1 << k) | known),         # the bits known (with a leading 1)
            (1, c, k, conf),                  # the network's confidence (0 without one)
            (2, c, k, berr_class),            # the blend's error class
            (3, c, k, agree),
            (4, c, k, set_phase(y, x, qa) if SPEC.phase else best),   # version 3: the 2x2 phase, or flat
                                                                      # (every colour); else the locally
                                                                      # best blend sub-predictor
            (5, c, k, qa),                    # the local activity
            (6, c, k, x * STRIPES // width)]  # the column stripe


# ---------------------------------------------------------------- the model

class ReferenceModel:
    """The whole adaptive model of one image, coding sub-pixels one at a time."""

    def __init__(self, img, table_subpixels: int | None = None, most_bits: int = SPEC.table_bits_max,
                 prior_set: int = 0):
        h, w, colours = img.shape
        self.img = img
        self.hashed = HashedContexts(h * w * colours if table_subpixels is None else table_subpixels, most_bits)
        self.maps = ResidualMaps()
        start = prior.for_spec(SPEC, prior_set)      # versions 5 and 6's learned tables (6: a set), else None
        self.mixer = Mixer(start)
        # the first APM's rows by (colour, the bits known with their leading 1); the second's by the kernel's
        # own row numbers
        self.apm1 = APM(None if start is None else lambda ctx: start["apm1"][ctx[0] * 256 + ctx[1]])
        self.apm2 = APM(None if start is None else lambda ctx: start["apm2"][ctx])
        self.blender = BlendPredictor(w)
        self.bank = PredictorBank()
        self.ols = least_squares(colours)
        self.ols_errors = {}     # (y, x, c) -> each least-squares predictor's value - its clamped prediction
        self.costs = {}          # (y, x, c) -> what the sub-pixel cost, in 1/16 bit

    def locally_best(self, y, x, r, c) -> int:
        """Which blend sub-predictor has the smallest error sum around (the first on a tie)."""
        near = around(y, x, r, self.img.shape[1])
        unknown = [0] * N_BLEND
        sums = [sum(wt * self.blender.errors.get((yy, xx, c), unknown)[i] for wt, yy, xx in near)
                for i in range(N_BLEND)]
        return sums.index(min(sums))

    def ols_error(self, y, x, c, k) -> int:
        """Least-squares predictor k's signed error at (y, x) in colour c (0 where this model did not code it)."""
        errors = self.ols_errors.get((y, x, c))
        return errors[k] if errors else 0

    def least_squares_maps(self, y, x, r, c, ref, qa):
        """Each least-squares predictor's inputs, and its two maps' predictions and contexts (in
        map order: the first maps of every predictor, then the second ones).  The first: the class
        of its error sum 2W + 2N + NW + NE (halved) and the local activity; the second: its signed
        error on the colour before, here (colour 0: at W and at N)."""
        width = self.img.shape[1]
        feats, preds, first, second = [], [], [], []
        for k in range(N_OLS):
            model = self.ols[c, phase(y, x, c), k]
            f = model.features(self.img, y, x, r, c, ref)
            feats.append(f)
            preds.append(clamp8(ref + model.predict(f)))
            qe = log_class(sum(wt * abs(self.ols_error(yy, xx, c, k)) for wt, yy, xx in around(y, x, r, width)) >> 1)
            first.append(qe * 8 + qa)
            if c > 0:
                second.append(signed_class(self.ols_error(y, x, c - 1, k)) * 8 + qe)
            else:
                ew = self.ols_error(y, x - 1, c, k) if x > 0 else 0
                en = self.ols_error(y - 1, x, c, k) if r > 0 else 0
                second.append(signed_class(ew) * 8 + signed_class(en))
        return feats, preds + preds, first + second

    def code_subpixel(self, y, x, c, top, counts_row=None, out=None):
        """Append (p16, bit) of the sub-pixel's 8 decisions to ``out``; the value
        is read from the image (as the encoder does)."""
        img = self.img
        width = img.shape[1]
        r = y - top
        net = NetworkView(counts_row) if counts_row is not None else None
        ctx = FirstMaps(img, y, x, c, top, net, self.blender)
        contexts = hashed_contexts(img, y, x, r, c, ctx.hashes)
        qcost = cost_class(self.costs, y, x, r, c, width)
        bank_all, bank_preds, bank_ctx = self.bank.predictions(img, y, x, r, c, qcost)
        ref = Neighbourhood(img, y, x, r, c).w
        feats, ols_preds, ols_ctx = self.least_squares_maps(y, x, r, c, ref, ctx.qa)
        preds = ctx.preds + bank_preds + ols_preds
        map_ctx = ctx.map_ctx + bank_ctx + ols_ctx
        assert len(preds) == len(map_ctx) == N_MAPS and all(0 <= v < 64 for v in map_ctx)
        map_ctx = map_ctx[:PHASE_MAP] + [v + 64 * map_phase(y, x, c, ctx.qa) for v in map_ctx[PHASE_MAP:]]
        value_prefix = [self.maps.value_prefix(m, c, map_ctx[m], preds[m]) for m in range(N_MAPS)]
        best = self.locally_best(y, x, r, c)
        value = int(img[y, x, c])
        known_bits = 0
        buckets = None
        paid = 0
        out = [] if out is None else out
        for k in range(8):
            half = 128 >> k
            lo = known_bits << (8 - k)     # the open range of values: [lo, lo + 2 * half)
            if k % 4 == 0:
                buckets = self.hashed.select(contexts, 0 if k == 0 else 16 | known_bits)
            node = 1 << (k % 4) | (known_bits & ((1 << (k % 4)) - 1))
            xs = self.hashed.inputs(buckets, node)
            for pre in value_prefix:
                xs.append(stretch(map_p12(pre[lo + 2 * half] - pre[lo + half], pre[lo + 2 * half] - pre[lo])))
            xs.append(stretch(net.p12(lo, half)) if net is not None else 0)
            xs.append(BIAS)
            keys = weight_set_keys(c, k, known_bits, ctx.conf, ctx.berr_class, ctx.blend, best, ctx.qa, y, x, width)
            rows, dots = self.mixer.predict(keys, xs)
            w2, dm = self.mixer.final((c, k), dots)
            pm = squash(dm)
            pa1, h1 = self.apm1.refine((c, (1 << k) | known_bits), dm)
            # the kernel's own row numbers: with and without a network they share one table
            apm2_ctx = (c * 8 + k) * 16 + ((xs[-2] + 2048) >> 8) if net is not None else (c * 8 + k) * 8 + ctx.qa
            pa2, h2 = self.apm2.refine(apm2_ctx, dm)
            p16 = min(65535 - 32, max(32, (pm * 32 + pa1 + pa2 + 2) >> 2))
            bit = (value >> (7 - k)) & 1
            out.append((p16, bit))
            paid += bit_cost(p16, bit)
            self.hashed.update(buckets, node, bit)
            Mixer.learn(rows, dots, xs, w2, pm, bit)
            APM.learn(h1, bit)
            APM.learn(h2, bit)
            known_bits = known_bits * 2 + bit
        for m in range(N_MAPS):
            self.maps.learn(m, c, map_ctx[m], preds[m], value)
        self.blender.learn(ctx.subs, ctx.blend, y, x, c, value)
        self.bank.learn(y, x, c, bank_all, value)
        self.ols_errors[(y, x, c)] = [value - p for p in ols_preds[:N_OLS]]
        for k in range(N_OLS):
            self.ols[c, phase(y, x, c), k].learn(feats[k], value - ref)
        self.costs[(y, x, c)] = paid
        return out


def trace(img, positions, counts=None, model: ReferenceModel | None = None) -> list[tuple[int, int]]:
    """(p16, bit) of every binary decision, in coding order, where p16 is
    P(bit = 1) * 65536 after the final clamp (``model``: a fresh one unless given)."""
    model = ReferenceModel(img) if model is None else model
    out = []
    for pos in positions:
        y, x, c, top = (int(v) for v in pos[:4])
        row = counts[int(pos[4])] if counts is not None and len(pos) > 4 else None
        model.code_subpixel(y, x, c, top, row, out)
    return out


def probabilities(img, positions, counts=None) -> list[int]:
    return [p for p, _ in trace(img, positions, counts)]


def encode(img, positions, counts=None) -> bytes:
    return encode_decisions(trace(img, positions, counts))


def encode_parts(img, positions, counts, parts: int) -> bytes:
    """The payload in column parts: the columns in ``parts`` parts (part p:
    columns w*p//parts .. w*(p+1)//parts - 1), each coded by a model of its
    own (its table sized for the widest part's sub-pixels, at most 2^20
    buckets; with a table budget, at most the budget over ``parts`` rounded
    up to a power of two) over its own positions, in the order given, all reading the
    one image (a neighbour in another part is known; its errors and costs,
    this part's model's own memory, read 0).  Then the part count, the
    lengths of all parts but the last (uint32 little-endian), and the streams;
    version 6 writes before them the prior's set that every part starts from
    (``prior.choose``, one byte)."""
    h, w, colours = img.shape
    which = prior.choose(img, SPEC)
    bounds = [w * p // parts for p in range(parts + 1)]
    widest = max(b - a for a, b in zip(bounds, bounds[1:]))
    most = SPEC.table_budget - (parts - 1).bit_length() if SPEC.table_budget else SPEC.part_table_bits_max
    streams = []
    for p in range(parts):
        mine = [pos for pos in positions if bounds[p] <= int(pos[1]) < bounds[p + 1]]
        model = ReferenceModel(img, h * widest * colours, most_bits=most, prior_set=which)
        streams.append(encode_decisions(trace(img, mine, counts, model)))
    lengths = b"".join(len(s).to_bytes(4, "little") for s in streams[:-1])
    head = bytes([which]) if prior.sets(SPEC) > 1 else b""
    return head + bytes([parts]) + lengths + b"".join(streams)
