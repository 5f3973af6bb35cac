"""The compiled context mixer (coder 2, ``mixer/kernel.py``) against its slow
plain-Python reference (``mixer/definition.py``).

The kernel does not report its probabilities, so they are pinned two ways:
the compiled payload must equal the reference's range coder's bytes exactly
(any differing p16 changes the coder's state), and the compiled ideal code
length must equal the one summed from the reference's (p16, bit) pairs."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixzip.codec.mixer import definition as ref
from pixzip.codec.mixer import tables
from pixzip.codec.mixer.one_state import Encoder, raster_positions

# ---------------------------------------------------------------- helpers

def make_image(kind: str, h: int, w: int, colours: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return rng.integers(0, 256, (h, w, colours), dtype=np.uint8)
    if kind == "constant":
        return np.full((h, w, colours), int(rng.integers(0, 256)), np.uint8)
    if kind in ("zeros", "ones"):
        return np.full((h, w, colours), 0 if kind == "zeros" else 255, np.uint8)
    yy, xx, cc = np.meshgrid(np.arange(h), np.arange(w), np.arange(colours), indexing="ij")
    if kind == "gradient":
        a, b, c, d = (int(v) for v in rng.integers(-20, 21, 4))
        return np.clip(128 + a * yy + b * xx + c * cc + d, 0, 255).astype(np.uint8)
    if kind == "smooth":            # a gradient with a little noise, wrapping past 255
        v = 7 * yy + 5 * xx + 40 * cc + rng.integers(-3, 4, (h, w, colours))
        return (v % 256).astype(np.uint8)
    raise ValueError(kind)


def make_counts(n: int, seed: int, img=None, positions=None) -> np.ndarray:
    """Random positive integer counts in 1..65536, float64 (n, 256).  Each row
    has its own scale and one peak of 65536 (at the true value for half the
    rows, when known), so the network's confidence takes all of its values."""
    rng = np.random.default_rng(seed)
    scale = rng.integers(1, 65537, n)
    counts = rng.integers(1, scale[:, None] + 1, (n, 256))
    for i in range(n):
        if rng.random() < 0.7:
            if img is not None and rng.random() < 0.5:
                y, x, c = positions[i][:3]
                v = int(img[y, x, c])
            else:
                v = int(rng.integers(0, 256))
            counts[i, v] = 65536
    return np.ascontiguousarray(counts, np.float64)


def _i64(a):
    return np.ascontiguousarray(np.asarray(a, np.int64))


def compare(img: np.ndarray, batches) -> None:
    """Code ``img`` with the compiled encoder, one ``Encoder.add`` per batch
    (``(positions, counts_or_None)``, positions a list of (y, x, c, top)),
    and check the bytes and the ideal code length against the reference."""
    enc = Encoder(img)
    ref_positions, ref_counts = [], []
    q = 0
    for positions, counts in batches:
        ys, xs, cs, tops = (_i64([p[i] for p in positions]) for i in range(4))
        enc.add(ys, xs, cs, tops, counts)
        if counts is None:
            ref_positions += [tuple(p) for p in positions]
        else:
            assert counts.shape == (len(positions), 256)
            ref_positions += [tuple(p) + (q + i,) for i, p in enumerate(positions)]
            ref_counts.append(counts)
            q += len(positions)
    compiled = enc.finish()
    decisions = ref.trace(img, ref_positions, np.concatenate(ref_counts) if ref_counts else None)
    assert len(decisions) == 8 * len(ref_positions)
    assert all(32 <= p <= 65503 and b in (0, 1) for p, b in decisions)
    assert ref.encode_decisions(decisions) == compiled
    assert math.isclose(enc.ideal_bits, ref.ideal_bits(decisions), rel_tol=1e-6)


def raster(y0: int, y1: int, w: int, colours: int, top: int = 0):
    ys, xs, cs, _ = raster_positions(y0, y1, w, colours)
    return [(int(y), int(x), int(c), top) for y, x, c in zip(ys, xs, cs)]


# ---------------------------------------------------------------- tables

def test_reference_tables_equal_the_compiled_ones():
    assert ref._SQUASH == tables.SQUASH.tolist()
    assert ref._STRETCH == tables.STRETCH.tolist()
    assert ref._RECIP == tables.RECIPROCALS[:ref.COUNT_MAX + 1].tolist()


def test_reference_encode_matches_the_whole_image_encoder():
    img = make_image("smooth", 4, 5, 3, seed=3)
    enc = Encoder(img)
    enc.add_image()
    assert ref.encode(img, raster(0, 4, 5, 3)) == enc.finish()
    assert math.isclose(sum(-math.log2((p if b else 65536 - p) / 65536)
                            for p, b in ref.trace(img, raster(0, 4, 5, 3))), enc.ideal_bits, rel_tol=1e-6)
    assert len(ref.probabilities(img, raster(0, 4, 5, 3))) == 4 * 5 * 3 * 8


# ---------------------------------------------------------------- raster, no network

SHAPES = [(1, 1, 1), (1, 1, 3), (1, 7, 1), (6, 1, 3), (2, 3, 3), (5, 7, 1), (12, 14, 1), (12, 14, 3)]


@pytest.mark.parametrize("kind", ["noise", "constant", "zeros", "ones", "gradient", "smooth"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_raster_without_network(kind, shape):
    h, w, c = shape
    compare(make_image(kind, h, w, c, seed=h * 100 + w), [(raster(0, h, w, c), None)])


def test_saturated_counters_and_halved_residual_maps():
    """A 48x48 mostly flat image: the hashed counters reach their count limit and
    the residual maps of the flat context pass their total and are halved (with
    several bins in use, so halving changes later probabilities)."""
    rng = np.random.default_rng(0)
    img = np.where(rng.random((48, 48, 1)) < 0.05, rng.integers(0, 4, (48, 48, 1)), 0).astype(np.uint8)
    compare(img, [(raster(0, 48, 48, 1), None)])


def test_add_rows_in_blocks_equals_one_run():
    img = make_image("noise", 7, 6, 3, seed=9)
    enc = Encoder(img)
    for y0, y1 in ((0, 2), (2, 3), (3, 7)):
        enc.add_rows(y0, y1)
    compiled = enc.finish()
    assert ref.encode(img, raster(0, 7, 6, 3)) == compiled


# ---------------------------------------------------------------- with the network's counts

@pytest.mark.parametrize("kind", ["noise", "gradient", "constant"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 3), (8, 9, 1), (9, 10, 3)], ids=lambda s: "x".join(map(str, s)))
def test_raster_with_network(kind, shape):
    h, w, c = shape
    img = make_image(kind, h, w, c, seed=7 * h + w)
    pos = raster(0, h, w, c)
    compare(img, [(pos, make_counts(len(pos), seed=h + w, img=img, positions=pos))])


def test_uniform_random_counts():
    """Plain uniform counts in 1..65536 (confidence always 0)."""
    img = make_image("smooth", 6, 7, 3, seed=2)
    pos = raster(0, 6, 7, 3)
    counts = np.random.default_rng(4).integers(1, 65537, (len(pos), 256)).astype(np.float64)
    compare(img, [(pos, counts)])


def test_batches_with_and_without_network_share_one_state():
    img = make_image("noise", 6, 5, 3, seed=5)
    a, b, c = raster(0, 2, 5, 3), raster(2, 4, 5, 3), raster(4, 6, 5, 3)
    compare(img, [(a, None), (b, make_counts(len(b), 1, img, b)), (c, None)])


# ---------------------------------------------------------------- strips

def two_strips(w, colours):
    return raster(0, 3, w, colours, top=0), raster(3, 6, w, colours, top=3)


@pytest.mark.parametrize("net", [False, True], ids=["plain", "network"])
@pytest.mark.parametrize("colours", [1, 3])
def test_two_strips(net, colours):
    img = make_image("smooth", 6, 5, colours, seed=colours)
    s0, s1 = two_strips(5, colours)
    if net:
        compare(img, [(s0, make_counts(len(s0), 2, img, s0)), (s1, make_counts(len(s1), 3, img, s1))])
    else:
        compare(img, [(s0, None), (s1, None)])


def test_strips_coded_second_first_and_interleaved():
    """Strips are independent: any order that codes each strip in raster order
    is valid, including the lower strip first and rows of both alternating."""
    img = make_image("noise", 6, 4, 3, seed=8)
    s0, s1 = two_strips(4, 3)
    compare(img, [(s1 + s0, None)])
    per_row = 4 * 3
    woven = []
    for r in range(3):
        woven += s0[r * per_row:(r + 1) * per_row] + s1[r * per_row:(r + 1) * per_row]
    compare(img, [(woven, make_counts(len(woven), 6, img, woven))])


def test_a_strip_of_one_row_and_uneven_strips():
    img = make_image("gradient", 6, 5, 3, seed=4)
    compare(img, [(raster(0, 1, 5, 3, 0) + raster(1, 2, 5, 3, 1) + raster(2, 6, 5, 3, 2), None)])


# ---------------------------------------------------------------- hypothesis

@st.composite
def cases(draw):
    h = draw(st.integers(1, 6))
    w = draw(st.integers(1, 7))
    colours = draw(st.sampled_from([1, 3]))
    kind = draw(st.sampled_from(["noise", "constant", "gradient", "smooth"]))
    seed = draw(st.integers(0, 2 ** 16))
    cuts = sorted(draw(st.sets(st.integers(1, h - 1), max_size=2))) if h > 1 else []
    strips = draw(st.booleans())            # each block its own strip, or all one strip
    net = draw(st.lists(st.booleans(), min_size=len(cuts) + 1, max_size=len(cuts) + 1))
    return h, w, colours, kind, seed, cuts, strips, net


@settings(max_examples=20, deadline=None, database=None)
@given(cases())
def test_hypothesis_reference_equals_compiled(case):
    h, w, colours, kind, seed, cuts, strips, net = case
    img = make_image(kind, h, w, colours, seed)
    bounds = [0] + cuts + [h]
    batches = []
    for i, (y0, y1) in enumerate(itertools.pairwise(bounds)):
        pos = raster(y0, y1, w, colours, top=y0 if strips else 0)
        batches.append((pos, make_counts(len(pos), seed + i, img, pos) if net[i] else None))
    compare(img, batches)


# ---------------------------------------------------------------- coder 3: column parts

@pytest.mark.parametrize("parts", [1, 2, 3])
@pytest.mark.parametrize("shape, strip", [((9, 11, 3), 0), ((8, 7, 1), 3), ((5, 2, 3), 0)],
                         ids=["9x11x3", "8x7x1-strips", "5x2x3"])
def test_column_parts_payload_equals_the_references(parts, shape, strip):
    """Coder 3 through the API (the network's stream, the parts coded in
    threads of their own) is byte for byte the reference's: each part a
    model of its own over its columns' sub-pixels, in the stream's order,
    reading the whole image.  With 3 parts of a 2-wide image one is empty."""
    from pixzip.codec import api
    from pixzip.codec.format import container
    from pixzip.codec.network.enc_stream import symbols_and_counts

    from .conftest import tiny_int_model
    h, w, c = shape
    net = tiny_int_model(c)
    img = make_image("smooth", h, w, c, seed=h * w + parts)
    chunks = list(symbols_and_counts(net, img, strip_height=strip, positions=True))
    where = [np.concatenate([ch[3][i] for ch in chunks]) for i in range(4)]
    counts = np.concatenate([ch[1] for ch in chunks])
    positions = [(int(y), int(x), int(k), int(t), q) for q, (y, x, k, t) in enumerate(zip(*where))]
    header, payload, _ = container.parse(api.compress(img, net, level=1, payload="mixer+network",
                                                      options=api.Options(strip_height=strip, parts=parts)))
    assert header.coder == container.PARTS_CODER        # the mixer 1's (-1's level; -9 makes coder 6)
    assert bytes(payload) == ref.encode_parts(img, positions, counts, parts)
