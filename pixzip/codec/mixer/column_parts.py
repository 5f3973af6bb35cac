"""Coder 3 end to end: the context mixer in column parts, each with its own
adaptive state and its own stream, coded at once, one part per core.

The image's columns are cut into P parts (part p holds the columns
width * p // P to width * (p + 1) // P - 1).  The network's stream order
visits the parts' pixels interleaved; each part codes its own sub-pixels in
that order, with the state of coder 2 (``kernel``; a table of at most 2^20
buckets, ``kernel.part_table_bits``).  Its contexts still read the pixels
of the other parts that the stream order has coded before, so that the
parts' edges keep their neighbours; only the blend's error memory is a
part's own.  A part's bytes depend on nothing but its sub-pixels and the
image coded before them: never on the number of threads.

Two parts made ``-9``'s files 0.05% larger than one state on five
photos-train images, and 1.4% larger on Kodak; on two cores they cut the
decoder's mixer time by a third or more.

The payload: P (one byte, 1..16), the lengths of parts 0..P-2 (uint32,
little-endian), then the parts' streams one after the other (the last one
takes the rest).  A mixer whose prior holds sets (version 6,
``prior.py``) writes one byte before it: the set every part's state
starts from (``prior.choose``).
"""
from __future__ import annotations

import struct

import numpy as np

from ...errors import CorruptError
from .. import kernel_cache as cache
from . import bitcoder, kernel, prior
from .one_state import BYTES_PER_SUBPIXEL, _inputs, one_state_bytes

PARTS = 2                 # the parts written: one per core of a 2-core machine
MAX_PARTS = 16
_LEN = struct.Struct("<I")


def column_bounds(width: int, parts: int) -> np.ndarray:
    """The first column of each part, and the width: (parts + 1,) int64."""
    return np.array([width * p // parts for p in range(parts + 1)], np.int64)


def part_bits(height: int, width: int, colours: int, parts: int, k=kernel) -> int:
    """log2 of each part's buckets: sized for the widest part (kernel module ``k``)."""
    return k.part_table_bits(height * -(-width // parts) * colours, parts)


def _strips(k, strip_rows: int) -> tuple:
    """The strips' rows as kernel module ``k`` takes them: version 2's states keep rings of rows per strip
    (``v2/kernel.RING``); version 1's whole rows."""
    return (strip_rows,) if hasattr(k, "RING") else ()


def state_bytes(height: int, width: int, colours: int, parts: int = PARTS, k=kernel, strip_rows: int = 0) -> int:
    """What the parts' states and their image take, in bytes (kernel module ``k``; strips of ``strip_rows``
    rows, 0: one strip)."""
    one = one_state_bytes(height, width, colours, part_bits(height, width, colours, parts, k), k, strip_rows)
    return parts * one + height * width * colours


def _states(height: int, width: int, colours: int, parts: int, k, strip_rows: int = 0, prior_set: int = 0):
    more = {"prior_set": prior_set} if prior_set else {}
    return k.new_states(parts, height, width, colours, part_bits(height, width, colours, parts, k),
                        *_strips(k, strip_rows), **more)


def prior_sets(k) -> int:
    """The sets of kernel module ``k``'s prior (``prior.sets``): more than one, and its payloads begin with
    the byte that names one."""
    return getattr(k, "PRIOR_SETS", 0)


def prior_head(data, k) -> tuple[int, bytes]:
    """(the prior's set, the parts' payload) of a payload of kernel module ``k``: its first byte names the
    set where the prior holds several (``prior_sets``), else set 0 and the payload whole."""
    sets = prior_sets(k)
    if sets <= 1:
        return 0, data
    if len(data) < 1:
        raise CorruptError("the payload is empty")
    if data[0] >= sets:
        raise CorruptError(f"the payload names the mixer's prior set {data[0]} (0..{sets - 1})")
    return data[0], data[1:]


class Encoder:
    """Codes the sub-pixels of ``pixels`` in the order they are given, each
    in its part.  The parts are independent (the encoder knows every pixel),
    so ``add_part`` may code different parts in different threads at once.
    ``kernel``: the mixer version's kernel module."""
    kernel = kernel

    def __init__(self, pixels: np.ndarray, parts: int = PARTS, strip_rows: int = 0, prior_set: int | None = None):
        """``prior_set``: the set of the prior every part starts from (a prior of several sets:
        ``prior_sets``); None: ``prior.choose``'s."""
        if not 1 <= parts <= MAX_PARTS:
            raise ValueError(f"parts must be 1..{MAX_PARTS}")
        cache.enable()
        self.img = np.array(pixels, np.uint8, order="C")   # a writable copy: one compiled kernel serves both sides
        h, w, c = self.img.shape
        self.parts = parts
        self.bounds = column_bounds(w, parts)
        sets = prior_sets(self.kernel)
        if prior_set is None:
            prior_set = prior.choose(self.img, self.kernel.SPEC) if sets > 1 else 0
        elif not 0 <= prior_set < max(1, sets):
            raise ValueError(f"the prior has sets 0 to {max(1, sets) - 1}, not {prior_set}")
        self.prior_set = prior_set
        self.state = _states(h, w, c, parts, self.kernel, strip_rows, self.prior_set)
        self.tables = self.kernel.tables()
        self.encs = [bitcoder.new_encoder() for _ in range(parts)]
        self.outs = [np.zeros(1024, np.uint8) for _ in range(parts)]

    def _room(self, p: int, n: int) -> None:
        need = int(self.encs[p][bitcoder.E_POS]) + n * BYTES_PER_SUBPIXEL + 64
        if need > len(self.outs[p]):
            grown = np.zeros(max(need, 2 * len(self.outs[p])), np.uint8)
            grown[:len(self.outs[p])] = self.outs[p]
            self.outs[p] = grown

    def add_part(self, p: int, ys, xs, cs, tops, counts=None) -> None:
        """Code part p's sub-pixels among these (the others are left to
        their parts), with the network's counts (one row each) if given."""
        sel = np.flatnonzero((xs >= self.bounds[p]) & (xs < self.bounds[p + 1]))
        self._room(p, len(sel))
        k = self.kernel
        net = _inputs(len(ys), counts, k)
        mine = k.Positions(ys[sel], xs[sel], cs[sel], tops[sel])
        net = k.Network(net.counts, net.rows[sel], net.has_net)
        k.code(k.part(self.state, p), self.tables, self.img, mine, net, k.encoding_side(self.encs[p], self.outs[p]),
               True)

    def add(self, ys, xs, cs, tops, counts=None) -> None:
        """Code these sub-pixels, each in its part, with the network's counts (one row each) if given."""
        for p in range(self.parts):
            self.add_part(p, ys, xs, cs, tops, counts)

    def finish(self) -> bytes:
        streams = []
        for p in range(self.parts):
            self._room(p, 1)
            bitcoder.flush(self.encs[p], self.outs[p])
            streams.append(self.outs[p][:self.encs[p][bitcoder.E_POS]].tobytes())
        head = bytes([self.prior_set]) if prior_sets(self.kernel) > 1 else b""
        return head + bytes([self.parts]) + b"".join(_LEN.pack(len(s)) for s in streams[:-1]) + b"".join(streams)

    @property
    def ideal_bits(self) -> float:
        """The ideal code length of what was coded, under the mixer's probabilities."""
        return float(self.state.cost[:, 0].sum())


def split_payload(data) -> tuple[int, np.ndarray]:
    """(P, the P + 1 offsets of the parts' streams in ``data``), checked."""
    if len(data) < 1:
        raise CorruptError("the payload is empty")
    parts = data[0]
    if not 1 <= parts <= MAX_PARTS:
        raise CorruptError(f"the payload claims {parts} column parts (1..{MAX_PARTS})")
    head = 1 + _LEN.size * (parts - 1)
    if len(data) < head:
        raise CorruptError("the payload ends inside its table of parts")
    lengths = [_LEN.unpack_from(data, 1 + _LEN.size * p)[0] for p in range(parts - 1)]
    starts = np.cumsum([head] + lengths, dtype=np.int64)
    if starts[-1] > len(data):
        raise CorruptError("the payload's parts are longer than the payload")
    return parts, np.append(starts, len(data))


class Decoder:
    """Decodes sub-pixels in the order they are asked for, into ``img``, each in its part (the mixer of
    ``kernel``)."""
    kernel = kernel

    def __init__(self, data: bytes, height: int, width: int, colours: int, strip_rows: int = 0):
        self.prior_set, data = prior_head(data, self.kernel)
        parts, self.starts = split_payload(data)
        cache.enable()
        self.data = np.frombuffer(data, np.uint8)     # no copy: read-only
        self.img = np.zeros((height, width, colours), np.uint8)
        self.bounds = column_bounds(width, parts)
        self.state = _states(height, width, colours, parts, self.kernel, strip_rows, self.prior_set)
        self.tables = self.kernel.tables()
        self.decs = np.stack([bitcoder.new_decoder(self.data[self.starts[p]:self.starts[p + 1]])
                              for p in range(parts)])

    def take(self, ys, xs, cs, tops, counts=None) -> None:
        """Decode these sub-pixels, with the network's counts (one row each)
        if given: one colour of one step of the network's stream order (no
        sub-pixel's contexts read another's).  The parts decode at once,
        one per thread (``kernel.code_parts``)."""
        short = np.zeros(len(self.decs), np.int64)
        k = self.kernel
        k.code_parts(self.state, self.tables, self.img, k.Positions(ys, xs, cs, tops), self.bounds,
                     _inputs(len(ys), counts, k), self.decs, self.data, self.starts, short)
        if short.any():
            raise CorruptError("the payload ends long before the image does")

    def finish(self) -> np.ndarray:
        """The image, once every sub-pixel is decoded: each part's stream
        must have been read exactly to its end."""
        for p, dec in enumerate(self.decs):
            if dec[bitcoder.D_OVER]:
                raise CorruptError(f"part {p} of the payload ends before the image does")
            if dec[bitcoder.D_POS] != self.starts[p + 1] - self.starts[p]:
                raise CorruptError(f"part {p} of the payload has data left over after its last pixel")
            if dec[bitcoder.D_CODE] != 0:
                raise CorruptError(f"part {p} of the payload's last bytes are corrupt")
        return self.img

