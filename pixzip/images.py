"""Reading and writing images for the codec: 8-bit L and RGB only."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageError, describe_os_error

MODES = {1: "L", 3: "RGB"}


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
    if im.mode not in ("L", "RGB"):
        raise ImageError(f"{where}: unsupported image mode {im.mode} (pixzip handles 8-bit L and RGB)")
    a = np.asarray(im, dtype=np.uint8)
    return np.ascontiguousarray(a[..., None] if a.ndim == 2 else a)


def read_image(path) -> np.ndarray:
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            return _from_pil(im, str(path))
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        raise ImageError(describe_os_error(path, e)) from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        if path.exists() and path.stat().st_size == 0:
            raise ImageError(f"{path}: empty file") from None
        raise ImageError(f"{path}: not a readable image ({e.__class__.__name__})") from None


def to_pil(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels, MODES[pixels.shape[2]])
