"""What an image carries besides its pixels, kept in .pxz chunks: the ICC
profile, EXIF, XMP, the resolution, PNG text, the original file format,
and verbatim: a PNG's other ancillary chunks and a TIFF's Orientation and
descriptive strings (found by ``source_check``, as Pillow reads past them).

Reading takes them from Pillow; writing gives them back to Pillow, and then
reads the written file again, so that an output format that cannot hold one
of them is refused by name (or the caller drops them with ``strip``), never
silently.  What pixzip does not keep (a TIFF's EXIF directory, say) is
listed by ``Metadata.dropped`` for the caller to report, and why the source
file cannot be restored at all (it was lossy) by ``Metadata.not_restorable``.
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field

from .container import MAX_CHUNK_BYTES, REQUIRED_CHUNKS
from .source_check import TIFF_KEPT, TIFF_ORIENTATION, TIFF_XMP, insert_png_chunks

EXIF_PREFIX = b"Exif\x00\x00"
XMP_KEY = "XML:com.adobe.xmp"
DPI_TOLERANCE = 0.02          # PNG stores pixels per metre: dpi comes back within 0.0127

# chunk tags (lower case: a decoder that does not know one may skip it)
FORMAT_TAG, ICC_TAG, EXIF_TAG, XMP_TAG, DPI_TAG, TEXT_TAG = b"ofmt", b"iccp", b"exif", b"xmpp", b"dpix", b"text"
# upper case: a pixzip that does not know them refuses the file by name instead of dropping them
PNG_CHUNKS_TAG, TIFF_TAGS_TAG = REQUIRED_CHUNKS
CHUNK_NAMES = {FORMAT_TAG: "the format name", ICC_TAG: "the ICC profile", EXIF_TAG: "EXIF", XMP_TAG: "XMP",
               DPI_TAG: "the resolution", TEXT_TAG: "the PNG text",
               PNG_CHUNKS_TAG: "the PNG chunks kept verbatim", TIFF_TAGS_TAG: "the TIFF tags"}

# the original format, as the header's byte (255: named by the "ofmt" chunk)
FORMAT_IDS = {"PNG": 1, "TIFF": 2, "WEBP": 3, "BMP": 4, "PPM": 5, "JPEG": 6, "GIF": 7}
NAMED_FORMAT = 255

# info keys of Pillow's that describe the file's encoding, not the image
_ENCODING_KEYS = {"compression", "interlace", "progressive", "progression", "jfif", "jfif_version", "jfif_unit",
                  "jfif_density", "adobe", "adobe_transform", "duration", "loop",
                  "timestamp", "resolution", "dpi", "icc_profile", "exif", "xmp", "bmp_version", "version",
                  "compress_level", "optimize", "quality", "subsampling",
                  "transparency"}       # kept in the picture itself
# Pillow's info keys of what a file holds besides the image, in a user's words
_INFO_NAMES = {"background": "the background colour", "comment": "the comment", "extension": "an application extension",
               "transparency": "the transparent colour"}
# formats whose chunks or tags source_check accounts for one by one (Pillow's info keys are not needed)
_WALKED = {"PNG", "TIFF", "WEBP"}


@dataclass(frozen=True)
class Metadata:
    format: str | None = None                     # Pillow's name of the original file format
    icc: bytes | None = None
    exif: bytes | None = None                     # as Pillow gives it; compared without an "Exif\0\0" prefix
    xmp: bytes | None = None
    dpi: tuple[float, float] | None = None
    text: tuple[tuple[str, str], ...] = ()        # PNG tEXt/zTXt/iTXt
    png_chunks: tuple[tuple[bytes, bytes, bool], ...] = ()   # other PNG chunks, verbatim: (type, data, after IDAT)
    tiff_tags: tuple[tuple[int, int | bytes], ...] = ()       # TIFF Orientation (int), descriptive strings (bytes)
    dropped: tuple[str, ...] = field(default=(), compare=False)   # what the source had that is not kept
    not_restorable: str | None = field(default=None, compare=False)   # why the source file cannot be restored
    lossy: str | None = field(default=None, compare=False)            # what the source is, if lossily coded

    def items(self) -> list[str]:
        """The names of what is kept, for messages and ``info``."""
        out = []
        if self.icc:
            out.append(f"ICC profile ({len(self.icc)} bytes)")
        if self.exif:
            out.append(f"EXIF ({len(self.exif)} bytes)")
        if self.xmp:
            out.append(f"XMP ({len(self.xmp)} bytes)")
        if self.dpi:
            out.append(f"resolution {round(self.dpi[0], 2):g}x{round(self.dpi[1], 2):g} dpi")
        if self.text:
            out.append(f"text ({', '.join(k for k, _ in self.text)})")
        if self.png_chunks:
            out.append(f"PNG chunks ({', '.join(_chunk_names(self.png_chunks))})")
        if self.tiff_tags:
            out.append(f"TIFF tags ({', '.join(_tag_names(self.tiff_tags, values=True))})")
        return out

    def stripped(self) -> "Metadata":
        """Only the original format: what ``--strip`` keeps."""
        return Metadata(format=self.format)


def _chunk_names(chunks) -> list[str]:
    return [cid.decode("ascii", "replace") for cid, _, _ in chunks]


def _tag_names(tags, values=False) -> list[str]:
    return [f"{TIFF_KEPT.get(t, t)} {v}" if values and isinstance(v, int) else str(TIFF_KEPT.get(t, t))
            for t, v in tags]


def from_pil(im, source=None) -> Metadata:
    """The metadata of a Pillow image; ``source``, what ``source_check``
    found in its file, adds the verbatim chunks and tags and what is dropped."""
    info = dict(im.info)
    text = getattr(im, "text", None) or {}
    xmp = info.get("xmp")
    if xmp is None and XMP_KEY in text:
        xmp = text[XMP_KEY]
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    dpi = info.get("dpi")
    keep_text = tuple((str(k), str(v)) for k, v in text.items() if k != XMP_KEY)
    dropped_text = [f"the language tag of PNG text {k!r}" for k, v in text.items()
                    if getattr(v, "lang", None) or getattr(v, "tkey", None)]
    dropped = [] if source is not None and im.format in _WALKED else \
        sorted(_INFO_NAMES.get(k, k) for k in info if k not in _ENCODING_KEYS and k not in text and k != XMP_KEY)
    png_chunks, tiff_tags = (source.png_chunks, source.tiff_tags) if source is not None else ((), ())
    if source is not None:
        dropped += source.dropped + tuple(dropped_text)
    if sum(len(d) + 9 for _, d, _ in png_chunks) > MAX_CHUNK_BYTES:
        dropped += [f"PNG chunks {', '.join(_chunk_names(png_chunks))} (over {MAX_CHUNK_BYTES >> 20} MB in all)"]
        png_chunks = ()
    if sum(len(v) + 7 for _, v in tiff_tags if isinstance(v, bytes)) + 9 * len(tiff_tags) > MAX_CHUNK_BYTES:
        dropped += [f"TIFF tags {', '.join(_tag_names(tiff_tags))} (over {MAX_CHUNK_BYTES >> 20} MB in all)"]
        tiff_tags = ()
    return Metadata(
        format=im.format,
        icc=info.get("icc_profile") or None,
        exif=info.get("exif") or None,
        xmp=xmp or None,
        dpi=(float(dpi[0]), float(dpi[1])) if dpi else None,
        text=keep_text,
        png_chunks=tuple(png_chunks),
        tiff_tags=tuple(tiff_tags),
        dropped=tuple(dropped),
        not_restorable=source.not_restorable if source is not None else None,
        lossy=source.lossy if source is not None else None,
    )


def to_chunks(md: Metadata) -> tuple[tuple[bytes, bytes], ...]:
    out = []
    if md.format and md.format not in FORMAT_IDS:
        out.append((FORMAT_TAG, md.format.encode("ascii", "replace")))
    if md.icc:
        out.append((ICC_TAG, bytes(md.icc)))
    if md.exif:
        out.append((EXIF_TAG, bytes(md.exif)))
    if md.xmp:
        out.append((XMP_TAG, bytes(md.xmp)))
    if md.dpi:
        out.append((DPI_TAG, struct.pack("<dd", *md.dpi)))
    if md.text:
        parts = []
        for k, v in md.text:
            kb, vb = k.encode("utf-8"), v.encode("utf-8")
            parts += [struct.pack("<I", len(kb)), kb, struct.pack("<I", len(vb)), vb]
        out.append((TEXT_TAG, b"".join(parts)))
    if md.png_chunks:
        out.append((PNG_CHUNKS_TAG, b"".join(struct.pack("<I4sB", len(d), cid, after) + d
                                             for cid, d, after in md.png_chunks)))
    if md.tiff_tags:
        out.append((TIFF_TAGS_TAG, b"".join(
            struct.pack("<HBI", tag, 0, 2) + struct.pack("<H", v) if isinstance(v, int)
            else struct.pack("<HBI", tag, 1, len(v)) + v for tag, v in md.tiff_tags)))
    return tuple(out)


def _png_chunks(data: bytes) -> tuple[tuple[bytes, bytes, bool], ...]:
    out, pos = [], 0
    while pos < len(data):
        n, cid, after = struct.unpack_from("<I4sB", data, pos)
        pos += 9
        if pos + n > len(data) or after > 1 or not (cid.isalpha() and cid.isascii()) \
                or cid in (b"IHDR", b"IDAT", b"IEND"):    # never kept verbatim: an archive that says so lies
            raise ValueError("damaged PNG chunks")
        out.append((cid, data[pos:pos + n], bool(after)))
        pos += n
    return tuple(out)


def _tiff_tags(data: bytes) -> tuple[tuple[int, int | bytes], ...]:
    out, pos = [], 0
    while pos < len(data):
        tag, kind, n = struct.unpack_from("<HBI", data, pos)
        pos += 7
        if pos + n > len(data) or kind > 1 or kind == 0 and n != 2:
            raise ValueError("damaged TIFF tags")
        out.append((tag, struct.unpack_from("<H", data, pos)[0] if kind == 0 else data[pos:pos + n]))
        pos += n
    return tuple(out)


def _text(data: bytes) -> tuple[tuple[str, str], ...]:
    out, pos = [], 0
    while pos < len(data):
        pair = []
        for _ in range(2):
            (n,) = struct.unpack_from("<I", data, pos)
            pair.append(data[pos + 4:pos + 4 + n].decode("utf-8"))
            if pos + 4 + n > len(data):
                raise ValueError("short text chunk")
            pos += 4 + n
        out.append(tuple(pair))
    return tuple(out)


def format_id(md: Metadata) -> int:
    """The header's byte for the original format."""
    return FORMAT_IDS.get(md.format, NAMED_FORMAT) if md.format else 0


def from_chunks(chunks, source_format: int = 0) -> Metadata:
    """The metadata of a header's chunks and format byte (unknown optional
    chunks, and unknown format bytes, are skipped)."""
    from ...errors import FormatError
    d = dict(chunks)
    names = {v: k for k, v in FORMAT_IDS.items()}
    try:
        dpi = struct.unpack("<dd", d[DPI_TAG]) if DPI_TAG in d else None
        fmt = d[FORMAT_TAG].decode("ascii") if source_format == NAMED_FORMAT and FORMAT_TAG in d \
            else names.get(source_format)
        return Metadata(format=fmt,
                        icc=d.get(ICC_TAG), exif=d.get(EXIF_TAG), xmp=d.get(XMP_TAG), dpi=dpi,
                        text=_text(d[TEXT_TAG]) if TEXT_TAG in d else (),
                        png_chunks=_png_chunks(d[PNG_CHUNKS_TAG]) if PNG_CHUNKS_TAG in d else (),
                        tiff_tags=_tiff_tags(d[TIFF_TAGS_TAG]) if TIFF_TAGS_TAG in d else ())
    except (struct.error, UnicodeDecodeError, ValueError):
        raise FormatError("damaged metadata chunk") from None


def _save_kwargs(md: Metadata, fmt: str) -> dict:
    kw: dict = {}
    if fmt == "WEBP":
        kw.update(lossless=True, quality=100, exact=True)
    if fmt == "GIF":
        kw.update(optimize=False)      # the palette as it is: its order and its size
    if fmt == "TIFF":
        kw.update(compression="tiff_adobe_deflate")
        if md.tiff_tags or md.xmp:
            from PIL import TiffImagePlugin
            tags = TiffImagePlugin.ImageFileDirectory_v2()
            for tag, value in md.tiff_tags:
                tags[tag] = value
            if md.xmp:             # Pillow's TIFF writer drops its xmp argument, but writes the tag
                tags[TIFF_XMP] = md.xmp
            kw["tiffinfo"] = tags
    if md.icc:
        kw["icc_profile"] = md.icc
    if md.exif:
        kw["exif"] = md.exif
    if md.dpi:
        kw["dpi"] = md.dpi
    if md.xmp and fmt not in ("PNG", "TIFF"):
        kw["xmp"] = md.xmp
    if fmt == "PNG" and (md.text or md.xmp):
        from PIL import PngImagePlugin
        info = PngImagePlugin.PngInfo()
        for k, v in md.text:
            if v.isascii():
                info.add_text(k, v)
            else:
                info.add_itxt(k, v)
        if md.xmp:
            info.add_itxt(XMP_KEY, md.xmp.decode("utf-8", "replace"))
        kw["pnginfo"] = info
    return kw


def _norm_exif(b: bytes | None) -> bytes | None:
    if b and b.startswith(EXIF_PREFIX):
        b = b[len(EXIF_PREFIX):]
    return b or None


def missing(md: Metadata, written: Metadata) -> list[str]:
    """What of ``md`` the written file does not carry."""
    out = []
    if md.icc and written.icc != md.icc:
        out.append("the ICC profile")
    if md.exif and _norm_exif(written.exif) != _norm_exif(md.exif):
        out.append("EXIF")
    if md.xmp and (written.xmp or b"").strip(b"\0") != md.xmp.strip(b"\0"):
        out.append("XMP")
    if md.dpi and not (written.dpi and all(abs(a - b) <= DPI_TOLERANCE for a, b in zip(md.dpi, written.dpi))):
        out.append("the resolution")
    if md.text and not set(md.text) <= set(written.text):
        out.append("the PNG text")
    if md.png_chunks and written.png_chunks != md.png_chunks:
        out.append(f"the PNG chunks {', '.join(_chunk_names(md.png_chunks))}")
    # Pillow turns the image by its TIFF Orientation when it reads it: other formats show it the same way
    tags = md.tiff_tags if written.format == "TIFF" else tuple(t for t in md.tiff_tags if t[0] != TIFF_ORIENTATION)
    lost_tags = [t for t in tags if t not in written.tiff_tags]
    if lost_tags:
        out.append(f"the TIFF tags {', '.join(_tag_names(lost_tags))}")
    return out


# the transposition that undoes each TIFF Orientation Pillow applies when it reads a file
_UNDO_ORIENTATION = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_90",
                     7: "TRANSVERSE", 8: "ROTATE_270"}


def encode_image(im, fmt: str, md: Metadata) -> bytes:
    """The bytes of ``im`` in format ``fmt`` with the metadata of ``md``."""
    orientation = dict(md.tiff_tags).get(TIFF_ORIENTATION)
    if fmt == "TIFF" and orientation in _UNDO_ORIENTATION:   # the file holds the image unturned, and the tag
        from PIL import Image
        im = im.transpose(getattr(Image.Transpose, _UNDO_ORIENTATION[orientation]))
    buf = io.BytesIO()
    im.save(buf, format=fmt, **_save_kwargs(md, fmt))
    if fmt == "PNG" and md.png_chunks:
        return insert_png_chunks(buf.getvalue(), md.png_chunks)
    return buf.getvalue()
