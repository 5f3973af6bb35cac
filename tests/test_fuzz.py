"""Hostile archives: every mutated, truncated, spliced or lying .pxz file either
decodes (to the original pixels, or, when the mutant is itself a valid
archive, to a uint8 image of its header's shape whose pixel CRC matches) or
raises a PixzipError with a one-line message; nothing else escapes, no case
runs past CASE_SECONDS, and none allocates more than CASE_BYTES.

The harness (seeds, mutations, ``run_case``) is shared with
``benchmarks/fuzz_archives.py``, which runs the long campaign and prints
figures.  The default run tries about 1000 cases (a seeded loop of 700, two
hypothesis tests of 120, and targeted ones); the ``slow`` test 10,000.
"""
from __future__ import annotations

import contextlib
import math
import signal
import struct
import threading
import time
import traceback
import tracemalloc
import zlib
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pixzip.codec import api as codec
from pixzip.codec import levels
from pixzip.codec.coders import making
from pixzip.codec.format import container
from pixzip.codec.format.container import DEFLATE, MAX_CHUNK_BYTES, MAX_CHUNKS, MAX_SIDE, NETWORK, RAW
from pixzip.codec.format.metadata import Metadata
from pixzip.codec.network.modelfile import ModelFile
from pixzip.errors import CorruptError, LimitError, PixzipError

from .conftest import once_subsampled, tiny_int_model

network_min_bytes = making("network", 2).min_payload_bytes    # coder 1's least payload (n_subpixels, model)

DATA = Path(__file__).parent / "data"
CASE_SECONDS = 10.0              # no case may run longer (it is interrupted at this bound)
CASE_BYTES = 50 << 20            # nor allocate more (tracemalloc peak)
EXTREMES = (0x00, 0xFF, 0x7F, 0x80)
DEFAULT_CASES = 700              # the seeded loop of the default run


# ---------------------------------------------------------------- seeds

@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes
    pixels: np.ndarray
    model: ModelFile


def _image(rng, h, w, c, content):
    if content == "flat":
        return np.full((h, w, c), rng.integers(0, 256, c), np.uint8)
    if content == "smooth":
        y, x = np.mgrid[0:h, 0:w]
        base = (7 * y + 11 * x)[..., None] + 40 * np.arange(c)
        return ((base + rng.integers(0, 3, (h, w, c))) % 256).astype(np.uint8)
    return rng.integers(0, 256, (h, w, c), dtype=np.uint8)


METADATA = Metadata(format="PNG", icc=b"not really an ICC profile " * 3, exif=b"Exif\0\0MM\0*\0\0\0\x08",
                    dpi=(300.0, 300.0), text=(("Title", "fuzz"), ("k", "v\u00e9")))

#        colours, height, width, payload, strip_height, metadata, content
SPECS = [(3, 1, 1, "network", 0, False, "noise"),
         (3, 12, 14, "network", 0, True, "noise"),
         (3, 12, 14, "network", 3, False, "smooth"),
         (3, 5, 7, "network", 3, True, "noise"),
         (3, 2, 9, "network", 0, False, "flat"),
         (3, 9, 4, "raw", 0, False, "noise"),
         (3, 3, 2, "raw", 0, True, "smooth"),
         (3, 12, 14, "deflate", 0, True, "smooth"),
         (3, 2, 3, "deflate", 0, False, "flat"),
         (1, 1, 1, "network", 0, False, "noise"),
         (1, 12, 14, "network", 0, False, "smooth"),
         (1, 11, 6, "network", 3, True, "noise"),
         (1, 7, 1, "network", 3, False, "noise"),
         (1, 1, 9, "raw", 0, True, "noise"),
         (1, 4, 4, "raw", 0, False, "flat"),
         (1, 12, 14, "deflate", 0, False, "smooth"),
         (1, 10, 13, "deflate", 0, True, "flat"),
         (3, 1, 1, "mixer+network", 0, False, "noise"),
         (3, 12, 14, "mixer+network", 0, True, "smooth"),
         (3, 7, 5, "mixer+network", 3, False, "noise"),
         (1, 11, 6, "mixer+network", 3, True, "smooth"),
         (3, 10, 12, "mixer", 0, False, "smooth"),
         (3, 2, 9, "mixer", 0, True, "flat"),
         (1, 12, 14, "mixer", 0, False, "noise")]


def make_seeds() -> list[Seed]:
    """Format-2 archives of every kind, and the format-1 golden files."""
    rng = np.random.default_rng(2024)
    nets = {3: tiny_int_model(3), 1: tiny_int_model(1)}
    seeds = []
    for c, h, w, payload, strip, meta, content in SPECS:
        img = _image(rng, h, w, c, content)
        data = codec.compress(img, nets[c], payload=payload, metadata=METADATA if meta else Metadata(),
                              options=codec.Options(strip_height=strip))
        name = f"{'rgb' if c == 3 else 'gray'}-{h}x{w}-{payload}{f'-s{strip}' if strip else ''}" \
               f"{'-meta' if meta else ''}-{content}"
        seeds.append(Seed(name, data, img, nets[c]))
    # the mixer 1 (coders 2 and 3, -1's level): the seeds above make the mixer 2's (coders 5 and 6)
    for c, h, w, payload, strip in ((3, 10, 12, "mixer", 0), (3, 12, 14, "mixer+network", 0),
                                    (1, 11, 6, "mixer+network", 3)):
        img = _image(rng, h, w, c, "smooth")
        data = codec.compress(img, nets[c], level=1, payload=payload, options=codec.Options(strip_height=strip))
        seeds.append(Seed(f"{'rgb' if c == 3 else 'gray'}-{h}x{w}-{payload}-mixer1{f'-s{strip}' if strip else ''}",
                          data, img, nets[c]))
    # coder 7: a gray image over the RGB network, in strips
    img = _image(rng, 13, 9, 1, "smooth")
    data = codec.compress(img, nets[3], payload="mixer+network", options=codec.Options(strip_height=4))
    assert container.parse(data)[0].coder == container.GRAY_PARTS2_CODER
    seeds.append(Seed("gray-13x9-mixer+network-over-rgb-s4", data, img, nets[3]))
    # coder 9 (the mixer 3 over the network: -9's in 0.10; the seeds above without a level make coder 12), one
    # part and two
    for parts in (1, 2):
        img = _image(rng, 9, 13, 3, "smooth")
        data = codec.compress(img, nets[3], level=6, payload="mixer+network", options=codec.Options(parts=parts))
        assert container.parse(data)[0].coder == container.PARTS3_CODER
        seeds.append(Seed(f"rgb-9x13-mixer+network-mixer3-p{parts}", data, img, nets[3]))
    # coders 10 and 11 (the mixers 4 and 5 over the network: -9's in 0.11 and 0.12), one part, made with those
    # releases' -9
    before = levels.LEVELS
    for version, coder, (h, w) in ((4, container.PARTS4_CODER, (11, 10)), (5, container.PARTS5_CODER, (10, 11))):
        levels.LEVELS = {**before, 9: levels.Level("mixer+network", "max", version)}
        try:
            img = _image(rng, h, w, 3, "smooth")
            data = codec.compress(img, nets[3], level=9, payload="mixer+network")
        finally:
            levels.LEVELS = before
        assert container.parse(data)[0].coder == coder
        seeds.append(Seed(f"rgb-{h}x{w}-mixer+network-mixer{version}-p1", data, img, nets[3]))
    # coder 12 from its second prior set (colour once subsampled), the payload's first byte 1
    img = once_subsampled(_image(rng, 12, 14, 3, "smooth"))
    data = codec.compress(img, nets[3], payload="mixer+network")
    header, payload, _ = container.parse(data)
    assert (header.coder, payload[0]) == (container.PARTS6_CODER, 1)
    seeds.append(Seed("rgb-12x14-mixer+network-mixer6-set1", data, img, nets[3]))
    golden = {"RGB": ModelFile.load(DATA / "golden-tiny.pxm"),
              "L": ModelFile.load(DATA / "golden-tiny-gray.pxm")}
    for f in sorted((DATA / "format1").glob("*.pxz")):
        data = f.read_bytes()
        mode = container.parse(data)[0].mode
        img = np.asarray(Image.open(f.with_suffix(".png")).convert(mode), np.uint8)
        seeds.append(Seed(f"format1-{f.stem}", data, img.reshape(img.shape[0], img.shape[1], -1), golden[mode]))
    # coder 2 (the mixer in one state), no longer written
    for name, src in (("mixed", DATA / "golden.png"), ("mixed-gray-strips", DATA / "format1" / "gray.png")):
        data = (DATA / "format2" / f"{name}.pxz").read_bytes()
        mode = container.parse(data)[0].mode
        img = np.asarray(Image.open(src).convert(mode), np.uint8)
        seeds.append(Seed(f"coder2-{name}", data, img.reshape(img.shape[0], img.shape[1], -1), golden[mode]))
    return seeds


def models_of(seeds) -> dict[str, ModelFile]:
    return {s.model.name: s.model for s in seeds}


# ---------------------------------------------------------------- a header writer that can lie

@dataclass
class Fields:
    """Every field of a .pxz file, written back with a valid header CRC whatever
    the values (``container.pack`` refuses to write most lies)."""
    layout: int                     # 1 or 2: which format's field layout is written
    version: int
    flags: int
    kind: int
    coder: int
    name: bytes
    mhash: bytes
    height: int
    width: int
    channels: int
    mode_id: int
    strip: int
    chunks: list                    # [(tag, data, declared length or None)]
    payload: bytes
    pixcrc: int
    name_len: int | None = None     # None: len(name)
    n_chunks: int | None = None     # None: len(chunks)
    plen: int | None = None         # None: len(payload)
    header_crc: int | None = None   # None: the right one
    source_format: int = 0          # the original-format byte (format 2)

    def encode(self) -> bytes:
        u8, u32, u64 = (lambda v: v & 0xFF), (lambda v: v & 0xFFFFFFFF), (lambda v: v & (1 << 64) - 1)
        parts = [container.MAGIC, bytes([u8(self.version), u8(self.flags)])]
        nlen = len(self.name) if self.name_len is None else self.name_len
        plen = len(self.payload) if self.plen is None else self.plen
        dims = (u32(self.height), u32(self.width), u8(self.channels), u8(self.mode_id), u32(self.strip))
        if self.layout == 1:
            parts += [bytes([u8(nlen)]), self.name, (self.mhash + bytes(8))[:8],
                      struct.pack("<IIBBIQ", *dims, u64(plen))]
        else:
            parts += [bytes([u8(self.kind), u8(self.coder), u8(nlen)]), self.name]
            if u8(self.kind) == NETWORK:
                parts.append((self.mhash + bytes(8))[:8])
            parts += [struct.pack("<IIBBI", *dims),
                      bytes([u8(self.source_format), u8(len(self.chunks) if self.n_chunks is None else self.n_chunks)])]
            for tag, data, declared in self.chunks:
                parts += [struct.pack("<4sI", tag, u32(len(data) if declared is None else declared)), data]
            parts.append(struct.pack("<Q", u64(plen)))
        head = b"".join(parts)
        crc = zlib.crc32(head) if self.header_crc is None else u32(self.header_crc)
        return b"".join([head, struct.pack("<I", crc), self.payload, struct.pack("<I", u32(self.pixcrc))])


def fields_of(data: bytes) -> Fields:
    h, payload, crc = container.parse(data)
    mode_id = container.MODE_IDS[h.mode]
    return Fields(h.version, h.version, h.flags, h.kind, h.coder, h.model_name.encode("ascii"), h.model_hash,
                  h.height, h.width, h.channels, mode_id, h.strip_height, [(t, d, None) for t, d in h.chunks],
                  bytes(payload), crc, source_format=h.source_format)


# ---------------------------------------------------------------- mutations

BYTE_OPS = ("flip", "overwrite", "insert", "delete", "truncate", "splice", "duplicate")


def apply_op(data: bytes, op: str, a: int, b: int, c: int, blob: bytes, other: bytes) -> tuple[bytes, str]:
    """One byte-level mutation, fully determined by its arguments."""
    n = len(data)
    if op == "flip":
        pos, bit = a % n, b % 8
        out = bytearray(data)
        out[pos] ^= 1 << bit
        return bytes(out), f"flip byte {pos} bit {bit}"
    if op == "overwrite":
        pos = a % n
        out = bytearray(data)
        out[pos:pos + len(blob)] = blob[:n - pos]
        return bytes(out), f"overwrite at {pos} with {blob[:n - pos].hex()}"
    if op == "insert":
        pos = a % (n + 1)
        return data[:pos] + blob + data[pos:], f"insert {blob.hex()} at {pos}"
    if op == "delete":
        pos, k = a % n, 1 + b % 16
        return data[:pos] + data[pos + k:], f"delete {k} bytes at {pos}"
    if op == "truncate":
        k = a % n
        return data[:k], f"truncate to {k} bytes"
    if op == "splice":
        i, j = a % (n + 1), b % (len(other) + 1)
        return data[:i] + other[j:], f"head {i} bytes + other's tail from byte {j}"
    if op == "duplicate":
        pos, k = a % n, 1 + b % 32
        seg = data[pos:pos + k]
        if c % 2:   # repeat in place
            return data[:pos + k] + seg + data[pos + k:], f"repeat {len(seg)} bytes at {pos}"
        dest = c // 2 % n
        out = bytearray(data)
        out[dest:dest + len(seg)] = seg[:n - dest]
        return bytes(out), f"copy {len(seg)} bytes from {pos} over {dest}"
    raise ValueError(op)


HUGE_DIMS = ((100_000, 100_000), (30_000, 30_000), (1 << 15, 1 << 15), (MAX_SIDE, 1 << 10), (MAX_SIDE, MAX_SIDE),
             (MAX_SIDE + 1, 1), (1, MAX_SIDE + 1), (0, 5), (5, 0), (0, 0), (0xFFFFFFFF, 0xFFFFFFFF),
             (0xFFFFFFFF, 1), (1 << 16, 1 << 16))
MODE_PAIRS = ((0, 1), (1, 3), (0, 3), (1, 1), (2, 3), (255, 1), (0, 0), (1, 4), (0, 255))
STRIPS = (0, 1, 2, 3, 0x7FFFFFFF, 0xFFFFFFFF)
CHUNK_LENGTHS = (0, 1, MAX_CHUNK_BYTES, MAX_CHUNK_BYTES + 1, 0xFFFFFFFF)
TAGS = (b"zzzz", b"ZZZZ", b"\0\0\0\0", b"iccp", b"exif", b"dpix", b"text", b"ofmt", b"xmpp", b"Iccp", b"a1bc")
CHUNK_DATA = (b"", b"\xff", b"\0" * 15, b"\0" * 16, b"\xff\xff\xff\xff", b"\x05\0\0\0ab", b"\x01\0\0\0a\xff\xff\xff\x7f",
              b"\x01\0\0\0\xff\x01\0\0\0a", b"\x00\x00\x80\x7f" * 4)
PLENS = (0, 1, 1 << 63, (1 << 64) - 1)
NAMES = (b"", b"x" * 64, b"x" * 65, b"\xff", b"tiny3", b"tiny1", b"golden-tiny", b"golden-tiny-gray", b"tiny3\0")


def _bound_dims(f: Fields, model, shape: int) -> tuple[int, int]:
    """The largest image (1-high, 1-wide or square) whose claim the payload's length still allows."""
    per = f.channels if f.channels in (1, 3) else 1
    lo, hi = 1, MAX_SIDE * MAX_SIDE
    while lo < hi:      # most subpixels with network_min_bytes <= len(payload)
        mid = (lo + hi + 1) // 2
        if network_min_bytes(mid, model) <= len(f.payload):
            lo = mid
        else:
            hi = mid - 1
    pixels = max(1, lo // per)
    if shape == 0:
        return 1, min(MAX_SIDE, pixels)
    if shape == 1:
        return min(MAX_SIDE, pixels), 1
    side = max(1, int(pixels ** 0.5))
    return side, side


def _zero_crc(f: Fields) -> int:
    c = f.channels if f.channels in (1, 3) else 1
    h, w = f.height & 0xFFFFFFFF, f.width & 0xFFFFFFFF
    if h * w * c > 1 << 24:     # a crc of zeros without allocating them
        return zlib.crc32(b"") if h * w == 0 else 0
    return zlib.crc32(bytes(h * w * c))


def lie(f: Fields, which: int, a: int, b: int, other: Fields, model, lies=None) -> str:
    """Rewrite one header field of ``f`` (in place) to a lie; the header CRC stays valid."""
    lies = LIES if lies is None else lies
    return lies[which % len(lies)](f, a, b, other, model)


def _lie_dims_huge(f, a, b, other, model):
    f.height, f.width = HUGE_DIMS[a % len(HUGE_DIMS)]
    return f"dims {f.height}x{f.width}"


def _lie_dims_small(f, a, b, other, model):
    if a % 4 == 0:
        f.height, f.width = f.width, f.height
    elif a % 4 == 1:
        f.height, f.width = max(0, f.height + (b % 3) - 1), max(0, f.width + (b // 3 % 3) - 1)
    else:
        f.height, f.width = 1 + a % 40, 1 + b % 40
    return f"dims {f.height}x{f.width}"


def _lie_dims_bound(f, a, b, other, model):
    f.height, f.width = _bound_dims(f, model, a % 3)
    return f"dims {f.height}x{f.width} (the payload-length bound)"


def _lie_mode(f, a, b, other, model):
    f.mode_id, f.channels = MODE_PAIRS[a % len(MODE_PAIRS)]
    return f"mode {f.mode_id} channels {f.channels}"


def _lie_kind(f, a, b, other, model):
    f.kind = (NETWORK, RAW, DEFLATE, 3, 255)[a % 5]
    if b % 2:       # keep the name, hash and coder consistent with the kind
        if f.kind == NETWORK:
            f.name, f.mhash, f.coder = model.name.encode(), bytes.fromhex(model.sha256[:16]), container.CODER
        else:
            f.name, f.mhash, f.coder = b"", b"", 0
    return f"kind {f.kind}{' (consistent name/coder)' if b % 2 else ''}"


def _lie_coder(f, a, b, other, model):
    f.coder = (0, 1, 2, 3, 255, b % 256)[a % 6]
    return f"coder {f.coder}"


def _lie_strip(f, a, b, other, model):
    f.strip = (*STRIPS, f.height, f.height + 1, b % 64)[a % (len(STRIPS) + 3)]
    return f"strip height {f.strip}"


def _lie_chunk_count(f, a, b, other, model):
    if a % 2:   # the count byte lies
        f.n_chunks = (0, 1, MAX_CHUNKS, MAX_CHUNKS + 1, 255, len(f.chunks) + 1, max(0, len(f.chunks) - 1))[b % 7]
        return f"chunk count byte {f.n_chunks} ({len(f.chunks)} chunks follow)"
    n = (MAX_CHUNKS, MAX_CHUNKS + 1, 2 + b % 8)[a // 2 % 3]
    f.chunks = (f.chunks + [(b"zzz" + bytes([97 + k % 26]), bytes([k]) * (k % 3), None) for k in range(64)])[:n]
    return f"{len(f.chunks)} chunks"


def _lie_chunk_len(f, a, b, other, model):
    if not f.chunks:
        f.chunks = [(b"iccp", b"profile", None)]
    k = b % len(f.chunks)
    tag, data, _ = f.chunks[k]
    declared = (*CHUNK_LENGTHS, len(data) + 1, max(0, len(data) - 1), len(data) + 1 + len(f.payload))
    f.chunks[k] = (tag, data, declared[a % len(declared)])
    return f"chunk {k} {tag!r} declares {f.chunks[k][2]} bytes (has {len(data)})"


def _lie_chunk_tag(f, a, b, other, model):
    tag = TAGS[a % len(TAGS)]
    data = CHUNK_DATA[b % len(CHUNK_DATA)]
    if f.chunks and b % 3 == 0:
        k = b % len(f.chunks)
        f.chunks[k] = (tag, f.chunks[k][1], None)
        return f"chunk {k} tag {tag!r}"
    f.chunks = f.chunks[:MAX_CHUNKS - 1] + [(tag, data, None)]
    return f"chunk {tag!r} = {data.hex()}"


def _lie_plen(f, a, b, other, model):
    f.plen = (*PLENS, len(f.payload) + 1, max(0, len(f.payload) - 1), len(f.payload) + 4)[a % (len(PLENS) + 3)]
    return f"payload length field {f.plen} (payload has {len(f.payload)})"


def _lie_name(f, a, b, other, model):
    f.name = NAMES[a % len(NAMES)]
    if b % 4 == 0:
        f.name_len = (0, 64, 65, 255)[b // 4 % 4]
    return f"model name {f.name!r}" + (f" with length byte {f.name_len}" if f.name_len is not None else "")


def _lie_hash(f, a, b, other, model):
    f.mhash = (bytes(8), b"\xff" * 8, bytes.fromhex(model.sha256[:16]), (b % (1 << 64)).to_bytes(8, "little"))[a % 4]
    return f"model hash {f.mhash.hex()}"


def _lie_version(f, a, b, other, model):
    f.version, f.layout, f.flags = ((1, 1, 0), (2, 2, 0), (1, 2, 0), (2, 1, 0), (3, 2, 0), (0, 2, 0), (255, 2, 0),
                                    (2, 2, 1), (1, 1, 0x80))[a % 9]
    return f"version {f.version} in the format-{f.layout} layout, flags {f.flags}"


def _lie_payload_from(f, a, b, other, model):
    f.payload = other.payload
    if a % 2:
        f.pixcrc = other.pixcrc
    return "the other archive's payload" + (" and pixel CRC" if a % 2 else "")


def _lie_pixcrc(f, a, b, other, model):
    f.pixcrc = (_zero_crc(f), b, f.pixcrc ^ 1)[a % 3]
    return f"pixel CRC {f.pixcrc:08x}"


def _lie_zero_payload(f, a, b, other, model):
    f.payload = bytes(len(f.payload) if a % 2 else 4 * (b % 64))
    if b % 3:
        f.height, f.width = 1 + a % 24, 1 + b % 24
    f.pixcrc = _zero_crc(f)
    return f"zero payload of {len(f.payload)} bytes for {f.height}x{f.width}, CRC of a black image"


def _lie_source_format(f, a, b, other, model):
    f.source_format = (0, 1, 7, 8, 254, 255, b % 256)[a % 7]
    if b % 2:   # and an "ofmt" chunk naming some format, or garbage
        f.chunks = f.chunks[:MAX_CHUNKS - 1] + [(b"ofmt", (b"PNG", b"\xff\xfe", b"", b"X" * 300)[b // 2 % 4], None)]
    return f"original-format byte {f.source_format}" + (" with an ofmt chunk" if b % 2 else "")


BOMB_BYTES = (18_000, 1 << 20)      # the payloads of the bomb lies: the audit's 18 KB to 1 MB


def _bomb_side(f: Fields, model) -> int:
    """The side of the largest square image the payload's length allows, by its kind's bound."""
    from pixzip.codec.mixer.one_state import min_payload_bytes
    from pixzip.codec.format.stored import DEFLATE_MAX_RATIO
    per = f.channels if f.channels in (1, 3) else 1
    n = len(f.payload)
    if f.kind == RAW:
        return max(1, math.isqrt(n // per))
    if f.kind == DEFLATE:
        return max(1, math.isqrt(n * DEFLATE_MAX_RATIO // per))
    bound = (min_payload_bytes if f.kind == container.MIXER or f.coder != container.CODER
             else lambda k: network_min_bytes(k, model))
    lo, hi = 1, MAX_SIDE * MAX_SIDE * per
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if bound(mid) <= n else (lo, mid - 1)
    return max(1, math.isqrt(lo // per))


def _lie_bomb(f, a, b, other, model):
    """A decompression bomb: an 18 KB to 1 MB payload (zeros, or the seed's
    own bytes repeated) under a claim of the largest square image its
    length allows, with the pixel CRC of a black one."""
    lo, hi = BOMB_BYTES
    size = int(lo * (hi / lo) ** ((a % 1000) / 999))
    own = b % 2 and len(f.payload) > 0
    f.payload = (f.payload * (size // max(1, len(f.payload)) + 1))[:size] if own else bytes(size)
    f.height = f.width = _bomb_side(f, model)
    f.pixcrc = _zero_crc(f)
    return f"bomb: {size}-byte payload of {'its own bytes' if own else 'zeros'} claiming {f.width}x{f.height}"


def _lie_header_crc(f, a, b, other, model):
    f.header_crc = b
    return f"header CRC {b & 0xFFFFFFFF:08x}"


LIES = (_lie_dims_huge, _lie_dims_small, _lie_dims_bound, _lie_mode, _lie_kind, _lie_coder, _lie_strip,
        _lie_chunk_count, _lie_chunk_len, _lie_chunk_tag, _lie_plen, _lie_name, _lie_hash, _lie_version,
        _lie_payload_from, _lie_pixcrc, _lie_zero_payload, _lie_source_format, _lie_header_crc, _lie_bomb)
# The default run leaves out the claims at the payload-length bound, which the two
# tests of them below cover; each cost up to CASE_SECONDS before the decoder refused them early;
# and the bombs, whose payloads are 18 KB to 1 MB (test_bombs.py has the audit's).
LIES_DEFAULT = tuple(f for f in LIES if f not in (_lie_dims_bound, _lie_bomb))


def _blob(rng) -> bytes:
    k = int(rng.integers(1, 17))
    if rng.random() < 0.5:
        return bytes([EXTREMES[int(rng.integers(len(EXTREMES)))]]) * k
    return rng.integers(0, 256, k, dtype=np.uint8).tobytes()


def _position(rng, data: bytes) -> int:
    """Uniform over the file, or (a third of the time) inside the header."""
    if rng.random() < 1 / 3:
        try:
            end = len(data) - container.parse(data)[0].payload_length - 4
        except PixzipError:
            end = min(len(data), 64)
        return int(rng.integers(0, max(1, end)))
    return int(rng.integers(0, 1 << 31))


def random_case(rng, seeds, lies=LIES) -> tuple[bytes, str, Seed]:
    """A mutant of a random seed: a byte-level mutation (sometimes two), or a header lie
    (sometimes followed by a byte-level mutation)."""
    seed = seeds[int(rng.integers(len(seeds)))]
    other = seeds[int(rng.integers(len(seeds)))]
    data, descs = seed.data, []
    if rng.random() < 0.3:
        f = fields_of(seed.data)
        descs.append(lie(f, int(rng.integers(len(lies))), int(rng.integers(1 << 32)), int(rng.integers(1 << 32)),
                         fields_of(other.data), seed.model, lies))
        data = f.encode()
        n_ops = int(rng.random() < 0.15)
    else:
        n_ops = 1 + int(rng.random() < 0.15)
    for _ in range(n_ops):
        if not data:
            break
        op = BYTE_OPS[int(rng.choice(len(BYTE_OPS), p=(.2, .2, .1, .1, .12, .18, .1)))]
        data, d = apply_op(data, op, _position(rng, data), int(rng.integers(1 << 31)), int(rng.integers(1 << 31)),
                           _blob(rng), other.data)
        descs.append(d)
    return data, f"{seed.name} ({other.name}): " + "; ".join(descs), seed


# ---------------------------------------------------------------- running a case

class CaseTimeout(BaseException):
    """Raised by the alarm: a BaseException, so no ``except Exception`` in pixzip swallows it."""


@contextlib.contextmanager
def deadline(seconds: float | None):
    """Interrupt the block after ``seconds`` (the decoder returns to Python at every step)."""
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def alarm(signum, frame):
        raise CaseTimeout()

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Outcome:
    kind: str           # "decoded exactly", "decoded a valid archive", a PixzipError's class name, or "BUG: ..."
    seconds: float
    peak_bytes: int     # tracemalloc peak above the start of the case (0 when not tracing)
    detail: str = ""

    @property
    def bug(self) -> bool:
        return self.kind.startswith("BUG")


def pick_model(data: bytes, default, models):
    """The model the mutant's header names, if it is one of the seeds' (so that decoding gets past the model
    check), else the seed's."""
    try:
        h = container.parse(data)[0]
    except Exception:
        return default
    return models.get(h.model_name, default) if h.kind == NETWORK else default


def run_case(data: bytes, seed: Seed, models, seconds: float = CASE_SECONDS, max_bytes: int = CASE_BYTES,
             model=None) -> Outcome:
    model = pick_model(data, seed.model, models) if model is None else model
    tracing = tracemalloc.is_tracing()
    if tracing:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
    detail = ""
    t = time.perf_counter()
    try:
        with deadline(seconds):
            out = codec.decompress(data, model)
    except CaseTimeout:
        kind = "BUG: hang"
        detail = f"interrupted after {seconds} s"
    except PixzipError as e:
        kind, msg = type(e).__name__, str(e)
        if not msg or "\n" in msg:
            kind, detail = "BUG: PixzipError without a one-line message", repr(msg)
    except KeyboardInterrupt:
        raise
    except BaseException as e:   # MemoryError, numba errors, ValueError, ... all are bugs
        kind, detail = f"BUG: {type(e).__name__}", traceback.format_exc()
    else:
        kind = _classify(data, out, seed)
    elapsed = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] - base if tracing else 0
    if elapsed > seconds and not kind.startswith("BUG"):
        kind, detail = "BUG: hang", f"{elapsed:.1f} s, then {kind}"
    elif peak > max_bytes and not kind.startswith("BUG"):
        kind, detail = "BUG: big allocation", f"{peak / 2**20:.0f} MB, then {kind}"
    return Outcome(kind, elapsed, peak, detail)


def _classify(data: bytes, out, seed: Seed) -> str:
    header, _, crc = container.parse(data)      # it decoded, so it parses
    shape = (header.height, header.width, header.channels)
    if not (isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == shape):
        return "BUG: output is not a uint8 array of the header's shape"
    if np.array_equal(out, seed.pixels):
        return "decoded exactly"
    if container.pixels_crc(np.ascontiguousarray(out)) == crc:
        return "decoded a valid archive"
    return "BUG: wrong pixels without an error"


def campaign(seeds, n: int, seed: int = 0, seconds: float = CASE_SECONDS, progress=None, lies=LIES):
    """Run ``n`` random cases: yields (description, outcome, mutant bytes)."""
    rng = np.random.default_rng(seed)
    models = models_of(seeds)
    for k in range(n):
        data, desc, s = random_case(rng, seeds, lies)
        model = None
        if rng.random() < 0.03:     # the wrong model on purpose
            model = next(m for m in models.values() if m is not s.model)
            desc += f"; given model {model.name}"
        # a bomb within the limits may take what the memory limit allows (the design's bound), not CASE_BYTES
        bound = max(CASE_BYTES, codec.memory_limit()) if "bomb:" in desc else CASE_BYTES
        yield desc, run_case(data, s, models, seconds, bound, model=model), data
        if progress is not None:
            progress(k)


def bug_report(bugs, limit: int | None = 5) -> str:
    return "\n".join(f"{o.kind} in {o.seconds:.2f} s, {o.peak_bytes / 2**20:.0f} MB: {desc}\n  bytes {data.hex()}\n"
                     f"{o.detail}" for desc, o, data in bugs[:limit])


# ---------------------------------------------------------------- the tests

@pytest.fixture(scope="module")
def seeds():
    made = make_seeds()
    for s in made:      # the first decode of each coder may compile its kernels: not within the time bounds
        try:
            codec.decompress(s.data, s.model)
        except PixzipError:
            pass
    return made


@pytest.fixture(scope="module", autouse=True)
def one_numba_thread():
    """The decoder's results do not depend on its thread count; its time does, badly
    so on a shared machine: with two threads on two busy cores each tiny wavefront
    step can wait a scheduler time slice for the other thread (10-20x slower), and
    the time bounds here would measure the neighbours, not the decoder."""
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(threads)


@pytest.fixture
def traced():
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    yield
    if started:
        tracemalloc.stop()


def test_every_seed_decodes_exactly_and_its_fields_are_written_back_bit_for_bit(seeds):
    models = models_of(seeds)
    for s in seeds:
        assert run_case(s.data, s, models).kind == "decoded exactly", s.name
        assert fields_of(s.data).encode() == s.data, s.name
        if s.data[4] == container.VERSION:
            h, payload, crc = container.parse(s.data)
            assert container.pack(h, bytes(payload), crc) == s.data


def test_harmless_rewrites_with_a_valid_header_crc_still_decode_exactly(seeds):
    models = models_of(seeds)
    for s in seeds:
        rewrites = []
        f = fields_of(s.data)
        f.chunks = f.chunks + [(b"zzzz", b"an unknown optional chunk", None)]
        rewrites.append(("unknown optional chunk", f))
        f = fields_of(s.data)
        f.chunks = (f.chunks + [(b"zzzz", b"", None)] * MAX_CHUNKS)[:MAX_CHUNKS]
        rewrites.append((f"{MAX_CHUNKS} chunks", f))
        if f.kind == NETWORK:
            f = fields_of(s.data)
            if f.strip == 0:    # one strip either way
                f.strip = f.height + 5
                rewrites.append(("a strip height the image does not reach", f))
            f = fields_of(s.data)
            if not f.chunks and f.coder == container.CODER:    # format 1 has no chunks, and only coder 1
                f.layout = f.version = 3 - f.layout
                rewrites.append((f"written as format {f.layout}", f))
        for what, f in rewrites:
            assert run_case(f.encode(), s, models).kind == "decoded exactly", (s.name, what)


@pytest.mark.parametrize("dims", [(100_000, 100_000), (30_000, 30_000), (1 << 15, 1 << 15), (MAX_SIDE, 1 << 10),
                                  (1 << 16, 1 << 16), (0xFFFFFFFF, 0xFFFFFFFF)])
def test_huge_claimed_images_are_refused_at_once_without_allocating(seeds, traced, dims):
    """100,000 x 100,000 is over the limit; 30,000 x 30,000 and 32768 x 32768 are
    within it but their tiny payloads cannot hold them: every kind of payload,
    format 1 and 2, refuses them in a fraction of a second with little memory."""
    models = models_of(seeds)
    for s in seeds:
        for zero in (False, True):
            f = fields_of(s.data)
            f.height, f.width = dims
            if zero:
                f.payload = bytes(len(f.payload))
                f.pixcrc = _zero_crc(f)
            o = run_case(f.encode(), s, models, seconds=2.0)
            assert not o.bug and o.kind not in ("decoded exactly", "decoded a valid archive"), (s.name, dims, o)
            if dims[0] * dims[1] > container.MAX_PIXELS:
                assert o.kind == LimitError.__name__, (s.name, dims, o)
            else:
                assert o.kind == CorruptError.__name__, (s.name, dims, o)
            assert o.seconds < 0.25, (s.name, dims, o)
            assert o.peak_bytes < CASE_BYTES, (s.name, dims, o)


@pytest.mark.parametrize("shape, payload", [("1 row", "zeros"), ("1 column", "zeros"), ("1 column", "its own")])
def test_a_payload_that_runs_out_is_refused_long_before_the_claimed_image_is_decoded(seeds, shape, payload):
    """A header (valid CRC) claiming the largest image its payload's length allows
    (about 2857 subpixels per payload byte), over a payload of zeros or the seed's
    own, with a wrong pixel CRC.  The payload's bits run out after a few thousand
    symbols at most, so the decoder must refuse it then, not decode up to a million
    pixels (one wavefront step each, about 30 us) before the pixel CRC refuses it.
    (Timed without tracemalloc, which slows the decoder's loop several times.)"""
    assert not tracemalloc.is_tracing()
    models = models_of(seeds)
    s = next(s for s in seeds if s.name == "gray-12x14-network-smooth")
    f = fields_of(s.data)
    if payload == "zeros":
        f.payload = bytes(max(4, network_min_bytes(MAX_SIDE, s.model) + 3 & ~3))
    f.height, f.width = _bound_dims(f, s.model, ("1 row", "1 column").index(shape))
    f.pixcrc = _zero_crc(f) ^ 1
    o = run_case(f.encode(), s, models, seconds=5.0)
    assert o.kind == CorruptError.__name__ and o.seconds < 5.0, (f.height, f.width, len(f.payload), o)


@pytest.mark.parametrize("name, strip", [("format1-rgb-strips", 5), ("format1-rgb-strips", 1),
                                         ("gray-11x6-network-s3-meta-noise", 3)])
def test_a_claim_of_many_thin_strips_is_refused_before_their_buffers_are_allocated(seeds, traced, name, strip):
    """A valid-CRC header claiming a 1-pixel-wide image as tall as the payload's length
    allows, in strips of a few rows: every strip is active at every step, so the
    decoder's per-step buffers (about 10 KB per position) would take gigabytes for a
    file of 500 bytes.  It must be refused before they are allocated."""
    models = models_of(seeds)
    s = next(s for s in seeds if s.name == name)
    f = fields_of(s.data)
    f.height, f.width = _bound_dims(f, s.model, 1)
    f.strip = strip
    o = run_case(f.encode(), s, models, seconds=5.0)
    assert not o.bug and o.kind not in ("decoded exactly", "decoded a valid archive"), (f.height, o)
    assert o.peak_bytes < CASE_BYTES and o.seconds < 1.0, (f.height, o)


def test_every_truncation_of_every_seed_is_refused(seeds):
    for s in seeds:
        for n in range(len(s.data)):
            with pytest.raises(PixzipError):
                codec.decompress(s.data[:n], s.model)


def test_hostile_archives_decode_exactly_or_raise_pixzip_error(seeds, traced):
    """The seeded loop of the default run: DEFAULT_CASES mutants of every kind."""
    results = list(campaign(seeds, DEFAULT_CASES, seed=1, lies=LIES_DEFAULT))
    bugs = [r for r in results if r[1].bug]
    assert not bugs, bug_report(bugs)
    kinds = {o.kind for _, o, _ in results}
    assert {"decoded exactly", "CorruptError", "FormatError", "TruncatedError"} <= kinds, kinds


_HYPO = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.function_scoped_fixture])


@_HYPO
@given(which=st.integers(0, 10 ** 6), other=st.integers(0, 10 ** 6), op=st.sampled_from(BYTE_OPS),
       a=st.integers(0, 1 << 32), b=st.integers(0, 1 << 32), c=st.integers(0, 1 << 32),
       blob=st.one_of(st.binary(min_size=1, max_size=16),
                      st.builds(lambda v, k: bytes([v]) * k, st.sampled_from(EXTREMES), st.integers(1, 16))))
def test_any_byte_mutation_decodes_exactly_or_raises_pixzip_error(seeds, which, other, op, a, b, c, blob):
    s, o = seeds[which % len(seeds)], seeds[other % len(seeds)]
    data, desc = apply_op(s.data, op, a, b, c, blob, o.data)
    out = run_case(data, s, models_of(seeds))
    assert not out.bug, f"{out.kind}: {s.name}: {desc}\n{data.hex()}\n{out.detail}"


@_HYPO
@given(which=st.integers(0, 10 ** 6), other=st.integers(0, 10 ** 6), lie_index=st.integers(0, len(LIES_DEFAULT) - 1),
       a=st.integers(0, 1 << 32), b=st.integers(0, 1 << 32))
def test_any_header_lie_with_a_valid_crc_decodes_exactly_or_raises_pixzip_error(seeds, which, other, lie_index,
                                                                                 a, b):
    s, o = seeds[which % len(seeds)], seeds[other % len(seeds)]
    f = fields_of(s.data)
    desc = lie(f, lie_index, a, b, fields_of(o.data), s.model, LIES_DEFAULT)
    data = f.encode()
    out = run_case(data, s, models_of(seeds))
    assert not out.bug, f"{out.kind}: {s.name}: {desc}\n{data.hex()}\n{out.detail}"


@pytest.mark.slow
def test_ten_thousand_hostile_archives_decode_exactly_or_raise_pixzip_error(seeds, traced):
    results = list(campaign(seeds, 10_000, seed=2))
    bugs = [r for r in results if r[1].bug]
    assert not bugs, f"{len(bugs)} bugs:\n" + bug_report(bugs)
    assert max(o.seconds for _, o, _ in results) < CASE_SECONDS
    assert max(o.peak_bytes for _, o, _ in results) < CASE_BYTES


# ------------------------------------------------------- the same on two threads

@pytest.fixture
def two_numba_threads(one_numba_thread):
    """Numba's default on a 2-core machine, as the CLI runs: the decoder must
    not make two threads wait for each other on tiny wavefront steps."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here")
    numba.set_num_threads(2)
    yield
    numba.set_num_threads(1)


@pytest.mark.parametrize("shape", [0, 1], ids=["1 row", "1 column"])
def test_a_thin_claim_at_the_payload_bound_decodes_in_time_on_two_threads(seeds, two_numba_threads, shape):
    """A format-1 file of 520 bytes claiming 450265x1: 1.2 s on one thread,
    11.6 s (past the deadline) on two, on a busy 2-core machine."""
    s = next(s for s in seeds if s.name == "format1-rgb")
    f = fields_of(s.data)
    desc = _lie_dims_bound(f, shape, 0, None, s.model)
    out = run_case(f.encode(), s, models_of(seeds))
    assert not out.bug, f"{out.kind} in {out.seconds:.1f} s: {desc}\n{out.detail}"


def test_hostile_archives_on_two_threads(seeds, traced, two_numba_threads):
    """A part of the campaign (claims at the payload-length bound included) on two threads."""
    results = list(campaign(seeds, 150, seed=3))
    bugs = [r for r in results if r[1].bug]
    assert not bugs, bug_report(bugs)
