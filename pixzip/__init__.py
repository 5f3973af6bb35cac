"""pixzip: lossless image compression with a Gated PixelCNN.

    import pixzip
    data = pixzip.compress("photo.png")        # bytes of a .pxz file (the default level)
    pixels = pixzip.decompress(data)           # (H, W, C) uint8, pixel-exact
    data = pixzip.compress(rgba_array)         # any mode: RGBA, LA, palette, 1-bit, 16-bit (uint16)
    pic, md = pixzip.decompress_picture(data)  # the mode, samples, palette and transparency
    data = pixzip.compress("photo.png", level=9, options=pixzip.Options(strip_height=64))
    data, stats = pixzip.compress_with_stats("photo.png", method="mixer+network")

The coding path (``pixzip.codec``) needs numpy, numba, constriction and
Pillow, never torch; training and export (``pixzip.learn``) need torch
(``pip install 'pixzip[train]'``).  Names load on first use, so that
importing pixzip costs nothing.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .codec import threads as _threads
from .errors import PixzipError

_threads.setup()        # before numba's threads start: see codec.threads

if TYPE_CHECKING:
    from .codec.api import (Options, Stats, compress, compress_with_stats, decompress, decompress_picture,
                            decompress_with_metadata, is_pxz, read_header)
    from .codec.format.picture import Picture

_LAZY = {name: "pixzip.codec.api" for name in ("compress", "compress_with_stats", "decompress", "decompress_picture",
                                               "decompress_with_metadata", "is_pxz", "read_header", "Options",
                                               "Stats")}
_LAZY["Picture"] = "pixzip.codec.format.picture"

__all__ = ["Options", "Picture", "PixzipError", "Stats", "__version__", "compress", "compress_with_stats",
           "decompress", "decompress_picture", "decompress_with_metadata", "is_pxz", "read_header"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version
        try:
            value = version("pixzip")       # the one place it is set is pyproject.toml
        except PackageNotFoundError:        # a source tree that is not installed
            value = "0.0.0+unknown"
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pixzip' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
