"""What an image carries besides its pixels, kept in .pxz chunks: the ICC
profile, EXIF, XMP, the resolution, PNG text, and the original file format.

Reading takes them from Pillow; writing gives them back to Pillow, and then
reads the written file again, so that an output format that cannot hold one
of them is refused by name (or the caller drops them with ``strip``), never
silently.  What pixzip does not keep (PNG gamma, say) is listed by
``Metadata.dropped`` for the caller to report.
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field

EXIF_PREFIX = b"Exif\x00\x00"
XMP_KEY = "XML:com.adobe.xmp"
DPI_TOLERANCE = 0.02          # PNG stores pixels per metre: dpi comes back within 0.0127

# chunk tags (lower case: a decoder that does not know one may skip it)
FORMAT_TAG, ICC_TAG, EXIF_TAG, XMP_TAG, DPI_TAG, TEXT_TAG = b"ofmt", b"iccp", b"exif", b"xmpp", b"dpix", b"text"
CHUNK_NAMES = {FORMAT_TAG: "the format name", ICC_TAG: "the ICC profile", EXIF_TAG: "EXIF", XMP_TAG: "XMP",
               DPI_TAG: "the resolution", TEXT_TAG: "the PNG text"}

# the original format, as the header's byte (255: named by the "ofmt" chunk)
FORMAT_IDS = {"PNG": 1, "TIFF": 2, "WEBP": 3, "BMP": 4, "PPM": 5, "JPEG": 6, "GIF": 7}
NAMED_FORMAT = 255

# info keys of Pillow's that describe the file's encoding, not the image
_ENCODING_KEYS = {"compression", "interlace", "progressive", "progression", "jfif", "jfif_version", "jfif_unit",
                  "jfif_density", "adobe", "adobe_transform", "aspect", "background", "duration", "loop",
                  "timestamp", "resolution", "dpi", "icc_profile", "exif", "xmp", "bmp_version", "version",
                  "compress_level", "optimize", "quality", "subsampling"}


# descriptive TIFF tags that pixzip does not keep (it keeps the ICC profile and the resolution)
_TIFF_TAGS = {270: "ImageDescription", 271: "Make", 272: "Model", 305: "Software", 306: "DateTime", 315: "Artist",
              700: "XMP", 33432: "Copyright", 34665: "ExifIFD", 34853: "GPSInfo"}


@dataclass(frozen=True)
class Metadata:
    format: str | None = None                     # Pillow's name of the original file format
    icc: bytes | None = None
    exif: bytes | None = None                     # as Pillow gives it; compared without an "Exif\0\0" prefix
    xmp: bytes | None = None
    dpi: tuple[float, float] | None = None
    text: tuple[tuple[str, str], ...] = ()        # PNG tEXt/zTXt/iTXt
    dropped: tuple[str, ...] = field(default=(), compare=False)   # what the source had that is not kept

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
        return out

    def stripped(self) -> "Metadata":
        """Only the original format: what ``--strip`` keeps."""
        return Metadata(format=self.format)


def from_pil(im) -> Metadata:
    info = dict(im.info)
    text = getattr(im, "text", None) or {}
    xmp = info.get("xmp")
    if xmp is None and XMP_KEY in text:
        xmp = text[XMP_KEY]
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    dpi = info.get("dpi")
    keep_text = tuple((str(k), str(v)) for k, v in text.items() if k != XMP_KEY)
    dropped = sorted(k for k in info if k not in _ENCODING_KEYS and k not in text and k != XMP_KEY)
    tags = getattr(im, "tag_v2", None) if im.format == "TIFF" else None
    if tags is not None:   # Pillow gives a TIFF's descriptive tags as tags, not as info
        dropped += [f"TIFF tag {name}" for tag, name in _TIFF_TAGS.items() if tag in tags]
    return Metadata(
        format=im.format,
        icc=info.get("icc_profile") or None,
        exif=info.get("exif") or None,
        xmp=xmp or None,
        dpi=(float(dpi[0]), float(dpi[1])) if dpi else None,
        text=keep_text,
        dropped=tuple(dropped),
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
    from ..errors import FormatError
    d = dict(chunks)
    names = {v: k for k, v in FORMAT_IDS.items()}
    try:
        dpi = struct.unpack("<dd", d[DPI_TAG]) if DPI_TAG in d else None
        fmt = d[FORMAT_TAG].decode("ascii") if source_format == NAMED_FORMAT and FORMAT_TAG in d \
            else names.get(source_format)
        return Metadata(format=fmt,
                        icc=d.get(ICC_TAG), exif=d.get(EXIF_TAG), xmp=d.get(XMP_TAG), dpi=dpi,
                        text=_text(d[TEXT_TAG]) if TEXT_TAG in d else ())
    except (struct.error, UnicodeDecodeError, ValueError):
        raise FormatError("damaged metadata chunk") from None


def _save_kwargs(md: Metadata, fmt: str) -> dict:
    kw: dict = {}
    if fmt == "WEBP":
        kw.update(lossless=True, quality=100, exact=True)
    if fmt == "TIFF":
        kw.update(compression="tiff_adobe_deflate")
    if md.icc:
        kw["icc_profile"] = md.icc
    if md.exif:
        kw["exif"] = md.exif
    if md.dpi:
        kw["dpi"] = md.dpi
    if md.xmp and fmt != "PNG":
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
    return out


def encode_image(im, fmt: str, md: Metadata) -> bytes:
    """The bytes of ``im`` in format ``fmt`` with the metadata of ``md``."""
    buf = io.BytesIO()
    im.save(buf, format=fmt, **_save_kwargs(md, fmt))
    return buf.getvalue()
