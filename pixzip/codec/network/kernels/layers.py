"""The per-layer routines that the decoder's steps and the encoder's pass
share: a layer's vertical stack, one colour of its horizontal stack, and the
head, on a block of positions whose inputs are gathered in a task's scratch
buffers (``program.Scratch``, row ``task`` of each).  Only the gathering of
inputs and the scattering of outputs differ between decoder and encoder.

Requantization is ``floor(acc * scale + offset)`` in float64 (``contract``),
which the packer proved exact, so its order and fusion cannot change the
result.  Colour groups are contiguous blocks of channels, and the masks let
group c read only groups <= c at the current position: a colour sub-step
computes only the rows of group c, over the prefix of inputs its mask
allows (the packer checks that every weight it drops is zero).

Loops index 1-D views that start at 0 with a range() variable, so numba can
drop its negative-index checks and LLVM can vectorize them.

The routines that are not inlined (``vertical``, ``horizontal``,
``head_output``, and ``gemm``) are compiled without numba's reference counts
(``_nrt=False``): they allocate nothing, and every array they view belongs
to their caller.  Each view costs an atomic increment and decrement
otherwise: with the mixer's (``mixer/v2/kernel.code_with``), 8.7% of the CPU
samples of a one-thread `-9` decode of waterloo_sail, and 0.7% without
(perf; AMD EPYC Zen 4).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ...contract import ACT_MAX, GATE_LIMIT, SKIP_LIMIT, TERM_LIMIT
from .gemm import gemm, gemm_loop

U = np.uint64            # an index known to be >= 0: numba skips its wraparound check
one_type = np.int64      # an integer argument of a compiled routine called from a kernel: numba compiles
                         # the routine once per argument type, and a literal (0) or a prange index (typed
                         # int64, then uint64) would each add a compile of it
MIN_BLOCK = 16           # fewest decoder positions per thread task
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
def product(op, x32, x0, n, net, y):
    """y[q] = op's weights . x32[x0 + q] for q < n (``gemm``, or its plain loops)."""
    ops = net.ops
    if net.loop:
        gemm_loop(x32, x0, n, net.w, ops[op, 0], ops[op, 4], ops[op, 5], y)
    else:
        gemm(x32, x0, n, net.w, ops[op, 0], ops[op, 4], ops[op, 5], y)


@njit(inline="always")
def product_pairs(op, x32, n, net, y, k0, k1):
    """y[q] = the op's weights at input pairs k0..k1-1 . x32[q, :k1 - k0] for q
    < n: a part of ``product``'s sum (the weights are packed pair by pair,
    ``gemm.pack``), the same int32 terms."""
    ops = net.ops
    off = ops[op, 0] + k0 * ops[op, 5] * 2
    if net.loop:
        gemm_loop(x32, one_type(0), n, net.w, off, k1 - k0, ops[op, 5], y)
    else:
        gemm(x32, one_type(0), n, net.w, off, k1 - k0, ops[op, 5], y)


@njit(nogil=True, _nrt=False)
def vertical(l, n, net, cond, s, task, v_out):
    """Vertical stack of layer l at n positions whose inputs are in s.x32[task]:
    link terms -> s.lk[task][:n], gate outputs -> v_out[:n] (both per position).
    ``cond`` holds the (vertical, link) class biases (L, 2p)."""
    product(net.layer_ops[l, 0], s.x32[task], one_type(0), n, net, s.y[task])
    _vertical_rest(l, n, net, cond, s, task, v_out)


@njit(nogil=True, _nrt=False)
def vertical_newest(l, n, net, cond, s, task, v_out, k0, early, rows):
    """``vertical`` whose input product is split in two: the sum over the input
    pairs before k0 made earlier (``early[rows[q]]``, int32, by
    ``product_pairs`` over the same inputs), and the rest, whose inputs are in
    s.x32[task][:, :pairs - k0].  Integer sums in another order: the same
    int32 products (the packer's bound keeps every partial sum below 2^31), so
    the same outputs as ``vertical``."""
    y = s.y[task]
    op = net.layer_ops[l, 0]
    p2 = s.lk[task].shape[1]
    product_pairs(op, s.x32[task], n, net, y, k0, net.ops[op, 4])
    for q in range(n):
        yq, eq = y[q], early[rows[q]]
        for o in range(p2):
            yq[o] += eq[o]
    _vertical_rest(l, n, net, cond, s, task, v_out)


@njit(inline="always")
def _vertical_rest(l, n, net, cond, s, task, v_out):
    """``vertical`` after its input product (in s.y[task]): requantized, the link
    terms' product, the gates."""
    z, z32, y, t, lk = s.z[task], s.z32[task], s.y[task], s.t[task], s.lk[task]
    scale, offset, ops = net.scale, net.offset, net.ops
    p2 = lk.shape[1]
    p = p2 // 2
    vc, lc = cond[0][l], cond[1][l]
    op = net.layer_ops[l, 0]
    sc, of = scale[ops[op, 3]:ops[op, 3] + p2], offset[ops[op, 3]:ops[op, 3] + p2]
    for q in range(n):
        for o in range(p2):
            v = min(max(np.floor(y[q, o] * sc[o] + of[o]), -_GL), _GL)
            z[q, o] = np.int16(v)
            t[q, o] = _index(min(max(v + vc[o], -_GL), _GL))
    op = net.layer_ops[l, 1]
    sc, of = scale[ops[op, 3]:ops[op, 3] + p2], offset[ops[op, 3]:ops[op, 3] + p2]
    product(op, z32, one_type(0), n, net, y)
    for q in range(n):
        yq, lq = y[q], lk[q]
        for o in range(p2):
            lq[o] = min(max(np.floor(yq[o] * sc[o] + of[o]) + lc[o], -_TL), _TL)
    gs = net.gates[l, 0]
    tanh, sigmoid = net.tanh, net.sigmoid
    for q in range(n):
        for ch in range(p):
            v_out[q, ch] = _gate(t[q, ch], t[q, U(p + ch)], tanh, sigmoid, gs)


@njit(nogil=True, _nrt=False)
def horizontal(l, c, n, net, s, task, g, g0, sk, s0):
    """Colour c of the horizontal stack of layer l at n positions whose inputs
    are in s.x32[task] and link terms in s.lk[task]: gate outputs of group c ->
    g[g0:g0+n] (int16, C-contiguous rows of an even length, read back as
    int32 pairs), skip terms of group c added to sk[s0:s0+n] (set at layer 0),
    and group c of the residual stream, read from s.hr[task] (layers > 0) and
    written back to it."""
    g32 = g.view(np.int32)
    x32, y, t, lk, hr = s.x32[task], s.y[task], s.t[task], s.lk[task], s.hr[task]
    scale, offset, ops, layer_ops = net.scale, net.offset, net.ops, net.layer_ops
    p = hr.shape[1]
    C = layer_ops.shape[1] // 2 - 1
    pg, sg = p // C, sk.shape[1] // C
    op = layer_ops[l, 2 + c]
    q0 = ops[op, 3]
    sa, oa = scale[q0:q0 + pg], offset[q0:q0 + pg]
    sb, ob = scale[q0 + pg:q0 + 2 * pg], offset[q0 + pg:q0 + 2 * pg]
    product(op, x32, one_type(0), n, net, y)
    gs = net.gates[l, 1]
    tanh, sigmoid = net.tanh, net.sigmoid
    ga, gb = c * pg, p + c * pg
    for q in range(n):
        for m in range(pg):
            a = min(max(np.floor(y[q, m] * sa[m] + oa[m]), -_TL), _TL)
            b = min(max(np.floor(y[q, U(pg + m)] * sb[m] + ob[m]), -_TL), _TL)
            t[q, m] = _index(min(max(a + lk[q, U(ga + m)], -_GL), _GL))
            t[q, U(pg + m)] = _index(min(max(b + lk[q, U(gb + m)], -_GL), _GL))
        gi = U(g0 + q)
        for m in range(pg):
            g[gi, U(ga + m)] = _gate(t[q, m], t[q, U(pg + m)], tanh, sigmoid, gs)
    op = layer_ops[l, 2 + C + c]
    q0 = ops[op, 3]
    ss, os_ = scale[q0:q0 + sg], offset[q0:q0 + sg]
    sh, oh = scale[q0 + sg:q0 + sg + pg], offset[q0 + sg:q0 + sg + pg]
    product(op, g32, g0, n, net, y)
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
def head_input(sk, x, k, head_in):
    """x[:k] = the head's input from skip sums sk[:k] (clamped, requantized)."""
    for ch in range(k):
        a = min(max(sk[ch], -_SL), _SL)
        x[ch] = np.int16(min(max(np.floor(a * head_in + 0.5), 0.0), _AM))


@njit(nogil=True, _nrt=False)
def head_output(c, n, net, s, task, hid, h0, out, rows):
    """The head for colour c at n positions whose head inputs are in s.x32[task]:
    out[rows[h0 + q], :256] = the counts of position q (``contract.counts``:
    exp[gap] where gap is each level's logit's distance to the largest,
    clamped where counts stay 1).  hid[h0:h0+n] holds the hidden rows
    (groups < c kept from earlier colours; int16, rows of an even length,
    read as int32 pairs)."""
    x32, y = s.x32[task], s.y[task]
    scale, offset, ops, head_ops, exp = net.scale, net.offset, net.ops, net.head_ops, net.exp
    emax = len(exp) - 1
    C = head_ops.shape[1]
    hg = hid.shape[1] // C
    op = head_ops[0, c]
    sc, of = scale[ops[op, 3]:ops[op, 3] + hg], offset[ops[op, 3]:ops[op, 3] + hg]
    product(op, x32, one_type(0), n, net, y)
    for q in range(n):
        yq, hq = y[q], hid[h0 + q][c * hg:(c + 1) * hg]
        for m in range(hg):
            hq[m] = np.int16(min(max(np.floor(yq[m] * sc[m] + of[m]), 0.0), _AM))
    op = head_ops[1, c]
    sc, of = scale[ops[op, 3]:ops[op, 3] + 256], offset[ops[op, 3]:ops[op, 3] + 256]
    product(op, hid.view(np.int32), h0, n, net, y)
    for q in range(n):
        o = U(rows[h0 + q])
        top = np.int32(-(1 << 31))
        for v in range(256):
            y[q, v] = np.int32(np.floor(y[q, v] * sc[v] + of[v]))   # the logit (the packer bounds it)
            top = max(top, y[q, v])
        for v in range(256):
            out[o, v] = exp[np.uint32(min(top - y[q, v], emax))]   # gaps are >= 0


@njit(inline="always")
def block_size(n, threads, rows):
    """Positions per thread task: one task per thread (each reads a layer's
    weights once per step), at least MIN_BLOCK, within the scratch buffers
    (as many tasks as threads, ``rows`` >= every position of a step, a multiple of 4)."""
    b = max((n + threads - 1) // threads, MIN_BLOCK)
    return min((b + 3) // 4 * 4, rows)
