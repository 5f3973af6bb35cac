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

from .layers import U, block_size, head_input, head_output, horizontal, one_type, product_pairs, vertical, vertical_newest


class Geometry(NamedTuple):
    """The decoder's shape: the wavefront's lag (R + 1), the reach R, k//2,
    the image width, ring rows per strip, and the steps of outputs that V,
    LK and HB keep (``slots``)."""
    lag: int
    R: int
    k2: int
    width: int
    ring: int
    tv: int
    tlk: int
    th: int


class Positions(NamedTuple):
    """The positions of one step, in stream order: strip, row in strip,
    column, and image row."""
    b: np.ndarray
    i: np.ndarray
    j: np.ndarray
    rows: np.ndarray


class Rings(NamedTuple):
    """The decoder's buffers.  xi: the network's input rows (strips, rows,
    flat (padded column, channel)), 2x - 255 of the decoded sub-pixels below
    k2 + 1 zero rows.  Per layer, of the rows alive: the vertical stack's gate
    outputs V (L, tv, rows, p), its link terms LK (L, tlk, rows, 2p) and the
    horizontal stack's outputs HB (L, th, rows, p), all int16.  The output at
    column f of row i of strip b is kept in slot (f + i*lag) % T of its
    buffer (T: its ``slots``), row b*ring + i % ring.  What a step writes in
    one layer has one key f + i*lag, so it is one block, its rows in stream
    order: a step reads and writes these buffers in order, and what it
    touches stays in the caches (``slots``)."""
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


def slots(R: int, k2: int, lag: int) -> tuple[int, int, int]:
    """The steps of outputs that V, LK and HB keep (``Rings``): one more than
    the keys alive at once, since the one-state decoder's two threads may
    work one step apart (``kernels.handover``: its mixer thread computes
    step t + 1's frontiers while the network's computes step t's last
    colours).

    - V: step t writes layer l's vertical outputs at key t + R - (l+1)*k2,
      and layer l + 1 reads the k2 rows above and the row itself at columns
      f - k2..f + k2, keys down to k2*lag + 2*k2 below that.
    - LK: a link term written at step t has key t .. t + R - k2, and is read
      at the step of its key, when its position is decoded.
    - HB: a horizontal output is read by the k2 positions right of it in its
      row, in the next k2 steps.

    For the shipped models (R 8, k2 1) and a 768-pixel-wide image that is
    3.4 MB, against 18.4 MB for the rings of 24 columns per row that 0.13.3
    kept (V and HB stored twice, the link terms in int32), whose steps
    touched one row's memory 6 to 12 KB from the next: the decoder's
    network alone (one thread, 768x512) took 7.05 s with those and 6.04 s
    with these (AMD EPYC Zen 4; docs/mixer2.md, "0.13.4").
    """
    return k2 * lag + 2 * k2 + 2, R - k2 + 3, k2 + 2


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
    column f = t - i*lag + R - (l+1)*k2 of row i, if it lies in the image,
    into V and LK (``Rings``)."""
    n_all = len(i_of)
    block = block_size(n_all, min(threads, s.x.shape[0]), s.x.shape[1])
    for task in prange((n_all + block - 1) // block):
        first = task * block
        vertical_block(t, geo, b_of, i_of, one_type(first), one_type(min(n_all, first + block)), rings, net, cond, s,
                       one_type(task))


WHOLE, EARLY, NEWEST = 0, 1, 2     # ``frontier_block``'s parts of the vertical frontier


@njit(nogil=True)
def vertical_block(t, geo, b_of, i_of, first, last, rings, net, cond, s, task):
    """``vertical_step``'s work for the (strip, row) tasks first..last-1, in
    scratch row ``task``: every layer of each row's frontier column (a
    row's arithmetic never depends on the others in its block)."""
    frontier_block(t, geo, b_of, i_of, first, last, rings, net, cond, s, task, WHOLE,
                   np.zeros((1, 1, 1), np.int32))


@njit(inline="always")
def newest_pairs(net, p):
    """The input pairs of a layer >= 1's vertical product before its newest
    cell (row i, column f + k2: the last p of its inputs, ``frontier_block``),
    or 0 where there is no such layer or they do not end on a pair (odd p)."""
    if net.layer_ops.shape[0] < 2:
        return 0
    before = net.ops[net.layer_ops[1, 0], 2] - p
    return before // 2 if before % 2 == 0 else 0


@njit(nogil=True)
def frontier_block(t, geo, b_of, i_of, first, last, rings, net, cond, s, task, part, early):
    """``vertical_block`` in parts.  WHOLE: all of it.  EARLY (layers >= 1
    only, nothing written to the rings): of each layer's input product, the
    sum over every input but the newest cell, into early[l, e] (int32, e the
    row's task index).  In layer l >= 1 a row's window (rows i - k2..i,
    columns f - k2..f + k2 of layer l - 1's outputs) holds one output that
    step t computes, at row i, column f + k2; the rest were computed at step
    t - 1 or before, so EARLY may run as soon as step t - 1's frontier is
    done.  NEWEST: the frontier with those sums (``early`` as EARLY left it
    for step t): per layer >= 1 only the newest cell's products, added to
    them (``layers.vertical_newest``).  The same outputs as WHOLE."""
    lag, R, k2, width, ring, tv, tlk = geo.lag, geo.R, geo.k2, geo.width, geo.ring, geo.tv, geo.tlk
    xi, V, LK = rings.xi, rings.V, rings.LK
    L, rows, p = V.shape[0], V.shape[2], V.shape[3]
    p2 = 2 * p
    C = (xi.shape[2] // (width + 2 * k2))
    kw = 2 * k2 + 1
    xf, vf, lkf = xi.reshape(-1), V.reshape(-1), LK.reshape(-1)
    x_row, x_strip = xi.shape[2], xi.shape[1] * xi.shape[2]
    x, lk, vo, y = s.x[task], s.lk[task], s.g[task], s.y[task]
    k0 = newest_pairs(net, p)
    if k0 == 0:                 # no split: EARLY has nothing to do, NEWEST is WHOLE
        if part == EARLY:
            return
        part = WHOLE
    above = np.empty((last - first, k2 + 1), np.int64)   # the buffers' rows of rows i-k2..i (-1: above the strip)
    erows = np.empty(last - first, np.int64)             # the task index of each row gathered
    for e in range(first, last):
        b, i = b_of[e], i_of[e]
        for dy in range(k2 + 1):
            r = i - k2 + dy
            above[e - first, dy] = b * ring + r % ring if r >= 0 else -1
    for l in range(L):
        if l == 0 and part == EARLY:
            continue
        split = l > 0 and part != WHOLE
        key = t + R - (l + 1) * k2      # f + i*lag of every output of layer l at step t
        cin = C if l == 0 else p
        span = kw * cin
        n = one_type(0)
        for e in range(first, last):       # gather: rows (dy) x columns (dx) x channels, dy oldest first
            f = key - i_of[e] * lag
            if f < 0 or f >= width:
                continue
            erows[n] = e
            for dy in range(k2 + 1):
                if l == 0:
                    a = b_of[e] * x_strip + (i_of[e] + dy) * x_row + f * C
                    for k in range(span):
                        x[n, U(dy * span + k)] = xf[U(a + k)]
                    continue
                r = above[e - first, dy]
                for dx in range(kw):
                    newest = dy == k2 and dx == kw - 1
                    if split and newest != (part == NEWEST):
                        continue
                    o = 0 if part == NEWEST else dy * span + dx * p
                    col = f - k2 + dx
                    if r < 0 or col < 0 or col >= width:     # the padding around the image
                        for k in range(p):
                            x[n, U(o + k)] = 0
                    else:
                        a = (((l - 1) * tv + (key - k2 + dx - (k2 - dy) * lag) % tv) * rows + r) * p
                        for k in range(p):
                            x[n, U(o + k)] = vf[U(a + k)]
            n += 1
        if n == 0:
            continue
        if part == EARLY:
            product_pairs(net.layer_ops[l, 0], s.x32[task], n, net, y, one_type(0), k0)
            el = early[l]
            for q in range(n):
                eq, yq = el[erows[q]], y[q]
                for o in range(p2):
                    eq[o] = yq[o]
            continue
        if split:
            vertical_newest(l, n, net, cond, s, one_type(task), vo, k0, early[l], erows)
        else:
            vertical(l, n, net, cond, s, one_type(task), vo)
        n = one_type(0)
        lk_at = (l * tlk + key % tlk) * rows
        v_at = (l * tv + key % tv) * rows
        for e in range(first, last):       # scatter
            f = key - i_of[e] * lag
            if f < 0 or f >= width:
                continue
            r = above[e - first, k2]
            a = (lk_at + r) * p2
            for o in range(p2):
                lkf[U(a + o)] = np.int16(lk[n, o])
            a = (v_at + r) * p
            for ch in range(p):
                vf[U(a + ch)] = vo[n, ch]
            n += 1


@njit(parallel=True)
def horizontal_step(threads, c, geo, pos, out, prev, rings, step, net, s):
    """Colour c of every position ``pos`` being decoded: first the symbols
    ``prev`` of colour c - 1 (none at c = 0) go into the image ``out`` and
    rings.xi, as ``put_symbols`` writes them; then the horizontal stack rows of
    group c in every layer, the head, and the counts (``StepBuffers``, which
    keep the groups < c that earlier sub-steps of this step computed at the
    same positions).  It reads LK and HB and writes HB (``Rings``)."""
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
    lag, k2, ring, tlk, th = geo.lag, geo.k2, geo.ring, geo.tlk, geo.th
    xi, LK, HB = rings.xi, rings.LK, rings.HB
    b_of, i_of, j_of = pos.b, pos.i, pos.j
    G, SK = step.G, step.SK
    L, rows, p = HB.shape[0], HB.shape[2], HB.shape[3]
    p2 = 2 * p
    C = net.head_ops.shape[1]
    pg = p // C
    gc = c * pg                                  # group c's first channel
    xf, hbf, lkf = xi.reshape(-1), HB.reshape(-1), LK.reshape(-1)
    x_row, x_strip = xi.shape[2], xi.shape[1] * xi.shape[2]
    x, lk, hr = s.x[task], s.lk[task], s.hr[task]
    x_at = np.empty(n, np.int64)     # the inputs of layer 0 (row i, padded columns j..j+k2)
    own = np.empty(n, np.int64)      # the buffers' row of (b, i)
    key = np.empty(n, np.int64)      # j + i*lag
    for q in range(n):
        e = first + q
        b, i, j = b_of[e], i_of[e], j_of[e]
        x_at[q] = b * x_strip + (i + k2 + 1) * x_row + j * C
        own[q] = b * ring + i % ring
        key[q] = j + i * lag
    for l in range(L):
        if l == 0:
            span = (k2 + 1) * C
            for q in range(n):
                a = x_at[q]
                for k in range(span):
                    x[q, k] = xf[U(a + k)]
        else:
            for q in range(n):
                j = j_of[first + q]
                for dx in range(k2 + 1):         # columns j - k2..j, the centre last
                    o = dx * p
                    if j - k2 + dx < 0:          # the padding left of the image
                        for k in range(p):
                            x[q, U(o + k)] = 0
                    else:
                        a = (((l - 1) * th + (key[q] - k2 + dx) % th) * rows + own[q]) * p
                        for k in range(p):
                            x[q, U(o + k)] = hbf[U(a + k)]
                a = (((l - 1) * th + key[q] % th) * rows + own[q]) * p + gc   # the centre tap: group c of the
                for m in range(pg):                                          # residual stream
                    hr[q, U(gc + m)] = hbf[U(a + m)]
        for q in range(n):
            a = ((l * tlk + key[q] % tlk) * rows + own[q]) * p2 + gc
            for m in range(pg):
                lk[q, U(gc + m)] = lkf[U(a + m)]
                lk[q, U(p + gc + m)] = lkf[U(a + p + m)]
        horizontal(l, c, n, net, s, one_type(task), G[l], first, SK, first)
        for q in range(n):
            a = ((l * th + key[q] % th) * rows + own[q]) * p + gc
            for m in range(pg):
                hbf[U(a + m)] = np.int16(hr[q, U(gc + m)])
    k = (c + 1) * (SK.shape[1] // C)
    for q in range(n):
        head_input(SK[first + q], x[q], k, net.head_in)
    head_output(c, n, net, s, one_type(task), step.HID, first, step.counts, step.count_rows)
