"""Which crops a training step holds, and the loader that cuts them.

A step's global batch is a pure function of (seed, step): ``CropPlan.batch``
draws it from a generator keyed by both, never from a generator that runs
on.  So every rank of a data-parallel run, every ``DataLoader`` worker and
every resumed run agree on it without sharing state, and rank r of W takes
its slice ``[r*B/W, (r+1)*B/W)`` of the same B crops: W ranks at batch B/W
see exactly the crops that one rank at batch B sees.

Only the plan (image index, corner, flip) is drawn in the main process;
the pixels are read and cut in the loader's workers (``CropDataset``), so a
source need not hold its images in memory (see ``ImageSource``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence

import numpy as np


class ImageSource(Protocol):
    """Training images, read on demand.

    ``sizes`` and ``labels`` are known without decoding a pixel; ``load``
    decodes one image.  A source must pickle small (a worker gets a copy):
    paths and sizes, never pixels, unless it is an in-memory set."""

    @property
    def colors(self) -> int: ...

    @property
    def sizes(self) -> Sequence[tuple[int, int]]:   # (H, W) of each image (pairs, or an (N, 2) array)
        ...

    @property
    def labels(self) -> np.ndarray | None: ...

    def __len__(self) -> int: ...

    def load(self, i: int) -> np.ndarray:            # (H, W, C) uint8
        ...


@dataclass(frozen=True)
class Crop:
    """One training sample: image ``index``, its top-left corner, and whether it is flipped."""
    index: int
    y: int
    x: int
    flip: bool = False


class CropPlan:
    """The crops of every step of a run, drawn from (seed, step) alone.

    ``crop`` None takes whole images, which must then share one size.
    Images are drawn with probability proportional to their number of crop
    positions (a big image is drawn more often than a small one)."""

    def __init__(self, sizes: Sequence[tuple[int, int]], crop: int | None, seed: int, flip: bool = False):
        from .datasets import DataError
        sizes_ = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
        if len(sizes_) == 0:
            raise DataError("no images to train on")
        if crop is None:
            if len({tuple(s) for s in sizes_.tolist()}) != 1:
                raise DataError("images differ in size: give --crop")
            self.crop = (int(sizes_[0, 0]), int(sizes_[0, 1]))
        else:
            self.crop = (int(crop), int(crop))
        ch, cw = self.crop
        fits = (sizes_[:, 0] >= ch) & (sizes_[:, 1] >= cw)
        self.eligible = np.flatnonzero(fits)
        if len(self.eligible) == 0:
            raise DataError(f"no image is at least {ch}x{cw}")
        self.room = sizes_[self.eligible] - (ch - 1, cw - 1)   # crop positions along each axis
        positions = (self.room[:, 0] * self.room[:, 1]).astype(np.float64)
        self.weights = positions / positions.sum() if crop is not None else None
        self.seed = int(seed)
        self.flip = flip

    def batch(self, step: int, n: int) -> list[Crop]:
        """The ``n`` crops of global step ``step`` (0-based), the same on every call."""
        rng = np.random.default_rng([self.seed, int(step)])
        k = rng.choice(len(self.eligible), size=n, p=self.weights)
        y = rng.integers(0, self.room[k, 0])
        x = rng.integers(0, self.room[k, 1])
        flips = rng.random(n) < 0.5 if self.flip else np.zeros(n, dtype=bool)
        return [Crop(int(self.eligible[a]), int(b), int(c), bool(d)) for a, b, c, d in zip(k, y, x, flips)]


def rank_slice(n: int, rank: int, world: int) -> slice:
    """Rank ``rank``'s part of a global batch of ``n`` (n must divide by ``world``)."""
    if n % world:
        raise ValueError(f"the batch size {n} does not divide among {world} processes")
    per = n // world
    return slice(rank * per, (rank + 1) * per)


class StepBatches:
    """A batch sampler: for steps ``start`` .. ``stop``-1, this rank's slice of each global batch."""

    def __init__(self, plan: CropPlan, batch_size: int, start: int, stop: int, rank: int = 0, world: int = 1):
        self.plan, self.batch_size, self.start, self.stop = plan, batch_size, start, stop
        self.part = rank_slice(batch_size, rank, world)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[Crop]]:
        for step in range(self.start, self.stop):
            yield self.plan.batch(step, self.batch_size)[self.part]


def cut(image: np.ndarray, crop: Crop, size: tuple[int, int]) -> np.ndarray:
    """The (C, h, w) crop of an (H, W, C) image, flipped if the crop says so."""
    h, w = size
    c = image[crop.y:crop.y + h, crop.x:crop.x + w].transpose(2, 0, 1)
    if crop.flip:
        c = c[:, :, ::-1]
    return np.ascontiguousarray(c)


class CropDataset:
    """A map-style dataset whose keys are ``Crop``s: each item is read from
    the source and cut where it is asked for (in a loader worker)."""

    def __init__(self, source: ImageSource, size: tuple[int, int]):
        self.source, self.size = source, size

    def __getitem__(self, crop: Crop) -> tuple[np.ndarray, int]:
        labels = self.source.labels
        label = int(labels[crop.index]) if labels is not None else -1
        return cut(self.source.load(crop.index), crop, self.size), label


def _worker_message(e: Exception) -> str:
    """A loader worker's error in its own one line: torch re-raises it in
    this process with the worker's traceback as its message."""
    text = str(e).strip()
    if not text.startswith("Caught "):
        return text
    last = text.splitlines()[-1]
    name = f"{type(e).__module__}.{type(e).__qualname__}: "
    return last[len(name):] if last.startswith(name) else last


def loader(source: ImageSource, plan: CropPlan, batch_size: int, start: int, stop: int,
           rank: int = 0, world: int = 1, workers: int = 0):
    """A torch DataLoader of (uint8 (b, C, h, w), int64 labels (b,)) for
    steps ``start`` .. ``stop``-1 of this rank, cut by ``workers`` processes
    (0: in this one).  Labels are -1 where the source has none.  An image
    that cannot be read is a ``DataError`` of one line, naming it."""
    from torch.utils.data import DataLoader

    from .datasets import DataError

    class Loader(DataLoader):
        def __iter__(self):
            batches = super().__iter__()
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    return
                except DataError as e:
                    raise DataError(_worker_message(e)) from None
                yield batch

    return Loader(CropDataset(source, plan.crop),   # type: ignore[arg-type]
                      batch_sampler=StepBatches(plan, batch_size, start, stop, rank, world),
                      num_workers=workers, persistent_workers=False,
                      prefetch_factor=2 if workers else None)
