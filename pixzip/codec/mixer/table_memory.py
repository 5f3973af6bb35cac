"""The hashed table's memory, written on several threads.

Every mixer state starts with a hashed table of empty buckets: each bucket's
check 0 and its 15 counters at p = 1/2 with no count (32768 << 16).  ``-9``'s
table takes 256 MB (2^22 buckets of 64 bytes), and all of it is written
before the first bit is coded.  Where memory is backed at its first touch
(here a 2-core AMD EPYC VM under Firecracker: the kernel's counters showed
huge pages and no compaction stall, so the time is the host's), that first
touch is most of the cost:

- a fresh 256 MB table took 1.33-2.00 s on one thread and 0.68-1.14 s on
  two (5 of each, alternated in one process);
- making ``-9``'s decoder states inside a decode of a 768x512 photo took
  1.77 s on one thread and 1.07 s on two (medians of 12; 0.7's two column
  parts: 0.78 s and 0.42 s).

The host backs each core's pages at once, so the table is written in
contiguous slices of whole buckets, one per thread, each by numpy with the
GIL released.  The values are the same on any number of threads; a small
table (below MIN_SLICE_BYTES per thread) is written on one.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

EMPTY_COUNTER = 32768 << 16     # a counter at p = 1/2 (16 bits) with a count of 0
MIN_SLICE_BYTES = 32 << 20      # each thread writes at least this much, else one thread writes all
MAX_THREADS = 8


def fill_threads(nbytes: int, threads: int) -> int:
    """The threads that write a table of ``nbytes``: at most ``threads`` (and MAX_THREADS), each at least
    MIN_SLICE_BYTES."""
    return max(1, min(threads, MAX_THREADS, nbytes // MIN_SLICE_BYTES))


def empty_table(parts: int, buckets: int, threads: int | None = None) -> np.ndarray:
    """``parts`` hashed tables of ``buckets`` empty buckets each, as uint32 (parts, buckets * 16): slot 0 of
    each bucket (its check) 0, slots 1..15 EMPTY_COUNTER.  ``threads``: the threads that may write it
    (numba's thread count when None)."""
    if threads is None:
        import numba
        threads = numba.get_num_threads()
    table = np.empty((parts, buckets * 16), np.uint32)
    flat = table.reshape(-1)
    n = fill_threads(flat.nbytes, threads)
    cut = [(len(flat) // 16 * i // n) * 16 for i in range(n + 1)]     # whole buckets per slice

    def write(i: int) -> None:
        part = flat[cut[i]:cut[i + 1]]
        part[:] = EMPTY_COUNTER
        part[::16] = 0

    if n == 1:
        write(0)
        return table
    # a slice that failed to be written would leave np.empty's bytes in the state: every helper's error is
    # raised here (``result``), never only printed by its thread
    with ThreadPoolExecutor(n - 1) as helpers:
        slices = [helpers.submit(write, i) for i in range(1, n)]
        write(0)
        for s in slices:
            s.result()
    return table
