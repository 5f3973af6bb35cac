"""compress / decompress: an image through the integer network and the coder
into a .pxz container, and back, bit-exactly."""
from __future__ import annotations

import numpy as np
import torch

from . import coder, container, registry
from .container import Header
from .errors import CorruptError, UnknownModelError
from .images import MODES, as_array
from .intnet import IntGatedPixelCNN
from .schedule import active_rows, n_steps, strip_layout
from .wavefront import decode_image

ENCODE_STRIP_ROWS = 32
CHUNK_SYMBOLS = 1 << 16


def _model(model) -> IntGatedPixelCNN:
    if isinstance(model, IntGatedPixelCNN):
        return model
    return registry.load(model if model is not None else registry.DEFAULT_MODEL)


class _StripCounts:
    """Integer counts of an image, computed strip by strip with a context
    halo and dropped once the schedule has passed their rows."""

    def __init__(self, net: IntGatedPixelCNN, pixels: np.ndarray, strip_rows: int):
        self.net, self.x = net, torch.from_numpy(np.array(pixels))
        self.strip = strip_rows
        self.rows: dict[int, torch.Tensor] = {}
        self.next = 0

    def ensure(self, row: int) -> None:
        while self.next <= row:
            a, b = self.next, min(self.x.shape[0], self.next + self.strip)
            counts = self.net.strip_counts(self.x, a, b)
            for r in range(a, b):
                self.rows[r] = counts[r - a]
            self.next = b

    def drop_below(self, row: int) -> None:
        for r in [r for r in self.rows if r < row]:
            del self.rows[r]


def _encode_payload(net: IntGatedPixelCNN, pixels: np.ndarray, strip_rows: int,
                    strip_height: int = 0) -> tuple[bytes, float]:
    """(payload, ideal code length in bits) of an image, in schedule order:
    step, colour, strip, row, exactly as the decoder consumes them."""
    h, w, c = pixels.shape
    lag = net.reach + 1
    nb, S = strip_layout(h, strip_height)
    strips = [_StripCounts(net, pixels[k * S:(k + 1) * S], strip_rows) for k in range(nb)]
    heights = [min(S, h - k * S) for k in range(nb)]
    enc = coder.Encoder()
    syms: list[np.ndarray] = []
    rows_c: list[torch.Tensor] = []
    pending = 0
    bits = 0.0

    def flush():
        nonlocal syms, rows_c, pending, bits
        if pending:
            s, cnt = np.concatenate(syms), torch.cat(rows_c).numpy()
            enc.encode(s, cnt)
            bits += coder.cross_entropy_bits(s, cnt)
        syms, rows_c, pending = [], [], 0

    for t in range(n_steps(S, w, lag)):
        local = active_rows(t, S, w, lag)
        if not len(local):  # narrow images leave gaps between rows
            continue
        parts = []
        for k, strip in enumerate(strips):
            rows = local[local < heights[k]]
            if len(rows):
                strip.ensure(int(rows[-1]))
                parts.append((k, strip, rows, t - rows * lag))
        for ch in range(c):
            for k, strip, rows, cols in parts:
                rows_c.append(torch.stack([strip.rows[int(r)][int(q), ch] for r, q in zip(rows, cols)]))
                syms.append(pixels[k * S + rows, cols, ch])
                pending += len(rows)
        if pending >= CHUNK_SYMBOLS:
            flush()
        for strip in strips:
            strip.drop_below(-(-(t + 1 - w + 1) // lag))
    flush()
    return enc.to_bytes(), bits


def compress(image, model=None, strip_rows: int = ENCODE_STRIP_ROWS, strip_height: int = 0) -> bytes:
    """A .pxz file (bytes) of an image: a numpy array, a PIL image or a path.

    ``strip_height`` > 0 codes independent strips of that many rows, which the
    decoder runs in lockstep: more pixels per step, at a small cost in size.
    ``strip_rows`` is only the encoder's working-set size; it never changes
    the file."""
    pixels = as_array(image)
    net = _model(model)
    if pixels.shape[2] != net.colors:
        raise UnknownModelError(f"model {net.name!r} codes {MODES[net.colors]} images, not {MODES[pixels.shape[2]]}")
    payload, _ = _encode_payload(net, pixels, strip_rows, strip_height)
    h, w, c = pixels.shape
    header = Header(net.name, bytes.fromhex(net.sha256[:16]), h, w, MODES[c], strip_height, len(payload))
    return container.pack(header, payload, container.pixels_crc(pixels))


def read_header(data: bytes) -> Header:
    """The header of a .pxz file, checked (magic, version, flags, size limit)."""
    return container.parse(data)[0]


def decompress(data: bytes, model=None, progress=None) -> np.ndarray:
    """The (H, W, C) uint8 pixels of a .pxz file."""
    header, payload, crc = container.parse(data)
    net = _model(model if model is not None else header.model_name)
    if net.name != header.model_name or bytes.fromhex(net.sha256[:16]) != header.model_hash:
        raise UnknownModelError(
            f"file needs model {header.model_name!r} with hash {header.model_hash.hex()}, "
            f"but {net.name!r} has {net.sha256[:16]}")
    if net.colors != header.channels:
        raise CorruptError("header colour mode does not match the model")
    dec = coder.Decoder(bytes(payload))

    def source(counts, rows, cols, c):
        return torch.from_numpy(dec.decode(counts.numpy()))

    pixels = decode_image(net, header.height, header.width, source, progress=progress,
                          strip_height=header.strip_height)
    if not dec.exhausted():
        raise CorruptError("payload has data left over after the last pixel")
    if container.pixels_crc(pixels) != crc:
        raise CorruptError("checksum mismatch: the file is corrupt")
    return pixels
