"""The 16-bit coder's loop, compiled: each sample predicted from its causal
neighbours, and its residual coded as binary decisions whose probabilities
three adaptive counters and a small mixer give.

Per sample (raster order, colours inside a pixel):

1. the prediction: ``N_SUB`` spatial sub-predictions (and, in colours after
   the first, each one corrected by the colour before's error at this pixel)
   blended, each weighted by the inverse square of its errors at W, N, NW
   and NE (the inverse, not its square: 0.9% smaller files measured); clamped
   to the coded values' range;
2. the residual r = value - prediction, as binary decisions (nodes): not
   zero; its exponent e (the bit length of |r|) in unary; the sign (skipped
   where the range allows one only); the e - 1 bits under the leading one;
3. each decision's probability: three counters, in contexts of the local
   activity (the weighted errors of the prediction around), the local
   gradient, and the nearest errors (or the colour before's), each with the
   node and the colour; mixed in the logistic domain by weights chosen by the
   node and colour (an APM stage after it, in the activity's class, was
   measured: 0.01% larger files, so there is none; the mixer makes files 0.8%
   smaller than the activity's counter alone).

Every operation is on int64 values that never overflow, with the mixer's
integer tables (``mixer.tables``): both sides compute the same
probabilities on every machine.  The numbers are ``spec``'s, frozen into
the compiled code.
"""
from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from ..mixer import bitcoder
from ..mixer.tables import RECIPROCALS, SQUASH, STRETCH
from .spec import (BIAS, COUNT_LIMIT, MIX_LR, N_BLEND, N_INPUTS, N_NODES,
                   N_SUB, NODE_MANTISSA, NODE_NONZERO, NODE_SIGN, NODE_UNARY, Q_ACT, Q_GRAD, Q_NEAR, W_INIT, W_LIMIT)

ERR_SLOTS = N_BLEND + 1          # each blend input's |error| at a sample, and the prediction's signed error


class State(NamedTuple):
    """The adaptive state, identical on both sides after every sample."""
    errs: np.ndarray       # int32 (2, width, colours, ERR_SLOTS): this row's and the row before's errors
    p_act: np.ndarray      # int32 (colours * Q_ACT * N_NODES,): counters' probabilities (16-bit), by activity
    n_act: np.ndarray      # int32, the same: their counts
    p_grad: np.ndarray     # by gradient
    n_grad: np.ndarray
    p_near: np.ndarray     # by the nearest errors
    n_near: np.ndarray
    weights: np.ndarray    # int32 (colours * N_NODES, N_INPUTS)


def new_state(width: int, colours: int) -> State:
    def counters(q):
        return np.full(colours * q * N_NODES, 32768, np.int32), np.zeros(colours * q * N_NODES, np.int32)
    weights = np.full((colours * N_NODES, N_INPUTS), W_INIT, np.int32)
    weights[:, N_INPUTS - 1] = 0
    return State(np.zeros((2, max(1, width), colours, ERR_SLOTS), np.int32), *counters(Q_ACT), *counters(Q_GRAD),
                 *counters(Q_NEAR), weights)


def state_bytes(width: int, colours: int) -> int:
    """What ``new_state`` takes, in bytes."""
    return (2 * max(1, width) * colours * ERR_SLOTS * 4 + colours * N_NODES * 8 * (Q_ACT + Q_GRAD + Q_NEAR)
            + colours * N_NODES * N_INPUTS * 4)


@numba.njit(inline="always")
def half_octave(v):
    """0, 1, then two classes per octave: 2, 3, 4-5, 6-7, 8-11, 12-15, ... (v >= 0)."""
    if v < 2:
        return v
    b = 0
    t = v
    while t > 1:
        t >>= 1
        b += 1
    return 2 * b + ((v >> (b - 1)) & 1)


@numba.njit(inline="always")
def sign3(v):
    return 0 if v == 0 else (1 if v > 0 else 2)


@numba.njit(inline="always")
def clamp(v, top):
    return min(top, max(0, v))


@numba.njit(inline="always")
def neighbours(img, y, x, c):
    """W, N, NW, NE, WW, NN, NNE of colour c at (y, x); missing ones fall back
    on the nearest known (0 at the first pixel)."""
    width = img.shape[1]
    w = np.int64(img[y, x - 1, c]) if x > 0 else (np.int64(img[y - 1, x, c]) if y > 0 else np.int64(0))
    n = np.int64(img[y - 1, x, c]) if y > 0 else w
    nw = np.int64(img[y - 1, x - 1, c]) if y > 0 and x > 0 else n
    ne = np.int64(img[y - 1, x + 1, c]) if y > 0 and x + 1 < width else n
    ww = np.int64(img[y, x - 2, c]) if x > 1 else w
    nn = np.int64(img[y - 2, x, c]) if y > 1 else n
    nne = np.int64(img[y - 2, x + 1, c]) if y > 1 and x + 1 < width else ne
    return w, n, nw, ne, ww, nn, nne


@numba.njit(inline="always")
def sub_predictions(img, y, x, c, top, out, at):
    """The N_SUB spatial sub-predictions of colour c at (y, x), into out[at:]."""
    w, n, nw, ne, ww, nn, nne = neighbours(img, y, x, c)
    out[at + 0] = w
    out[at + 1] = n
    out[at + 2] = clamp(w + n - nw, top)
    out[at + 3] = (w + ne + 1) >> 1
    out[at + 4] = clamp(n + ne - nne, top)
    out[at + 5] = (w + n + nw + ne + 2) >> 2
    out[at + 6] = ne
    out[at + 7] = (w + n + 1) >> 1
    return w, n, nw, ne, ww, nn


@numba.njit(inline="always")
def blend(errs, sub, count, y, x, c, width):
    """The sub-predictions sub[:count] blended, each weighted by the inverse
    square of its errors at W, N, NW and NE (those that exist); and the
    weighted sum of the prediction's own |errors| there (the activity)."""
    cur = y & 1
    up = 1 - cur
    num = np.int64(0)
    den = np.int64(0)
    for i in range(count):
        e = np.int64(0)
        if x > 0:
            e += 2 * np.int64(errs[cur, x - 1, c, i])
        if y > 0:
            e += 2 * np.int64(errs[up, x, c, i])
            if x > 0:
                e += np.int64(errs[up, x - 1, c, i])
            if x + 1 < width:
                e += np.int64(errs[up, x + 1, c, i])
        wt = (np.int64(1) << 36) // (e + 1)
        num += wt * sub[i]
        den += wt
    act = np.int64(0)
    if x > 0:
        act += 2 * abs(np.int64(errs[cur, x - 1, c, N_BLEND]))
    if y > 0:
        act += 2 * abs(np.int64(errs[up, x, c, N_BLEND]))
        if x > 0:
            act += abs(np.int64(errs[up, x - 1, c, N_BLEND]))
        if x + 1 < width:
            act += abs(np.int64(errs[up, x + 1, c, N_BLEND]))
    return (num + (den >> 1)) // den, act


@numba.njit(inline="always")
def learn_counter(p, n, i, target):
    """A counter learns the bit (target: 0 or 2^16); its rate falls as 1 / (count + 1.5)."""
    cnt = np.int64(n[i])
    p[i] += ((target - p[i]) * RECIPROCALS[cnt]) >> 16
    n[i] = min(COUNT_LIMIT, cnt + 1)


@numba.njit(inline="always")
def learn_weight(wt, row, i, x, err):
    """A mixer weight learns (kept within +-W_LIMIT)."""
    wt[row, i] = min(W_LIMIT, max(-W_LIMIT, wt[row, i] + ((x * err + 32768) >> 16)))


@numba.njit(inline="always")
def decide(st, ctx, node, bit, coding):
    """One binary decision at ``node`` in the contexts ``ctx`` (the counters'
    rows, the mixer's row): encoded when ``bit`` >= 0, else
    decoded.  ``coding``: (decoding, enc, out, dec, data).  Returns the bit."""
    decoding, enc, out, dec, data = coding
    i0 = ctx[0] + node
    i1 = ctx[1] + node
    i2 = ctx[2] + node
    wrow = ctx[3] + node
    x0 = np.int64(STRETCH[st.p_act[i0] >> 4])
    x1 = np.int64(STRETCH[st.p_grad[i1] >> 4])
    x2 = np.int64(STRETCH[st.p_near[i2] >> 4])
    wt = st.weights
    dot = (wt[wrow, 0] * x0 + wt[wrow, 1] * x1 + wt[wrow, 2] * x2 + wt[wrow, 3] * BIAS) >> 16
    d = min(2047, max(-2047, dot))
    pm = np.int64(SQUASH[d + 2047])
    p16 = min(65535 - 32, max(32, pm * 16))
    if decoding:
        bit = bitcoder.decode_bit(dec, data, p16)
    else:
        bitcoder.encode_bit(enc, out, bit, p16)
    # learn: the counters, the mixer
    target = np.int64(bit) << 16
    learn_counter(st.p_act, st.n_act, i0, target)
    learn_counter(st.p_grad, st.n_grad, i1, target)
    learn_counter(st.p_near, st.n_near, i2, target)
    err = ((np.int64(bit) << 12) - pm) * MIX_LR
    learn_weight(wt, wrow, 0, x0, err)
    learn_weight(wt, wrow, 1, x1, err)
    learn_weight(wt, wrow, 2, x2, err)
    learn_weight(wt, wrow, 3, BIAS, err)
    return bit


@numba.njit(nogil=True)
def code_rows(st, img, y0, y1, bits, coding):
    """Code rows y0..y1-1 of ``img`` (uint16 (H, W, C), the coded values,
    each below 2^bits) on the coding side ``coding`` = (decoding, enc, out,
    dec, data); a decoder writes the values into ``img``.  Returns 0, or -1
    when a decoder meets a value out of range or runs more than 8 bytes past
    its data."""
    decoding = coding[0]
    dec = coding[3]
    height, width, colours = img.shape
    top = (np.int64(1) << bits) - 1
    sub = np.zeros(N_BLEND, np.int64)
    ctx = np.zeros(4, np.int64)
    for y in range(y0, y1):
        cur = y & 1
        up = 1 - cur
        for x in range(width):
            for c in range(colours):
                w, n, nw, ne, ww, nn = sub_predictions(img, y, x, c, top, sub, 0)
                count = N_SUB
                prev_err = np.int64(0)
                if c > 0:
                    sub_predictions(img, y, x, c - 1, top, sub, N_SUB)
                    here = np.int64(img[y, x, c - 1])
                    for i in range(N_SUB):
                        sub[N_SUB + i] = clamp(sub[i] + here - sub[N_SUB + i], top)
                    count = N_BLEND
                    prev_err = np.int64(st.errs[cur, x, c - 1, N_BLEND])   # the colour before's error here
                blended, act = blend(st.errs, sub, count, y, x, c, width)
                qa = min(Q_ACT - 1, half_octave(act))
                pred = clamp(blended, top)
                # the contexts
                grad = abs(w - nw) + abs(n - nw) + abs(ne - n) + abs(w - ww) + abs(n - nn)
                qg = min(Q_GRAD - 1, half_octave(grad))
                ew = np.int64(st.errs[cur, x - 1, c, N_BLEND]) if x > 0 else np.int64(0)
                en = np.int64(st.errs[up, x, c, N_BLEND]) if y > 0 else np.int64(0)
                if c == 0:
                    qn = min(20, half_octave(abs(ew))) * 21 + min(20, half_octave(abs(en)))
                else:
                    qn = min(20, half_octave(abs(prev_err))) * 21 + min(20, qa >> 1)
                ctx[0] = (c * Q_ACT + qa) * N_NODES
                ctx[1] = (c * Q_GRAD + qg) * N_NODES
                ctx[2] = (c * Q_NEAR + qn) * N_NODES
                ctx[3] = c * N_NODES
                # the residual's decisions
                if decoding:
                    value = np.int64(0)
                    r = np.int64(0)
                else:
                    value = np.int64(img[y, x, c])
                    r = value - pred
                m = abs(r)
                nonzero = decide(st, ctx, NODE_NONZERO, -1 if decoding else np.int64(m != 0), coding)
                if nonzero:
                    # the exponent e (1..bits) in unary: "e > k" for k = 1, 2, ...
                    e = np.int64(1)
                    if not decoding:
                        t = m
                        e = np.int64(0)
                        while t:
                            t >>= 1
                            e += 1
                    k = np.int64(1)
                    while k < bits:
                        more = decide(st, ctx, NODE_UNARY + k, -1 if decoding else np.int64(e > k), coding)
                        if not more:
                            break
                        k += 1
                    e = k
                    # the bits under the leading one
                    if decoding:
                        m = np.int64(1)
                    base = NODE_MANTISSA + 20 * e
                    first = np.int64(0)
                    for place in range(e - 1):
                        j = e - 2 - place
                        if place == 0:
                            node = base
                        elif place == 1:
                            node = base + 1 + first
                        else:
                            node = base + 1 + place
                        bit = decide(st, ctx, node, -1 if decoding else (m >> j) & 1, coding)
                        if place == 0:
                            first = bit
                        if decoding:
                            m = m * 2 + bit
                    # the sign, where both are possible
                    can_up = m <= top - pred
                    can_down = m <= pred
                    if can_up and can_down:
                        snode = NODE_SIGN + 3 * sign3(ew) + sign3(en)
                        neg = decide(st, ctx, snode, -1 if decoding else np.int64(r < 0), coding)
                    else:
                        neg = np.int64(0 if can_up else 1)
                    if decoding:
                        if not (can_up or can_down):
                            return -1
                        r = -m if neg else m
                if decoding:
                    value = pred + r
                    if dec[bitcoder.D_OVER] > 8:
                        return -1
                    img[y, x, c] = value
                # learn: each blend input's error, and the prediction's
                for i in range(count):
                    st.errs[cur, x, c, i] = abs(value - sub[i])
                st.errs[cur, x, c, N_BLEND] = value - pred
    return 0

