"""compress / decompress: an image through the integer network and the coder
into a .pxz container, and back, bit-exactly."""
from __future__ import annotations

import math
import os
import time

import numpy as np
import torch
from PIL import Image

from . import coder, container, intkernels, registry, stored
from .container import Header
from .errors import CorruptError, LimitError, UnknownModelError
from .images import MODES, as_array, read_image_file
from .metadata import Metadata, format_id, from_chunks, from_pil, to_chunks
from .intnet import IntGatedPixelCNN
from .schedule import n_steps, plan, strip_layout
from .wavefront import decode_image, decode_memory

ENCODE_BLOCK_PIXELS = 128 * 1024   # rows the encoder's full pass computes at once, times the width
CHUNK_SYMBOLS = 1 << 14


def load_model(model=None) -> IntGatedPixelCNN:
    """An integer model: one given, or by name or .pxm path, or the default."""
    if isinstance(model, IntGatedPixelCNN):
        return model
    return registry.load(model if model is not None else registry.DEFAULT_MODEL)


class _Heads:
    """The head inputs of every strip's rows, computed block by block (by
    ``intkernels.RowHeads``, each block continuing from the one above; on a
    torch device each with a context halo), in a ring buffer that holds
    only the rows the schedule can still reach: rows alive at once plus one
    block.  That is about 130 bytes per pixel of those rows (the full
    distributions, 1.5 KB per pixel, are made in stream order as the coder
    consumes them)."""

    def __init__(self, net: IntGatedPixelCNN, pixels: np.ndarray, strip_height: int, block: int, device=None):
        h, w, c = pixels.shape
        lag = net.reach + 1
        self.prog = intkernels.program(net)
        # on a torch device the full pass runs in PyTorch (the reference network); else in the compiled kernels
        self.torch_net = net.on(device) if device is not None else None
        self.nb, self.S = strip_layout(h, strip_height)
        self.heights = [min(self.S, h - k * self.S) for k in range(self.nb)]
        self.strips = [pixels[k * self.S:k * self.S + self.heights[k]] for k in range(self.nb)]
        self.passes = [intkernels.RowHeads(self.prog, strip) for strip in self.strips] \
            if self.torch_net is None else None
        self.block = min(block, self.S)
        self.cap = min(self.S, (w - 1) // lag + 2 + self.block)
        self.buf = np.empty((self.nb, self.cap, w, self.prog.head_width), np.int16)
        self.next = 0   # first row (in every strip) not computed yet

    def covers(self, row: int) -> bool:
        return row < self.next

    def compute_through(self, row: int) -> None:
        """Compute every strip's rows up to ``row`` (the caller has consumed all
        rows that the ring slots being overwritten held)."""
        while self.next <= row:
            a, b = self.next, min(self.S, self.next + self.block)
            for k in range(self.nb):
                if a < self.heights[k]:
                    if self.torch_net is not None:
                        g = self.torch_net.strip_head_inputs(self.strips[k], a, min(b, self.heights[k]))
                    else:
                        g = self.passes[k].rows(min(b, self.heights[k]))
                    self.buf[k, np.arange(a, a + len(g)) % self.cap] = g
            self.next = b

    def counts(self, strips, rows, cols, dest, n_symbols) -> np.ndarray:
        """Counts (n_symbols, 256) float64: position e's colour c in row dest[e, c]."""
        return intkernels.counts(self.prog, self.buf, strips, rows % self.cap, cols, dest, n_symbols)


def _stream(net: IntGatedPixelCNN, pixels: np.ndarray, strip_rows: int | None = None, strip_height: int = 0,
            device=None):
    """The symbols of an image and their counts, in schedule order (step,
    colour, strip, row, exactly as the decoder consumes them), in chunks:
    yields (symbols (n,), counts (n, 256) float64, pixels covered)."""
    h, w, c = pixels.shape
    lag = net.reach + 1
    heads = _Heads(net, pixels, strip_height, strip_rows or encode_block_rows(w), device)
    nb, S = heads.nb, heads.S
    last = heads.heights[-1]
    steps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    pending = 0

    def chunk():
        k, r, j = (np.concatenate(v) for v in zip(*steps))
        # a step's symbols are colour-major: colour ch of its e-th position is at start + ch*m + e
        sizes = np.array([len(s[0]) for s in steps])
        starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
        local = np.arange(len(k)) - starts
        dest = (c * starts + local)[:, None] + np.repeat(sizes, sizes)[:, None] * np.arange(c)
        sym = np.empty(c * len(k), np.int64)
        sym[dest] = pixels[k * S + r, j]
        return sym, heads.counts(k, r, j, dest, c * len(k)), len(k)

    for t, k, r, j, _ in plan(S, w, lag, nb, last, 0, n_steps(S, w, lag)):
        if not len(r):  # narrow images leave gaps between rows
            continue
        top = int(r.max())
        if not heads.covers(top):
            if steps:
                yield chunk()
                steps, pending = [], 0
            heads.compute_through(top)
        steps.append((k, r, j))
        pending += c * len(r)
        if pending >= CHUNK_SYMBOLS:
            yield chunk()
            steps, pending = [], 0
    if steps:
        yield chunk()


def encode_block_rows(width: int) -> int:
    """Rows per encoder pass: 128 up to 1024 columns, fewer for wider images so
    that a pass's buffers (about 1 KB per pixel) stay near 150 MB, at least 32
    (the PyTorch pass recomputes a halo of rows above each block)."""
    return max(32, min(128, ENCODE_BLOCK_PIXELS // max(width, 1)))


def encode_device(device: str = "auto"):
    """The torch device of the encoder's full pass, or None for the compiled
    CPU kernels: "auto" is the GPU when there is one; "torch" runs the PyTorch
    pass on the CPU (the GPU's code path, for tests)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return None
    return torch.device("cpu" if device == "torch" else device)


PAYLOADS = ("auto", "network", "raw", "deflate")


def _network_payload(pixels, net, strip_rows, strip_height, device, progress, stats) -> bytes:
    enc = coder.Encoder()
    bits = seconds = 0.0
    for sym, counts, n in _stream(net, pixels, strip_rows, strip_height, encode_device(device)):
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


def compress(image, model=None, strip_rows: int | None = None, strip_height: int = 0, device: str = "auto",
             progress=None, stats: dict | None = None, metadata: Metadata | None = None, strip: bool = False,
             payload: str = "auto") -> bytes:
    """A .pxz file (bytes) of an image: a numpy array, a PIL image or a path.

    The metadata of a path or a PIL image (ICC profile, EXIF, XMP,
    resolution, PNG text, the file format) is kept, unless ``strip``;
    ``metadata`` gives it for an array.  ``payload`` "auto" stores the pixels
    raw or deflated (PNG's filtered rows) whenever that is smaller than the
    network's payload, so that no file is larger than its raw pixels plus
    the header; "network", "raw" or "deflate" forces one.

    ``strip_height`` > 0 codes independent strips of that many rows, which the
    decoder runs in lockstep: more pixels per step, at a small cost in size.
    ``strip_rows`` (the encoder's working-set size) and ``device`` (see
    ``encode_device``) never change the file.  ``progress(n)`` is called as
    pixels are coded.  With a ``stats`` dict, the same pass also measures the
    integer model's cross-entropy: stats["ideal_bits"] (what ``ideal_bits``
    returns) and stats["ideal_s"], the seconds spent measuring it, for timings
    that leave them out; stats["payload"] is the kind of payload chosen."""
    if payload not in PAYLOADS:
        raise ValueError(f"payload must be one of {', '.join(PAYLOADS)}")
    if isinstance(image, (str, os.PathLike)):
        pixels, found = read_image_file(image)
    elif isinstance(image, Image.Image):
        pixels, found = as_array(image), from_pil(image)
    else:
        pixels, found = as_array(image), Metadata()
    md = metadata if metadata is not None else found
    if strip:
        md = md.stripped()
    h, w, c = pixels.shape
    candidates = []
    if payload in ("auto", "network"):
        net = load_model(model)
        if c != net.colors:
            raise UnknownModelError(f"model {net.name!r} codes {MODES[net.colors]} images, not {MODES[c]}")
        _check_memory(net, h, w, c, strip_height, making=True)
        data = _network_payload(pixels, net, strip_rows, strip_height, device, progress, stats)
        candidates.append((container.NETWORK, data, net.name, bytes.fromhex(net.sha256[:16]), container.CODER,
                           strip_height))
    if payload in ("auto", "raw"):
        candidates.append((container.RAW, stored.raw_payload(pixels), "", b"", 0, 0))
    if payload in ("auto", "deflate"):
        candidates.append((container.DEFLATE, stored.deflate_payload(pixels), "", b"", 0, 0))
    kind, data, name, mhash, coder_id, strips = min(candidates, key=lambda k: len(k[1]) + len(k[2]) + len(k[3]))
    if stats is not None:
        stats["payload"] = container.KINDS[kind]
    header = Header(name, mhash, h, w, MODES[c], strips, len(data), kind=kind, coder=coder_id,
                    chunks=to_chunks(md), source_format=format_id(md))
    return container.pack(header, data, container.pixels_crc(pixels))


def warm_up(model=None) -> None:
    """Load (or compile) the kernels with a 2x2 round trip through the network
    (the automatic choice would store so small an image raw, and compile
    nothing), so that timings that follow measure the coding alone."""
    net = load_model(model)
    decompress(compress(np.zeros((2, 2, net.colors), np.uint8), net, payload="network"), net)


def ideal_bits(image, model=None) -> float:
    """The integer model's cross-entropy of an image in bits: the ideal code
    length its payload approaches (compiled kernels, like ``compress``)."""
    pixels = as_array(image)
    return sum(coder.cross_entropy_bits(sym, counts) for sym, counts, _ in _stream(load_model(model), pixels))


def read_header(data: bytes) -> Header:
    """The header of a .pxz file, checked (magic, version, flags, size limit)."""
    return container.parse(data)[0]


def header_metadata(header: Header) -> Metadata:
    """The metadata a file carries (ICC profile, EXIF, ..., original format)."""
    return from_chunks(header.chunks, header.source_format)


MEMORY_FLOOR = 256 << 20      # a decoder may always take this much
MEMORY_PER_BYTE = 512         # and this many bytes per byte of raw pixels (whole Kodak images in
                              # strips of 1 row take 180, one strip 19, with the default model)
MEMORY_ENV = "PIXZIP_MAX_MEMORY"


def _parse_bytes(text: str) -> int:
    t = text.strip().upper().removesuffix("B")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(t[-1:], 1)
    return int(float(t[:-1] if scale > 1 else t) * scale)


def memory_limit(n_subpixels: int, max_memory: int | None = None) -> int:
    """The most bytes the decoder may allocate for an image: ``max_memory``,
    else $PIXZIP_MAX_MEMORY (e.g. "8G"), else max(256 MB, 512 bytes per raw
    byte).  A file whose decoding needs more is refused before anything is
    allocated (as zstd refuses a frame over its memory limit), and
    ``compress`` refuses to make one."""
    if max_memory is not None:
        return int(max_memory)
    env = os.environ.get(MEMORY_ENV)
    if env:
        try:
            return _parse_bytes(env)
        except ValueError:
            raise LimitError(f"${MEMORY_ENV}={env!r} is not a size such as 4G") from None
    return max(MEMORY_FLOOR, MEMORY_PER_BYTE * n_subpixels)


def _check_memory(net, h, w, c, strip_height, max_memory=None, making=False) -> None:
    need = decode_memory(net, h, w, strip_height)
    limit = memory_limit(h * w * c, max_memory)
    if need > limit:
        what = (f"strips of {strip_height} rows" if strip_height else "one strip")
        if making:
            raise LimitError(f"a {w}x{h} image in {what} would need {need >> 20} MB to decode, over the limit of "
                             f"{limit >> 20} MB: use taller strips (--strip-height) or set ${MEMORY_ENV}")
        raise LimitError(f"decoding this {w}x{h} image in {what} needs {need >> 20} MB, over the limit of "
                         f"{limit >> 20} MB (set ${MEMORY_ENV} to allow more)")


def _min_payload_bytes(net: IntGatedPixelCNN, n_symbols: int) -> int:
    """The fewest payload bytes that can hold ``n_symbols``: the counts rule
    gives the likeliest symbol at most exp[0] / (exp[0] + 255 exp[-1]), so
    each costs at least -log2 of that (0.0056 bits with the shipped tables;
    the coder measured 0.0058).  Half of it, less 8 bytes, is the bound:
    a header that claims more pixels than its payload can hold is refused
    before the image is allocated."""
    top, low = float(net.exp[0]), float(net.exp[-1])
    bits = -math.log2(top / (top + 255 * low))
    return int(n_symbols * bits / 2 / 8) - 8


def model_for(header: Header, model=None) -> IntGatedPixelCNN:
    """The model a network payload needs: the one given (a model, a name or a
    .pxm path), checked against the file's name and hash, or the installed
    one with that name and hash."""
    if model is None:
        return registry.find(header.model_name, header.model_hash)
    where = f"{model}" if not isinstance(model, IntGatedPixelCNN) else "the given model"
    net = load_model(model)
    registry.check(net, header.model_name, header.model_hash, where)
    return net


def decompress(data: bytes, model=None, progress=None, max_memory: int | None = None) -> np.ndarray:
    """The (H, W, C) uint8 pixels of a .pxz file.  ``model`` (a model, a name
    or a .pxm path) names the model a network payload needs, which is
    otherwise found by its name and hash on the search path.  ``max_memory``
    (bytes) overrides ``memory_limit``."""
    return decompress_with_metadata(data, model, progress, max_memory)[0]


def decompress_with_metadata(data: bytes, model=None, progress=None,
                             max_memory: int | None = None) -> tuple[np.ndarray, Metadata]:
    """(pixels, metadata) of a .pxz file (see ``decompress``)."""
    header, payload, crc = container.parse(data)
    md = header_metadata(header)
    h, w, c = header.height, header.width, header.channels
    if header.kind == container.RAW:
        pixels = stored.raw_pixels(payload, h, w, c)
    elif header.kind == container.DEFLATE:
        pixels = stored.deflate_pixels(payload, h, w, c)
    else:
        pixels = _decode_network(header, payload, model_for(header, model), progress, max_memory)
    if container.pixels_crc(pixels) != crc:
        raise CorruptError("checksum mismatch: the file is corrupt")
    return pixels, md


def _decode_network(header: Header, payload, net: IntGatedPixelCNN, progress, max_memory=None) -> np.ndarray:
    if net.colors != header.channels:
        raise CorruptError("header colour mode does not match the model")
    if len(payload) < _min_payload_bytes(net, header.n_subpixels):
        raise CorruptError(f"payload of {len(payload)} bytes is too short for a "
                           f"{header.width}x{header.height} image")
    _check_memory(net, header.height, header.width, header.channels, header.strip_height, max_memory)
    dec = coder.Decoder(bytes(payload), tail_bits=coder.TAIL_BITS)

    def source(counts, rows, cols, c):
        return dec.decode(counts)

    pixels = decode_image(net, header.height, header.width, source, progress=progress,
                          strip_height=header.strip_height)
    if not dec.exhausted():
        raise CorruptError("payload has data left over after the last pixel")
    return pixels
