"""Compiled kernels of the integer network, in exact integer arithmetic (numba):
the decoder's step at the positions of one wavefront step, and the encoder's
full pass over a block of rows.

Weights are int16, activations int16, and every dot product accumulates in
int32: the exporter's per-layer bound sum(|w|) * max|a| is checked below 2^31
when a model is packed, so no sum can wrap.  Requantization is
``((acc + b) * M + 2^(s-1)) >> s`` in int64, which is the same integer as the
float64 formula in ``intnet`` (both are exact).  So these kernels give
bit-for-bit the integers of ``IntGatedPixelCNN.logits``; the exactness tests
compare the two on every sub-pixel.

Python never runs per position: one call computes the vertical frontier of a
step (every row, every layer), and one call per colour computes the horizontal
stack, the head and the counts of every position being decoded.  Positions are
spread over threads (``prange``); each position's arithmetic is sequential, so
the thread count cannot change a result.

Colour groups are contiguous blocks of channels, and the masks let group c
read only groups <= c at the current position.  A colour sub-step therefore
computes only the rows of group c, over the prefix of inputs its mask allows
(the packer checks that every weight it drops is zero).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .intnet import ACT_MAX, GATE_LIMIT, SKIP_LIMIT, TERM_LIMIT, IntGatedPixelCNN

ACC_LIMIT = 1 << 31
_SKIP_LIMIT = int(SKIP_LIMIT)


class Program:
    """An integer network packed into flat arrays for the kernels.

    ``ops[q] = (weight offset, rows, inputs, row-parameter offset)``; the rows
    of op q are ``w[off : off + rows*inputs]`` (row-major), with per-row bias,
    multiplier and shift at ``bias/mult/shift[poff : poff + rows]``."""

    def __init__(self, net: IntGatedPixelCNN):
        self.net = net
        cfg, t = net.config, net.tensors
        C, p, L, k2 = net.colors, net.p, net.layers, net.k2
        self.C, self.p, self.L, self.k2 = C, p, L, k2
        self.skip = net.skip_channels
        self.hidden = t["head1.w"].shape[0]
        self._w, self._b, self._m, self._s, self._ops = [], [], [], [], []
        self._woff = self._poff = 0
        pg, sg, hg = p // C, self.skip // C, self.hidden // C

        def rows(prefix):
            w = np.asarray(t[prefix + ".w"], dtype=np.int64)
            n = w.shape[0]
            bound = cfg["bound"][prefix]
            if bound >= ACC_LIMIT:
                raise ValueError(f"layer {prefix}: accumulator bound {bound:.3g} does not fit in int32")
            shift = int(cfg["shift"][prefix])
            if not 1 <= shift <= 62:
                raise ValueError(f"layer {prefix}: shift {shift} out of range")
            return (w, np.asarray(t[prefix + ".b"], np.int64), np.asarray(t[prefix + ".m"], np.int64),
                    np.full(n, shift, np.int64))

        def add(parts, keep_inputs):
            """One op from (prefix rows, row indices) parts, inputs cut to keep_inputs."""
            ws, bs, ms, ss = [], [], [], []
            for (w, b, m, s), idx in parts:
                ws.append(w[idx]), bs.append(b[idx]), ms.append(m[idx]), ss.append(s[idx])
            w = np.concatenate(ws)
            if np.any(w[:, keep_inputs:]):
                raise ValueError("a masked weight that the decoder skips is not zero")
            w = np.ascontiguousarray(w[:, :keep_inputs]).astype(np.int16)
            self._ops.append((self._woff, w.shape[0], keep_inputs, self._poff))
            self._w.append(w.ravel())
            self._b.append(np.concatenate(bs)), self._m.append(np.concatenate(ms)), self._s.append(np.concatenate(ss))
            self._woff += w.size
            self._poff += w.shape[0]
            return len(self._ops) - 1

        every = lambda n: np.arange(n)  # noqa: E731
        group = lambda g, size, base=0: np.arange(base + g * size, base + (g + 1) * size)  # noqa: E731
        self.v_ops, self.link_ops, self.h_ops, self.so_ops = [], [], [], []
        for l in range(L):
            cin = C if l == 0 else p
            # vertical conv: weight (2p, cin, k2+1, k) -> inputs ordered (dy, dx, cin)
            v = rows(f"v_conv.{l}")
            v = (v[0].reshape(2 * p, cin, k2 + 1, 2 * k2 + 1).transpose(0, 2, 3, 1).reshape(2 * p, -1),) + v[1:]
            self.v_ops.append(add([(v, every(2 * p))], v[0].shape[1]))
            self.link_ops.append(add([(rows(f"link.{l}"), every(2 * p))], 2 * p))
            # horizontal conv: weight (2p, cin, 1, k2+1) -> inputs ordered (dx, cin); centre tap last
            h = rows(f"h_conv.{l}")
            h = (h[0].reshape(2 * p, cin, k2 + 1).transpose(0, 2, 1).reshape(2 * p, -1),) + h[1:]
            sk, ho = rows(f"skip.{l}"), rows(f"h_out.{l}")
            hs, ss = [], []
            for c in range(C):
                seen = (c if l == 0 else c + 1) if C > 1 else (0 if l == 0 else 1)
                centre = seen * (cin // C) if C > 1 else seen * cin
                hs.append(add([(h, np.concatenate([group(c, pg), group(c, pg, p)]))], k2 * cin + centre))
                ss.append(add([(sk, group(c, sg)), (ho, group(c, pg))], (c + 1) * pg))
            self.h_ops.append(hs)
            self.so_ops.append(ss)
        h1, h2 = rows("head1"), rows("head2")
        self.head1_ops = [add([(h1, group(c, hg))], (c + 1) * sg) for c in range(C)]
        self.head2_ops = [add([(h2, group(c, 256))], (c + 1) * hg) for c in range(C)]

        self.w = np.concatenate(self._w)
        self.bias = np.concatenate(self._b)
        self.mult = np.concatenate(self._m)
        self.shift = np.concatenate(self._s)
        self.ops = np.array(self._ops, dtype=np.int64)
        self.layer_ops = np.array([[self.v_ops[l], self.link_ops[l]] + self.h_ops[l] + self.so_ops[l]
                                   for l in range(L)], dtype=np.int64)        # (L, 2 + 2C)
        self.head_ops = np.array([self.head1_ops, self.head2_ops], dtype=np.int64)  # (2, C)
        gm, gs = cfg["gate_mult"], cfg["gate_shift"]
        self.gates = np.array([[gm[2 * l], gs[2 * l], gm[2 * l + 1], gs[2 * l + 1]] for l in range(L)], np.int64)
        self.head_in = np.array([cfg["head_in_mult"], cfg["head_in_shift"]], np.int64)
        self.tanh = np.asarray(t["tanh"], np.int64)
        self.sigmoid = np.asarray(t["sigmoid"], np.int64)
        self.exp = np.asarray(t["exp"], np.int64)
        self.max_inputs = int(self.ops[:, 2].max())
        self.max_rows = int(self.ops[:, 1].max())

    def conditioning(self, label: int | None) -> tuple[np.ndarray, np.ndarray]:
        """(vertical, link) class biases (L, 2p) for a label; zeros without one."""
        net = self.net
        if net.n_classes and label is not None:
            return (np.ascontiguousarray(net.v_cond[label].numpy(), dtype=np.int64),
                    np.ascontiguousarray(net.h_cond[label].numpy(), dtype=np.int64))
        z = np.zeros((self.L, 2 * self.p), np.int64)
        return z, z.copy()


def program(net: IntGatedPixelCNN) -> Program:
    """The net packed for the kernels (built once per loaded model)."""
    prog = getattr(net, "_program", None)
    if prog is None:
        prog = net._program = Program(net)
    return prog


@njit(inline="always")
def _requant(acc, q, bias, mult, shift):
    s = shift[q]
    return ((acc + bias[q]) * mult[q] + (np.int64(1) << (s - 1))) >> s


@njit(inline="always")
def _clamp(x, lo, hi):
    return lo if x < lo else (hi if x > hi else x)


@njit(inline="always")
def _gate(a, b, tanh, sigmoid, m, s):
    x = tanh[a + GATE_LIMIT] * sigmoid[b + GATE_LIMIT]
    return _clamp((x * m + (np.int64(1) << (s - 1))) >> s, -ACT_MAX, ACT_MAX)


@njit
def _linear(op, x, y, w, ops, bias, mult, shift):
    """y[:rows] = requant(W_op @ x[:inputs]) with int32 accumulation."""
    w0, n_out, n_in, p0 = ops[op, 0], ops[op, 1], ops[op, 2], ops[op, 3]
    for o in range(n_out):
        row = w[w0 + o * n_in: w0 + (o + 1) * n_in]   # a view indexed from 0 keeps the loop vectorized
        acc = np.int32(0)
        for k in range(n_in):
            acc = np.int32(acc + np.int32(np.int32(x[k]) * np.int32(row[k])))
        y[o] = _requant(np.int64(acc), p0 + o, bias, mult, shift)


@njit
def _head(c, sk, hid, x, y, hm, hs, emax, w, ops, bias, mult, shift, head_ops):
    """The head for colour c at one position: y[:256] = the exp-table index of
    each level (its logit's gap to the largest, clamped where counts stay 1).
    ``sk`` is the position's skip sum, ``hid`` its hidden row (groups < c kept)."""
    C = head_ops.shape[1]
    sg, hg = len(sk) // C, len(hid) // C
    for ch in range((c + 1) * sg):
        a = _clamp(sk[ch], -_SKIP_LIMIT, _SKIP_LIMIT)
        x[ch] = _clamp((a * hm + (np.int64(1) << (hs - 1))) >> hs, 0, ACT_MAX)
    _linear(head_ops[0, c], x, y, w, ops, bias, mult, shift)
    for m in range(hg):
        hid[c * hg + m] = _clamp(y[m], 0, ACT_MAX)
    _linear(head_ops[1, c], hid, y, w, ops, bias, mult, shift)
    top = y[0]
    for v in range(1, 256):
        if y[v] > top:
            top = y[v]
    for v in range(256):
        d = top - y[v]
        y[v] = d if d < emax else emax


@njit(parallel=True, cache=True)
def vertical_step(t, lag, R, k2, width, strip_rows, last_rows, ring, zero, b_of, i_of,
                  xi, V, LK, w, ops, bias, mult, shift, layer_ops, gates, tanh, sigmoid, vcond, lcond,
                  xs, ys, zs):
    """The vertical frontier of step t: for every (strip, row) task and layer l,
    column t - i*lag + R - (l+1)*k2 of row i, if it lies in the image."""
    L = V.shape[0]
    p = V.shape[4]
    kw = 2 * k2 + 1
    for n in prange(len(i_of)):
        b, i = b_of[n], i_of[n]
        x, y, u, z = xs[n], ys[n, 0], ys[n, 1], zs[n]
        s_own = i % ring
        for l in range(L):
            f = t - i * lag + R - (l + 1) * k2
            if f < 0 or f >= width:
                continue
            # gather rows (dy) x columns (dx) x channels, dy oldest first
            k = 0
            if l == 0:
                cin = xi.shape[3]
                for dy in range(k2 + 1):
                    for dx in range(kw):
                        for ch in range(cin):
                            x[k] = xi[b, i + dy, f + dx, ch]
                            k += 1
            else:
                for dy in range(k2 + 1):
                    r = i - k2 + dy
                    s = r % ring if r >= 0 else zero
                    for dx in range(kw):
                        for ch in range(p):
                            x[k] = V[l - 1, b, s, f + dx, ch]
                            k += 1
            _linear(layer_ops[l, 0], x, y, w, ops, bias, mult, shift)       # v_raw (2p)
            for o in range(2 * p):
                z[o] = _clamp(y[o], -GATE_LIMIT, GATE_LIMIT)
            _linear(layer_ops[l, 1], z, u, w, ops, bias, mult, shift)       # link (2p)
            for o in range(2 * p):
                LK[l, b, s_own, f, o] = _clamp(u[o] + lcond[l, o], -TERM_LIMIT, TERM_LIMIT)
                y[o] = _clamp(y[o] + vcond[l, o], -GATE_LIMIT, GATE_LIMIT)
            gm, gs = gates[l, 0], gates[l, 1]
            for ch in range(p):
                V[l, b, s_own, f + k2, ch] = _gate(y[ch], y[p + ch], tanh, sigmoid, gm, gs)


@njit(parallel=True, cache=True)
def horizontal_step(c, k2, ring, b_of, i_of, j_of, xi, LK, HB, G, SK, HID,
                    w, ops, bias, mult, shift, layer_ops, head_ops, gates, head_in, tanh, sigmoid, exp,
                    xs, ys, counts):
    """Colour c of every position (b, i, j) being decoded: the horizontal stack
    rows of group c in every layer, the head, and the counts (n, 256).
    G (n, L, p), SK (n, skip) and HID (n, hidden) keep the groups < c that
    earlier sub-steps of this step computed at the same positions."""
    L, p = HB.shape[0], HB.shape[4]
    C = xi.shape[3]
    pg = p // C
    sg = SK.shape[1] // C
    emax = len(exp) - 1
    hm, hs = head_in[0], head_in[1]
    for n in prange(len(i_of)):
        b, i, j = b_of[n], i_of[n], j_of[n]
        s = i % ring
        x, y = xs[n], ys[n, 0]
        for l in range(L):
            k = 0
            if l == 0:
                for dx in range(k2 + 1):
                    for ch in range(C):
                        x[k] = xi[b, i + k2 + 1, j + dx, ch]
                        k += 1
            else:
                for dx in range(k2 + 1):
                    for ch in range(p):
                        x[k] = HB[l - 1, b, s, j + dx, ch]
                        k += 1
            _linear(layer_ops[l, 2 + c], x, y, w, ops, bias, mult, shift)   # h_part: tanh rows, sigmoid rows
            gm, gs = gates[l, 2], gates[l, 3]
            for m in range(pg):
                ch = c * pg + m
                a = _clamp(_clamp(y[m], -TERM_LIMIT, TERM_LIMIT) + LK[l, b, s, j, ch], -GATE_LIMIT, GATE_LIMIT)
                g = _clamp(_clamp(y[pg + m], -TERM_LIMIT, TERM_LIMIT) + LK[l, b, s, j, p + ch],
                           -GATE_LIMIT, GATE_LIMIT)
                G[n, l, ch] = _gate(a, g, tanh, sigmoid, gm, gs)
            _linear(layer_ops[l, 2 + C + c], G[n, l], y, w, ops, bias, mult, shift)  # skip rows, h_out rows
            for m in range(sg):
                if l == 0:
                    SK[n, c * sg + m] = y[m]
                else:
                    SK[n, c * sg + m] += y[m]
            for m in range(pg):
                ch = c * pg + m
                h = y[sg + m]
                if l > 0:
                    h += HB[l - 1, b, s, j + k2, ch]
                HB[l, b, s, j + k2, ch] = _clamp(h, -ACT_MAX, ACT_MAX)
        _head(c, SK[n], HID[n], x, y, hm, hs, emax, w, ops, bias, mult, shift, head_ops)
        for v in range(256):
            counts[n, v] = exp[y[v]]


@njit(parallel=True, cache=True)
def full_pass(xi, n_out, k2, p, skip, hidden, max_in, max_rows, w, ops, bias, mult, shift, layer_ops, head_ops,
              gates, head_in, tanh, sigmoid, exp, vcond, lcond, gaps):
    """The encoder's pass over a block of rows: ``xi`` (rows + k2 + 1, W + 2k2, C)
    holds 2x - 255 below k2 + 1 zero rows.  Fills ``gaps`` (n_out, W, C, 256)
    with the exp-table indices of the last n_out rows (the rows above them are
    their context halo).  Layer by layer over all positions, each with the same
    per-position arithmetic as the decoder's steps."""
    rows = xi.shape[0] - k2 - 1
    W = xi.shape[1] - 2 * k2
    C = xi.shape[2]
    L = layer_ops.shape[0]
    kw = 2 * k2 + 1
    pg, sg = p // C, skip // C
    emax = len(exp) - 1
    hm, hs = head_in[0], head_in[1]
    Vp = np.zeros((rows, W + 2 * k2, p), np.int16)
    Vc = np.zeros((rows, W + 2 * k2, p), np.int16)
    Hp = np.zeros((rows, W + k2, p), np.int16)
    Hc = np.zeros((rows, W + k2, p), np.int16)
    LK = np.zeros((rows, W, 2 * p), np.int32)
    SK = np.zeros((rows, W, skip), np.int64)
    for l in range(L):
        gm, gs = gates[l, 0], gates[l, 1]
        for r in prange(rows):
            x = np.zeros(max_in, np.int16)
            y = np.zeros(max_rows, np.int64)
            u = np.zeros(max_rows, np.int64)
            z = np.zeros(2 * p, np.int16)
            for f in range(W):
                k = 0
                if l == 0:
                    for dy in range(k2 + 1):
                        for dx in range(kw):
                            for ch in range(C):
                                x[k] = xi[r + dy, f + dx, ch]
                                k += 1
                else:
                    for dy in range(k2 + 1):
                        rr = r - k2 + dy
                        for dx in range(kw):
                            for ch in range(p):
                                x[k] = Vp[rr, f + dx, ch] if rr >= 0 else 0
                                k += 1
                _linear(layer_ops[l, 0], x, y, w, ops, bias, mult, shift)
                for o in range(2 * p):
                    z[o] = _clamp(y[o], -GATE_LIMIT, GATE_LIMIT)
                _linear(layer_ops[l, 1], z, u, w, ops, bias, mult, shift)
                for o in range(2 * p):
                    LK[r, f, o] = _clamp(u[o] + lcond[l, o], -TERM_LIMIT, TERM_LIMIT)
                    y[o] = _clamp(y[o] + vcond[l, o], -GATE_LIMIT, GATE_LIMIT)
                for ch in range(p):
                    Vc[r, f + k2, ch] = _gate(y[ch], y[p + ch], tanh, sigmoid, gm, gs)
        hgm, hgs = gates[l, 2], gates[l, 3]
        for r in prange(rows):
            x = np.zeros(max_in, np.int16)
            y = np.zeros(max_rows, np.int64)
            g = np.zeros(p, np.int16)
            for j in range(W):
                for c in range(C):
                    k = 0
                    if l == 0:
                        for dx in range(k2 + 1):
                            for ch in range(C):
                                x[k] = xi[r + k2 + 1, j + dx, ch]
                                k += 1
                    else:
                        for dx in range(k2 + 1):
                            for ch in range(p):
                                x[k] = Hp[r, j + dx, ch]
                                k += 1
                    _linear(layer_ops[l, 2 + c], x, y, w, ops, bias, mult, shift)
                    for m in range(pg):
                        ch = c * pg + m
                        a = _clamp(_clamp(y[m], -TERM_LIMIT, TERM_LIMIT) + LK[r, j, ch], -GATE_LIMIT, GATE_LIMIT)
                        b = _clamp(_clamp(y[pg + m], -TERM_LIMIT, TERM_LIMIT) + LK[r, j, p + ch],
                                   -GATE_LIMIT, GATE_LIMIT)
                        g[ch] = _gate(a, b, tanh, sigmoid, hgm, hgs)
                    _linear(layer_ops[l, 2 + C + c], g, y, w, ops, bias, mult, shift)
                    for m in range(sg):
                        if l == 0:
                            SK[r, j, c * sg + m] = y[m]
                        else:
                            SK[r, j, c * sg + m] += y[m]
                    for m in range(pg):
                        ch = c * pg + m
                        h = y[sg + m]
                        if l > 0:
                            h += Hp[r, j + k2, ch]
                        Hc[r, j + k2, ch] = _clamp(h, -ACT_MAX, ACT_MAX)
        Vp, Vc = Vc, Vp
        Hp, Hc = Hc, Hp
    for r in prange(n_out):
        rr = rows - n_out + r
        x = np.zeros(max_in, np.int16)
        y = np.zeros(max_rows, np.int64)
        hid = np.zeros(hidden, np.int16)
        for j in range(W):
            for c in range(C):
                _head(c, SK[rr, j], hid, x, y, hm, hs, emax, w, ops, bias, mult, shift, head_ops)
                for v in range(256):
                    gaps[r, j, c, v] = y[v]


def row_gaps(prog: Program, pixels: np.ndarray, start: int, stop: int, label: int | None = None) -> np.ndarray:
    """Exp-table indices (stop-start, W, C, 256) int16 of rows [start, stop) of an
    (H, W, C) uint8 image, from one pass over them and the rows above that they
    can see; the same integers as ``IntGatedPixelCNN.gaps`` of a full pass."""
    net = prog.net
    top = max(0, start - net.rows_above)
    k2 = prog.k2
    h, w, c = pixels.shape
    xi = np.zeros((stop - top + k2 + 1, w + 2 * k2, c), np.int16)
    xi[k2 + 1:, k2:k2 + w] = 2 * pixels[top:stop].astype(np.int16) - 255
    gaps = np.empty((stop - start, w, c, 256), np.int16)
    vcond, lcond = prog.conditioning(label)
    full_pass(xi, stop - start, k2, prog.p, prog.skip, prog.hidden, max(prog.max_inputs, prog.skip),
              max(prog.max_rows, 2 * prog.p), prog.w, prog.ops, prog.bias, prog.mult, prog.shift, prog.layer_ops,
              prog.head_ops, prog.gates, prog.head_in, prog.tanh, prog.sigmoid, prog.exp, vcond, lcond, gaps)
    return gaps
