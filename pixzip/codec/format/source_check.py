"""What an image file holds that Pillow does not say: its real sample depth
and colour model, whether it was coded lossily, and the PNG chunks and TIFF
tags that Pillow reads past.

Pillow opens a 16-bit RGB PNG or TIFF as an 8-bit image: ``check`` reads the
file's own header and sends it to an exact reader (``Source.sixteen_bit_rgb``).
What pixzip does not keep (a CMYK TIFF, a PPM whose maxval is not 255, a 4-bit
grey PNG, 16-bit samples with alpha, float samples) it refuses by name, in
a user's words, before Pillow converts anything.  It walks a PNG's chunks, a TIFF's first directory, a
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
_PNG_COLOUR = {0: "gray", 2: "RGB", 3: "palette", 4: "gray and alpha", 6: "RGBA"}

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
# what pixzip keeps, in a user's words (every refusal says it)
KEPT = "1-bit, 8-bit gray and RGB (with or without alpha), palette, and 16-bit gray and RGB images"
# what a user can do with a file pixzip does not keep
KEEP_IT = "keep the original file as it is"
CONVERT_IT = "convert it to RGB yourself if that is what you want"


@dataclass(frozen=True)
class Source:
    png_chunks: tuple[tuple[bytes, bytes, bool], ...] = ()   # (type, data, after IDAT), in file order
    tiff_tags: tuple[tuple[int, int | bytes], ...] = ()       # (tag, Orientation or ASCII bytes)
    dropped: tuple[str, ...] = ()                             # what the file holds that is not kept
    not_restorable: str | None = None                         # why --rm may not remove the file
    lossy: str | None = None                                  # what the file is, when lossily coded ("a JPEG")
    sixteen_bit_rgb: bool = False                             # 16-bit RGB: Pillow reads it as 8-bit
    samples_at: int = 0                                       # a 16-bit PPM or PGM: where its samples start


def _damaged(where: str, what: str) -> ImageError:
    return ImageError(f"{where}: damaged {what}")


def refused(where: str, kind: str, advice: str = KEEP_IT) -> ImageError:
    """The one-line refusal of a file pixzip does not keep: the file, what it
    is in a user's words ("a CMYK TIFF"), what pixzip keeps, what to do."""
    return ImageError(f"{where}: {kind}; pixzip keeps {KEPT} exactly and converts nothing ({advice})")


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
    what = f"a {depth}-bit {_PNG_COLOUR.get(colour, 'image')} PNG"
    has_trns = any(cid == b"tRNS" for cid, _, _ in chunks)
    if colour in (4, 6) and depth == 16:
        raise refused(where, what, "16-bit alpha is not kept; " + KEEP_IT)
    if colour == 2 and depth == 16 and has_trns:
        raise refused(where, f"{what} with a transparent colour (tRNS)")
    if depth not in (8, 16) and colour != 3 and not (colour == 0 and depth == 1):
        raise refused(where, what)
    # Pillow writes the palette (PLTE) and the transparency (tRNS) of the picture itself
    written = PNG_WRITTEN_BY_PILLOW | ({b"PLTE", b"tRNS"} if colour == 3 else {b"tRNS"})
    kept, dropped = [], []
    for cid, body, after in chunks:
        if cid == b"iCCP" and body.split(b"\0", 1)[0] != PILLOW_ICC_NAME:
            pass           # Pillow would rename the profile: the chunk is kept as it is
        elif cid in written or cid == b"pHYs" and len(body) == 9 and body[8] == 1:
            continue
        kept.append((cid, body, after))
    if trailing:
        dropped.append(f"{trailing} bytes after the PNG's end (IEND)")
    return Source(png_chunks=tuple(kept), dropped=tuple(dropped), sixteen_bit_rgb=colour == 2 and depth == 16)


def insert_png_chunks(png: bytes, chunks) -> bytes:
    """``png`` with ``chunks`` (type, data, after IDAT) put back: those of
    before IDAT just before the first IDAT, the others just before IEND
    (a kept iCCP replaces the one Pillow wrote)."""
    if not chunks:
        return png
    have, _ = png_chunks(png, "written PNG")
    if any(c == b"iCCP" for c, _, _ in chunks):
        have = [h for h in have if h[0] != b"iCCP"]
    out, placed, raw = [png[:len(PNG_SIGNATURE)]], False, raw_chunk
    for cid, body, _ in have:
        if cid == b"IDAT" and not placed:
            out += [raw(c, b) for c, b, after in chunks if not after]
            placed = True
        if cid == b"IEND":
            out += [raw(c, b) for c, b, after in chunks if after]
        out.append(raw(cid, body))
    return b"".join(out)


def swap_png_pixels(png: bytes, pixels_png: bytes) -> bytes:
    """``png`` with the image of ``pixels_png``: its IHDR and IDAT chunks
    (its other chunks, the metadata, stay)."""
    ours, _ = png_chunks(png, "written PNG")
    theirs, _ = png_chunks(pixels_png, "written PNG")
    header = [raw_chunk(c, b) for c, b, _ in theirs if c == b"IHDR"]
    image = [raw_chunk(c, b) for c, b, _ in theirs if c == b"IDAT"]
    out = [PNG_SIGNATURE]
    for cid, body, _ in ours:
        if cid == b"IHDR":
            out += header
        elif cid == b"IDAT":
            out += image
            image = []
        else:
            out.append(raw_chunk(cid, body))
    return b"".join(out)


def raw_chunk(cid: bytes, body: bytes) -> bytes:
    """A PNG chunk's bytes: length, type, data, CRC."""
    return struct.pack(">I", len(body)) + cid + body + struct.pack(">I", zlib.crc32(cid + body))


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


# TIFF PhotometricInterpretation: what pixzip refuses, in a user's words, and what the user can do
_TIFF_COLOUR_MODELS = {4: ("a transparency-mask TIFF", KEEP_IT), 5: ("a CMYK TIFF", CONVERT_IT),
                       8: ("a Lab TIFF", CONVERT_IT), 9: ("a Lab TIFF", CONVERT_IT), 10: ("a Lab TIFF", CONVERT_IT),
                       32844: ("a LogL TIFF", KEEP_IT), 32845: ("a LogLuv TIFF", KEEP_IT)}
_TIFF_SAMPLE_FORMATS = {2: "signed integer", 3: "floating-point", 4: "untyped", 5: "complex integer",
                        6: "complex floating-point"}


def _tiff_model(tags, where: str) -> bool:
    """Refuse, in a user's words, a TIFF whose samples pixzip does not keep
    exactly as Pillow reads them; whether it is 16-bit RGB (read exactly
    elsewhere: Pillow reads it as 8-bit)."""
    bits = _tiff_ints(tags[258]) if 258 in tags else (1,)
    samples = (_tiff_ints(tags[277]) or (1,))[0] if 277 in tags else 1
    photometric = (_tiff_ints(tags[262]) or (-1,))[0] if 262 in tags else -1
    formats = set(_tiff_ints(tags[339])) if 339 in tags else {1}
    compression = (_tiff_ints(tags[259]) or (1,))[0] if 259 in tags else 1
    if photometric in _TIFF_COLOUR_MODELS:
        raise refused(where, *_TIFF_COLOUR_MODELS[photometric])
    if photometric == 6 and compression not in (6, 7):     # Pillow turns YCbCr into RGB: not the file's samples
        raise refused(where, "a YCbCr TIFF", CONVERT_IT)
    depth = bits[0] if len(set(bits)) == 1 else None
    colour = {0: "gray", 1: "gray", 2: "RGB", 3: "palette", 6: "YCbCr"}.get(photometric, "")
    extra = samples - {"gray": 1, "palette": 1}.get(colour, 3)
    what = f"a {'/'.join(map(str, bits)) if depth is None else depth}-bit {colour} TIFF".replace("  ", " ")
    if formats - {1}:
        kind = _TIFF_SAMPLE_FORMATS.get(max(formats - {1}), "unusual")
        raise refused(where, f"{what} of {kind} samples")
    if depth == 16 and extra > 0:
        raise refused(where, f"{what} with alpha", "16-bit alpha is not kept; " + KEEP_IT)
    if depth == 16 and colour in ("gray", "RGB"):
        return colour == "RGB"
    if depth == 8 or depth == 1 and colour == "gray" and extra == 0 or colour == "palette" and depth in (1, 2, 4):
        if colour == "palette" and 320 in tags:
            _tiff_palette(tags[320], where)
        return False
    raise refused(where, what)


def _tiff_palette(entry, where: str) -> None:
    """A palette TIFF's colours are 16-bit; Pillow keeps their high bytes, and
    writes each back as high byte x 256 (or x 257, the usual scale): other
    low bytes would be lost."""
    if any(v & 0xFF not in (0, v >> 8) for v in _tiff_ints(entry)):
        raise refused(where, "a palette TIFF of 16-bit colours", "pixzip keeps 8-bit palette colours; " + KEEP_IT)


def _tiff(data: bytes, where: str) -> Source:
    tags = tiff_tags(data, where)
    sixteen_bit_rgb = _tiff_model(tags, where)
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
                  not_restorable=f"this TIFF is {lossy}-compressed, which is lossy" if lossy else None,
                  lossy=f"a {lossy}-compressed TIFF" if lossy else None, sixteen_bit_rgb=sixteen_bit_rgb)


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
    return Source(dropped=tuple(sorted(set(dropped), key=dropped.index)), not_restorable=lossy,
                  lossy="a lossy WebP" if b"VP8 " in found else None)


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
    w, h, maxval = (*fields, 1) if name == "PBM" else fields
    binary = data[:2] in (b"P4", b"P5", b"P6")
    sixteen_bit = maxval == 65535 and binary         # samples of two bytes, big-endian
    if name != "PBM" and maxval != 255 and not sixteen_bit:
        bits = maxval.bit_length()
        raise refused(where, f"a {name} with maxval {maxval} ({bits}-bit samples" +
                      (", not the 0..255 of 8 bits)" if bits <= 8 else ")"))
    dropped = [f"{comments} comment{'s' * (comments > 1)} of the {name} header"] if comments else []
    if binary:
        size = h * ((w + 7) // 8) if name == "PBM" else w * h * channels * (1 + sixteen_bit)
        rest = len(data) - (pos + 1) - size
        if rest > 0:
            dropped.append(f"{rest} bytes after the {name}'s pixels")
    return Source(dropped=tuple(dropped), sixteen_bit_rgb=sixteen_bit and channels == 3,
                  samples_at=pos + 1 if sixteen_bit else 0)


# ------------------------------------------------------------------ BMP
def _bmp(data: bytes, where: str) -> Source:
    if len(data) < 30:
        raise _damaged(where, "BMP header")
    (header,) = struct.unpack_from("<I", data, 14)
    bits = struct.unpack_from("<H", data, 24 if header == 12 else 28)[0]
    if bits not in (1, 2, 4, 8, 24, 32):
        raise refused(where, f"a {bits}-bit BMP" + (" (5 or 6 bits a colour)" if bits == 16 else ""))
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
    if raw and any(c.isdigit() for c in raw.partition(";")[2]) and not raw.startswith(("I;16", "P;", "1;")):
        bits = "".join(c for c in raw.partition(";")[2] if c.isdigit())
        raise refused(where, f"a {fmt} image of {bits}-bit samples")
    if fmt in ("JPEG", "MPO"):
        return Source(not_restorable=f"{fmt} is lossy",
                      lossy="a JPEG" if fmt == "JPEG" else "a multi-picture JPEG (MPO)")
    if fmt == "AVIF":
        return Source(not_restorable="AVIF is lossy (pixzip cannot tell whether this file was coded losslessly)")
    if fmt == "JPEG2000":
        return Source(not_restorable="JPEG 2000 may be lossy (pixzip cannot tell whether this file was)")
    return Source(not_restorable=f"pixzip does not check everything a {fmt or 'file of this format'} file holds")
