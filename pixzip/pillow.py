"""The Pillow plugin: ``import pixzip.pillow``, and Pillow opens and saves .pxz files.

    import pixzip.pillow                    # registers "PXZ" (.pxz, image/x-pixzip)
    from PIL import Image

    with Image.open("photo.pxz") as im:     # reads the header only: size, mode, info
        print(im.size, im.mode, im.info["pxz_payload"])
        im.load()                           # decodes (a PixzipError that is also an OSError if it cannot)
    im.save("copy.pxz", level=9)

``Image.open`` reads the header at once and decodes on ``load()``, as
Pillow's own formats do (through a Python decoder registered with Pillow,
which gets the whole file).  Every mode pixzip keeps comes back as it was
saved: 1, L, LA, P (its palette, in its order, and its transparency set at
open), RGB, RGBA and I;16.  16-bit RGB has no Pillow mode: opening it
raises an ``ImageError`` that says to read it with ``pixzip.decompress``
(a uint16 array).  ``info`` holds the metadata under Pillow's keys
(``icc_profile``, ``exif``, ``xmp``, ``dpi``, ``transparency``, and PNG text
under its own keys, also in ``im.text``), and what the archive itself says
under keys of its own:

    pxz_version        the container format version (1, 2, ...)
    pxz_payload        what coded the pixels: "network", "mixer+network", "mixer", "raw" or "deflate";
                       a format-3 file's sections' codings, joined ("mixer+network, mixer")
    pxz_model          the model's name ("" when the payload needs no model)
    pxz_source_format  the format of the image the archive was made from ("PNG", "TIFF", ...; None if unknown)

``save`` takes ``level`` (1, 6 or 9), ``model``, ``method`` and ``payload``
as ``pixzip.compress`` does, ``strip`` (keep no metadata), ``options`` (a
``pixzip.Options``), and Pillow's ``icc_profile``, ``exif``, ``xmp`` and
``dpi``, which replace the image's own.  As with Pillow's other formats
of one image, ``save`` writes the current frame, and ``save_all=True``
refuses an image of several frames by name.  The metadata of the image
(``info``) is kept, and an image opened from a .pxz file keeps its original
format through a re-save.

Importing this module registers the format (``register_pxz_opener``, named
as pillow-heif's ``register_heif_opener``); calling it again sets the
options every later ``Image.open`` decodes with.
"""
from __future__ import annotations

import io
from dataclasses import replace
from typing import IO, Any, NamedTuple

from PIL import Image, ImageFile, ImagePalette

from . import errors
from .codec import api, planes
from .codec.coders import payload_name
from .codec.format import container, picture
from .codec.format.metadata import Metadata, from_chunks, from_pil
from .codec.network.registry import ModelLike
from .errors import PixzipError

FORMAT = "PXZ"
EXTENSION = ".pxz"
MIME = "image/x-pixzip"
_DECODER = "pxz"


class PillowError(PixzipError, OSError):
    """What the plugin raises for a .pxz file it cannot open, load or save:
    pixzip's one-line message (a PixzipError of the same kind as pixzip's own:
    ``CorruptError`` below is a ``pixzip.errors.CorruptError``) and an
    OSError, as Pillow raises for every broken image file, so that code
    written for Pillow (``except OSError``) catches it too."""


class FormatError(errors.FormatError, PillowError):
    """Not a .pxz file this pixzip reads (made by a newer one, damaged header)."""


class TruncatedError(errors.TruncatedError, PillowError):
    """The file ends before its header or payload does."""


class UnknownModelError(errors.UnknownModelError, PillowError):
    """The file names a model that is not installed."""


class ModelFileError(errors.ModelFileError, PillowError):
    """The model the file needs cannot be used."""


class LimitError(errors.LimitError, PillowError):
    """The image is over the pixel or memory limit."""


class CorruptError(errors.CorruptError, PillowError):
    """The payload does not decode to the pixels it was made from."""


class ImageError(errors.ImageError, PillowError):
    """An image pixzip cannot keep (saving), or one Pillow has no mode for (opening)."""


_AS_PILLOW: dict[type[PixzipError], type[PillowError]] = {
    errors.TruncatedError: TruncatedError, errors.FormatError: FormatError,
    errors.UnknownModelError: UnknownModelError, errors.ModelFileError: ModelFileError,
    errors.LimitError: LimitError, errors.CorruptError: CorruptError, errors.ImageError: ImageError}


def _pillow_error(e: PixzipError, where: str | bytes | None) -> PillowError:
    """The plugin's error of the same kind as ``e``, its message led by the file's name when there is one."""
    kind = next((_AS_PILLOW[k] for k in type(e).__mro__ if k in _AS_PILLOW), PillowError)
    name = where.decode(errors="replace") if isinstance(where, bytes) else where
    return kind(f"{name}: {e}" if name else str(e))


# what every later Image.open decodes with (register_pxz_opener)
_decoding: dict[str, Any] = {"model": None, "max_memory": None}


def _accept(prefix: bytes) -> bool:
    return prefix[:len(container.MAGIC)] == container.MAGIC


def _size_of(fp: IO[bytes]) -> int | None:
    try:
        size = fp.seek(0, io.SEEK_END)
        fp.seek(0)
        return size
    except (OSError, ValueError):
        return None


class PxzImageFile(ImageFile.ImageFile):
    """A .pxz file opened by Pillow: the header read, the pixels decoded on ``load()``."""

    format = FORMAT
    format_description = "pixzip lossless image"

    def _open(self) -> None:
        assert self.fp is not None
        if not _accept(self.fp.read(len(container.MAGIC))):
            raise SyntaxError("not a .pxz file")
        self.fp.seek(0)
        try:
            header, head = container.read(self.fp, size=_size_of(self.fp), payload=False)
            md = from_chunks(header.chunks, header.source_format)
            palette, palette_mode, transparency = planes.from_chunks(header.mode, header.chunks)
            if header.mode == "RGB;16":
                raise errors.ImageError("a 16-bit RGB image, which has no Pillow mode: read it as a uint16 "
                                        "(H, W, 3) array with pixzip.decompress")
        except PixzipError as e:
            raise _pillow_error(e, self.filename) from e
        self._mode = header.mode
        self._size = (header.width, header.height)
        if header.mode == "P":
            self.palette = ImagePalette.raw(palette_mode, palette)
            self.palette.mode = palette_mode
        self.info.update(_info(header, md))
        if transparency is not None:
            self.info["transparency"] = transparency
        self.text = dict(md.text)
        length = len(head) + header.payload_length + 4          # the file ends with the pixels' CRC32
        self.tile = [ImageFile._Tile(_DECODER, (0, 0) + self.size, 0, (_Load(
            header.mode, length, _decoding["model"], _decoding["max_memory"], self.filename),))]


def _info(header: container.Header, md: Metadata) -> dict[str, Any]:
    """The ``info`` of an archive: its metadata under Pillow's keys, PNG text under its own, and the archive's."""
    info: dict[str, Any] = dict(md.text)
    info.update({"pxz_version": header.version, "pxz_payload": payload_name(header),
                 "pxz_model": header.model_name, "pxz_source_format": md.format})
    for key, value in (("icc_profile", md.icc), ("exif", md.exif), ("xmp", md.xmp), ("dpi", md.dpi)):
        if value is not None:
            info[key] = value
    return info


class _Load(NamedTuple):
    """What the decoder needs besides the file: what the header said, and how to decode."""
    mode: str
    length: int                 # the whole file's bytes, as its header declares
    model: ModelLike
    max_memory: int | None
    where: str | bytes


class _PxzDecoder(ImageFile.PyDecoder):
    """Decodes a whole .pxz file into the image: given the file at its start
    (``load``), or its bytes in pieces until the length its header declares
    (``ImageFile.Parser``, which feeds it without a file)."""

    _pulls_fd = True
    _held = b""

    def decode(self, buffer: Any) -> tuple[int, int]:
        (load,) = self.args
        if self.fd is not None:
            data = self.fd.read()
        else:
            self._held += bytes(buffer)
            if len(self._held) < load.length and buffer:
                return len(buffer), 0
            data = self._held
        assert self.im is not None
        try:
            pic, _ = api.decompress_picture(data, load.model, max_memory=load.max_memory)
            if pic.mode != load.mode or (pic.width, pic.height) != self.im.size:
                raise errors.CorruptError(f"the file changed since it was opened ({load.mode} {self.im.size[0]}x"
                                          f"{self.im.size[1]}, now {pic.mode} {pic.width}x{pic.height})")
            decoded = picture.to_pil(pic)
        except PixzipError as e:
            raise _pillow_error(e, load.where) from e
        self.set_as_raw(decoded.tobytes(), decoded.mode)
        return -1, 0


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    """``im.save(..., format="PXZ")``: the .pxz file of ``im``, coded as ``im.encoderinfo`` asks."""
    ask = im.encoderinfo
    options = ask.get("options") or api.Options()
    if ask.get("strip"):
        options = replace(options, strip=True)
    try:
        data = api.compress(im, ask.get("model"), level=ask.get("level"), method=ask.get("method"),
                            payload=ask.get("payload", "auto"), metadata=_metadata(im, ask), options=options)
    except PixzipError as e:
        raise _pillow_error(e, filename) from e
    fp.write(data)


def _save_all(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    """``save_all=True``: a .pxz file holds one image, so an image of several frames (or with
    ``append_images``) is refused by name, never cut to its first."""
    frames = getattr(im, "n_frames", 1) + len(im.encoderinfo.get("append_images", ()))
    if frames > 1:
        raise _pillow_error(errors.ImageError(f"an image of {frames} frames: a .pxz file holds one image "
                                              f"(save each frame to its own file)"), filename)
    _save(im, fp, filename)


def _metadata(im: Image.Image, ask: dict[str, Any]) -> Metadata:
    """The metadata kept: the image's, with Pillow's save keywords in place of its own; an image opened from
    a .pxz file keeps the format its archive was made from."""
    md = from_pil(im)
    if im.format == FORMAT:
        md = replace(md, format=im.info.get("pxz_source_format"))
    exif = ask.get("exif", md.exif)
    if isinstance(exif, Image.Exif):
        exif = exif.tobytes()
    xmp = ask.get("xmp", md.xmp)
    dpi = ask.get("dpi", md.dpi)
    return replace(md, icc=ask.get("icc_profile", md.icc) or None, exif=exif or None,
                   xmp=(xmp.encode("utf-8") if isinstance(xmp, str) else xmp) or None,
                   dpi=(float(dpi[0]), float(dpi[1])) if dpi else None)


def register_pxz_opener(*, model: ModelLike = None, max_memory: int | None = None) -> None:
    """Register .pxz with Pillow: ``Image.open`` reads it and ``Image.save``
    writes it (format "PXZ", extension .pxz).  ``model`` (a name or .pxm
    path) decodes files whose model is not on the search path;
    ``max_memory`` (bytes) overrides pixzip's memory limit.  Called on
    import with neither; call it again to change them for later opens."""
    _decoding.update(model=model, max_memory=max_memory)
    Image.register_open(FORMAT, PxzImageFile, _accept)
    Image.register_decoder(_DECODER, _PxzDecoder)
    Image.register_save(FORMAT, _save)
    Image.register_save_all(FORMAT, _save_all)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME)


register_pxz_opener()
