"""Coder 2's binary arithmetic coder, compiled: a range coder with carry
propagation (the LZMA layout), 32-bit range, 16-bit probabilities.

It runs inside the context mixer's compiled loop, because the mixer's state
changes after every bit.  Every operation is an integer one, exact in int64:
the range stays in [2^24, 2^32), the split point is floor(range * p / 2^16)
with p = P(bit = 1) in [1, 65535], so both halves are at least 256.

Encoder state ``enc`` (int64): low, range, cache, pending bytes, output position.
Decoder state ``dec`` (int64): code, range, input position, bytes read past the end.
"""
from __future__ import annotations

import numba
import numpy as np

TOP = 1 << 24
MASK32 = 0xFFFFFFFF
E_LOW, E_RANGE, E_CACHE, E_PENDING, E_POS = range(5)
D_CODE, D_RANGE, D_POS, D_OVER = range(4)


def new_encoder() -> np.ndarray:
    enc = np.zeros(5, np.int64)
    enc[E_RANGE] = MASK32
    enc[E_PENDING] = 1          # the first byte out is the (empty) cache
    return enc


@numba.njit(inline="always")
def _shift_low(enc, out):
    low = enc[E_LOW]
    if low < 0xFF000000 or low > MASK32:
        carry = low >> 32
        temp = enc[E_CACHE]
        while True:
            out[enc[E_POS]] = (temp + carry) & 0xFF
            enc[E_POS] += 1
            temp = 0xFF
            enc[E_PENDING] -= 1
            if enc[E_PENDING] == 0:
                break
        enc[E_CACHE] = (low >> 24) & 0xFF
    enc[E_PENDING] += 1
    enc[E_LOW] = (low & 0x00FFFFFF) << 8


@numba.njit(inline="always")
def encode_bit(enc, out, bit, p16):
    """Code ``bit`` with P(bit = 1) = p16 / 65536 (1 <= p16 <= 65535).  ``out``
    must have room for 5 more bytes than have been written per call."""
    rng = enc[E_RANGE]
    bound = (rng * p16) >> 16
    if bit:
        enc[E_RANGE] = bound
    else:
        enc[E_LOW] += bound
        enc[E_RANGE] = rng - bound
    while enc[E_RANGE] < TOP:
        enc[E_RANGE] <<= 8
        _shift_low(enc, out)


@numba.njit
def flush(enc, out):
    for _ in range(5):
        _shift_low(enc, out)


def new_decoder(data: np.ndarray) -> np.ndarray:
    dec = np.zeros(4, np.int64)
    dec[D_RANGE] = MASK32
    code = 0
    for i in range(5):
        code = (code << 8) | (int(data[i]) if i < len(data) else 0)
    dec[D_CODE] = code & MASK32
    dec[D_POS] = 5
    dec[D_OVER] = max(0, 5 - len(data))
    return dec


@numba.njit(inline="always")
def decode_bit(dec, data, p16):
    """The bit coded with P(bit = 1) = p16 / 65536.  Past the end of ``data``
    the decoder reads zeros and counts them in dec[D_OVER]."""
    rng = dec[D_RANGE]
    bound = (rng * p16) >> 16
    code = dec[D_CODE]
    if code < bound:
        rng = bound
        bit = 1
    else:
        code -= bound
        rng -= bound
        bit = 0
    while rng < TOP:
        rng <<= 8
        pos = dec[D_POS]
        if pos < len(data):
            b = np.int64(data[pos])
        else:
            b = np.int64(0)
            dec[D_OVER] += 1
        dec[D_POS] = pos + 1
        code = ((code << 8) | b) & MASK32
    dec[D_CODE] = code
    dec[D_RANGE] = rng
    return bit
