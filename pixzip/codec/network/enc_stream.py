"""The encoder's side of the stream: every symbol of an image with its
counts, in stream order (``contract``), from the full parallel pass.

The pass runs in the compiled kernels (``kernels.encoder``), or in the
PyTorch reference network on a torch device (a GPU); both give the same
integers.  Head inputs are computed block by block and kept only while the
schedule can still reach them; the counts (1.5 KB per pixel) are made in
chunks as the coder consumes them.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import threading

import numba

import numpy as np

from ...errors import PixzipError
from ..contract import step_destinations
from .kernels import encoder
from .kernels.program import program
from .modelfile import ModelFile
from .schedule import n_steps, plan, strip_layout

ENCODE_BLOCK_PIXELS = 128 * 1024   # rows the encoder's full pass computes at once, times the width
CHUNK_SYMBOLS = 1 << 14
RAMP_ROWS = 8      # the first block's rows when the next blocks are computed beside the coder (``_Heads``)


class _Heads:
    """The head inputs of every strip's rows, computed block by block (by
    ``encoder.RowHeads``, each block continuing from the one above; on a
    torch device each with a context halo), in a ring buffer that holds
    only the rows the schedule can still reach: rows alive at once plus one
    block.  That is about 130 bytes per pixel of those rows (the full
    distributions, 1.5 KB per pixel, are made in stream order as the coder
    consumes them)."""

    def __init__(self, net: ModelFile, pixels: np.ndarray, strip_height: int, block: int, device=None,
                 next_rows_in_thread: bool = False):
        h, w, c = pixels.shape
        lag = net.reach + 1
        self.prog = program(net)
        # on a torch device the full pass runs in PyTorch (the reference network); else in the compiled kernels
        self.torch_net = None
        if device is not None:
            from . import integer_torch as reference
            self.torch_net = reference.network(net).on(device)
        self.nb, self.S = strip_layout(h, strip_height)
        self.heights = [min(self.S, h - k * self.S) for k in range(self.nb)]
        self.strips = [pixels[k * self.S:k * self.S + self.heights[k]] for k in range(self.nb)]
        self.passes = [encoder.RowHeads(self.prog, strip) for strip in self.strips] \
            if self.torch_net is None else None
        self.block = min(block, self.S)
        # the compiled pass computes the next block in a thread of its own (one
        # core) while the coder consumes this one: the ring holds one more block
        self.in_thread = next_rows_in_thread and self.torch_net is None and self.block < self.S
        self.cap = min(self.S, (w - 1) // lag + 2 + (2 if self.in_thread else 1) * self.block)
        self.buf = np.empty((self.nb, self.cap, w, self.prog.head_width), np.int16)
        self.next = 0   # first row (in every strip) not computed yet
        self._pending: threading.Thread | None = None
        self._failed: list[BaseException] = []

    def covers(self, row: int) -> bool:
        return row < self.next

    def compute_through(self, row: int) -> None:
        """Compute every strip's rows up to ``row`` (the caller has consumed all
        rows that the ring slots being overwritten held), then start on the
        next block in the background."""
        while self.next <= row:
            if self._pending is not None:
                self._join()
            else:
                self._compute(self.next)
        if self._may_start():
            self._start_next()

    def advance(self, lowest: int) -> None:
        """Start the next block in the background, if none is being
        computed and the ring slots it takes hold only rows before row
        ``lowest`` (smaller row numbers), which the stream no longer reads:
        the caller has made the counts of every step that starts before it.  Without
        this, a block started only once the stream reached it: on a
        768x512 photo the coder waited 1.7 s for the last block of rows
        (AMD EPYC Zen 4, 2 cores)."""
        if self._pending is not None and not self._pending.is_alive():
            self._join()
        if self._may_start() and self._end(self.next) - self.cap <= lowest:
            self._start_next()

    def _may_start(self) -> bool:
        """Whether a next block may start in its thread: beside a coder, none being computed, rows left."""
        return self.in_thread and self._pending is None and self.next < self.S and _concurrent_launches()

    def _start_next(self) -> None:
        self._pending = threading.Thread(target=self._compute_in_thread, args=(self.next,), daemon=True)
        self._pending.start()

    def _end(self, a: int) -> int:
        """The end of the block of rows from a (``_compute``)."""
        return min(self.S, a + (min(self.block, max(RAMP_ROWS, a)) if self.in_thread else self.block))

    def _compute(self, a: int) -> None:
        """Compute the block of rows from a in every strip.  Beside a coder
        (``in_thread``) the blocks start small and double (8, 8, 16, 32, ...
        rows up to ``block``), so that the coder starts at once rather than
        after a whole block; a block continues from the one above, so the
        rows are the same.  Measured on a 768x512 photo, the mixer 3 in one
        state: the coder started after 0.9 s (128 rows on 2 cores), and
        after 0.1 s with the ramp."""
        b = self._end(a)
        for k in range(self.nb):
            if a < self.heights[k]:
                if self.torch_net is not None:
                    g = self.torch_net.strip_head_inputs(self.strips[k], a, min(b, self.heights[k]))
                else:
                    g = self.passes[k].rows(min(b, self.heights[k]))
                self.buf[k, np.arange(a, a + len(g)) % self.cap] = g
        self.next = b

    def _compute_in_thread(self, a: int) -> None:
        numba.set_num_threads(1)        # this thread's own setting: the other core codes
        try:
            self._compute(a)
        except BaseException as e:     # re-raised in the caller's thread
            self._failed.append(e)

    def _join(self, raise_failure: bool = True) -> None:
        self._pending.join()
        self._pending = None
        if self._failed and raise_failure:
            raise self._failed.pop()

    def close(self) -> None:
        """Wait for a block being computed (the generator was left early,
        perhaps by an error that a failure here must not replace)."""
        if self._pending is not None:
            self._join(raise_failure=False)

    def counts(self, strips, rows, cols, dest, n_symbols, out=None) -> np.ndarray:
        """Counts (n_symbols, 256) float64: position e's colour c in row dest[e, c]
        (written into ``out`` if given)."""
        return encoder.counts(self.prog, self.buf, strips, rows % self.cap, cols, dest, n_symbols, out)


def _concurrent_launches() -> bool:
    """Whether numba's threading layer takes parallel kernels from two
    threads at once (omp and tbb do; workqueue does not)."""
    try:
        return numba.threading_layer() in ("omp", "tbb")
    except ValueError:      # no parallel kernel has run yet
        return False


def symbols_and_counts(net: ModelFile, pixels: np.ndarray, strip_rows: int | None = None, strip_height: int = 0,
                       device=None, positions: bool = False, next_rows_in_thread: bool = False, reuse: int = 0):
    """The symbols of an image and their counts, in schedule order (step,
    colour, strip, row, exactly as the decoder consumes them), in chunks:
    yields (symbols (n,), counts (n, 256) float64, pixels covered), and with
    ``positions`` also where each symbol is: (rows, columns, colours, the
    first row of its strip), four (n,) int64 arrays.

    ``reuse`` > 0: the counts are written into ``reuse`` buffers in turn,
    so a chunk's counts are overwritten ``reuse`` chunks later; the caller
    must be done with them by then.  A fresh 32 MB array per chunk costs
    its page faults every time (the kernel zeroes each page).

    ``next_rows_in_thread``: the compiled pass computes the next block of
    rows in a thread of its own (one core) while the caller consumes this
    block's chunks; the same symbols and counts."""
    h, w, c = pixels.shape
    lag = net.reach + 1
    heads = _Heads(net, pixels, strip_height, strip_rows or encode_block_rows(w), device, next_rows_in_thread)
    nb, S = heads.nb, heads.S
    last = heads.heights[-1]
    steps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    pending = 0
    ring: list[np.ndarray | None] = [None] * reuse
    made = 0

    def buffer(n):
        """Counts for n symbols: the next buffer of the ring (grown as needed), or a new array."""
        nonlocal made
        if not reuse:
            return None
        i = made % reuse
        made += 1
        if ring[i] is None or len(ring[i]) < n:
            ring[i] = np.empty((max(n, CHUNK_SYMBOLS + c * w), 256), np.float64)
        return ring[i][:n]

    def chunk():
        k, r, j = (np.concatenate(v) for v in zip(*steps))
        dest = step_destinations([len(s[0]) for s in steps], c)
        sym = np.empty(c * len(k), np.int64)
        sym[dest] = pixels[k * S + r, j]
        n = c * len(k)
        out = (sym, heads.counts(k, r, j, dest, n, buffer(n)), len(k))
        if positions:
            where = np.empty((4, c * len(k)), np.int64)
            where[0][dest] = (k * S + r)[:, None]
            where[1][dest] = j[:, None]
            where[2][dest] = np.arange(c)[None, :]
            where[3][dest] = (k * S)[:, None]
            out += (tuple(where),)
        return out

    try:
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
                out = chunk()
                steps, pending = [], 0
                # the steps to come start at this one's first row or further down (a step's rows start at
                # ceil((t - width + 1) / lag), which grows with t): the rows above it are done with
                heads.advance(int(r.min()))
                yield out
        if steps:
            yield chunk()
    finally:
        heads.close()


def encode_block_rows(width: int) -> int:
    """Rows per encoder pass: 128 up to 1024 columns, fewer for wider images so
    that a pass's buffers (about 1 KB per pixel) stay near 150 MB, at least 32
    (the PyTorch pass recomputes a halo of rows above each block)."""
    return max(32, min(128, ENCODE_BLOCK_PIXELS // max(width, 1)))


def encode_device(device: str = "auto"):
    """The torch device of the encoder's full pass, or None for the compiled
    CPU kernels: "auto" is the GPU when torch is installed and sees one (torch
    is imported only where a GPU may be: a Linux machine without NVIDIA's
    device files is not asked); "torch" runs the PyTorch pass on the CPU (the
    GPU's code path, for tests)."""
    if device == "auto":
        device = "cuda" if _gpu_available() else "cpu"
    if device == "cpu":
        return None
    try:
        import torch
    except ImportError:
        raise PixzipError(f"encoding on {device!r} needs PyTorch: pip install 'pixzip[train]'") from None
    if device.split(":")[0] == "cuda" and not torch.cuda.is_available():
        raise PixzipError(f"device {device!r}: PyTorch sees no CUDA GPU on this machine (use --device auto or cpu)")
    return torch.device("cpu" if device == "torch" else device)


def _gpu_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    if "torch" not in sys.modules and sys.platform.startswith("linux") and not os.path.exists("/dev/nvidiactl"):
        return False
    import torch
    return torch.cuda.is_available()
