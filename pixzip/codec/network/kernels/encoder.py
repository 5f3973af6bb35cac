"""The encoder's kernels: one parallel pass over a block of rows gives
their head inputs, and the head turns them into counts in stream order.

The encoder knows the whole image, so it runs the network layer by layer
over whole rows (CHUNK positions per matrix product), with the decoder's
per-layer routines (``layers``): the integers are the decoder's, whatever
the block size, the thread count or the tiling.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from ...contract import network_input
from . import gemm
from .layers import U, head_input, head_output, horizontal, one_type, vertical
from .program import Program

CHUNK = 64               # encoder positions per matrix product


@njit(parallel=True, nogil=True)
def full_pass(xi, k2, net, cond, s, SK, carry, carried, heads):
    """The encoder's pass over a block of rows, continuing from the rows above:
    ``xi`` (rows + k2 + 1, (W + 2k2) * C) holds 2x - 255 of the block's rows
    below the k2 + 1 rows above them, and ``carry`` (L, k2, (W + 2k2) * p)
    the vertical stack's gate outputs of each layer in the k2 rows above (zeros
    for both at the top of the image).  Fills ``heads`` (rows, W, skip) with
    the head inputs of the block's rows, which ``head_counts`` finishes, and
    ``carried`` (like ``carry``) with those of the block's last k2 rows, for
    the next block.  Layer by layer, each row CHUNK positions at a time, with
    the decoder's per-layer routines (``layers``).  The scratch ``s`` holds
    one task per row; SK is (rows, W', skip), W' >= W + 4; ``cond`` the
    (vertical, link) class biases."""
    rows = xi.shape[0] - k2 - 1
    C = net.head_ops.shape[1]
    W = xi.shape[1] // C - 2 * k2
    L = net.layer_ops.shape[0]
    p = s.hr.shape[2]
    kw = 2 * k2 + 1
    Vp = np.zeros((rows, (W + 2 * k2) * p), np.int16)
    Vc = np.zeros((rows, (W + 2 * k2) * p), np.int16)
    Hp = np.zeros((rows, (W + k2) * p), np.int16)
    Hc = np.zeros((rows, (W + k2) * p), np.int16)
    for l in range(L):
        cin = C if l == 0 else p
        vspan, hspan = kw * cin, (k2 + 1) * cin
        for r in prange(rows):
            x, g, hr = s.x[r], s.g[r], s.hr[r]
            for f0 in range(0, W, CHUNK):
                n = min(CHUNK, W - f0)
                # vertical stack (rows above, from the previous layer); indexed, not
                # sliced: a view per position costs a reference count shared by the threads
                for q in range(n):
                    a = (f0 + q) * cin
                    for dy in range(k2 + 1):
                        o = dy * vspan
                        rr = r - k2 + dy
                        if l == 0:
                            for k in range(vspan):
                                x[q, U(o + k)] = xi[U(r + dy), U(a + k)]
                        elif rr >= 0:
                            for k in range(vspan):
                                x[q, U(o + k)] = Vp[U(rr), U(a + k)]
                        else:
                            for k in range(vspan):
                                x[q, U(o + k)] = carry[U(l - 1), U(k2 + rr), U(a + k)]
                vertical(l, n, net, cond, s, one_type(r), g)
                for q in range(n):
                    a = (f0 + q + k2) * p
                    for ch in range(p):
                        Vc[r, U(a + ch)] = g[q, ch]
                # horizontal stack (this row, from the previous layer), with the link terms just made
                for q in range(n):
                    a = (f0 + q) * cin
                    if l == 0:
                        for k in range(hspan):
                            x[q, k] = xi[U(r + k2 + 1), U(a + k)]
                    else:
                        for k in range(hspan):
                            x[q, k] = Hp[r, U(a + k)]
                        a += k2 * p                 # the centre tap: the residual stream
                        for ch in range(p):
                            hr[q, ch] = Hp[r, U(a + ch)]
                for cc in range(C):
                    horizontal(l, cc, n, net, s, one_type(r), g, one_type(0), SK[r], f0)
                for q in range(n):
                    a = (f0 + q + k2) * p
                    for ch in range(p):
                        Hc[r, U(a + ch)] = np.int16(hr[q, ch])
        for d in range(k2):             # the last k2 rows of this layer's vertical stack
            rr = rows - k2 + d          # (element by element: an array assignment compiles its shape check's message)
            for a in range(carried.shape[2]):
                carried[l, d, a] = Vc[rr, a] if rr >= 0 else carry[l, k2 + rr, a]
        Vp, Vc = Vc, Vp
        Hp, Hc = Hc, Hp
    k = SK.shape[2]
    for r in prange(rows):
        for j in range(W):
            head_input(SK[r, j], heads[r, j], k, net.head_in)


@njit(parallel=True, nogil=True)
def head_counts(threads, heads, where, net, s, HID, out):
    """The encoder's counts, in stream order: for position e (head inputs at
    heads[strips[e], slots[e], cols[e]], ``where`` = (strips, slots, cols,
    dest)), out[dest[c, e]] = the counts of colour c.  CHUNK positions at a
    time; HID holds >= len(strips) + CHUNK rows."""
    strips, slots, cols, dest = where
    C = net.head_ops.shape[1]
    k = heads.shape[3]
    n_all = len(strips)
    chunks = (n_all + CHUNK - 1) // CHUNK
    tasks = min(threads, s.x.shape[0])
    for task in prange(tasks):
        x = s.x[task]
        for chunk in range(task, chunks, tasks):
            first = chunk * CHUNK
            n = min(CHUNK, n_all - first)
            for q in range(n):
                e = first + q
                b, r, j = strips[e], slots[e], cols[e]
                for ch in range(k):
                    x[q, ch] = heads[b, r, j, ch]
            for c in range(C):
                head_output(c, n, net, s, one_type(task), HID, first, out, dest[c])


class RowHeads:
    """The head inputs of an (H, W, C) uint8 image's rows, block after block
    from the top.  Each block's pass starts from the vertical stack's last
    rows of the block before, so no row is computed twice; ``counts`` turns
    the head inputs into the counts of ``IntGatedPixelCNN.counts`` of a full
    pass."""

    def __init__(self, prog: Program, pixels: np.ndarray, label: int | None = None):
        self.prog, self.pixels = prog, pixels
        self.cond = prog.conditioning(label)
        h, w, c = pixels.shape
        self.carry = np.zeros((prog.L, prog.k2, (w + 2 * prog.k2) * prog.p), np.int16)
        self.next = 0   # the first row not computed yet

    def rows(self, stop: int) -> np.ndarray:
        """Head inputs (rows, W, skip') int16 of rows [next, stop), then next = stop."""
        prog, k2 = self.prog, self.prog.k2
        start = self.next
        h, w, c = self.pixels.shape
        rows = stop - start
        xi = np.zeros((rows + k2 + 1, w + 2 * k2, c), np.int16)
        top = max(0, start - k2 - 1)          # the rows above the block that layer 0 reads
        xi[k2 + 1 - (start - top):, k2:k2 + w] = network_input(self.pixels[top:stop].astype(np.int16))
        heads = np.zeros((rows, w, prog.head_width), np.int16)
        SK = np.zeros((rows, gemm.padded(w) + CHUNK, prog.skip), np.float64)
        carried = np.empty_like(self.carry)
        full_pass(xi.reshape(rows + k2 + 1, -1), k2, prog.weights, self.cond, prog.scratch(rows, CHUNK), SK,
                  self.carry, carried, heads)
        self.carry, self.next = carried, stop
        return heads


def row_heads(prog: Program, pixels: np.ndarray, start: int, stop: int, label: int | None = None) -> np.ndarray:
    """Head inputs (stop-start, W, skip') int16 of rows [start, stop) of an
    (H, W, C) uint8 image on their own: from one pass over them and a halo of
    the rows above that they can see."""
    top = max(0, start - prog.model.rows_above)
    return RowHeads(prog, pixels[top:stop], label).rows(stop - top)[start - top:]


def counts(prog: Program, heads: np.ndarray, strips, slots, cols, dest: np.ndarray, n_symbols: int,
           out: np.ndarray | None = None) -> np.ndarray:
    """Counts (n_symbols, 256) float64 from head inputs ``heads`` (strips, slots,
    W, skip'): position e's colour c goes to row dest[e, c].  ``out``: an
    (n_symbols, 256) float64 C-contiguous array to write them into."""
    if out is None:
        out = np.empty((n_symbols, 256), np.float64)
    elif out.shape != (n_symbols, 256) or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError("out must be a C-contiguous (n_symbols, 256) float64 array")
    threads = numba.get_num_threads()
    HID = np.zeros((gemm.padded(len(strips)) + CHUNK, gemm.even(prog.hidden)), np.int16)
    where = (strips, slots, cols, np.ascontiguousarray(dest.T))    # dest[c] contiguous, as the decoder's rows
    head_counts(threads, heads, where, prog.weights, prog.scratch(threads, CHUNK), HID, out)
    return out
