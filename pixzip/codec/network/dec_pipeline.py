"""The ``-9`` decoder (coder 3): the network's wavefront and the mixer's
column parts in one compiled loop per thread (``kernels.pipeline``), or,
with one part, the network on one thread and the mixer's one state on the
other, handing each other groups of rows (``kernels.handover``).

The steps run in chunks of ``CHUNK_STEPS``.  For each chunk the caller's
thread and ``threads - 1`` helper threads each run ``run_steps`` on their
share of every step, meeting at a barrier per step; between chunks this
module reports progress and decides again how many threads to use: all of
them (at most one per part) when the chunk's steps average at least
``threads.MIN_SHARED`` positions and the cores are free, else one (threads
that meet at every step would wait for the one that shares its core, as
the step kernels of ``dec_wavefront`` would; ``codec.threads``).  The
pixels never depend on the threads.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numba
import numpy as np

from ...errors import CorruptError
from .. import threads as step_threads
from .dec_wavefront import buffers
from .kernels import handover as KH
from .kernels import pipeline as KP
from .kernels.decoder import StepBuffers
from .modelfile import ModelFile
from .schedule import n_steps

CHUNK_STEPS = 96           # steps per compiled call (about 0.1-0.2 s of a 768x512 image's 5,400)


def positions_per_step(t0: int, t1: int, S: int, nb: int, last: int, width: int, lag: int) -> np.ndarray:
    """The positions each step of t0..t1-1 decodes (``schedule.plan``'s counts)."""
    t = np.arange(t0, t1)
    lo = np.maximum(0, -(-(t - width + 1) // lag))
    hi = np.minimum(S - 1, np.floor_divide(t, lag))
    per = np.maximum(0, hi - lo + 1) * (nb - 1) + np.maximum(0, np.minimum(hi, last - 1) - lo + 1)
    return per


def run_chunk(threads: int, t0: int, t1: int, run: Callable[[int, int, int, int], int],
              pool: ThreadPoolExecutor | None, flags: np.ndarray) -> int:
    """Steps t0..t1-1 on ``threads`` threads (this one and threads - 1 of
    ``pool``): ``run(k, threads, t0, t1)`` is thread k's share; returns the
    pixels decoded.  An exception in any thread raises the flag that stops
    the others at their next barrier, then is raised here."""
    flags[:] = 0

    def guarded(k):
        try:
            return run(k, threads, t0, t1)
        except BaseException:
            flags[KP.ABORT] = 1          # the others stop waiting for this one
            raise
    helpers = [pool.submit(guarded, k) for k in range(1, threads)] if threads > 1 else []
    error = None
    try:
        done = guarded(0)
    except BaseException as e:          # the helpers still run: wait for them, then raise
        error, done = e, 0
    for f in helpers:
        try:
            done += f.result()
        except BaseException as e:
            error = error or e
    if error is not None:
        raise error
    return done


def decode_parts(net: ModelFile, height: int, width: int, strip_height: int, decoder,
                 progress: Callable[[int], None] | None = None, trace: np.ndarray | None = None,
                 gray: bool = False) -> np.ndarray:
    """Decode a coder-3 payload into ``decoder.img`` (a ``column_parts.Decoder``
    or a mixer version's, holding the parts' states and streams); returns
    the image.  ``gray``: the decoder's image is gray, seen by the RGB
    network as (L, L, L) (coder 7).  One part (one state) runs the network
    on one thread and the mixer on the other (``kernels.handover``).
    Raises ``CorruptError`` when a part's data ends long before the image
    does.  ``trace``: (threads, steps + R) int64 zeros, to receive each
    thread's CPU ns per step (``kernels.pipeline.run_steps``, two parts or
    more; measuring only)."""
    prog, lay, geo, rings, step, scratch, cond = buffers(net, height, width, strip_height)
    parts = len(decoder.bounds) - 1
    shape = (lay.S, lay.nb, lay.last, net.colors, 1 if gray else net.colors)
    tables = decoder.kernel.tables()
    short = np.zeros(parts, np.int64)
    if parts == 1:
        # one state: the network's thread and the mixer's (``kernels.handover``), or one thread taking both
        most = 2 if numba.get_num_threads() >= 2 else 1
        flags = KH.flags_array(HANDOVER_GROUPS)
        clock = np.zeros((2, len(KH.PHASES)), np.int64)
        data = decoder.data[decoder.starts[0]:decoder.starts[1]]
        odd = StepBuffers(*(np.zeros_like(a) for a in step[:-1]), step.count_rows)   # odd steps' buffers
        # the early sums of the next step's frontier (``kernels.handover``), by the parity of its step
        L, p = rings.V.shape[0], rings.V.shape[3]
        early = np.zeros((2, L, len(step.count_rows) if EARLY_SUMS else 0, 2 * p), np.int32)
        early_at = np.full(2, -(1 << 62), np.int64)     # the step each holds, once made whole

        def run(k, threads, t0, t1):
            return KH.run_role(KH.BOTH if threads == 1 else k, t0, t1, HANDOVER_GROUPS, VERTICAL_SHARE, shape, geo,
                               rings, prog.weights, cond, scratch, step, odd, decoder.state, tables, decoder.img,
                               decoder.decs, data, short, flags, clock, early, early_at)
    else:
        most = max(1, min(numba.get_num_threads(), parts, scratch.x.shape[0]))
        flags = KP.flags_array(most)
        clock = np.zeros((most, len(KP.PHASES)), np.int64)
        trace = np.zeros((most, 0), np.int64) if trace is None else trace

        def run(k, threads, t0, t1):
            return KP.run_steps(k, threads, t0, t1, shape, geo, rings, prog.weights, cond, scratch, step,
                                decoder.state, tables, decoder.img, decoder.bounds, decoder.decs, decoder.data,
                                decoder.starts, short, flags, clock, trace)
    steps = n_steps(lay.S, width, geo.lag)
    pool = ThreadPoolExecutor(most - 1, thread_name_prefix="pixzip-steps") if most > 1 else None
    cores = step_threads._cores()
    try:
        for t0 in range(-net.reach, steps, CHUNK_STEPS):
            t1 = min(steps, t0 + CHUNK_STEPS)
            threads = 1
            if most > 1 and positions_per_step(t0, t1, lay.S, lay.nb, lay.last, width, geo.lag).mean() \
                    >= step_threads.MIN_SHARED and step_threads.others_running() + most <= cores:
                threads = most
            done = run_chunk(threads, t0, t1, run, pool, flags)
            if short.any():
                raise CorruptError("the payload ends long before the image does")
            if progress is not None and done:
                progress(done)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        last_clock[:] = [clock]
    return decoder.img


# the runs of a step's positions handed over between the network's and the mixer's threads, and the share (of
# 1024) of each run's vertical frontier that the mixer's thread computes.  Fewer runs leave the threads waiting
# for each other at every colour; more make the network's blocks of positions smaller, and its products slower.
# Measured on a 768x512 photo (AMD EPYC Zen 4, 2 cores; docs/mixer2.md, "0.13.4"), in one process, alternated:
# with the network's buffers kept by step (``kernels.decoder.Rings``) its thread has the time for every frontier,
# and a share of 0 decodes in 8.2 s against 8.7 s with 250 (medians of 5, faster in each round); 4, 6 and 8 runs
# decode within the noise of each other.
HANDOVER_GROUPS = 6
VERTICAL_SHARE = 0

EARLY_SUMS = True          # the network's thread makes the next step's early sums while it would wait (measuring: False)

last_clock: list = [None]       # the cycles of the last decode's threads by phase (``kernels.pipeline.PHASES``)
