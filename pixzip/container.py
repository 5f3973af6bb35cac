"""The .pxz container: a small little-endian header, the payload, a CRC32.

Layout (struct, little-endian):

    "4s B B"        magic b"PXZ\\0", format version, flags (unknown bits must be 0)
    "B" + name      model name length (1..64) and ASCII name
    "8s"            first 8 bytes of the sha256 of the integer model file
    "I I B B"       height, width, channels (1 or 3), colour mode (0 = L, 1 = RGB)
    "I"             strip height of the decode schedule (0 = one strip)
    "Q"             payload length in bytes
    "I"             CRC32 of every header byte before it
    payload
    "I"             CRC32 of the raw pixels (H, W, C) uint8, row-major

Parsing checks, in order: magic, version and flags, the header CRC, then the
size limit, before anything is allocated.  The model check, decoding and the
pixel CRC belong to the codec.  The header CRC (not in DESIGN §5's list) makes
a flipped bit in the dimensions fail at once instead of starting a decode of
a huge image that only the final pixel checksum would refuse.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from .errors import FormatError, LimitError, TruncatedError

MAGIC = b"PXZ\0"
VERSION = 1
KNOWN_FLAGS = 0
MODES = {0: "L", 1: "RGB"}
MODE_CHANNELS = {"L": 1, "RGB": 3}
MAX_PIXELS = 1 << 30        # refuse absurd sizes before allocating
MAX_SIDE = 1 << 20

_START = struct.Struct("<4sBB")
_REST = struct.Struct("<8sIIBBIQ")
_CRC = struct.Struct("<I")


@dataclass(frozen=True)
class Header:
    model_name: str
    model_hash: bytes          # 8-byte sha256 prefix
    height: int
    width: int
    mode: str                  # "L" or "RGB"
    strip_height: int
    payload_length: int
    version: int = VERSION
    flags: int = 0

    @property
    def channels(self) -> int:
        return MODE_CHANNELS[self.mode]

    @property
    def n_subpixels(self) -> int:
        return self.height * self.width * self.channels


def pixels_crc(pixels) -> int:
    return zlib.crc32(memoryview(pixels).cast("B")) & 0xFFFFFFFF


def pack(header: Header, payload: bytes, crc: int) -> bytes:
    name = header.model_name.encode("ascii")
    if not 1 <= len(name) <= 64:
        raise ValueError("model name must be 1..64 ASCII characters")
    if len(header.model_hash) != 8:
        raise ValueError("model hash prefix must be 8 bytes")
    mode = {v: k for k, v in MODES.items()}[header.mode]
    head = b"".join([
        _START.pack(MAGIC, VERSION, 0),
        bytes([len(name)]), name,
        _REST.pack(header.model_hash, header.height, header.width, header.channels, mode,
                   header.strip_height, len(payload)),
    ])
    return b"".join([head, _CRC.pack(zlib.crc32(head)), payload, _CRC.pack(crc)])


def parse(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[Header, memoryview, int]:
    """(header, payload view, stored CRC) of a .pxz file, checked in the stated order."""
    data = memoryview(data)
    if len(data) < len(MAGIC) or bytes(data[:4]) != MAGIC:
        raise FormatError("not a pixzip file (bad magic)")
    if len(data) < _START.size:
        raise TruncatedError("truncated header")
    _, version, flags = _START.unpack_from(data)
    if version != VERSION:
        raise FormatError(f"unsupported format version {version} (this pixzip reads version {VERSION})")
    if flags & ~KNOWN_FLAGS:
        raise FormatError(f"unknown flags 0x{flags:02x}")
    pos = _START.size
    if len(data) < pos + 1:
        raise TruncatedError("truncated header")
    n = data[pos]
    pos += 1
    if not 1 <= n <= 64:
        raise FormatError("bad model name")
    if len(data) < pos + n + _REST.size:
        raise TruncatedError("truncated header")
    try:
        name = bytes(data[pos:pos + n]).decode("ascii")
    except UnicodeDecodeError:
        raise FormatError("bad model name") from None
    pos += n
    mhash, h, w, channels, mode_id, strip, plen = _REST.unpack_from(data, pos)
    pos += _REST.size
    if len(data) < pos + _CRC.size:
        raise TruncatedError("truncated header")
    if _CRC.unpack_from(data, pos)[0] != zlib.crc32(data[:pos]):
        raise FormatError("header checksum mismatch: the file is corrupt")
    pos += _CRC.size
    if mode_id not in MODES or MODE_CHANNELS[MODES[mode_id]] != channels:
        raise FormatError(f"bad colour mode {mode_id} with {channels} channels")
    if h < 1 or w < 1 or h > MAX_SIDE or w > MAX_SIDE or h * w > max_pixels:
        raise LimitError(f"image size {w}x{h} is outside the limit of {max_pixels} pixels")
    if len(data) < pos + plen + _CRC.size:
        raise TruncatedError(f"truncated file: payload of {plen} bytes is cut short")
    if len(data) > pos + plen + _CRC.size:
        raise FormatError("trailing data after the checksum")
    payload = data[pos:pos + plen]
    (crc,) = _CRC.unpack_from(data, pos + plen)
    header = Header(name, bytes(mhash), h, w, MODES[mode_id], strip, plen, version, flags)
    return header, payload, crc
