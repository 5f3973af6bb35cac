"""Online least-squares predictors in exact integer arithmetic.

Each colour has ``N_OLS`` linear predictors of its value from its coded
neighbourhood, whose weights are re-solved every few pixels from the
exponentially forgotten normal equations.  Their predictions are fed to the
mixer as residual maps (``kernel.code``: the last ``OLS_MAPS``), two each:
one keyed by its own recent errors at W, N, NW and NE with the local
activity, one by its signed error at the pixel's colour before (colour 0:
at W and N).  A one-colour image has its own inputs (``GRAY``: a wider
window).  Measured by ``benchmarks/mixer_tune.py`` (the mixer alone, against
version 1): rgb -1.34%, smooth -1.97%, gray -1.18%; over the network
(``-m max``) rgb -0.46%, smooth -0.72%.

**The model.**  Predictor k of sub-pixel (y, x, c) has a reference ``ref``
(the colour's W, ``contexts.neighbours``) and ``n <= OLS_N`` inputs, each a
difference of two known values (``FEATURES``):

- kind 0, ``img[y - dy, x + dx, c] - ref``: the neighbourhood, relative to W;
- kind 1 (2), ``img[y, x, c - 1] - img[y - dy, x + dx, c - 1]`` (``c - 2``):
  the earlier colour's gradient from that neighbour to this pixel, which the
  colour c's gradient tends to follow;

an input whose pixel is not known (outside the image or the strip, or not
yet coded in the network's stream order, see ``known``) is 0.  So every input
and the target ``t = value - ref`` lie in [-255, 255], and the prediction is
``ref + sum(w_i f_i)``: weights that sum to one over the raw neighbours, no
bias, the model unchanged when a colour's values shift by a constant.

**The normal equations**, forgotten at the rate ``2^-s`` (``SHIFT``): after
each sub-pixel, for i <= j,

    A_ij <- A_ij - (A_ij >> s) + f_i f_j,      b_i <- b_i - (b_i >> s) + f_i t.

*Bound 1*: |A_ij|, |b_i| < U = 65026 * 2^s (<= 2^28 for s <= 12).  With
|v| <= M = 65025 the added product, if |a| < U: for a >= 0,
0 <= a - floor(a / 2^s) <= a (1 - 2^-s) + 1 < U - M, so -U < a' < U; for
a < 0, a <= a - floor(a / 2^s) <= 0 and a - floor(a / 2^s) >= a (1 - 2^-s)
> -U + M + 1, so -U < a' < U.  A starts at 0: by induction the bound holds.

**The solve** (every ``EVERY`` updates; ``solve``): the matrix
``A + (ridge << s) I`` and b are scaled by 2^sh, the largest sh keeping every
entry below 2^30 (*bound 2*; ridge <= 2^8 keeps the unscaled entries below
2^29), then Gaussian elimination without pivoting on the upper triangle
(the matrix is symmetric): for each pivot i, for j > i, with the ratio
l_j = round(M_ij 2^q / M_ii) in the largest fixed point q <= 30 keeping every
|l_j| <= 2^32 + 1 (one division per entry of the triangle, not per product),

    M_jk <- clamp(M_jk - round(l_j M_ik / 2^q)),   b_j <- clamp(b_j - round(l_j b_i / 2^q)),

clamp to [-2^30, 2^30]: every entry stays within 2^30 whatever rounding
does, M_ij 2^q <= 2^60 and each product is below 2^62 + 2^31 (*bound 3*).
A pivot <= 0 or below 2^-32 of its row's largest entry (the rounded matrix
need not stay positive definite) drops its input: its weight
is 0 and it eliminates nothing.  Back substitution gives weights in
fixed point, 2^16 = 1, clamped to |w| <= W_MAX = 2^20 (*bound 4*):

    w_i = clamp(round(((b_i << 16) - sum_{j > i} M_ij w_j) / M_ii)),

whose numerator is below 2^46 + OLS_N 2^30 2^20 < 2^56 (OLS_N <= 32).
*The prediction*: |sum w_i f_i| <= OLS_N 2^20 255 < 2^33; rounded by
>> 16, added to ref and clamped to 0..255.  Every value is an int64 below
2^63: no step can overflow, and the encoder and the decoder, which see the
same sub-pixels in the same order, compute the same weights.  The tests
check the bounds with extreme inputs against Python's unbounded integers
(``tests/test_mixer_v2_ols.py``).

The state of one colour's predictor k is a row of ``ols`` (``new_ols``):
rows 0..OLS_N-1 the matrix A (upper triangle used), row OLS_N the vector b,
row OLS_N + 1 the weights, row OLS_N + 2 its count of updates (column 0),
modulo 2^30 (only its residue modulo ``EVERY`` is read, a power of two).
The state is **int32**: bound 1 keeps A and b below 2^28, bound 4 the
weights below 2^21, so every value stored is the one int64 arithmetic
gives, and the update runs on 32-bit lanes, where AVX2 has the arithmetic
shift that 64-bit lanes lack (``vector_ops.forget_add``; the
arithmetic around it stays int64).  The inputs ``f`` are int32 too.
"""
from __future__ import annotations

import numba
import numpy as np

from . import SPEC
from .contexts import log_class
from .vector_ops import OLS_WIDTH, forget_add

N_OLS = SPEC.n_ols        # predictors per colour
PHASES = 4 if SPEC.phase else 1     # systems per predictor of colours 1 and 2: one per 2x2 phase (version 3)
OLS_MAPS = 2 * N_OLS        # their residual maps: two each
OLS_N = 24                  # inputs of a predictor at most
assert OLS_N == OLS_WIDTH    # (``update``'s rows are whole vectors of it)
ROW_B, ROW_W, ROW_COUNT = OLS_N, OLS_N + 1, OLS_N + 2
W_ONE = 16                  # weights in fixed point: 2^16 = 1
W_MAX = 1 << 20             # |w| <= 16
COUNT_WRAP = 1 << 30        # the count of updates is kept modulo this (a multiple of every EVERY)
ENTRY_MAX = 1 << 30         # bound 2 and 3
KINDS_SAME, KINDS_PREV1, KINDS_PREV2 = 0, 1, 2

# which sets of inputs (FEATURES' first axis): gray images (one colour), colour 0, colours 1 and 2
GRAY, FIRST, LATER = 0, 1, 2


def _window(rows, left):
    """Kind 0 inputs: WW.. (row 0, ``left`` of them: W is the reference), then rows 1..rows from x - left
    to x + dy."""
    out = [(0, 0, -d) for d in range(2, left + 2)]
    for dy in range(1, rows + 1):
        out += [(0, dy, dx) for dx in range(-left, min(dy, left) + 1)]
    return out


_N, _NW, _NE, _WW, _NN = (0, 1, 0), (0, 1, -1), (0, 1, 1), (0, 0, -2), (0, 2, 0)
_NNW, _NNE, _NWW, _WWW, _NNN = (0, 2, -1), (0, 2, 1), (0, 1, -2), (0, 0, -3), (0, 3, 0)
_SETS = {
    GRAY: [
        [_N, _NW, _NE, _WW, _NN, _NNE],                                          # small, fast
        _window(3, 3),                                                           # wide: 21 inputs
        _window(3, 3),                                                           # wide, slow
    ],
    FIRST: [
        [_N, _NW, _NE, _WW, _NN, _NNE],
        [_N, _NW, _NE, _WW, _NN, _NNW, _NNE, _NWW, _WWW, _NNN],
        [_N, _NW, _NE, _WW, _NN, _NNW, _NNE, _NWW, _WWW, _NNN],
    ],
    LATER: [
        [_N, _NW, _NE, (1, 0, -1), (1, 1, 0), (1, 1, -1), (1, 1, 1)],
        [_N, _NW, _NE, _WW, _NN, (1, 0, -1), (1, 1, 0), (1, 1, -1), (1, 1, 1), (1, 0, -2), (1, 2, 0),
         (2, 0, -1), (2, 1, 0)],
        [_N, _NW, _NE, _WW, _NN, _NNE, (1, 0, -1), (1, 1, 0), (1, 1, -1), (1, 1, 1), (2, 0, -1), (2, 1, 0)],
    ],
}
FEATURES = np.zeros((3, N_OLS, OLS_N, 3), np.int64)      # (kind, dy, dx) of each input
N_FEATURES = np.zeros((3, N_OLS), np.int64)
for _g, _sets in _SETS.items():
    for _k, _f in enumerate(_sets):
        assert len(_f) <= OLS_N
        N_FEATURES[_g, _k] = len(_f)
        FEATURES[_g, _k, :len(_f)] = _f
# each predictor's forgetting shift s (bound 1: s <= 12), ridge (<= 2^8) and solve interval
SHIFT = np.array([[6, 8, 10], [6, 8, 10], [6, 8, 10]], np.int64)
RIDGE = np.array([[4, 4, 4], [4, 4, 4], [4, 4, 4]], np.int64)
EVERY = np.array([[8, 16, 16], [8, 8, 16], [8, 8, 16]], np.int64)
# the int32 state (module docstring): bound 1 below 2^31 needs s <= 12, and the count's wrap keeps its residue
assert SHIFT.max() <= 12 and all(COUNT_WRAP % int(e) == 0 for e in EVERY.flat)


ERR_AT = np.array([[0, -1, 1], [1, 0, 1], [1, -1, 0], [1, 1, 0]], np.int64)   # (dy, dx, log2 weight)


def new_ols(colours: int) -> np.ndarray:
    """The predictors' state: int32 (colours * PHASES, N_OLS, OLS_N + 3, OLS_N), zero (every weight 0: W);
    ``slot`` says whose each row is."""
    return np.zeros((colours * PHASES, N_OLS, OLS_N + 3, OLS_N), np.int32)


@numba.njit(inline="always")
def phase(y, x):
    """The pixel's 2x2 phase, 0..3 (version 3's selector, ``SPEC.phase``)."""
    return (y & 1) * 2 + (x & 1)


@numba.njit(inline="always")
def slot(colours, y, x, c):
    """The row of ``ols`` holding colour c's predictors at (y, x): c, and with
    the phase (version 3) colour c >= 1's system of the pixel's 2x2 phase,
    c + colours * ((y & 1) * 2 + (x & 1))."""
    if PHASES == 1 or c == 0:
        return c
    return c + colours * phase(y, x)


@numba.njit(inline="always")
def known(y, x, r, dy, dx, width):
    """Whether pixel (y - dy, x + dx) is coded before (y, x) in both stream
    orders: in the row, to the left; rows above (dy <= r, in the strip) up to
    dx <= dy columns to the right (the network's reach is at least 1)."""
    if dy == 0:
        return dx < 0 and x + dx >= 0
    return dy <= r and dx <= dy and 0 <= x + dx < width


@numba.njit(inline="always")
def features(img, y, x, r, c, g, k, ref, f):
    """Predictor k's inputs of sub-pixel (y, x, c) in input set g into f; returns their number."""
    width = img.shape[1]
    n = N_FEATURES[g, k]
    for i in range(n):
        kind, dy, dx = FEATURES[g, k, i, 0], FEATURES[g, k, i, 1], FEATURES[g, k, i, 2]
        v = np.int64(0)
        if known(y, x, r, dy, dx, width):
            if kind == KINDS_SAME:
                v = np.int64(img[y - dy, x + dx, c]) - ref
            elif kind <= c:
                v = np.int64(img[y, x, c - kind]) - np.int64(img[y - dy, x + dx, c - kind])
        f[i] = v
    return n


@numba.njit(inline="always")
def input_set(colours, c):
    if colours == 1:
        return GRAY
    return FIRST if c == 0 else LATER


@numba.njit(inline="always")
def predict(st, f, n):
    """sum(w_i f_i) in the weights' fixed point, rounded (|result| < 2^18)."""
    acc = np.int64(0)
    for i in range(n):
        acc += np.int64(st[ROW_W, i]) * np.int64(f[i])
    return (acc + (1 << (W_ONE - 1))) >> W_ONE


@numba.njit(inline="always")
def update(st, f, n, t, s):
    """Forget at 2^-s and add the sub-pixel's inputs f and target t (bound 1:
    every entry below 2^28, exact in int32), each row of A and b one vector
    step (``vector_ops.forget_add``)."""
    forget_add(st, f, n, s, t, ROW_B)
    count = np.int64(st[ROW_COUNT, 0]) + 1
    st[ROW_COUNT, 0] = count if count < COUNT_WRAP else count - COUNT_WRAP


@numba.njit(inline="always")
def _clamp(v, m):
    return min(m, max(-m, v))


@numba.njit(inline="always")
def _div(num, den):
    """num / den rounded to nearest (den > 0)."""
    return (num + (den >> 1)) // den


@numba.njit
def solve(st, n, ridge, s, work):
    """The weights of the normal equations of ``st`` (bounds 2-4), into its row ROW_W.
    ``work``: int64 (OLS_N + 1, OLS_N) scratch."""
    diag = ridge << s
    top = np.int64(1)
    for i in range(n):
        for j in range(i, n):
            v = np.int64(st[i, j]) + (diag if i == j else 0)
            work[i, j] = v
            top = max(top, abs(v))
        work[OLS_N, i] = st[ROW_B, i]
        top = max(top, abs(np.int64(st[ROW_B, i])))
    sh = np.int64(0)
    while (top << (sh + 1)) < ENTRY_MAX:
        sh += 1
    for i in range(n):
        for j in range(i, n):
            work[i, j] <<= sh
        work[OLS_N, i] <<= sh
    for i in range(n):
        piv = work[i, i]
        mx = np.int64(0)
        for j in range(i + 1, n):
            mx = max(mx, abs(work[i, j]))
        if piv <= 0 or mx > (piv << 32):
            work[i, i] = 0          # a pivot too small for its row: its input dropped
            continue
        q = np.int64(30)
        while q > 0 and (mx << q) > (piv << 32):
            q -= 1
        half = (np.int64(1) << q) >> 1
        for j in range(i + 1, n):
            if work[i, j] == 0:
                continue
            lj = _div(work[i, j] << q, piv)         # M_ij / M_ii in fixed point 2^q, |lj| <= 2^32 + 1
            for k in range(j, n):
                work[j, k] = _clamp(work[j, k] - ((lj * work[i, k] + half) >> q), ENTRY_MAX)
            work[OLS_N, j] = _clamp(work[OLS_N, j] - ((lj * work[OLS_N, i] + half) >> q), ENTRY_MAX)
    for i in range(n - 1, -1, -1):
        piv = work[i, i]
        if piv <= 0:
            st[ROW_W, i] = 0
            continue
        num = work[OLS_N, i] << W_ONE
        for j in range(i + 1, n):
            num -= work[i, j] * np.int64(st[ROW_W, j])
        st[ROW_W, i] = _clamp(_div(num, piv), W_MAX)


@numba.njit(inline="always")
def signed_class(e):
    """-4+, -2..-3, -1, 0, 1, 2..3, 4+ -> 0..6."""
    m = min(3, log_class(e))
    return 3 + m if e >= 0 else 3 - m


@numba.njit(inline="always")
def ols_predictions(ols, oerr, img, y, y0, y1, x, r, c, ref, feats, refs, preds, ctxs, qa):
    """Each predictor's prediction, twice (``preds``: k and N_OLS + k), and
    its maps' contexts (``ctxs``): the class of its own errors at W, N, NW and
    NE with the local activity ``qa``; and its signed error at this pixel's
    colour before (for colour 0: at W and N).  Keeps each one's inputs
    (``feats``) and reference (``refs``) for ``ols_learn``.  ``oerr`` is a
    ring of rows: y0 is row y's, y1 row y - 1's (``kernel.ring_rows``)."""
    colours = ols.shape[0] // PHASES
    g = input_set(colours, c)
    width = img.shape[1]
    row = slot(colours, y, x, c)
    for k in range(N_OLS):
        st = ols[row, k]
        n = features(img, y, x, r, c, g, k, ref, feats[k])
        refs[k] = ref
        preds[k] = min(255, max(0, ref + predict(st, feats[k], n)))
        preds[N_OLS + k] = preds[k]
        err = np.int64(0)
        for i in range(4):      # W and N count twice, NW and NE once
            dy, dx = ERR_AT[i, 0], ERR_AT[i, 1]
            if known(y, x, r, dy, dx, width):
                err += abs(np.int64(oerr[y0 if dy == 0 else y1, x + dx, c, k])) << ERR_AT[i, 2]
        qe = log_class(err >> 1)
        ctxs[k] = qe * 8 + qa
        if c > 0:
            ctxs[N_OLS + k] = signed_class(np.int64(oerr[y0, x, c - 1, k])) * 8 + qe
        else:
            ew = np.int64(oerr[y0, x - 1, c, k]) if x > 0 else np.int64(0)
            en = np.int64(oerr[y1, x, c, k]) if r > 0 else np.int64(0)
            ctxs[N_OLS + k] = signed_class(ew) * 8 + signed_class(en)


@numba.njit(inline="always")
def ols_learn(ols, oerr, y, y0, x, c, value, feats, refs, preds, work):
    """After the sub-pixel's value: each predictor's error here, its update, and its solve when due."""
    colours = ols.shape[0] // PHASES
    g = input_set(colours, c)
    row = slot(colours, y, x, c)
    for k in range(N_OLS):
        st = ols[row, k]
        n = N_FEATURES[g, k]
        oerr[y0, x, c, k] = value - preds[k]
        update(st, feats[k], n, value - refs[k], SHIFT[g, k])
        if st[ROW_COUNT, 0] % EVERY[g, k] == 0:
            solve(st, n, RIDGE[g, k], SHIFT[g, k], work)
