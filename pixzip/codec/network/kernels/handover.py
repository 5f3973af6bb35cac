"""The ``-9`` decoder's compiled loop for one mixer state (coder 3 with one
column part): the network on one thread, the mixer on the other, handing
each other groups of a step's rows.

With one state the mixer decodes every sub-pixel, in the network's stream
order, on one core; so the other core runs the whole network, and the two
work at once on different rows.  Each step's positions (its rows, in stream
order) are cut into ``groups`` runs of about equal size, and each colour of
each group is one unit of work, taken in the order step, colour, group:

- the network thread (role 0) computes unit (t, c, g): at c = 0 the vertical
  frontier of the group's rows, then the horizontal stack, the head and the
  counts of colour c at its positions;
- the mixer thread (role 1) decodes the unit's sub-pixels with its one
  state, then writes their values into the network's input rows.

What each waits for (the kernels' rule, ``kernels.pipeline``: nothing a
step computes reads another row of the same step):

- the mixer decodes unit (t, c, g) once the network has made its counts;
- the network computes colour c > 0 of group g once the mixer has decoded
  colour c - 1 of the group's positions (a position's later colours read its
  earlier ones);
- it computes colour 0 of group g (and its vertical frontier) once the
  mixer has decoded step t - 1, every colour, at every position up to the
  group's last row in stream order (strip, then row): the rows above and the
  row's own pixel before, all that the group's rows read.

Colour 0 of a group is the network's largest unit (its vertical frontier
is most of the network's work), and the one the mixer waits for at each
step's start.  So whichever thread comes to it first computes it
(``take_unit``: a compare-and-swap on the unit's slot): when the mixer
reaches unit (t, 0, g) and the network has not begun it, the mixer's thread
computes it itself, rather than wait, and the network's thread goes on to
the next group.  Its rows above are decoded then: the mixer's thread
decoded them.

The network's thread also waits, for the mixer's colours 1 and 2 of each
group; there it makes the next step's early sums instead
(``decoder.frontier_block``'s EARLY): in every layer but the first, all of
a frontier row's inputs but one cell are known a step before, so their part
of its input product can be summed then, and at the step only the newest
cell's products are added (NEWEST: the same integers).  It makes the rest
after its last colour of the step and says so in ``early_at`` (the step,
released); a frontier is made from the early sums where its step is there
(acquired), else whole, by either thread.  So colour 0, the unit that comes
at each step's start, takes less time where the mixer waits for it.

Each thread says how far it has come in one counter (``progress``: the
unit's place, shifted, plus the positions done in it) and, for colour 0,
in the unit's slot (claimed, then done), written with release
and read with acquire atomics; a wait spins, then sleeps
(``kernels.pipeline``'s constants), and ends when any thread raises the
abort flag.  While the mixer decodes step t's last colour, the network
computes step t + 1's first groups, so each step's buffers (``StepBuffers``:
the gates, skips, head rows and counts of its positions) come in two sets,
used by even and odd steps.

The mixer's state sees its sub-pixels in the stream order whatever the
threads do, and the network's arithmetic is the same for a position
whatever computes it, so the pixels are those of the Python-driven decoder
(``dec_wavefront``) and of one thread running both roles (role 2, no waits).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .decoder import EARLY, NEWEST, WHOLE, Positions, frontier_block, horizontal_block, newest_pairs
from .pipeline import (ABORT, FLAG_STRIDE, _rows, compare_and_swap, cycles, decode_part, load_acquire, store_release,
                       wait_for)

NETWORK, MIXER, BOTH = 0, 1, 2      # a thread's role
SHIFT = 32                          # progress = (unit << SHIFT) + positions done in it (a step's positions < 2^32)
VERTICAL = 3 * FLAG_STRIDE          # the mixer thread's share of the vertical frontiers: (step << SHIFT) + groups done
UNITS = 4 * FLAG_STRIDE             # flags[UNITS + g]: who computes colour 0 of group g (``take_unit``)
CLAIMED, DONE = 1, 2                # a unit's state, added to 4 * (its step's place in the chunk, from 1)
EARLY_BLOCK = 16                    # frontier rows per block of early sums the network's thread makes between looks
PHASES = ("vertical", "horizontal", "mixer", "put", "wait", "wait frontier", "wait colour", "taken")   # clock's columns
# (row: the role, 0 or 1; "wait": the network's wait for step t - 1, or the mixer's for the counts)


def flags_array(groups: int = 16) -> np.ndarray:
    """The two threads' progress counters and the abort flag (each on a cache line of its own), and the
    colour-0 units of ``groups`` groups, all zero."""
    return np.zeros(UNITS + groups, np.int64)


@njit(inline="always")
def take_unit(flags, g, tag):
    """Claims colour 0 of group g of the step whose tag is ``tag`` (4 * its place in the chunk, from 1) for
    the calling thread; returns whether it did (False: the other thread has)."""
    v = load_acquire(flags, UNITS + g)
    return v < tag and compare_and_swap(flags, UNITS + g, v, tag + CLAIMED)


@njit(inline="always")
def units_done(flags, groups, tag):
    """Whether every colour-0 unit of the step whose tag is ``tag`` is done (by either thread)."""
    for g in range(groups):
        if load_acquire(flags, UNITS + g) < tag + DONE:
            return False
    return True


@njit(inline="always")
def progress(role):
    """The slot of a role's progress counter."""
    return (role + 1) * FLAG_STRIDE


@njit(inline="always")
def step_rows(t, lag, S, nb, last, width, ahead, ob, oi):
    """The (strip, row) pairs of step t whose columns j..j+ahead meet the image (``pipeline._rows``), in
    stream order (strip, then row), into ob, oi; returns their number."""
    lo, hi = _rows(t, lag, S, last, width, ahead)
    n = 0
    for b in range(nb):
        top = min(hi, last - 1) if b == nb - 1 else hi
        for i in range(lo, top + 1):
            ob[n] = b
            oi[n] = i
            n += 1
    return n


@njit(inline="always")
def step_positions(t, lag, S, nb, last, width, pb, pi, pj, prow):
    """Step t's positions in stream order (strip, then row) into pb, pi, pj, prow; returns their number."""
    n = step_rows(t, lag, S, nb, last, width, 0, pb, pi)
    for q in range(n):
        pj[q] = t - pi[q] * lag
        prow[q] = pb[q] * S + pi[q]
    return n


@njit(inline="always")
def positions_upto(t, lag, S, nb, last, width, b, i):
    """How many of step t's positions come at or before row i of strip b in stream order."""
    lo, hi = _rows(t, lag, S, last, width, 0)
    n = 0
    for bb in range(min(b, nb - 1) + 1):
        top = min(hi, last - 1) if bb == nb - 1 else hi
        if bb == b:
            top = min(top, i)
        if top >= lo:
            n += top - lo + 1
    return n


@njit(inline="always")
def step_layout(t, groups, share, role, lag, S, nb, last, width, ahead, lay, gl):
    """Step t's positions and groups into ``lay`` (rows: strip, row, column, image row of each position; the
    vertical frontier's strip and row) and ``gl`` (rows: the groups' position ends gend (groups + 1), their
    frontier rows' ends vend (groups + 1), the positions of step t - 1 each frontier waits for need0, and
    where the mixer thread's share of each starts, vmid).  A frontier row goes with the first group whose
    last position is at or after it in stream order (the rows past the last position: the last group).
    Returns the number of positions."""
    pb, pi, pj, prow, vb, vi = lay[0], lay[1], lay[2], lay[3], lay[4], lay[5]
    gend, vend, need0, vmid = gl[0], gl[1], gl[2], gl[3]
    n = step_positions(t, lag, S, nb, last, width, pb, pi, pj, prow)
    for g in range(groups + 1):
        gend[g] = n * g // groups
    nv = step_rows(t, lag, S, nb, last, width, ahead, vb, vi)
    vend[0] = 0
    v = 0
    for g in range(groups):
        if g == groups - 1:
            v = nv
        elif gend[g + 1] > gend[g]:
            q = gend[g + 1] - 1
            while v < nv and (vb[v] < pb[q] or (vb[v] == pb[q] and vi[v] <= pi[q])):
                v += 1
        vend[g + 1] = v
        need0[g] = 0 if v == vend[g] else positions_upto(t - 1, lag, S, nb, last, width, vb[v - 1], vi[v - 1])
        vmid[g] = v if role == BOTH else v - ((v - vend[g]) * share) // 1024
    return n


@njit(inline="always")
def frontier_rows(t, geo, vb, vi, f0, f1, rings, net, cond, s, task, early, early_at):
    """Step t's vertical frontier at its (strip, row) tasks f0..f1-1 (``vb``, ``vi``), in blocks of the
    scratch's rows, in scratch row ``task``: from the early sums of its products where the network's
    thread has made them all (early_at[t % 2] == t: ``early_rows``), else whole."""
    block = s.x.shape[1]
    part = NEWEST if load_acquire(early_at, t % 2) == t else WHOLE
    for f in range(f0, f1, block):
        frontier_block(t, geo, vb, vi, f, min(f1, f + block), rings, net, cond, s, task, part, early[t % 2])


@njit(inline="always")
def early_rows(t, geo, vb, vi, f0, f1, rings, net, cond, s, early):
    """The early sums (``decoder.frontier_block``'s EARLY) of step t's frontier rows f0..f1-1, in blocks of
    the scratch's rows, by the network's thread (scratch row 0), into early[t % 2]."""
    block = s.x.shape[1]
    for f in range(f0, f1, block):
        frontier_block(t, geo, vb, vi, f, min(f1, f + block), rings, net, cond, s, 0, EARLY, early[t % 2])


@njit(inline="always")
def colour_rows(c, geo, pos, f0, f1, rings, step, net, s, task):
    """Colour c's horizontal stack, head and counts at the step's positions f0..f1-1, in blocks of the
    scratch's rows, in scratch row ``task``."""
    block = s.x.shape[1]
    for f in range(f0, f1, block):
        horizontal_block(c, geo, pos, f, min(block, f1 - f), rings, step, net, s, task)


@njit(inline="always")
def mixer_frontiers(t, t0, lay, gl, groups, done, next_g, geo, rings, net, cond, s, flags, clock, early, early_at):
    """The mixer thread's share of step t's vertical frontiers, group by group from ``next_g`` on, for
    each group whose rows above step t - 1 has decoded (its need0 at most ``done`` positions); each
    group's end said (VERTICAL).  Returns the next group to do."""
    vb, vi = lay[4], lay[5]
    vend, need0, vmid = gl[1], gl[2], gl[3]
    c0 = cycles()
    g = next_g
    while g < groups and need0[g] <= done:
        frontier_rows(t, geo, vb, vi, vmid[g], vend[g + 1], rings, net, cond, s, 1, early, early_at)
        store_release(flags, VERTICAL, ((t - t0) << SHIFT) + g + 1)
        g += 1
    clock[1, 0] += cycles() - c0
    return g


@njit(inline="always")
def colour_0(t, g, lay, gl, pos, geo, rings, step, net, cond, s, early, early_at):
    """Colour 0 of group g of step t (its layout ``lay``, ``gl``: ``step_layout``'s), by the mixer's thread
    (scratch row 1): the network's rows of the group's vertical frontier, then the horizontal stack, the
    head and the counts of its positions."""
    frontier_rows(t, geo, lay[4], lay[5], gl[1][g], gl[3][g], rings, net, cond, s, 1, early, early_at)
    colour_rows(0, geo, pos, gl[0][g], gl[0][g + 1], rings, step, net, s, 1)


@njit(nogil=True)
def run_role(role, t0, t1, groups, share, shape, geo, rings, net, cond, s, step_even, step_odd, states, tb, img,
             decs, data, short, flags, clock, early, early_at):
    """One thread's role (NETWORK, MIXER, or BOTH on one thread) in steps
    t0..t1-1, the other role's thread running the same call at once (the
    module's docstring).  ``groups``: the runs of each step's positions
    handed over; ``share``: of each group's vertical frontier, the share
    (of 1024) the mixer's thread computes, while it decodes the step before
    once that step's rows above the group are decoded.  ``shape``, ``geo``,
    ``rings``, ``net``, ``cond``: the network's, as ``pipeline.run_steps``
    takes them (scratch row 0 of ``s`` is the network thread's, row 1 the
    mixer thread's); ``step_even``, ``step_odd``: the step buffers of even
    and odd steps; the mixer's one state, ``states`` (stacked, one part),
    decoding into ``img`` from decs[0] and ``data``.  short[0]: the
    sub-pixels left undecoded when the data ran out (then both stop).
    clock[role, PHASES]: the cycles spent (BOTH: row 0).  Returns the pixels
    decoded (the mixer's count; 0 from the network's thread)."""
    S, nb, last, C, coded = shape
    lag, R, k2, width = geo.lag, geo.R, geo.k2, geo.width
    ahead = R - k2
    cap = len(step_even.count_rows)
    lays = np.empty((2, 6, cap), np.int64)            # the layouts of even and odd steps (``step_layout``)
    gls = np.zeros((2, 4, groups + 1), np.int64)
    work = np.empty((5, cap), np.int64)
    ys, xs, cs, tops, crow = work[0], work[1], work[2], work[3], work[4]     # a unit's sub-pixels
    xf = rings.xi
    row = 0 if role == BOTH else role
    net_side = role != MIXER
    mix_side = role != NETWORK
    waits = role != BOTH
    decoded = 0
    n_next = 0
    next_g = 0                  # the mixer thread: the next group of the next step's frontiers to compute
    # the network's thread: step t + 1's early sums (``early_rows``), made while it would wait for the mixer
    early_on = role == NETWORK and C > 1 and early.shape[2] > 0 and newest_pairs(net, rings.V.shape[3]) > 0
    elays = np.empty((2, cap), np.int64)              # step t + 1's frontier rows (strip, row)
    if role == MIXER:
        n_next = step_layout(t0, groups, share, role, lag, S, nb, last, width, ahead, lays[t0 % 2], gls[t0 % 2])
    for t in range(t0, t1):
        step = step_even if t % 2 == 0 else step_odd
        lay, gl = lays[t % 2], gls[t % 2]
        pb, pi, pj, prow = lay[0], lay[1], lay[2], lay[3]
        vb, vi = lay[4], lay[5]
        gend, vend, need0, vmid = gl[0], gl[1], gl[2], gl[3]
        pos = Positions(pb, pi, pj, prow)
        tag = 4 * (t - t0 + 1)          # the step's colour-0 units (``take_unit``)
        next_unit = 0                   # the mixer's thread: the next colour-0 unit it may take
        early_n = early_nv = 0          # the network's thread: step t + 1's early rows made, and to make
        if early_on and t + 1 < t1:
            early_nv = step_rows(t + 1, lag, S, nb, last, width, ahead, elays[0], elays[1])
        if role == MIXER:
            n = n_next
            # the rest of this step's share of the frontiers (at t0: all of it; the steps before are decoded)
            mixer_frontiers(t, t0, lay, gl, groups, 1 << 62, next_g, geo, rings, net, cond, s, flags, clock, early,
                            early_at)
            next_g = 0
            if t + 1 < t1:
                n_next = step_layout(t + 1, groups, share, role, lag, S, nb, last, width, ahead, lays[(t + 1) % 2],
                                     gls[(t + 1) % 2])
        else:
            n = step_layout(t, groups, share, role, lag, S, nb, last, width, ahead, lay, gl)
        if net_side:
            # the network's share of each group's frontier, once step t - 1 is decoded at the rows above it,
            # then its colour 0
            for g in range(groups):
                c0 = cycles()
                if waits and wait_for(flags, progress(MIXER), (((t - t0) * C - 1) << SHIFT) + need0[g]):
                    return decoded
                c1 = cycles()
                clock[row, 4] += c1 - c0
                if waits and not take_unit(flags, g, tag):
                    continue                    # the mixer's thread took it, rather than wait for it
                frontier_rows(t, geo, vb, vi, vend[g], vmid[g], rings, net, cond, s, 0, early, early_at)
                c2 = cycles()
                clock[row, 0] += c2 - c1
                if waits and vmid[g] < vend[g + 1] and wait_for(flags, VERTICAL, ((t - t0) << SHIFT) + g + 1):
                    return decoded
                c3 = cycles()
                clock[row, 5] += c3 - c2
                colour_rows(0, geo, pos, gend[g], gend[g + 1], rings, step, net, s, 0)
                clock[row, 1] += cycles() - c3
                if waits:
                    store_release(flags, UNITS + g, tag + DONE)
        for c in range(C):
            u = (t - t0) * C + c
            for g in range(groups):
                f0, f1 = gend[g], gend[g + 1]
                if net_side and c > 0:
                    c0 = cycles()
                    need = ((u - 1) << SHIFT) + f1
                    if early_n < early_nv and load_acquire(flags, progress(MIXER)) < need \
                            and units_done(flags, groups, tag):
                        # rather than wait for the mixer: step t + 1's early sums, a block at a time
                        while early_n < early_nv and load_acquire(flags, progress(MIXER)) < need:
                            f = min(early_nv, early_n + EARLY_BLOCK)
                            early_rows(t + 1, geo, elays[0], elays[1], early_n, f, rings, net, cond, s, early)
                            early_n = f
                        c9 = cycles()
                        clock[row, 0] += c9 - c0
                        c0 = c9
                    if waits and wait_for(flags, progress(MIXER), need):
                        return decoded
                    c1 = cycles()
                    clock[row, 6] += c1 - c0
                    colour_rows(c, geo, pos, f0, f1, rings, step, net, s, 0)
                    clock[row, 1] += cycles() - c1
                    if waits:
                        store_release(flags, progress(NETWORK), (u << SHIFT) + f1)
                if mix_side:
                    c0 = cycles()
                    if waits and c == 0:
                        # colour 0 of the group: computed by the network's thread, or, if it has not begun
                        # it, by this one rather than wait (the rows above are decoded: this thread did them);
                        # while the network's thread computes it, this one computes the next ones it has not
                        # begun
                        next_unit = max(next_unit, g)
                        while load_acquire(flags, UNITS + g) < tag + DONE:
                            if load_acquire(flags, ABORT) != 0:
                                return decoded
                            while next_unit < groups and not take_unit(flags, next_unit, tag):
                                next_unit += 1
                            if next_unit == groups:
                                if wait_for(flags, UNITS + g, tag + DONE):
                                    return decoded
                                break
                            c2 = cycles()
                            colour_0(t, next_unit, lay, gl, pos, geo, rings, step, net, cond, s, early, early_at)
                            store_release(flags, UNITS + next_unit, tag + DONE)
                            next_unit += 1
                            c3 = cycles()
                            clock[row, 7] += c3 - c2
                            c0 += c3 - c2
                    elif waits and wait_for(flags, progress(NETWORK), (u << SHIFT) + f1):
                        return decoded
                    c1 = cycles()
                    clock[row, 4] += c1 - c0
                    if c < coded and f1 > f0:
                        m = f1 - f0
                        for q in range(f0, f1):
                            ys[q - f0] = prow[q]
                            xs[q - f0] = pj[q]
                            cs[q - f0] = c
                            tops[q - f0] = pb[q] * S
                            crow[q - f0] = q
                        got = decode_part(states, 0, tb, img, ys[:m], xs[:m], cs[:m], tops[:m], step.counts,
                                          crow[:m], decs[0], data)
                        if got < m:
                            short[0] = m - got
                            store_release(flags, ABORT, 1)
                            return decoded
                    c2 = cycles()
                    clock[row, 2] += c2 - c1
                    src = min(c, coded - 1)         # the decoded colour it is (gray: colour 0 into all three)
                    for q in range(f0, f1):         # the colour into the network's input rows
                        xf[pb[q], pi[q] + k2 + 1, (pj[q] + k2) * C + c] = 2 * np.int64(img[prow[q], pj[q], src]) - 255
                    clock[row, 3] += cycles() - c2
                    if waits:
                        store_release(flags, progress(MIXER), (u << SHIFT) + f1)
                    if role == MIXER and c == C - 1 and t + 1 < t1:
                        # the next step's frontiers whose rows above are now decoded
                        next_g = mixer_frontiers(t + 1, t0, lays[(t + 1) % 2], gls[(t + 1) % 2], groups, f1, next_g,
                                                 geo, rings, net, cond, s, flags, clock, early, early_at)
        if early_nv > 0:
            # the rest of step t + 1's early sums (every colour-0 unit of step t is done: the mixer has
            # decoded colour C - 2 of every group), then said made
            c0 = cycles()
            early_rows(t + 1, geo, elays[0], elays[1], early_n, early_nv, rings, net, cond, s, early)
            store_release(early_at, (t + 1) % 2, t + 1)
            clock[row, 0] += cycles() - c0
        if mix_side:
            decoded += n
    return decoded
