"""A picture as coded sections, and back (format 3): every mode but plain 8-bit L and RGB.

A picture is laid out as 8-bit planes (``container.layout_planes``): its
channels (L, LA, RGB, RGBA, 1, a palette image's indices), the high bytes
then the low bytes of a 16-bit one, or a palette image's colours R, G, B, A
(its indices rebuilt from the palette).  The planes are cut into groups,
each coded as one section:

- the colour planes (``main``) by the level's coding, as an 8-bit image is;
- the others (alpha, the low bytes, a palette's indices) by the mixer alone;
- a group whose planes each hold one value, in a byte a plane (CONSTANT);
- the low bytes of a 16-bit picture equal to its high bytes (x257), as
  references to those planes (EQUAL);
- a 16-bit picture whole by the 16-bit coder, when it is installed (DEEP).

``encode`` takes the coding of a group from its caller (``api``: the level,
the method, the stored payloads when smaller), so that every group is coded
as an image of its own is; ``decode`` likewise.
"""
from __future__ import annotations

import struct
from typing import Callable, NamedTuple

import numpy as np

from ..errors import CorruptError, FormatError, ImageError
from . import coders
from .format import container
from .format.container import CONSTANT, DEEP, EQUAL, PALETTE_COLOURS, SAMPLES, Section
from .format.picture import CHANNELS, SIXTEEN_BIT, Picture


class Coded(NamedTuple):
    """A section made: its planes, kind, coder id and bytes."""
    planes: int
    kind: int
    coder: int
    data: bytes

    @property
    def section(self) -> Section:
        return Section(self.planes, self.kind, self.coder, len(self.data))


# code(planes (H, W, k) uint8, main) -> (kind, coder id, bytes); decode(section, bytes, (H, W, k)) -> planes
CodeGroup = Callable[[np.ndarray, bool], tuple[int, int, bytes]]
DecodeGroup = Callable[[Section, memoryview, tuple[int, int, int]], np.ndarray]


# ---- the picture's own chunks: palette and transparency ----

PALETTE_MODES = {"RGB": 0, "RGBA": 1}
_PALETTE_MODE_OF = {i: m for m, i in PALETTE_MODES.items()}


def picture_chunks(p: Picture) -> list[tuple[bytes, bytes]]:
    """The required chunks that keep a picture's palette (PALT: its mode, 0
    RGB or 1 RGBA, then its entries) and transparency (TRNS: 0 and a uint32
    for an index or a gray value, 1 and the bytes of per-entry alphas, 2 and
    a uint32 a sample for a colour)."""
    chunks = []
    k = len(p.palette_mode) if p.mode == "P" and p.palette_mode in PALETTE_MODES else 0
    if p.mode == "P" and (not k or len(p.palette) % k or len(p.palette) > 256 * k):
        raise ImageError(f"a palette of {len(p.palette)} bytes in {p.palette_mode or 'no'} mode: pixzip keeps "
                         f"RGB or RGBA palettes of at most 256 entries")
    if p.mode == "P":
        chunks.append((b"PALT", bytes([PALETTE_MODES[p.palette_mode]]) + p.palette))
    t = p.transparency
    if not _transparency_fits(t):
        raise ImageError(f"a transparency of {t!r}: pixzip keeps an index, a value, per-entry alphas or a colour")
    if t is not None:
        if isinstance(t, bytes):
            chunks.append((b"TRNS", b"\x01" + t))
        elif isinstance(t, tuple):
            chunks.append((b"TRNS", b"\x02" + struct.pack(f"<{len(t)}I", *t)))
        else:
            chunks.append((b"TRNS", b"\x00" + struct.pack("<I", t)))
    return chunks


def _transparency_fits(t) -> bool:
    """Whether a transparency fits its chunk: an index or value, or a colour's samples, each 0..2^32-1."""
    values = t if isinstance(t, tuple) else () if isinstance(t, bytes) or t is None else (t,)
    return all(isinstance(v, int) and 0 <= v < 1 << 32 for v in values) and (not isinstance(t, tuple) or bool(t))


def from_chunks(mode: str, chunks) -> tuple[bytes, str, int | bytes | tuple[int, ...] | None]:
    """(palette, palette mode, transparency) of a format-3 header's chunks."""
    d = dict(chunks)
    palette, palette_mode, transparency = b"", "", None
    if (mode == "P") != (b"PALT" in d):
        raise FormatError("a palette chunk in a picture that is not a palette image, or none in one")
    if b"PALT" in d:
        data = d[b"PALT"]
        if not data or data[0] not in _PALETTE_MODE_OF:
            raise FormatError("damaged palette chunk")
        palette_mode, palette = _PALETTE_MODE_OF[data[0]], bytes(data[1:])
        if len(palette) % len(palette_mode) or len(palette) > 256 * len(palette_mode):
            raise FormatError("damaged palette chunk")
    if b"TRNS" in d:
        data = d[b"TRNS"]
        kind, body = data[:1], data[1:]
        if kind == b"\x01":
            transparency = bytes(body)
        elif kind == b"\x02" and len(body) % 4 == 0 and body:
            transparency = struct.unpack(f"<{len(body) // 4}I", body)
        elif kind == b"\x00" and len(body) == 4:
            transparency = struct.unpack("<I", body)[0]
        else:
            raise FormatError("damaged transparency chunk")
    return palette, palette_mode, transparency


# ---- layouts ----

def entry_colours(palette: bytes, palette_mode: str, transparency) -> np.ndarray:
    """(n, 4) uint8: each palette entry's R, G, B and alpha (its own, else
    from the transparency: an index that is clear, or per-entry alphas)."""
    k = len(palette_mode)
    entries = np.frombuffer(palette, np.uint8).reshape(-1, k)
    rgba = np.full((len(entries), 4), 255, np.uint8)
    rgba[:, :k] = entries
    if k == 3 and isinstance(transparency, bytes):
        n = min(len(transparency), len(entries))
        rgba[:n, 3] = np.frombuffer(transparency[:n], np.uint8)
    elif k == 3 and isinstance(transparency, int) and 0 <= transparency < len(entries):
        rgba[transparency, 3] = 0
    return rgba


def _keys(rgba: np.ndarray) -> np.ndarray:
    return rgba.astype(np.uint32) @ np.array([1 << 24, 1 << 16, 1 << 8, 1], np.uint32)


def _first_entries(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted keys, their first entries): each distinct colour of a palette
    and the first entry that holds it."""
    keys, first = np.unique(_keys(rgba), return_index=True)
    return keys, first


def colours_rebuild_indices(p: Picture) -> bool:
    """Whether a palette picture's indices are its colours' first entries,
    so that coding its colours (PALETTE_COLOURS) keeps it exactly."""
    rgba = entry_colours(p.palette, p.palette_mode, p.transparency)
    idx = p.pixels[..., 0]
    if not len(rgba) or int(idx.max()) >= len(rgba):
        return False
    keys, first = _first_entries(rgba)
    first_of_entry = first[np.searchsorted(keys, _keys(rgba))]
    return bool(np.array_equal(first_of_entry[idx], idx))


def planes_of(p: Picture, layout: int) -> np.ndarray:
    """The (H, W, N) uint8 planes of a picture in a layout."""
    if layout == PALETTE_COLOURS:
        return entry_colours(p.palette, p.palette_mode, p.transparency)[p.pixels[..., 0]]
    if p.mode in SIXTEEN_BIT:
        return np.concatenate([(p.pixels >> 8).astype(np.uint8), (p.pixels & 255).astype(np.uint8)], axis=2)
    return p.pixels


def picture_of(planes: np.ndarray, mode: str, layout: int, palette: bytes = b"", palette_mode: str = "",
               transparency=None, flat: bool = False) -> Picture:
    """The picture whose planes in ``layout`` these are."""
    if layout == PALETTE_COLOURS:
        rgba = entry_colours(palette, palette_mode, transparency)
        if not len(rgba):
            raise CorruptError("a palette image's colours with an empty palette")
        keys, first = _first_entries(rgba)
        want = _keys(planes)
        at = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
        if not np.array_equal(keys[at], want):
            raise CorruptError("a colour that is not in the palette: the file is corrupt")
        pixels = first[at].astype(np.uint8)[..., None]
    elif mode in SIXTEEN_BIT:
        c = CHANNELS[mode]
        pixels = (planes[..., :c].astype(np.uint16) << 8) | planes[..., c:]
    else:
        if mode == "1" and planes.max(initial=0) > 1:
            raise CorruptError("a 1-bit picture with samples other than 0 and 1: the file is corrupt")
        pixels = planes
    return Picture(np.ascontiguousarray(pixels), mode, palette, palette_mode, transparency, flat)


# ---- sections ----

def _constant(planes: np.ndarray) -> bytes | None:
    """A byte a plane when each plane holds one value, else None."""
    first = planes[:1, :1].reshape(-1)
    return first.tobytes() if np.array_equal(planes, np.broadcast_to(first, planes.shape)) else None


def _group(planes: np.ndarray, main: bool, code: CodeGroup) -> Coded:
    value = _constant(planes)
    if value is not None:
        return Coded(planes.shape[2], CONSTANT, 0, value)
    kind, coder, data = code(np.ascontiguousarray(planes), main)
    return Coded(planes.shape[2], kind, coder, data)


def groups(p: Picture, layout: int) -> list[tuple[int, int, bool]]:
    """(first plane, planes, main) of each group of a picture's layout: the
    colours (main), then alpha, or the low bytes."""
    if layout == PALETTE_COLOURS:
        return [(0, 3, True), (3, 1, False)]
    c = CHANNELS[p.mode]
    if p.mode in SIXTEEN_BIT:
        return [(0, c, True), (c, c, False)]
    if p.mode in ("LA", "RGBA"):
        return [(0, c - 1, True), (c - 1, 1, False)]
    return [(0, c, p.mode != "P")]         # a palette image's indices: the mixer alone


def encode_layout(p: Picture, layout: int, code: CodeGroup) -> list[Coded]:
    """The sections of a picture in a layout.  A 16-bit picture whose high
    bytes are all 0 codes its low bytes as the main group; one whose low
    bytes equal its high bytes (x257) refers to them."""
    planes = planes_of(p, layout)
    parts = groups(p, layout)
    if p.mode in SIXTEEN_BIT:
        c = CHANNELS[p.mode]
        high, low = planes[..., :c], planes[..., c:]
        if np.array_equal(low, high):
            return [_group(high, True, code), Coded(c, EQUAL, 0, bytes(range(c)))]
        if not high.any():
            return [Coded(c, CONSTANT, 0, bytes(c)), _group(low, True, code)]
    return [_group(planes[..., first:first + n], main, code) for first, n, main in parts]


def encode(p: Picture, code: CodeGroup, deep: Callable[[np.ndarray], bytes] | None = None,
           palette_colours: bool = False) -> tuple[int, list[Coded]]:
    """(layout, sections) of a picture: the smaller of its ways.  A palette
    image is coded as its indices, and with ``palette_colours`` also as its
    colours (whose indices the palette rebuilds) where its indices allow it
    (``colours_rebuild_indices``), the smaller kept: the indices won on
    every quantized photo and graphic measured (by 5-36% at -1), in a third
    of the time, the colours only where the palette's order is far from
    its colours.  A 16-bit picture is also coded whole by the 16-bit coder
    (``deep``, when given: -9, ``levels.tries_every_way``)."""
    ways = [(SAMPLES, encode_layout(p, SAMPLES, code))]
    if p.mode == "P" and palette_colours and colours_rebuild_indices(p):
        ways.append((PALETTE_COLOURS, encode_layout(p, PALETTE_COLOURS, code)))
    if p.mode in SIXTEEN_BIT and deep is not None and not any(s.kind in (CONSTANT, EQUAL) for s in ways[0][1]):
        ways.append((SAMPLES, [Coded(2 * p.channels, DEEP, container.DEEP_CODER, deep(p.pixels))]))
    return min(ways, key=lambda way: sum(len(s.data) + 12 for s in way[1]))


def decode(mode: str, layout: int, height: int, width: int, sections, payload, decode_group: DecodeGroup,
           deep: Callable[[Section, memoryview, int, int, int], np.ndarray] | None = None) -> np.ndarray:
    """The (H, W, N) planes of a picture from its sections (``container``
    has checked that they cover the layout's planes and the payload)."""
    n = container.layout_planes(mode, layout)
    planes = np.zeros((height, width, n), np.uint8)
    first = pos = 0
    for s in sections:
        data = payload[pos:pos + s.length]
        pos += s.length
        k = s.planes
        if s.kind == CONSTANT:
            if len(data) != k:
                raise CorruptError(f"a constant section of {k} planes in {len(data)} bytes")
            planes[..., first:first + k] = np.frombuffer(data, np.uint8)
        elif s.kind == EQUAL:
            refs = bytes(data)
            if len(refs) != k or any(r >= first for r in refs):
                raise CorruptError("a section equal to planes not decoded before it")
            planes[..., first:first + k] = planes[..., list(refs)]
        elif s.kind == DEEP:
            c = CHANNELS[mode]
            if mode not in SIXTEEN_BIT or layout != SAMPLES or first or k != 2 * c:
                raise CorruptError("a 16-bit section that does not hold a whole 16-bit picture")
            if deep is None:
                raise FormatError("coder 4 (the 16-bit coder) is not in this pixzip")
            pixels = deep(s, data, height, width, c)
            planes[..., :c], planes[..., c:] = pixels >> 8, pixels & 255
        else:
            planes[..., first:first + k] = decode_group(s, data, (height, width, k))
        first += k
    return planes


def section_frames(header: container.Header, payload, net) -> tuple[list, int]:
    """(each section's ``coders.Frame``, None for a constant or equal one;
    the bytes its decoding needs at most): every section long enough for
    its coder (``min_payload_bytes``), a network section's planes its
    model's colours; the need is the largest section's decoding and three
    bytes a plane sample (the planes and the picture), checked against the
    memory limit before anything is allocated."""
    h, w = header.height, header.width
    held = 3 * h * w * container.layout_planes(header.mode, header.layout)
    frames, pos, need = [], 0, held
    for s in header.sections:
        data = payload[pos:pos + s.length]
        pos += s.length
        if s.kind in (CONSTANT, EQUAL):
            frames.append(None)
            continue
        coder = coders.SECTION_CODERS[s.kind, s.coder]
        channels = header.channels if s.kind == DEEP else s.planes
        if coder.uses_network and not coder.model_fits(net.colors, channels):
            raise CorruptError("a network section's planes do not match the model's colours")
        frame = coder.section_frame(h, w, channels, header.strip_height, data)
        least = coder.section_min_bytes(frame) if isinstance(coder, coders.Deep) else \
            coder.min_payload_bytes(frame.n_subpixels, net)
        if len(data) < least:
            raise CorruptError(f"a section of {len(data)} bytes is too short for {s.planes} planes of a "
                               f"{w}x{h} image")
        need = max(need, held + coder.decode_memory(frame, net, len(data)))
        frames.append(frame)
    return frames, need


def decode_picture(header: container.Header, payload, net, frames: list, progress, flat: bool) -> Picture:
    """A format-3 file's picture, its sections checked (``section_frames``)."""
    palette, palette_mode, transparency = from_chunks(header.mode, header.chunks)
    coded = iter(frames)

    def decode_group(section: Section, data, shape) -> np.ndarray:
        frame = next(f for f in coded if f is not None)
        coder = coders.SECTION_CODERS[section.kind, section.coder]
        return coder.decode(data, frame, net if coder.uses_network else None, progress)

    def deep(section, data, height, width, channels) -> np.ndarray:
        return decode_group(section, data, (height, width, channels))

    all_planes = decode(header.mode, header.layout, header.height, header.width, header.sections, payload,
                        decode_group, deep)
    return picture_of(all_planes, header.mode, header.layout, palette, palette_mode, transparency, flat)
