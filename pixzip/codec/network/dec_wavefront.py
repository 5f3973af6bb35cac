"""The decode loop: the integer network run along the wavefront schedule.

Each step evaluates the network, batched, at every ready pixel.  The vertical
stack is computed once per position, one column per layer and row per step,
along a frontier that runs ahead of the decoded pixels.  The horizontal stack
is computed only at the positions being decoded, in three colour sub-steps,
from per-layer row buffers.  The arithmetic runs in the compiled kernels of
``kernels.decoder``; this module only walks the schedule.  A source
(``contract.Source``) turns each batch of counts into symbols: the entropy
decoder when decompressing, a random generator when sampling, or the known
image when checking exactness.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numba
import numpy as np

from .. import kernel_cache
from ..contract import Source
from .kernels import decoder as K
from .. import threads as step_threads
from .kernels import gemm
from .kernels.program import program
from .modelfile import ModelFile
from .schedule import n_steps, plan, strip_layout


class _Layout(NamedTuple):
    """The decoder's buffer sizes for an image, shared by ``decode_image`` and ``decode_memory``."""
    nb: int       # strips
    S: int        # rows per strip
    last: int     # rows in the last strip
    ring: int     # rows alive at once, plus those read above
    slots: tuple  # steps of outputs V, LK and HB keep (``kernels.decoder.slots``)
    cap: int      # most positions in one step, padded


def _layout(net: ModelFile, height: int, width: int, strip_height: int) -> _Layout:
    R, k2 = net.reach, net.k2
    lag = R + 1
    nb, S = strip_layout(height, strip_height)
    return _Layout(nb, S, height - (nb - 1) * S, min(S, (width + R) // lag + k2 + 3), K.slots(R, k2, lag),
                   gemm.padded(nb * min(S, (width + R) // lag + 2)))


def decode_memory(net: ModelFile, height: int, width: int, strip_height: int = 0, product: str | None = None) -> int:
    """Bytes that ``decode_image`` allocates for an image (the shapes of its
    buffers), so that a file claiming an image whose decoding would take more
    memory than allowed is refused before anything is allocated.  Thin
    strips are what cost: every strip keeps its own rings."""
    prog = program(net, product)
    k2, p, L, C = net.k2, net.p, net.layers, net.colors
    nb, S, _, ring, (tv, tlk, th), cap = _layout(net, height, width, strip_height)
    images = nb * (S + k2 + 1) * (width + 2 * k2) * C * 2 + height * width * C     # xi, out
    rings = L * nb * ring * p * 2 * (tv + 2 * tlk + th)                             # V, LK, HB
    scratch = cap * (8 + numba.get_num_threads() * prog.scratch_bytes_per_row())    # count_rows, scratch
    return images + rings + step_buffer_bytes(net, height, width, strip_height, product) + scratch


def early_sum_bytes(net: ModelFile, height: int, width: int, strip_height: int = 0) -> int:
    """Bytes of the one-state ``-9`` decoder's early sums of the next steps' frontiers (``dec_pipeline``,
    ``kernels.handover``): two steps' rows, every layer, int32 per gate input."""
    return 2 * net.layers * _layout(net, height, width, strip_height).cap * 2 * net.p * 4


def step_buffer_bytes(net: ModelFile, height: int, width: int, strip_height: int = 0,
                      product: str | None = None) -> int:
    """Bytes of one set of ``StepBuffers`` (G, SK, HID, counts) for an image: ``decode_memory`` counts one,
    and the one-state ``-9`` decoder (``dec_pipeline``) keeps a second, for odd steps."""
    prog = program(net, product)
    cap = _layout(net, height, width, strip_height).cap
    return cap * (net.layers * gemm.even(net.p) * 2 + prog.skip * 8 + gemm.even(prog.hidden) * 2 + 256 * 8)


def buffers(net: ModelFile, height: int, width: int, strip_height: int = 0, label: int | None = None,
            product: str | None = None):
    """The decoder's buffers for an (H, W) image (``decode_memory`` counts
    them): (the program, the ``_Layout``, the ``Geometry``, the ``Rings``, the
    ``StepBuffers``, the scratch of one task per numba thread, the
    conditioning), the kernels' cache made ready."""
    prog = program(net, product)
    kernel_cache.wait_for_precompiled()          # the decoder's kernels, if a process of their own is compiling them
    R, k2, p, L, C = net.reach, net.k2, net.p, net.layers, net.colors
    lag = R + 1
    lay = _layout(net, height, width, strip_height)
    nb, S, last, ring, (tv, tlk, th), cap = lay
    xi = np.zeros((nb, S + k2 + 1, width + 2 * k2, C), np.int16)   # 2x-255; k2+1 zero rows on top
    # each layer keeps the outputs of a few steps of the rows alive (``kernels.decoder.Rings``)
    rings = K.Rings(xi=xi.reshape(nb, S + k2 + 1, -1), V=np.zeros((L, tv, nb * ring, p), np.int16),
                    LK=np.zeros((L, tlk, nb * ring, 2 * p), np.int16), HB=np.zeros((L, th, nb * ring, p), np.int16))
    step = K.StepBuffers(G=np.zeros((L, cap, gemm.even(p)), np.int16), SK=np.zeros((cap, prog.skip), np.float64),
                         HID=np.zeros((cap, gemm.even(prog.hidden)), np.int16),
                         counts=np.zeros((cap, 256), np.float64),
                         count_rows=np.arange(cap))          # position q's counts are counts[q]
    geo = K.Geometry(lag=lag, R=R, k2=k2, width=width, ring=ring, tv=tv, tlk=tlk, th=th)
    scratch = prog.scratch(numba.get_num_threads(), cap)    # the kernels split a step into one task per thread
    return prog, lay, geo, rings, step, scratch, prog.conditioning(label)


def decode_image(net: ModelFile, height: int, width: int, source: Source, label: int | None = None,
                 progress: Callable[[int], None] | None = None, strip_height: int = 0,
                 product: str | None = None, gray: bool = False) -> np.ndarray:
    """Run the schedule over an (H, W) image; returns the uint8 (H, W, C) pixels.

    With ``strip_height`` S > 0 the image is coded as independent strips of S
    rows (no context across them), decoded in lockstep as a batch: a step then
    decodes the ready pixels of every strip, strip by strip in stream order.
    ``product`` chooses the kernels' int16 product (``program.GEMMS``).
    ``gray``: the source decodes colour 0 only, of a gray image that the
    network sees as (L, L, L); the network still computes every colour (the
    next positions read them), each from the gray value."""
    prog, lay, geo, rings, step, scratch, cond = buffers(net, height, width, strip_height, label, product)
    R, C, lag, k2 = net.reach, net.colors, geo.lag, geo.k2
    nb, S, last = lay.nb, lay.S, lay.last
    xflat = rings.xi
    threads = numba.get_num_threads()
    out = np.zeros((height, width, C), dtype=np.uint8)

    none = np.zeros(0, np.int64)
    steps = n_steps(S, width, lag)
    frontier = plan(S, width, lag, nb, last, -R, steps, ahead=R - k2)
    with step_threads.per_step() as share:       # a step too small to share runs on one thread
        for (t, vb, vi, _, _), (_, b, i, j, rows) in zip(frontier, plan(S, width, lag, nb, last, -R, steps)):
            # Vertical frontier: layer l at column t - i*lag + R - (l+1)*k2 of row i.
            if len(vi):
                share(len(vi))
                K.vertical_step(threads, t, geo, vb, vi, rings, prog.weights, cond, scratch)
            # Decode the ready pixels (column j of row i), colour by colour.
            n = len(i)
            if not n:
                continue
            share(n)
            pos = K.Positions(b, i, j, rows)
            sym = none
            for c in range(C):      # each sub-step first writes the colour before it
                K.horizontal_step(threads, c, geo, pos, out, sym, rings, step, prog.weights, scratch)
                if c == 0 or not gray:      # (gray: colours 1 and 2 are colour 0's symbols)
                    sym = np.asarray(source(step.counts[:n], rows, j, c), dtype=np.int64)
            K.put_symbols(out, xflat, pos, C - 1, k2, sym)
            if progress is not None:
                progress(n)
    return out
