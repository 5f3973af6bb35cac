"""Version 2's compiled context mixer (``mixer/v2/kernel.py``, coders 5 and 6)
against its slow plain-Python definition (``mixer/v2/definition.py``), and
version 3's (coders 8 and 9: the same files under ``SPEC_3``, ``mixer/v3``)
against the same definition under SPEC_3 where a test names ``version``.

The kernel does not report its probabilities, so they are pinned two ways:
the compiled payload must equal the definition's range coder's bytes
exactly (any differing p16 changes the coder's state), and the compiled
ideal code length must equal the one summed from the definition's (p16, bit)
pairs.  The definition's parts that the bytes could exercise only rarely
(each of the 38 predictor formulas, the least-squares solve on extreme
inputs, the maps' reading at every total) are also checked one by one
against the kernel's functions.

Every encoder here runs the same ``kernel.code`` (one signature): compiled
(70-110 s on a 2-core machine) when the kernel cache is cold, after an edit
of any ``mixer/v2`` module, this definition's included; the rest of the
file takes about 25 s (the definition codes about 500 sub-pixels a second)."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixzip.codec.mixer.v2 import components, ols, predictors
from pixzip.codec.mixer.v2 import definition as ref
from pixzip.codec.mixer.v2.coders import OneStateEncoder, PartsEncoder
from pixzip.codec.mixer.v3 import coders as coders3
from pixzip.codec.mixer.v3 import definition as ref3
from pixzip.codec.mixer.v4 import coders as coders4
from pixzip.codec.mixer.v4 import definition as ref4
from pixzip.codec.mixer.v5 import coders as coders5
from pixzip.codec.mixer.v5 import definition as ref5
from pixzip.codec.mixer.v6 import coders as coders6
from pixzip.codec.mixer.v6 import definition as ref6

from .test_mixer_definition import cases as v1_cases
from .test_mixer_definition import make_counts, make_image, raster, two_strips

# ---------------------------------------------------------------- helpers


def _i64(a):
    return np.ascontiguousarray(np.asarray(a, np.int64))


def batches_of(batches):
    """The definition's positions and counts of ``batches`` ((positions, counts or None) each)."""
    positions, counts = [], []
    q = 0
    for pos, cnt in batches:
        if cnt is None:
            positions += [tuple(p) for p in pos]
        else:
            assert cnt.shape == (len(pos), 256)
            positions += [tuple(p) + (q + i,) for i, p in enumerate(pos)]
            counts.append(cnt)
            q += len(pos)
    return positions, (np.concatenate(counts) if counts else None)


# version -> (its definition, its one-state encoder, its column parts' encoder)
VERSIONS = {2: (ref, OneStateEncoder, PartsEncoder), 3: (ref3, coders3.OneStateEncoder, coders3.PartsEncoder),
            4: (ref4, coders4.OneStateEncoder, coders4.PartsEncoder),
            5: (ref5, coders5.OneStateEncoder, coders5.PartsEncoder),
            6: (ref6, coders6.OneStateEncoder, coders6.PartsEncoder)}


def compare(img: np.ndarray, batches, version: int = 2) -> ref.ReferenceModel:
    """Code ``img`` with the compiled one-state encoder, one ``add`` per
    batch (``(positions, counts or None)``, positions a list of (y, x, c,
    top)), and check the bytes and the ideal code length against the
    definition's; returns the definition's model, for the caller to inspect."""
    ref, OneStateEncoder, _ = VERSIONS[version]
    enc = OneStateEncoder(img)
    for positions, counts in batches:
        ys, xs, cs, tops = (_i64([p[i] for p in positions]) for i in range(4))
        enc.add(ys, xs, cs, tops, counts)
    compiled = enc.finish()
    positions, counts = batches_of(batches)
    model = ref.ReferenceModel(img)
    decisions = ref.trace(img, positions, counts, model)
    assert len(decisions) == 8 * len(positions)
    assert all(32 <= p <= 65503 and b in (0, 1) for p, b in decisions)
    assert ref.encode_decisions(decisions) == compiled
    assert math.isclose(enc.ideal_bits, ref.ideal_bits(decisions), rel_tol=1e-6)
    return model


def with_counts(img, positions, seed):
    return positions, make_counts(len(positions), seed, img, positions)


# ---------------------------------------------------------------- the parts, one by one

def test_the_coding_cost_table_and_the_maps_reciprocals_are_the_kernels():
    assert ref.COST == predictors.COST.tolist()
    assert ref.MAP_RECIP == components.MAP_RECIP.tolist()
    assert ref.COST[4095] == 0 and ref.COST[2048] == 16 and ref.COST[1] == 192


def test_a_maps_probability_is_the_kernels_at_every_total():
    """(upper + 16) / (total + 32) through the reciprocal: every total up to
    the halving limit, at its ends and at points between."""
    rng = np.random.default_rng(1)
    totals = sorted(set(range(0, 300)) | {ref.SPEC.h_limit - d for d in range(40)}
                    | set(int(t) for t in rng.integers(0, ref.SPEC.h_limit + 1, 400))
                    | {(1 << b) + d for b in range(12, 17) for d in (-33, -32, -31, -1, 0, 1)} - {65537})
    for t in totals:
        for upper in {0, 1, t // 2, t - 1, t, int(rng.integers(0, t + 1))} - {-1}:
            if 0 <= upper <= t <= 1 << 16:
                assert ref.map_p12(upper, t) == components.p12_map(upper, t), (upper, t)


def test_every_bank_predictor_is_the_kernels():
    """All 38 formulas (the bank may track any of them): on pixel taps (0..255)
    and on taps of any differences (-255..255), extremes included."""
    rng = np.random.default_rng(2)
    cases = [rng.integers(0, 256, 9) for _ in range(150)] + [rng.integers(-255, 256, 9) for _ in range(150)]
    cases += [np.full(9, v) for v in (0, 255, -255)] + [rng.choice([0, 255], 9) for _ in range(40)]
    cases += [rng.choice([-255, 255], 9) for _ in range(40)]
    assert len(ref.PREDICTORS) == predictors.N_FORMULAS == 38
    p = np.zeros(38, np.int64)
    for t in cases:
        t = _i64(t)
        predictors.predict_all(t, p)
        taps = ref.Taps(*(int(v) for v in t))
        assert [f(taps) for f in ref.PREDICTORS] == p.tolist(), t
    assert ref.BANK == tuple(predictors.BANK_IDS[:ref.SPEC.n_bank].tolist())


@pytest.mark.parametrize("extreme", [False, True], ids=["random", "extreme"])
def test_the_least_squares_solve_is_the_kernels(extreme):
    """``ols.solve`` and the definition's solve give the same weights, from
    the same normal equations: each input set's predictors after a run of
    random (or all +-255) inputs, and at every step of a short run."""
    rng = np.random.default_rng(3 + extreme)
    work = np.zeros((ols.OLS_N + 1, ols.OLS_N), np.int64)
    for g in (ref.GRAY, ref.FIRST, ref.LATER):
        for k in range(ref.N_OLS):
            n = int(ols.N_FEATURES[g, k])
            inputs = tuple(tuple(int(v) for v in ols.FEATURES[g, k, i]) for i in range(n))
            model = ref.LeastSquares(inputs, int(ols.SHIFT[g, k]), int(ols.RIDGE[g, k]), 1 << 40)   # never solves alone
            st_ = ols.new_ols(1)[0, 0]
            for step in range(60):
                if extreme:
                    f = [int(v) for v in rng.choice([-255, 255], n)]
                    t = int(rng.choice([-255, 255]))
                else:
                    base = rng.integers(-40, 41)
                    f = [int(v) for v in np.clip(base + rng.integers(-6, 7, n), -255, 255)]
                    t = int(np.clip(base + rng.integers(-4, 5), -255, 255))
                model.learn(f, t)
                ols.update(st_, np.array(f + [0] * (ols.OLS_N - n), np.int32), n, t, int(ols.SHIFT[g, k]))
                if step % 7 == 6 or step == 59:
                    model.solve()
                    ols.solve(st_, n, int(ols.RIDGE[g, k]), int(ols.SHIFT[g, k]), work)
                    assert model.w == st_[ols.ROW_W, :n].tolist(), (g, k, step)
            assert any(model.w)


def test_the_cost_class_reads_what_was_paid_around():
    costs = {}
    assert ref.cost_class(costs, 0, 0, 0, 0, 5) == 4                        # nothing known
    assert ref.cost_class(costs, 0, 1, 0, 0, 5) == 0                        # W known, cost 0
    costs[(0, 0, 0)] = 16                                                   # one bit at W
    assert ref.cost_class(costs, 0, 1, 0, 0, 5) == 2
    costs[(0, 1, 0)] = 96 * 8
    assert ref.cost_class(costs, 0, 1, 0, 1, 5) == 7                        # the colour before, weight 2


# ---------------------------------------------------------------- raster, no network

SHAPES = [(1, 1, 1), (1, 1, 3), (1, 7, 1), (7, 1, 2), (6, 1, 3), (2, 3, 3), (5, 7, 1), (4, 5, 2), (12, 14, 1),
          (12, 14, 3)]


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("kind", ["noise", "constant", "zeros", "ones", "gradient", "smooth"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_raster_without_network(kind, shape, version):
    h, w, c = shape
    compare(make_image(kind, h, w, c, seed=h * 100 + w), [(raster(0, h, w, c), None)], version)


def test_add_rows_in_blocks_equals_one_run():
    img = make_image("noise", 7, 6, 3, seed=9)
    enc = OneStateEncoder(img)
    for y0, y1 in ((0, 2), (2, 3), (3, 7)):
        enc.add_rows(y0, y1)
    assert ref.encode(img, raster(0, 7, 6, 3)) == enc.finish()


# ---------------------------------------------------------------- with the network's counts

@pytest.mark.parametrize("version", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("kind", ["noise", "gradient", "constant", "smooth"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 6, 3), (5, 1, 1), (3, 5, 3), (8, 9, 1), (6, 5, 2), (9, 10, 3)],
                         ids=lambda s: "x".join(map(str, s)))
def test_raster_with_network(kind, shape, version):
    h, w, c = shape
    img = make_image(kind, h, w, c, seed=7 * h + w)
    compare(img, [with_counts(img, raster(0, h, w, c), seed=h + w)], version)


def test_batches_without_network_with_uniform_and_peaked_counts_share_one_state():
    """One state over batches without the network's counts, with plain uniform
    counts in 1..65536 (confidence always 0), and with peaked ones."""
    img = make_image("smooth", 8, 7, 3, seed=2)
    a, b, c, d = (raster(y, y + 2, 7, 3) for y in (0, 2, 4, 6))
    uniform = np.random.default_rng(4).integers(1, 65537, (len(b), 256)).astype(np.float64)
    compare(img, [(a, None), (b, uniform), with_counts(img, c, 1), (d, None)])


# ---------------------------------------------------------------- strips

@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("net", [False, True], ids=["plain", "network"])
@pytest.mark.parametrize("colours", [1, 2, 3])
def test_two_strips(net, colours, version):
    img = make_image("smooth", 8, 5, colours, seed=colours)
    strips = raster(0, 4, 5, colours, top=0), raster(4, 8, 5, colours, top=4)
    compare(img, [with_counts(img, s, 2 + i) if net else (s, None) for i, s in enumerate(strips)], version)


@pytest.mark.parametrize("version", [2, 3])
def test_strips_coded_second_first_and_interleaved(version):
    """Strips are independent: any order that codes each strip's rows in
    order is valid, the lower strip first, and rows of both alternating in
    a state made for those strips (the per-sub-pixel memories keep rings of
    rows per strip: one column part with the strips' rows)."""
    img = make_image("noise", 6, 4, 3, seed=8)
    s0, s1 = two_strips(4, 3)
    compare(img, [(s1 + s0, None)], version)
    row = 4 * 3
    woven = [p for r in range(3) for s in (s0, s1) for p in s[r * row:(r + 1) * row]]
    counts = make_counts(len(woven), 6, img, woven)
    compare_parts(img, [p + (q,) for q, p in enumerate(woven)], counts, 1, strip_rows=3, version=version)


def test_a_strip_of_one_row_and_uneven_strips():
    img = make_image("gradient", 6, 5, 3, seed=4)
    compare(img, [(raster(0, 1, 5, 3, 0) + raster(1, 2, 5, 3, 1) + raster(2, 6, 5, 3, 2), None)])


# ---------------------------------------------------------------- long enough for every adaptive part

@pytest.mark.parametrize("version", [2, 3, 4])
@pytest.mark.parametrize("colours", [1, 3])
def test_a_larger_image_in_strips_solves_every_least_squares_predictor_many_times(colours, version):
    """24x20 (version 3: 48x20, its colours 1 and 2 having a system per 2x2
    phase), two strips, the network over the second: every colour's
    least-squares predictors re-solve many times (their weights then move
    the maps), the bank's error memory and the coding cost take many classes."""
    h = 24 if version == 2 else 48
    img = make_image("smooth", h, 20, colours, seed=11)
    s0, s1 = raster(0, 10, 20, colours, top=0), raster(10, h, 20, colours, top=10)
    model = compare(img, [(s0, None), with_counts(img, s1, 12)], version)
    assert all(m.solves >= 10 and any(m.w) for m in model.ols.values())
    assert len(model.ols) == ref.N_OLS * (colours if version == 2 else 1 + 4 * (colours - 1))
    classes = {ref.cost_class(model.costs, y, x, y - t, c, 20) for y, x, c, t in s0 + s1}
    assert len(classes) >= 4


def test_residual_maps_reach_their_halving_limit():
    """A mostly flat image long enough that the flat context's histograms
    pass h_limit and are halved, with several bins in use (so that halving
    changes later probabilities); the hashed counters saturate too."""
    # the values one context counts before it halves, and room: about 89% of the pixels see W, N, NW, NE flat
    need = ref.SPEC.h_limit // ref.SPEC.h_inc * 3 // 2
    w = 48
    h = -(-need // w)
    rng = np.random.default_rng(0)
    img = np.where(rng.random((h, w, 1)) < 0.03, rng.integers(0, 4, (h, w, 1)), 0).astype(np.uint8)
    model = compare(img, [(raster(0, h, w, 1), None)])
    assert model.maps.halvings > 0
    # a count that is not a multiple of h_inc was halved; with another bin in use beside it
    assert any(sum(v > 0 for v in bins) >= 2 and any(v % ref.SPEC.h_inc for v in bins)
               for bins in model.maps.hist.values())


# ---------------------------------------------------------------- hypothesis

@settings(max_examples=20, deadline=None, database=None)
@given(v1_cases(), st.sampled_from([1, 2, 3]), st.sampled_from([2, 3, 4]))
def test_hypothesis_definition_equals_compiled(case, colours, version):
    """Version 1's cases (a small image, its rows cut into blocks, each its own strip or not, each coded with
    the network's counts or without), in 1, 2 or 3 colours."""
    h, w, _, kind, seed, cuts, strips, net = case
    img = make_image(kind, h, w, colours, seed)
    batches = []
    for i, (y0, y1) in enumerate(itertools.pairwise([0] + cuts + [h])):
        pos = raster(y0, y1, w, colours, top=y0 if strips else 0)
        batches.append(with_counts(img, pos, seed + i) if net[i] else (pos, None))
    compare(img, batches, version)


# ---------------------------------------------------------------- column parts

def compare_parts(img, positions, counts, parts, strip_rows=0, version=2):
    """The compiled column parts' payload against the definition's (the
    compiled state made for strips of ``strip_rows`` rows, 0: one strip)."""
    ref, _, PartsEncoder = VERSIONS[version]
    enc = PartsEncoder(img, parts, strip_rows)
    ys, xs, cs, tops = (_i64([p[i] for p in positions]) for i in range(4))
    enc.add(ys, xs, cs, tops, None if counts is None else counts[[p[4] for p in positions]])
    compiled = enc.finish()
    assert ref.encode_parts(img, positions, counts, parts) == compiled


@pytest.mark.parametrize("version", [2, 3, 4])
@pytest.mark.parametrize("parts", [1, 2, 3])
@pytest.mark.parametrize("shape, strip, net", [((9, 11, 3), 0, True), ((8, 7, 1), 3, False), ((5, 2, 3), 0, True),
                                               ((6, 8, 2), 0, False)],
                         ids=["9x11x3-network", "8x7x1-strips", "5x2x3", "6x8x2"])
def test_column_parts_in_raster_order(parts, shape, strip, net, version):
    """Each part a model of its own over its columns' sub-pixels (with 3
    parts of a 2-wide image one is empty), reading the whole image: its
    neighbours in other parts are known, their errors and costs are not."""
    h, w, c = shape
    img = make_image("smooth", h, w, c, seed=h * w + parts)
    positions = []
    for y0 in range(0, h, strip or h):
        positions += raster(y0, min(h, y0 + (strip or h)), w, c, top=y0)
    counts = None
    if net:
        counts = make_counts(len(positions), parts, img, positions)
        positions = [p + (q,) for q, p in enumerate(positions)]
    compare_parts(img, positions, counts, parts, strip, version)


@pytest.mark.parametrize("version", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("shape, strip", [((9, 11, 3), 0), ((8, 7, 1), 3), ((10, 13, 3), 0)],
                         ids=["9x11x3", "8x7x1-strips", "10x13x3-subsampled"])
def test_column_parts_in_the_networks_stream_order(shape, strip, version):
    """Coder 3's way: the network's wavefront order and counts (a tiny random
    network), two parts, each coded in a thread of its own.  The 10x13 image's
    colour is once subsampled: the mixer 6 starts it from its prior's set 1,
    the payload's first byte."""
    from pixzip.codec.mixer import with_network
    from pixzip.codec.network.enc_stream import symbols_and_counts

    from .conftest import once_subsampled, tiny_int_model
    h, w, c = shape
    net = tiny_int_model(c)
    img = make_image("smooth", h, w, c, seed=h * w)
    if h == 10:
        img = once_subsampled(img)
    chunks = list(symbols_and_counts(net, img, strip_height=strip, positions=True))
    where = [np.concatenate([ch[3][i] for ch in chunks]) for i in range(4)]
    counts = np.concatenate([ch[1] for ch in chunks])
    positions = [(int(y), int(x), int(k), int(t), q) for q, (y, x, k, t) in enumerate(zip(*where))]
    ref, _, PartsEncoder = VERSIONS[version]
    payload, bits, _, _ = with_network.encode_in_parts(img, net, None, strip, "cpu", None, False, 2,
                                                       encoder=PartsEncoder)
    assert payload == ref.encode_parts(img, positions, counts, 2)
    if version == 6:        # the prior's set the encoder chose: 1 for colour once subsampled
        from pixzip.codec.mixer import prior
        assert payload[0] == prior.choose(img, ref.SPEC) and (h != 10 or payload[0] == 1)


# ---------------------------------------------------------------- another spec

_OTHER_SPEC = r'''
import dataclasses, sys
import numpy as np
from pixzip.codec import kernel_cache
from pixzip.codec.mixer import spec
kernel_cache.enable = lambda: {}      # the cached machine code is the released spec's: compile this one anew
bank = (21, 8, 3, 36, 0, 37, 11)
spec.SPEC_2 = dataclasses.replace(spec.SPEC_2, bank=bank, n_bank=len(bank), bank_maps=5, bank_derived=1,
                                  n_maps=8 + 5 + 1 + 2 * spec.SPEC_2.n_ols, h_limit=1 << 12)
from pixzip.codec.mixer.v2 import definition as ref, kernel
from pixzip.codec.mixer.v2.coders import OneStateEncoder, PartsEncoder
from tests.test_mixer_definition import make_counts, make_image, raster
assert kernel.N_MAPS == ref.N_MAPS == 8 + 6 + 2 * ref.N_OLS and kernel.H_LIMIT == 1 << 12
halvings = 0
for i, (h, w, c, kind, strip) in enumerate([(14, 12, 3, "smooth", 0), (20, 16, 1, "smooth", 5),
                                            (9, 10, 2, "noise", 3), (30, 12, 1, "constant", 0)]):
    img = make_image(kind, h, w, c, i)
    pos = [p for y0 in range(0, h, strip or h) for p in raster(y0, min(h, y0 + (strip or h)), w, c, top=y0)]
    counts = make_counts(len(pos), i, img, pos) if i % 2 else None
    ys, xs, cs, tops = (np.array([p[j] for p in pos], np.int64) for j in range(4))
    rp = [p + (q,) for q, p in enumerate(pos)] if i % 2 else pos
    enc = OneStateEncoder(img)
    enc.add(ys, xs, cs, tops, counts)
    model = ref.ReferenceModel(img)
    assert ref.encode_decisions(ref.trace(img, rp, counts, model)) == enc.finish(), (h, w, c, kind)
    halvings += model.maps.halvings
    enc = PartsEncoder(img, 2)
    enc.add(ys, xs, cs, tops, counts)
    assert ref.encode_parts(img, rp, counts, 2) == enc.finish(), (h, w, c, kind)
assert halvings > 0
print("same bytes")
'''


@pytest.mark.slow
def test_the_definition_follows_another_spec():
    """Under another SPEC_2 (patched before the kernel is imported, in a
    process of its own: the kernel freezes its numbers when it compiles): 7
    of the bank's predictors, in another order, the first 5 with maps, the
    blend alone derived, and histograms halved at 2^12.  (About 3 minutes: a kernel compiled anew.)"""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", _OTHER_SPEC], cwd=root, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0 and "same bytes" in done.stdout, done.stderr[-3000:]


# ---------------------------------------------------------------- the released files

GOLDEN = {      # (the golden file in tests/data/format2, its picture, its model, parts, strip height)
    "mixer2": ("golden.png", None, 0, 0),
    "mixer2-gray": ("format1/gray.png", None, 0, 0),
    "mixer2-photo": ("golden-photo.png", None, 0, 0),
    "parts2": ("golden.png", "golden-tiny.pxm", 2, 0),
    "parts2-3": ("golden.png", "golden-tiny.pxm", 3, 0),
    "parts2-gray-strips": ("format1/gray.png", "golden-tiny-gray.pxm", 2, 5),
    "parts2-photo-strips": ("golden-photo.png", "golden-tiny.pxm", 2, 7),
    # version 3's (coders 8 and 9)
    "mixer3": ("golden.png", None, 0, 0),
    "mixer3-photo": ("golden-photo.png", None, 0, 0),
    "parts3": ("golden.png", "golden-tiny.pxm", 2, 0),
    "parts3-3": ("golden.png", "golden-tiny.pxm", 3, 0),
    "parts3-photo-strips": ("golden-photo.png", "golden-tiny.pxm", 2, 7),
    # version 4's (coder 10)
    "parts4-1": ("golden.png", "golden-tiny.pxm", 1, 0),
    "parts4-3": ("golden.png", "golden-tiny.pxm", 3, 0),
    "parts4-photo-strips-1": ("golden-photo.png", "golden-tiny.pxm", 1, 7),
    # version 5's (coder 11)
    "parts5-1": ("golden.png", "golden-tiny.pxm", 1, 0),
    "parts5-3": ("golden.png", "golden-tiny.pxm", 3, 0),
    "parts5-photo-strips-1": ("golden-photo.png", "golden-tiny.pxm", 1, 7),
    # version 6's (coder 12): the photos' prior set, and (the 420 picture) the set of colour once subsampled
    "parts6-1": ("golden.png", "golden-tiny.pxm", 1, 0),
    "parts6-3": ("golden.png", "golden-tiny.pxm", 3, 0),
    "parts6-photo-strips-1": ("golden-photo.png", "golden-tiny.pxm", 1, 7),
    "parts6-photo-420-1": ("golden-photo-420.png", "golden-tiny.pxm", 1, 0),
    "parts6-photo-420-3": ("golden-photo-420.png", "golden-tiny.pxm", 3, 0),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n.endswith("photo") else n
                                  for n in GOLDEN])
def test_the_definition_makes_the_released_golden_files_payloads(name):
    """Coders 5 and 6's golden files and 8 and 9's (``tests/test_golden.py``): their
    payloads are the definition's, the mixer alone in raster order, or over
    the network's stream and counts in column parts.  (The 40x48 photo's:
    about 9 s each; the one of the mixer alone is slow.)"""
    from pixzip.codec.format import container
    from pixzip.codec.network.enc_stream import symbols_and_counts
    from pixzip.codec.network.modelfile import ModelFile

    from .test_golden import DATA, image
    picture, model, parts, strip = GOLDEN[name]
    img = image(DATA / picture)
    header, payload, _ = container.parse((DATA / "format2" / f"{name}.pxz").read_bytes())
    h, w, c = img.shape
    from .test_golden import PARTS_CODER_OF_VERSION, _version_of
    version = _version_of(name)
    ref = VERSIONS[version][0]
    if model is None:
        assert header.coder == (container.MIXER3_CODER if version == 3 else container.MIXER2_CODER)
        assert bytes(payload) == ref.encode(img, raster(0, h, w, c))
        return
    assert header.coder == PARTS_CODER_OF_VERSION.get(version, container.PARTS2_CODER)
    if version == 6:        # the prior's set: 1 for the picture whose colour was once subsampled
        assert payload[0] == ("420" in name)
    chunks = list(symbols_and_counts(ModelFile.load(DATA / model), img, strip_height=strip, positions=True))
    where = [np.concatenate([ch[3][i] for ch in chunks]) for i in range(4)]
    counts = np.concatenate([ch[1] for ch in chunks])
    positions = [(int(y), int(x), int(k), int(t), q) for q, (y, x, k, t) in enumerate(zip(*where))]
    assert bytes(payload) == ref.encode_parts(img, positions, counts, parts)
