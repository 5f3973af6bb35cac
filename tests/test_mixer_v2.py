"""Version 2 of the context mixer (coders 5 and 6): lossless
on every image, alone and over the network's counts in column parts; causal;
the same bytes on one and two threads."""
import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixzip.codec.mixer import with_network
from pixzip.codec.mixer.v2 import coders
from pixzip.codec.network.enc_stream import symbols_and_counts

from .conftest import tiny_int_model
from .test_mixer import image_of


def _alone(img):
    enc = coders.OneStateEncoder(img)
    enc.add_image()
    return enc.finish(), enc.ideal_bits


def _with_network(img, net, strip=0):
    data, bits, _, _ = with_network.encode_in_parts(img, net, None, strip, "cpu", None, True, 2,
                                                    encoder=coders.PartsEncoder)
    return data, bits


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=st.integers(1, 40), w=st.integers(1, 40), c=st.sampled_from([1, 2, 3]),
       kind=st.sampled_from(["noise", "constant", "smooth"]), seed=st.integers(0, 2**16))
def test_every_image_comes_back_exactly_from_the_mixer_alone(h, w, c, kind, seed):
    img = image_of(kind, h, w, c, seed)
    data, _ = _alone(img)
    dec = coders.OneStateDecoder(data, h, w, c)
    dec.take_image()
    assert np.array_equal(dec.finish(), img)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=st.integers(1, 30), w=st.integers(1, 30), c=st.sampled_from([1, 3]),
       kind=st.sampled_from(["noise", "constant", "smooth"]), strip=st.sampled_from([0, 0, 3, 7]),
       seed=st.integers(0, 2**16))
def test_every_image_comes_back_exactly_over_the_networks_counts_in_parts(h, w, c, kind, strip, seed):
    img = image_of(kind, h, w, c, seed)
    net = tiny_int_model(c)
    data, _ = _with_network(img, net, strip)
    out = with_network.decode(data, net, h, w, c, strip, True, None, decoder=coders.PartsDecoder)
    assert np.array_equal(out, img)


@settings(max_examples=10, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 9), c=st.sampled_from([1, 3]), seed=st.integers(0, 2**16),
       cut=st.floats(0, 1))
def test_later_pixels_never_change_earlier_code_lengths(h, w, c, seed, cut):
    """The first k sub-pixels cost the same whatever follows them: the mixer reads nothing not yet coded."""
    img = image_of("noise", h, w, c, seed)
    k = int(cut * h * w * c)
    other = img.copy().reshape(-1)
    other[k:] = np.random.default_rng(seed + 1).integers(0, 256, len(other) - k)
    other = other.reshape(img.shape)
    costs = []
    for im in (img, other):
        enc = coders.OneStateEncoder(im)
        flat = np.arange(k)
        enc.add(flat // (w * c), (flat // c) % w, flat % c, np.zeros(k, np.int64))
        costs.append(enc.ideal_bits)
    assert costs[0] == costs[1]


def test_the_same_bytes_on_one_and_two_threads():
    img = image_of("smooth", 24, 40, 3, 7)
    net = tiny_int_model(3)
    data, _ = _with_network(img, net)
    threads = numba.get_num_threads()
    try:
        outs = []
        for n in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(n)
            outs.append(with_network.decode(data, net, 24, 40, 3, 0, True, None, decoder=coders.PartsDecoder))
            assert _with_network(img, net)[0] == data
    finally:
        numba.set_num_threads(threads)
    assert all(np.array_equal(o, img) for o in outs)


@pytest.mark.parametrize("c", [1, 3])
def test_smooth_images_cost_less_than_noise(c):
    smooth = _alone(image_of("smooth", 32, 32, c, 1))[1]
    noise = _alone(image_of("noise", 32, 32, c, 1))[1]
    assert smooth < 0.5 * noise and noise < 32 * 32 * c * 8 * 1.02
