"""Reading and writing image files for the codec: pictures of every mode
pixzip keeps (1-bit, 8-bit gray and RGB with or without alpha, palette,
16-bit gray and RGB), with their metadata.

Anything pixzip cannot keep exactly is refused by name, in a user's words,
never converted: other colour models (CMYK, Lab, YCbCr), 32-bit and float
samples, 16-bit alpha, samples Pillow would rescale (a PPM whose maxval is
not 255: the file's own header says, ``source_check``), several frames
(never reduced to the first).  Pillow reads 16-bit RGB PNGs and TIFFs as
8-bit: they are read and written exactly with imagecodecs (libpng and
libtiff), their metadata from Pillow's view of the same file.  Writing
checks the written bytes: they must read back to the same picture and
carry the metadata asked for, else the format is refused by name.

``read_image_file`` and ``encode_file`` are the 8-bit L and RGB arrays of
before 0.6 (training sets, benchmarks).
"""
from __future__ import annotations

import io
import os
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ...errors import ImageError, describe_os_error
from .container import MODES
from . import picture as pictures
from .metadata import Metadata, encode_image, from_pil, missing
from .picture import DESCRIPTION, Picture
from .source_check import CONVERT_IT, KEEP_IT, TIFF_ORIENTATION, Source, refused, swap_png_pixels
from .source_check import check as check_source

LOSSY_FORMATS = {"JPEG", "MPO"}


def as_array(image) -> np.ndarray:
    """An (H, W, C) uint8 array, C in {1, 3}, from an array, a PIL image or a path.
    Other modes are refused, never converted silently."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if isinstance(image, Image.Image):
        return _from_pil(image, "image")
    return _plain(pictures.from_array(image, "image"), "image")


def _from_pil(im: Image.Image, where: str) -> np.ndarray:
    return _plain(pictures.from_pil(im, where), where)


def _plain(p: Picture, where: str) -> np.ndarray:
    """The (H, W, C) pixels of an 8-bit L or RGB picture without transparency
    (what training, bench and the network's ideal bits take); others refused by name."""
    if not p.plain:
        what = DESCRIPTION[p.mode] + (" with a transparent colour" if p.transparency is not None else "")
        raise ImageError(f"{where}: {what}; this needs 8-bit gray or RGB without transparency")
    return p.pixels


def _open(path: Path, data: bytes) -> tuple[Image.Image, Metadata, Source]:
    """The loaded image of a file's bytes, its metadata and what its own
    structure says (checked first: its bit depth and colour model, the
    chunks Pillow reads past).  A .pxz archive is not an image to compress,
    even where ``pixzip.pillow`` has taught Pillow to open one."""
    if data.startswith(b"PXZ\0"):
        raise ImageError(f"{path}: {_looks_like(data)}")
    try:
        im = Image.open(io.BytesIO(data))
        try:
            source = check_source(data, im.format, im.tile, str(path))
            _refuse_frames(im, str(path))
            im.load()
        except BaseException:
            im.close()
            raise
        return im, from_pil(im, source), source
    except ImageError:
        raise
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        raise ImageError(describe_os_error(path, e)) from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path}: {e}") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: {_looks_like(data)}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        if not data:
            raise ImageError(f"{path}: empty file") from None
        if "MAX_TEXT_CHUNK" in str(e):
            raise ImageError(f"{path}: {_too_large(data)} is over the 1 MB that Pillow reads in one PNG chunk; "
                             f"pixzip cannot read this image (keep it as it is, or embed a smaller "
                             f"profile or text)") from None
        raise ImageError(f"{path}: not a readable image (damaged or cut short: {_reason(e)})") from None


def _reason(e: Exception) -> str:
    """An exception's own words, one line."""
    return " ".join(str(e).split())[:120] or e.__class__.__name__


# the starts of image files, and their formats
_IMAGES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF8", "GIF"), (b"\xff\xd8\xff", "JPEG"), (b"II*\0", "TIFF"),
           (b"MM\0*", "TIFF"), (b"BM", "BMP"), (b"RIFF", "RIFF file (WebP?)"))
# the starts of files that are not images pixzip reads, and what they are
_NOT_IMAGES = ((b"PXZ\0", "a pixzip archive (.pxz): decompress it with pixzip decompress"),
               (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"), (b"\x1f\x8b", "a gzip file"),
               (b"\x28\xb5\x2f\xfd", "a zstd file"), (b"\xfd7zXZ\0", "an xz file"), (b"BZh", "a bzip2 file"),
               (b"\xff\x0a", "a JPEG XL image"), (b"\0\0\0\x0cJXL ", "a JPEG XL image"),
               (b"8BPS", "a Photoshop document"), (b"\x7fELF", "a program"))


def _looks_like(data: bytes) -> str:
    """Why a file is not an image pixzip reads, and what it looks like."""
    if not data:
        return "empty file; not an image file pixzip can read"
    for magic, what in _IMAGES:
        if data.startswith(magic):
            return f"a damaged or cut-short {what}; not an image file pixzip can read"
    for magic, what in _NOT_IMAGES:
        if data.startswith(magic):
            return f"not an image file pixzip can read (it looks like {what})"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "not an image file pixzip can read (it looks like a HEIF or AVIF image this Pillow does not read)"
    head = data[:512]
    try:
        head.decode("utf-8")
        text = b"\0" not in head
    except UnicodeDecodeError:
        text = False
    return "not an image file pixzip can read" + (" (it looks like text)" if text else "")


def _frames_kind(fmt: str | None, n: int) -> str:
    """A file of several frames, in a user's words."""
    return {"GIF": f"an animated GIF of {n} frames", "PNG": f"an animated PNG (APNG) of {n} frames",
            "WEBP": f"an animated WebP of {n} frames", "TIFF": f"a TIFF of {n} pages",
            "MPO": f"a multi-picture JPEG (MPO) of {n} pictures"}.get(fmt, f"a {fmt or 'file'} of {n} frames")


def _refuse_frames(im: Image.Image, where: str) -> None:
    """Several frames are refused, never reduced to the first."""
    n = getattr(im, "n_frames", 1)
    if n > 1:
        raise ImageError(f"{where}: {_frames_kind(im.format, n)}; pixzip keeps single images, and never only "
                         f"the first frame (save each frame as its own file if that is what you want)")


# what a Pillow image of a mode pixzip does not keep is, and what to do
_OTHER_MODES = {"CMYK": ("CMYK", CONVERT_IT), "YCbCr": ("YCbCr", CONVERT_IT), "LAB": ("Lab", CONVERT_IT),
                "HSV": ("HSV", CONVERT_IT), "I": ("32-bit integer gray", KEEP_IT),
                "F": ("32-bit floating-point gray", KEEP_IT), "PA": ("palette with an alpha plane", KEEP_IT),
                "RGBX": ("RGB with a padding byte", KEEP_IT), "RGBa": ("premultiplied RGBA", KEEP_IT),
                "La": ("premultiplied gray with alpha", KEEP_IT)}


def _picture(im: Image.Image, data: bytes, source: Source, where: str) -> Picture:
    """The picture of a loaded image (``data``, its file's bytes, read
    exactly by imagecodecs when Pillow reads it as 8-bit), else a refusal
    naming what the file is."""
    fmt = im.format or "image"
    if source.samples_at and im.mode == "I":       # a 16-bit PGM, which Pillow reads exactly as 32-bit
        return Picture(np.asarray(im).astype(np.uint16)[..., None], "I;16")
    if source.sixteen_bit_rgb:
        a = _read_16_bit_rgb(data, fmt, where, source.samples_at)
        if fmt == "TIFF":         # turned by its Orientation, as Pillow turns every TIFF it reads
            a = np.ascontiguousarray(_ORIENT.get(dict(source.tiff_tags).get(TIFF_ORIENTATION), _ORIENT[1])(a))
        eight = np.round(a / 257) if fmt == "PPM" else a >> 8     # Pillow's view: scaled, or the high bytes
        if not np.array_equal(eight, np.asarray(im)):
            raise ImageError(f"{where}: this 16-bit RGB {fmt} reads differently in imagecodecs and Pillow; "
                             f"pixzip does not know which is right ({KEEP_IT})")
        return Picture(a, "RGB;16")
    if im.mode not in pictures.MODES and not im.mode.startswith("I;16"):
        kind, advice = _OTHER_MODES.get(im.mode, (f"unusual ({im.mode})", KEEP_IT))
        raise refused(where, f"{'an' if kind[0] in 'AEHIOUaeiou' else 'a'} {kind} {fmt}", advice)
    if im.mode == "P" and im.palette is not None and im.palette.mode not in ("RGB", "RGBA"):
        raise refused(where, f"a {fmt} with a palette of {im.palette.mode} colours")
    return pictures.from_pil(im, where)


# a TIFF Orientation's turn of an (H, W, C) array, as Pillow makes it (ImageOps.exif_transpose)
_ORIENT = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
           7: lambda a: a[::-1, ::-1].transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1)}


def _read_16_bit_rgb(data: bytes, fmt: str, where: str, samples_at: int = 0):
    """The exact samples of a 16-bit RGB PNG, TIFF or PPM (its samples from
    ``samples_at``), (H, W, 3) uint16."""
    if fmt == "PPM":
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
        if len(data) < samples_at + 6 * h * w:
            raise ImageError(f"{where}: a 16-bit PPM cut short")
        return np.frombuffer(data, ">u2", h * w * 3, samples_at).reshape(h, w, 3).astype(np.uint16)
    import imagecodecs
    try:
        a = imagecodecs.png_decode(data) if fmt == "PNG" else imagecodecs.tiff_decode(data)
    except Exception as e:     # imagecodecs raises one error class per codec
        raise ImageError(f"{where}: not a readable 16-bit RGB {fmt} (damaged or cut short: {_reason(e)})") \
            from None
    if a.dtype != np.uint16 or a.ndim != 3 or a.shape[2] != 3:
        raise ImageError(f"{where}: a 16-bit RGB {fmt} that reads as {a.dtype} samples of shape {a.shape}")
    return np.ascontiguousarray(a)


def _too_large(data: bytes) -> str:
    """What in a PNG Pillow refused as over its 1 MB limit of a decompressed chunk."""
    from .source_check import png_chunks
    limit = 1 << 20
    try:
        chunks, _ = png_chunks(data)
    except ImageError:
        return "a compressed chunk"
    for cid, body, _ in chunks:
        if cid in (b"iCCP", b"zTXt"):
            d = zlib.decompressobj()
            try:
                size = len(d.decompress(body[body.find(b"\0") + 2:], limit + 1))
            except zlib.error:
                continue
            if size > limit:
                return "the ICC profile" if cid == b"iCCP" else f"a text chunk ({cid.decode()})"
    return "a compressed chunk"


def read_image(path) -> np.ndarray:
    return read_image_file(path)[0]


def read_image_file(path, data: bytes | None = None) -> tuple[np.ndarray, Metadata]:
    """The 8-bit L or RGB pixels and metadata of an image file (or of its
    bytes, ``data``, with ``path`` naming it in messages); pictures of other
    modes are refused by name."""
    picture, md = read_picture_file(path, data)
    if not picture.plain:
        raise ImageError(f"{path}: unsupported image mode: {DESCRIPTION[picture.mode]}"
                         f"{' with a transparent colour' if picture.transparency is not None else ''} "
                         f"(this reader takes 8-bit gray and RGB)")
    return picture.pixels, md


def to_pil(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels, MODES[pixels.shape[2]])


def format_for(path) -> str | None:
    """Pillow's format name for a file name's suffix."""
    return Image.registered_extensions().get(Path(path).suffix.lower())


# the formats pixzip writes when an archive's original format picks one (stdout,
# a name without an image suffix), with their usual suffixes; any other is PNG
WRITTEN_FORMATS = {"PNG": ".png", "TIFF": ".tif", "WEBP": ".webp", "BMP": ".bmp", "PPM": ".ppm", "GIF": ".gif"}


def written_format(fmt: str | None, mode: str = "P") -> str:
    """The format to write an image of ``mode`` whose original format was
    ``fmt``: it, if pixzip writes it on purpose (``WRITTEN_FORMATS``; GIF
    only for a palette image), else PNG; never one of Pillow's other
    writers (DDS, ICO, EPS...)."""
    return fmt if fmt in WRITTEN_FORMATS and (fmt != "GIF" or mode == "P") else "PNG"


def suffix_for(fmt: str | None) -> str:
    """The usual suffix of a format (".png" for none or an unknown one)."""
    return WRITTEN_FORMATS[written_format(fmt)]


def encode_file(pixels: np.ndarray, fmt: str, md: Metadata, where: str) -> bytes:
    """``encode_picture_file`` of 8-bit L or RGB pixels."""
    return encode_picture_file(Picture(pixels, MODES[pixels.shape[2]]), fmt, md, where)


def read_picture_file(path, data: bytes | None = None) -> tuple[Picture, Metadata]:
    """The picture and metadata of an image file (or of its bytes, ``data``,
    with ``path`` naming it in messages); a file pixzip does not keep is
    refused by name."""
    path = Path(path)
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ImageError(describe_os_error(path, e)) from None
    im, md, source = _open(path, data)
    with im:
        return _picture(im, data, source, str(path)), md


# formats that keep a mode exactly, as far as pixzip writes it (each file is read back and checked anyway)
_KEEPS = {"PNG": set(pictures.MODES), "TIFF": set(pictures.MODES), "BMP": {"1", "L", "P", "RGB"},
          "PPM": {"1", "L", "RGB", "I;16", "RGB;16"}, "WEBP": {"RGB", "RGBA"}, "GIF": {"P"}}


def encode_picture_file(p: Picture, fmt: str, md: Metadata, where: str) -> bytes:
    """The bytes of an image file in format ``fmt`` holding the picture and
    ``md``, read back and checked: the same mode, samples, palette and
    transparency, and every item of ``md``, else an ImageError naming what
    the format cannot keep."""
    if fmt in ("JPEG", "MPO") or fmt == "GIF" and p.mode != "P":
        raise ImageError(f"{where}: {fmt} is lossy{' for anything but palette images' if fmt == 'GIF' else ''}; "
                         f"choose a lossless format such as .png")
    Image.init()       # Pillow registers its writers lazily: a fresh process has none yet
    if fmt not in Image.SAVE:
        raise ImageError(f"{where}: Pillow cannot write {fmt} files")
    if fmt in _KEEPS and p.mode not in _KEEPS[fmt]:
        raise ImageError(f"{where}: {fmt} cannot keep {_kind_of(p)}; choose .png")
    if fmt == "GIF" and not isinstance(p.transparency, (int, type(None))):
        raise ImageError(f"{where}: GIF cannot keep an alpha for each palette colour (only one transparent "
                         f"colour); choose .png")
    try:
        data = _encode_16_bit_rgb(p, fmt, md) if p.mode == "RGB;16" else encode_image(pictures.to_pil(p), fmt, md)
        back, back_md = read_picture_file(Path(where), data)
    except ImageError as e:
        raise ImageError(f"{where}: {fmt} cannot keep this {_kind_of(p)} ({_after_name(e)}); choose .png") \
            from None
    except Exception as e:  # Pillow's writers raise several kinds
        raise ImageError(f"{where}: cannot write {fmt} ({e.__class__.__name__}: {e})") from None
    if back.mode != p.mode:
        raise ImageError(f"{where}: {fmt} cannot keep {_kind_of(p)}; choose .png")
    if back.pixels.shape != p.pixels.shape or not np.array_equal(back.pixels, p.pixels):
        raise ImageError(f"{where}: {fmt} does not keep these pixels exactly; choose .png")
    if p.mode == "P" and _colours(back)[0] != _colours(p)[0]:
        raise ImageError(f"{where}: {fmt} cannot keep this palette of {len(p.palette) // len(p.palette_mode)} "
                         f"colours exactly (its order and size); choose .png")
    if p.mode == "P" and _colours(back)[1] != _colours(p)[1] or p.mode != "P" and back.transparency != p.transparency:
        raise ImageError(f"{where}: {fmt} cannot keep this image's transparency exactly; choose .png")
    lost = missing(md, back_md)
    if lost:
        raise ImageError(f"{where}: {fmt} cannot keep {' and '.join(lost)}; choose .png, or drop them with --strip")
    return data


def _colours(p: Picture) -> tuple[bytes, bytes]:
    """A palette picture's colours and their alphas, whichever way it holds
    them: an RGBA palette, or an RGB one and a transparent index or an alpha
    for each of its first colours (a PNG's tRNS, as Pillow reads it)."""
    n = len(p.palette) // len(p.palette_mode)
    entries = np.frombuffer(p.palette, np.uint8).reshape(n, len(p.palette_mode))
    if p.palette_mode == "RGBA":
        return entries[:, :3].tobytes(), entries[:, 3].tobytes()
    t = p.transparency
    alphas = bytes(255 if i != t else 0 for i in range(n)) if isinstance(t, int) or t is None else \
        bytes(t[:n]) + bytes([255]) * (n - len(t))
    return p.palette, alphas


def _kind_of(p: Picture) -> str:
    """A picture's kind, in a user's words ("16-bit samples", "palette images")."""
    return {"RGB;16": "16-bit samples", "I;16": "16-bit samples", "P": "palette images",
            "1": "1-bit images", "LA": "alpha", "RGBA": "alpha"}.get(p.mode, f"{DESCRIPTION[p.mode]} images")


def _after_name(e: ImageError) -> str:
    return str(e).partition(": ")[2] or str(e)


def _encode_16_bit_rgb(p: Picture, fmt: str, md: Metadata) -> bytes:
    """A 16-bit RGB PNG or TIFF, written by imagecodecs.  A PNG takes its
    metadata chunks from Pillow's PNG of the same metadata (its pixels
    swapped for the 16-bit ones), so that both kinds of PNG carry them alike."""
    import imagecodecs
    if fmt == "TIFF":         # what libtiff's writer in imagecodecs holds; the rest is found missing by name
        strings = {k: v.decode("latin-1") for k, v in md.tiff_tags if isinstance(v, bytes)}
        return imagecodecs.tiff_encode(
            p.pixels, compression="deflate", iccprofile=md.icc, resolution=md.dpi, resolutionunit=2 if md.dpi else None,
            description=strings.get(270), software=strings.get(305), datetime=strings.get(306))
    if fmt == "PPM":
        return b"P6\n%d %d\n65535\n" % (p.width, p.height) + p.pixels.astype(">u2").tobytes()
    if fmt != "PNG":
        raise ImageError(f"{fmt} cannot keep 16-bit samples")
    pixels = imagecodecs.png_encode(p.pixels, level=6)
    shell = encode_image(Image.new("RGB", (p.width, p.height)), "PNG", md)
    return swap_png_pixels(shell, pixels)
