"""The exact int16 matrix product of the integer network's kernels (numba).

``gemm`` computes ``Y[q, :O] = sum_k X[q, k] * W[:, k]`` for a block of
positions q, in int32, with int16 inputs and weights.  Its inner step is the
multiply-add of int16 pairs into int32 lanes: 4 positions x 16 outputs are
held in eight 8-lane accumulators, each input pair is broadcast once per
position and each weight vector is loaded once per 4 positions.

The step is written as plain LLVM IR (sign-extend, multiply, add the even and
odd products), which the x86 back end turns into ``vpmaddwd`` and other
targets into their own widening multiply-adds; it is the same integer
arithmetic on every machine.  No sum can wrap: the callers only run layers
whose bound sum|w| * max|x| is below 2^31 (checked when a model is packed).
Measured on the project's 2-core AMD EPYC (AVX2): 60-74 GMAC/s per thread,
against 15-18 for a vectorized dot-product loop.

Weights are packed by ``pack``: input pairs outermost, then outputs (padded
to a multiple of 8; a last tile of 8 outputs has four accumulators), then the
two inputs of a pair.  Inputs are read as
int32 words, each holding one pair; an odd last input meets a zero weight.

``gemm_loop`` is the same product as plain loops (no vector type, no
intrinsic), for a target where the LLVM vector code is in doubt: the
kernels run it instead when ``PIXZIP_GEMM=loop`` (``program.GEMMS``), and
the tests check that the two give the same integers.

Both are compiled without numba's reference counts (``_nrt=False``,
``layers``): they allocate nothing.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

LANES = 8            # int32 lanes of one accumulator
TILE_OUT = 2 * LANES  # outputs per tile
TILE_POS = 4          # positions per tile

_I16x16 = ir.VectorType(ir.IntType(16), 2 * LANES)
_I32x8 = ir.VectorType(ir.IntType(32), LANES)
_I32x16 = ir.VectorType(ir.IntType(32), 2 * LANES)


class _Acc(types.Type):
    """Eight int32 lanes, kept in a vector register by the compiled code."""

    def __init__(self):
        super().__init__(name="pixzip.I32x8")


acc_type = _Acc()


@register_model(_Acc)
class _AccModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _I32x8)


@intrinsic
def _zero(typingctx):
    def codegen(context, builder, sig, args):
        return ir.Constant(_I32x8, None)
    return acc_type(), codegen


@intrinsic
def _madd(typingctx, acc, pair, w, off):
    """acc + (the int16 pair in ``pair``, broadcast) . (w[off:off+16] as 8 pairs)."""
    def codegen(context, builder, sig, args):
        acc, pair, w, off = args
        base = context.make_array(sig.args[2])(context, builder, w).data
        wv = builder.load(builder.bitcast(builder.gep(base, [off]), _I16x16.as_pointer()), align=2)
        xs = builder.insert_element(ir.Constant(_I32x8, None), pair, ir.Constant(ir.IntType(32), 0))
        xs = builder.bitcast(builder.shuffle_vector(xs, xs, ir.Constant(_I32x8, [0] * LANES)), _I16x16)
        prod = builder.mul(builder.sext(xs, _I32x16), builder.sext(wv, _I32x16))
        even = builder.shuffle_vector(prod, prod, ir.Constant(_I32x8, list(range(0, 2 * LANES, 2))))
        odd = builder.shuffle_vector(prod, prod, ir.Constant(_I32x8, list(range(1, 2 * LANES, 2))))
        return builder.add(acc, builder.add(even, odd))
    return acc_type(acc_type, types.int32, w, off), codegen


@intrinsic
def _store(typingctx, y, row, col, v):
    """y[row, col:col+8] = v (y is 2-D int32 with contiguous rows)."""
    def codegen(context, builder, sig, args):
        y, row, col, v = args
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, y)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [row, col])
        builder.store(v, builder.bitcast(ptr, _I32x8.as_pointer()), align=4)
        return context.get_dummy_value()
    return types.none(y, row, col, v), codegen


def pack(w: np.ndarray) -> tuple[np.ndarray, int, int]:
    """(packed int16 weights, input pairs, padded outputs) of a (rows, inputs)
    matrix.  The packed array's length is a multiple of 64 bytes, so that ops
    packed one after another each start on a cache line."""
    rows, n_in = w.shape
    pairs = (n_in + 1) // 2
    out = -(-rows // LANES) * LANES
    a = np.zeros((out, 2 * pairs), np.int16)
    a[:rows, :n_in] = w
    packed = np.ascontiguousarray(a.reshape(out, pairs, 2).transpose(1, 0, 2)).ravel()
    return np.concatenate([packed, np.zeros(-len(packed) % 32, np.int16)]), pairs, out


def zeros(shape, dtype) -> np.ndarray:
    """np.zeros whose data starts on a 64-byte boundary (a cache line): a vector
    load or store that straddles two lines costs two."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    raw = np.zeros(n * dtype.itemsize + 64, np.uint8)
    start = (-raw.ctypes.data) % 64
    return raw[start:start + n * dtype.itemsize].view(dtype).reshape(shape)


def even(n: int) -> int:
    """Columns of an int16 buffer read as int32 pairs."""
    return n + (n & 1)


def padded(n: int) -> int:
    """Rows a position buffer needs for n positions (gemm works in tiles of 4)."""
    return -(-n // TILE_POS) * TILE_POS


@njit(nogil=True, _nrt=False)
def gemm(x, x0, n, w, off, pairs, out, y):
    """y[q, :out] = x[x0 + q] . W for q < padded(n): ``x`` (int32 pairs, >= x0 +
    padded(n) rows, >= pairs columns), W = ``w[off:]`` as packed by ``pack``."""
    whole = out - out % TILE_OUT
    for q0 in range(0, n, TILE_POS):
        p0 = x0 + q0
        for o0 in range(0, whole, TILE_OUT):
            a0 = _zero(); a1 = _zero(); b0 = _zero(); b1 = _zero()  # noqa: E702
            c0 = _zero(); c1 = _zero(); d0 = _zero(); d1 = _zero()  # noqa: E702
            for k in range(pairs):
                o = off + (k * out + o0) * 2
                xa, xb, xc, xd = x[p0, k], x[p0 + 1, k], x[p0 + 2, k], x[p0 + 3, k]
                a0 = _madd(a0, xa, w, o); a1 = _madd(a1, xa, w, o + 16)  # noqa: E702
                b0 = _madd(b0, xb, w, o); b1 = _madd(b1, xb, w, o + 16)  # noqa: E702
                c0 = _madd(c0, xc, w, o); c1 = _madd(c1, xc, w, o + 16)  # noqa: E702
                d0 = _madd(d0, xd, w, o); d1 = _madd(d1, xd, w, o + 16)  # noqa: E702
            _store(y, q0, o0, a0); _store(y, q0, o0 + 8, a1)  # noqa: E702
            _store(y, q0 + 1, o0, b0); _store(y, q0 + 1, o0 + 8, b1)  # noqa: E702
            _store(y, q0 + 2, o0, c0); _store(y, q0 + 2, o0 + 8, c1)  # noqa: E702
            _store(y, q0 + 3, o0, d0); _store(y, q0 + 3, o0 + 8, d1)  # noqa: E702
        if whole < out:         # a last tile of 8 outputs
            a0 = _zero(); b0 = _zero(); c0 = _zero(); d0 = _zero()  # noqa: E702
            for k in range(pairs):
                o = off + (k * out + whole) * 2
                a0 = _madd(a0, x[p0, k], w, o); b0 = _madd(b0, x[p0 + 1, k], w, o)  # noqa: E702
                c0 = _madd(c0, x[p0 + 2, k], w, o); d0 = _madd(d0, x[p0 + 3, k], w, o)  # noqa: E702
            _store(y, q0, whole, a0); _store(y, q0 + 1, whole, b0)  # noqa: E702
            _store(y, q0 + 2, whole, c0); _store(y, q0 + 3, whole, d0)  # noqa: E702


@njit(nogil=True, _nrt=False)
def gemm_loop(x, x0, n, w, off, pairs, out, y):
    """``gemm`` as plain loops: the same rows (q < padded(n)) and the same
    integers, summed in int64 and wrapped to int32 as the vector lanes wrap
    (the packer's bound keeps every sum below 2^31, so neither wraps)."""
    rows = (n + TILE_POS - 1) // TILE_POS * TILE_POS
    for q in range(rows):
        for o in range(out):
            acc = np.int64(0)
            for k in range(pairs):
                v = np.int64(x[x0 + q, k])
                lo = (v & 0xFFFF) - ((v & 0x8000) << 1)     # the pair's first int16 (the low half)
                hi = v >> 16                                 # its second
                at = off + (k * out + o) * 2
                acc += lo * np.int64(w[at]) + hi * np.int64(w[at + 1])
            y[q, o] = np.int32(((acc + (1 << 31)) & 0xFFFFFFFF) - (1 << 31))
