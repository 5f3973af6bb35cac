"""The context mixer, compiled: every bit's probability from hashed contexts,
residual maps and (optionally) the network's counts, mixed, refined, coded.

Each 8-bit sub-pixel is coded as 8 binary decisions, most significant bit
first.  For each decision the mixer's inputs are, in the stretch domain:

- ``N_HASHED`` hashed contexts of exact neighbour values and of the pixel's
  already coded colours, each a 16-bit probability with a count in a bucket
  of a shared table (a bucket holds one nibble's 15 tree nodes and a check);
- ``N_MAPS`` residual maps: an adaptive histogram of (value - prediction)
  mod 256 for one prediction each, in a small error context, read as
  P(bit | the bits known so far) through its prefix sums; one of the
  predictions is a blend of ``N_BLEND`` sub-predictions, each weighted by
  the inverse square of its recent errors around the pixel (its smallest
  error sum is the map's context, and a weight set's);
- the network's P(bit | known bits): the counts of the open range's upper
  half over all of it (0 when there is no network);
- a bias.

How it is made fast, with the same integers: the hashed buckets of each
nibble are asked for from memory (prefetched) all at once, before they are
looked at, because the table is far larger than the caches; a residual map
keeps the sums of its 16-bin blocks beside its bins, so P(bit | known bits)
costs one block's masked sum per bit instead of 256 prefix sums per
sub-pixel; that masked sum, the mixer's dot products and its weight
updates are whole LLVM vector operations (``_masked_sum16``, ``_dot_row``,
``_update_row``: numba left them scalar), integer and exact, lowered to
whatever vector unit the target has.  Measured on one core (AMD EPYC Zen 4)
on a photos-train image: 4.5-4.9 us per sub-pixel before, 2.8-3.0 after,
the same bytes.

``N_SETS`` weight sets, chosen by small contexts, mix them; a second mixer
mixes their outputs; two APM stages refine the result.  Everything is an
integer operation on int64 values that never overflow, with the tables of
``tables``: the encoder and the decoder compute the same probabilities on
every machine.  ``reference.py`` implements the same arithmetic in plain
Python, and the tests check that both agree.
"""
from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils
from numba.extending import intrinsic

from . import bitcoder
from .tables import RECIPROCALS, SQUASH, STRETCH

N_HASHED = 16
N_MAPS = 8
N_BLEND = 6                # the blended predictor's sub-predictors
N_INPUTS = N_HASHED + N_MAPS + 2      # + the network, + a bias
N_PAD = 32                 # the inputs padded with zeros: whole vectors
N_SETS = 4
MAP_CONTEXTS = 64
MAX_COLOURS = 3
# measured on 256x384 crops of ten photos-train images (never Kodak)
H_INC = 32                 # a residual map's increment per value seen
H_LIMIT = 1 << 16          # and its total before every bin is halved
COUNT_MAX = 255            # the hashed counters' count limit
MIX_LR = 14                # the first mixer's learning rate
MIX2_LR = 4                # the second's
APM_RATE = 7
W1_INIT = 2048             # the first mixer's initial weights (1/32)
BIAS = 256
ROUND = 1 << 15            # weight updates round to nearest

# the weight sets of the first mixer: rows per colour
SET_ROWS = (256, 8 * 8, 8 * 8, 8 * 3)
SET_OFFSETS = tuple(int(sum(SET_ROWS[:i])) * MAX_COLOURS for i in range(N_SETS))
W1_ROWS = int(sum(SET_ROWS)) * MAX_COLOURS


class Tables(NamedTuple):
    squash: np.ndarray
    stretch: np.ndarray
    recip: np.ndarray


class State(NamedTuple):
    """The adaptive state, identical on both sides after every bit."""
    table: np.ndarray      # uint32 (buckets * 16,): slot 0 a bucket's check, slots 1..15 p16 << 16 | count
    hist: np.ndarray       # int32 (N_MAPS, colours, MAP_CONTEXTS, 256)
    hblock: np.ndarray     # int32 (N_MAPS, colours, MAP_CONTEXTS, 16): the sums of each histogram's 16-bin blocks
    w1: np.ndarray         # int32 (W1_ROWS, N_PAD): columns past N_INPUTS meet zero inputs, never change
    w2: np.ndarray         # int32 (colours * 8, N_SETS + 1)
    apm1: np.ndarray       # int32 (colours * 256, 33)
    apm2: np.ndarray       # int32 (colours * 8 * 16, 33)
    perr: np.ndarray       # uint8 (height, width, colours, N_BLEND + 1): each sub-predictor's error there
                           # (at most 255), and the blend's residual mod 256
    cost: np.ndarray       # float64 (4,): the ideal code length in bits, and of each colour (reported, never coded)


def table_bits(n_subpixels: int) -> int:
    """log2 of the number of buckets (64 bytes each): at least a quarter of
    the hashed contexts' sub-pixels, between 2^10 and 2^22 (256 MB)."""
    need = max(1, n_subpixels * N_HASHED // 4 - 1)
    return int(min(22, max(10, need.bit_length())))


PART_TABLE_BITS = 20       # a column part's table: at most 2^20 buckets (64 MB)


def part_table_bits(n_subpixels: int) -> int:
    """log2 of the buckets of a column part of ``n_subpixels`` (coder 3):
    as ``table_bits``, at most 2^20.  Measured on six photos-train images
    in two parts, the mixer alone: 2^22 buckets made files 0.01% smaller
    and the mixer about 12% slower (one run)."""
    return min(PART_TABLE_BITS, table_bits(n_subpixels))


def tables() -> Tables:
    return Tables(SQUASH, STRETCH, RECIPROCALS)


def new_states(parts: int, height: int, width: int, colours: int, bits: int) -> State:
    """``parts`` adaptive states, each as ``new_state`` with a table of 2^bits
    buckets, stacked: every array of the State has a leading axis of parts
    (``part`` gives one part's State)."""
    table = np.full((parts, (1 << bits) * 16), 32768 << 16, np.uint32)
    table[:, ::16] = 0
    identity = np.array([int(SQUASH[min(4094, max(0, (i - 16) * 128 + 2047))]) * 16 for i in range(33)], np.int32)
    apm1 = np.tile(identity, (colours * 256, 1))
    apm2 = np.tile(identity, (colours * 128, 1))
    w2 = np.full((colours * 8, N_SETS + 1), 65536 // N_SETS, np.int32)
    w2[:, N_SETS] = 0

    def stack(a):
        return np.repeat(a[None], parts, axis=0)
    return State(table, np.zeros((parts, N_MAPS, colours, MAP_CONTEXTS, 256), np.int32),
                 np.zeros((parts, N_MAPS, colours, MAP_CONTEXTS, 16), np.int32),
                 np.full((parts, W1_ROWS, N_PAD), W1_INIT, np.int32), stack(w2), stack(apm1), stack(apm2),
                 np.zeros((parts, height, width, colours, N_BLEND + 1), np.uint8), np.zeros((parts, 4)))


def part(states: State, p: int) -> State:
    """Part p of stacked states (views)."""
    return State(*(a[p] for a in states))


def new_state(height: int, width: int, colours: int) -> State:
    return part(new_states(1, height, width, colours, table_bits(height * width * colours)), 0)


@numba.njit(inline="always")
def _mix(h, v):
    """One step of the context hash (values below 2^62, never overflowing)."""
    h = ((h ^ (v & 0xFFFFFFFF)) * 0x2C9277B5) & 0xFFFFFFFF
    return h ^ (h >> 15)


@intrinsic
def _prefetch(typingctx, arr, index):
    """A hint that arr[index] will be read soon (LLVM's prefetch: no effect
    on any value, and nothing on a target without one)."""
    def codegen(context, builder, sig, args):
        a, i = args
        ary = context.make_array(sig.args[0])(context, builder, a)
        ptr = cgutils.get_item_pointer(context, builder, sig.args[0], ary, [i], wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p] + [ir.IntType(32)] * 3),
                                            "llvm.prefetch.p0i8")
        i32 = ir.IntType(32)
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()
    return numba.types.none(arr, index), codegen


def _int32_c(ty, ndim: int) -> bool:
    return isinstance(ty, numba.types.Array) and ty.ndim == ndim and ty.layout == "C" and ty.dtype == numba.types.int32


def _vector_at(context, builder, aryty, ary, indices, n):
    """A pointer to the n int32 of a C-contiguous array from ary[indices] on, as one <n x i32>."""
    a = context.make_array(aryty)(context, builder, ary)
    p = cgutils.get_item_pointer(context, builder, aryty, a, indices, wraparound=False)
    return builder.bitcast(p, ir.VectorType(ir.IntType(32), n).as_pointer())


def _splat(builder, value, n):
    """<n x value> from one scalar."""
    vt = ir.VectorType(value.type, n)
    one = builder.insert_element(ir.Constant(vt, None), value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, ir.Constant(vt, None), ir.Constant(ir.VectorType(ir.IntType(32), n), [0] * n))


_ZERO = ir.Constant(ir.IntType(64), 0)


@intrinsic
def _dot_row(typingctx, w, row, x):
    """sum over i < N_PAD of int64(w[row, i]) * int64(x[i]): whole vectors,
    exact (every product and partial sum is an integer below 2^63)."""
    if not (_int32_c(w, 2) and _int32_c(x, 1)):
        raise numba.core.errors.TypingError("int32 C-contiguous rows wanted")

    def codegen(context, builder, sig, args):
        wv, rv, xv = args
        v64 = ir.VectorType(ir.IntType(64), N_PAD)
        wl = builder.load(_vector_at(context, builder, sig.args[0], wv, [rv, _ZERO], N_PAD), align=4)
        xl = builder.load(_vector_at(context, builder, sig.args[2], xv, [_ZERO], N_PAD), align=4)
        prod = builder.mul(builder.sext(wl, v64), builder.sext(xl, v64))
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(64), [v64]),
                                            f"llvm.vector.reduce.add.v{N_PAD}i64")
        return builder.call(fn, [prod])
    return numba.types.int64(w, row, x), codegen


@intrinsic
def _update_row(typingctx, w, row, x, err):
    """w[row, i] += (x[i] * err + ROUND) >> 16 for i < N_PAD, in int32: exact
    for |x| < 2^11 and |err| < 2^16 (each product is below 2^27)."""
    if not (_int32_c(w, 2) and _int32_c(x, 1) and err == numba.types.int32):
        raise numba.core.errors.TypingError("int32 C-contiguous rows and an int32 error wanted")

    def codegen(context, builder, sig, args):
        wv, rv, xv, ev = args
        v32 = ir.VectorType(ir.IntType(32), N_PAD)
        wp = _vector_at(context, builder, sig.args[0], wv, [rv, _ZERO], N_PAD)
        d = builder.mul(builder.load(_vector_at(context, builder, sig.args[2], xv, [_ZERO], N_PAD), align=4),
                        _splat(builder, ev, N_PAD))
        d = builder.ashr(builder.add(d, ir.Constant(v32, [ROUND] * N_PAD)), ir.Constant(v32, [16] * N_PAD))
        builder.store(builder.add(builder.load(wp, align=4), d), wp, align=4)
        return context.get_dummy_value()
    return numba.types.none(w, row, x, err), codegen


@intrinsic
def _masked_sum16(typingctx, a, start, count):
    """a[start] + ... + a[start + count - 1] (0 <= count <= 16), reading the 16
    int32 from a[start] as one vector (all must lie in a): exact, each value
    below 2^26."""
    if not _int32_c(a, 1):
        raise numba.core.errors.TypingError("an int32 C-contiguous array wanted")

    def codegen(context, builder, sig, args):
        av, sv, cv = args
        i32 = ir.IntType(32)
        v32 = ir.VectorType(i32, 16)
        vals = builder.load(_vector_at(context, builder, sig.args[0], av, [sv], 16), align=4)
        keep = builder.icmp_signed("<", ir.Constant(v32, list(range(16))), _splat(builder, builder.trunc(cv, i32), 16))
        masked = builder.select(keep, vals, ir.Constant(v32, [0] * 16))
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i32, [v32]), "llvm.vector.reduce.add.v16i32")
        return builder.sext(builder.call(fn, [masked]), ir.IntType(64))
    return numba.types.int64(a, start, count), codegen


@numba.njit(inline="always")
def _fetch_buckets(table, hashes, nib, mask, hn):
    """The hashes of one nibble's buckets (``hn``), each of its two candidate
    buckets asked for from memory at once: the lookups that follow find them
    there (the table is far larger than the caches)."""
    for i in range(N_HASHED):
        h = _mix(hashes[i], nib + 1)
        hn[i] = h
        b0 = h & mask
        _prefetch(table, b0 * 16)
        _prefetch(table, (b0 ^ 1) * 16)


@numba.njit(inline="always")
def _find_buckets(table, hn, mask, base):
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
def _prefix(hist, row, blocks, m, x):
    """The sum of bins 0..x-1 (0 <= x < 512) of map m's circular 256-bin
    histogram at hist[row:row + 256], counting past 256 on into a second
    turn: its blocks' running sums blocks[m] (17 of them) and at most one
    block's bins, read as one fixed-length masked sum."""
    turn = x >> 8
    x &= 255
    k = x >> 4
    start = row + (k << 4)
    s = blocks[m, 16] * turn + blocks[m, k]
    return s + _masked_sum16(hist, start, x & 15)


@numba.njit(inline="always")
def _clamp8(v):
    return min(255, max(0, v))


@numba.njit(inline="always")
def _q(v):
    """0, 1, 2-3, 4-7, ... 64+ -> 0..7."""
    v = abs(v)
    n = 0
    while v and n < 7:
        v >>= 1
        n += 1
    return n


@numba.njit(inline="always")
def _med(w, n, nw):
    if nw >= max(w, n):
        return min(w, n)
    if nw <= min(w, n):
        return max(w, n)
    return w + n - nw


@numba.njit(inline="always")
def _neighbours(img, y, x, r, ch):
    """W, N, NW, NE, WW, NN of colour ``ch`` at (y, x), r rows into the strip;
    missing ones fall back on the nearest known (128 at the first pixel)."""
    width = img.shape[1]
    if x > 0:
        w = np.int64(img[y, x - 1, ch])
    elif r > 0:
        w = np.int64(img[y - 1, x, ch])
    else:
        w = np.int64(128)
    n = np.int64(img[y - 1, x, ch]) if r > 0 else w
    nw = np.int64(img[y - 1, x - 1, ch]) if r > 0 and x > 0 else n
    ne = np.int64(img[y - 1, x + 1, ch]) if r > 0 and x + 1 < width else n
    ww = np.int64(img[y, x - 2, ch]) if x > 1 else w
    nn = np.int64(img[y - 2, x, ch]) if r > 1 else n
    return w, n, nw, ne, ww, nn


@numba.njit(inline="always")
def _blend(perr, sub, y, x, r, c):
    """The sub-predictions ``sub`` blended, each weighted by the inverse
    square of its errors at W, N, NW and NE (those known in the strip); and
    the smallest of those error sums."""
    width = perr.shape[1]
    num = np.int64(0)
    den = np.int64(0)
    best = np.int64(1 << 20)
    for i in range(N_BLEND):
        err = np.int64(0)
        if x > 0:
            err += 2 * np.int64(perr[y, x - 1, c, i])
        if r > 0:
            err += 2 * np.int64(perr[y - 1, x, c, i])
            if x > 0:
                err += np.int64(perr[y - 1, x - 1, c, i])
            if x + 1 < width:
                err += np.int64(perr[y - 1, x + 1, c, i])
        best = min(best, err)
        wt = (np.int64(1) << 32) // (err * err + 4)
        num += wt * sub[i]
        den += wt
    return (num + (den >> 1)) // den, best


@numba.njit(inline="always")
def _p12(hi, total):
    if total <= 0:
        return 2048
    return min(4095, max(1, (hi * 4096 + (total >> 1)) // total))


@numba.njit(inline="always")
def _apm(t, row, d):
    s = d + 2048
    lo = s >> 7
    wt = s & 127
    return (t[row, lo] * (128 - wt) + t[row, lo + 1] * wt) >> 7, lo + (wt >> 6)


@numba.njit(inline="always")
def _add_cost(st, ccost):
    st.cost[0] += ccost.sum()
    st.cost[1:] += ccost


@numba.njit(inline="always")
def _previous_colours(img, y, x, r, c):
    """For colour c >= 1: the pixel's colours before it (p1 = c - 1, p2 = c - 2
    or 0), the neighbours W, N, NW, NE of colour c - 1, p1's differences from
    its W and N, and colour c - 1's MED prediction."""
    p1 = np.int64(img[y, x, c - 1])
    p2 = np.int64(img[y, x, c - 2]) if c >= 2 else np.int64(0)
    w1, n1, nw1, ne1, _, _ = _neighbours(img, y, x, r, c - 1)
    return p1, p2, w1, n1, nw1, ne1, p1 - w1, p1 - n1, _med(w1, n1, nw1)


@numba.njit(inline="always")
def _hashes(img, y, x, r, c, nbrs, has_net, mode, mean, conf, hashes):
    """The hashed contexts of sub-pixel (y, x, c), r rows into its strip
    (``nbrs``: its ``_neighbours``; mode, mean and conf: the network's
    summary, ``_network_summary``).  They read only pixels coded before it:
    its neighbours, and its own earlier colours."""
    w, n, nw, ne, ww, nn = nbrs
    qa = _q(abs(w - nw) + abs(n - nw) + abs(n - ne))
    med = _med(w, n, nw)
    grad = _clamp8(w + n - nw)
    h0 = (c + 1) * 0x10000
    if c == 0:
        hashes[0] = _mix(_mix(h0 + 1, w), n)
        hashes[1] = _mix(_mix(_mix(h0 + 2, w), n), nw)
        hashes[2] = _mix(_mix(h0 + 3, n), ne)
        hashes[3] = _mix(_mix(h0 + 4, w), ww)
        hashes[4] = _mix(_mix(h0 + 5, n), nn)
        hashes[5] = _mix(_mix(h0 + 6, grad), qa)
        hashes[6] = _mix(_mix(_mix(_mix(h0 + 7, w >> 2), n >> 2), nw >> 2), ne >> 2)
        hashes[7] = _mix(_mix(h0 + 8, w), ne)
        hashes[8] = _mix(_mix(h0 + 9, mode), conf) if has_net else _mix(_mix(h0 + 9, med), _q(w - nw))
        hashes[9] = h0 + 10
        nne = np.int64(img[y - 2, x + 1, c]) if r > 1 and x + 1 < img.shape[1] else ne
        hashes[10] = _mix(h0 + 11, _clamp8(n + ne - nne))
        hashes[11] = _mix(h0 + 12, _clamp8(w + ne - n))
        hashes[12] = _mix(_mix(_mix(_mix(_mix(_mix(h0 + 13, w >> 4), n >> 4), nw >> 4), ne >> 4), ww >> 4),
                          nn >> 4)
        hashes[13] = _mix(_mix(_mix(h0 + 14, med >> 2), (w - nw) >> 3), (n - nw) >> 3)
        hashes[14] = _mix(_mix(h0 + 15, mode), mean) if has_net else _mix(_mix(_mix(h0 + 15, w), ne >> 2),
                                                                           nn >> 2)
        hashes[15] = _mix(_mix(h0 + 16, mode), qa) if has_net else _mix(_mix(_mix(h0 + 16, n >> 1), w >> 1),
                                                                         ne >> 3)
    else:
        p1, p2, w1, n1, nw1, ne1, du, dn, med1 = _previous_colours(img, y, x, r, c)
        hashes[0] = _mix(_mix(h0 + 1, p1), p2)
        hashes[1] = _mix(_mix(_mix(h0 + 2, w), p1), p2)
        hashes[2] = _mix(_mix(_mix(h0 + 3, n), p1), p2)
        hashes[3] = _mix(_mix(h0 + 4, _clamp8(w + du)), _clamp8(n + dn))
        hashes[4] = _mix(_mix(_mix(h0 + 5, w), n), p1)
        hashes[5] = _mix(_mix(h0 + 6, ne), _clamp8(n + dn))
        hashes[6] = _mix(_mix(_mix(h0 + 7, p1), w - w1 + 256), n - n1 + 256)
        hashes[7] = _mix(_mix(h0 + 8, med), p1 - med1 + 256)
        hashes[8] = _mix(_mix(_mix(h0 + 9, mode), conf), p1) if has_net else _mix(_mix(h0 + 9, med), p1)
        hashes[9] = _mix(h0 + 10, p1 >> 3)
        hashes[10] = _mix(_mix(h0 + 11, _clamp8(nw + p1 - nw1)), _clamp8(ne + p1 - ne1))
        hashes[11] = _mix(h0 + 12, _clamp8(p1 + ((w - w1 + n - n1) >> 1)))
        hashes[12] = _mix(_mix(_mix(_mix(h0 + 13, (w - w1) >> 2), (n - n1) >> 2), (ne - ne1) >> 2), p1 >> 4)
        if c >= 2:
            w2, n2, _, _, _, _ = _neighbours(img, y, x, r, c - 2)
            hashes[13] = _mix(_mix(h0 + 14, _clamp8(w + p2 - w2)), _clamp8(n + p2 - n2))
        else:
            hashes[13] = _mix(_mix(h0 + 14, _clamp8(w + du)), p1 >> 2)
        hashes[14] = _mix(_mix(h0 + 15, mode), _clamp8(w + du)) if has_net else \
            _mix(_mix(_mix(_mix(h0 + 15, w), n), ne >> 2), p1 >> 2)
        hashes[15] = _mix(_mix(_mix(h0 + 16, mode), _q(du)), _q(dn)) if has_net else \
            _mix(_mix(h0 + 16, _clamp8(med + p1 - med1)), qa)


@numba.njit(inline="always")
def _network_summary(counts, q, ncum, mode, mean):
    """The prefix sums ``ncum`` of the network's counts counts[q], and its
    mode, mean and confidence (0..7); ``mode`` and ``mean`` are returned as
    given when there is no network (q < 0)."""
    conf = np.int64(0)
    if q >= 0:
        ncum[0] = 0
        best = np.int64(-1)
        msum = np.int64(0)
        for v in range(256):
            cv = np.int64(counts[q, v])
            ncum[v + 1] = ncum[v] + cv
            msum += v * cv
            if cv > best:
                best = cv
                mode = v
        total = ncum[256]
        mean = (msum + (total >> 1)) // total
        conf = min(7, (best * 8) // total)
    return mode, mean, conf


@numba.njit(inline="always")
def _prepare(img, ys, xs, cs, tops, counts, crow, has_net, e, hashes, ncum):
    """Everything of sub-pixel e that the adaptive state does not decide:
    the network's summary (ncum, and mode, mean, conf returned) and the
    hashed contexts."""
    y, x, c = np.int64(ys[e]), np.int64(xs[e]), np.int64(cs[e])
    r = y - tops[e]
    nbrs = _neighbours(img, y, x, r, c)
    w, n, nw, ne, _, _ = nbrs
    mode, mean, conf = _network_summary(counts, crow[e] if has_net else -1, ncum, _med(w, n, nw),
                                        _clamp8((2 * w + 2 * n + ne - nw + 2) >> 2))
    _hashes(img, y, x, r, c, nbrs, has_net, mode, mean, conf, hashes)
    return mode, mean, conf


@numba.njit(nogil=True)
def code(st, tb, img, ys, xs, cs, tops, counts, crow, has_net, decoding, ahead, enc, out, dec, data):
    """Code the sub-pixels (ys[e], xs[e], colour cs[e]) in order, each in the
    strip starting at row tops[e], with the network's counts counts[crow[e]]
    when ``has_net``.  Encoding reads the values from ``img`` and writes bits
    to ``out`` (state ``enc``); decoding reads bits from ``data`` (state
    ``dec``) and writes the values into ``img``.  Returns the number coded
    (less than asked when a decoder ran more than 8 bytes past its data).

    ``ahead``: the caller promises that no sub-pixel's hashed contexts read
    the value of the one coded just before it (always so when encoding, and
    in the network's stream order, where one call is one colour of a step's
    pixels, none a neighbour of another); each sub-pixel's contexts are then
    made while the one before is coded, so that their buckets arrive from
    memory in time."""
    squash, stretch, recip = tb.squash, tb.stretch, tb.recip
    table = st.table
    mask = (len(table) >> 4) - 1
    x_in = np.zeros(N_PAD, np.int32)     # stretches (|x| <= 2047), padded with zeros
    hashes2 = np.zeros((2, N_HASHED), np.int64)     # this sub-pixel's and the next one's
    hn2 = np.zeros((2, N_HASHED), np.int64)
    ncum2 = np.zeros((2, 257), np.int64)
    prep = np.zeros((2, 3), np.int64)               # mode, mean, conf
    base = np.zeros(N_HASHED, np.int64)
    preds = np.zeros(N_MAPS, np.int64)
    sub = np.zeros(N_BLEND, np.int64)
    mctx = np.zeros(N_MAPS, np.int64)
    hist = st.hist.reshape(-1)
    hblock = st.hblock.reshape(-1)
    colours = st.hist.shape[1]
    blocks = np.zeros((N_MAPS, 17), np.int64)
    p_lo = np.zeros(N_MAPS, np.int64)
    p_hi = np.zeros(N_MAPS, np.int64)
    hrow_at = np.zeros(N_MAPS, np.int64)
    upper = np.zeros(N_MAPS, np.int64)
    rows = np.zeros(N_SETS, np.int64)
    dots = np.zeros(N_SETS, np.int64)
    probs = np.zeros(N_SETS, np.int64)
    ccost = np.zeros(3)
    for e in range(len(ys)):
        y, x, c = np.int64(ys[e]), np.int64(xs[e]), np.int64(cs[e])
        r = y - tops[e]
        w, n, nw, ne, ww, nn = _neighbours(img, y, x, r, c)
        act = abs(w - nw) + abs(n - nw) + abs(n - ne)
        qa = _q(act)
        med = _med(w, n, nw)
        grad = _clamp8(w + n - nw)
        # the network's summary and the hashed contexts: made during the
        # sub-pixel before when ``ahead``, and the next one's made now, its
        # first nibble's buckets asked for while this one is coded
        slot = e & 1 if ahead else 0
        if not ahead or e == 0:
            prep[slot, 0], prep[slot, 1], prep[slot, 2] = _prepare(img, ys, xs, cs, tops, counts, crow, has_net,
                                                                 e, hashes2[slot], ncum2[slot])
            _fetch_buckets(table, hashes2[slot], 0, mask, hn2[slot])
        if ahead and e + 1 < len(ys):
            nxt = 1 - slot
            prep[nxt, 0], prep[nxt, 1], prep[nxt, 2] = _prepare(img, ys, xs, cs, tops, counts, crow, has_net,
                                                              e + 1, hashes2[nxt], ncum2[nxt])
            _fetch_buckets(table, hashes2[nxt], 0, mask, hn2[nxt])
        hashes, ncum, hn = hashes2[slot], ncum2[slot], hn2[slot]
        mode, mean, conf = prep[slot, 0], prep[slot, 1], prep[slot, 2]
        # predictions
        if c == 0:
            nne = np.int64(img[y - 2, x + 1, c]) if r > 1 and x + 1 < img.shape[1] else ne
            preds[0] = med
            preds[1] = grad
            preds[2] = w
            preds[3] = n
            preds[4] = (w + ne + 1) >> 1
            preds[5] = mode
            preds[6] = mean
            sub[0] = w
            sub[1] = n
            sub[2] = ne
            sub[3] = grad
            sub[4] = (w + ne + 1) >> 1
            sub[5] = _clamp8(n + ne - nne)
            blend, berr = _blend(st.perr, sub, y, x, r, c)
            qb = _q(berr)
            preds[7] = blend
            for m in range(N_MAPS):
                mctx[m] = qa * 8
            mctx[7] = qb * 8 + _q(w - n)
        else:
            p1, p2, w1, n1, nw1, ne1, du, dn, med1 = _previous_colours(img, y, x, r, c)
            preds[0] = med
            preds[1] = _clamp8(med + p1 - med1)
            preds[2] = _clamp8(w + du)
            preds[3] = _clamp8(n + dn)
            preds[4] = _clamp8(((w + n + 1) >> 1) + p1 - ((w1 + n1 + 1) >> 1))
            preds[5] = mode
            preds[6] = mean
            sub[0] = _clamp8(w + du)
            sub[1] = _clamp8(n + dn)
            sub[2] = _clamp8(ne + p1 - ne1)
            sub[3] = _clamp8(grad + p1 - _clamp8(w1 + n1 - nw1))
            sub[4] = _clamp8(med + p1 - med1)
            sub[5] = _clamp8(nw + p1 - nw1)
            blend, berr = _blend(st.perr, sub, y, x, r, c)
            qb = _q(berr)
            preds[7] = blend
            # the same predictions made for the colour before: their errors are known
            e1 = (p1 - med1, 0, du, dn, 0, 0, 0, 0)
            for m in range(N_MAPS):
                mctx[m] = qa * 8 + _q(e1[m])
            mctx[7] = qb * 8 + _q(((np.int64(st.perr[y, x, c - 1, N_BLEND]) + 128) & 255) - 128)
        # each residual map's histogram: its blocks' running sums, and the
        # prefix sums at the ends of the open range (all of it), in residual
        # order unwrapped: the range starts at (-prediction) mod 256
        for m in range(N_MAPS):
            row = (m * colours + c) * MAP_CONTEXTS + mctx[m]
            hrow_at[m] = row * 256
            acc = np.int64(0)
            for b in range(16):
                blocks[m, b] = acc
                acc += hblock[row * 16 + b]
            blocks[m, 16] = acc
            p_lo[m] = _prefix(hist, hrow_at[m], blocks, m, (-preds[m]) & 255)
            p_hi[m] = p_lo[m] + acc
        # the bits, most significant first
        value = np.int64(img[y, x, c]) if not decoding else np.int64(0)
        c0 = np.int64(1)
        lo = np.int64(0)
        node = np.int64(1)
        for k in range(8):
            half = np.int64(128) >> k
            if k == 0 or k == 4:
                _find_buckets(table, hn, mask, base)
                node = 1
            # inputs
            for i in range(N_HASHED):
                s = np.int64(table[base[i] + node])
                cnt = s & 0xFFFF       # a context seen once says half as much; never seen, nothing
                x_in[i] = 0 if cnt == 0 else (stretch[s >> 20] >> 1 if cnt == 1 else stretch[s >> 20])
            for m in range(N_MAPS):     # the upper half of the open range, over all of it
                mid = _prefix(hist, hrow_at[m], blocks, m, ((-preds[m]) & 255) + lo + half)
                upper[m] = mid
                x_in[N_HASHED + m] = stretch[_p12(p_hi[m] - mid, p_hi[m] - p_lo[m])]
            if has_net:
                s_lo = ncum[lo + half] - ncum[lo]
                s_hi = ncum[lo + 2 * half] - ncum[lo + half]
                x_in[N_HASHED + N_MAPS] = stretch[_p12(s_hi, s_lo + s_hi)]
            else:
                x_in[N_HASHED + N_MAPS] = 0
            x_in[N_HASHED + N_MAPS + 1] = BIAS
            # the first mixer's weight sets
            ck = c * 8 + k
            agree = 0
            if (blend >> (8 - k)) == (c0 - (np.int64(1) << k)):
                agree = 1 + ((blend >> (7 - k)) & 1)
            rows[0] = SET_OFFSETS[0] + c * 256 + c0
            rows[1] = SET_OFFSETS[1] + ck * 8 + conf
            rows[2] = SET_OFFSETS[2] + ck * 8 + qb
            rows[3] = SET_OFFSETS[3] + ck * 3 + agree
            dot2 = np.int64(0)
            for s in range(N_SETS):
                acc = _dot_row(st.w1, rows[s], x_in)
                d = min(2047, max(-2047, acc >> 16))
                dots[s] = d
                probs[s] = squash[d + 2047]
                dot2 += st.w2[ck, s] * d
            dot2 += st.w2[ck, N_SETS] * BIAS
            dm = min(2047, max(-2047, dot2 >> 16))
            pm = np.int64(squash[dm + 2047])
            a1row = c * 256 + c0
            pa1, j1 = _apm(st.apm1, a1row, dm)
            # the second APM's context: the network's own stretch, else the local activity
            a2row = ck * 16 + ((np.int64(x_in[N_HASHED + N_MAPS]) + 2048) >> 8) if has_net else ck * 8 + qa
            pa2, j2 = _apm(st.apm2, a2row, dm)
            p16 = (pm * 32 + pa1 + pa2 + 2) >> 2     # half the mixer's, a quarter each APM's
            p16 = min(65535 - 32, max(32, p16))
            # the bit
            if decoding:
                bit = bitcoder.decode_bit(dec, data, p16)
            else:
                bit = (value >> (7 - k)) & 1
                bitcoder.encode_bit(enc, out, bit, p16)
            ccost[c] -= np.log2((p16 if bit else 65536 - p16) / 65536.0)   # reported, never coded
            if k == 3:                  # the second nibble's buckets, asked for during the updates
                _fetch_buckets(table, hashes, c0 * 2 + bit, mask, hn)
            for m in range(N_MAPS):     # the open range is now the half the bit chose
                if bit:
                    p_lo[m] = upper[m]
                else:
                    p_hi[m] = upper[m]
            # updates
            for i in range(N_HASHED):
                sl = base[i] + node
                s = np.int64(table[sl])
                p = s >> 16
                cnt = s & 0xFFFF
                p += (((bit << 16) - p) * recip[cnt]) >> 16
                table[sl] = (p << 16) | min(COUNT_MAX, cnt + 1)
            t = bit << 12
            for s in range(N_SETS):
                _update_row(st.w1, rows[s], x_in, np.int32((t - probs[s]) * MIX_LR))   # |err| < 2^16
            err = (t - pm) * MIX2_LR
            for s in range(N_SETS):
                st.w2[ck, s] += (dots[s] * err + ROUND) >> 16
            st.w2[ck, N_SETS] += (BIAS * err + ROUND) >> 16
            st.apm1[a1row, j1] += ((bit << 16) - st.apm1[a1row, j1]) >> APM_RATE
            st.apm2[a2row, j2] += ((bit << 16) - st.apm2[a2row, j2]) >> APM_RATE
            c0 = c0 * 2 + bit
            node = node * 2 + bit
            lo += bit * half
        if decoding:
            img[y, x, c] = lo
            if dec[bitcoder.D_OVER] > 8:
                _add_cost(st, ccost)
                return e + 1
        # the blend's sub-predictors learn their errors
        for i in range(N_BLEND):
            st.perr[y, x, c, i] = min(255, abs(lo - sub[i]))
        st.perr[y, x, c, N_BLEND] = (lo - blend) & 255
        # the residual maps learn the value
        for m in range(N_MAPS):
            hrow = st.hist[m, c, mctx[m]]
            brow = st.hblock[m, c, mctx[m]]
            v = (lo - preds[m]) & 255
            hrow[v] += H_INC
            brow[v >> 4] += H_INC
            if blocks[m, 16] + H_INC > H_LIMIT:      # the total before this value, and this value
                for v in range(256):
                    hrow[v] >>= 1
                for b in range(16):
                    tot = 0
                    for v in range(16 * b, 16 * b + 16):
                        tot += hrow[v]
                    brow[b] = tot
    _add_cost(st, ccost)
    return len(ys)


@numba.njit(parallel=True, nogil=True)
def code_parts(table, hist, hblock, w1, w2, apm1, apm2, perr, cost, squash, stretch, recip, img, ys, xs, cs, tops,
               bounds, counts, crow, has_net, decs, data, data_starts, short):
    """Decode with ``code`` in every column part at once, one part per
    thread: part p decodes, in the order given, the sub-pixels with
    bounds[p] <= xs < bounds[p + 1], with its own state (the stacked
    arrays' row p, from ``new_states``) from its own stream (decs[p] and
    data[data_starts[p]:data_starts[p + 1]]).  The parts share only ``img``,
    where they read pixels of other parts decoded before (the network's
    stream order guarantees it, one call being one colour of one step), so
    the result never depends on the number of threads.  short[p]: the
    sub-pixels part p left undecoded (0 unless it ran past its data)."""
    tb = Tables(squash, stretch, recip)
    no_enc = np.zeros(5, np.int64)          # the encoder's state and output: never touched when decoding
    no_out = np.zeros(0, np.uint8)
    for p in numba.prange(len(bounds) - 1):
        sel = np.nonzero((xs >= bounds[p]) & (xs < bounds[p + 1]))[0]
        st = State(table[p], hist[p], hblock[p], w1[p], w2[p], apm1[p], apm2[p], perr[p], cost[p])
        short[p] = len(sel) - code(st, tb, img, ys[sel], xs[sel], cs[sel], tops[sel], counts, crow[sel], has_net,
                                   True, True, no_enc, no_out, decs[p],
                                   data[data_starts[p]:data_starts[p + 1]])
