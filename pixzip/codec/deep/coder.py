"""The 16-bit coder end to end: the payload's header, the narrower values
(``depth``), and the compiled loop (``kernel``) over the image in row blocks.

The payload (all numbers little-endian):

====== ======= ==========================================================
offset size    field
====== ======= ==========================================================
0      1       the coder's spec version (``spec.VERSION``)
1      1       kind: 0 coded (the range coder's stream follows), 1 stored
               (each coded value in 2 bytes follows)
2      1       form: 0 shift, 1 replicated, 2 scaled (``depth``)
3      1       the form's parameter: the shift (0..16), or the bit depth (1..15)
4      2       the constant low bits (form 0; else 0)
6      1       the coded values' bit length (0..16)
====== ======= ==========================================================

A decoder refuses any other value, a stream that runs more than 8 bytes
past its end, and one with bytes left over, with ``CorruptError``.
"""
from __future__ import annotations

import struct

import numpy as np

from ...errors import CorruptError
from ..mixer import bitcoder
from . import depth as depths
from . import kernel
from .spec import (BYTES_PER_SAMPLE, FORM_SCALED, FORM_SHIFT, HEADER_BYTES, KIND_CODED, KIND_STORED, MAX_BITS,
                   VERSION)

HEADER = struct.Struct("<BBBBHB")
ROW_SAMPLES = 1 << 14        # samples per call of the compiled loop


def _check_shape(height: int, width: int, channels: int) -> None:
    if channels not in (1, 3) or height < 1 or width < 1:
        raise ValueError(f"a 16-bit image of 1 or 3 channels wanted, not {height}x{width}x{channels}")


def _blocks(height: int, width: int, channels: int):
    rows = max(1, ROW_SAMPLES // (width * channels))
    for y in range(0, height, rows):
        yield y, min(height, y + rows)


def _no_data() -> np.ndarray:
    none = np.zeros(0, np.uint8)
    none.flags.writeable = False
    return none


def encode(pixels: np.ndarray) -> bytes:
    """The payload of a uint16 (H, W, C) image, C 1 or 3."""
    if pixels.dtype != np.uint16 or pixels.ndim != 3:
        raise ValueError("a uint16 (height, width, channels) array wanted")
    height, width, channels = pixels.shape
    _check_shape(height, width, channels)
    d = depths.find(pixels)
    img = np.ascontiguousarray(d.reduce(pixels))
    head = (VERSION, KIND_CODED, d.form, d.param, d.low, d.bits)
    st = kernel.new_state(width, channels)
    enc = bitcoder.new_encoder()
    out = np.zeros(1024, np.uint8)
    for y0, y1 in _blocks(height, width, channels):
        need = int(enc[bitcoder.E_POS]) + (y1 - y0) * width * channels * BYTES_PER_SAMPLE + 64
        if need > len(out):
            grown = np.zeros(max(need, 2 * len(out)), np.uint8)
            grown[:len(out)] = out
            out = grown
        kernel.code_rows(st, img, y0, y1, d.bits, (np.bool_(False), enc, out, np.zeros(4, np.int64), _no_data()))
    bitcoder.flush(enc, out)
    stream = out[:enc[bitcoder.E_POS]].tobytes()
    if len(stream) >= 2 * img.size:         # coding would not pay: the values as they are
        return HEADER.pack(VERSION, KIND_STORED, *head[2:]) + img.astype("<u2").tobytes()
    return HEADER.pack(*head) + stream


def _header(payload: bytes) -> tuple[int, depths.Depth]:
    if len(payload) < HEADER_BYTES:
        raise CorruptError("the 16-bit payload ends inside its header")
    version, kind, form, param, low, bits = HEADER.unpack_from(payload)
    if version != VERSION:
        raise CorruptError(f"the 16-bit payload is of coder version {version}, this pixzip reads {VERSION}")
    if kind not in (KIND_CODED, KIND_STORED) or form > FORM_SCALED:
        raise CorruptError("the 16-bit payload's header is corrupt")
    if form == FORM_SHIFT:
        ok = param <= MAX_BITS and low < (1 << param) and bits <= MAX_BITS - param
    else:
        ok = 1 <= param < MAX_BITS and low == 0 and bits <= param
    if not ok:
        raise CorruptError("the 16-bit payload's header is corrupt")
    return kind, depths.Depth(form, param, low, bits)


def decode(payload: bytes, height: int, width: int, channels: int) -> np.ndarray:
    """The uint16 (height, width, channels) image of a payload."""
    _check_shape(height, width, channels)
    kind, d = _header(payload)
    data = np.frombuffer(payload, np.uint8, offset=HEADER_BYTES)
    n = height * width * channels
    if kind == KIND_STORED:
        if len(data) != 2 * n:
            raise CorruptError("the 16-bit payload's stored samples are not the image's size")
        img = np.frombuffer(data, "<u2").astype(np.uint16).reshape(height, width, channels)
        if d.bits < MAX_BITS and int(img.max()) >> d.bits:
            raise CorruptError("the 16-bit payload's stored samples are out of range")
        return d.widen(img)
    img = np.zeros((height, width, channels), np.uint16)
    st = kernel.new_state(width, channels)
    dec = bitcoder.new_decoder(data)
    for y0, y1 in _blocks(height, width, channels):
        if kernel.code_rows(st, img, y0, y1, d.bits, (np.bool_(True), np.zeros(5, np.int64), np.zeros(0, np.uint8),
                                                       dec, data)) < 0:
            raise CorruptError("the 16-bit payload is corrupt or ends long before the image does")
    if dec[bitcoder.D_OVER]:
        raise CorruptError("the 16-bit payload ends before the image does")
    if dec[bitcoder.D_POS] != len(data):
        raise CorruptError("the 16-bit payload has data left over after the last sample")
    if dec[bitcoder.D_CODE] != 0:
        raise CorruptError("the 16-bit payload's last bytes are corrupt")
    return d.widen(img)


def decode_memory(height: int, width: int, channels: int) -> int:
    """The most memory ``decode`` takes, in bytes: the image (coded values
    and the widened copy, and their int64 working copy) and the state (twice:
    the temporaries that make it)."""
    return height * width * channels * (2 + 2 + 8) + 2 * kernel.state_bytes(width, channels) + (1 << 16)


def min_payload_bytes(height: int, width: int, channels: int) -> int:
    """The fewest bytes a payload of such an image can have: the header, and
    at least one decision per sample at the probability's clamp
    (-log2(1 - 33/65536) bits each); half of that, less 8."""
    return HEADER_BYTES + max(0, int(height * width * channels * 0.000726 / 2 / 8) - 8)
