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
the state; the numbers are the package's spec's (``v2``: ``spec.SPEC_2``;
``v3``, these files again: ``spec.SPEC_3``), frozen into the compiled code.
"""
from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from .. import bitcoder, prior
from ..table_memory import empty_table
from .components import (BIAS, COUNT_MAX, H_INC, H_LIMIT, MAP_CONTEXTS, MAX_COLOURS, MIX2_LR, MIX_LR,  # noqa: F401
                         N_BLEND, N_HASHED, N_INPUTS, N_MAPS, N_PAD, N_SETS, NET_INPUT, ROUND,
                         SET_OFFSETS, SET_ROWS, SPEC, STRIPES, W1_INIT, W1_ROWS, APM_RATE, add_cost, apm, blend,
                         fetch_buckets,
                         find_buckets, hashed_inputs, hashed_update, learn_apm, learn_blend, learn_maps,
                         learn_sets, map_inputs, mix_sets, narrow_maps, open_maps, p12,
                         PRED, CTX, SET_ROW)
from .contexts import clamp8, local, log_class, neighbours, prepare, previous_colours
from .ols import N_OLS, OLS_MAPS, OLS_N, PHASES, new_ols, ols_learn, ols_predictions, phase
from .predictors import BANK_ERRORS, BANK_SCRATCH, BP, bank, bit_cost, cost_class, learn_bank
from ..tables import RECIPROCALS, SQUASH, STRETCH
from .vector_ops import dot_row, update_row  # noqa: F401  (the tests call them)


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


class Work(NamedTuple):
    """``code``'s working arrays, made by name there and unpacked in this order by ``code_with``."""
    x_in: np.ndarray
    ms: np.ndarray
    hashes2: np.ndarray
    hn2: np.ndarray
    ncum2: np.ndarray
    prep: np.ndarray
    base: np.ndarray
    sub: np.ndarray
    mv: np.ndarray
    blocks: np.ndarray
    ccost: np.ndarray
    ofeat: np.ndarray
    oref: np.ndarray
    owork: np.ndarray
    tp: np.ndarray
    sel: np.ndarray


class Tables(NamedTuple):
    squash: np.ndarray
    stretch: np.ndarray
    recip: np.ndarray


class State(NamedTuple):
    """The adaptive state, identical on both sides after every bit."""
    table: np.ndarray      # uint32 (buckets * 16,): slot 0 a bucket's check, slots 1..15 p16 << 16 | count
    hist: np.ndarray       # uint16 (N_MAPS, colours, MAP_CONTEXTS, 256): each bin's sum of the bins before it in
                           # its 16-bin block, below 2^16 (``components.learn_maps``)
    hblock: np.ndarray     # uint16 (N_MAPS, colours, MAP_CONTEXTS, 16): the sums of each histogram's 16-bin blocks
    w1: np.ndarray         # int32 (W1_ROWS, N_PAD): columns past N_INPUTS meet zero inputs, never change
    w2: np.ndarray         # int32 (colours * 8, N_SETS + 1)
    apm1: np.ndarray       # int32 (colours * 256, 33)
    apm2: np.ndarray       # int32 (colours * 8 * 16, 33)
    perr: np.ndarray       # uint8 (ring rows, width, colours, N_BLEND + 1): each sub-predictor's error there
                           # (at most 255), and the blend's residual mod 256
    cost: np.ndarray       # float64 (4,): the ideal code length in bits, and of each colour (reported, never coded)
    ols: np.ndarray        # int32 (colours * PHASES, N_OLS, OLS_N + 3, OLS_N): the least-squares predictors (``ols.py``)
    oerr: np.ndarray       # int16 (ring rows, width, colours, N_OLS): each one's error there
    berr: np.ndarray       # uint8 (ring rows, width, colours, BANK_ERRORS): the bank's errors there (at most 255)
    costs: np.ndarray      # uint16 (ring rows, width, colours): each sub-pixel's cost, in 1/16 bit (``predictors.COST``)
    strip: np.ndarray      # int64 (1,): the rows of a strip (the image's height for one strip)


# numba's dispatcher tells two namedtuple classes apart by their names, not their modules (measured: one
# compiled -9 decode loop served both versions' states, and decoded version 2's files with version 3's
# kernel after a version 3 file in the same process): each version's classes get names of their own
if SPEC.version != 2:
    for _cls in (Positions, Network, Side, Work, Tables, State):
        _cls.__name__ = f"{_cls.__name__}{SPEC.version}"


# The per-sub-pixel memories (perr, oerr, berr, costs) are read at the row
# coded and the one above only, so each strip keeps RING rows of them, row
# y of a strip whose first row is ``top`` in ring row ``ring_rows``: a row
# overwrites the one RING rows above, which every later sub-pixel has done
# reading in both stream orders (raster; the network's wavefront, where row
# y - 1 runs at least a column ahead of row y, so that row y - 2's last
# reader, row y - 1 at column x + 1, comes before row y's write at column x
# for any lag >= 1).  (3 rows, not 2: with 2, a lag of 1 would put that reader and
# writer in the same step.)  A 24 Mpx photo's memories take
# strips * 3 rows instead of 4000.  So a state made for one strip (``new_state``:
# coder 5, raster order) must not be given rows of several strips interleaved:
# it would read another strip's row as the row above (losslessly, but not as
# the definition does); the column parts' states (coder 6) are made for their
# strips.
RING = 3


OLS_MAP = N_MAPS - OLS_MAPS   # the least-squares predictors' maps: the last OLS_MAPS
FLAT_ROW = 4                  # version 3: set 4's row in a flat neighbourhood (after the 4 phases')
SET4_ROWS = SET_ROWS[4] // 8   # set 4's rows per bit: version 2's blend sub-predictors, version 3's phases and flat
assert SET4_ROWS == (FLAT_ROW + 1 if PHASES > 1 else N_BLEND)
PHASE_MAP = 8                 # version 3: colours 1 and 2 key maps 8.. (the bank's, the least squares') by the phase


def table_bits(n_subpixels: int) -> int:
    """log2 of the number of buckets (64 bytes each): at least a quarter of
    the hashed contexts' sub-pixels, between 2^10 and 2^22 (256 MB)."""
    need = max(1, n_subpixels * N_HASHED // 4 - 1)
    return int(min(SPEC.table_bits_max, max(SPEC.table_bits_min, need.bit_length())))


PART_TABLE_BITS = SPEC.part_table_bits_max       # a column part's table: at most 2^20 buckets (64 MB), without
                                                  # a table budget (``part_table_bits``)


def part_table_bits(n_subpixels: int, parts: int = 1) -> int:
    """log2 of the buckets of a column part of ``n_subpixels`` of ``parts``:
    as ``table_bits``, at most 2^20 (versions 2 and 3).  Measured on six
    photos-train images in two parts, the mixer alone: 2^22 buckets made
    files 0.01% smaller and the mixer about 12% slower (one run).  With a
    table budget (version 4: 2^22 for all parts together), at most the
    budget over ``parts`` rounded up to a power of two: 2^22 for one
    state, where it measured 0.96% smaller on waterloo_sail than 2^20 at
    the same speed (``docs/mixer2.md``)."""
    if SPEC.table_budget:
        return min(SPEC.table_budget - (parts - 1).bit_length(), table_bits(n_subpixels))
    return min(PART_TABLE_BITS, table_bits(n_subpixels))


def tables() -> Tables:
    return Tables(SQUASH, STRETCH, RECIPROCALS)


def ring_count(height: int, strip_rows: int) -> int:
    """The ring rows of the per-sub-pixel memories: RING per strip of ``strip_rows`` (0: one strip)."""
    rows = min(strip_rows, height) if strip_rows > 0 else height
    return RING * -(-height // max(1, rows))


@numba.njit(inline="always")
def ring_rows(strip, top, r):
    """The ring rows of row y = top + r of the strip starting at ``top`` and of row y - 1 (r > 0)."""
    base = (top // strip[0]) * RING
    return base + r % RING, base + (r + RING - 1) % RING


PRIOR_SETS = prior.sets(SPEC)      # the prior's sets (version 6: 2, named by a payload's first byte; 0: none)


def new_states(parts: int, height: int, width: int, colours: int, bits: int, strip_rows: int = 0,
               prior_set: int = 0) -> State:
    """``parts`` adaptive states, each as ``new_state`` with a table of 2^bits
    buckets, for strips of ``strip_rows`` rows (0: one strip), stacked:
    every array of the State has a leading axis of parts (``part`` gives
    one part's State).  ``prior_set``: the set of the prior they start from
    where it holds several (version 6, ``prior.choose``)."""
    rows = ring_count(height, strip_rows)
    strip = np.full((parts, 1), max(1, min(strip_rows, height) if strip_rows > 0 else height), np.int64)
    table = empty_table(parts, 1 << bits)        # (on several threads: ``table_memory``)
    start = prior.for_spec(SPEC, prior_set)
    if start is not None:           # versions 5, 6: learned tables; their rows go colour by colour (``prior.py``)
        w1, w2 = start["w1"], start["w2"][:colours * 8]
        apm1, apm2 = start["apm1"][:colours * 256], start["apm2"][:colours * 128]
    else:                           # the equal start: w1_init, equal second-mixer weights, identity APMs
        identity = np.array([int(SQUASH[min(4094, max(0, (i - 16) * 128 + 2047))]) * 16 for i in range(33)],
                            np.int32)
        apm1 = np.tile(identity, (colours * 256, 1))
        apm2 = np.tile(identity, (colours * 128, 1))
        w2 = np.full((colours * 8, N_SETS + 1), 65536 // N_SETS, np.int32)
        w2[:, N_SETS] = 0
        w1 = np.full((W1_ROWS, N_PAD), W1_INIT, np.int32)

    def stack(a):
        return np.repeat(a[None], parts, axis=0)
    return State(table, np.zeros((parts, N_MAPS, colours, MAP_CONTEXTS, 256), np.uint16),
                 np.zeros((parts, N_MAPS, colours, MAP_CONTEXTS, 16), np.uint16),
                 stack(w1), stack(w2), stack(apm1), stack(apm2),
                 np.zeros((parts, rows, width, colours, N_BLEND + 1), np.uint8), np.zeros((parts, 4)),
                 stack(new_ols(colours)), np.zeros((parts, rows, width, colours, N_OLS), np.int16),
                 np.zeros((parts, rows, width, colours, BANK_ERRORS), np.uint8),
                 np.zeros((parts, rows, width, colours), np.uint16), strip)


def part(states: State, p: int) -> State:
    """Part p of stacked states (views)."""
    return State(*(a[p] for a in states))


def new_state(height: int, width: int, colours: int) -> State:
    return part(new_states(1, height, width, colours, table_bits(height * width * colours)), 0)


def one_state_bytes(height: int, width: int, colours: int, bits: int, strip_rows: int = 0) -> int:
    """What one adaptive state (``new_states``) with 2^bits buckets takes, in bytes."""
    return ((64 << bits) + N_MAPS * colours * MAP_CONTEXTS * (256 + 16) * 2 + W1_ROWS * N_PAD * 4
            + colours * (8 * (N_SETS + 1) + 384 * 33) * 4
            + colours * PHASES * N_OLS * (OLS_N + 3) * OLS_N * 4
            + ring_count(height, strip_rows) * width * colours * (N_BLEND + 1 + BANK_ERRORS + 2 + 2 * N_OLS))




@numba.njit(inline="always")
def predictions(img, perr, banked, costs, at, ring, nbrs, summary, mv, sub, tp):
    """The maps' predictions and error contexts, and the blend's
    sub-predictions, of sub-pixel ``at`` = (y, x, r, c); returns the blend,
    its error class, the local activity's class and the local coding cost's
    class (``predictors.cost_class``).  Maps 8.. are the predictor bank's
    (``predictors.bank``; ``tp``: scratch for its taps).  (Keying maps
    0..6 also by the coding cost's class made files larger: +0.03%.)
    Files without map m (version 1's 8 maps) got larger by
    (``benchmarks/context_worth.py``, the mixer alone, where maps 5 and 6
    predict MED and (2W + 2N + NE - NW) / 4):
    0 MED: +0.082%
    1 gradient (colour 0) or MED + the colour before's error: +0.037%
    2 W (+ colour difference): +0.313%
    3 N (+ colour difference): +0.228%
    4 (W + NE) / 2, or (W + N) / 2 + colour difference: +0.063%
    5 the network's mode: +0.036%
    6 its mean: +0.217%
    7 the blend: +0.586%"""
    y, x, r, c = at
    y0, y1 = ring           # the ring rows of the per-sub-pixel memories (``ring_rows``)
    w, n, nw, ne, _, _ = nbrs
    mode, mean, _ = summary
    qa, med, grad = local(nbrs)
    preds = mv[PRED]
    qc = cost_class(costs, y0, y1, x, r, c)
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
        blended, berr, best = blend(perr, sub, y0, y1, x, r, c)
        qb = log_class(berr)
        for m in range(8):
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
        blended, berr, best = blend(perr, sub, y0, y1, x, r, c)
        qb = log_class(berr)
        # the same predictions made for the colour before: their errors are known
        e1 = (p1 - med1, 0, du, dn, 0, 0, 0, 0)
        for m in range(len(e1)):
            mv[CTX, m] = qa * 8 + log_class(e1[m])
        mv[CTX, 7] = qb * 8 + log_class(((np.int64(perr[y0, x, c - 1, N_BLEND]) + 128) & 255) - 128)
    preds[7] = blended
    bank(img, banked, at, ring, tp, preds, mv[CTX], 8, qc)
    return blended, qb, qa, qc, best


@numba.njit(inline="always")
def network_input(ncum, lo, half, stretch, has_net):
    """The network's P(the upper half of the open range | the open range), stretched (0 without one)."""
    if not has_net:
        return 0
    s_lo = ncum[lo + half] - ncum[lo]
    s_hi = ncum[lo + 2 * half] - ncum[lo + half]
    return stretch[p12(s_hi, s_lo + s_hi)]


@numba.njit(inline="always")
def selectors(best, qa, y, x, width, sel):
    """The sub-pixel's weight-set selectors that do not change with its bits
    (``sel``): the locally best blend sub-predictor (``components.blend``),
    the local activity, the column stripe, and the 2x2 phase (version 3's set 4;
    FLAT_ROW where the activity is 0: a flat neighbourhood shows no phase)."""
    sel[0] = best
    sel[1] = qa
    sel[2] = (x * STRIPES) // width
    sel[3] = phase(y, x) if qa > 0 else FLAT_ROW


@numba.njit(inline="always")
def set_rows(ms, c, k, c0, conf, qb, blended, sel):
    """The first mixer's weight sets for bit k: by the bits known, the
    network's confidence, the blend's error class, whether the blend
    agrees with the bits known (and its next bit), the locally best
    sub-predictor, the local activity and the column stripe."""
    ck = c * 8 + k
    agree = 0
    if (blended >> (8 - k)) == (c0 - (np.int64(1) << k)):
        agree = 1 + ((blended >> (7 - k)) & 1)
    ms[SET_ROW, 0] = SET_OFFSETS[0] + c * 256 + c0
    ms[SET_ROW, 1] = SET_OFFSETS[1] + ck * 8 + conf
    ms[SET_ROW, 2] = SET_OFFSETS[2] + ck * 8 + qb
    ms[SET_ROW, 3] = SET_OFFSETS[3] + ck * 3 + agree
    # (version 3: set 4 by the 2x2 phase instead of the locally best sub-predictor)
    ms[SET_ROW, 4] = SET_OFFSETS[4] + ck * SET4_ROWS + (sel[3] if PHASES > 1 else sel[0])
    ms[SET_ROW, 5] = SET_OFFSETS[5] + ck * 8 + sel[1]
    ms[SET_ROW, 6] = SET_OFFSETS[6] + ck * STRIPES + sel[2]


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
    arrive from memory in time.

    The work is ``code_with``'s, on working arrays made here."""
    return code_with(st, tb, img, pos, net, side, independent, Work(
        x_in=np.zeros(N_PAD, np.int32),             # the inputs' stretches (|x| <= 2047), padded with zeros
        ms=np.zeros((3, N_SETS), np.int64),         # the mixers' working values (SET_ROW, DOT, PROB)
        hashes2=np.zeros((2, N_HASHED), np.int64),  # this sub-pixel's hashed contexts and the next one's
        hn2=np.zeros((2, N_HASHED), np.int64),      # their first buckets
        ncum2=np.zeros((2, 257), np.int64),         # the network's prefix sums
        prep=np.zeros((2, 3), np.int64),            # mode, mean, conf
        base=np.zeros(N_HASHED, np.int64),
        sub=np.zeros(N_BLEND, np.int64),            # the blend's sub-predictions
        mv=np.zeros((6, N_MAPS), np.int64),         # the maps' working values (PRED, CTX, ...)
        blocks=np.zeros((N_MAPS, 17), np.int64),    # each map's blocks' running sums
        ccost=np.zeros(3),
        ofeat=np.zeros((N_OLS, OLS_N), np.int32),   # the least-squares predictors' inputs
        oref=np.zeros(N_OLS, np.int64),             # and references
        owork=np.zeros((OLS_N + 1, OLS_N), np.int64),
        tp=np.zeros(BANK_SCRATCH, np.int64),        # the bank's scratch (``predictors.bank``)
        sel=np.zeros(4, np.int64)))                 # the weight sets' selectors (``selectors``)


# ``code_with`` is compiled without numba's reference counts (``_nrt=False``): it allocates nothing, and
# every array it reads or views belongs to its caller for the whole call.  With them, each view that the
# inlined steps make (a row, a predictor's state, a slice of the maps' values) cost an atomic increment
# and decrement that the compiler left in the loops: 13% of the user-space samples of version 6
# coding waterloo_sail over the network's counts (perf; AMD EPYC Zen 4), and without them the stage took 5.93
# us per sub-pixel instead of 6.78 (medians of 6, alternated in one process).  The arithmetic is the same.
@numba.njit(nogil=True, _nrt=False)
def code_with(st, tb, img, pos, net, side, independent, work):
    """``code`` with its working arrays ``work`` (``Work``, zeros)."""
    stretch, recip = tb.stretch, tb.recip     # (squash: the module constant SQUASH, in ``probability``)
    table = st.table
    mask = (len(table) >> 4) - 1
    colours = st.hist.shape[1]
    decoding, enc, out, dec, data = side
    w1, w2, apm1, apm2 = st.w1, st.w2, st.apm1, st.apm2     # the mixers' and APMs' weights
    (x_in, ms, hashes2, hn2, ncum2, prep, base, sub,            # ``Work``'s fields, in its order
     mv, blocks, ccost, ofeat, oref, owork, tp, sel) = work
    hist = st.hist.reshape(-1)
    hblock = st.hblock.reshape(-1)
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
        nbrs = neighbours(img, y, x, r, c)
        y0, y1 = ring_rows(st.strip, pos.tops[e], r)
        blended, qb, qa, qc, best = predictions(img, st.perr, st.berr, st.costs, (y, x, r, c), (y0, y1), nbrs,
                                          (prep[slot, 0], prep[slot, 1], conf), mv, sub, tp)
        # maps OLS_MAP on: the least-squares predictors', two each (``ols.py``)
        ols_predictions(st.ols, st.oerr, img, y, y0, y1, x, r, c, nbrs[0], ofeat, oref, mv[PRED, OLS_MAP:],
                        mv[CTX, OLS_MAP:], qa)
        selectors(best, qa, y, x, img.shape[1], sel)
        if PHASES > 1 and c > 0 and sel[3] != FLAT_ROW:     # version 3: colours 1 and 2 read maps 8.. once
            phase64 = sel[3] * 64                           # per 2x2 phase (a flat neighbourhood: once)
            for m in range(PHASE_MAP, N_MAPS):
                mv[CTX, m] += phase64
        open_maps(hist, hblock, mv, blocks, c, colours)
        # the bits, most significant first
        value = np.int64(img[y, x, c]) if not decoding else np.int64(0)
        c0 = np.int64(1)
        lo = np.int64(0)
        node = np.int64(1)
        paid = np.int64(0)              # this sub-pixel's cost, in 1/16 bit (at most 8 * 192)
        for k in range(8):
            half = np.int64(128) >> k
            if k == 0 or k == 4:
                find_buckets(table, hn, mask, base)
                node = 1
            hashed_inputs(table, base, node, stretch, x_in)
            map_inputs(hist, mv, blocks, lo, half, stretch, x_in)
            x_in[NET_INPUT] = network_input(ncum, lo, half, stretch, net.has_net)
            x_in[NET_INPUT + 1] = BIAS
            set_rows(ms, c, k, c0, conf, qb, blended, sel)
            p16, pm, apms = probability(w1, w2, apm1, apm2, x_in, ms, c * 8 + k, c0, qa, net.has_net)
            bit = code_bit(decoding, enc, out, dec, data, value, k, p16)
            if not decoding:            # reported by the encoder, never coded
                ccost[c] -= np.log2((p16 if bit else 65536 - p16) / 65536.0)
            paid += bit_cost(p16, bit)
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
        learn_blend(st.perr, sub, y0, x, c, lo, blended)
        ols_learn(st.ols, st.oerr, y, y0, x, c, lo, ofeat, oref, mv[PRED, OLS_MAP:], owork)
        learn_bank(st.berr, tp[BP], y0, x, c, lo)
        st.costs[y0, x, c] = paid
        learn_maps(hist, hblock, mv, blocks, lo)
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
                   states.apm2[p], states.perr[p], states.cost[p], states.ols[p], states.oerr[p], states.berr[p],
                   states.costs[p], states.strip[p])
        mine = Positions(pos.ys[sel], pos.xs[sel], pos.cs[sel], pos.tops[sel])
        # np.bool_, not the literal True: a literal would compile ``code`` a second time (45 s of CPU)
        side = Side(np.bool_(True), no_enc, no_out, decs[p], data[data_starts[p]:data_starts[p + 1]])
        short[p] = len(sel) - code(st, tb, img, mine, Network(net.counts, net.rows[sel], net.has_net), side,
                                   np.bool_(True))
