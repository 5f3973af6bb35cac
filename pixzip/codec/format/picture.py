"""A picture: an image of any mode pixzip keeps, as exact numbers.

pixzip keeps 8-bit gray and colour with or without alpha (L, LA, RGB, RGBA),
palette images (P, with their palette in its order and their transparency),
1-bit (1) and 16-bit gray and colour (I;16, RGB;16).  A picture holds the
samples as an (H, W, C) array (uint8, or uint16 for the 16-bit modes; the
indices of a palette image; 0 and 1 for 1-bit) and what else the mode needs.
Anything else is refused by name, never converted.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ...errors import ImageError

MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "I;16", "RGB;16")
CHANNELS = {"1": 1, "L": 1, "LA": 2, "P": 1, "RGB": 3, "RGBA": 4, "I;16": 1, "RGB;16": 3}
SIXTEEN_BIT = ("I;16", "RGB;16")
# the 8-bit modes an array's channel count stands for, and the 16-bit ones
_OF_CHANNELS = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
_OF_CHANNELS_16 = {1: "I;16", 3: "RGB;16"}
# Pillow's 16-bit gray modes (byte orders), all read as I;16
_PIL_16 = ("I;16", "I;16L", "I;16B", "I;16N")
# what a mode is, in a user's words
DESCRIPTION = {"1": "1-bit black and white", "L": "8-bit gray", "LA": "8-bit gray with alpha", "P": "palette",
               "RGB": "8-bit RGB", "RGBA": "8-bit RGB with alpha", "I;16": "16-bit gray", "RGB;16": "16-bit RGB"}


@dataclass(frozen=True, eq=False)
class Picture:
    """``pixels``: (H, W, C), C-contiguous, uint8 (uint16 for I;16 and
    RGB;16; 0/1 for "1"; the palette indices for "P").  ``palette``: a P
    picture's entries, ``len(palette_mode)`` bytes each, as many as its file
    has; ``transparency``: Pillow's ``info["transparency"]`` (an index or
    per-entry alphas for P, a gray value for L, a colour for RGB), kept
    exactly.  ``flat``: it came in as a 2-D array, and goes back as one."""
    pixels: np.ndarray
    mode: str
    palette: bytes = b""
    palette_mode: str = ""
    transparency: int | bytes | tuple[int, ...] | None = None
    flat: bool = False

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def channels(self) -> int:
        return self.pixels.shape[2]

    @property
    def plain(self) -> bool:
        """8-bit L or RGB without transparency: what pixzip kept before 0.6,
        coded as it was then."""
        return self.mode in ("L", "RGB") and self.transparency is None


def _checked(pixels: np.ndarray, mode: str, where: str) -> np.ndarray:
    if pixels.ndim != 3 or pixels.shape[2] != CHANNELS[mode]:
        raise ImageError(f"{where}: {mode} needs {CHANNELS[mode]} channels, not the shape {pixels.shape}")
    if pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise ImageError(f"{where}: the image is empty")
    return np.ascontiguousarray(pixels)


def from_array(a, where: str = "image") -> Picture:
    """The picture of an array: uint8 (H, W) or (H, W, 1) gray, (H, W, 2)
    gray and alpha, (H, W, 3) RGB, (H, W, 4) RGBA; uint16 (H, W) or
    (H, W, 1) 16-bit gray, (H, W, 3) 16-bit RGB; bool (H, W) 1-bit.  Other
    types and shapes are refused by name."""
    a = np.asarray(a)
    flat = a.ndim == 2
    if a.dtype == np.bool_:
        if not flat:
            raise ImageError(f"{where}: a 1-bit (bool) array must be (H, W), not {a.shape}")
        return Picture(_checked(a[..., None].astype(np.uint8), "1", where), "1", flat=True)
    if flat:
        a = a[..., None]
    if a.ndim != 3:
        raise ImageError(f"{where}: an image array must be (H, W) or (H, W, C), not {a.shape}")
    if a.dtype == np.uint8 and a.shape[2] in _OF_CHANNELS:
        mode = _OF_CHANNELS[a.shape[2]]
    elif a.dtype.kind == "u" and a.dtype.itemsize == 2 and a.shape[2] in _OF_CHANNELS_16:
        mode, a = _OF_CHANNELS_16[a.shape[2]], a.astype(np.uint16)     # native byte order
    elif a.dtype.kind == "u" and a.dtype.itemsize == 2:
        raise ImageError(f"{where}: a 16-bit array must have 1 or 3 channels, not {a.shape[2]} "
                         f"(16-bit alpha is not kept)")
    elif a.dtype == np.uint8:
        raise ImageError(f"{where}: an 8-bit array must have 1 to 4 channels, not {a.shape[2]}")
    else:
        raise ImageError(f"{where}: an image array must be uint8, uint16 or bool, not {a.dtype}")
    return Picture(_checked(a, mode, where), mode, flat=flat)


def to_array(p: Picture) -> np.ndarray:
    """The picture's samples: (H, W) when it came in flat, else (H, W, C);
    a flat 1-bit picture as bool, as it came in."""
    if not p.flat:
        return p.pixels
    a = p.pixels[..., 0]
    return a.astype(bool) if p.mode == "1" else a


def describe(im: Image.Image) -> str:
    """What a Pillow image is, in a user's words ("CMYK", "32-bit integer")."""
    names = {"CMYK": "CMYK", "YCbCr": "YCbCr", "LAB": "Lab", "HSV": "HSV", "I": "32-bit integer gray",
             "F": "32-bit float gray", "PA": "palette with an alpha plane", "RGBX": "RGB with a padding byte",
             "RGBa": "RGB with premultiplied alpha", "La": "gray with premultiplied alpha"}
    return names.get(im.mode, DESCRIPTION.get(im.mode, f"mode {im.mode}"))


def from_pil(im: Image.Image, where: str = "image") -> Picture:
    """The picture of a loaded Pillow image of a mode pixzip keeps; any other
    mode is refused by name."""
    mode = "I;16" if im.mode in _PIL_16 else im.mode
    if getattr(im, "n_frames", 1) > 1:
        raise ImageError(f"{where}: an image of {im.n_frames} frames; pixzip keeps single images, never only the "
                         f"first frame (save each frame as its own image if that is what you want)")
    if mode not in MODES:
        raise ImageError(f"{where}: {describe(im)} images are not kept by pixzip (it keeps "
                         f"{', '.join(DESCRIPTION[m] for m in MODES)}, exactly, and converts nothing)")
    a = np.asarray(im)
    if mode == "I;16":
        a = a.astype(np.uint16)                     # native byte order, whatever the file's
    elif mode == "1":
        a = a.astype(np.uint8)
    if a.ndim == 2:
        a = a[..., None]
    palette, palette_mode = b"", ""
    if mode == "P":
        palette_mode = im.palette.mode if im.palette is not None else "RGB"
        if palette_mode not in ("RGB", "RGBA"):
            raise ImageError(f"{where}: a palette of {palette_mode} colours is not kept by pixzip (RGB or RGBA)")
        palette = bytes(im.getpalette(palette_mode) or b"")
    transparency = im.info.get("transparency")
    if isinstance(transparency, list):
        transparency = tuple(transparency)
    return Picture(_checked(a, mode, where), mode, palette, palette_mode, transparency)


def to_pil(p: Picture) -> Image.Image:
    """The Pillow image of a picture; 16-bit RGB has no Pillow mode, and is
    refused by name."""
    if p.mode == "RGB;16":
        raise ImageError("16-bit RGB has no Pillow image mode; read it as an array (pixzip.decompress)")
    a = p.pixels[..., 0] if p.channels == 1 else p.pixels
    if p.mode == "1":
        im = Image.fromarray(a.astype(bool))
    elif p.mode == "I;16":
        im = Image.frombytes("I;16", (p.width, p.height), a.astype("<u2").tobytes())
    elif p.mode == "P":
        im = Image.fromarray(a, "P")
        im.putpalette(p.palette, p.palette_mode)
    else:
        im = Image.fromarray(a, p.mode)
    if p.transparency is not None:
        im.info["transparency"] = p.transparency
    return im


def same(a: Picture, b: Picture) -> bool:
    """Whether two pictures hold the same image: mode, samples, palette and transparency."""
    return (a.mode == b.mode and a.pixels.shape == b.pixels.shape and np.array_equal(a.pixels, b.pixels)
            and a.palette == b.palette and a.palette_mode == b.palette_mode and a.transparency == b.transparency)
