"""Training and evaluation data: image folders/files, tar shards and npz arrays.

Images are uint8 arrays of shape (H, W, C).  Paths are always given by the
caller.  ``open_source`` lists them lazily (a ``crops.ImageSource``): only
paths, (H, W) sizes and colour counts are kept, read from the images'
headers without decoding a pixel, and ``load(i)`` decodes one image (in a
DataLoader worker), so a training set need not fit in memory.  npz arrays
stay in memory (an ``ImageSet``).  ``load_images`` reads the same images
into memory, by the same rules (validation, export calibration, eval).

Image files are read by the codec's one reader (``codec.images``); a file
it would refuse (a palette, alpha, 16 bits, a transparent colour, frames)
is converted to 8-bit RGB on purpose, since training needs pixels, not an
exact copy.  Its header says so when it is listed, and one warning names
the files.  Grayscale images become RGB when any image is RGB or
``colors`` is 3; with ``colors=1`` RGB images become luma.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..codec.format.images import read_image_file
from ..errors import ImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".ppm", ".pgm"}
SHARD_SUFFIX = ".tar"
# what Pillow raises for a file it cannot read
_UNREADABLE = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


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



# -- reading one image ---------------------------------------------------------
def _reason(e: BaseException) -> str:
    return " ".join(str(e).split())[:160] or e.__class__.__name__


def _needs_conversion(im: Image.Image) -> bool:
    """Whether the codec's reader would refuse an image, from what Pillow's
    lazy open says of its header: a mode other than 8-bit gray or RGB, a
    transparent colour, several frames, 16-bit samples, a PPM maxval other
    than 255.  (A file this misses is still converted when it is read.)"""
    if im.mode not in ("L", "RGB") or "transparency" in im.info or getattr(im, "n_frames", 1) > 1:
        return True
    for tile in im.tile:
        args = tile.args if isinstance(tile.args, tuple) else (tile.args,)
        if args and isinstance(args[0], str) and "16" in args[0]:
            return True
        if tile.codec_name == "ppm" and len(args) > 1 and args[1] != 255:
            return True
    return False


def read_header(where: str, f) -> tuple[int, int, int, str | None]:
    """(H, W, colours, mode) of an image from its header alone (a path or a
    binary file object; Pillow's lazy open decodes no pixel): colours as the
    training reader reads it (1 or 3), and the file's mode when the reader
    converts it to 8-bit RGB, else None."""
    try:
        with Image.open(f) as im:
            w, h = im.size
            if _needs_conversion(im):
                return h, w, 3, im.mode
            return h, w, 1 if im.mode == "L" else 3, None
    except _UNREADABLE as e:
        raise DataError(f"{where}: not a readable image ({_reason(e)})") from None


def decode(where: str, f, convert: bool = False) -> np.ndarray:
    """One image's (H, W, C) pixels as training reads them: by the codec's
    reader, or converted to 8-bit RGB (``convert``, or where the reader
    refuses the file).  ``f`` is a path or the file's bytes; ``where`` names
    it in errors."""
    data = f if isinstance(f, bytes) else None
    if not convert:
        try:
            return read_image_file(f if data is None else where, data)[0]
        except ImageError as e:
            refusal = str(e)
    try:
        with Image.open(io.BytesIO(data) if data is not None else f) as im:
            pixels = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except _UNREADABLE as e:
        raise DataError(f"{where}: not a readable image ({_reason(e)})") from None
    if not convert:     # its header looked plain: say what was converted after all
        warnings.warn(f"converted to 8-bit RGB for training: {refusal}", stacklevel=2)
    return pixels


def _to_colors(im: np.ndarray, colors: int) -> np.ndarray:
    if im.shape[2] == colors:
        return im
    if colors == 3:
        return np.repeat(im, 3, axis=2)
    luma = np.asarray(Image.fromarray(im).convert("L"), dtype=np.uint8)
    return luma[..., None]


# -- lazy sources --------------------------------------------------------------
class Listed:
    """Images known by their headers and decoded one at a time: names,
    (H, W) sizes, colours as read and whether each is converted; the
    ``colors`` every image is given (set once all the data is listed).
    A subclass reads one image (``_read``); the base checks its size and
    gives it the set's colours.  Pickles small: no pixels."""

    def __init__(self, names: list[str], sizes, channels, convert, labels: np.ndarray | None = None):
        self.names = names
        self._sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
        self.channels = np.asarray(channels, dtype=np.uint8)
        self.convert = np.asarray(convert, dtype=bool)
        self.labels = labels
        self.colors = int(self.channels.max()) if len(self.channels) else 3

    @property
    def sizes(self) -> np.ndarray:      # (N, 2): (H, W) of each image
        return self._sizes

    def __len__(self) -> int:
        return len(self.names)

    def _read(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def raw(self, i: int) -> np.ndarray:
        """Image ``i`` as read, in its own colours."""
        im = self._read(i)
        h, w = (int(v) for v in self._sizes[i])
        if im.shape[:2] != (h, w):
            raise DataError(f"{self.names[i]}: {im.shape[0]}x{im.shape[1]} pixels when read, but {h}x{w} "
                            f"when listed (did it change?)")
        return im

    def load(self, i: int) -> np.ndarray:
        return _to_colors(self.raw(i), self.colors)


class FileSource(Listed):
    """Image files, listed by their headers and decoded one at a time."""

    def _read(self, i: int) -> np.ndarray:
        return decode(self.names[i], self.names[i], bool(self.convert[i]))


def list_files(files: Sequence[Path]) -> tuple[FileSource, list[str]]:
    """The image files as a lazy source, and the files it converts ("path (mode)")."""
    rows = [read_header(str(f), f) for f in files]
    converted = [f"{f} ({row[3]})" for f, row in zip(files, rows) if row[3] is not None]
    return FileSource([str(f) for f in files], [r[:2] for r in rows], [r[2] for r in rows],
                      [r[3] is not None for r in rows]), converted


class _Arrays:
    """An npz file's images, in memory, before the set's colours are known."""

    def __init__(self, images: list[np.ndarray], labels: np.ndarray | None, names: list[str]):
        self.images, self.labels, self.names = images, labels, names
        self.channels = np.array([im.shape[2] for im in images], dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.images)

    def raw(self, i: int) -> np.ndarray:
        return self.images[i]


class Chain:
    """Sources one after the other (files, npz arrays, shards), as one."""

    def __init__(self, parts: list):
        self.parts = parts
        self.starts = np.cumsum([0] + [len(p) for p in parts])
        self._sizes = np.concatenate([np.asarray(p.sizes, dtype=np.int64).reshape(-1, 2) for p in parts])
        labels = [p.labels for p in parts]
        self.labels = np.concatenate(labels) if all(y is not None for y in labels) else None
        self.colors = parts[0].colors

    @property
    def sizes(self) -> np.ndarray:
        return self._sizes

    @property
    def names(self) -> list[str]:
        return [n for p in self.parts for n in p.names]

    def __len__(self) -> int:
        return int(self.starts[-1])

    def _part(self, i: int):
        k = int(np.searchsorted(self.starts, i, side="right")) - 1
        return self.parts[k], i - int(self.starts[k])

    def load(self, i: int) -> np.ndarray:
        part, j = self._part(i)
        return part.load(j)


def _box(im: np.ndarray, f: int) -> np.ndarray | None:
    """The rounded f x f box average of an image (None if it would be empty)."""
    h, w = im.shape[0] // f, im.shape[1] // f
    if h == 0 or w == 0:
        return None
    box = im[: h * f, : w * f].reshape(h, f, w, f, -1).astype(np.uint32).sum(axis=(1, 3))
    return ((box + f * f // 2) // (f * f)).astype(np.uint8)


class Downscaled:
    """A source and copies of its images downscaled by 2, 4, ... 2**levels,
    made when an image is loaded, in the order: every image, then every copy
    by 2, then by 4, ... (copies that would be empty are left out)."""

    def __init__(self, base, levels: int):
        self.base = base
        sizes = np.asarray(base.sizes, dtype=np.int64).reshape(-1, 2)
        index, factor = [np.arange(len(sizes))], [np.ones(len(sizes), dtype=np.int64)]
        for level in range(1, levels + 1):
            f = 2 ** level
            keep = np.flatnonzero((sizes[:, 0] >= f) & (sizes[:, 1] >= f))
            index.append(keep)
            factor.append(np.full(len(keep), f, dtype=np.int64))
        self.index, self.factor = np.concatenate(index), np.concatenate(factor)
        self._sizes = sizes[self.index] // self.factor[:, None]
        self.labels = base.labels[self.index] if base.labels is not None else None
        self.colors = base.colors

    @property
    def sizes(self) -> np.ndarray:
        return self._sizes

    @property
    def names(self) -> list[str]:
        names = self.base.names
        return [names[i] if f == 1 else f"{names[i]}@1/{f}" for i, f in zip(self.index.tolist(), self.factor.tolist())]

    def __len__(self) -> int:
        return len(self.index)

    def load(self, i: int) -> np.ndarray:
        im = self.base.load(int(self.index[i]))
        f = int(self.factor[i])
        return im if f == 1 else _box(im, f)


# -- paths ---------------------------------------------------------------------
def _brace(p: Path) -> list[Path]:
    """The files of a brace pattern (``shards-{000000..000009}.tar``), each of which must exist."""
    try:
        from braceexpand import braceexpand
    except ModuleNotFoundError:
        raise DataError(f"{p}: no such file (a brace pattern needs braceexpand: pip install webdataset)") from None
    files = [Path(q) for q in braceexpand(str(p))]
    for f in files:
        if not f.is_file():
            raise DataError(f"{f}: no such file (from {p})")
    return files


def data_files(paths, skip=frozenset()) -> list[Path]:
    """The files under ``paths``: files as given, brace patterns expanded,
    folders walked (sorted) for images and .tar shards; none of ``skip``
    (resolved paths)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists() and "{" in str(p):
            out += _brace(p)
        elif not p.exists():
            raise DataError(f"{p}: no such file or directory")
        elif p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES | {SHARD_SUFFIX})
            if not files:
                raise DataError(f"{p}: folder holds no images")
            out += files
        else:
            out.append(p)
    return [f for f in out if f.resolve() not in skip] if skip else out


def catalogue(paths, skip=frozenset()) -> tuple[list, list[str]]:
    """The data under ``paths`` (but ``skip``) as parts in order (runs of
    image files, runs of shards, each npz file), each in its own colours,
    and the files converted to RGB.  Nothing is decoded but npz arrays."""
    parts: list = []
    converted: list[str] = []
    run: list[Path] = []
    kind = None

    def flush() -> None:
        if run and kind == "image":
            part, conv = list_files(run)
        elif run:
            from .shards import index_shards
            part, conv = index_shards(run)
        else:
            return
        parts.append(part)
        converted.extend(conv)
        run.clear()

    for f in data_files(paths, skip):
        suffix = f.suffix.lower()
        if suffix == ".npz":
            flush()
            xs, y = _load_npz(f)
            parts.append(_Arrays(xs, y, [f"{f}[{i}]" for i in range(len(xs))]))
            continue
        k = "shard" if suffix == SHARD_SUFFIX else "image"
        if k != kind:
            flush()
            kind = k
        run.append(f)
    flush()
    return [p for p in parts if len(p)], converted


def _warn_converted(converted: list[str], stacklevel: int = 3) -> None:
    if converted:
        more = f" and {len(converted) - 3} more" if len(converted) > 3 else ""
        warnings.warn(f"{len(converted)} image(s) converted to 8-bit RGB for training: "
                      f"{', '.join(converted[:3])}{more}", stacklevel=stacklevel)


def open_source(paths, colors: int | None = None, downscale: int = 0, _stacklevel: int = 3):
    """The training images under ``paths`` (files, folders, .tar shards or
    brace patterns of them, .npz files) as a lazy ``crops.ImageSource``,
    with copies downscaled by 2 .. 2**downscale.  Image files and shards are
    listed from their headers and decoded one at a time; npz arrays are
    held in memory."""
    parts, converted = catalogue(paths)
    if not parts:
        raise DataError(f"{', '.join(map(str, paths))}: no images found")
    _warn_converted(converted, _stacklevel)
    want = colors or max(int(p.channels.max()) for p in parts)
    for i, p in enumerate(parts):
        if isinstance(p, _Arrays):
            parts[i] = ImageSet([_to_colors(im, want) for im in p.images], p.labels, p.names)
        else:
            p.colors = want
    source = parts[0] if len(parts) == 1 else Chain(parts)
    return Downscaled(source, downscale) if downscale > 0 else source


def decoded_bytes(source) -> int:
    """The bytes a source's images take decoded, from their listed sizes (nothing is decoded)."""
    sizes = np.asarray(source.sizes, dtype=np.int64).reshape(-1, 2)
    return int((sizes[:, 0] * sizes[:, 1]).sum()) * int(source.colors)


def in_memory(source) -> ImageSet:
    """Every image of a source decoded once and held in memory (the same pixels, order, labels and names)."""
    if isinstance(source, ImageSet):
        return source
    return ImageSet([source.load(i) for i in range(len(source))], source.labels, list(source.names))


def load_images(paths, colors: int | None = None) -> ImageSet:
    """Every image under ``paths`` in memory, read as ``open_source`` reads them."""
    return in_memory(open_source(paths, colors=colors, _stacklevel=4))
