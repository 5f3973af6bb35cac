"""The vertical frontier in two parts (``network.kernels.decoder.frontier_block``):
the sums of each layer's input product over every input but the newest cell,
made a step early (EARLY), and then the frontier from them (NEWEST), write
the same rings as the frontier made whole, for any blocks of rows; where a
layer's newest cell does not start on an input pair (odd p) there is no
split.  ``-9``'s one-state decoder makes the early sums on the network's
thread while it would wait for the mixer (``kernels.handover``); its pixels
are checked by ``test_handover``, with and without them."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from pixzip.codec.contract import ACT_MAX
from pixzip.codec.network import dec_wavefront
from pixzip.codec.network.kernels import decoder as KD
from pixzip.codec.network.kernels import handover as KH

from .conftest import tiny_int_model


def _rings(net, height, width, seed):
    """The decoder's buffers for an image, with the rings full of values in their ranges."""
    prog, lay, geo, rings, step, scratch, cond = dec_wavefront.buffers(net, height, width)
    rng = np.random.default_rng(seed)
    rings.xi[...] = rng.integers(-255, 256, rings.xi.shape)
    rings.V[...] = rng.integers(-ACT_MAX, ACT_MAX + 1, rings.V.shape)
    rings.LK[...] = 0
    return prog, lay, geo, rings, scratch, cond


def _frontier(net, lay, geo, rings, prog, scratch, cond, t, blocks, part_blocks=None):
    """Step t's frontier over all its rows: whole (``part_blocks`` None), or early then newest, in blocks of
    ``blocks`` rows for the early sums and ``part_blocks`` for the newest."""
    cap = lay.cap
    vb, vi = np.zeros(cap, np.int64), np.zeros(cap, np.int64)
    nv = KH.step_rows(t, geo.lag, lay.S, lay.nb, lay.last, geo.width, geo.R - geo.k2, vb, vi)
    out = KD.Rings(*(a.copy() for a in rings))
    early = np.zeros((prog.weights.layer_ops.shape[0], cap, 2 * net.p), np.int32)
    if part_blocks is None:
        for f in range(0, nv, blocks):
            KD.vertical_block(t, geo, vb, vi, f, min(nv, f + blocks), out, prog.weights, cond, scratch, 0)
        return out, early
    for f in range(0, nv, blocks):
        KD.frontier_block(t, geo, vb, vi, f, min(nv, f + blocks), out, prog.weights, cond, scratch, 0, KD.EARLY,
                          early)
    assert np.array_equal(out.V, rings.V) and np.array_equal(out.LK, rings.LK)     # EARLY writes no ring
    for f in range(0, nv, part_blocks):
        KD.frontier_block(t, geo, vb, vi, f, min(nv, f + part_blocks), out, prog.weights, cond, scratch, 0,
                          KD.NEWEST, early)
    return out, early


@settings(max_examples=25, deadline=None)
@given(layers=st.integers(2, 3), kernel=st.sampled_from([3, 5]), height=st.integers(1, 30),
       width=st.integers(1, 40), step=st.integers(0, 60), blocks=st.integers(1, 9), part_blocks=st.integers(1, 9),
       seed=st.integers(0, 2**16))
def test_the_frontier_from_early_sums_writes_what_the_whole_frontier_writes(layers, kernel, height, width, step,
                                                                             blocks, part_blocks, seed):
    net = tiny_int_model(3, layers, kernel)
    prog, lay, geo, rings, scratch, cond = _rings(net, height, width, seed)
    assert KD.newest_pairs(prog.weights, net.p) > 0          # p is even: the split is made
    whole, _ = _frontier(net, lay, geo, rings, prog, scratch, cond, step, blocks)
    split, early = _frontier(net, lay, geo, rings, prog, scratch, cond, step, blocks, part_blocks)
    assert np.array_equal(split.V, whole.V)
    assert np.array_equal(split.LK, whole.LK)
    assert np.array_equal(split.xi, whole.xi)


def test_the_early_sums_are_part_of_the_products_and_a_wrong_one_changes_the_frontier():
    """Not a test that cannot fail: with one early sum changed, the frontier from them differs."""
    net = tiny_int_model(3, 2, 3)
    prog, lay, geo, rings, scratch, cond = _rings(net, 12, 30, 7)
    t = 12
    whole, _ = _frontier(net, lay, geo, rings, prog, scratch, cond, t, 4)
    _, early = _frontier(net, lay, geo, rings, prog, scratch, cond, t, 4, 4)
    assert early[1].any() and not early[0].any()        # layer 0 reads pixels: never split
    cap = lay.cap
    vb, vi = np.zeros(cap, np.int64), np.zeros(cap, np.int64)
    nv = KH.step_rows(t, geo.lag, lay.S, lay.nb, lay.last, geo.width, geo.R - geo.k2, vb, vi)
    early[1, :nv] += 1000
    out = KD.Rings(*(a.copy() for a in rings))
    KD.frontier_block(t, geo, vb, vi, 0, nv, out, prog.weights, cond, scratch, 0, KD.NEWEST, early)
    assert not (np.array_equal(out.V, whole.V) and np.array_equal(out.LK, whole.LK))


def test_without_a_pair_boundary_there_is_no_split():
    """An odd number of channels per layer (p = 9): the newest cell starts inside an input pair, so EARLY
    makes nothing and NEWEST makes the whole frontier."""
    net = tiny_int_model(3, 2, 3, channels=9)
    prog, lay, geo, rings, scratch, cond = _rings(net, 10, 20, 3)
    assert net.p % 2 == 1 and KD.newest_pairs(prog.weights, net.p) == 0
    whole, _ = _frontier(net, lay, geo, rings, prog, scratch, cond, 10, 3)
    split, early = _frontier(net, lay, geo, rings, prog, scratch, cond, 10, 3, 2)
    assert not early.any()
    assert np.array_equal(split.V, whole.V) and np.array_equal(split.LK, whole.LK)


@pytest.mark.parametrize("early_sums", [True, False])
def test_minus_9_decodes_the_same_with_and_without_the_early_sums(monkeypatch, early_sums):
    """The one-state decoder, two threads, in chunks of 1 to many steps: the image either way."""
    import numba

    from pixzip.codec import api as codec
    from pixzip.codec.network import dec_pipeline

    from .test_handover import one_part, photo_like
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here")
    net = tiny_int_model(3)
    img = photo_like(26, 37, 3)
    data = one_part(img, net, 0, 6, monkeypatch)
    monkeypatch.setattr(dec_pipeline, "EARLY_SUMS", early_sums)
    numba.set_num_threads(2)
    for chunk in (1, 2, 5, dec_pipeline.CHUNK_STEPS):
        monkeypatch.setattr(dec_pipeline, "CHUNK_STEPS", chunk)
        assert np.array_equal(codec.decompress(data, net), img), chunk
