"""Training and evaluation data: image folders/files and npz arrays.

Everything is held as uint8 arrays of shape (H, W, C).  Paths are always
given by the caller.  Image files are read by the codec's one reader
(``codec.images``); a file it would refuse (a palette, alpha, 16 bits, a
transparent colour, frames) is converted to 8-bit RGB on purpose, since
training needs pixels, not an exact copy, and ``load_images`` says so in a
warning that names the files.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..codec.format.images import read_image
from ..errors import ImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".ppm", ".pgm"}


class DataError(ValueError):
    """A data path that cannot be used, with the path in the message."""


@dataclass
class ImageSet:
    """A list of uint8 (H, W, C) images, all with the same C, and optional labels."""

    images: list[np.ndarray]
    labels: np.ndarray | None = None
    names: list[str] = field(default_factory=list)

    @property
    def colors(self) -> int:
        return self.images[0].shape[2]

    def __len__(self) -> int:
        return len(self.images)

    @property
    def n_subpixels(self) -> int:
        return sum(int(im.size) for im in self.images)

    def same_size(self) -> bool:
        return len({im.shape for im in self.images}) == 1

    # -- as a crops.ImageSource ---------------------------------------------
    @property
    def sizes(self) -> list[tuple[int, int]]:
        return [(im.shape[0], im.shape[1]) for im in self.images]

    def load(self, i: int) -> np.ndarray:
        return self.images[i]


def _load_npz(path: Path) -> tuple[list[np.ndarray], np.ndarray | None]:
    with np.load(path) as z:
        if "x" not in z:
            raise DataError(f"{path}: npz file has no array 'x'")
        x = z["x"]
        y = z["y"] if "y" in z else None
    if x.dtype != np.uint8 or x.ndim not in (3, 4):
        raise DataError(f"{path}: 'x' must be uint8 of shape (N,H,W[,C]), got {x.dtype} {x.shape}")
    if x.ndim == 3:
        x = x[..., None]
    if y is not None:
        y = np.asarray(y[: len(x)], dtype=np.int64)  # files may carry more labels than images
    return list(x), y


def _load_image(path: Path) -> tuple[np.ndarray, str | None]:
    """(pixels, None) as the codec reads them, or (pixels converted to RGB,
    the file's mode) for a file the codec would refuse."""
    try:
        return read_image(path), None
    except ImageError:
        pass
    try:
        with Image.open(path) as im:
            mode = im.mode
            a = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable image ({e})") from None
    return a, mode


def load_images(paths, colors: int | None = None) -> ImageSet:
    """Load every image under ``paths`` (files, folders or .npz files).

    Grayscale images are expanded to RGB when any image is RGB or ``colors`` is
    3; with ``colors=1``, RGB images are converted to luma.
    """
    images: list[np.ndarray] = []
    names: list[str] = []
    labels: list[np.ndarray] = []
    have_labels = True
    converted: list[str] = []
    for p in map(Path, paths):
        if not p.exists():
            raise DataError(f"{p}: no such file or directory")
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise DataError(f"{p}: folder holds no images")
        else:
            files = [p]
        for f in files:
            if f.suffix.lower() == ".npz":
                xs, y = _load_npz(f)
                images += xs
                names += [f"{f}[{i}]" for i in range(len(xs))]
                if y is None:
                    have_labels = False
                else:
                    labels.append(y)
            else:
                im, mode = _load_image(f)
                if mode is not None:
                    converted.append(f"{f} ({mode})")
                images.append(im)
                names.append(str(f))
                have_labels = False
    if not images:
        raise DataError(f"{', '.join(map(str, paths))}: no images found")
    if converted:
        more = f" and {len(converted) - 3} more" if len(converted) > 3 else ""
        warnings.warn(f"{len(converted)} image(s) converted to 8-bit RGB for training: "
                      f"{', '.join(converted[:3])}{more}", stacklevel=2)
    want = colors or max(im.shape[2] for im in images)
    images = [_to_colors(im, want) for im in images]
    y = np.concatenate(labels) if have_labels and labels else None
    return ImageSet(images, y, names)


def open_source(paths, colors: int | None = None, downscale: int = 0):
    """The training images under ``paths`` as a ``crops.ImageSource``, with
    copies downscaled by 2 .. 2**downscale.  (For now the images are read
    into memory, as ``load_images`` reads them.)"""
    return with_downscaled(load_images(paths, colors=colors), downscale)


def _to_colors(im: np.ndarray, colors: int) -> np.ndarray:
    if im.shape[2] == colors:
        return im
    if colors == 3:
        return np.repeat(im, 3, axis=2)
    luma = np.asarray(Image.fromarray(im).convert("L"), dtype=np.uint8)
    return luma[..., None]


def with_downscaled(data: ImageSet, levels: int) -> ImageSet:
    """``data`` plus copies of every image downscaled by 2, 4, ... 2**levels
    (rounded 2x2, 4x4, ... box averages), for training on more scales of
    detail. Copies that would be empty are left out."""
    if levels <= 0:
        return data
    images, names = list(data.images), list(data.names)
    labels = list(data.labels) if data.labels is not None else None
    for level in range(1, levels + 1):
        f = 2 ** level
        for i, im in enumerate(data.images):
            h, w = im.shape[0] // f, im.shape[1] // f
            if h == 0 or w == 0:
                continue
            box = im[: h * f, : w * f].reshape(h, f, w, f, -1).astype(np.uint32).sum(axis=(1, 3))
            images.append(((box + f * f // 2) // (f * f)).astype(np.uint8))
            names.append(f"{data.names[i] if data.names else i}@1/{f}")
            if labels is not None:
                labels.append(data.labels[i])
    return ImageSet(images, np.array(labels, dtype=np.int64) if labels is not None else None, names)


class CropSampler:
    """Draws training batches of random crops (and optional horizontal flips)
    from an ImageSet with a numpy Generator whose state can be saved."""

    def __init__(self, data: ImageSet, crop: int | None, seed: int, flip: bool = False):
        self.data = data
        self.flip = flip
        if crop is None:
            if not data.same_size():
                raise DataError("images differ in size: give --crop")
            h, w = data.images[0].shape[:2]
            self.crop = (h, w)
        else:
            self.crop = (crop, crop)
        self.eligible = np.array(
            [i for i, im in enumerate(data.images) if im.shape[0] >= self.crop[0] and im.shape[1] >= self.crop[1]]
        )
        if len(self.eligible) == 0:
            raise DataError(f"no image is at least {self.crop[0]}x{self.crop[1]}")
        # Sample big images more often: probability proportional to the number of crop positions.
        sizes = np.array(
            [(data.images[i].shape[0] - self.crop[0] + 1) * (data.images[i].shape[1] - self.crop[1] + 1)
             for i in self.eligible], dtype=np.float64)
        self.weights = sizes / sizes.sum() if crop is not None else None
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(n, C, h, w) uint8 crops and their labels (or None)."""
        idx = self.rng.choice(self.eligible, size=n, p=self.weights)
        ch, cw = self.crop
        out = np.empty((n, self.data.colors, ch, cw), dtype=np.uint8)
        for k, i in enumerate(idx):
            im = self.data.images[i]
            y0 = self.rng.integers(0, im.shape[0] - ch + 1)
            x0 = self.rng.integers(0, im.shape[1] - cw + 1)
            c = im[y0:y0 + ch, x0:x0 + cw].transpose(2, 0, 1)
            if self.flip and self.rng.random() < 0.5:
                c = c[:, :, ::-1]
            out[k] = c
        labels = self.data.labels[idx] if self.data.labels is not None else None
        return out, labels

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state
