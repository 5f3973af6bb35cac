"""Entropy coding of 256-way symbols with integer counts: numpy in, bytes out.

This is the only module that imports constriction.  Distributions are integer
counts (each >= 1) given as ``contract`` fixes them (C-contiguous float64,
exact integers) and quantized by ``Categorical(perfect=False)``: the same
counts give the same quantization on every machine.  The stream is a range coder (a queue), so the
decoder reads symbols in the order they were written.
"""
from __future__ import annotations

import constriction
import numpy as np

from ...errors import CorruptError, PixzipError
from ..contract import CONSTRICTION, coder_counts

_FAMILY = constriction.stream.model.Categorical(perfect=False)
# Coder 1 (contract.CODER_ID) is constriction's quantization of these counts,
# and another release may quantize differently: pyproject pins this version,
# and the coder refuses to run on any other rather than make or misread files.
TAIL_BITS = 256.0     # see Decoder
TAIL_SLACK = 0.01


def _check_version() -> None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        found = version("constriction")
    except PackageNotFoundError:
        found = "unknown"
    if found != CONSTRICTION:
        raise PixzipError(f"coder 1 needs constriction {CONSTRICTION}, but {found} is installed "
                          f"(pip install constriction=={CONSTRICTION})")


def _counts(counts) -> np.ndarray:
    c = coder_counts(counts)
    if c.ndim != 2:
        raise ValueError(f"counts must be (n, alphabet), got shape {c.shape}")
    return c


class Encoder:
    def __init__(self):
        _check_version()
        self._enc = constriction.stream.queue.RangeEncoder()

    def encode(self, symbols, counts) -> None:
        sym = np.ascontiguousarray(symbols, dtype=np.int32)
        c = _counts(counts)
        if len(sym) != len(c):
            raise ValueError("one row of counts per symbol")
        if len(sym):
            self._enc.encode(sym, _FAMILY, c)

    def to_bytes(self) -> bytes:
        return self._enc.get_compressed().astype("<u4").tobytes()


class Decoder:
    def __init__(self, data: bytes, tail_bits: float | None = None):
        """``tail_bits``: how many bits of information the symbols decoded
        once every word has been read may still carry (their ideal code
        length under the counts, plus TAIL_SLACK bits each for the coder's
        quantization).  The coder's state holds 64 bits, so a real stream
        ends well within 256; more is a CorruptError: a payload that ran out
        under a header that claims a larger image, stopped at once."""
        _check_version()
        if len(data) % 4:
            raise CorruptError("payload length is not a multiple of 4 bytes")
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        self._dec = constriction.stream.queue.RangeDecoder(words)
        self._tail, self._after, self._n_after = tail_bits, 0.0, 0

    def decode(self, counts) -> np.ndarray:
        c = _counts(counts)
        if not len(c):
            return np.zeros(0, dtype=np.int64)
        tail = self._tail is not None and self._dec.maybe_exhausted()   # every word was read before this call
        try:
            out = self._dec.decode(_FAMILY, c).astype(np.int64)
        except Exception as e:  # constriction raises on an impossible stream
            raise CorruptError(f"payload does not decode ({e})") from None
        if tail:
            self._after += cross_entropy_bits(out, c)
            self._n_after += len(out)
            if self._after > self._tail + TAIL_SLACK * self._n_after:
                raise CorruptError("the payload ends long before the image does")
        return out

    def exhausted(self) -> bool:
        return bool(self._dec.maybe_exhausted())


def cross_entropy_bits(symbols, counts) -> float:
    """Ideal code length of ``symbols`` under the (normalised) counts."""
    c = _counts(counts)
    sym = np.asarray(symbols, dtype=np.int64)
    p = c[np.arange(len(sym)), sym] / c.sum(axis=1)
    return float(-np.log2(p).sum())
