"""The .pxz container: a small little-endian header, the payload, a CRC32.

Format 2 (written since 0.2; ``docs/format.md`` describes every field and
what a decoder must do with an unknown value):

    "4s B B"        magic b"PXZ\\0", format version (2), flags (must be 0)
    "B B"           payload kind (0 network, 1 raw pixels, 2 deflate of
                    PNG-filtered rows, 3 context mixer alone) and coder id
                    (kind 0: 1, the network's counts through constriction's
                    range coder, 2, the context mixer with the network's
                    counts as an input, or 3, the same in column parts that
                    code at once; kind 3: 2; the stored kinds: 0)
    "B" + name      model name length (0..64) and ASCII name; 0 for the stored kinds
    "8s"            first 8 bytes of the sha256 of the integer model file (kind 0 only)
    "I I B B"       height, width, channels (1 or 3), colour mode (0 = L, 1 = RGB)
    "I"             strip height of the decode schedule (0 = one strip)
    "B"             original file format (0 unknown, 1 PNG, 2 TIFF, 3 WebP, 4 BMP,
                    5 PPM, 6 JPEG, 7 GIF, 255 named by an "ofmt" chunk; others
                    are read as unknown)
    "B"             number of chunks (0..32), then each chunk as
    "4s I" + data   tag (four ASCII letters), length, bytes: metadata such as
                    the ICC profile; lower-case tags are optional and skipped
                    when unknown, any other tag is refused unless known
                    (PNGC, TIFT: chunks and tags kept verbatim)
    "Q"             payload length in bytes
    "I"             CRC32 of every header byte before it
    payload
    "I"             CRC32 of the raw pixels (H, W, C) uint8, row-major

Format 3 (0.6; pictures of every mode but plain 8-bit L and RGB, which keep
format 2): the same magic, version (3) and flags, then

    "B B"           picture mode id (``MODE3_IDS``) and plane layout (0 the
                    samples, 1 a palette image's colours: ``planes.py``)
    "I I"           height, width
    "B" + name      model name length (0..64) and ASCII name of the network
                    the network sections use (0: none)
    "8s"            its sha256 prefix (only when named)
    "I"             strip height of the network sections' decode schedule
    "B B"           original file format, number of chunks, then the chunks
                    as in format 2 (and the picture's own: PALT, TRNS)
    "B"             number of sections (1..MAX_SECTIONS), then each as
    "B B B Q"       planes, payload kind, coder id, length in bytes
    "Q"             payload length (the sections' lengths summed)
    "I"             CRC32 of every header byte before it
    payload         the sections' bytes in order
    "I"             CRC32 of the picture's samples (H, W, C) row-major, uint8
                    or little-endian uint16

Format 1 (0.1) had no payload kind, coder id or chunks: always the network,
coder 1, with a model name of 1..64 bytes.  It is still read.

Parsing checks, in order: magic, version and flags, the header CRC, then the
size limit, before anything is allocated.  The model check, decoding and the
pixel CRC belong to the codec.  The header CRC (not in DESIGN §5's list) makes
a flipped bit in the dimensions fail at once instead of starting a decode of
a huge image that only the final pixel checksum would refuse.
"""
from __future__ import annotations

import struct
import zlib

import numpy as np
from dataclasses import dataclass, field
from typing import NamedTuple

from ...errors import FormatError, LimitError, TruncatedError
from ..contract import CODER_ID
from .picture import CHANNELS, SIXTEEN_BIT

MAGIC = b"PXZ\0"
VERSION = 2                # the format of plain 8-bit L and RGB images
VERSION_3 = 3              # the format of every other picture
READS = (1, 2, 3)          # the format versions this pixzip decodes
KNOWN_FLAGS = 0
MODES = {1: "L", 3: "RGB"}            # channels -> colour mode: the modes pixzip keeps
MODE_IDS = {"L": 0, "RGB": 1}         # colour mode -> its id in the header
_MODE_OF_ID = {i: m for m, i in MODE_IDS.items()}
MODE_CHANNELS = {m: c for c, m in MODES.items()}
# format 3: every picture mode (picture.MODES), L and RGB with format 2's ids
MODE3_IDS = {"L": 0, "RGB": 1, "LA": 2, "RGBA": 3, "P": 4, "1": 5, "I;16": 6, "RGB;16": 7}
_MODE3_OF_ID = {i: m for m, i in MODE3_IDS.items()}
SAMPLES, PALETTE_COLOURS = 0, 1         # plane layouts (planes.py)
MAX_SECTIONS = 16
MAX_PIXELS = 178_956_970    # the pixel limit: what the command line can write and read back (Pillow's
                            # DecompressionBombError threshold, 2 x Image.MAX_IMAGE_PIXELS); refused before
                            # allocating, raised only by name
MAX_SIDE = 1 << 20
MAX_CHUNKS = 32
MAX_CHUNK_BYTES = 1 << 26   # 64 MB of metadata at most (it must also fit in the file)
MAX_STRIP_HEIGHT = (1 << 32) - 1   # a uint32
# upper-case chunk tags this pixzip knows (metadata.py): a decoder must refuse the others
REQUIRED_CHUNKS = (b"PNGC", b"TIFT")
# format 3's own: a palette image's palette, and a picture's transparency (planes.py)
PICTURE_CHUNKS = (b"PALT", b"TRNS")
FLAT_CHUNK = b"flat"        # optional, empty: the picture came in as a 2-D array

# payload kinds
NETWORK, RAW, DEFLATE, MIXER = 0, 1, 2, 3
KINDS = {NETWORK: "network", RAW: "raw", DEFLATE: "deflate", MIXER: "mixer"}
# format 3's sections also take: planes of one value, planes equal to earlier ones, the 16-bit coder
CONSTANT, EQUAL, DEEP = 4, 5, 6
SECTION_KINDS = {**KINDS, CONSTANT: "constant", EQUAL: "equal", DEEP: "16-bit"}
# coder ids: what turns a coded payload into symbols (network/rangecoder.py, mixer/)
CODER = CODER_ID
MIXER_CODER = 2
PARTS_CODER = 3
MIXER2_CODER = 5        # (4: the 16-bit coder, below)
PARTS2_CODER = 6
GRAY_PARTS2_CODER = 7   # a gray image's, over an RGB network
MIXER3_CODER = 8        # version 3 (colour images)
PARTS3_CODER = 9
PARTS4_CODER = 10       # version 4 (colour images, over the network)
PARTS5_CODER = 11       # version 5 (colour images, over the network)
PARTS6_CODER = 12       # version 6 (colour images, over the network)
CODERS = {CODER: "range coder of constriction 0.5 (Categorical, perfect=False, float64 counts, 24-bit)",
          MIXER_CODER: "context mixer 1 (mixer/spec.py SPEC_1, defined by mixer/definition.py) and its binary range "
                       "coder (mixer/bitcoder.py)",
          PARTS_CODER: "context mixer 1 in column parts, a state and a stream each (mixer/column_parts.py, "
                       "mixer/spec.py SPEC_1)",
          MIXER2_CODER: "context mixer 2 (mixer/spec.py SPEC_2, defined by mixer/v2/definition.py) and the binary "
                        "range coder of mixer 1",
          PARTS2_CODER: "context mixer 2 in column parts, a state and a stream each (mixer/column_parts.py, "
                        "mixer/spec.py SPEC_2)",
          GRAY_PARTS2_CODER: "context mixer 2 in column parts over an RGB network's counts of colour 0 of the "
                             "gray image seen as (L, L, L) (mixer/with_network.py)",
          MIXER3_CODER: "context mixer 3 (mixer/spec.py SPEC_3, defined by mixer/v2/definition.py under SPEC_3) "
                        "and the binary range coder of mixer 1",
          PARTS3_CODER: "context mixer 3 in column parts, a state and a stream each (mixer/column_parts.py, "
                        "mixer/spec.py SPEC_3)",
          PARTS4_CODER: "context mixer 4 in column parts, a state and a stream each, one table budget for all "
                        "(mixer/column_parts.py, mixer/spec.py SPEC_4)",
          PARTS5_CODER: "context mixer 5 in column parts: mixer 4 starting from a learned prior "
                        "(mixer/column_parts.py, mixer/spec.py SPEC_5, mixer/prior-5.npz)",
          PARTS6_CODER: "context mixer 6 in column parts: mixer 4 starting from the set of a learned prior that "
                        "the payload's first byte names (mixer/column_parts.py, mixer/spec.py SPEC_6, "
                        "mixer/prior-6.npz)"}
DEEP_CODER = 4
# the planes a coded section takes: the 1 or 3 colours of format 2's images (the mixer's kernel is
# made and tested for those; a 4-colour image crashed it once in a measurement)
SECTION_PLANES = {NETWORK: (1, 3), DEFLATE: (1, 3), RAW: (1, 3), MIXER: (1, 3)}
SECTION_CODERS = {**CODERS, DEEP_CODER: "the 16-bit coder (pixzip/codec/deep/)"}
KIND_CODERS = {NETWORK: (CODER, MIXER_CODER, PARTS_CODER, PARTS2_CODER, GRAY_PARTS2_CODER, PARTS3_CODER,
                         PARTS4_CODER, PARTS5_CODER, PARTS6_CODER),
               MIXER: (MIXER_CODER, MIXER2_CODER, MIXER3_CODER), RAW: (0,), DEFLATE: (0,),
               CONSTANT: (0,), EQUAL: (0,), DEEP: (DEEP_CODER,)}

_START = struct.Struct("<4sBB")
_KIND = struct.Struct("<BB")
_DIMS = struct.Struct("<IIBBI")
_CHUNK = struct.Struct("<4sI")
_LEN = struct.Struct("<Q")
_CRC = struct.Struct("<I")
_V1_REST = struct.Struct("<8sIIBBIQ")
_U8 = struct.Struct("B")
_U8U8 = struct.Struct("BB")
_DIMS3 = struct.Struct("<II")
_STRIP = struct.Struct("<I")
_SECTION = struct.Struct("<BBBQ")


class Section(NamedTuple):
    """One section of a format-3 payload: the next ``planes`` planes of the
    picture's layout, coded by (``kind``, ``coder``) in ``length`` bytes."""
    planes: int
    kind: int
    coder: int
    length: int


@dataclass(frozen=True)
class Header:
    model_name: str            # "" for the stored kinds
    model_hash: bytes          # 8-byte sha256 prefix (b"" for the stored kinds)
    height: int
    width: int
    mode: str                  # one of picture.MODES ("L" or "RGB" before format 3)
    strip_height: int
    payload_length: int
    version: int = VERSION
    flags: int = 0
    kind: int = NETWORK
    coder: int = CODER
    chunks: tuple[tuple[bytes, bytes], ...] = field(default=())
    source_format: int = 0     # see metadata.FORMAT_IDS
    layout: int = SAMPLES      # format 3: the planes' layout
    sections: tuple[Section, ...] = field(default=())   # format 3: the payload's sections

    @property
    def channels(self) -> int:
        return CHANNELS[self.mode]

    @property
    def n_subpixels(self) -> int:
        return self.height * self.width * self.channels


def pixels_crc(pixels) -> int:
    """CRC32 of the samples, (H, W, C) row-major; 16-bit ones little-endian."""
    if pixels.dtype.itemsize > 1:
        pixels = np.ascontiguousarray(pixels, "<u2")
    return zlib.crc32(memoryview(np.ascontiguousarray(pixels)).cast("B")) & 0xFFFFFFFF


def check_chunks(chunks, names: dict | None = None) -> None:
    """A LimitError naming the first chunk too large for the format (its
    name from ``names``, by tag), with its size and the limit."""
    for tag, data in chunks:
        if len(data) > MAX_CHUNK_BYTES:
            what = (names or {}).get(bytes(tag), f"metadata chunk {bytes(tag)!r}")
            raise LimitError(f"{what} is {len(data)} bytes, over the limit of {MAX_CHUNK_BYTES} bytes for one "
                             f"metadata item; drop the metadata with --strip")


def pack(header: Header, payload: bytes, crc: int) -> bytes:
    """A format-2 file."""
    name = header.model_name.encode("ascii")
    if header.kind not in KINDS:
        raise ValueError(f"unknown payload kind {header.kind}")
    if header.coder not in KIND_CODERS[header.kind]:
        raise ValueError(f"coder {header.coder} cannot code a {KINDS[header.kind]} payload")
    if header.kind == NETWORK:
        if not 1 <= len(name) <= 64:
            raise ValueError("model name must be 1..64 ASCII characters")
        if len(header.model_hash) != 8:
            raise ValueError("model hash prefix must be 8 bytes")
    elif name or header.model_hash:
        raise ValueError(f"a {KINDS[header.kind]} payload names no model")
    mode = MODE_IDS[header.mode]
    parts = [_START.pack(MAGIC, VERSION, 0), _KIND.pack(header.kind, header.coder), bytes([len(name)]), name,
             header.model_hash, _DIMS.pack(header.height, header.width, header.channels, mode, header.strip_height),
             *_chunk_parts(header)]
    return _sealed(parts, payload, crc)


def pack_picture(header: Header, payload: bytes, crc: int) -> bytes:
    """A format-3 file: a picture's sections (``header.sections``, their
    lengths summing to the payload's) and its chunks."""
    name = header.model_name.encode("ascii")
    if len(name) > 64 or (name and len(header.model_hash) != 8) or (not name and header.model_hash):
        raise ValueError("a model name of 0..64 ASCII characters, and a hash prefix of 8 bytes when named")
    if not 1 <= len(header.sections) <= MAX_SECTIONS:
        raise ValueError(f"1..{MAX_SECTIONS} sections")
    if sum(s.length for s in header.sections) != len(payload):
        raise ValueError("the sections' lengths must sum to the payload's")
    for s in header.sections:
        if s.kind not in SECTION_KINDS or s.coder not in KIND_CODERS[s.kind]:
            raise ValueError(f"coder {s.coder} cannot code a section of kind {s.kind}")
        if s.kind == NETWORK and not name:
            raise ValueError("a network section needs the model named")
    parts = [_START.pack(MAGIC, VERSION_3, 0), _U8U8.pack(MODE3_IDS[header.mode], header.layout),
             _DIMS3.pack(header.height, header.width), bytes([len(name)]), name, header.model_hash,
             _STRIP.pack(header.strip_height), *_chunk_parts(header), bytes([len(header.sections)]),
             *[_SECTION.pack(*s) for s in header.sections]]
    return _sealed(parts, payload, crc)


def _chunk_parts(header: Header) -> list[bytes]:
    """The original format, the chunk count and the chunks, as both formats write them (checked)."""
    if len(header.chunks) > MAX_CHUNKS:
        raise ValueError(f"at most {MAX_CHUNKS} chunks")
    check_chunks(header.chunks)
    parts = [bytes([header.source_format, len(header.chunks)])]
    for tag, data in header.chunks:
        if len(tag) != 4:
            raise ValueError(f"bad chunk tag {tag!r}")
        parts += [_CHUNK.pack(tag, len(data)), data]
    return parts


def _sealed(parts: list[bytes], payload: bytes, crc: int) -> bytes:
    """A file of header ``parts``: then the payload length, the header CRC, the payload and the pixel CRC."""
    head = b"".join([*parts, _LEN.pack(len(payload))])
    return b"".join([head, _CRC.pack(zlib.crc32(head)), payload, _CRC.pack(crc)])


def layout_planes(mode: str, layout: int) -> int | None:
    """How many 8-bit planes a picture of ``mode`` has in ``layout`` (None:
    no such layout): its channels, twice that for 16-bit (the high bytes,
    then the low bytes), a palette image's colours R, G, B, A."""
    if layout == SAMPLES:
        return CHANNELS[mode] * (2 if mode in SIXTEEN_BIT else 1)
    return 4 if layout == PALETTE_COLOURS and mode == "P" else None


def _chunks_of(r: "_Reader") -> tuple[int, list[tuple[bytes, bytes]]]:
    source_format, n_chunks = r.unpack(_U8U8)
    if n_chunks > MAX_CHUNKS:
        raise FormatError(f"{n_chunks} chunks (at most {MAX_CHUNKS})")
    chunks = []
    for _ in range(n_chunks):
        tag, size = r.unpack(_CHUNK)
        if size > MAX_CHUNK_BYTES:
            raise FormatError(f"chunk of {size} bytes (at most {MAX_CHUNK_BYTES})")
        chunks.append((bytes(tag), bytes(r.take(size))))
    return source_format, chunks


def _header3(r: "_Reader", flags: int, max_pixels: int) -> Header:
    """Format 3's header after the version and flags, checked: the header
    CRC first, then the mode and layout, the chunks, the sections (each
    kind and coder known, the planes they cover exactly the layout's, their
    lengths summing to the payload's), then the size limit."""
    mode_id, layout = r.unpack(_U8U8)
    h, w = r.unpack(_DIMS3)
    name = _model_name(r, True)
    mhash = bytes(r.take(8)) if name else b""
    (strip,) = r.unpack(_STRIP)
    source_format, chunks = _chunks_of(r)
    n_sections = r.unpack(_U8)[0]
    sections = tuple(Section(*r.unpack(_SECTION)) for _ in range(n_sections))
    (plen,) = r.unpack(_LEN)
    _check_header_crc(r)
    if mode_id not in _MODE3_OF_ID:
        raise FormatError(f"unknown picture mode {mode_id}")
    mode = _MODE3_OF_ID[mode_id]
    planes = layout_planes(mode, layout)
    if planes is None:
        raise FormatError(f"unknown plane layout {layout} for mode {mode}")
    _check_chunk_tags(chunks, REQUIRED_CHUNKS + PICTURE_CHUNKS)
    if not 1 <= n_sections <= MAX_SECTIONS:
        raise FormatError(f"{n_sections} sections (1..{MAX_SECTIONS})")
    for s in sections:
        if s.kind not in SECTION_KINDS:
            raise FormatError(f"unknown section kind {s.kind}")
        if s.coder not in KIND_CODERS[s.kind]:
            raise FormatError(f"coder {s.coder} cannot code a {SECTION_KINDS[s.kind]} section")
        if s.planes < 1 or s.planes not in SECTION_PLANES.get(s.kind, (s.planes,)):
            raise FormatError(f"a {SECTION_KINDS[s.kind]} section of {s.planes} planes")
        if s.kind == NETWORK and not name:
            raise FormatError("a network section names no model")
    if sum(s.planes for s in sections) != planes:
        raise FormatError(f"the sections cover {sum(s.planes for s in sections)} planes, not the {planes} of "
                          f"a {mode} picture")
    if sum(s.length for s in sections) != plen:
        raise FormatError("the sections' lengths do not sum to the payload's")
    _check_size(h, w, max_pixels)
    return Header(name, mhash, h, w, mode, strip, plen, VERSION_3, flags, -1, -1, tuple(chunks), source_format,
                  layout, sections)


def _check_chunk_tags(chunks, required) -> None:
    for tag, _ in chunks:
        if not (tag.isalpha() and tag.isascii()) or not tag[:1].islower() and tag not in required:
            raise FormatError(f"unknown required chunk {tag!r}")


READ_STEP = 1 << 20           # a stream is read in steps of at most this many bytes


class _Reader:
    """The bytes of a file as they are parsed: from memory (``data``), or
    from a binary stream read no further than asked (``stream``), keeping
    what was read.  ``size``: the stream's length when known (a regular
    file), so that a length past the end is refused before it is read;
    ``max_bytes``: the most it may read, else ``too_big(bytes)`` is raised."""

    def __init__(self, data=None, stream=None, size: int | None = None, max_bytes: int | None = None,
                 too_big=None):
        self.stream, self.size, self.max_bytes, self.too_big = stream, size, max_bytes, too_big
        self.data = memoryview(data) if stream is None else bytearray()
        self.pos = 0

    def pull(self, n: int, error) -> None:
        """Read from the stream until the n bytes after ``pos`` are held."""
        end = self.pos + n
        if self.size is not None and end > self.size:
            raise error()
        if self.max_bytes is not None and end > self.max_bytes:
            raise self.too_big(end)
        while len(self.data) < end:
            got = self.stream.read(min(READ_STEP, end - len(self.data)))
            if not got:
                raise error()
            self.data += got

    def take(self, n: int, error=lambda: TruncatedError("truncated header")):
        if self.stream is not None:
            self.pull(n, error)
            out = bytes(self.data[self.pos:self.pos + n])     # a copy: the buffer grows
        elif len(self.data) < self.pos + n:
            raise error()
        else:
            out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, s: struct.Struct) -> tuple:
        return s.unpack(self.take(s.size))


def _name(raw: memoryview, allow_empty: bool) -> str:
    try:
        name = bytes(raw).decode("ascii")
    except UnicodeDecodeError:
        raise FormatError("bad model name") from None
    if not name and not allow_empty:
        raise FormatError("bad model name")
    return name


def _model_name(r: _Reader, allow_empty: bool) -> str:
    """A model name of 0..64 ASCII bytes after its length byte (formats 2 and 3)."""
    n = r.unpack(_U8)[0]
    if n > 64:
        raise FormatError("bad model name")
    return _name(r.take(n), allow_empty)


def _check_header_crc(r: _Reader) -> None:
    """The CRC32 after the header's bytes, checked against them."""
    end = r.pos
    (stored_crc,) = r.unpack(_CRC)
    if stored_crc != zlib.crc32(memoryview(r.data)[:end]):
        raise FormatError("header checksum mismatch: the file is corrupt")


def _check_size(h: int, w: int, max_pixels: int) -> None:
    if h < 1 or w < 1 or h > MAX_SIDE or w > MAX_SIDE or h * w > max_pixels:
        raise LimitError(f"image size {w}x{h} is outside the limit of {max_pixels:,} pixels")


def _header(r: _Reader, max_pixels: int) -> Header:
    """The header at the start of ``r``, checked in the stated order; ``r``
    is left at the first byte of the payload."""
    magic = bytes(r.take(len(MAGIC), lambda: FormatError("not a pixzip file (bad magic)")))
    if magic != MAGIC:
        raise FormatError("not a pixzip file (bad magic)")
    version, flags = r.unpack(_U8U8)
    if version not in READS:
        newer = "a newer" if version > max(READS) else "an unknown"
        raise FormatError(f"made by {newer} pixzip (format {version}); this pixzip reads formats "
                          f"{', '.join(map(str, READS))}")
    if flags & ~KNOWN_FLAGS:
        raise FormatError(f"unknown flags 0x{flags:02x}")
    if version == VERSION_3:
        return _header3(r, flags, max_pixels)
    chunks: list[tuple[bytes, bytes]] = []
    source_format = 0
    if version == 1:
        kind, coder = NETWORK, CODER
        n = r.unpack(_U8)[0]
        if not 1 <= n <= 64:
            raise FormatError("bad model name")
        name = _name(r.take(n), False)
        mhash, h, w, channels, mode_id, strip, plen = r.unpack(_V1_REST)
        mhash = bytes(mhash)
    else:
        kind, coder = r.unpack(_KIND)
        name = _model_name(r, kind != NETWORK)
        mhash = bytes(r.take(8)) if kind == NETWORK else b""
        h, w, channels, mode_id, strip = r.unpack(_DIMS)
        source_format, chunks = _chunks_of(r)
        (plen,) = r.unpack(_LEN)
    _check_header_crc(r)
    if kind not in KINDS:
        raise FormatError(f"unknown payload kind {kind}")
    if kind in (NETWORK, MIXER) and coder not in CODERS:
        raise FormatError(f"unknown coder id {coder} (this pixzip has coders {', '.join(map(str, CODERS))})")
    if coder not in KIND_CODERS[kind]:
        raise FormatError(f"coder {coder} cannot code a {KINDS[kind]} payload")
    if kind != NETWORK and name:
        raise FormatError(f"a {KINDS[kind]} payload names a model")
    _check_chunk_tags(chunks, REQUIRED_CHUNKS)
    if mode_id not in _MODE_OF_ID or MODE_CHANNELS[_MODE_OF_ID[mode_id]] != channels:
        raise FormatError(f"bad colour mode {mode_id} with {channels} channels")
    _check_size(h, w, max_pixels)
    return Header(name, mhash, h, w, _MODE_OF_ID[mode_id], strip, plen, version, flags, kind, coder, tuple(chunks),
                  source_format)


def _cut_short(plen: int):
    return lambda: TruncatedError(f"truncated file: payload of {plen} bytes is cut short")


def parse(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[Header, memoryview, int]:
    """(header, payload view, stored CRC) of a .pxz file, checked in the stated order."""
    r = _Reader(data)
    header = _header(r, max_pixels)
    pos, plen = r.pos, header.payload_length
    if len(r.data) < pos + plen + _CRC.size:
        raise _cut_short(plen)()
    if len(r.data) > pos + plen + _CRC.size:
        raise FormatError("trailing data after the checksum")
    payload = r.data[pos:pos + plen]
    (crc,) = _CRC.unpack_from(r.data, pos + plen)
    return header, payload, crc


def read(stream, size: int | None = None, max_pixels: int = MAX_PIXELS, max_bytes: int | None = None,
         too_big=None, payload: bool = True) -> tuple[Header, memoryview]:
    """(header, the file's bytes: a read-only view, never copied) of a .pxz file read from a binary stream,
    no further than it needs: the magic first (anything else is refused at
    once), the header, then exactly the payload and checksum the header
    declares, and one more byte to refuse trailing data.  ``size``: the
    stream's length when known (a regular file: a payload past its end is
    refused unread); ``max_bytes``: the most it may read, else
    ``too_big(bytes)`` is raised before the payload is read.  Without
    ``payload``, the payload is skipped unkept (``info``: its bytes cost no
    memory; a regular file's is not read at all) and the bytes returned are
    the header's."""
    if max_bytes is not None and too_big is None:
        too_big = lambda n: LimitError(f"an archive of {n} bytes is over the limit of {max_bytes} bytes")  # noqa: E731
    r = _Reader(stream=stream, size=size, max_bytes=max_bytes, too_big=too_big)
    header = _header(r, max_pixels)
    plen = header.payload_length
    rest = plen + _CRC.size
    if payload:
        r.pull(rest, _cut_short(plen))
    elif size is not None:
        if r.pos + rest > size:
            raise _cut_short(plen)()
        stream.seek(r.pos + rest)
    else:
        if max_bytes is not None and r.pos + rest > max_bytes:    # a stream's claim: not read for ever
            raise too_big(r.pos + rest)
        left = rest
        while left:
            got = stream.read(min(READ_STEP, left))
            if not got:
                raise _cut_short(plen)()
            left -= len(got)
    if stream.read(1):
        raise FormatError("trailing data after the checksum")
    return header, memoryview(r.data).toreadonly()
