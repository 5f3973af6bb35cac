"""Compiled kernels of the integer network, in exact arithmetic (numba): the
decoder's step at the positions of one wavefront step, and the encoder's full
pass over a block of rows.

Every layer is a matrix product of int16 activations and int16 weights summed
in int32 (``simd.gemm``), over a block of positions at once.  The packer
recomputes each layer's bound sum|w| * max|a| from the weights and refuses a
model where it reaches 2^31, so no sum can wrap.  Requantization is
``floor(acc * scale + offset)`` in float64, the formula of ``intnet``: the
packer checks that every product and sum in it stays below 2^53, so it is
exact, and its order and fusion cannot change the result.  These kernels
therefore give bit-for-bit the integers of ``IntGatedPixelCNN.logits``; the
exactness tests compare the two on every sub-pixel.

The decoder and the encoder run the same per-layer routines (``_vertical``,
``_horizontal``, ``_head_input``, ``_head_output``) on blocks of positions; only the gathering of
inputs and the scattering of outputs differ.  Python never runs per position:
one call computes the vertical frontier of a step (every row, every layer),
and one call per colour computes the horizontal stack, the head and the counts
of every position being decoded.  Blocks of positions are spread over threads
(``prange``); a position's arithmetic never depends on its block, so the
thread count and the block size cannot change a result.

Colour groups are contiguous blocks of channels, and the masks let group c
read only groups <= c at the current position.  A colour sub-step therefore
computes only the rows of group c, over the prefix of inputs its mask allows
(the packer checks that every weight it drops is zero).
"""
from __future__ import annotations

import math
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

from . import intnet, simd
from .intnet import ACT_MAX, GATE_LIMIT, SKIP_LIMIT, TERM_LIMIT, IntGatedPixelCNN

ACC_LIMIT = 1 << 31      # int32 accumulators
EXACT_F64 = 2.0 ** 53    # float64 requantization
LOGIT_LIMIT = 2.0 ** 30  # logits are int32
U = np.uint64            # an index known to be >= 0: numba skips its wraparound check
MIN_BLOCK = 16           # fewest decoder positions per thread task
CHUNK = 64               # encoder positions per matrix product


class Program:
    """An integer network packed into flat arrays for the kernels.

    ``ops[q] = (weight offset, rows, inputs, row-parameter offset, input pairs,
    padded rows)``: op q's weights are ``w[offset:]`` as packed by
    ``simd.pack``; row r has requantization scale and offset
    ``scale/offset[poff + r]`` (float64)."""

    def __init__(self, net: IntGatedPixelCNN):
        self.net = net
        cfg, t = net.config, net.tensors
        C, p, L, k2 = net.colors, net.p, net.layers, net.k2
        self.C, self.p, self.L, self.k2 = C, p, L, k2
        self.skip = net.skip_channels
        self.hidden = t["head1.w"].shape[0]
        self._w, self._scale, self._offset, self._ops = [], [], [], []
        self._woff = self._poff = 0
        pg, sg, hg = p // C, self.skip // C, self.hidden // C

        def rows(prefix, max_in):
            w = np.asarray(t[prefix + ".w"], dtype=np.int64)
            b = np.asarray(t[prefix + ".b"], np.int64)
            m = np.asarray(t[prefix + ".m"], np.int64)
            shift = int(cfg["shift"][prefix])
            if not 1 <= shift <= 62:
                raise ValueError(f"layer {prefix}: shift {shift} out of range")
            acc = np.abs(w).reshape(w.shape[0], -1).sum(axis=1) * max_in
            if acc.max() >= ACC_LIMIT:
                raise ValueError(f"layer {prefix}: accumulator bound {acc.max():.3g} does not fit in int32")
            half = 1 << (shift - 1)
            if np.any((acc + np.abs(b)) * np.abs(m) + half >= EXACT_F64):
                raise ValueError(f"layer {prefix}: requantization is not exact in float64")
            if prefix == "head2" and np.any(np.ldexp((acc + np.abs(b)) * np.abs(m) + half, -shift) >= LOGIT_LIMIT):
                raise ValueError("head2: logits may not fit in int32")
            scale = np.ldexp(m.astype(np.float64), -shift)
            offset = np.ldexp((b * m + half).astype(np.float64), -shift)
            return w, scale, offset

        def add(parts, keep_inputs):
            """One op from (layer rows, row indices) parts, inputs cut to keep_inputs."""
            w = np.concatenate([r[0][idx] for r, idx in parts])
            if np.any(w[:, keep_inputs:]):
                raise ValueError("a masked weight that the decoder skips is not zero")
            packed, pairs, padded = simd.pack(w[:, :keep_inputs].astype(np.int16))
            self._ops.append((self._woff, w.shape[0], keep_inputs, self._poff, pairs, padded))
            self._w.append(packed)
            self._scale.append(np.concatenate([r[1][idx] for r, idx in parts]))
            self._offset.append(np.concatenate([r[2][idx] for r, idx in parts]))
            self._woff += packed.size
            self._poff += w.shape[0]
            return len(self._ops) - 1

        every = lambda n: np.arange(n)  # noqa: E731
        group = lambda g, size, base=0: np.arange(base + g * size, base + (g + 1) * size)  # noqa: E731
        self.v_ops, self.link_ops, self.h_ops, self.so_ops = [], [], [], []
        for l in range(L):
            cin = C if l == 0 else p
            x_max = 255 if l == 0 else ACT_MAX   # layer 0 reads 2x - 255
            # vertical conv: weight (2p, cin, k2+1, k) -> inputs ordered (dy, dx, cin)
            v = rows(f"v_conv.{l}", x_max)
            v = (v[0].reshape(2 * p, cin, k2 + 1, 2 * k2 + 1).transpose(0, 2, 3, 1).reshape(2 * p, -1),) + v[1:]
            self.v_ops.append(add([(v, every(2 * p))], v[0].shape[1]))
            self.link_ops.append(add([(rows(f"link.{l}", GATE_LIMIT), every(2 * p))], 2 * p))
            # horizontal conv: weight (2p, cin, 1, k2+1) -> inputs ordered (dx, cin); centre tap last
            h = rows(f"h_conv.{l}", x_max)
            h = (h[0].reshape(2 * p, cin, k2 + 1).transpose(0, 2, 1).reshape(2 * p, -1),) + h[1:]
            sk, ho = rows(f"skip.{l}", ACT_MAX), rows(f"h_out.{l}", ACT_MAX)
            hs, ss = [], []
            for c in range(C):
                seen = (c if l == 0 else c + 1) if C > 1 else (0 if l == 0 else 1)
                centre = seen * (cin // C) if C > 1 else seen * cin
                hs.append(add([(h, np.concatenate([group(c, pg), group(c, pg, p)]))], k2 * cin + centre))
                ss.append(add([(sk, group(c, sg)), (ho, group(c, pg))], (c + 1) * pg))
            self.h_ops.append(hs)
            self.so_ops.append(ss)
        h1, h2 = rows("head1", ACT_MAX), rows("head2", ACT_MAX)
        self.head1_ops = [add([(h1, group(c, hg))], (c + 1) * sg) for c in range(C)]
        self.head2_ops = [add([(h2, group(c, 256))], (c + 1) * hg) for c in range(C)]

        self.w = simd.zeros(self._woff, np.int16)   # every op starts on a cache line (see simd.pack)
        self.w[:] = np.concatenate(self._w)
        self.scale = np.concatenate(self._scale)
        self.offset = np.concatenate(self._offset)
        self.ops = np.array(self._ops, dtype=np.int64)
        self.layer_ops = np.array([[self.v_ops[l], self.link_ops[l]] + self.h_ops[l] + self.so_ops[l]
                                   for l in range(L)], dtype=np.int64)        # (L, 2 + 2C)
        self.head_ops = np.array([self.head1_ops, self.head2_ops], dtype=np.int64)  # (2, C)
        # gate and head-input requantizations: floor(x * scale + 1/2)
        table_max = float(np.abs(t["tanh"]).max()) * float(np.abs(t["sigmoid"]).max())
        gm, gs = cfg["gate_mult"], cfg["gate_shift"]
        scalars = [(gm[i], gs[i], table_max) for i in range(2 * L)]
        scalars.append((cfg["head_in_mult"], cfg["head_in_shift"], SKIP_LIMIT))
        for m, s, top in scalars:
            if top * abs(int(m)) + 2.0 ** (int(s) - 1) >= EXACT_F64:
                raise ValueError("a gate or head requantization is not exact in float64")
        self.gates = np.array([[math.ldexp(gm[2 * l], -gs[2 * l]), math.ldexp(gm[2 * l + 1], -gs[2 * l + 1])]
                               for l in range(L)], np.float64)               # (L, 2): vertical, horizontal
        self.head_in = math.ldexp(cfg["head_in_mult"], -cfg["head_in_shift"])
        self.tanh = np.asarray(t["tanh"], np.float64)
        self.sigmoid = np.asarray(t["sigmoid"], np.float64)
        self.exp = np.asarray(t["exp"], np.float64)    # counts, exact integers (the coder's dtype)
        self.width_in = 2 * int(self.ops[:, 4].max())   # int16 columns of an input buffer
        self.head_width = simd.even(self.skip)               # int16 columns of a head input
        self.width_out = int(self.ops[:, 5].max())      # int32 columns of an output buffer

    @property
    def weights(self) -> tuple:
        return self.w, self.ops, self.scale, self.offset

    def conditioning(self, label: int | None) -> tuple[np.ndarray, np.ndarray]:
        """(vertical, link) class biases (L, 2p) for a label; zeros without one."""
        net = self.net
        if net.n_classes and label is not None:
            return (np.ascontiguousarray(net.v_cond[label].numpy(), dtype=np.float64),
                    np.ascontiguousarray(net.h_cond[label].numpy(), dtype=np.float64))
        z = np.zeros((self.L, 2 * self.p), np.float64)
        return z, z.copy()


def program(net: IntGatedPixelCNN) -> Program:
    """The net packed for the kernels (built once per loaded model)."""
    prog = getattr(net, "_program", None)
    if prog is None:
        prog = net._program = Program(net)
    return prog


class Scratch:
    """Per-task working buffers of the kernels: ``tasks`` tasks of up to
    ``rows`` positions each.  Input buffers are int16 with an int32 view of
    their pairs."""

    def __init__(self, prog: Program, tasks: int, rows: int):
        rows = simd.padded(rows)
        p2 = 2 * prog.p
        self.x = simd.zeros((tasks, rows, prog.width_in), np.int16)          # layer inputs
        self.z = simd.zeros((tasks, rows, simd.even(p2)), np.int16)              # link inputs
        self.g = simd.zeros((tasks, rows, simd.even(prog.p)), np.int16)          # gate outputs
        self.y = simd.zeros((tasks, rows, max(prog.width_out, 256)), np.int32)  # matrix products (rows of 64 B)
        self.t = np.zeros((tasks, rows, p2), np.int32)                     # gate table indices
        self.lk = np.zeros((tasks, rows, p2), np.float64)                  # link terms
        self.hr = np.zeros((tasks, rows, prog.p), np.float64)              # residual stream

    @staticmethod
    def bytes_per_row(prog: Program) -> int:
        """Bytes of one task's buffers per position (the shapes above)."""
        p2 = 2 * prog.p
        return (2 * prog.width_in + 2 * simd.even(p2) + 2 * simd.even(prog.p) + 4 * max(prog.width_out, 256)
                + 4 * p2 + 8 * p2 + 8 * prog.p)

    def args(self) -> tuple:
        return (self.x, self.x.view(np.int32), self.z, self.z.view(np.int32), self.g, self.g.view(np.int32),
                self.y, self.t, self.lk, self.hr)


# Loops below index 1-D views that start at 0 with a range() variable, so
# numba can drop its negative-index checks and LLVM can vectorize them.
_GL, _TL, _AM, _SL = float(GATE_LIMIT), float(TERM_LIMIT), float(ACT_MAX), float(SKIP_LIMIT)


@njit(inline="always")
def _index(a):
    """The gate tables' index of a pre-activation a, an integer in [-GATE_LIMIT, GATE_LIMIT]."""
    return np.int32(a + _GL)


@njit(inline="always")
def _gate(ia, ib, tanh, sigmoid, scale):
    # ia, ib are table indices (_index); an unsigned index skips numba's wraparound check
    x = tanh[np.uint32(ia)] * sigmoid[np.uint32(ib)]
    return np.int16(min(max(np.floor(x * scale + 0.5), -_AM), _AM))


@njit(inline="always")
def _product(op, x32, x0, n, w, ops, y):
    simd.gemm(x32, x0, n, w, ops[op, 0], ops[op, 4], ops[op, 5], y)


@njit(cache=True, nogil=True)
def _vertical(l, n, x32, w, ops, scale, offset, layer_ops, gates, tanh, sigmoid, vcond, lcond,
              z, z32, y, t, lk, v_out):
    """Vertical stack of layer l at n positions whose inputs are in x32:
    link terms -> lk[:n], gate outputs -> v_out[:n] (both per position);
    t (int32) holds the gate's table indices."""
    p2 = lk.shape[1]
    p = p2 // 2
    vc, lc = vcond[l], lcond[l]
    op = layer_ops[l, 0]
    sc, of = scale[ops[op, 3]:ops[op, 3] + p2], offset[ops[op, 3]:ops[op, 3] + p2]
    _product(op, x32, 0, n, w, ops, y)
    for q in range(n):
        for o in range(p2):
            v = min(max(np.floor(y[q, o] * sc[o] + of[o]), -_GL), _GL)
            z[q, o] = np.int16(v)
            t[q, o] = _index(min(max(v + vc[o], -_GL), _GL))
    op = layer_ops[l, 1]
    sc, of = scale[ops[op, 3]:ops[op, 3] + p2], offset[ops[op, 3]:ops[op, 3] + p2]
    _product(op, z32, 0, n, w, ops, y)
    for q in range(n):
        yq, lq = y[q], lk[q]
        for o in range(p2):
            lq[o] = min(max(np.floor(yq[o] * sc[o] + of[o]) + lc[o], -_TL), _TL)
    s = gates[l, 0]
    for q in range(n):
        for ch in range(p):
            v_out[q, ch] = _gate(t[q, ch], t[q, U(p + ch)], tanh, sigmoid, s)


@njit(cache=True, nogil=True)
def _horizontal(l, c, n, x32, w, ops, scale, offset, layer_ops, gates, tanh, sigmoid,
                lk, g, g32, g0, sk, s0, y, hr, t):
    """Colour c of the horizontal stack of layer l at n positions whose inputs
    are in x32 and link terms in lk: gate outputs of group c -> g[g0:g0+n],
    skip terms of group c added to sk[s0:s0+n] (set at layer 0), and group c of
    the residual stream, read from hr (layers > 0) and written back to it.
    t (int32) holds the gate's table indices."""
    p = hr.shape[1]
    C = layer_ops.shape[1] // 2 - 1
    pg, sg = p // C, sk.shape[1] // C
    op = layer_ops[l, 2 + c]
    q0 = ops[op, 3]
    sa, oa = scale[q0:q0 + pg], offset[q0:q0 + pg]
    sb, ob = scale[q0 + pg:q0 + 2 * pg], offset[q0 + pg:q0 + 2 * pg]
    _product(op, x32, 0, n, w, ops, y)
    s = gates[l, 1]
    ga, gb = c * pg, p + c * pg
    for q in range(n):
        for m in range(pg):
            a = min(max(np.floor(y[q, m] * sa[m] + oa[m]), -_TL), _TL)
            b = min(max(np.floor(y[q, U(pg + m)] * sb[m] + ob[m]), -_TL), _TL)
            t[q, m] = _index(min(max(a + lk[q, U(ga + m)], -_GL), _GL))
            t[q, U(pg + m)] = _index(min(max(b + lk[q, U(gb + m)], -_GL), _GL))
        gi = U(g0 + q)
        for m in range(pg):
            g[gi, U(ga + m)] = _gate(t[q, m], t[q, U(pg + m)], tanh, sigmoid, s)
    op = layer_ops[l, 2 + C + c]
    q0 = ops[op, 3]
    ss, os_ = scale[q0:q0 + sg], offset[q0:q0 + sg]
    sh, oh = scale[q0 + sg:q0 + sg + pg], offset[q0 + sg:q0 + sg + pg]
    _product(op, g32, g0, n, w, ops, y)
    ks = c * sg
    for q in range(n):
        sq = U(s0 + q)
        if l == 0:              # layer 0 starts the skip sum and the residual stream
            for m in range(sg):
                sk[sq, U(ks + m)] = np.floor(y[q, m] * ss[m] + os_[m])
            for m in range(pg):
                hr[q, U(ga + m)] = min(max(np.floor(y[q, U(sg + m)] * sh[m] + oh[m]), -_AM), _AM)
        else:
            for m in range(sg):
                sk[sq, U(ks + m)] += np.floor(y[q, m] * ss[m] + os_[m])
            for m in range(pg):
                hr[q, U(ga + m)] = min(max(np.floor(y[q, U(sg + m)] * sh[m] + oh[m]) + hr[q, U(ga + m)], -_AM), _AM)


@njit(inline="always")
def _head_input(sk, x, k, head_in):
    """x[:k] = the head's input from skip sums sk[:k] (clamped, requantized)."""
    for ch in range(k):
        a = min(max(sk[ch], -_SL), _SL)
        x[ch] = np.int16(min(max(np.floor(a * head_in + 0.5), 0.0), _AM))


@njit(cache=True, nogil=True)
def _head_output(c, n, x32, hid, hid32, h0, w, ops, scale, offset, head_ops, exp, y, out, rows):
    """The head for colour c at n positions whose head inputs are in x32:
    out[rows[h0 + q], :256] = the counts of position q, exp[gap] where gap is
    each level's logit's distance to the largest, clamped where counts stay 1.
    hid[h0:h0+n] holds the hidden rows (groups < c kept from earlier colours)."""
    emax = len(exp) - 1
    C = head_ops.shape[1]
    hg = hid.shape[1] // C
    op = head_ops[0, c]
    sc, of = scale[ops[op, 3]:ops[op, 3] + hg], offset[ops[op, 3]:ops[op, 3] + hg]
    _product(op, x32, 0, n, w, ops, y)
    for q in range(n):
        yq, hq = y[q], hid[h0 + q][c * hg:(c + 1) * hg]
        for m in range(hg):
            hq[m] = np.int16(min(max(np.floor(yq[m] * sc[m] + of[m]), 0.0), _AM))
    op = head_ops[1, c]
    sc, of = scale[ops[op, 3]:ops[op, 3] + 256], offset[ops[op, 3]:ops[op, 3] + 256]
    _product(op, hid32, h0, n, w, ops, y)
    for q in range(n):
        o = U(rows[h0 + q])
        top = np.int32(-(1 << 31))
        for v in range(256):
            y[q, v] = np.int32(np.floor(y[q, v] * sc[v] + of[v]))   # the logit (the packer bounds it)
            top = max(top, y[q, v])
        for v in range(256):
            out[o, v] = exp[np.uint32(min(top - y[q, v], emax))]   # gaps are >= 0


@njit(inline="always")
def _block(n, threads, rows):
    """Positions per thread task: one task per thread (each reads a layer's
    weights once per step), at least MIN_BLOCK, within the scratch buffers
    (as many tasks as threads, ``rows`` >= every position of a step, a multiple of 4)."""
    b = max((n + threads - 1) // threads, MIN_BLOCK)
    return min((b + 3) // 4 * 4, rows)


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


@njit(cache=True)
def put_symbols(out, xi, rows, b_of, i_of, j_of, c, k2, symbols):
    """Write the decoded colour c of each position: out[rows, j, c] (the
    image) and 2x - 255 into the network's input rows xi[b, i + k2 + 1]."""
    C = out.shape[2]
    for q in range(len(symbols)):
        v = symbols[q]
        if v < 0 or v > 255:
            raise ValueError("a decoded symbol is not a sub-pixel value")
        j = j_of[q]
        out[rows[q], j, c] = v
        xi[b_of[q], i_of[q] + k2 + 1, (j + k2) * C + c] = 2 * v - 255


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


@njit(parallel=True, cache=True)
def vertical_step(threads, t, lag, R, k2, width, ring, zero, cw, b_of, i_of, xi, V, LK,
                  w, ops, scale, offset, layer_ops, gates, tanh, sigmoid, vcond, lcond,
                  xs, xs32, zs, zs32, gs, gs32, ys, ts, lks, hrs):
    """The vertical frontier of step t: for every (strip, row) task and layer l,
    column f = t - i*lag + R - (l+1)*k2 of row i, if it lies in the image.
    Rows of xi are flat (padded column, channel); rows of V are column rings
    (``column_ring``) of padded columns f + k2, rows of LK rings of cw columns f."""
    L = V.shape[0]
    p2 = lks.shape[2]
    p = p2 // 2
    C = (xi.shape[2] // (width + 2 * k2))
    kw = 2 * k2 + 1
    xf, vf, lkf, x_row, x_strip, v_row, v_layer, l_row, l_layer, slots, half = _flat_rings(xi, V, LK, cw, p)
    n_all = len(i_of)
    block = _block(n_all, min(threads, xs.shape[0]), xs.shape[1])
    for task in prange((n_all + block - 1) // block):
        x, x32, z, z32, y = xs[task], xs32[task], zs[task], zs32[task], ys[task]
        tt, lk, vo = ts[task], lks[task], gs[task]
        first = task * block
        last = min(n_all, first + block)
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
            n = 0
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
            _vertical(l, n, x32, w, ops, scale, offset, layer_ops, gates, tanh, sigmoid, vcond, lcond,
                      z, z32, y, tt, lk, vo)
            n = 0
            for e in range(first, last):       # scatter
                f = t - i_of[e] * lag + off
                if f < 0 or f >= width:
                    continue
                row = own[e - first]
                a = l * l_layer + row * l_row + (f % cw) * p2
                for o in range(p2):
                    lkf[U(a + o)] = np.int32(lk[n, o])
                a = l * v_layer + row * v_row
                s = ((f + k2) % cw) * p
                for ch in range(p):
                    vf[U(a + s + ch)] = vo[n, ch]
                    vf[U(a + s + half + ch)] = vo[n, ch]
                if f == 0:                      # the padding left of the image: padded columns 0..k2-1
                    for ch in range(k2 * p):
                        vf[U(a + ch)] = 0
                        vf[U(a + half + ch)] = 0
                if f == width - 1:              # and right of it: padded columns width+k2..width+2k2-1
                    for e2 in range(k2):
                        s = ((width + k2 + e2) % cw) * p
                        for ch in range(p):
                            vf[U(a + s + ch)] = 0
                            vf[U(a + s + half + ch)] = 0
                n += 1


@njit(parallel=True, cache=True)
def horizontal_step(threads, c, k2, ring, cw, b_of, i_of, j_of, out, rows, prev, xi, LK, HB, G, G32, SK, HID,
                    HID32, w, ops, scale, offset, layer_ops, head_ops, gates, head_in, tanh, sigmoid, exp,
                    xs, xs32, zs, zs32, gs, gs32, ys, ts, lks, hrs, counts, count_rows):
    """Colour c of every position (b, i, j) being decoded: first the symbols
    ``prev`` of colour c - 1 (none at c = 0) go into the image ``out`` (at
    ``rows``) and xi, as ``put_symbols`` writes them; then the horizontal stack
    rows of group c in every layer, the head, and the counts (n, 256), position
    q's in counts[count_rows[q]] (the caller's np.arange, made once).
    G (L, n, p), SK (n, skip) and HID (n, hidden) keep the groups < c that
    earlier sub-steps of this step computed at the same positions.  Rows of
    xi are flat (padded column, channel), rows of HB column rings of padded
    columns j + k2 (``column_ring``), rows of LK rings of cw columns j."""
    L = HB.shape[0]
    p = hrs.shape[2]
    p2 = 2 * p
    C = head_ops.shape[1]
    pg = p // C
    gc = c * pg                                  # group c's first channel
    if len(prev):
        put_symbols(out, xi, rows, b_of, i_of, j_of, c - 1, k2, prev)
    xf, hbf, lkf, x_row, x_strip, h_row, h_layer, l_row, l_layer, slots, half = _flat_rings(xi, HB, LK, cw, p)
    n_all = len(i_of)
    block = _block(n_all, min(threads, xs.shape[0]), xs.shape[1])
    for task in prange((n_all + block - 1) // block):
        x, x32, y, lk, hr, tt = xs[task], xs32[task], ys[task], lks[task], hrs[task], ts[task]
        first = task * block
        n = min(n_all, first + block) - first
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
            _horizontal(l, c, n, x32, w, ops, scale, offset, layer_ops, gates, tanh, sigmoid,
                        lk, G[l], G32[l], first, SK, first, y, hr, tt)
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
            _head_input(SK[first + q], x[q], k, head_in)
        _head_output(c, n, x32, HID, HID32, first, w, ops, scale, offset, head_ops, exp, y, counts, count_rows)


@njit(parallel=True, cache=True)
def full_pass(xi, k2, p, w, ops, scale, offset, layer_ops, head_ops, gates, head_in, tanh, sigmoid,
              vcond, lcond, xs, xs32, zs, zs32, gs, gs32, ys, ts, lks, hrs, SK, carry, carried, heads):
    """The encoder's pass over a block of rows, continuing from the rows above:
    ``xi`` (rows + k2 + 1, (W + 2k2) * C) holds 2x - 255 of the block's rows
    below the k2 + 1 rows above them, and ``carry`` (L, k2, (W + 2k2) * p)
    the vertical stack's gate outputs of each layer in the k2 rows above (zeros
    for both at the top of the image).  Fills ``heads`` (rows, W, skip) with
    the head inputs of the block's rows, which ``head_counts`` finishes, and
    ``carried`` (like ``carry``) with those of the block's last k2 rows, for
    the next block.  Layer by layer, each row CHUNK positions at a time, with
    the decoder's per-layer routines.  The scratch buffers hold one task per
    row; SK is (rows, W', skip), W' >= W + 4."""
    rows = xi.shape[0] - k2 - 1
    C = head_ops.shape[1]
    W = xi.shape[1] // C - 2 * k2
    L = layer_ops.shape[0]
    kw = 2 * k2 + 1
    Vp = np.zeros((rows, (W + 2 * k2) * p), np.int16)
    Vc = np.zeros((rows, (W + 2 * k2) * p), np.int16)
    Hp = np.zeros((rows, (W + k2) * p), np.int16)
    Hc = np.zeros((rows, (W + k2) * p), np.int16)
    for l in range(L):
        cin = C if l == 0 else p
        vspan, hspan = kw * cin, (k2 + 1) * cin
        for r in prange(rows):
            x, x32, z, z32, y = xs[r], xs32[r], zs[r], zs32[r], ys[r]
            tt, lk, g, g32, hr = ts[r], lks[r], gs[r], gs32[r], hrs[r]
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
                _vertical(l, n, x32, w, ops, scale, offset, layer_ops, gates, tanh, sigmoid, vcond, lcond,
                          z, z32, y, tt, lk, g)
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
                    _horizontal(l, cc, n, x32, w, ops, scale, offset, layer_ops, gates, tanh, sigmoid,
                                lk, g, g32, 0, SK[r], f0, y, hr, tt)
                for q in range(n):
                    a = (f0 + q + k2) * p
                    for ch in range(p):
                        Hc[r, U(a + ch)] = np.int16(hr[q, ch])
        for d in range(k2):             # the last k2 rows of this layer's vertical stack
            rr = rows - k2 + d
            carried[l, d] = Vc[rr] if rr >= 0 else carry[l, k2 + rr]
        Vp, Vc = Vc, Vp
        Hp, Hc = Hc, Hp
    k = SK.shape[2]
    for r in prange(rows):
        for j in range(W):
            _head_input(SK[r, j], heads[r, j], k, head_in)


@njit(parallel=True, cache=True)
def head_counts(threads, heads, strips, slots, cols, dest, w, ops, scale, offset, head_ops, exp,
                xs, xs32, ys, HID, HID32, out):
    """The encoder's counts, in stream order: for position e (head inputs at
    heads[strips[e], slots[e], cols[e]]), out[dest[e, c]] = the counts of
    colour c.  CHUNK positions at a time; HID holds >= len(strips) + CHUNK rows."""
    C = head_ops.shape[1]
    k = heads.shape[3]
    n_all = len(strips)
    chunks = (n_all + CHUNK - 1) // CHUNK
    tasks = min(threads, xs.shape[0])
    for task in prange(tasks):
        x, x32, y = xs[task], xs32[task], ys[task]
        for chunk in range(task, chunks, tasks):
            first = chunk * CHUNK
            n = min(CHUNK, n_all - first)
            for q in range(n):
                e = first + q
                b, r, j = strips[e], slots[e], cols[e]
                for ch in range(k):
                    x[q, ch] = heads[b, r, j, ch]
            for c in range(C):
                _head_output(c, n, x32, HID, HID32, first, w, ops, scale, offset, head_ops, exp, y, out,
                             dest[:, c])


class RowHeads:
    """The head inputs of an (H, W, C) uint8 image's rows, block after block
    from the top.  Each block's pass starts from the vertical stack's last
    rows of the block before, so no row is computed twice; ``counts`` turns
    the head inputs into the counts of ``IntGatedPixelCNN.counts`` of a full
    pass."""

    def __init__(self, prog: Program, pixels: np.ndarray, label: int | None = None):
        self.prog, self.pixels = prog, pixels
        self.vcond, self.lcond = prog.conditioning(label)
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
        xi[k2 + 1 - (start - top):, k2:k2 + w] = 2 * self.pixels[top:stop].astype(np.int16) - 255
        heads = np.zeros((rows, w, prog.head_width), np.int16)
        scratch = Scratch(prog, rows, CHUNK)
        SK = np.zeros((rows, simd.padded(w) + CHUNK, prog.skip), np.float64)
        carried = np.empty_like(self.carry)
        full_pass(xi.reshape(rows + k2 + 1, -1), k2, prog.p, *prog.weights, prog.layer_ops,
                  prog.head_ops, prog.gates, prog.head_in, prog.tanh, prog.sigmoid, self.vcond, self.lcond,
                  *scratch.args(), SK, self.carry, carried, heads)
        self.carry, self.next = carried, stop
        return heads


def row_heads(prog: Program, pixels: np.ndarray, start: int, stop: int, label: int | None = None) -> np.ndarray:
    """Head inputs (stop-start, W, skip') int16 of rows [start, stop) of an
    (H, W, C) uint8 image on their own: from one pass over them and a halo of
    the rows above that they can see."""
    top = max(0, start - prog.net.rows_above)
    return RowHeads(prog, pixels[top:stop], label).rows(stop - top)[start - top:]


def counts(prog: Program, heads: np.ndarray, strips, slots, cols, dest: np.ndarray, n_symbols: int) -> np.ndarray:
    """Counts (n_symbols, 256) float64 from head inputs ``heads`` (strips, slots,
    W, skip'): position e's colour c goes to row dest[e, c]."""
    out = np.empty((n_symbols, 256), np.float64)
    threads = numba.get_num_threads()
    scratch = Scratch(prog, threads, CHUNK)
    HID = np.zeros((simd.padded(len(strips)) + CHUNK, simd.even(prog.hidden)), np.int16)
    head_counts(threads, heads, strips, slots, cols, dest, *prog.weights, prog.head_ops, prog.exp,
                scratch.x, scratch.x.view(np.int32), scratch.y, HID, HID.view(np.int32), out)
    return out


def drop_stale_cache(cache_dir: Path, sources: list[Path], stem: str = "intkernels") -> list[Path]:
    """Delete numba's cached machine code of this module's kernels (``stem.*.nbi``
    and ``.nbc`` in ``cache_dir``) that is older than any of ``sources``.

    numba checks a cached kernel against its own source file only.  These
    kernels compile ``simd.gemm`` and the limits of ``intnet`` into their
    code, so an edit there alone would leave them running stale code.
    Returns the files deleted."""
    try:
        newest = max(path.stat().st_mtime for path in sources)
        stale = [f for f in Path(cache_dir).glob(stem + ".*.nb[ci]") if f.stat().st_mtime < newest]
    except OSError:      # no cache folder, or a file that went away meanwhile
        return []
    dropped = []
    for f in stale:
        try:
            f.unlink()
            dropped.append(f)
        except OSError:
            pass
    return dropped


# numba's in-tree cache (a read-only install caches elsewhere, and is fresh after each install)
drop_stale_cache(Path(__file__).parent / "__pycache__", [Path(simd.__file__), Path(intnet.__file__)])
