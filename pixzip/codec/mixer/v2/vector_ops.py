"""The mixer's vector operations: LLVM intrinsics that numba would leave
scalar, integer and exact, lowered to whatever vector unit the target has.

- ``prefetch``: ask for an array element from memory (no effect on any value);
- ``dot_row``: a weight row's dot product with the inputs, in int64;
- ``update_row``: a weight row's update, in int32;
- ``block_prefix16``: the 17 running sums of 16 uint16 (a residual map's blocks);
- ``add_from16``: a value added to the last lanes of 16 uint16 (a residual map's counts);
- ``forget_add``: a least-squares predictor's normal equations updated;
- ``map_stretches``: every residual map's probability and its stretch at once
  (LLVM's gathers for the tables: scalar loads where a target has none).

Measured on one core (AMD EPYC Zen 4) on a photos-train image, with the
prefetched buckets and the maps' block sums: 4.5-4.9 us per sub-pixel
before, 2.8-3.0 after, the same bytes.  The vector widths are version 1's
(``spec.SPEC_1``): numba freezes them into the code.
"""
from __future__ import annotations

import numba
from llvmlite import ir
from numba.core import cgutils
from numba.extending import intrinsic

from . import SPEC

N_PAD = SPEC.n_pad           # the inputs padded with zeros: whole vectors
N_MAP_LANES = SPEC.n_maps    # the residual maps, read as one vector (``map_stretches``)
ROUND = SPEC.rounding        # weight updates round to nearest


@intrinsic
def prefetch(typingctx, arr, index):
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


def _u16x16_at(context, builder, aryty, ary, start):
    """A pointer to the 16 uint16 of a C-contiguous 1-D array from ary[start] on, as one <16 x i16>."""
    a = context.make_array(aryty)(context, builder, ary)
    p = cgutils.get_item_pointer(context, builder, aryty, a, [start], wraparound=False)
    return builder.bitcast(p, ir.VectorType(ir.IntType(16), 16).as_pointer())


def _splat(builder, value, n):
    """<n x value> from one scalar."""
    vt = ir.VectorType(value.type, n)
    one = builder.insert_element(ir.Constant(vt, None), value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, ir.Constant(vt, None), ir.Constant(ir.VectorType(ir.IntType(32), n), [0] * n))


_ZERO = ir.Constant(ir.IntType(64), 0)


@intrinsic
def dot_row(typingctx, w, row, x):
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
def update_row(typingctx, w, row, x, err):
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
def block_prefix16(typingctx, a, start, out, m):
    """out[m, i] = a[start] + ... + a[start + i - 1] for i <= 16 (out[m, 0] = 0,
    out[m, 16] the total), from the 16 uint16 at a[start] read as one vector
    and summed in 4 steps (a log-step scan): exact, every sum below 2^20."""
    if not (isinstance(a, numba.types.Array) and a.ndim == 1 and a.layout == "C" and a.dtype == numba.types.uint16
            and isinstance(out, numba.types.Array) and out.ndim == 2 and out.layout == "C"
            and out.dtype == numba.types.int64):
        raise numba.core.errors.TypingError("a uint16 C-contiguous vector and an int64 C-contiguous table wanted")

    def codegen(context, builder, sig, args):
        av, sv, ov, mv = args
        i32, i64 = ir.IntType(32), ir.IntType(64)
        v32 = ir.VectorType(i32, 16)
        vals = builder.zext(builder.load(_u16x16_at(context, builder, sig.args[0], av, sv), align=2), v32)
        zero = ir.Constant(v32, [0] * 16)
        acc = vals
        for step in (1, 2, 4, 8):        # inclusive scan: acc[i] += acc[i - step]
            # shuffle(acc, zero): indices < 16 pick acc, >= 16 pick zero
            shifted = builder.shuffle_vector(acc, zero, ir.Constant(ir.VectorType(i32, 16),
                                                                     [(i - step) if i >= step else 16 for i in range(16)]))
            acc = builder.add(acc, shifted)
        # exclusive: out[0] = 0, out[i] = acc[i - 1] for 1 <= i <= 16
        excl = builder.shuffle_vector(acc, zero, ir.Constant(ir.VectorType(i32, 16), [16] + list(range(15))))
        ot = sig.args[2]
        oary = context.make_array(ot)(context, builder, ov)
        q = cgutils.get_item_pointer(context, builder, ot, oary, [mv, _ZERO], wraparound=False)
        builder.store(builder.sext(excl, ir.VectorType(i64, 16)), builder.bitcast(q, ir.VectorType(i64, 16).as_pointer()),
                      align=8)
        total = builder.extract_element(acc, ir.Constant(i32, 15))
        q16 = cgutils.get_item_pointer(context, builder, ot, oary, [mv, ir.Constant(i64, 16)], wraparound=False)
        builder.store(builder.sext(total, i64), q16)
        return builder.sext(total, i64)
    return numba.types.int64(a, start, out, m), codegen


@intrinsic
def add_from16(typingctx, a, start, first, inc):
    """a[start + j] += inc for first <= j < 16 (0 <= first <= 16), the 16
    uint16 from a[start] read and written as one vector (all must lie in
    a): exact while every sum stays below 2^16 (the caller's bound)."""
    if not (isinstance(a, numba.types.Array) and a.ndim == 1 and a.layout == "C" and a.dtype == numba.types.uint16):
        raise numba.core.errors.TypingError("a uint16 C-contiguous array wanted")

    def codegen(context, builder, sig, args):
        av, sv, fv, iv = args
        i16, i32 = ir.IntType(16), ir.IntType(32)
        v16 = ir.VectorType(i16, 16)
        p = _u16x16_at(context, builder, sig.args[0], av, sv)
        lanes = ir.Constant(ir.VectorType(i32, 16), list(range(16)))
        on = builder.icmp_signed(">=", lanes, _splat(builder, builder.trunc(fv, i32), 16))
        add = builder.select(on, _splat(builder, builder.trunc(iv, i16), 16), ir.Constant(v16, [0] * 16))
        builder.store(builder.add(builder.load(p, align=2), add), p, align=2)
        return context.get_dummy_value()
    return numba.types.none(a, start, first, inc), codegen


OLS_WIDTH = 24          # a least-squares predictor's row (``ols.OLS_N``, which checks it)


@intrinsic
def forget_add(typingctx, st, f, n, s, t, row_b):
    """A least-squares predictor's normal equations forgotten at 2^-s, with
    the inputs f and the target t added (``ols.update``): for i <= j < n,
    st[i, j] = st[i, j] - (st[i, j] >> s) + f[i] * f[j], and for i < n,
    st[row_b, i] = st[row_b, i] - (st[row_b, i] >> s) + f[i] * t; the rest
    unchanged.  f is read once as one vector of OLS_WIDTH int32, each row
    as another, in int32 lanes: every value exact as ``ols``' bound 1
    states (each product below 2^16, each entry below 2^28).  One call for
    all the rows, so that f stays in registers (numba cannot know that a
    row's store leaves f unchanged), and int32 lanes, since AVX2 has no
    64-bit arithmetic shift.  An update of 13 inputs took 98 ns against
    234 as int64 rows, one call each (0.10.0), and the mixer's updates
    1.0 thousand cycles per sub-pixel against 1.6 (AMD EPYC Zen 3, AVX2;
    ``docs/mixer2.md``)."""
    if not (isinstance(st, numba.types.Array) and st.ndim == 2 and st.layout == "C" and st.dtype == numba.types.int32
            and isinstance(f, numba.types.Array) and f.ndim == 1 and f.layout == "C" and f.dtype == numba.types.int32):
        raise numba.core.errors.TypingError("int32 C-contiguous rows wanted")

    def codegen(context, builder, sig, args):
        stv, fv, nv, sv, tv, bv = args
        i32 = ir.IntType(32)
        v32 = ir.VectorType(i32, OLS_WIDTH)
        sa = context.make_array(sig.args[0])(context, builder, stv)
        fa = context.make_array(sig.args[1])(context, builder, fv)

        def row_ptr(r):
            p = cgutils.get_item_pointer(context, builder, sig.args[0], sa, [r, _ZERO], wraparound=False)
            return builder.bitcast(p, v32.as_pointer())
        fp = builder.bitcast(cgutils.get_item_pointer(context, builder, sig.args[1], fa, [_ZERO], wraparound=False),
                             v32.as_pointer())
        fvec = builder.load(fp, align=4)
        n32 = builder.trunc(nv, i32)
        shift = _splat(builder, builder.trunc(sv, i32), OLS_WIDTH)
        lanes = ir.Constant(v32, list(range(OLS_WIDTH)))
        below_n = builder.icmp_signed("<", lanes, _splat(builder, n32, OLS_WIDTH))

        def forget_add_vec(rp, factor, keep):
            row = builder.load(rp, align=4)
            new = builder.add(builder.sub(row, builder.ashr(row, shift)), builder.mul(fvec, factor))
            builder.store(builder.select(keep, new, row), rp, align=4)
        # b: every lane below n
        forget_add_vec(row_ptr(bv), _splat(builder, builder.trunc(tv, i32), OLS_WIDTH), below_n)
        # A: row i, lanes i..n-1, for each i < n
        for i in range(OLS_WIDTH):
            with builder.if_then(builder.icmp_signed("<", ir.Constant(i32, i), n32), likely=i < 6):
                keep = builder.and_(below_n, ir.Constant(ir.VectorType(ir.IntType(1), OLS_WIDTH),
                                                         [j >= i for j in range(OLS_WIDTH)]))
                fi = builder.extract_element(fvec, ir.Constant(i32, i))
                forget_add_vec(row_ptr(ir.Constant(ir.IntType(64), i)), _splat(builder, fi, OLS_WIDTH), keep)
        return context.get_dummy_value()
    return numba.types.none(st, f, n, s, t, row_b), codegen


def _gather(builder, base, idx, elem, n):
    """<n x elem> loaded from base[idx[i]] (base: an elem pointer, idx: <n x i64>): LLVM's masked gather,
    all lanes on (scalar loads where the target has no gather)."""
    i64 = ir.IntType(64)
    addr = builder.add(_splat(builder, builder.ptrtoint(base, i64), n),
                       builder.mul(idx, ir.Constant(ir.VectorType(i64, n), [elem.width // 8] * n)))
    ptrs = builder.inttoptr(addr, ir.VectorType(elem.as_pointer(), n))
    vt = ir.VectorType(elem, n)
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(vt, [ptrs.type, ir.IntType(32), ir.VectorType(ir.IntType(1), n), vt]),
        f"llvm.masked.gather.v{n}i{elem.width}.v{n}p0i{elem.width}")
    return builder.call(fn, [ptrs, ir.Constant(ir.IntType(32), elem.width // 8),
                             ir.Constant(ir.VectorType(ir.IntType(1), n), [1] * n), ir.Constant(vt, None)])


@intrinsic
def map_stretches(typingctx, mv, hi_row, mid_row, lo_row, recip, stretch, x_in, first):
    """For every map m at once (mv's N_MAP_LANES columns, the spec's maps: ``mv`` is the kernel's
    (6, N_MAPS) working values, its rows read whole): x_in[first + m] =
    stretch[p12_map(mv[hi_row, m] - mv[mid_row, m], mv[hi_row, m] - mv[lo_row, m])], exactly as
    ``components.p12_map`` computes it one map at a time: the shift is the bit length of total >> 12 (a
    count of leading zeros), the reciprocal and the stretch gathered from their tables."""
    if not (isinstance(mv, numba.types.Array) and mv.ndim == 2 and mv.layout == "C" and mv.dtype == numba.types.int64
            and _int32_c(x_in, 1) and isinstance(recip, numba.types.Array) and recip.dtype == numba.types.int64
            and recip.layout == "C" and _int32_c(stretch, 1)):
        raise numba.core.errors.TypingError("int64 working values, int64 reciprocals, int32 stretches and inputs")

    def codegen(context, builder, sig, args):
        mvv, hr, mr, lr, rv, sv, xv, fv = args
        i64, i32 = ir.IntType(64), ir.IntType(32)
        mty = sig.args[0]
        n = N_MAP_LANES
        v64 = ir.VectorType(i64, n)
        ma = context.make_array(mty)(context, builder, mvv)

        def row(r):
            p = cgutils.get_item_pointer(context, builder, mty, ma, [r, _ZERO], wraparound=False)
            return builder.load(builder.bitcast(p, v64.as_pointer()), align=8)
        hi, mid, lo = row(hr), row(mr), row(lr)

        def splat(v):
            return _splat(builder, ir.Constant(i64, v), n)
        a = builder.add(builder.sub(hi, mid), splat(16))
        t = builder.add(builder.sub(hi, lo), splat(32))
        ctlz = cgutils.get_or_insert_function(builder.module, ir.FunctionType(v64, [v64, ir.IntType(1)]),
                                              f"llvm.ctlz.v{n}i64")
        s = builder.sub(splat(64), builder.call(ctlz, [builder.lshr(t, splat(12)), ir.Constant(ir.IntType(1), 0)]))
        ra = context.make_array(sig.args[4])(context, builder, rv)
        rec = _gather(builder, ra.data, builder.ashr(t, s), i64, n)
        p = builder.ashr(builder.add(builder.mul(builder.ashr(a, s), rec), splat(1 << 15)), splat(16))
        lo_ok = builder.icmp_signed(">", p, splat(1))
        p = builder.select(lo_ok, p, splat(1))
        hi_ok = builder.icmp_signed("<", p, splat(4095))
        p = builder.select(hi_ok, p, splat(4095))
        sa = context.make_array(sig.args[5])(context, builder, sv)
        st = _gather(builder, sa.data, p, i32, n)
        xa = context.make_array(sig.args[6])(context, builder, xv)
        xp = cgutils.get_item_pointer(context, builder, sig.args[6], xa, [fv], wraparound=False)
        builder.store(st, builder.bitcast(xp, ir.VectorType(i32, n).as_pointer()), align=4)
        return context.get_dummy_value()
    return numba.types.none(mv, hi_row, mid_row, lo_row, recip, stretch, x_in, first), codegen
