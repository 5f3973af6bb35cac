"""compress / decompress: an image through the integer network and the coder
into a .pxz container, and back, bit-exactly.

The compiled kernels (numba) load on the first network payload, not at
import: reading a header, or a raw or deflated payload, never needs them.
"""
from __future__ import annotations

import math
import os
import time
from typing import Callable, Union

import numpy as np
from PIL import Image

from ..errors import CorruptError, LimitError, UnknownModelError
from .network import rangecoder as coder, registry
from .format import container, stored
from .format.container import Header
from .format.images import MODES, as_array, read_image_file
from .format.metadata import CHUNK_NAMES, Metadata, format_id, from_chunks, from_pil, to_chunks
from .network.modelfile import ModelFile
from .network.registry import ModelLike, load_model

Progress = Callable[[int], None]
ImageLike = Union[np.ndarray, Image.Image, str, os.PathLike]   # pixels, a PIL image or an image file


MIXER_PARTS = 2          # the column parts of the mixer with a network (mixer/column_parts.py)
PAYLOADS = ("auto", "coded", "network", "mixed", "mixer", "raw", "deflate")
CODED = ("network", "mixed", "mixer")     # the coded payloads: the network alone, network + mixer, mixer alone


def _mixed_payload(pixels, net, strip_rows, strip_height, device, progress, stats, parts) -> bytes:
    """The context mixer over the network's stream, the network's counts as
    inputs, in ``parts`` column parts (coder 3).  The parts are independent
    on this side, so each codes the stream's chunks in a thread of its own,
    at its own pace (the kernel runs without the GIL), while the network
    makes the next chunk (its next block of rows in another thread, on one
    core: ``stream._Heads``).  At most two chunks are alive, their counts
    in two buffers used in turn.  Each part codes its chunks in order, so
    the bytes never depend on the threads."""
    from concurrent.futures import ThreadPoolExecutor

    from .mixer.column_parts import Encoder
    from .network.enc_stream import encode_device, symbols_and_counts
    if net.reach < 1:
        raise UnknownModelError(f"model {net.name!r} sees no pixel to the upper right; the mixer needs one")
    import numba
    enc = Encoder(pixels, parts)
    network_bits = seconds = 0.0
    threads = numba.get_num_threads()
    coders = [ThreadPoolExecutor(1, thread_name_prefix=f"pixzip-part{p}") for p in range(parts)]
    try:
        coding: list = []          # the chunk before, being coded
        for sym, counts, n, where in symbols_and_counts(net, pixels, strip_rows, strip_height,
                                                        encode_device(device), positions=True, ahead=True,
                                                        reuse=2):
            # once the first block of rows is made (on every core), this
            # thread's kernels (the counts) run on one: the parts need the
            # rest, and idle kernel threads spin.  Measured on a 768x512
            # photo, 2 cores: 1.3-2.3 CPU-seconds less, 6.9 s against 8.3 s.
            numba.set_num_threads(1)
            for f in coding:
                f.result()
            coding = [coders[p].submit(enc.add_part, p, *where, counts) for p in range(parts)]
            if stats is not None:      # the network's own cross-entropy, for comparison
                t = time.perf_counter()
                network_bits += coder.cross_entropy_bits(sym, counts)
                seconds += time.perf_counter() - t
            del sym, counts
            if progress is not None:
                progress(n)
        for f in coding:
            f.result()
    finally:
        numba.set_num_threads(threads)
        for c in coders:
            c.shutdown(wait=True, cancel_futures=True)
    data = enc.finish()
    if stats is not None:
        stats.update(ideal_bits=enc.ideal_bits, network_bits=network_bits, ideal_s=seconds)
    return data


def _mixer_payload(pixels, progress, stats) -> bytes:
    """The context mixer alone, in raster order."""
    from .mixer.one_state import Encoder
    enc = Encoder(pixels)
    enc.add_image(progress)
    data = enc.finish()
    if stats is not None:
        stats.update(ideal_bits=enc.ideal_bits, ideal_s=0.0)
    return data


def _network_payload(pixels, net, strip_rows, strip_height, device, progress, stats) -> bytes:
    enc = coder.Encoder()
    bits = seconds = 0.0
    from .network.enc_stream import encode_device, symbols_and_counts
    for sym, counts, n in symbols_and_counts(net, pixels, strip_rows, strip_height, encode_device(device), reuse=1):
        enc.encode(sym, counts)
        if stats is not None:
            t = time.perf_counter()
            bits += coder.cross_entropy_bits(sym, counts)
            seconds += time.perf_counter() - t
        del sym, counts     # not alive while the next chunk is made
        if progress is not None:
            progress(n)
    if stats is not None:
        stats.update(ideal_bits=bits, ideal_s=seconds)
    return enc.to_bytes()


def compress(image: ImageLike, model: ModelLike = None, strip_rows: int | None = None, strip_height: int = 0,
             device: str = "auto", progress: Progress | None = None, stats: dict | None = None,
             metadata: Metadata | None = None, strip: bool = False, payload: str = "auto",
             level: int | None = None, method: str | None = None, parts: int = MIXER_PARTS,
             max_memory: int | None = None) -> bytes:
    """A .pxz file (bytes) of an image: a numpy array, a PIL image or a path.

    The metadata of a path or a PIL image (ICC profile, EXIF, XMP,
    resolution, PNG text, the file format) is kept, unless ``strip``;
    ``metadata`` gives it for an array.  ``payload`` "auto" stores the pixels
    raw or deflated (PNG's filtered rows) whenever that is smaller than the
    coded payload of ``level`` (``levels.LEVELS``), so that no file is
    larger than its raw pixels plus the header; "coded" forces that coded
    payload, and "network" (the network
    alone, coder 1), "mixed" (the context mixer with the network's counts as
    an input, coder 3), "mixer" (the context mixer alone, coder 2), "raw" or
    "deflate" forces one.  ``method`` (one of those three) chooses the coded
    payload that "auto" weighs, with the level's model when ``level`` is
    given, else with the default model; ``model`` overrides the level's
    model (and a level without one then mixes with it).  When the level
    chose the network and it codes other colours than the image's (the
    shipped networks are RGB, so grayscale), the mixer alone codes it; a
    model, method or coded payload asked for by name is refused instead.

    ``parts``: the mixer with a network codes the image's columns in that
    many parts (1..16), each with its own state, which the decoder codes at
    once, one per core (coder 3): two made files 0.05% larger on photos,
    1.4% on Kodak.

    ``max_memory`` (bytes) overrides ``memory_limit``: a coded payload whose
    decoding would need more is refused (LimitError), never made.

    ``strip_height`` > 0 codes independent strips of that many rows, which the
    decoder runs in lockstep: more pixels per step, at a small cost in size.
    ``strip_rows`` (the encoder's working-set size) and ``device`` (see
    ``encode_device``) never change the file.  ``progress(n)`` is called as
    pixels are coded.  With a ``stats`` dict, the same pass also measures the
    ideal code length of the coded payload: stats["ideal_bits"], the
    network's cross-entropy (what ``ideal_bits`` returns) or the mixer's;
    with the mixer and a network, stats["network_bits"] is the network's
    alone; stats["ideal_s"] is the seconds spent measuring them, for timings
    that leave them out; stats["payload"] is the payload chosen ("network",
    "mixed", "mixer", "raw" or "deflate")."""
    if payload not in PAYLOADS:
        raise ValueError(f"payload must be one of {', '.join(PAYLOADS)}")
    if not 0 <= strip_height <= container.MAX_STRIP_HEIGHT:
        raise ValueError(f"strip_height must be 0..{container.MAX_STRIP_HEIGHT} rows, not {strip_height}")
    from .levels import level_choice
    level_method, level_model = level_choice(level)
    forced = method is not None and level is None
    # the level chose the network (no model, coding or payload asked for by name)
    by_level = model is None and method is None and payload in ("auto", "coded")
    if method is None:
        method = level_method
        if model is not None and method == "mixer":
            method = "mixed"
    elif method not in CODED:
        raise ValueError(f"method must be one of {', '.join(CODED)}")
    if model is None and method != "mixer":
        # a coding forced without a level keeps the shipped default network
        model = registry.DEFAULT_MODEL if forced else level_model
    if payload in CODED:
        method = payload
    if isinstance(image, (str, os.PathLike)):
        pixels, found = read_image_file(image)
    elif isinstance(image, Image.Image):
        pixels, found = as_array(image), from_pil(image)
    else:
        pixels, found = as_array(image), Metadata()
    md = metadata if metadata is not None else found
    if strip:
        md = md.stripped()
    chunks = to_chunks(md)
    container.check_chunks(chunks, CHUNK_NAMES)    # before the coding, which may take minutes
    h, w, c = pixels.shape
    if h * w > container.MAX_PIXELS:        # never made: the decoder would refuse it
        raise LimitError(f"image size {w}x{h} is outside the limit of {container.MAX_PIXELS:,} pixels")
    candidates = []
    coded = payload in ("auto", "coded") or payload in CODED
    net = None
    if coded and method != "mixer":
        net = load_model(model)
        if c != net.colors:
            if not by_level:
                raise UnknownModelError(f"model {net.name!r} codes {MODES[net.colors]} images, not {MODES[c]}")
            # the level's network codes other colours (the shipped ones are RGB): the mixer alone codes this one
            method, net = "mixer", None
    if coded and method == "mixer":
        _check_memory(None, h, w, c, 0, max_memory, making=True)
        candidates.append((container.MIXER, _mixer_payload(pixels, progress, stats), "", b"",
                           container.MIXER_CODER, 0))
    elif coded:
        mixed = method == "mixed"
        _check_memory(net, h, w, c, strip_height, max_memory, making=True, mixer=mixed, parts=parts)
        if mixed:
            data = _mixed_payload(pixels, net, strip_rows, strip_height, device, progress, stats, parts)
        else:
            data = _network_payload(pixels, net, strip_rows, strip_height, device, progress, stats)
        candidates.append((container.NETWORK, data, net.name, bytes.fromhex(net.sha256[:16]),
                           container.PARTS_CODER if mixed else container.CODER, strip_height))
    if payload in ("auto", "raw"):
        candidates.append((container.RAW, stored.raw_payload(pixels), "", b"", 0, 0))
    if payload in ("auto", "deflate"):
        candidates.append((container.DEFLATE, stored.deflate_payload(pixels), "", b"", 0, 0))
    kind, data, name, mhash, coder_id, strips = min(candidates, key=lambda k: len(k[1]) + len(k[2]) + len(k[3]))
    if stats is not None:
        stats["payload"] = method if kind in (container.NETWORK, container.MIXER) else container.KINDS[kind]
    header = Header(name, mhash, h, w, MODES[c], strips, len(data), kind=kind, coder=coder_id,
                    chunks=chunks, source_format=format_id(md))
    return container.pack(header, data, container.pixels_crc(pixels))


def warm_up(model: ModelLike = None, method: str = "network") -> None:
    """Load (or compile) the kernels with a 2x2 round trip through ``method``
    (the automatic choice would store so small an image raw, and compile
    nothing), so that timings that follow measure the coding alone."""
    net = None if method == "mixer" else load_model(model)
    c = net.colors if net is not None else 3     # one compiled mixer serves every colour mode
    decompress(compress(np.zeros((2, 2, c), np.uint8), net, payload=method), net)


def ideal_bits(image: ImageLike, model: ModelLike = None) -> float:
    """The integer model's cross-entropy of an image in bits: the ideal code
    length its payload approaches (compiled kernels, like ``compress``)."""
    pixels = as_array(image)
    from .network.enc_stream import symbols_and_counts
    return sum(coder.cross_entropy_bits(sym, counts) for sym, counts, _ in symbols_and_counts(load_model(model), pixels))


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


def stored_memory(kind: int, h: int, w: int, c: int, payload_bytes: int = 0) -> int:
    """Bytes that decoding a stored payload allocates: the image itself, and
    for deflate Pillow's image (4 bytes a pixel for RGB), its bytes, and the
    PNG made around the payload (measured: 16384x16384 RGB, 2.67 GB)."""
    n = h * w * c
    if kind == container.RAW:
        return n
    return 2 * n + h * w * (4 if c == 3 else 1) + 2 * payload_bytes


def decode_memory(net: ModelFile | None, h: int, w: int, c: int, strip_height: int = 0, mixer: bool = False,
                  parts: int = 0) -> int:
    """Bytes that decoding an (h, w, c) image allocates: the network's
    wavefront (``net``; None for the mixer alone) and, with ``mixer`` (or
    no network), the context mixer's state: in ``parts`` column parts when
    that is over 0 (coder 3)."""
    need = 0
    if net is not None:
        from .network.dec_wavefront import decode_memory as wavefront_memory
        need += wavefront_memory(net, h, w, strip_height)
    if mixer and parts:
        from .mixer import column_parts as cm_parts
        need += cm_parts.state_bytes(h, w, c, parts)
    elif mixer or net is None:
        from .mixer.one_state import state_bytes
        need += state_bytes(h, w, c)
    return need


def _check_memory(net, h, w, c, strip_height, max_memory=None, making=False, mixer=False, parts=0) -> None:
    """Refuse an image whose decoding takes more than ``memory_limit``."""
    what = f" in strips of {strip_height} rows" if strip_height else " in one strip"
    if making:
        _refuse_over_limit(decode_memory(net, h, w, c, strip_height, mixer, parts), h, w, c, max_memory,
                           f"decoding a {w}x{h} image{what} would need", "use taller strips (--strip-height), or ")
    else:
        _refuse_over_limit(decode_memory(net, h, w, c, strip_height, mixer, parts), h, w, c, max_memory,
                           f"decoding this {w}x{h} image{what} needs")


def _refuse_over_limit(need: int, h: int, w: int, c: int, max_memory, what: str, fix: str = "") -> None:
    """A LimitError when decoding an (h, w, c) image needs ``need`` bytes, over ``memory_limit``."""
    limit = memory_limit(max_memory, h * w * c)
    if need > limit:
        raise over_limit(what, need, limit, fix)


def _min_payload_bytes(net: ModelFile, n_symbols: int) -> int:
    """The fewest payload bytes that can hold ``n_symbols``: the counts rule
    gives the likeliest symbol at most exp[0] / (exp[0] + 255 exp[-1]), so
    each costs at least -log2 of that (0.0056 bits with the shipped tables;
    the coder measured 0.0058).  Half of it, less 8 bytes, is the bound:
    a header that claims more pixels than its payload can hold is refused
    before the image is allocated."""
    top, low = float(net.exp[0]), float(net.exp[-1])
    bits = -math.log2(top / (top + 255 * low))
    return int(n_symbols * bits / 2 / 8) - 8


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


def decompress(data: bytes, model: ModelLike = None, progress: Progress | None = None,
               max_memory: int | None = None, max_pixels: int = container.MAX_PIXELS) -> np.ndarray:
    """The (H, W, C) uint8 pixels of a .pxz file.  ``model`` (a model, a name
    or a .pxm path) names the model a network payload needs, which is
    otherwise found by its name and hash on the search path.  ``max_memory``
    (bytes) overrides ``memory_limit``, which every payload kind obeys;
    ``max_pixels`` the pixel limit (``container.MAX_PIXELS``, what the
    command line can write)."""
    return decompress_with_metadata(data, model, progress, max_memory, max_pixels)[0]


def decompress_with_metadata(data: bytes, model: ModelLike = None, progress: Progress | None = None,
                             max_memory: int | None = None,
                             max_pixels: int = container.MAX_PIXELS) -> tuple[np.ndarray, Metadata]:
    """(pixels, metadata) of a .pxz file (see ``decompress``)."""
    header, payload, crc = container.parse(data, max_pixels)
    md = header_metadata(header)
    h, w, c = header.height, header.width, header.channels
    if header.kind in (container.RAW, container.DEFLATE):
        _refuse_over_limit(stored_memory(header.kind, h, w, c, len(payload)), h, w, c, max_memory,
                           f"decoding this {w}x{h} image needs")
    if header.kind == container.RAW:
        pixels = stored.raw_pixels(payload, h, w, c)
    elif header.kind == container.DEFLATE:
        pixels = stored.deflate_pixels(payload, h, w, c)
    elif header.kind == container.MIXER:
        pixels = _decode_mixer(header, payload, progress, max_memory)
    else:
        pixels = _decode_network(header, payload, model_for(header, model), progress, max_memory)
    if container.pixels_crc(pixels) != crc:
        raise CorruptError("checksum mismatch: the file is corrupt")
    return pixels, md


def _decode_network(header: Header, payload, net: ModelFile, progress, max_memory=None) -> np.ndarray:
    from .network.dec_wavefront import decode_image
    if net.colors != header.channels:
        raise CorruptError("header colour mode does not match the model")
    mixed = header.coder in (container.MIXER_CODER, container.PARTS_CODER)
    _check_payload(header, payload, net, mixed, max_memory)
    if mixed:
        return _decode_mixed(header, payload, net, progress)
    dec = coder.Decoder(bytes(payload), tail_bits=coder.TAIL_BITS)

    def source(counts, rows, cols, c):
        return dec.decode(counts)

    pixels = decode_image(net, header.height, header.width, source, progress=progress,
                          strip_height=header.strip_height)
    if not dec.exhausted():
        raise CorruptError("payload has data left over after the last pixel")
    return pixels


def _decode_mixed(header: Header, payload, net: ModelFile, progress) -> np.ndarray:
    from .mixer import one_state as cm_codec
    from .mixer import column_parts as cm_parts
    from .network.schedule import strip_layout
    from .network.dec_wavefront import decode_image
    if net.reach < 1:
        raise CorruptError(f"model {net.name!r} cannot have made a mixed payload")
    h, w, c = header.height, header.width, header.channels
    _, S = strip_layout(h, header.strip_height)
    in_parts = header.coder == container.PARTS_CODER
    dec = cm_parts.Decoder(payload, h, w, c) if in_parts else cm_codec.Decoder(payload, h, w, c)
    img = dec.img
    extra = {} if in_parts else {"independent": True}

    def source(counts, rows, cols, colour):
        n = len(rows)
        dec.take(rows, cols, np.full(n, colour, np.int64), (rows // S) * S, counts, **extra)
        return img[rows, cols, colour]

    decode_image(net, h, w, source, progress=progress, strip_height=header.strip_height)
    return dec.finish()


def _check_payload(header: Header, payload, net: ModelFile | None, mixer: bool, max_memory=None) -> None:
    """Before anything is allocated: a payload long enough for the image the
    header claims, and a decoder within the memory limit."""
    parts = 0
    if header.coder == container.PARTS_CODER:
        from .mixer.column_parts import split_payload
        parts = split_payload(payload)[0]
    if mixer:
        from .mixer.one_state import min_payload_bytes
        least = min_payload_bytes(header.n_subpixels)
    else:
        least = _min_payload_bytes(net, header.n_subpixels)
    if len(payload) < least:
        raise CorruptError(f"payload of {len(payload)} bytes is too short for a "
                           f"{header.width}x{header.height} image")
    _check_memory(net, header.height, header.width, header.channels, header.strip_height if net else 0,
                  max_memory, mixer=mixer, parts=parts)


def _decode_mixer(header: Header, payload, progress, max_memory=None) -> np.ndarray:
    from .mixer.one_state import Decoder
    _check_payload(header, payload, None, True, max_memory)
    dec = Decoder(payload, header.height, header.width, header.channels)
    dec.take_image(progress)
    return dec.finish()
