"""Training images in tar shards of the WebDataset layout.

``write_shards`` writes them with webdataset's ``ShardWriter``: each image
is a sample keyed by its number (``000123``) with two members, ``.png``
(the exact pixels the training reader reads from the source, 8-bit gray or
RGB, so that a shard trains exactly as its folder does and any PNG reader
reads it) and ``.json`` (h, w, colours, the source's name); a ``.cls``
member carries an npz file's label.

``index_shards`` reads them for training, by random access: the crops of a
step are a function of (seed, step), so the reader must fetch any image
(webdataset 1.0 reads shards as streams only).  The standard library's
``tarfile`` lists each shard's members from their headers (offsets and
sizes), the ``.json`` members give the sizes (an image's own header where
another tool wrote no ``.json``), and ``ShardSource.load`` reads one
member by seek and decodes it, in a loader worker.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ..atomic import atomic_write
from .datasets import IMAGE_SUFFIXES, DataError, Listed, _warn_converted, catalogue, decode, read_header

MAX_COUNT = 10_000            # images per shard, at most
MAX_SIZE = 1_000_000_000      # bytes per shard, about (a shard ends after the image that reaches it)
_IMAGE_EXTS = {s[1:] for s in IMAGE_SUFFIXES}


def shard_name(prefix, number: int) -> Path:
    return Path(f"{prefix}-{number:06d}.tar")


def _existing(prefix: Path) -> list[Path]:
    """The shards already written under ``prefix`` (PREFIX-NNNNNN.tar)."""
    pattern = re.compile(re.escape(prefix.name) + r"-\d{6}\.tar")
    parent = prefix.parent
    return sorted(p for p in parent.iterdir() if pattern.fullmatch(p.name)) if parent.is_dir() else []


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).save(buf, "PNG")
    return buf.getvalue()


def write_shards(paths, prefix, max_count: int = MAX_COUNT, max_size: int = MAX_SIZE, overwrite: bool = False,
                 progress: Callable[[int], None] | None = None) -> dict:
    """Write the images under ``paths`` (read as training reads them, in
    their own colours) into ``PREFIX-000000.tar``, ``PREFIX-000001.tar``, ...
    of at most ``max_count`` images and about ``max_size`` bytes each.
    Shards are written beside their names and moved there once all are
    complete; existing shards of ``prefix`` are refused unless ``overwrite``
    (which also removes those of the old set beyond the new one; the old
    set is never read as input).  Returns
    {"shards": paths, "images": n, "bytes": total}."""
    import webdataset as wds
    prefix = Path(prefix)
    old = _existing(prefix)
    if old and not overwrite:
        raise DataError(f"{old[0]}: already exists (give -f to overwrite)")
    parts, converted = catalogue(paths, skip={p.resolve() for p in old})     # never the set it replaces
    if not parts:
        raise DataError(f"{', '.join(map(str, paths))}: no images found")
    _warn_converted(converted)
    try:
        prefix.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{prefix.name}.", dir=prefix.parent))
    except OSError as e:
        raise DataError(f"{prefix.parent}: cannot write there ({e.strerror or e})") from None
    try:
        n = 0
        # .part, never .tar: a folder walk for training data never takes a shard being written
        with wds.ShardWriter(str(work / "%06d.part"), maxcount=max_count, maxsize=max_size, verbose=0,
                             encoder=False, mtime=0) as sink:
            for part in parts:
                for i in range(len(part)):
                    pixels = part.raw(i)
                    meta = {"h": pixels.shape[0], "w": pixels.shape[1], "colours": pixels.shape[2],
                            "source": part.names[i]}
                    sample = {"__key__": f"{n:06d}", "png": _png(pixels), "json": json.dumps(meta).encode()}
                    if part.labels is not None:
                        sample["cls"] = str(int(part.labels[i])).encode()
                    sink.write(sample)
                    n += 1
                    if progress:
                        progress(1)
        written = sorted(work.glob("*.part"))
        out = [shard_name(prefix, k) for k in range(len(written))]
        for src, dst in zip(written, out):
            try:
                atomic_write(dst, lambda tmp, src=src: os.replace(src, tmp), overwrite=overwrite)
            except FileExistsError:
                raise DataError(f"{dst}: already exists (give -f to overwrite)") from None
        for stale in set(old) - set(out):
            stale.unlink()
    except OSError as e:
        raise DataError(f"{e.filename or prefix}: cannot write the shards ({e.strerror or e})") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"shards": [str(p) for p in out], "images": n, "bytes": sum(p.stat().st_size for p in out)}


# -- reading -------------------------------------------------------------------
class ShardSource(Listed):
    """The images of tar shards, each read by seek from its shard when it is loaded."""

    def __init__(self, shards: list[str], shard_of, offsets, lengths, members: list[str], sizes, channels,
                 convert, labels: np.ndarray | None = None):
        self.shards, self.members = shards, members
        self.shard_of = np.asarray(shard_of, dtype=np.int32)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        super().__init__(members, sizes, channels, convert, labels)
        self.names = _Names(self)    # "shard[member]", made when asked for

    def _read(self, i: int) -> np.ndarray:
        shard, where = self.shards[self.shard_of[i]], self.names[i]
        n = int(self.lengths[i])
        try:
            with open(shard, "rb") as f:
                f.seek(int(self.offsets[i]))
                data = f.read(n)
        except OSError as e:
            raise DataError(f"{shard}: cannot read it ({e.strerror or e})") from None
        if len(data) != n:
            raise DataError(f"{where}: cut short (the shard is shorter than when it was indexed)")
        return decode(where, data, bool(self.convert[i]))


class _Names:
    """A shard source's image names ("shard[member]"), without a list of them."""

    def __init__(self, source: ShardSource):
        self.source = source

    def __len__(self) -> int:
        return len(self.source.members)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        s = self.source
        return f"{s.shards[int(s.shard_of[i])]}[{s.members[i]}]"

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def _key(name: str) -> tuple[str, str]:
    """A member's sample key and extension, by WebDataset's rule: the key
    runs to the first dot of the file name (``a/b.seg.png``: ``a/b``, ``seg.png``)."""
    folder, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (folder + "/" if folder else "") + stem, ext.lower()


def _members(tar: str, f) -> tuple[dict[str, dict[str, tarfile.TarInfo]], tarfile.TarFile]:
    """The samples of an open tar file (key -> extension -> member), in
    order, from the members' headers, and the tar file to read them from;
    a shard cut short or damaged is refused."""
    size = os.fstat(f.fileno()).st_size
    samples: dict[str, dict[str, tarfile.TarInfo]] = {}
    last = None
    try:
        tf = tarfile.open(fileobj=f, mode="r:")
        for m in tf:
            if m.offset_data + m.size > size:
                raise DataError(f"{tar}[{m.name}]: cut short ({m.size} bytes from byte {m.offset_data}, "
                                f"the file has {size})")
            last = m.name
            if m.isfile():
                key, ext = _key(m.name)
                samples.setdefault(key, {})[ext] = m
    except tarfile.TarError as e:
        after = f" after member {last}" if last else ""
        raise DataError(f"{tar}: not a readable tar file{after} ({e}; shards are uncompressed tar)") from None
    end = tf.offset
    f.seek(end)
    tail = f.read(512)
    if len(tail) < 512 or tail.strip(b"\0"):
        where = f"after member {last}" if last else "at its start"
        raise DataError(f"{tar}: damaged or cut short {where} (no member header and no end of archive at "
                        f"byte {end})")
    return samples, tf


def _read_member(f, m: tarfile.TarInfo) -> bytes:
    f.seek(m.offset_data)
    return f.read(m.size)


def _sizes_from_json(where: str, data: bytes) -> tuple[int, int, int] | None:
    """(h, w, colours) of a ``.json`` member that says them, else None (another tool's metadata)."""
    try:
        meta = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{where}: not JSON ({e})") from None
    if not isinstance(meta, dict):
        return None
    h, w, c = meta.get("h"), meta.get("w"), meta.get("colours")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in (h, w, c)) and c in (1, 3) and h > 0 and w > 0:
        return h, w, c
    return None


def index_shards(tars) -> tuple[ShardSource, list[str]]:
    """The images of the tar shards ``tars`` as one lazy source, and those
    it converts to RGB ("shard[member] (mode)").  Reads member headers,
    the ``.json`` and ``.cls`` members, and an image's own header only where
    no ``.json`` says its size."""
    shards: list[str] = []
    shard_of, offsets, lengths, members, sizes, channels, convert = [], [], [], [], [], [], []
    labels: list[int] | None = []
    converted: list[str] = []
    for k, tar in enumerate(map(str, tars)):
        shards.append(tar)
        try:
            with open(tar, "rb") as f:
                samples, tf = _members(tar, f)
                for key, sample in samples.items():
                    images = sorted(ext for ext in sample if ext in _IMAGE_EXTS)
                    if len(images) != 1:
                        what = "no image member" if not images else f"{len(images)} image members"
                        raise DataError(f"{tar}[{key}]: {what} (it has {', '.join(sorted(sample))})")
                    m = sample[images[0]]
                    where = f"{tar}[{m.name}]"
                    known = _sizes_from_json(f"{tar}[{sample['json'].name}]", _read_member(f, sample["json"])) \
                        if "json" in sample else None
                    if known:
                        h, w, c, mode = *known, None
                    else:       # another tool's shard: the image's own header
                        h, w, c, mode = read_header(where, tf.extractfile(m))
                    if mode is not None:
                        converted.append(f"{where} ({mode})")
                    if labels is not None and "cls" in sample:
                        text = _read_member(f, sample["cls"])
                        try:
                            labels.append(int(text))
                        except ValueError:
                            raise DataError(f"{tar}[{sample['cls'].name}]: not a class number") from None
                    else:
                        labels = None
                    shard_of.append(k)
                    offsets.append(m.offset_data)
                    lengths.append(m.size)
                    members.append(m.name)
                    sizes.append((h, w))
                    channels.append(c)
                    convert.append(mode is not None)
        except OSError as e:
            raise DataError(f"{tar}: cannot read it ({e.strerror or e})") from None
    y = np.array(labels, dtype=np.int64) if labels and len(labels) == len(members) else None
    return ShardSource(shards, shard_of, offsets, lengths, members, sizes, channels, convert, y), converted
