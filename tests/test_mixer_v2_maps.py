"""Version 2's predictor bank and local coding cost (``pixzip/codec/mixer/v2/predictors.py``) and the
maps' division-free read (``components.p12_map``)."""
import math

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixzip.codec.mixer.tables import STRETCH
from pixzip.codec.mixer.v2 import coders, components, predictors, vector_ops

from .test_mixer import image_of


def test_the_integer_log_is_the_floor_of_log2_in_fixed_point():
    for n in list(range(1, 300)) + [4095, 4096, 65535, 1 << 20]:
        exact = predictors.ilog2_fixed(n)
        assert exact <= math.log2(n) * 65536 < exact + 1.001


def test_the_cost_table_is_minus_log2_in_sixteenths_of_a_bit():
    cost = predictors.COST
    assert cost.dtype == np.int32 and cost[4095] == 0 and cost[2048] == 16 and cost[1] == 192
    for p in range(1, 4096):
        assert abs(cost[p] - (-16 * math.log2(p / 4096))) <= 0.51
    assert np.all(np.diff(cost[1:]) <= 0)


@settings(max_examples=300, deadline=None)
@given(total=st.integers(0, 1 << 16), frac=st.floats(0, 1))
def test_a_map_is_read_without_a_division_to_within_two_4096ths(total, frac):
    hi = int(frac * total)
    got = components.p12_map.py_func(hi, total)
    assert 1 <= got <= 4095
    assert abs(got - components.p12.py_func(hi + 16, total + 32)) <= 2


@numba.njit
def _map_stretches(mv, x_in):
    vector_ops.map_stretches(mv, components.HI, components.UPPER, components.LO, components.MAP_RECIP, STRETCH,
                             x_in, components.N_HASHED)


def test_every_maps_vector_read_is_its_scalar_read():
    """``vector_ops.map_stretches`` (every map at once, gathered) equals
    ``p12_map`` and the stretch one map at a time, on ranges from empty to
    a histogram's largest total."""
    rng = np.random.default_rng(1)
    n = components.N_MAPS
    for trial in range(3000):
        total = [rng.integers(0, (1 << 16) + 1, n), rng.integers(0, 64, n), np.full(n, 1 << 16)][trial % 3]
        upper = np.minimum((rng.random(n) * (total + 1)).astype(np.int64), total)
        upper = total if trial % 7 == 0 else (upper * 0 if trial % 11 == 0 else upper)
        mv = np.zeros((6, n), np.int64)
        mv[components.LO] = rng.integers(0, 1 << 17, n)
        mv[components.HI] = mv[components.LO] + total
        mv[components.UPPER] = mv[components.HI] - upper
        x_in = np.zeros(components.N_PAD, np.int32)
        _map_stretches(mv, x_in)
        want = [STRETCH[components.p12_map.py_func(int(upper[m]), int(total[m]))] for m in range(n)]
        assert x_in[components.N_HASHED:components.N_HASHED + n].tolist() == want
        assert not x_in[:components.N_HASHED].any() and not x_in[components.N_HASHED + n:].any()


@numba.njit
def _block_prefix16(a, start, out, m):
    return vector_ops.block_prefix16(a, start, out, m)


def test_a_maps_block_sums_are_their_running_sums():
    rng = np.random.default_rng(2)
    for _ in range(300):
        a = rng.integers(0, 1 << 16, 100).astype(np.uint16)
        start, m = int(rng.integers(0, 85)), int(rng.integers(0, 3))
        out = np.full((3, 17), -1, np.int64)
        total = _block_prefix16(a, start, out, m)
        want = np.concatenate([[0], np.cumsum(a[start:start + 16].astype(np.int64))])
        assert out[m].tolist() == want.tolist() and total == want[16]
        assert (np.delete(out, m, axis=0) == -1).all()


@numba.njit
def _add_from16(a, start, first, inc):
    vector_ops.add_from16(a, start, first, inc)


def test_a_maps_count_adds_to_the_last_lanes_of_its_block_only():
    rng = np.random.default_rng(3)
    for _ in range(300):
        a = rng.integers(0, 1 << 15, 100).astype(np.uint16)
        start, first, inc = int(rng.integers(0, 85)), int(rng.integers(0, 17)), int(rng.integers(0, 1 << 15))
        want = a.copy()
        want[start + first:start + 16] += np.uint16(inc)
        _add_from16(a, start, first, inc)
        assert a.tolist() == want.tolist()


@numba.njit
def _open_read_learn(hist, hblock, mv, blocks, xs, value, out):
    """The maps opened (their LO and HI), each one's prefix sum at xs[m] into out[m], then value learned."""
    flat, flat_blocks = hist.reshape(-1), hblock.reshape(-1)
    components.open_maps(flat, flat_blocks, mv, blocks, 0, 1)
    for m in range(components.N_MAPS):
        out[m] = components.prefix(flat, mv[components.ROW_AT, m], blocks, m, xs[m])
    components.learn_maps(flat, flat_blocks, mv, blocks, value)


def test_a_maps_running_sums_are_those_of_its_bins_through_every_halving():
    """The maps keep each bin's sum of the bins before it in its 16-bin block
    (``components.learn_maps``), not the bins: every prefix sum read from
    them, at the range's ends and anywhere in two turns, is the plain
    histogram's, with its halving past H_LIMIT, over enough values that
    every context is halved several times."""
    n, ctxs = components.N_MAPS, 2
    rng = np.random.default_rng(4)
    hist = np.zeros((n, 1, components.MAP_CONTEXTS, 256), np.uint16)
    hblock = np.zeros((n, 1, components.MAP_CONTEXTS, 16), np.uint16)
    bins = np.zeros((n, ctxs, 256), np.int64)          # the plain histograms
    mv = np.zeros((6, n), np.int64)
    blocks = np.zeros((n, 17), np.int64)
    out = np.zeros(n, np.int64)
    halvings = 0
    for step in range(9000):
        mv[components.PRED] = rng.integers(0, 256, n)
        mv[components.CTX] = rng.integers(0, ctxs, n)
        xs = rng.integers(0, 512, n)
        value = int(np.clip(rng.normal(128, 6 if step % 3 else 60), 0, 255))
        _open_read_learn(hist, hblock, mv, blocks, xs, value, out)
        for m in range(n):
            h = bins[m, mv[components.CTX, m]]
            twice = np.concatenate([[0], np.cumsum(np.concatenate([h, h]))])
            lo = (-mv[components.PRED, m]) & 255
            assert mv[components.LO, m] == twice[lo] and mv[components.HI, m] == twice[lo] + h.sum()
            assert out[m] == twice[xs[m]]
            total = h.sum()
            h[(value - mv[components.PRED, m]) & 255] += components.H_INC
            if total + components.H_INC > components.H_LIMIT:
                h >>= 1
                halvings += 1
    assert halvings >= 4 * n


@numba.njit
def _class_of(costs, y, x, r, c):
    return predictors.cost_class(costs, y, y - 1, x, r, c)      # a whole image is a ring of itself


def test_the_cost_class_grows_with_the_cost_around_and_stays_in_0_to_7():
    costs = np.zeros((3, 4, 3), np.uint16)
    classes = []
    for v in (0, 8, 16, 32, 48, 64, 80, 96, 1536):
        costs[:] = v
        classes.append(_class_of(costs, 1, 1, 1, 1))
    assert classes == sorted(classes) and classes[0] == 0 and classes[-1] == 7
    assert _class_of(costs, 0, 0, 0, 0) == 4        # nothing known: the middle


def test_the_kept_cost_is_the_ideal_code_length_to_the_tables_rounding():
    img = image_of("smooth", 3, 61, 3, 3)      # three rows: the ring of one strip keeps them all
    enc = coders.OneStateEncoder(img)
    enc.add_image()
    kept = enc.state.costs.astype(np.int64).sum() / 16
    assert enc.state.costs.shape == img.shape and np.all(enc.state.costs <= 8 * 192)
    assert abs(kept - enc.ideal_bits) <= 0.04 * img.size * 8 / 16 + 0.01 * enc.ideal_bits


@numba.njit
def _bank_of(img, berr, y, x, r, c):
    tp = np.zeros(predictors.BANK_SCRATCH, np.int64)
    out = np.zeros(8 + predictors.BANK_N_MAPS, np.int64)
    ctx = np.zeros(8 + predictors.BANK_N_MAPS, np.int64)
    predictors.bank(img, berr, (y, x, r, c), (y, y - 1), tp, out, ctx, 8, 3)
    return np.concatenate((out[8:], tp[predictors.BP, :predictors.BANK_ERRORS])), ctx[8:]


@pytest.mark.slow       # 200 s: it compiles the bank in a kernel of its own (the round trips run it in the default tests)
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), y=st.integers(0, 5), x=st.integers(0, 6), c=st.integers(0, 2),
       top=st.integers(0, 5))
def test_the_banks_predictions_are_bytes_and_its_contexts_fit_the_maps(seed, y, x, c, top):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (6, 7, 3)).astype(np.uint8)
    berr = rng.integers(0, 256, (6, 7, 3, predictors.BANK_ERRORS)).astype(np.uint8)
    top = min(top, y)
    preds, ctx = _bank_of(img, berr, y, x, y - top, c)
    assert np.all((0 <= preds) & (preds <= 255))
    assert np.all((0 <= ctx) & (ctx < components.MAP_CONTEXTS))


@numba.njit
def _predict_all(t):
    out = np.zeros(predictors.N_FORMULAS, np.int64)
    predictors.predict_all(t, out)
    return out


@given(v=st.integers(0, 255))
@settings(max_examples=20, deadline=None)
def test_every_bank_predictor_predicts_a_flat_neighbourhood_exactly(v):
    out = _predict_all(np.full(predictors.N_TAPS, v, np.int64))
    assert np.all(out == v)
