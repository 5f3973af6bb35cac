"""The decoder's step kernels: the vertical frontier of one wavefront step,
and one colour sub-step of the horizontal stack, the head and the counts.

Python never runs per position: one call computes the vertical frontier of
a step (every row, every layer), and one call per colour computes the
horizontal stack, the head and the counts of every position being decoded.
Blocks of positions are spread over threads (``prange``); a position's
arithmetic never depends on its block, so the thread count and the block
size cannot change a result.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from .layers import U, block_size, head_input, head_output, horizontal, one_type, vertical


class Geometry(NamedTuple):
    """The decoder's shape: the wavefront's lag (R + 1), the reach R, k//2,
    the image width, ring rows per strip (``zero``: the slot that stays
    zero, for rows above a strip) and columns kept per row (``column_ring``)."""
    lag: int
    R: int
    k2: int
    width: int
    ring: int
    zero: int
    cw: int


class Positions(NamedTuple):
    """The positions of one step, in stream order: strip, row in strip,
    column, and image row."""
    b: np.ndarray
    i: np.ndarray
    j: np.ndarray
    rows: np.ndarray


class Rings(NamedTuple):
    """The decoder's row buffers, per strip: the network's input rows xi
    (strips, rows, flat (padded column, channel)), 2x - 255 of the decoded
    sub-pixels below k2 + 1 zero rows; and per layer the vertical stack's gate
    outputs V, its link terms LK and the horizontal stack's rows HB, each row a
    ring of columns (``column_ring``)."""
    xi: np.ndarray
    V: np.ndarray
    LK: np.ndarray
    HB: np.ndarray


class StepBuffers(NamedTuple):
    """What a step's colour sub-steps share at its positions: the gate
    outputs G (L, n, p), the skip sums SK (n, skip), the head's hidden rows
    HID (n, hidden) (G and HID int16, rows of an even length, read as int32
    pairs), and the counts (n, 256), position q's in counts[count_rows[q]]."""
    G: np.ndarray
    SK: np.ndarray
    HID: np.ndarray
    counts: np.ndarray
    count_rows: np.ndarray


def column_ring(R: int, k2: int, lag: int) -> int:
    """Columns the decoder keeps per row and layer (DESIGN §4).  A row of V or
    HB is a ring of cw columns (padded index col at slot col % cw) stored
    twice, so that any window of up to cw consecutive columns is one
    contiguous run starting at slot col % cw.  A vertical
    output is read by the k2 rows below until their frontier, k2*lag + k2
    columns behind, has passed it; a link term waits up to R columns to be
    used; each write also clears up to k2 padding columns.  Any window it
    reads is at most 2*k2 + 1 columns wide."""
    return R + k2 * lag + 3 * k2 + 4


@njit(inline="always")
def _flat_rings(xi, A, LK, cw, p):
    """Flat views of the decoder's buffers, to index at offsets computed once
    per position (a view per position and layer costs a reference count):
    (xi, A, LK flattened; xi's row and strip strides; the row and layer
    strides of the column ring A (V or HB: layers, strips, ring rows, row) and
    of LK; ring rows per strip; the offset of A's second copy of its ring)."""
    return (xi.reshape(-1), A.reshape(-1), LK.reshape(-1), xi.shape[2], xi.shape[1] * xi.shape[2],
            A.shape[3], A.shape[1] * A.shape[2] * A.shape[3], LK.shape[3], LK.shape[1] * LK.shape[2] * LK.shape[3],
            A.shape[2], cw * p)


@njit
def put_symbols(out, xi, pos, c, k2, symbols):
    """Write the decoded colour c of each position: out[rows, j, c] (the
    image) and 2x - 255 into the network's input rows xi[b, i + k2 + 1]."""
    C = out.shape[2]
    for q in range(len(symbols)):
        v = symbols[q]
        if v < 0 or v > 255:
            raise ValueError("a decoded symbol is not a sub-pixel value")
        j = pos.j[q]
        out[pos.rows[q], j, c] = v
        xi[pos.b[q], pos.i[q] + k2 + 1, (j + k2) * C + c] = 2 * v - 255


@njit(parallel=True)
def vertical_step(threads, t, geo, b_of, i_of, rings, net, cond, s):
    """The vertical frontier of step t: for every (strip, row) task and layer l,
    column f = t - i*lag + R - (l+1)*k2 of row i, if it lies in the image.
    Rows of V are column rings of padded columns f + k2, rows of LK rings of
    cw columns f (``Rings``)."""
    n_all = len(i_of)
    block = block_size(n_all, min(threads, s.x.shape[0]), s.x.shape[1])
    for task in prange((n_all + block - 1) // block):
        first = task * block
        vertical_block(t, geo, b_of, i_of, one_type(first), one_type(min(n_all, first + block)), rings, net, cond, s,
                       one_type(task))


@njit(nogil=True)
def vertical_block(t, geo, b_of, i_of, first, last, rings, net, cond, s, task):
    """``vertical_step``'s work for the (strip, row) tasks first..last-1, in
    scratch row ``task``: every layer of each row's frontier column (a
    row's arithmetic never depends on the others in its block)."""
    lag, R, k2, width, ring, zero, cw = geo
    xi, V, LK = rings.xi, rings.V, rings.LK
    L = V.shape[0]
    p2 = s.lk.shape[2]
    p = p2 // 2
    C = (xi.shape[2] // (width + 2 * k2))
    kw = 2 * k2 + 1
    xf, vf, lkf, x_row, x_strip, v_row, v_layer, l_row, l_layer, slots, half = _flat_rings(xi, V, LK, cw, p)
    x, lk, vo = s.x[task], s.lk[task], s.g[task]
    above = np.empty((last - first, k2 + 1), np.int64)   # ring rows i-k2..i of each position's strip
    own = np.empty(last - first, np.int64)
    for e in range(first, last):
        b, i = b_of[e], i_of[e]
        for dy in range(k2 + 1):
            r = i - k2 + dy
            above[e - first, dy] = (b * slots + (r % ring if r >= 0 else zero)) * v_row
        own[e - first] = b * slots + i % ring
    for l in range(L):
        off = R - (l + 1) * k2
        cin = C if l == 0 else p
        span = kw * cin
        n = one_type(0)
        for e in range(first, last):       # gather: rows (dy) x columns (dx) x channels, dy oldest first
            f = t - i_of[e] * lag + off
            if f < 0 or f >= width:
                continue
            for dy in range(k2 + 1):
                if l == 0:
                    a = b_of[e] * x_strip + (i_of[e] + dy) * x_row + f * C
                    for k in range(span):
                        x[n, U(dy * span + k)] = xf[U(a + k)]
                else:
                    a = (l - 1) * v_layer + above[e - first, dy] + (f % cw) * p
                    for k in range(span):
                        x[n, U(dy * span + k)] = vf[U(a + k)]
            n += 1
        if n == 0:
            continue
        vertical(l, n, net, cond, s, one_type(task), vo)
        n = one_type(0)
        for e in range(first, last):       # scatter
            f = t - i_of[e] * lag + off
            if f < 0 or f >= width:
                continue
            row = own[e - first]
            a = l * l_layer + row * l_row + (f % cw) * p2
            for o in range(p2):
                lkf[U(a + o)] = np.int32(lk[n, o])
            a = l * v_layer + row * v_row
            sl = ((f + k2) % cw) * p
            for ch in range(p):
                vf[U(a + sl + ch)] = vo[n, ch]
                vf[U(a + sl + half + ch)] = vo[n, ch]
            if f == 0:                      # the padding left of the image: padded columns 0..k2-1
                for ch in range(k2 * p):
                    vf[U(a + ch)] = 0
                    vf[U(a + half + ch)] = 0
            if f == width - 1:              # and right of it: padded columns width+k2..width+2k2-1
                for e2 in range(k2):
                    sl = ((width + k2 + e2) % cw) * p
                    for ch in range(p):
                        vf[U(a + sl + ch)] = 0
                        vf[U(a + sl + half + ch)] = 0
            n += 1


@njit(parallel=True)
def horizontal_step(threads, c, geo, pos, out, prev, rings, step, net, s):
    """Colour c of every position ``pos`` being decoded: first the symbols
    ``prev`` of colour c - 1 (none at c = 0) go into the image ``out`` and
    rings.xi, as ``put_symbols`` writes them; then the horizontal stack rows of
    group c in every layer, the head, and the counts (``StepBuffers``, which
    keep the groups < c that earlier sub-steps of this step computed at the
    same positions).  Rows of HB are column rings of padded columns j + k2,
    rows of LK rings of cw columns j (``Rings``)."""
    if len(prev):
        put_symbols(out, rings.xi, pos, c - 1, geo.k2, prev)
    n_all = len(pos.i)
    block = block_size(n_all, min(threads, s.x.shape[0]), s.x.shape[1])
    for task in prange((n_all + block - 1) // block):
        first = task * block
        horizontal_block(c, geo, pos, one_type(first), one_type(min(n_all, first + block) - first), rings, step, net, s,
                         one_type(task))


@njit(nogil=True)
def horizontal_block(c, geo, pos, first, n, rings, step, net, s, task):
    """``horizontal_step``'s work for the n positions from ``first`` on, in
    scratch row ``task``: group c of every layer's horizontal stack, the
    head and the counts (a position's arithmetic never depends on the others
    in its block)."""
    k2, ring, cw = geo.k2, geo.ring, geo.cw
    xi, LK, HB = rings.xi, rings.LK, rings.HB
    b_of, i_of, j_of = pos.b, pos.i, pos.j
    G, SK = step.G, step.SK
    L = HB.shape[0]
    p = s.hr.shape[2]
    p2 = 2 * p
    C = net.head_ops.shape[1]
    pg = p // C
    gc = c * pg                                  # group c's first channel
    xf, hbf, lkf, x_row, x_strip, h_row, h_layer, l_row, l_layer, slots, half = _flat_rings(xi, HB, LK, cw, p)
    x, lk, hr = s.x[task], s.lk[task], s.hr[task]
    x_at = np.empty(n, np.int64)     # the inputs of layer 0 (row i, padded columns j..j+k2)
    h_row_at = np.empty(n, np.int64)  # ring row of (b, i) in a layer of HB
    h_at = np.empty(n, np.int64)     # its window of padded columns j..j+k2 in HB
    put_at = np.empty(n, np.int64)   # group c of padded column j+k2 in HB
    l_at = np.empty(n, np.int64)     # group c of column j in LK
    for q in range(n):
        e = first + q
        b, i, j = b_of[e], i_of[e], j_of[e]
        row = b * slots + i % ring
        x_at[q] = b * x_strip + (i + k2 + 1) * x_row + j * C
        h_row_at[q] = row * h_row
        h_at[q] = row * h_row + (j % cw) * p
        put_at[q] = row * h_row + ((j + k2) % cw) * p + gc
        l_at[q] = row * l_row + (j % cw) * p2 + gc
    for l in range(L):
        if l == 0:
            span = (k2 + 1) * C
            for q in range(n):
                a = x_at[q]
                for k in range(span):
                    x[q, k] = xf[U(a + k)]
        else:
            span = (k2 + 1) * p
            for q in range(n):
                a = (l - 1) * h_layer + h_at[q]
                for k in range(span):
                    x[q, k] = hbf[U(a + k)]
                a += k2 * p + gc     # the centre tap: group c of the residual stream
                for m in range(pg):
                    hr[q, U(gc + m)] = hbf[U(a + m)]
        for q in range(n):
            a = l * l_layer + l_at[q]
            for m in range(pg):
                lk[q, U(gc + m)] = lkf[U(a + m)]
                lk[q, U(p + gc + m)] = lkf[U(a + p + m)]
        horizontal(l, c, n, net, s, one_type(task), G[l], first, SK, first)
        for q in range(n):
            a = l * h_layer + put_at[q]
            for m in range(pg):
                v = np.int16(hr[q, U(gc + m)])
                hbf[U(a + m)] = v
                hbf[U(a + half + m)] = v
            if c == 0 and j_of[first + q] == 0:    # the padding left of the image
                a = l * h_layer + h_row_at[q]
                for e2 in range(k2 * p):
                    hbf[U(a + e2)] = 0
                    hbf[U(a + half + e2)] = 0
    k = (c + 1) * (SK.shape[1] // C)
    for q in range(n):
        head_input(SK[first + q], x[q], k, net.head_in)
    head_output(c, n, net, s, one_type(task), step.HID, first, step.counts, step.count_rows)
