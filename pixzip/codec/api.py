"""compress / decompress: an image through the integer network and the coder
into a .pxz container, and back, bit-exactly.

A plain 8-bit L or RGB image is one payload in format 2; any other picture
(alpha, palette, 1-bit, 16-bit, a transparent colour) is cut into sections
in format 3 (``planes``), each group of 8-bit planes coded as an image is.

The compiled kernels (numba) load on the first network payload, not at
import: reading a header, or a raw or deflated payload, never needs them.
"""
from __future__ import annotations

import functools
import math
import os
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, Callable, TypeVar, Union, cast

import numpy as np
from PIL import Image

from ..errors import CorruptError, ImageError, LimitError
from . import coders, planes
from .format import container, picture
from .format.container import Header
from .format.images import MODES, as_array, read_picture_file
from .format.metadata import CHUNK_NAMES, Metadata, format_id, from_chunks, from_pil, to_chunks
from .format.picture import Picture
from .levels import MIXER, MIXER_NETWORK, Plan, choose, new_name, tries_every_way
from .mixer.with_network import MIXER_PARTS
from .network import rangecoder, registry
from .network.modelfile import ModelFile
from .network.registry import ModelLike, load_model

Progress = Callable[[int], None]
ImageLike = Union[np.ndarray, Image.Image, str, os.PathLike, Picture]  # pixels, a PIL image, an image file
Source = Union[bytes, bytearray, memoryview, str, os.PathLike, BinaryIO]   # a .pxz file's bytes, path or stream
_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Options:
    """How ``compress`` codes, beyond what it makes.

    ``strip``: drop the metadata (ICC profile, EXIF, ...) but the original
    format.  ``strip_height`` > 0 codes independent strips of that many rows,
    which the decoder runs in lockstep: more pixels per step, at a small
    cost in size.  ``parts``: the mixer with a network codes the image's
    columns in that many parts (1..16), each with its own state, which the
    decoder codes at once, one per core (coder 3); None: the coder's own
    choice, one for the mixer versions 3 to 5 (``-9``'s colour images: the
    decoder runs the network on one core and the mixer on the other), else
    two.
    Two parts made the mixer 1's files 0.05% larger on photos, 1.4% on
    Kodak, and the mixer 3's 0.30% on photos-train images.  ``max_memory`` (bytes) overrides
    ``memory_limit``: a coded payload whose decoding would need more is
    refused (LimitError), never made.  ``strip_rows`` (the encoder's
    working-set size), ``device`` (see ``enc_stream.encode_device``) and
    ``progress(n)`` (called as pixels are coded) never change the file."""
    strip: bool = False
    strip_height: int = 0
    parts: int | None = None
    max_memory: int | None = None
    strip_rows: int | None = None
    device: str = "auto"
    progress: Progress | None = None


@dataclass(frozen=True)
class Stats:
    """What ``compress_with_stats`` measured in the same pass: the payload
    chosen (``payload``: "network", "mixer+network", "mixer", "raw" or
    "deflate"); the ideal code length of the coded payload (``ideal_bits``:
    the network's cross-entropy, what ``ideal_bits`` returns, or the
    mixer's; None when none was coded); with the mixer and a network, the
    network's own (``network_bits``); and the seconds spent measuring them
    (``ideal_s``), for timings that leave them out."""
    payload: str
    ideal_bits: float | None = None
    network_bits: float | None = None
    ideal_s: float = 0.0


def _old_keywords(f: _F) -> _F:
    """``compress`` as called before ``Options``: an Options field as a
    keyword (``strip_height=8``) or a ``stats`` dict to fill still works,
    with a DeprecationWarning; the dict gets the keys it got then."""
    @functools.wraps(f)
    def old_or_new(image, model=None, **kw):
        old = {k: kw.pop(k) for k in list(kw) if k in Options.__dataclass_fields__}
        stats = kw.pop("stats", None)
        if not old and stats is None:
            return f(image, model, **kw)
        named = ", ".join([*old, *(["stats"] if stats is not None else [])])
        warnings.warn(f"compress's keywords {named} are now Options fields (options=pixzip.Options(...)), and "
                      f"compress_with_stats returns the stats; the old keywords will be removed in a later version",
                      DeprecationWarning, stacklevel=2)
        if old:
            kw["options"] = replace(kw.get("options") or Options(), **old)
        if stats is None:
            return f(image, model, **kw)
        data, measured = compress_with_stats(image, model, **kw)
        measured = asdict(measured) if measured.ideal_bits is not None else {"payload": measured.payload}
        stats.update({k: v for k, v in measured.items() if v is not None})
        return data
    return cast(_F, old_or_new)      # the signature mypy checks callers against is compress's own


@_old_keywords
def compress(image: ImageLike, model: ModelLike = None, *, level: int | None = None, method: str | None = None,
             payload: str = "auto", metadata: Metadata | None = None, options: Options | None = None) -> bytes:
    """A .pxz file (bytes) of an image: a numpy array (``picture.from_array``:
    uint8 gray, gray and alpha, RGB, RGBA; uint16 gray or RGB; bool 1-bit),
    a PIL image (any mode ``picture.MODES`` names), a path or a ``Picture``.
    Plain 8-bit gray and RGB are written as before (format 2); every other
    picture in format 3, its colour planes coded as those are, its alpha,
    low bytes or palette indices by the mixer alone (or stored).

    ``level`` (1, 6 or 9; ``levels.LEVELS``; None: 6) chooses the coding and
    its model; ``method`` ("network": the network alone, "mixer+network":
    the context mixer with the network's counts as an input, "mixer": the
    mixer alone) forces a coding, with the level's model when ``level`` is
    given, else with -9's; ``model`` (a name, alias, .pxm path or model)
    overrides the level's (and a level without one then mixes with it).
    ``payload`` "auto" stores the pixels raw or deflated (PNG's filtered
    rows) whenever that is smaller than the coded payload, so that no file
    is larger than its raw pixels plus the header; "coded" forces the coded
    payload, a method's name that coding, "raw" or "deflate" that stored
    payload (``levels.choose``).  A grayscale image over an RGB network (the
    shipped networks are RGB) is coded by the mixer 2 over the network's
    counts of its first colour, the image seen as (L, L, L) (coder 7: -9's
    coding of gray).  Otherwise, when the level chose a network that codes
    other colours than the image's, the mixer alone codes it; a model,
    method or coded payload asked for by name is refused instead.

    The metadata of a path or a PIL image (ICC profile, EXIF, XMP,
    resolution, PNG text, the file format) is kept, unless
    ``options.strip``; ``metadata`` gives it for an array.  ``options``:
    see ``Options``.  The old name "mixed" of "mixer+network", Options'
    fields as keywords and a ``stats`` dict still work, with a
    DeprecationWarning."""
    return _compress(image, choose(level, model, method, payload), metadata, options or Options())[0]


def compress_with_stats(image: ImageLike, model: ModelLike = None, *, level: int | None = None,
                        method: str | None = None, payload: str = "auto", metadata: Metadata | None = None,
                        options: Options | None = None) -> tuple[bytes, Stats]:
    """``compress``, and what it measured in the same pass (``Stats``)."""
    return _compress(image, choose(level, model, method, payload), metadata, options or Options(), measure=True)


def _compress(image: ImageLike, plan: Plan, metadata: Metadata | None, options: Options,
              measure: bool = False) -> tuple[bytes, Stats]:
    if not 0 <= options.strip_height <= container.MAX_STRIP_HEIGHT:
        raise ValueError(f"strip_height must be 0..{container.MAX_STRIP_HEIGHT} rows, not {options.strip_height}")
    pic, md = _picture_and_metadata(image, metadata, options.strip)
    chunks = list(to_chunks(md)) + ([(container.FLAT_CHUNK, b"")] if pic.flat else [])
    container.check_chunks(chunks, CHUNK_NAMES)    # before the coding, which may take minutes
    h, w, c = pic.pixels.shape
    if h * w > container.MAX_PIXELS:        # never made: the decoder would refuse it
        raise LimitError(f"image size {w}x{h} is outside the limit of {container.MAX_PIXELS:,} pixels")
    if not pic.plain:
        return _compress_picture(pic, plan, md, chunks, options, measure)
    pixels = pic.pixels
    net = None
    if plan.method is not None and coders.making(plan.method, plan.mixer).uses_network:
        net = load_model(plan.model)
        plan = plan.for_image(c, net.colors, net.name)
    made = _payloads(pixels, plan, net, options, measure)
    # the smallest file wins (the first of equal sizes): a network payload's header also names its model
    model_bytes = len(net.name) + 8 if net is not None else 0
    coder, coded = min(made, key=lambda m: len(m[1].data) + (model_bytes if m[0].uses_network else 0))
    name, mhash = _named(net if coder.uses_network else None)
    header = Header(name, mhash, h, w, MODES[c], options.strip_height if coder.uses_network else 0,
                    len(coded.data), kind=coder.kind, coder=coder.coder_id, chunks=tuple(chunks),
                    source_format=format_id(md))
    first = made[0][1]          # the coded payload when there is one
    stats = Stats(coders.payload_name(coder), first.ideal_bits, first.network_bits, first.ideal_s)
    return container.pack(header, coded.data, container.pixels_crc(pixels)), stats


def _named(net: ModelFile | None) -> tuple[str, bytes]:
    """The model name and hash prefix a header names: the network's, or none."""
    return (net.name, bytes.fromhex(net.sha256[:16])) if net is not None else ("", b"")


def _picture_and_metadata(image: ImageLike, metadata: Metadata | None, strip: bool) -> tuple[Picture, Metadata]:
    """The picture of an image, and the metadata kept: ``metadata`` if given,
    else the image's own (a path's or a PIL image's); only the format if ``strip``."""
    if isinstance(image, (str, os.PathLike)):
        pic, found = read_picture_file(image)
    elif isinstance(image, Image.Image):
        pic, found = picture.from_pil(image), from_pil(image)
    elif isinstance(image, Picture):
        pic, found = image, Metadata()
    else:
        pic, found = picture.from_array(image), Metadata()
    md = metadata if metadata is not None else found
    return pic, md.stripped() if strip else md


def _compress_picture(pic: Picture, plan: Plan, md: Metadata, chunks: list, options: Options,
                      measure: bool) -> tuple[bytes, Stats]:
    """A format-3 file of a picture that is not plain 8-bit L or RGB: its
    sections (``planes.encode``), each group of planes coded by the plan as
    an image of its own is (``_payloads``), the smallest kept."""
    net = None
    if plan.method is not None and coders.making(plan.method, plan.mixer).uses_network:
        net = load_model(plan.model)
        main = 3 if pic.mode == "P" else planes.groups(pic, container.SAMPLES)[0][1]   # P: its colours
        plan.for_image(main, net.colors, net.name)     # a model, method or payload named for other colours: refused
    made: list[tuple[coders.Coder, coders.Coded]] = []

    def code(group: np.ndarray, main: bool) -> tuple[int, int, bytes]:
        method = plan.method if main or plan.method is None else MIXER
        group_plan = replace(plan, method=method) if method != plan.method else plan
        if net is not None and method is not None and coders.making(method, plan.mixer).uses_network \
                and net.colors != group.shape[2]:
            group_plan = group_plan.for_image(group.shape[2], net.colors, net.name, main)
        coder, coded = min(_payloads(group, group_plan, net if group_plan.method != MIXER else None, options,
                                     measure), key=lambda m: len(m[1].data))
        made.append((coder, coded))
        return coder.kind, coder.coder_id, coded.data

    def deep(pixels: np.ndarray) -> bytes:
        return coders.DEEP.encode(pixels, None, coders.Job()).data

    # -9 also weighs the 16-bit coder against the bytes split at the level: on noisy 16-bit photos made
    # here it gave the same size or 0.03-0.6% more, for twice the encoding time (it codes a split of its
    # own too); it won by 5% only on a smooth synthetic surface
    with_deep = pic.mode in picture.SIXTEEN_BIT and coders.Deep.available() and tries_every_way(plan)
    layout, sections = planes.encode(pic, code, deep if with_deep else None, palette_colours=tries_every_way(plan))
    uses_network = any(s.kind == container.NETWORK for s in sections)
    name, mhash = _named(net if uses_network else None)
    h, w = pic.height, pic.width
    header = Header(name, mhash, h, w, pic.mode, options.strip_height if uses_network else 0,
                    sum(len(s.data) for s in sections), container.VERSION_3, chunks=tuple(
                        planes.picture_chunks(pic) + chunks), source_format=format_id(md), layout=layout,
                    sections=tuple(s.section for s in sections))
    chosen = {id(s.data) for s in sections}
    ideal = [c.ideal_bits for _, c in made if id(c.data) in chosen]     # of the sections kept, not every way tried
    stats = Stats(coders.payload_name(header), sum(ideal) if measure and ideal and None not in ideal else None)
    payload = b"".join(s.data for s in sections)
    _checked_sections(header, payload, net, options.max_memory, making=True)
    return container.pack_picture(header, payload, container.pixels_crc(pic.pixels)), stats


def _payloads(pixels: np.ndarray, plan: Plan, net: ModelFile | None, options: Options,
              measure: bool) -> list[tuple[coders.Coder, coders.Coded]]:
    """(coder, payload) of the plan's coded payload, first (refused before
    coding when its decoding would need more than the memory limit), and of
    its stored ones."""
    h, w, c = pixels.shape
    coder = coders.making(plan.method, plan.mixer_for(c), plan.gray) if plan.method is not None else None
    parts = options.parts if options.parts is not None else getattr(coder, "parts", MIXER_PARTS)
    job = coders.Job(options.strip_height, parts, options.strip_rows, options.device, options.progress, measure)
    made = []
    if coder is not None:
        frame = coders.Frame(h, w, c, options.strip_height if coder.uses_network else 0,
                             parts if coder.method == MIXER_NETWORK else 0)
        _refuse_over_limit(coder, frame, net, options.max_memory, making=True)
        made.append((coder, coder.encode(pixels, net if coder.uses_network else None, job)))
    return made + [(coders.STORED[k], coders.STORED[k].encode(pixels, None, job)) for k in plan.stored]


def warm_up(model: ModelLike = None, method: str = "network", level: int | None = None) -> None:
    """Load (or compile) the kernels with a 2x2 round trip through ``method``
    (the automatic choice would store so small an image raw, and compile
    nothing), so that timings that follow measure the coding alone;
    ``level``: whose mixer version (None: the default level's)."""
    method = new_name(method)
    net = None if method == MIXER else load_model(model)
    c = net.colors if net is not None else 3     # one compiled mixer serves every colour mode
    decompress(compress(np.zeros((2, 2, c), np.uint8), net, level=level, payload=method), net)


def ideal_bits(image: ImageLike, model: ModelLike = None) -> float:
    """The integer model's cross-entropy of an image in bits: the ideal code
    length its payload approaches (compiled kernels, like ``compress``)."""
    pixels = as_array(image)
    from .network.enc_stream import symbols_and_counts
    net = load_model(model)
    return sum(rangecoder.cross_entropy_bits(sym, counts) for sym, counts, _ in symbols_and_counts(net, pixels))


def read_header(data: bytes) -> Header:
    """The header of a .pxz file, checked (magic, version, flags, size limit)."""
    return container.parse(data)[0]


def header_metadata(header: Header) -> Metadata:
    """The metadata a file carries (ICC profile, EXIF, ..., original format)."""
    return from_chunks(header.chunks, header.source_format)


DEFAULT_MEMORY = 2 << 30     # the most a decoder may take unless asked for more by name: a 24 Mpx photo
                             # (6000x4000) needs 1.58 GB at -9 by decode_memory, 1.49 GB at the default
                             # level and 0.85 GB at -1, a 768x512 photo at most 267 MB; 512 MiB refused every
                             # 12 Mpx photo (0.56-0.88 GB).  zstd's default is 128 MiB, above all that its
                             # default levels make; the same rule here: above what photos need
MEMORY_FLOOR = 256 << 20     # under it, a small image may take at most this much
MEMORY_PER_BYTE = 512        # or this many bytes per byte of raw pixels (whole Kodak images in strips of
                             # 1 row take 180, one strip 19, with the default model): a 62-byte claim of a
                             # 1-pixel-wide image in thousands of strips is refused, not given 512 MB
MEMORY_ENV = "PIXZIP_MAX_MEMORY"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes of a size such as "512M", "2G", "1.5G", "64K" or "1000000"
    (binary units, K = 1024; a trailing "B" or "iB" is allowed): a ValueError
    for anything else, or a size under one byte."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in _UNITS else ""
    number = float(t[:len(t) - len(unit)])     # ValueError for "", "G", "lots"
    if not math.isfinite(number) or number * _UNITS[unit] < 1:
        raise ValueError(f"{text!r} is not a size")
    return int(number * _UNITS[unit])


def _show(n: int) -> str:
    """A size the way --memory takes it, rounded up: 3G, 700M."""
    return f"{-(-n // (1 << 30))}G" if n > 1 << 30 else f"{max(1, -(-n // (1 << 20)))}M"


def memory_limit(max_memory: int | None = None, n_subpixels: int | None = None) -> int:
    """The most bytes the decoder may allocate for an image: ``max_memory``,
    else $PIXZIP_MAX_MEMORY (e.g. "2G"), else DEFAULT_MEMORY, an absolute
    bound whatever the claim; for an image of ``n_subpixels``, the default
    is also at most max(MEMORY_FLOOR, MEMORY_PER_BYTE x n_subpixels).  A
    file whose decoding needs more is refused before anything is allocated
    (as zstd refuses a frame over its memory limit), and ``compress``
    refuses to make one."""
    if max_memory is not None:
        return int(max_memory)
    env = os.environ.get(MEMORY_ENV)
    if env:
        try:
            return parse_size(env)
        except ValueError:
            raise LimitError(f"${MEMORY_ENV}={env!r} is not a size such as 2G") from None
    if n_subpixels is None:
        return DEFAULT_MEMORY
    return min(DEFAULT_MEMORY, max(MEMORY_FLOOR, MEMORY_PER_BYTE * n_subpixels))


def over_limit(what: str, need: int, limit: int, fix: str = "") -> LimitError:
    """The one-line refusal of ``what`` (e.g. "decoding this 4096x4096
    image needs"), ``need`` bytes, over the memory limit."""
    more = _show(max(need, limit + 1))
    return LimitError(f"{what} {_human(need)}, over the limit of {_human(limit)} ({fix}raise the limit with "
                      f"--memory {more}, or set ${MEMORY_ENV}={more})")


def _human(n: int) -> str:
    return f"{n >> 20} MB" if n >= 1 << 20 else f"{-(-n >> 10)} KB"


def _refuse_over_limit(coder: coders.Coder, frame: coders.Frame, net: ModelFile | None, max_memory: int | None,
                       payload_bytes: int = 0, making: bool = False) -> None:
    """A LimitError when decoding ``frame`` with ``coder`` needs more than
    ``memory_limit``: a file never made (``making``), or refused before
    anything is allocated."""
    h, w, c = frame.height, frame.width, frame.channels
    limit = memory_limit(max_memory, h * w * c)
    need = coder.decode_memory(frame, net, payload_bytes)
    if need <= limit:
        return
    strips = "" if coder.stored else f" in strips of {frame.strip_height} rows" if frame.strip_height else \
        " in one strip"
    if making:
        raise over_limit(f"decoding a {w}x{h} image{strips} would need", need, limit,
                         "use taller strips (--strip-height), or ")
    raise over_limit(f"decoding this {w}x{h} image{strips} needs", need, limit)


def model_for(header: Header, model: ModelLike = None) -> ModelFile:
    """The model a network payload needs: the one given (a model, a name or a
    .pxm path), checked against the file's name and hash, or the installed
    one with that name and hash."""
    if model is None:
        return registry.find(header.model_name, header.model_hash)
    where = f"{model}" if not isinstance(model, ModelFile) else "the given model"
    net = load_model(model)
    registry.check(net, header.model_name, header.model_hash, where)
    return net


def _read_source(src: Source) -> bytes | memoryview:
    """The bytes of a .pxz file given as bytes, a path or a binary file object."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        return src
    if isinstance(src, (str, os.PathLike)):
        from ..errors import describe_os_error
        try:
            return Path(src).read_bytes()
        except OSError as e:
            raise ImageError(describe_os_error(Path(src), e)) from None
    if hasattr(src, "read"):
        return src.read()
    raise TypeError(f"a .pxz file must be bytes, a path or a binary file object, not {type(src).__name__}")


def is_pxz(data: bytes) -> bool:
    """Whether bytes start as a .pxz file does: the magic and a format version
    this pixzip reads (1, 2 or 3).  The rest is checked only when it is read."""
    head = bytes(data[:len(container.MAGIC) + 1])
    return head[:len(container.MAGIC)] == container.MAGIC and len(head) > 4 and head[4] in container.READS


def decompress(src: Source, model: ModelLike = None, progress: Progress | None = None,
               max_memory: int | None = None, max_pixels: int = container.MAX_PIXELS) -> np.ndarray:
    """The samples of a .pxz file (bytes, a path or a binary file object), as
    ``picture.to_array`` gives them: (H, W, C) uint8 for a plain image made
    from a file or a 3-D array, (H, W) for a 2-D array, uint16 for 16-bit,
    a palette image's indices (``decompress_picture`` gives its palette).
    ``model`` (a model, a name or a .pxm path) names the model a network
    payload needs, which is otherwise found by its name and hash on the
    search path.  ``max_memory`` (bytes) overrides ``memory_limit``, which
    every payload kind obeys; ``max_pixels`` the pixel limit
    (``container.MAX_PIXELS``, what the command line can write)."""
    return picture.to_array(decompress_picture(src, model, progress, max_memory, max_pixels)[0])


def decompress_with_metadata(src: Source, model: ModelLike = None, progress: Progress | None = None,
                             max_memory: int | None = None,
                             max_pixels: int = container.MAX_PIXELS) -> tuple[np.ndarray, Metadata]:
    """(samples, metadata) of a .pxz file (see ``decompress``)."""
    pic, md = decompress_picture(src, model, progress, max_memory, max_pixels)
    return picture.to_array(pic), md


def decompress_picture(src: Source, model: ModelLike = None, progress: Progress | None = None,
                       max_memory: int | None = None,
                       max_pixels: int = container.MAX_PIXELS) -> tuple[Picture, Metadata]:
    """(picture, metadata) of a .pxz file (see ``decompress``): the mode,
    samples, palette and transparency it was made from.  Before anything is
    allocated: a payload long enough for the image the header claims, and a
    decoder within the memory limit, for every section and in all."""
    header, payload, crc = container.parse(_read_source(src), max_pixels)
    md = header_metadata(header)
    flat = any(tag == container.FLAT_CHUNK for tag, _ in header.chunks)
    if header.version == container.VERSION_3:
        pic = _decode_picture(header, payload, model, progress, max_memory, flat)
        if container.pixels_crc(pic.pixels) != crc:
            raise CorruptError("checksum mismatch: the file is corrupt")
        return pic, md
    coder = coders.for_header(header)
    net = None
    if coder.uses_network:
        net = model_for(header, model)
        if not coder.model_fits(net.colors, header.channels):
            raise CorruptError("header colour mode does not match the model")
    frame = coder.frame(header, payload)
    if len(payload) < coder.min_payload_bytes(frame.n_subpixels, net):
        raise CorruptError(f"payload of {len(payload)} bytes is too short for a "
                           f"{header.width}x{header.height} image")
    _refuse_over_limit(coder, frame, net, max_memory, len(payload))
    pixels = coder.decode(payload, frame, net, progress)
    if container.pixels_crc(pixels) != crc:
        raise CorruptError("checksum mismatch: the file is corrupt")
    return Picture(pixels, header.mode, flat=flat and header.mode == "L"), md


def _decode_picture(header: Header, payload, model: ModelLike, progress: Progress | None,
                    max_memory: int | None, flat: bool) -> Picture:
    """A format-3 file's picture: every section checked (its coder's fewest
    bytes, and its memory with the planes' within the limit) before any is
    decoded."""
    net = model_for(header, model) if any(s.kind == container.NETWORK for s in header.sections) else None
    frames = _checked_sections(header, payload, net, max_memory)
    return planes.decode_picture(header, payload, net, frames, progress, flat)


def _checked_sections(header: Header, payload, net: ModelFile | None, max_memory: int | None,
                      making: bool = False) -> list:
    """``planes.section_frames``, and a LimitError when decoding them needs
    more than ``memory_limit``: a file never made (``making``), or refused."""
    frames, need = planes.section_frames(header, payload, net)
    h, w = header.height, header.width
    limit = memory_limit(max_memory, h * w * container.layout_planes(header.mode, header.layout))
    if need > limit:
        what = f"decoding a {w}x{h} {picture.DESCRIPTION[header.mode]} image would need" if making else \
            f"decoding this {w}x{h} {picture.DESCRIPTION[header.mode]} image needs"
        raise over_limit(what, need, limit)
    return frames
