"""How the decoder's steps share the cores.

A wavefront step runs up to seven parallel kernels (the vertical frontier,
then per colour the horizontal stack and the mixer's column parts).  Each
launch makes the threads meet twice; a step of a few positions has too
little work to share, and two threads only wait for each other (a 6000x1
image: 2.75 s on one thread, 13.4 s on two on a busy 2-core machine).  So a
step of fewer than ``MIN_SHARED`` positions runs on one thread.  The
kernels' results never depend on their thread count.
"""
from __future__ import annotations

from contextlib import contextmanager

import numba

# Positions per step below which one thread decodes it.  The network's
# kernels make one task per MIN_BLOCK (16) positions, so below 32 a second
# thread has nothing to do; measured on 2 cores, steps of 32-64 positions
# gain from the second thread (benchmarks/decode_under_load.py --thin).
MIN_SHARED = 32


@contextmanager
def per_step():
    """Yields ``share(n)``: run the kernels that follow, until the next call,
    on all the caller's numba threads if they decode at least MIN_SHARED
    positions, else on one.  The caller's thread count comes back after."""
    threads = numba.get_num_threads()
    now = [threads]

    def share(n: int) -> None:
        want = threads if n >= MIN_SHARED else 1
        if want != now[0]:
            numba.set_num_threads(want)
            now[0] = want
    try:
        yield share
    finally:
        if now[0] != threads:
            numba.set_num_threads(threads)
