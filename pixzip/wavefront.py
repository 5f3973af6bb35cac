"""The decode loop: the integer network run along the wavefront schedule.

Each step evaluates the network, batched, at every ready pixel.  The vertical
stack is computed once per position, one column per layer and row per step,
along a frontier that runs ahead of the decoded pixels.  The horizontal stack
is computed only at the positions being decoded, in three colour sub-steps,
from per-layer row buffers.  The arithmetic runs in the compiled kernels of
``intkernels``; this module only walks the schedule.  A ``source`` turns
each batch of counts into symbols: the entropy decoder when decompressing, a
random generator when sampling, or the known image when checking exactness.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numba
import numpy as np

from . import intkernels as K
from . import simd
from .intnet import IntGatedPixelCNN
from .schedule import n_steps, plan, strip_layout

# source(counts (n, 256) float64 array of integers >= 1, rows, cols, colour) -> symbols (n,) integers
Source = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]


class _Layout(NamedTuple):
    """The decoder's buffer sizes for an image, shared by ``decode_image`` and ``decode_memory``."""
    nb: int       # strips
    S: int        # rows per strip
    last: int     # rows in the last strip
    ring: int     # rows alive at once, plus those read above
    cw: int       # columns each row keeps per layer (``K.column_ring``)
    cap: int      # most positions in one step, padded


def _layout(net: IntGatedPixelCNN, height: int, width: int, strip_height: int) -> _Layout:
    R, k2 = net.reach, net.k2
    lag = R + 1
    nb, S = strip_layout(height, strip_height)
    return _Layout(nb, S, height - (nb - 1) * S, min(S, (width + R) // lag + k2 + 3), K.column_ring(R, k2, lag),
                   simd.padded(nb * min(S, (width + R) // lag + 2)))


def decode_memory(net: IntGatedPixelCNN, height: int, width: int, strip_height: int = 0) -> int:
    """Bytes that ``decode_image`` allocates for an image (the shapes of its
    buffers), so that a file claiming an image whose decoding would take more
    memory than allowed is refused before anything is allocated.  Thin
    strips are what cost: every strip keeps its own rings."""
    prog = K.program(net)
    k2, p, L, C = net.k2, net.p, net.layers, net.colors
    nb, S, _, ring, cw, cap = _layout(net, height, width, strip_height)
    images = nb * (S + k2 + 1) * (width + 2 * k2) * C * 2 + height * width * C     # xi, out
    rings = L * nb * (ring + 1) * 2 * cw * p * (2 + 4 + 2)                          # V, LK, HB
    per_position = (L * simd.even(p) * 2 + prog.skip * 8 + simd.even(prog.hidden) * 2 + 256 * 8 + 8
                    + numba.get_num_threads() * K.Scratch.bytes_per_row(prog))     # G, SK, HID, counts, scratch
    return images + rings + cap * per_position


def decode_image(net: IntGatedPixelCNN, height: int, width: int, source: Source, label: int | None = None,
                 progress: Callable[[int], None] | None = None, strip_height: int = 0) -> np.ndarray:
    """Run the schedule over an (H, W) image; returns the uint8 (H, W, C) pixels.

    With ``strip_height`` S > 0 the image is coded as independent strips of S
    rows (no context across them), decoded in lockstep as a batch: a step then
    decodes the ready pixels of every strip, strip by strip in stream order."""
    prog = K.program(net)
    R, k2, p, L, C = net.reach, net.k2, net.p, net.layers, net.colors
    lag = R + 1
    nb, S, last, ring, cw, cap = _layout(net, height, width, strip_height)
    zero = ring                                        # a slot that stays zero (rows above a strip)
    xi = np.zeros((nb, S + k2 + 1, width + 2 * k2, C), np.int16)   # 2x-255; k2+1 zero rows on top
    xflat = xi.reshape(nb, S + k2 + 1, -1)
    # each row of a layer keeps a ring of cw columns (V and HB store theirs twice, see intkernels)
    V = np.zeros((L, nb, ring + 1, 2 * cw * p), np.int16)
    LK = np.zeros((L, nb, ring + 1, cw * 2 * p), np.int32)
    HB = np.zeros((L, nb, ring + 1, 2 * cw * p), np.int16)
    G = np.zeros((L, cap, simd.even(p)), np.int16)
    SK = np.zeros((cap, prog.skip), np.float64)
    HID = np.zeros((cap, simd.even(prog.hidden)), np.int16)
    counts = np.zeros((cap, 256), np.float64)
    count_rows = np.arange(cap)                        # position q's counts are counts[q]
    G32, HID32 = G.view(np.int32), HID.view(np.int32)
    threads = numba.get_num_threads()
    scratch = K.Scratch(prog, threads, cap).args()    # the kernels split a step into one task per thread
    vcond, lcond = prog.conditioning(label)
    out = np.zeros((height, width, C), dtype=np.uint8)
    weights = prog.weights + (prog.layer_ops,)

    none = np.zeros(0, np.int64)
    steps = n_steps(S, width, lag)
    frontier = plan(S, width, lag, nb, last, -R, steps, ahead=R - k2)
    for (t, vb, vi, _, _), (_, b, i, j, rows) in zip(frontier, plan(S, width, lag, nb, last, -R, steps)):
        # Vertical frontier: layer l at column t - i*lag + R - (l+1)*k2 of row i.
        if len(vi):
            K.vertical_step(threads, t, lag, R, k2, width, ring, zero, cw, vb, vi, xflat, V, LK, *weights,
                            prog.gates, prog.tanh, prog.sigmoid, vcond, lcond, *scratch)
        # Decode the ready pixels (column j of row i), colour by colour.
        n = len(i)
        if not n:
            continue
        sym = none
        for c in range(C):      # each sub-step first writes the colour before it
            K.horizontal_step(threads, c, k2, ring, cw, b, i, j, out, rows, sym, xflat, LK, HB, G, G32, SK, HID,
                              HID32, *weights, prog.head_ops, prog.gates, prog.head_in, prog.tanh, prog.sigmoid,
                              prog.exp, *scratch, counts, count_rows)
            sym = np.asarray(source(counts[:n], rows, j, c), dtype=np.int64)
        K.put_symbols(out, xflat, rows, b, i, j, C - 1, k2, sym)
        if progress is not None:
            progress(n)
    return out
