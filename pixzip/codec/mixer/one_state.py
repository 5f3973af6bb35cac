"""Coder 2 end to end: the context mixer and its binary coder over an image,
with or without the network's counts, in the stream order it is given.

Without a network the order is raster order, colours inside a pixel.  With
one, the caller passes each batch of sub-pixels in the network's stream order
(``contract``), with their counts.
"""
from __future__ import annotations

import numpy as np

from ...errors import CorruptError
from .. import kernel_cache as cache
from . import bitcoder, kernel

BYTES_PER_SUBPIXEL = 12    # worst case: 8 bits at the probability floor (11 bits each), and room


def raster_positions(y0: int, y1: int, width: int, colours: int):
    """(ys, xs, cs, tops) of the sub-pixels of rows y0..y1-1 in raster order,
    colours inside a pixel, in one strip."""
    e = np.arange(y0 * width * colours, y1 * width * colours, dtype=np.int64)
    return e // (width * colours), (e // colours) % width, e % colours, np.zeros(len(e), np.int64)


def _inputs(n, counts, k=kernel):
    """The network's input of n sub-pixels for kernel module ``k`` (its ``Network``): their counts, or none.
    The counts are float64 whatever they came as (the network's kernels make them so, exact integers),
    and so is the placeholder row without a network: one compiled ``code`` serves every caller (counts of
    another type made numba compile it again, about a minute)."""
    if counts is None:
        return k.Network(np.zeros((1, 256)), np.zeros(n, np.int64), False)
    if len(counts) != n:
        raise ValueError("one row of counts per sub-pixel")
    return k.Network(np.ascontiguousarray(counts, np.float64), np.arange(n, dtype=np.int64), True)


RASTER_PIXELS = 4096      # pixels per call of the mixer alone


def one_state_bytes(height: int, width: int, colours: int, bits: int, k=kernel, strip_rows: int = 0) -> int:
    """What one adaptive state (``kernel.new_states``) with 2^bits buckets takes, in bytes (kernel module ``k``:
    its own ``one_state_bytes`` where it has one, a later version's state holding more, its rings of rows
    sized for strips of ``strip_rows``; 0: one strip)."""
    if hasattr(k, "one_state_bytes"):
        return k.one_state_bytes(height, width, colours, bits, strip_rows)
    return ((64 << bits) + k.N_MAPS * colours * k.MAP_CONTEXTS * (256 + 16) * 4 + k.W1_ROWS * k.N_PAD * 4
            + colours * (8 * (k.N_SETS + 1) + 384 * 33) * 4 + height * width * colours * (k.N_BLEND + 1))


def state_bytes(height: int, width: int, colours: int, k=kernel) -> int:
    """What the mixer's state, its image and its positions take, in bytes (kernel module ``k``)."""
    n = height * width * colours
    return one_state_bytes(height, width, colours, k.table_bits(n), k) + n + 4 * 8 * colours * RASTER_PIXELS


class Encoder:
    """Codes the sub-pixels of ``pixels`` in the order they are given (with the mixer of ``kernel``, a
    version's kernel module)."""
    kernel = kernel

    def __init__(self, pixels: np.ndarray):
        cache.enable()
        self.img = np.array(pixels, np.uint8, order="C")   # a writable copy: one compiled kernel serves both sides
        h, w, c = self.img.shape
        self.state = self.kernel.new_state(h, w, c)
        self.tables = self.kernel.tables()
        self.enc = bitcoder.new_encoder()
        self.out = np.zeros(1024, np.uint8)

    def _room(self, n: int) -> None:
        need = int(self.enc[bitcoder.E_POS]) + n * BYTES_PER_SUBPIXEL + 64
        if need > len(self.out):
            grown = np.zeros(max(need, 2 * len(self.out)), np.uint8)
            grown[:len(self.out)] = self.out
            self.out = grown

    def add(self, ys, xs, cs, tops, counts=None) -> None:
        """Code these sub-pixels, with the network's counts (one row each) if given."""
        n = len(ys)
        self._room(n)
        k = self.kernel
        k.code(self.state, self.tables, self.img, k.Positions(ys, xs, cs, tops), _inputs(n, counts, k),
               k.encoding_side(self.enc, self.out), True)

    def add_rows(self, y0: int, y1: int) -> None:
        """Code rows y0..y1-1 in raster order, without a network."""
        self.add(*raster_positions(y0, y1, self.img.shape[1], self.img.shape[2]))

    def add_image(self, progress=None) -> None:
        """Code the whole image in raster order, without a network."""
        _in_row_blocks(self.img.shape, self.add_rows, progress)

    def finish(self) -> bytes:
        self._room(1)
        bitcoder.flush(self.enc, self.out)
        return self.out[:self.enc[bitcoder.E_POS]].tobytes()

    @property
    def ideal_bits(self) -> float:
        """The ideal code length of what was coded, under the mixer's probabilities."""
        return float(self.state.cost[0])


class Decoder:
    """Decodes sub-pixels in the order they are asked for, into ``img`` (with the mixer of ``kernel``)."""
    kernel = kernel

    def __init__(self, data: bytes, height: int, width: int, colours: int):
        cache.enable()
        self.data = np.frombuffer(data, np.uint8)     # no copy: read-only
        self.img = np.zeros((height, width, colours), np.uint8)
        self.state = self.kernel.new_state(height, width, colours)
        self.tables = self.kernel.tables()
        self.dec = bitcoder.new_decoder(self.data)

    def take(self, ys, xs, cs, tops, counts=None, independent: bool = False) -> None:
        """Decode these sub-pixels, with the network's counts (one row each)
        if given.  ``independent``: no sub-pixel's contexts read the one just
        before it (one colour of a step of the network's stream order), so
        the mixer may make each one's contexts while it decodes the one
        before (``kernel.code``'s ``independent``)."""
        n = len(ys)
        k = self.kernel
        done = k.code(self.state, self.tables, self.img, k.Positions(ys, xs, cs, tops), _inputs(n, counts, k),
                      k.decoding_side(self.dec, self.data), independent)
        if done < n:
            raise CorruptError("the payload ends long before the image does")

    def take_rows(self, y0: int, y1: int) -> None:
        self.take(*raster_positions(y0, y1, self.img.shape[1], self.img.shape[2]))

    def take_image(self, progress=None) -> None:
        _in_row_blocks(self.img.shape, self.take_rows, progress)

    def finish(self) -> np.ndarray:
        """The image, once every sub-pixel is decoded: the payload must have
        been read exactly to its end."""
        if self.dec[bitcoder.D_OVER]:
            raise CorruptError("the payload ends before the image does")
        if self.dec[bitcoder.D_POS] != len(self.data):
            raise CorruptError("payload has data left over after the last pixel")
        if self.dec[bitcoder.D_CODE] != 0:    # the flushed stream is exactly the encoder's last low: any other
            raise CorruptError("the payload's last bytes are corrupt")      # tail decodes to a code of 0 only by luck
        return self.img


def _in_row_blocks(shape, step, progress) -> None:
    """step(y0, y1) over the image's rows in blocks of about RASTER_PIXELS pixels."""
    height, width, _ = shape
    rows = max(1, RASTER_PIXELS // width)
    for y in range(0, height, rows):
        z = min(height, y + rows)
        step(y, z)
        if progress is not None:
            progress((z - y) * width)


def min_payload_bytes(n_subpixels: int) -> int:
    """The fewest bytes that can hold n sub-pixels: every bit costs at least
    -log2(1 - 33/65536) (the probability's clamp); half of that, less 8."""
    return int(n_subpixels * 8 * 0.000726 / 2 / 8) - 8
