"""How the kernels' threads share the cores.

Waits.  Numba's threads meet at the start and the end of every parallel
kernel, hundreds of times per image.  GNU OpenMP (numba's ``omp`` layer)
lets a waiting thread spin for about 3 ms before it sleeps: when another
process holds a core, the spinner takes the time the thread it waits for
needs, and a decode took 10-15x longer (a -9 decode of a 768x512 photo,
2 cores, one other busy process: 268 s, against 17 s with passive waits).
``setup`` (run when pixzip is imported, before numba starts its threads)
bounds the spin to SPIN_COUNT spins (about 30 us), after which a waiting
thread sleeps and yields its core.  Measured on 2 shared cores
(benchmarks/decode_under_load.py, a 384x256 photo, paired runs): idle, -9
took 2.54 s with the 3 ms spin, 2.75 s with 3000 spins, 3.29 s with 1000
and 5.68 s with passive waits (a futex wake at every kernel); with one other
busy process 10.2 s, 7.0 s and 5.7 s.  A user's own OMP_WAIT_POLICY or
GOMP_SPINCOUNT wins; numba's other layers (tbb, workqueue) ignore both.

A wavefront step of the network alone, or of one mixer state, runs up to
seven parallel kernels (the vertical frontier, then per colour the
horizontal stack and the mixer); the ``-9`` decoder (``dec_pipeline``)
meets its threads once per step instead.  Each meeting costs a wait; a step of a few positions has too
little work to share, and two threads only wait for each other (a 6000x1
image: 2.75 s on one thread, 13.4 s on two on a busy 2-core machine).  So a
step of fewer than ``MIN_SHARED`` positions runs on one thread.  The
kernels' results never depend on their thread count.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager

# Positions per step below which one thread decodes it.  The network's
# kernels make one task per MIN_BLOCK (16) positions, so below 32 a second
# thread has nothing to do there (benchmarks/decode_under_load.py --thin
# times one thread against two by step size).
MIN_SHARED = 32

# GNU OpenMP's spins before a waiting thread sleeps (about 100 per microsecond).
SPIN_COUNT = "3000"


def setup(environ=os.environ) -> None:
    """Bound GNU OpenMP's spin-waits, unless the user chose a wait policy or
    spin count: set before numba's threading layer loads, which reads them once."""
    if "OMP_WAIT_POLICY" not in environ and "GOMP_SPINCOUNT" not in environ:
        environ["GOMP_SPINCOUNT"] = SPIN_COUNT


# How often a decoder looks again at what else runs on the machine (seconds).
BUSY_CHECK_SECONDS = 0.1


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def others_running() -> int:
    """Threads of other processes that are running or ready to run now: the
    kernel's count of runnable tasks (/proc/loadavg's fourth field) less this
    process's own threads in state R.  0 where /proc cannot tell."""
    try:
        with open("/proc/loadavg") as f:
            runnable = int(f.read().split()[3].split("/")[0])
        own = 0
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/stat") as f:
                    stat = f.read()
            except OSError:
                continue            # a thread that has just ended
            own += stat[stat.rindex(")") + 2:][:1] == "R"
        return max(0, runnable - own)
    except (OSError, ValueError, IndexError):
        return 0


@contextmanager
def per_step():
    """Yields ``share(n)``: run the kernels that follow, until the next call,
    on all the caller's numba threads if they decode at least MIN_SHARED
    positions and the cores are free, else on one.  The caller's thread
    count comes back after.

    The cores are free when the threads of other processes that run now
    (``others_running``, looked at every BUSY_CHECK_SECONDS) leave a core
    to each of the caller's threads.  Threads that meet at every kernel
    wait for the slowest: with another process on one of 2 cores, the
    thread that shares its core runs half the time, and the other waits.
    One thread then decodes as fast as it does idle."""
    import numba
    threads = numba.get_num_threads()
    now = [threads]
    cores = _cores()
    busy = [False, -1.0]          # the cores are busy; when that was looked at

    def share(n: int) -> None:
        if threads > 1 and n >= MIN_SHARED:
            t = time.monotonic()
            if t - busy[1] >= BUSY_CHECK_SECONDS:
                busy[:] = [others_running() + threads > cores, t]
        want = threads if n >= MIN_SHARED and not busy[0] else 1
        if want != now[0]:
            numba.set_num_threads(want)
            now[0] = want
    try:
        yield share
    finally:
        if now[0] != threads:
            numba.set_num_threads(threads)
