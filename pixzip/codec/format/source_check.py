"""What an image file holds that Pillow does not say: its real sample depth,
whether it was coded lossily, and the PNG chunks and TIFF tags that Pillow
reads past.

Pillow opens a 16-bit RGB PNG or TIFF, a PPM whose maxval is not 255 or a
4-bit grey PNG as an 8-bit image: ``check`` reads the file's own header and
refuses them by name.  It walks a PNG's chunks, a TIFF's first directory, a
WebP's RIFF chunks, a PPM's header and a BMP's header, so that what pixzip
keeps verbatim (PNG ancillary chunks, TIFF Orientation and descriptive
strings) and what it drops are known, every item by name.  Only the
structure is read, never trusted: a length that runs past the file is an
ImageError.
"""
from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

from ...errors import ImageError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# PNG chunks Pillow reads into the image or into Metadata and writes back itself (pHYs only when
# it holds dots per metre: Metadata's dpi; iCCP only under Pillow's profile name); others are kept verbatim
PNG_WRITTEN_BY_PILLOW = {b"IHDR", b"IDAT", b"IEND", b"iCCP", b"eXIf", b"tEXt", b"zTXt", b"iTXt"}
PILLOW_ICC_NAME = b"ICC Profile"
_PNG_COLOUR = {0: "grey", 2: "RGB", 3: "palette", 4: "grey and alpha", 6: "RGBA"}

# TIFF tags pixzip keeps verbatim: Orientation, and descriptive strings
TIFF_ORIENTATION = 274
TIFF_STRINGS = {269: "DocumentName", 270: "ImageDescription", 271: "Make", 272: "Model", 285: "PageName",
                305: "Software", 306: "DateTime", 315: "Artist", 316: "HostComputer", 33432: "Copyright"}
TIFF_KEPT = {TIFF_ORIENTATION: "Orientation", **TIFF_STRINGS}
TIFF_XMP = 700          # Pillow reads it as Metadata's XMP
# TIFF tags that describe the encoding, or that Metadata keeps (resolution, ICC profile)
_TIFF_ENCODING = {254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 280, 281, 282, 283, 284, 296, 317,
                  322, 323, 324, 325, 339, 34675}
_TIFF_LOSSY = {6: "old-style JPEG", 7: "JPEG", 34712: "JPEG 2000", 34892: "lossy JPEG", 50001: "WebP",
               50002: "JPEG XL"}
_TIFF_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8,
               18: 8}
_TIFF_NAMES = {315: "Artist", 33432: "Copyright", 270: "ImageDescription", 700: "XMP", 33723: "IPTC",
               34665: "ExifIFD", 34853: "GPSInfo", 330: "SubIFDs", 37724: "ImageSourceData (Photoshop)",
               34377: "Photoshop", 320: "ColorMap", 338: "ExtraSamples", 301: "TransferFunction",
               318: "WhitePoint", 319: "PrimaryChromaticities", 529: "YCbCrCoefficients", 532: "ReferenceBlackWhite"}
MAX_TIFF_TAGS = 4096

# formats whose every byte of content this module accounts for (others cannot be removed by --rm)
CHECKED_FORMATS = {"PNG", "TIFF", "WEBP", "BMP", "PPM"}
_NOT_8_BIT = "pixzip keeps 8-bit images only and does not convert them (keep the original as it is, or use " \
             "PNG or JPEG XL for {what})"


@dataclass(frozen=True)
class Source:
    png_chunks: tuple[tuple[bytes, bytes, bool], ...] = ()   # (type, data, after IDAT), in file order
    tiff_tags: tuple[tuple[int, int | bytes], ...] = ()       # (tag, Orientation or ASCII bytes)
    dropped: tuple[str, ...] = ()                             # what the file holds that is not kept
    not_restorable: str | None = None                         # why --rm may not remove the file


def _damaged(where: str, what: str) -> ImageError:
    return ImageError(f"{where}: damaged {what}")


def _not_8_bit(where: str, desc: str, what: str = "these samples") -> ImageError:
    return ImageError(f"{where}: {desc}; " + _NOT_8_BIT.format(what=what))


# ------------------------------------------------------------------ PNG
def png_chunks(data: bytes, where: str = "image") -> tuple[list[tuple[bytes, bytes, bool]], int]:
    """The chunks of a PNG (type, data, after the first IDAT), and the number
    of bytes after IEND.  Lengths and CRCs are checked against the file."""
    if not data.startswith(PNG_SIGNATURE):
        raise _damaged(where, "PNG (no signature)")
    out, pos, seen_idat = [], len(PNG_SIGNATURE), False
    while True:
        if pos + 12 > len(data):
            raise _damaged(where, "PNG (cut short before IEND)")
        n, cid = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + n
        if n > 0x7FFFFFFF or end > len(data) or not cid.isalpha() or not cid.isascii():
            raise _damaged(where, "PNG chunk structure")
        body = data[pos + 8:pos + 8 + n]
        if struct.unpack_from(">I", data, pos + 8 + n)[0] != zlib.crc32(cid + body):
            raise _damaged(where, f"PNG chunk {cid.decode()} (bad CRC)")
        seen_idat |= cid == b"IDAT"
        out.append((cid, bytes(body), seen_idat and cid != b"IDAT"))
        pos = end
        if cid == b"IEND":
            return out, len(data) - pos


def _png(data: bytes, where: str) -> Source:
    chunks, trailing = png_chunks(data, where)
    if chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        raise _damaged(where, "PNG (no IHDR first)")
    depth, colour = chunks[0][1][8], chunks[0][1][9]
    if depth != 8 and colour != 3:
        raise _not_8_bit(where, f"a {depth}-bit {_PNG_COLOUR.get(colour, 'image')} PNG", f"{depth}-bit images")
    kept, dropped = [], []
    for cid, body, after in chunks:
        if cid == b"iCCP" and body.split(b"\0", 1)[0] != PILLOW_ICC_NAME:
            pass           # Pillow would rename the profile: the chunk is kept as it is
        elif cid in PNG_WRITTEN_BY_PILLOW or cid == b"pHYs" and len(body) == 9 and body[8] == 1:
            continue
        kept.append((cid, body, after))
    if trailing:
        dropped.append(f"{trailing} bytes after the PNG's end (IEND)")
    return Source(png_chunks=tuple(kept), dropped=tuple(dropped))


def insert_png_chunks(png: bytes, chunks) -> bytes:
    """``png`` with ``chunks`` (type, data, after IDAT) put back: those of
    before IDAT just before the first IDAT, the others just before IEND
    (a kept iCCP replaces the one Pillow wrote)."""
    if not chunks:
        return png
    have, _ = png_chunks(png, "written PNG")
    if any(c == b"iCCP" for c, _, _ in chunks):
        have = [h for h in have if h[0] != b"iCCP"]
    out, pos, placed = [png[:len(PNG_SIGNATURE)]], len(PNG_SIGNATURE), False

    def raw(cid, body):
        return struct.pack(">I", len(body)) + cid + body + struct.pack(">I", zlib.crc32(cid + body))

    for cid, body, _ in have:
        if cid == b"IDAT" and not placed:
            out += [raw(c, b) for c, b, after in chunks if not after]
            placed = True
        if cid == b"IEND":
            out += [raw(c, b) for c, b, after in chunks if after]
        out.append(raw(cid, body))
    return b"".join(out)


# ------------------------------------------------------------------ TIFF
def tiff_tags(data: bytes, where: str = "image") -> dict[int, tuple[int, bytes, str]]:
    """The first directory of a TIFF (or BigTIFF): tag -> (type, value bytes, byte order)."""
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or len(data) < 16:
        raise _damaged(where, "TIFF header")
    (magic,) = struct.unpack_from(order + "H", data, 2)
    big = magic == 43
    if magic not in (42, 43):
        raise _damaged(where, "TIFF header")
    off_fmt, cnt_fmt, entry_size, inline = (order + "Q", order + "Q", 20, 8) if big else \
        (order + "I", order + "H", 12, 4)
    (ifd,) = struct.unpack_from(off_fmt, data, 8 if big else 4)
    if ifd + struct.calcsize(cnt_fmt) > len(data):
        raise _damaged(where, "TIFF directory")
    (n,) = struct.unpack_from(cnt_fmt, data, ifd)
    first = ifd + struct.calcsize(cnt_fmt)
    if n > MAX_TIFF_TAGS or first + n * entry_size > len(data):
        raise _damaged(where, "TIFF directory")
    out = {}
    for i in range(n):
        e = first + i * entry_size
        tag, typ = struct.unpack_from(order + "HH", data, e)
        (count,) = struct.unpack_from(order + ("Q" if big else "I"), data, e + 4)
        size, here = _TIFF_SIZES.get(typ, 1) * count, e + (12 if big else 8)
        if size <= inline:
            value = data[here:here + size]
        else:
            (at,) = struct.unpack_from(off_fmt, data, here)
            if at + size > len(data):
                raise _damaged(where, f"TIFF tag {tag}")
            value = data[at:at + size]
        out[tag] = (typ, bytes(value), order)
    return out


def _tiff_ints(entry) -> tuple[int, ...]:
    typ, value, order = entry
    code = {1: "B", 3: "H", 4: "I", 16: "Q"}.get(typ)
    if code is None:
        return ()
    return struct.unpack(order + code * (len(value) // struct.calcsize(code)), value)


def _tiff_name(tag: int) -> str:
    from PIL import TiffTags
    name = _TIFF_NAMES.get(tag) or TIFF_KEPT.get(tag) or TiffTags.lookup(tag).name
    return f"TIFF tag {name}" if name and name != "unknown" else f"TIFF tag {tag}"


def _tiff(data: bytes, where: str) -> Source:
    tags = tiff_tags(data, where)
    bits = _tiff_ints(tags[258]) if 258 in tags else (1,)
    formats = _tiff_ints(tags[339]) if 339 in tags else (1,)
    if any(b != 8 for b in bits) or any(f != 1 for f in formats):
        samples = len(bits)
        kind = {1: "grey", 3: "RGB"}.get(samples, f"{samples}-sample")
        desc = f"{'float ' if 3 in formats else ''}{max(bits)}-bit {kind}" if len(set(bits)) == 1 \
            else f"{'/'.join(map(str, bits))}-bit"
        raise _not_8_bit(where, f"a {desc} TIFF", f"{max(bits)}-bit images")
    compression = (_tiff_ints(tags[259]) or (1,))[0] if 259 in tags else 1
    lossy = _TIFF_LOSSY.get(compression)
    kept, dropped = [], []
    for tag, (typ, value, order) in tags.items():
        if tag == TIFF_ORIENTATION and typ == 3 and len(value) == 2:
            kept.append((tag, struct.unpack(order + "H", value)[0]))
        elif tag in TIFF_STRINGS and typ == 2:
            kept.append((tag, value.rstrip(b"\0")))
        elif tag not in _TIFF_ENCODING and not (tag == TIFF_XMP and typ in (1, 7)):
            dropped.append(_tiff_name(tag))
    return Source(tiff_tags=tuple(sorted(kept)), dropped=tuple(dropped),
                  not_restorable=f"this TIFF is {lossy}-compressed, which is lossy" if lossy else None)


# ------------------------------------------------------------------ WebP
def _webp(data: bytes, where: str) -> Source:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise _damaged(where, "WebP header")
    end = 8 + struct.unpack_from("<I", data, 4)[0]
    if end > len(data):
        raise _damaged(where, "WebP (cut short)")
    pos, found, dropped = 12, [], []
    while pos + 8 <= end:
        cid, n = struct.unpack_from("<4sI", data, pos)
        if pos + 8 + n > end:
            raise _damaged(where, "WebP chunk structure")
        found.append(cid)
        pos += 8 + n + (n & 1)
    for cid in found:
        if cid in (b"ANIM", b"ANMF"):
            dropped.append(f"WebP animation chunk {cid.decode('ascii', 'replace')}")
        elif cid not in (b"VP8 ", b"VP8L", b"VP8X", b"ICCP", b"EXIF", b"XMP ", b"ALPH"):
            dropped.append(f"WebP chunk {cid.decode('ascii', 'replace').strip()!r}")
    if len(data) > end:
        dropped.append(f"{len(data) - end} bytes after the WebP's end")
    lossy = "this WebP is lossy (VP8)" if b"VP8 " in found or b"ANMF" in found and b"VP8L" not in found else None
    return Source(dropped=tuple(sorted(set(dropped), key=dropped.index)), not_restorable=lossy)


# ------------------------------------------------------------------ PPM, PGM
_PNM = {b"P1": ("PBM", 1), b"P2": ("PGM", 1), b"P3": ("PPM", 3), b"P4": ("PBM", 1), b"P5": ("PGM", 1),
        b"P6": ("PPM", 3)}


def _ppm(data: bytes, where: str) -> Source:
    name, channels = _PNM.get(data[:2], (None, 0))
    if name is None:
        return Source(not_restorable=f"pixzip does not check everything a {data[:2]!r} Netpbm file holds")
    fields, pos, comments = [], 2, 0
    want = 2 if name == "PBM" else 3
    while len(fields) < want:
        m = re.compile(rb"\s*(#[^\n\r]*[\n\r]?)|\s+|(\d+)").match(data, pos)
        if m is None or m.end() == pos:
            raise _damaged(where, f"{name} header")
        if m.group(1) is not None:
            comments += 1
        elif m.group(2) is not None:
            fields.append(int(m.group(2)))
        pos = m.end()
        if pos > 4096:
            raise _damaged(where, f"{name} header")
    if name == "PBM":
        raise _not_8_bit(where, "a 1-bit PBM", "1-bit images")
    w, h, maxval = fields
    if maxval != 255:
        bits = maxval.bit_length()
        raise _not_8_bit(where, f"a {name} with maxval {maxval} ({bits}-bit samples" +
                         (", not the 0..255 of 8 bits)" if bits <= 8 else ")"))
    dropped = [f"{comments} comment{'s' * (comments > 1)} of the {name} header"] if comments else []
    if data[:2] in (b"P5", b"P6"):
        rest = len(data) - (pos + 1) - w * h * channels
        if rest > 0:
            dropped.append(f"{rest} bytes after the {name}'s pixels")
    return Source(dropped=tuple(dropped))


# ------------------------------------------------------------------ BMP
def _bmp(data: bytes, where: str) -> Source:
    if len(data) < 30:
        raise _damaged(where, "BMP header")
    (header,) = struct.unpack_from("<I", data, 14)
    bits = struct.unpack_from("<H", data, 24 if header == 12 else 28)[0]
    if bits not in (8, 24, 32):
        raise _not_8_bit(where, f"a {bits}-bit BMP")
    dropped = []
    if header >= 108 and len(data) >= 14 + 60:
        (space,) = struct.unpack_from("<I", data, 14 + 56)
        if space in (0x4C494E4B, 0x4D424544):
            dropped.append("the BMP's colour profile")
        elif space not in (0x73524742, 0x57696E20):
            dropped.append("the BMP's calibrated colour space")
    return Source(dropped=tuple(dropped))


def _rawmode(tile) -> str | None:
    for t in tile or ():
        args = t.args if hasattr(t, "args") else t[3]
        mode = args if isinstance(args, str) else args[0] if isinstance(args, tuple) and args and \
            isinstance(args[0], str) else None
        if mode:
            return mode
    return None


def check(data: bytes, fmt: str | None, tile, where: str) -> Source:
    """What the file ``data`` of Pillow's format ``fmt`` (``tile``: Pillow's
    tiles before loading) holds besides what Pillow reports; an ImageError
    when its samples are not exactly 8-bit."""
    if fmt == "PNG":
        return _png(data, where)
    if fmt == "TIFF":
        return _tiff(data, where)
    if fmt == "PPM":
        return _ppm(data, where)
    if fmt == "BMP":
        return _bmp(data, where)
    if fmt == "WEBP":
        return _webp(data, where)
    raw = _rawmode(tile)
    if raw and any(c.isdigit() for c in raw.partition(";")[2]):
        raise _not_8_bit(where, f"a {fmt} image of raw mode {raw} (not 8-bit samples)")
    if fmt in ("JPEG", "MPO", "GIF"):
        return Source(not_restorable=f"{fmt} is lossy")
    if fmt == "AVIF":
        return Source(not_restorable="AVIF is lossy (pixzip cannot tell whether this file was coded losslessly)")
    if fmt == "JPEG2000":
        return Source(not_restorable="JPEG 2000 may be lossy (pixzip cannot tell whether this file was)")
    return Source(not_restorable=f"pixzip does not check everything a {fmt or 'file of this format'} file holds")
