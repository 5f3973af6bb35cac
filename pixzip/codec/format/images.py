"""Reading and writing images for the codec: 8-bit L and RGB, with their metadata.

Anything pixzip cannot keep exactly is refused by name, never converted:
other modes (RGBA, P), samples that are not exactly 8-bit (16-bit RGB,
which Pillow reads as 8-bit RGB, a PPM whose maxval is not 255: the file's
own header says, ``source_check``), a transparent colour, several frames.
Writing checks the written bytes: they must read back to the same pixels
and carry the metadata asked for, else the format is refused by name.
"""
from __future__ import annotations

import io
import os
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ...errors import ImageError, describe_os_error
from .container import MODE_CHANNELS, MODES
from .metadata import Metadata, encode_image, from_pil, missing
from .picture import DESCRIPTION, Picture
from .source_check import check as check_source

LOSSY_FORMATS = {"JPEG", "MPO", "GIF"}      # GIF: a palette of 256 colours at most


def as_array(image) -> np.ndarray:
    """An (H, W, C) uint8 array, C in {1, 3}, from an array, a PIL image or a path.
    Other modes are refused, never converted silently."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if isinstance(image, Image.Image):
        return _from_pil(image, "image")
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise ImageError(f"image array must be uint8, not {a.dtype}")
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in MODES:
        raise ImageError(f"image array must be (H, W), (H, W, 1) or (H, W, 3), not {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageError("image is empty")
    return np.ascontiguousarray(a)


def _from_pil(im: Image.Image, where: str) -> np.ndarray:
    if im.mode not in MODE_CHANNELS:
        raise ImageError(f"{where}: unsupported image mode {im.mode} (pixzip handles 8-bit L and RGB)")
    if "transparency" in im.info:
        raise ImageError(f"{where}: has a transparent colour (tRNS), which pixzip cannot keep "
                         f"(it handles 8-bit L and RGB without alpha)")
    if getattr(im, "n_frames", 1) > 1:
        raise ImageError(f"{where}: has {im.n_frames} frames; pixzip keeps single images")
    a = np.asarray(im, dtype=np.uint8)
    return np.ascontiguousarray(a[..., None] if a.ndim == 2 else a)


def _open(path: Path, data: bytes) -> tuple[Image.Image, Metadata]:
    """The loaded image of a file's bytes and its metadata (the file's own
    structure checked first: its bit depth, the chunks Pillow reads past)."""
    try:
        im = Image.open(io.BytesIO(data))
        try:
            source = check_source(data, im.format, im.tile, str(path))
            im.load()
        except BaseException:
            im.close()
            raise
        return im, from_pil(im, source)
    except ImageError:
        raise
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        raise ImageError(describe_os_error(path, e)) from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path}: {e}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        if not data:
            raise ImageError(f"{path}: empty file") from None
        if "MAX_TEXT_CHUNK" in str(e):
            raise ImageError(f"{path}: {_too_large(data)} is over the 1 MB that Pillow reads in one PNG chunk; "
                             f"pixzip cannot read this image (keep it as it is, or embed a smaller "
                             f"profile or text)") from None
        raise ImageError(f"{path}: not a readable image ({e.__class__.__name__})") from None


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
    """The pixels and metadata of an image file (or of its bytes, ``data``,
    with ``path`` naming it in messages)."""
    path = Path(path)
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ImageError(describe_os_error(path, e)) from None
    im, md = _open(path, data)
    with im:
        return _from_pil(im, str(path)), md


def to_pil(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels, MODES[pixels.shape[2]])


def format_for(path) -> str | None:
    """Pillow's format name for a file name's suffix."""
    return Image.registered_extensions().get(Path(path).suffix.lower())


# the formats pixzip writes when an archive's original format picks one (stdout,
# a name without an image suffix), with their usual suffixes; any other is PNG
WRITTEN_FORMATS = {"PNG": ".png", "TIFF": ".tif", "WEBP": ".webp", "BMP": ".bmp", "PPM": ".ppm"}


def written_format(fmt: str | None) -> str:
    """The format to write an image whose original format was ``fmt``: it,
    if pixzip writes it on purpose (``WRITTEN_FORMATS``), else PNG; never
    one of Pillow's other writers (DDS, ICO, EPS...)."""
    return fmt if fmt in WRITTEN_FORMATS else "PNG"


def suffix_for(fmt: str | None) -> str:
    """The usual suffix of a format (".png" for none or an unknown one)."""
    return WRITTEN_FORMATS[written_format(fmt)]


def encode_file(pixels: np.ndarray, fmt: str, md: Metadata, where: str) -> bytes:
    """The bytes of an image file in format ``fmt`` holding ``pixels`` and
    ``md``, read back and checked: the same pixels and every item of ``md``,
    else an ImageError naming what the format cannot keep."""
    if fmt in LOSSY_FORMATS:
        raise ImageError(f"{where}: {fmt} is lossy; choose a lossless format such as .png")
    Image.init()       # Pillow registers its writers lazily: a fresh process has none yet
    if fmt not in Image.SAVE:
        raise ImageError(f"{where}: Pillow cannot write {fmt} files")
    try:
        data = encode_image(to_pil(pixels), fmt, md)
        back, back_md = _open(Path(where), data)
        with back:
            same = back.mode == MODES[pixels.shape[2]] and np.array_equal(_from_pil(back, where), pixels)
            lost = missing(md, back_md)
    except ImageError:
        raise
    except Exception as e:  # Pillow's writers raise several kinds
        raise ImageError(f"{where}: cannot write {fmt} ({e.__class__.__name__}: {e})") from None
    if not same:
        raise ImageError(f"{where}: {fmt} does not keep these pixels exactly; choose .png")
    if lost:
        raise ImageError(f"{where}: {fmt} cannot keep {' and '.join(lost)}; choose .png, or drop them with --strip")
    return data


def read_picture_file(path, data: bytes | None = None) -> tuple[Picture, Metadata]:
    """The picture and metadata of an image file (or of its bytes, ``data``,
    with ``path`` naming it in messages)."""
    pixels, md = read_image_file(path, data)
    return Picture(pixels, MODES[pixels.shape[2]]), md


def encode_picture_file(p: Picture, fmt: str, md: Metadata, where: str) -> bytes:
    """The bytes of an image file in format ``fmt`` holding the picture and
    ``md``, read back and checked (see ``encode_file``)."""
    if not p.plain:
        raise ImageError(f"{where}: cannot write {DESCRIPTION[p.mode]} images yet")
    return encode_file(p.pixels, fmt, md, where)
