"""The stored payloads, which need no model: chosen whenever they are smaller
than the network's, so that no file is ever larger than its raw pixels plus
the header (zstd stores raw blocks for the same reason).

- ``raw``: the pixels, (H, W, C) uint8 row-major.
- ``deflate``: PNG's image data, the zlib stream of its filtered rows (filter
  byte and row, for each row), as Pillow's PNG encoder makes it with
  ``optimize``: the strongest classical coder of flat and synthetic images
  that Pillow gives.  It is decoded by wrapping it in a minimal PNG (IHDR,
  IDAT, IEND) for Pillow's decoder; the pixel CRC checks the result.
"""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np

from ...errors import CorruptError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFLATE_MAX_RATIO = 1032        # deflate expands at most ~1032:1; a longer claim is corrupt
_COLOUR_TYPE = {1: 0, 3: 2}     # PNG colour types: greyscale, truecolour


def raw_payload(pixels: np.ndarray) -> bytes:
    return np.ascontiguousarray(pixels).tobytes()


def raw_pixels(payload, h: int, w: int, c: int) -> np.ndarray:
    if len(payload) != h * w * c:
        raise CorruptError(f"raw payload of {len(payload)} bytes, not {h * w * c}")
    return np.frombuffer(payload, np.uint8).reshape(h, w, c).copy()     # one copy: the image


def _chunks(png: bytes):
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(png):
        n, tag = struct.unpack_from(">I4s", png, pos)
        yield tag, png[pos + 8:pos + 8 + n]
        pos += 12 + n


def deflate_payload(pixels: np.ndarray) -> bytes:
    from PIL import Image
    h, w, c = pixels.shape
    im = Image.fromarray(pixels[..., 0] if c == 1 else pixels, "L" if c == 1 else "RGB")
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return b"".join(data for tag, data in _chunks(buf.getvalue()) if tag == b"IDAT")


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def deflate_pixels(payload, h: int, w: int, c: int) -> np.ndarray:
    from PIL import PngImagePlugin
    if len(payload) * DEFLATE_MAX_RATIO < h * (w * c + 1):
        raise CorruptError(f"deflate payload of {len(payload)} bytes cannot hold a {w}x{h} image")
    ihdr = struct.pack(">IIBBBBB", w, h, 8, _COLOUR_TYPE[c], 0, 0, 0)
    png = PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", bytes(payload)) + _chunk(b"IEND", b"")
    try:
        # the plugin class, not Image.open: the header's size limit already holds,
        # and Pillow's decompression-bomb limit would refuse large valid files
        im = PngImagePlugin.PngImageFile(io.BytesIO(png))
        im.load()
        a = np.asarray(im, dtype=np.uint8)
    except Exception as e:   # zlib and Pillow raise several kinds on bad data
        raise CorruptError(f"deflate payload does not decode ({e.__class__.__name__})") from None
    if a.shape[:2] != (h, w):
        raise CorruptError("deflate payload does not decode to the header's size")
    return np.ascontiguousarray(a.reshape(h, w, c))
