"""The mixer with the network's counts as an input: the adapter that feeds
the network's stream (``network.enc_stream`` when coding, the decoder's
wavefront when decoding) into the mixer's coders.

Coder 3 (``column_parts``) is what ``compress`` makes; coder 2 in a network
payload (one state, ``one_state``) is only read, from files made before the
column parts.  The stream's order and the mixer's bytes are the mixer's
(``one_state``, ``column_parts``); this module only carries the network's
counts to them.
"""
from __future__ import annotations

import time

import numpy as np

from ...errors import CorruptError, UnknownModelError
from ..network import rangecoder
from ..network.modelfile import ModelFile

MIXER_PARTS = 2          # the column parts written (``column_parts.PARTS``)


def encode_in_parts(pixels, net: ModelFile, strip_rows, strip_height, device, progress, measure: bool,
                    parts: int, encoder=None, gray: bool = False) -> tuple[bytes, float, float | None, float]:
    """(payload, the mixer's ideal bits, the network's own cross-entropy in
    bits or None, the seconds spent measuring it) of the context mixer over
    the network's stream, the network's counts as inputs, in ``parts``
    column parts (coder 3).  The parts are independent on this side, so each
    codes the stream's chunks in a thread of its own, at its own pace (the
    kernel runs without the GIL), while the network makes the next chunk
    (its next block of rows in another thread, on one core:
    ``enc_stream._Heads``).  At most two chunks are alive, their counts in
    two buffers used in turn.  Each part codes its chunks in order, so the
    bytes never depend on the threads.  ``measure``: also the network's
    cross-entropy, for comparison.  ``encoder``: the parts' encoder class (a
    mixer version's; ``column_parts.Encoder`` when None).  ``gray``: a gray
    image (coder 7), which an RGB network sees as (L, L, L); the mixer codes
    its one colour with the network's counts of colour 0, the first, which
    depend only on the pixels before."""
    from concurrent.futures import ThreadPoolExecutor

    import numba

    from ..network.enc_stream import encode_device, symbols_and_counts
    from .column_parts import Encoder
    from ..network.schedule import strip_layout
    Encoder = encoder or Encoder
    if net.reach < 1:
        raise UnknownModelError(f"model {net.name!r} sees no pixel to the upper right; the mixer needs one")
    enc = Encoder(pixels, parts, strip_layout(pixels.shape[0], strip_height)[1])
    seen = np.ascontiguousarray(np.repeat(pixels, net.colors, axis=2)) if gray else pixels
    network_bits = seconds = 0.0
    threads = numba.get_num_threads()
    coders = [ThreadPoolExecutor(1, thread_name_prefix=f"pixzip-part{p}") for p in range(parts)]
    try:
        coding: list = []          # the chunk before, being coded
        for sym, counts, n, where in symbols_and_counts(net, seen, strip_rows, strip_height,
                                                        encode_device(device), positions=True,
                                                        next_rows_in_thread=True, reuse=2):
            # once the first block of rows is made (on every core), this
            # thread's kernels (the counts) run on one: the parts need the
            # rest, and idle kernel threads spin.  Measured on a 768x512
            # photo, 2 cores: 1.3-2.3 CPU-seconds less, 6.9 s against 8.3 s.
            numba.set_num_threads(1)
            for f in coding:
                f.result()
            if gray:        # colour 0's symbols (the stream's order: step, colour, strip, row)
                first = np.flatnonzero(where[2] == 0)
                sym, counts, where = sym[first], counts[first], tuple(a[first] for a in where)
            coding = [coders[p].submit(enc.add_part, p, *where, counts) for p in range(parts)]
            if measure:
                t = time.perf_counter()
                network_bits += rangecoder.cross_entropy_bits(sym, counts)
                seconds += time.perf_counter() - t
            del sym, counts
            if progress is not None:
                progress(n)
        for f in coding:
            f.result()
    finally:
        numba.set_num_threads(threads)
        for c in coders:
            c.shutdown(wait=True, cancel_futures=True)
    data = enc.finish()
    return data, enc.ideal_bits, (network_bits if measure else None), seconds


def decode(payload, net: ModelFile, height: int, width: int, colours: int, strip_height: int, in_parts: bool,
           progress, decoder=None, gray: bool = False) -> np.ndarray:
    """The pixels of a network payload of the mixer: in column parts
    (coder 3, ``in_parts``) or in one state (coder 2).  ``decoder``: the
    decoder class (a mixer version's; version 1's when None).  ``gray``: a
    gray image (``colours`` 1) that the RGB network sees as (L, L, L)
    (coder 7, in parts)."""
    from ..network.dec_pipeline import decode_parts
    from ..network.dec_wavefront import decode_image
    from ..network.kernels import pipeline
    from ..network.schedule import strip_layout
    from . import column_parts, one_state
    if net.reach < 1:
        raise CorruptError(f"model {net.name!r} cannot have made a mixed payload")
    _, S = strip_layout(height, strip_height)
    if in_parts:
        dec = (decoder or column_parts.Decoder)(payload, height, width, colours, S)
    else:
        dec = (decoder or one_state.Decoder)(payload, height, width, colours)
    if in_parts and pipeline.handles(dec.kernel):
        # the network and the parts in one compiled loop per core (one part: the network on one, the mixer on
        # the other)
        decode_parts(net, height, width, strip_height, dec, progress, gray=gray)
        return dec.finish()
    img = dec.img
    extra = {} if in_parts else {"independent": True}

    def source(counts, rows, cols, colour):
        n = len(rows)
        dec.take(rows, cols, np.full(n, colour, np.int64), (rows // S) * S, counts, **extra)
        return img[rows, cols, colour]

    decode_image(net, height, width, source, progress=progress, strip_height=strip_height, gray=gray)
    return dec.finish()
