"""The context mixer, compiled: every bit's probability from hashed contexts,
residual maps and (optionally) the network's counts, mixed, refined, coded.

Each 8-bit sub-pixel is coded as 8 binary decisions, most significant bit
first.  For each decision the mixer's inputs are, in the stretch domain:
``N_HASHED`` hashed contexts (``contexts.py``), ``N_MAPS`` residual maps,
one of whose predictions is a blend of ``N_BLEND`` sub-predictions, the
network's P(bit | known bits) (0 when there is no network), and a bias
(``components.py``).  ``N_SETS`` weight sets, chosen by small contexts, mix
them; a second mixer mixes their outputs; two APM stages refine the
result.  Everything is an integer operation on int64 values that never
overflow, with the tables of ``tables``: the encoder and the decoder compute
the same probabilities on every machine.  ``definition.py`` is the readable
definition of the same arithmetic, in plain Python, and the tests check
that both agree.

This file is the loop (``code``, and ``code_parts`` for column parts) and
the state; the numbers are version 1's (``spec.SPEC_1``), frozen into the
compiled code.
"""
from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from . import bitcoder
from .table_memory import empty_table
from .components import (BIAS, COUNT_MAX, H_INC, H_LIMIT, MAP_CONTEXTS, MAX_COLOURS, MIX2_LR, MIX_LR,  # noqa: F401
                         N_BLEND, N_HASHED, N_INPUTS, N_MAPS, N_PAD, N_SETS, NET_INPUT, ROUND, SET_OFFSETS,
                         SET_ROWS, SPEC, W1_INIT, W1_ROWS, APM_RATE, add_cost, apm, blend, fetch_buckets,
                         find_buckets, hashed_inputs, hashed_update, learn_apm, learn_blend, learn_maps,
                         learn_sets, map_inputs, mix_sets, narrow_maps, open_maps, p12,
                         PRED, CTX, SET_ROW)
from .contexts import clamp8, local, log_class, neighbours, prepare, previous_colours
from .tables import RECIPROCALS, SQUASH, STRETCH
from .vector_ops import dot_row, masked_sum16, update_row  # noqa: F401  (the tests call them)


class Positions(NamedTuple):
    """The sub-pixels to code, in order: sub-pixel e is (ys[e], xs[e]),
    colour cs[e], in the strip starting at row tops[e]."""
    ys: np.ndarray
    xs: np.ndarray
    cs: np.ndarray
    tops: np.ndarray


class Network(NamedTuple):
    """The network's input: sub-pixel e's counts are counts[rows[e]] when ``has_net``."""
    counts: np.ndarray
    rows: np.ndarray
    has_net: bool


class Side(NamedTuple):
    """The coding side.  Encoding (``decoding`` false) reads the values from
    the image and writes bits to ``out`` (state ``enc``); decoding reads bits
    from ``data`` (state ``dec``) and writes the values into the image."""
    decoding: bool
    enc: np.ndarray
    out: np.ndarray
    dec: np.ndarray
    data: np.ndarray


def encoding_side(enc: np.ndarray, out: np.ndarray) -> Side:
    """The encoder's side: state ``enc``, bits to ``out``; the decoder's
    fields unused (its data read-only, as a decoder's payload is, so that one
    compiled ``code`` serves both sides)."""
    no_data = np.zeros(0, np.uint8)
    no_data.flags.writeable = False
    return Side(False, enc, out, np.zeros(4, np.int64), no_data)


def decoding_side(dec: np.ndarray, data: np.ndarray) -> Side:
    """The decoder's side: state ``dec``, bits from ``data``; the encoder's fields unused."""
    return Side(True, np.zeros(5, np.int64), np.zeros(0, np.uint8), dec, data)


class Tables(NamedTuple):
    squash: np.ndarray
    stretch: np.ndarray
    recip: np.ndarray


class State(NamedTuple):
    """The adaptive state, identical on both sides after every bit."""
    table: np.ndarray      # uint32 (buckets * 16,): slot 0 a bucket's check, slots 1..15 p16 << 16 | count
    hist: np.ndarray       # int32 (N_MAPS, colours, MAP_CONTEXTS, 256)
    hblock: np.ndarray     # int32 (N_MAPS, colours, MAP_CONTEXTS, 16): the sums of each histogram's 16-bin blocks
    w1: np.ndarray         # int32 (W1_ROWS, N_PAD): columns past N_INPUTS meet zero inputs, never change
    w2: np.ndarray         # int32 (colours * 8, N_SETS + 1)
    apm1: np.ndarray       # int32 (colours * 256, 33)
    apm2: np.ndarray       # int32 (colours * 8 * 16, 33)
    perr: np.ndarray       # uint8 (height, width, colours, N_BLEND + 1): each sub-predictor's error there
                           # (at most 255), and the blend's residual mod 256
    cost: np.ndarray       # float64 (4,): the ideal code length in bits, and of each colour (reported, never coded)


def table_bits(n_subpixels: int) -> int:
    """log2 of the number of buckets (64 bytes each): at least a quarter of
    the hashed contexts' sub-pixels, between 2^10 and 2^22 (256 MB)."""
    need = max(1, n_subpixels * N_HASHED // 4 - 1)
    return int(min(SPEC.table_bits_max, max(SPEC.table_bits_min, need.bit_length())))


PART_TABLE_BITS = SPEC.part_table_bits_max       # a column part's table: at most 2^20 buckets (64 MB)


def part_table_bits(n_subpixels: int, parts: int = 1) -> int:
    """log2 of the buckets of a column part of ``n_subpixels`` (coder 3;
    ``parts`` is read by version 4's table budget only): as
    ``table_bits``, at most 2^20.  Measured on six photos-train images
    in two parts, the mixer alone: 2^22 buckets made files 0.01% smaller
    and the mixer about 12% slower (one run)."""
    return min(PART_TABLE_BITS, table_bits(n_subpixels))


def tables() -> Tables:
    return Tables(SQUASH, STRETCH, RECIPROCALS)


def new_states(parts: int, height: int, width: int, colours: int, bits: int) -> State:
    """``parts`` adaptive states, each as ``new_state`` with a table of 2^bits
    buckets, stacked: every array of the State has a leading axis of parts
    (``part`` gives one part's State)."""
    table = empty_table(parts, 1 << bits)        # (on several threads: ``table_memory``)
    identity = np.array([int(SQUASH[min(4094, max(0, (i - 16) * 128 + 2047))]) * 16 for i in range(33)], np.int32)
    apm1 = np.tile(identity, (colours * 256, 1))
    apm2 = np.tile(identity, (colours * 128, 1))
    w2 = np.full((colours * 8, N_SETS + 1), 65536 // N_SETS, np.int32)
    w2[:, N_SETS] = 0

    def stack(a):
        return np.repeat(a[None], parts, axis=0)
    return State(table, np.zeros((parts, N_MAPS, colours, MAP_CONTEXTS, 256), np.int32),
                 np.zeros((parts, N_MAPS, colours, MAP_CONTEXTS, 16), np.int32),
                 np.full((parts, W1_ROWS, N_PAD), W1_INIT, np.int32), stack(w2), stack(apm1), stack(apm2),
                 np.zeros((parts, height, width, colours, N_BLEND + 1), np.uint8), np.zeros((parts, 4)))


def part(states: State, p: int) -> State:
    """Part p of stacked states (views)."""
    return State(*(a[p] for a in states))


def new_state(height: int, width: int, colours: int) -> State:
    return part(new_states(1, height, width, colours, table_bits(height * width * colours)), 0)




@numba.njit(inline="always")
def predictions(img, perr, at, nbrs, summary, mv, sub):
    """The maps' predictions and error contexts, and the blend's
    sub-predictions, of sub-pixel ``at`` = (y, x, r, c); returns the blend,
    its error class and the local activity's class.  Files without map m
    got larger by (``benchmarks/context_worth.py``, the mixer alone, where
    maps 5 and 6 predict MED and (2W + 2N + NE - NW) / 4):
    0 MED: +0.082%
    1 gradient (colour 0) or MED + the colour before's error: +0.037%
    2 W (+ colour difference): +0.313%
    3 N (+ colour difference): +0.228%
    4 (W + NE) / 2, or (W + N) / 2 + colour difference: +0.063%
    5 the network's mode: +0.036%
    6 its mean: +0.217%
    7 the blend: +0.586%"""
    y, x, r, c = at
    w, n, nw, ne, _, _ = nbrs
    mode, mean, _ = summary
    qa, med, grad = local(nbrs)
    preds = mv[PRED]
    preds[0] = med
    preds[5] = mode
    preds[6] = mean
    if c == 0:
        nne = np.int64(img[y - 2, x + 1, c]) if r > 1 and x + 1 < img.shape[1] else ne
        preds[1] = grad
        preds[2] = w
        preds[3] = n
        preds[4] = (w + ne + 1) >> 1
        sub[0] = w
        sub[1] = n
        sub[2] = ne
        sub[3] = grad
        sub[4] = (w + ne + 1) >> 1
        sub[5] = clamp8(n + ne - nne)
        blended, berr = blend(perr, sub, y, x, r, c)
        qb = log_class(berr)
        for m in range(N_MAPS):
            mv[CTX, m] = qa * 8
        mv[CTX, 7] = qb * 8 + log_class(w - n)
    else:
        p1, p2, w1, n1, nw1, ne1, du, dn, med1 = previous_colours(img, y, x, r, c)
        preds[1] = clamp8(med + p1 - med1)
        preds[2] = clamp8(w + du)
        preds[3] = clamp8(n + dn)
        preds[4] = clamp8(((w + n + 1) >> 1) + p1 - ((w1 + n1 + 1) >> 1))
        sub[0] = clamp8(w + du)
        sub[1] = clamp8(n + dn)
        sub[2] = clamp8(ne + p1 - ne1)
        sub[3] = clamp8(grad + p1 - clamp8(w1 + n1 - nw1))
        sub[4] = clamp8(med + p1 - med1)
        sub[5] = clamp8(nw + p1 - nw1)
        blended, berr = blend(perr, sub, y, x, r, c)
        qb = log_class(berr)
        # the same predictions made for the colour before: their errors are known
        e1 = (p1 - med1, 0, du, dn, 0, 0, 0, 0)
        for m in range(N_MAPS):
            mv[CTX, m] = qa * 8 + log_class(e1[m])
        mv[CTX, 7] = qb * 8 + log_class(((np.int64(perr[y, x, c - 1, N_BLEND]) + 128) & 255) - 128)
    preds[7] = blended
    return blended, qb, qa


@numba.njit(inline="always")
def network_input(ncum, lo, half, stretch, has_net):
    """The network's P(the upper half of the open range | the open range), stretched (0 without one)."""
    if not has_net:
        return 0
    s_lo = ncum[lo + half] - ncum[lo]
    s_hi = ncum[lo + 2 * half] - ncum[lo + half]
    return stretch[p12(s_hi, s_lo + s_hi)]


@numba.njit(inline="always")
def set_rows(ms, c, k, c0, conf, qb, blended):
    """The first mixer's weight sets for bit k: by the bits known, the
    network's confidence, the blend's error class, and whether the blend
    agrees with the bits known (and its next bit)."""
    ck = c * 8 + k
    agree = 0
    if (blended >> (8 - k)) == (c0 - (np.int64(1) << k)):
        agree = 1 + ((blended >> (7 - k)) & 1)
    ms[SET_ROW, 0] = SET_OFFSETS[0] + c * 256 + c0
    ms[SET_ROW, 1] = SET_OFFSETS[1] + ck * 8 + conf
    ms[SET_ROW, 2] = SET_OFFSETS[2] + ck * 8 + qb
    ms[SET_ROW, 3] = SET_OFFSETS[3] + ck * 3 + agree


@numba.njit(inline="always")
def probability(w1, w2, apm1, apm2, x_in, ms, ck, c0, qa, has_net):
    """The bit's 16-bit probability: half the mixers', a quarter each APM's;
    and the mixers' output and the APMs' rows and points, to learn from."""
    squash = SQUASH       # a module constant, compiled in: one array fewer to pass (and count references to) per bit
    dm = mix_sets(w1, w2, x_in, ms, ck, squash)
    pm = np.int64(squash[dm + 2047])
    a1row = (ck >> 3) * 256 + c0
    pa1, j1 = apm(apm1, a1row, dm)
    # the second APM's context: the network's own stretch, else the local activity
    a2row = ck * 16 + ((np.int64(x_in[NET_INPUT]) + 2048) >> 8) if has_net else ck * 8 + qa
    pa2, j2 = apm(apm2, a2row, dm)
    p16 = min(65535 - 32, max(32, (pm * 32 + pa1 + pa2 + 2) >> 2))
    return p16, pm, (a1row, j1, a2row, j2)


@numba.njit(inline="always")
def learn_mixers(w1, w2, apm1, apm2, x_in, ms, ck, pm, apms, bit):
    learn_sets(w1, w2, x_in, ms, ck, pm, bit)
    a1row, j1, a2row, j2 = apms
    learn_apm(apm1, a1row, j1, bit)
    learn_apm(apm2, a2row, j2, bit)


@numba.njit(inline="always")
def code_bit(decoding, enc, out, dec, data, value, k, p16):
    """Bit k of the value: decoded, or encoded (a ``Side``'s fields)."""
    if decoding:
        return bitcoder.decode_bit(dec, data, p16)
    bit = (value >> (7 - k)) & 1
    bitcoder.encode_bit(enc, out, bit, p16)
    return bit


@numba.njit(nogil=True)
def code(st, tb, img, pos, net, side, independent):
    """Code the sub-pixels ``pos`` in order, with the network's input ``net``,
    on the coding ``side``.  Returns the number coded (less than asked when a
    decoder ran more than 8 bytes past its data).

    ``independent``: the caller promises that no sub-pixel's hashed contexts
    read the value of the one coded just before it (always so when encoding,
    and in the network's stream order, where one call is one colour of a
    step's pixels, none a neighbour of another); each sub-pixel's contexts
    are then made while the one before is coded, so that their buckets
    arrive from memory in time."""
    stretch, recip = tb.stretch, tb.recip     # (squash: the module constant SQUASH, in ``probability``)
    table = st.table
    mask = (len(table) >> 4) - 1
    colours = st.hist.shape[1]
    decoding, enc, out, dec, data = side
    w1, w2, apm1, apm2 = st.w1, st.w2, st.apm1, st.apm2     # the mixers' and APMs' weights
    x_in = np.zeros(N_PAD, np.int32)     # the inputs' stretches (|x| <= 2047), padded with zeros
    ms = np.zeros((3, N_SETS), np.int64)            # the mixers' working values (SET_ROW, DOT, PROB)
    hashes2 = np.zeros((2, N_HASHED), np.int64)     # this sub-pixel's and the next one's
    hn2 = np.zeros((2, N_HASHED), np.int64)
    ncum2 = np.zeros((2, 257), np.int64)
    prep = np.zeros((2, 3), np.int64)               # mode, mean, conf
    base = np.zeros(N_HASHED, np.int64)
    sub = np.zeros(N_BLEND, np.int64)
    hist = st.hist.reshape(-1)
    hblock = st.hblock.reshape(-1)
    mv = np.zeros((6, N_MAPS), np.int64)            # the maps' working values (PRED, CTX, ...)
    blocks = np.zeros((N_MAPS, 17), np.int64)       # each map's blocks' running sums
    ccost = np.zeros(3)
    for e in range(len(pos.ys)):
        y, x, c = np.int64(pos.ys[e]), np.int64(pos.xs[e]), np.int64(pos.cs[e])
        r = y - pos.tops[e]
        # the network's summary and the hashed contexts: made during the
        # sub-pixel before when ``independent``, and the next one's made now,
        # its first nibble's buckets asked for while this one is coded
        slot = e & 1 if independent else 0
        if not independent or e == 0:
            prep[slot, 0], prep[slot, 1], prep[slot, 2] = prepare(img, pos, net, e, hashes2[slot], ncum2[slot])
            fetch_buckets(table, hashes2[slot], 0, mask, hn2[slot])
        if independent and e + 1 < len(pos.ys):
            nxt = 1 - slot
            prep[nxt, 0], prep[nxt, 1], prep[nxt, 2] = prepare(img, pos, net, e + 1, hashes2[nxt], ncum2[nxt])
            fetch_buckets(table, hashes2[nxt], 0, mask, hn2[nxt])
        hashes, ncum, hn = hashes2[slot], ncum2[slot], hn2[slot]
        conf = prep[slot, 2]
        blended, qb, qa = predictions(img, st.perr, (y, x, r, c), neighbours(img, y, x, r, c),
                                      (prep[slot, 0], prep[slot, 1], conf), mv, sub)
        open_maps(hist, hblock, mv, blocks, c, colours)
        # the bits, most significant first
        value = np.int64(img[y, x, c]) if not decoding else np.int64(0)
        c0 = np.int64(1)
        lo = np.int64(0)
        node = np.int64(1)
        for k in range(8):
            half = np.int64(128) >> k
            if k == 0 or k == 4:
                find_buckets(table, hn, mask, base)
                node = 1
            hashed_inputs(table, base, node, stretch, x_in)
            map_inputs(hist, mv, blocks, lo, half, stretch, x_in)
            x_in[NET_INPUT] = network_input(ncum, lo, half, stretch, net.has_net)
            x_in[NET_INPUT + 1] = BIAS
            set_rows(ms, c, k, c0, conf, qb, blended)
            p16, pm, apms = probability(w1, w2, apm1, apm2, x_in, ms, c * 8 + k, c0, qa, net.has_net)
            bit = code_bit(decoding, enc, out, dec, data, value, k, p16)
            ccost[c] -= np.log2((p16 if bit else 65536 - p16) / 65536.0)   # reported, never coded
            if k == 3:                  # the second nibble's buckets, asked for during the updates
                fetch_buckets(table, hashes, c0 * 2 + bit, mask, hn)
            narrow_maps(mv, bit)
            hashed_update(table, base, node, recip, bit)
            learn_mixers(w1, w2, apm1, apm2, x_in, ms, c * 8 + k, pm, apms, bit)
            c0 = c0 * 2 + bit
            node = node * 2 + bit
            lo += bit * half
        if decoding:
            img[y, x, c] = lo
            if dec[bitcoder.D_OVER] > 8:
                add_cost(st, ccost)
                return e + 1
        learn_blend(st.perr, sub, y, x, c, lo, blended)
        learn_maps(st.hist, st.hblock, mv, blocks, c, lo)
    add_cost(st, ccost)
    return len(pos.ys)


@numba.njit(parallel=True, nogil=True)
def code_parts(states, tb, img, pos, bounds, net, decs, data, data_starts, short):
    """Decode with ``code`` in every column part at once, one part per
    thread: part p decodes, in the order given, the sub-pixels with
    bounds[p] <= xs < bounds[p + 1], with its own state (the stacked
    arrays' row p, from ``new_states``) from its own stream (decs[p] and
    data[data_starts[p]:data_starts[p + 1]]).  The parts share only ``img``,
    where they read pixels of other parts decoded before (the network's
    stream order guarantees it, one call being one colour of one step), so
    the result never depends on the number of threads.  short[p]: the
    sub-pixels part p left undecoded (0 unless it ran past its data)."""
    no_enc = np.zeros(5, np.int64)          # the encoder's state and output: never touched when decoding
    no_out = np.zeros(0, np.uint8)
    for p in numba.prange(len(bounds) - 1):
        sel = np.nonzero((pos.xs >= bounds[p]) & (pos.xs < bounds[p + 1]))[0]
        st = State(states.table[p], states.hist[p], states.hblock[p], states.w1[p], states.w2[p], states.apm1[p],
                   states.apm2[p], states.perr[p], states.cost[p])
        mine = Positions(pos.ys[sel], pos.xs[sel], pos.cs[sel], pos.tops[sel])
        # np.bool_, not the literal True: a literal would compile ``code`` a second time (45 s of CPU)
        side = Side(np.bool_(True), no_enc, no_out, decs[p], data[data_starts[p]:data_starts[p + 1]])
        short[p] = len(sel) - code(st, tb, img, mine, Network(net.counts, net.rows[sel], net.has_net), side,
                                   np.bool_(True))
