"""The ``-9`` decoder's compiled loop: the network's wavefront steps and the
mixer's column parts, run by one thread per group of parts, meeting once
per step at a barrier instead of at Python calls.

Coder 3 cuts the image's columns into parts, each decoded by its own mixer
state.  In the network's stream order a step decodes one pixel of each
active row (row i at column j = t - i*lag), and nothing a step computes
reads another row of the same step:

- the vertical frontier of row i reads the rows above, decoded up to the
  step before;
- the horizontal stack, the head and the counts of (i, j) read row i only
  (its own ring rows, its own earlier colours);
- the mixer's contexts read only pixels decoded in earlier steps and the
  pixel's own earlier colours (the column-part decoder already decodes the
  parts of one colour of a step at once).

So thread k takes the rows of every step whose pixel lies in its parts'
columns, and runs for them, one after the other, the vertical frontier
(every layer), then per colour the horizontal stack, the head and the
counts, its parts' mixer decodes, and the colour's symbols into the
network's input rows; then it waits at the barrier for the step's other
threads, since the next step reads what they wrote.  The network and the
mixer thus run at once, each core on its own half of the image, and about
16,000 mixer calls and 37,600 parallel regions driven from Python per
768x512 image become 5,400 barriers inside one compiled loop per thread.
Every position's arithmetic is the same whatever thread or block computes
it, and each part decodes its sub-pixels in the stream order with its own
state, so the pixels never depend on the threads.

The threads are the caller's (``dec_pipeline``): each calls ``run_steps``
(which holds no GIL) for the same steps; the barrier is a flag per thread
(``flags[k * FLAG_STRIDE]``: the steps it finished), written with release
and read with acquire atomics, and ``flags[ABORT]``, which any thread (or
its caller, on an exception) sets to make all of them stop at the next
barrier instead of waiting for ever.

The mixer's kernel is chosen by the type of its stacked states
(``register``: version 1's ``mixer.kernel`` here; another version with the
same ``code`` and state layout registers its module and plugs in).
"""
from __future__ import annotations

import platform

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ...mixer import kernel as mixer_v1
from .decoder import Positions, StepBuffers, horizontal_block, vertical_block

PHASES = ("vertical", "horizontal", "mixer", "put", "barrier")   # clock's columns
FLAG_STRIDE = 16          # int64 slots between two threads' flags: one cache line (128 bytes) each
ABORT = 0                 # flags[ABORT]: stop at the next barrier (a thread's flags sit at (k + 1) * FLAG_STRIDE)
SPIN_CYCLES = 100_000     # a wait spins (with pause) for this many cycles of the counter (about 40 us at 2.6 GHz),
SLEEP_US = 20             # then sleeps 20 us at a time: a thread that waits that long waits for one that lost its
                          # core, or that has a step's work alone; spinning on would take the core it needs


def flags_array(threads: int) -> np.ndarray:
    """The barrier's flags for ``threads`` threads, all zero."""
    return np.zeros((threads + 1) * FLAG_STRIDE, np.int64)


# -- atomics and waiting -----------------------------------------------------

@intrinsic
def load_acquire(typingctx, arr, i):
    """arr[i] (int64), read with acquire ordering: what its writer wrote before its release is visible after."""
    sig = types.int64(arr, types.intp)

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, sig.args[0], ary, [args[1]], wraparound=False)
        return builder.load_atomic(ptr, "acquire", 8)
    return sig, codegen


@intrinsic
def store_release(typingctx, arr, i, v):
    """arr[i] = v (int64), with release ordering: every write before it is visible to an acquiring reader."""
    sig = types.none(arr, types.intp, types.int64)

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, sig.args[0], ary, [args[1]], wraparound=False)
        builder.store_atomic(args[2], ptr, "release", 8)
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def compare_and_swap(typingctx, arr, i, expected, new):
    """arr[i] = new if arr[i] == expected (int64), atomically, with acquire and release ordering; returns
    whether it did."""
    sig = types.boolean(arr, types.intp, types.int64, types.int64)

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, sig.args[0], ary, [args[1]], wraparound=False)
        return builder.extract_value(builder.cmpxchg(ptr, args[2], args[3], "acq_rel", "acquire"), 1)
    return sig, codegen


_PAUSE = "llvm.x86.sse2.pause" if platform.machine().lower() in ("x86_64", "amd64", "i686", "x86") else ""


@intrinsic
def cpu_pause(typingctx):
    """A spin-wait hint (x86's ``pause``; nothing elsewhere)."""
    sig = types.none()

    def codegen(context, builder, sig, args):
        if _PAUSE:
            builder.call(cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []), _PAUSE),
                         [])
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def sleep_us(typingctx, us):
    """usleep(us): give the core up for a while (the libc of the process)."""
    sig = types.int32(types.int32)

    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), [ir.IntType(32)]),
                                            "usleep")
        return builder.call(fn, args)
    return sig, codegen


@intrinsic
def cycles(typingctx):
    """The processor's cycle counter (``llvm.readcyclecounter``): where the loop's time goes, never its results."""
    sig = types.int64()

    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(64), []),
                                            "llvm.readcyclecounter")
        return builder.call(fn, [])
    return sig, codegen


@intrinsic
def thread_cpu_ns(typingctx):
    """The calling thread's CPU time in ns (clock_gettime(CLOCK_THREAD_CPUTIME_ID), a system call: measuring only)."""
    sig = types.int64()

    def codegen(context, builder, sig, args):
        i64 = ir.IntType(64)
        spec = ir.LiteralStructType([i64, i64])
        ts = cgutils.alloca_once(builder, spec)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), [ir.IntType(32),
                                                                                            spec.as_pointer()]),
                                            "clock_gettime")
        builder.call(fn, [ir.Constant(ir.IntType(32), 3), ts])      # CLOCK_THREAD_CPUTIME_ID
        sec = builder.load(cgutils.gep_inbounds(builder, ts, 0, 0))
        nsec = builder.load(cgutils.gep_inbounds(builder, ts, 0, 1))
        return builder.add(builder.mul(sec, ir.Constant(i64, 10 ** 9)), nsec)
    return sig, codegen


@njit(inline="always")
def wait_for(flags, slot, need):
    """Waits until flags[slot] >= need (spinning, then sleeping), or until a
    thread aborts; returns whether one did."""
    start = cycles()
    while load_acquire(flags, slot) < need:
        if load_acquire(flags, ABORT) != 0:
            return True
        if cycles() - start < SPIN_CYCLES:
            cpu_pause()
        else:
            sleep_us(np.int32(SLEEP_US))
    return False


@njit(inline="always")
def barrier(flags, k, threads, done):
    """Thread k has finished ``done`` steps: says so, and waits until every
    other thread has too, or until one aborts.  Returns whether to stop."""
    store_release(flags, (k + 1) * FLAG_STRIDE, done)
    for m in range(threads):
        if m != k and wait_for(flags, (m + 1) * FLAG_STRIDE, done):
            return True
    return load_acquire(flags, ABORT) != 0


# -- the mixer's kernel, by the type of its states ---------------------------

_KERNELS: dict = {}       # the State class of a mixer kernel module -> the module


def register(kernel_module) -> None:
    """Let ``run_steps`` decode with a mixer kernel module (``code``, ``State``,
    ``Positions``, ``Network``, ``Side``, as version 1's)."""
    _KERNELS[kernel_module.State] = kernel_module


register(mixer_v1)


def handles(kernel_module) -> bool:
    """Whether ``run_steps`` can decode with this mixer kernel module (``register``)."""
    return kernel_module.State in _KERNELS


def decode_part(states, p, tb, img, ys, xs, cs, tops, counts, rows, dec, data):
    """Decode, with part p's state of the stacked ``states``, the sub-pixels
    (ys, xs, cs, tops) in order, sub-pixel e's counts being counts[rows[e]];
    returns the number decoded."""
    raise NotImplementedError      # compiled only (``_decode_part``)


@overload(decode_part)
def _decode_part(states, p, tb, img, ys, xs, cs, tops, counts, rows, dec, data):
    k = _KERNELS[states.instance_class]
    fields = ", ".join(f"states[{f}][p]" for f in range(len(states.types)))
    scope = {"State": k.State, "Positions": k.Positions, "Network": k.Network, "Side": k.Side, "code": k.code,
             "np": np}
    exec(f"""def impl(states, p, tb, img, ys, xs, cs, tops, counts, rows, dec, data):
    no_enc = np.zeros(5, np.int64)
    no_out = np.zeros(0, np.uint8)
    # np.bool_, not the literal True: a literal would compile ``code`` a second time
    return code(State({fields}), tb, img, Positions(ys, xs, cs, tops), Network(counts, rows, np.bool_(True)),
                Side(np.bool_(True), no_enc, no_out, dec, data), np.bool_(True))
""", scope)
    return scope["impl"]


# -- the loop ----------------------------------------------------------------

@njit(inline="always")
def _rows(t, lag, S, last, width, ahead):
    """The rows i of step t's strips (the last strip's end aside) whose columns
    j..j+ahead, j = t - i*lag, meet the image (``schedule.plan``)."""
    lo = max(0, -(-(t - width + 1) // lag))
    hi = min(S - 1, (t + ahead) // lag) if t + ahead >= 0 else -1
    return lo, hi


@njit(inline="always")
def _owner(j, width, cuts, threads):
    """The thread whose columns hold column j (clamped into the image)."""
    j = min(max(j, 0), width - 1)
    k = 0
    while k + 1 < threads and j >= cuts[k + 1]:
        k += 1
    return k


@njit(nogil=True)
def run_steps(k, threads, t0, t1, shape, geo, rings, net, cond, s, step, states, tb, img, bounds, decs, data,
              starts, short, flags, clock, trace):
    """Thread k of ``threads``: decode steps t0..t1-1 of the wavefront, its
    share of each (the module's docstring), the others running the same
    call at once.  ``shape``: (rows per strip S, strips, rows in the last
    strip, the network's colours C, the colours the mixer decodes: C, or 1
    for a gray image seen by an RGB network as (L, L, L), whose every colour
    the network computes (the next positions read them) from the one
    decoded).  The network's buffers as ``dec_wavefront.decode_image``
    makes them, ``step`` shared by the threads (each uses its own rows,
    those after the rows of the threads before it), scratch row k of ``s``
    its own; the mixer's stacked ``states``, one per part of ``bounds``,
    decoding into ``img`` from decs[p] and data[starts[p]:starts[p + 1]].
    short[p]: the sub-pixels part p left undecoded when its data ran out
    (then every thread stops after that step).  clock[k, PHASES]: the cycles
    this thread spent, added up (``PHASES``); when ``trace`` is not empty
    (measuring only), trace[k, t - trace_start] gets the CPU ns this thread's
    share of step t took, its wait at the barrier aside (trace_start is the
    first step, -R).  Returns the pixels this thread decoded."""
    S, nb, last, C, coded = shape
    lag, R, k2, width = geo.lag, geo.R, geo.k2, geo.width
    ahead = R - k2
    P = len(bounds) - 1
    cuts = np.empty(threads + 1, np.int64)            # thread m's columns: cuts[m] .. cuts[m + 1] - 1
    for m in range(threads + 1):
        cuts[m] = bounds[P * m // threads]
    first_part, end_part = P * k // threads, P * (k + 1) // threads
    cap = len(step.count_rows)
    work = np.empty((11, cap), np.int64)
    pb, pi, pj, prow = work[0], work[1], work[2], work[3]      # the step's positions: strip, row, column, image row
    vb, vi = work[4], work[5]                                  # this thread's rows of the vertical frontier
    ys, xs, cs, tops, crow = work[6], work[7], work[8], work[9], work[10]     # a part's sub-pixels, counts' rows
    before = np.zeros(threads, np.int64)
    pos = Positions(pb, pi, pj, prow)
    xf = rings.xi
    block = s.x.shape[1]
    decoded = 0
    tracing = trace.shape[1] > 0
    for t in range(t0, t1):
        if tracing:
            cpu0 = thread_cpu_ns()
        # the step's positions in stream order (strip, then row): this
        # thread's are rows base..base+n-1 of the step's buffers, after those
        # of the threads before it
        lo, hi = _rows(t, lag, S, last, width, 0)
        before[:] = 0
        for b in range(nb):
            top = min(hi, last - 1) if b == nb - 1 else hi
            for i in range(lo, top + 1):
                before[_owner(t - i * lag, width, cuts, threads)] += 1
        base = 0
        for m in range(k):
            base += before[m]
        n = 0
        for b in range(nb):
            top = min(hi, last - 1) if b == nb - 1 else hi
            for i in range(lo, top + 1):
                j = t - i * lag
                if _owner(j, width, cuts, threads) == k:
                    pb[base + n] = b
                    pi[base + n] = i
                    pj[base + n] = j
                    prow[base + n] = b * S + i
                    n += 1
        # the vertical frontier of this thread's rows
        vlo, vhi = _rows(t, lag, S, last, width, ahead)
        nv = 0
        for b in range(nb):
            top = min(vhi, last - 1) if b == nb - 1 else vhi
            for i in range(vlo, top + 1):
                if _owner(t - i * lag, width, cuts, threads) == k:
                    vb[nv] = b
                    vi[nv] = i
                    nv += 1
        c0 = cycles()
        for f in range(0, nv, block):
            vertical_block(t, geo, vb, vi, f, min(nv, f + block), rings, net, cond, s, k)
        c1 = cycles()
        clock[k, 0] += c1 - c0
        for c in range(C if n else 0):
            c0 = cycles()
            for f in range(base, base + n, block):
                horizontal_block(c, geo, pos, f, min(block, base + n - f), rings, step, net, s, k)
            c1 = cycles()
            clock[k, 1] += c1 - c0
            for p in range(first_part if c < coded else end_part, end_part):
                m = 0
                for q in range(base, base + n):
                    if pj[q] >= bounds[p] and pj[q] < bounds[p + 1]:
                        ys[m] = prow[q]
                        xs[m] = pj[q]
                        cs[m] = c
                        tops[m] = pb[q] * S
                        crow[m] = q
                        m += 1
                if m == 0:
                    continue
                got = decode_part(states, p, tb, img, ys[:m], xs[:m], cs[:m], tops[:m], step.counts, crow[:m],
                                  decs[p], data[starts[p]:starts[p + 1]])
                if got < m:
                    short[p] = m - got
                    store_release(flags, ABORT, 1)
            c0 = cycles()
            clock[k, 2] += c0 - c1
            src = min(c, coded - 1)             # the decoded colour it is (gray: colour 0 into all three)
            for q in range(base, base + n):     # the colour into the network's input rows (``put_symbols``)
                xf[pb[q], pi[q] + k2 + 1, (pj[q] + k2) * C + c] = 2 * np.int64(img[prow[q], pj[q], src]) - 255
            clock[k, 3] += cycles() - c0
        decoded += n
        if tracing:
            trace[k, t + R] = thread_cpu_ns() - cpu0
        c0 = cycles()
        stop = barrier(flags, k, threads, t + 1)
        clock[k, 4] += cycles() - c0
        if stop:
            break
    return decoded
