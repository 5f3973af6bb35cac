"""The context mixer (coders 2 and 3): lossless on every image, causal, the same on
any thread count, and never worse than it must be on noise.

The compiled mixer against its plain-Python reference is test_cm_reference.py;
its bitstream is pinned by the golden files (test_golden.py), also decoded by
a generic x86-64 build (test_kernels.py); hostile files are test_fuzz.py's.
"""
import time

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixzip.codec import api as codec
from pixzip.codec.mixer import kernel
from pixzip.codec.mixer.one_state import Encoder, raster_positions
from pixzip.codec.network.enc_stream import symbols_and_counts

from .conftest import tiny_int_model


def image_of(kind, h, w, c, seed):
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return rng.integers(0, 256, (h, w, c), dtype=np.uint8)
    if kind == "constant":
        return np.full((h, w, c), rng.integers(0, 256, c), np.uint8)
    y, x = np.mgrid[0:h, 0:w]
    base = (3 * y + 5 * x)[..., None] + 60 * np.arange(c) + rng.integers(0, 4, (h, w, c))
    return (base % 256).astype(np.uint8)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=st.integers(1, 40), w=st.integers(1, 40), c=st.sampled_from([1, 3]),
       kind=st.sampled_from(["noise", "constant", "smooth"]), method=st.sampled_from(["mixer+network", "mixer"]),
       strip=st.sampled_from([0, 0, 3, 7]), seed=st.integers(0, 2**16))
def test_every_image_comes_back_exactly(h, w, c, kind, method, strip, seed):
    img = image_of(kind, h, w, c, seed)
    net = tiny_int_model(c)
    data = codec.compress(img, net, payload=method,
                          options=codec.Options(strip_height=strip if method == "mixer+network" else 0))
    assert np.array_equal(codec.decompress(data, net), img)


def _stream(img, net):
    """Positions (ys, xs, cs, tops) and counts of an image's whole stream, in order."""
    parts = list(symbols_and_counts(net, img, positions=True))
    where = [np.concatenate([p[3][i] for p in parts]) for i in range(4)]
    return where, np.concatenate([p[1] for p in parts])


@pytest.mark.parametrize("method", ["mixer", "mixer+network"])
@settings(max_examples=12, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 9), c=st.sampled_from([1, 3]), seed=st.integers(0, 2**16),
       cut=st.floats(0, 1))
def test_later_pixels_never_change_earlier_code_lengths(method, h, w, c, seed, cut):
    """The first k sub-pixels of the stream cost the same whatever follows
    them: the mixer reads nothing not yet coded (and the decoder, which has
    only the past, would fail the round trip otherwise)."""
    net = tiny_int_model(c)
    a = image_of("smooth", h, w, c, seed)
    if method == "mixer":
        where = raster_positions(0, h, w, c)
        counts = None
    else:
        where, counts = _stream(a, net)
    n = len(where[0])
    k = int(cut * n)
    b = a.copy()
    later = [(y, x, ch) for y, x, ch in zip(*where[:3])][k:]
    rng = np.random.default_rng(seed)
    for y, x, ch in later:
        b[y, x, ch] = rng.integers(0, 256)
    costs = []
    for img in (a, b):
        enc = Encoder(img)
        enc.add(*(v[:k] for v in where), None if counts is None else counts[:k])
        costs.append(enc.ideal_bits)
    if method == "mixer+network":      # b's own stream: its first k counts are a's (the network is causal too)
        where_b, counts_b = _stream(b, net)
        assert all(np.array_equal(u[:k], v[:k]) for u, v in zip(where, where_b))
        assert np.array_equal(counts[:k], counts_b[:k])
    assert costs[0] == costs[1]


def test_the_same_bytes_on_one_and_two_threads():
    net = tiny_int_model(3)
    img = image_of("smooth", 23, 17, 3, 5)
    threads = numba.get_num_threads()
    out = []
    try:
        for t in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(t)
            data = codec.compress(img, net, payload="mixer+network", options=codec.Options(strip_height=6))
            assert np.array_equal(codec.decompress(data, net), img)
            out.append(data)
    finally:
        numba.set_num_threads(threads)
    assert len(set(out)) == 1


@pytest.mark.parametrize("strip_rows", [2, 5])
def test_the_network_pass_computed_in_a_thread_gives_the_same_stream(strip_rows):
    """The mixer+network encoder computes the next block of rows in a thread
    of its own while the mixer codes this one (``next_rows_in_thread``): the same symbols, counts
    and positions, in the same order, as one block after another; and the
    same file as with the default block size."""
    net = tiny_int_model(3)
    img = image_of("smooth", 29, 13, 3, 11)
    codec.compress(img[:4, :4], net, payload="mixer+network")     # a parallel kernel has run: the thread may start
    plain = list(symbols_and_counts(net, img, strip_rows=strip_rows, strip_height=12, positions=True))
    in_thread = list(symbols_and_counts(net, img, strip_rows=strip_rows, strip_height=12, positions=True,
                                        next_rows_in_thread=True))
    def stream(chunks):     # the chunks may break at other places: the stream is what counts
        sym, counts, n, where = zip(*chunks)
        return (np.concatenate(sym), np.concatenate(counts), sum(n),
                [np.concatenate([w[i] for w in where]) for i in range(4)])

    (s1, c1, n1, w1), (s2, c2, n2, w2) = stream(plain), stream(in_thread)
    assert n1 == n2 == img.shape[0] * img.shape[1] and np.array_equal(s1, s2) and np.array_equal(c1, c2)
    assert all(np.array_equal(a, b) for a, b in zip(w1, w2))
    small = codec.compress(img, net, payload="mixer+network", options=codec.Options(strip_rows=strip_rows))
    assert small == codec.compress(img, net, payload="mixer+network")
    assert np.array_equal(codec.decompress(small, net), img)


def test_a_block_started_early_never_overwrites_rows_the_stream_still_reads(monkeypatch):
    """The next block of rows starts in its thread as soon as the ring has
    room for it (``enc_stream._Heads.advance``), while the coder consumes
    the chunks before: with small chunks, small blocks, a ring that wraps
    many times and a slow consumer, blocks do start early, and the stream
    is still the one made block after block."""
    from pixzip.codec.network import enc_stream
    net = tiny_int_model(3)
    img = image_of("smooth", 70, 9, 3, 12)
    codec.compress(img[:4, :4], net, payload="mixer+network")     # a parallel kernel has run: the thread may start
    monkeypatch.setattr(enc_stream, "CHUNK_SYMBOLS", 20)
    early = []
    advance = enc_stream._Heads.advance

    def counted(self, lowest):
        before = self._pending
        advance(self, lowest)
        if self._pending is not None and self._pending is not before:
            early.append(self.cap)
    monkeypatch.setattr(enc_stream._Heads, "advance", counted)

    def slowly(chunks):
        for chunk in chunks:
            time.sleep(0.002)
            yield tuple(np.copy(a) if isinstance(a, np.ndarray) else a for a in chunk[:3])

    plain = list(slowly(symbols_and_counts(net, img, strip_rows=2, positions=True)))
    in_thread = list(slowly(symbols_and_counts(net, img, strip_rows=2, positions=True, next_rows_in_thread=True)))
    assert early and max(early) < img.shape[0] // 4          # blocks started early, into a ring that wraps
    for i in range(2):
        assert np.array_equal(np.concatenate([c[i] for c in plain]), np.concatenate([c[i] for c in in_thread]))


def test_noise_costs_little_more_than_its_eight_bits():
    """Uniform noise has nothing to learn: the mixer must not pay much for
    trying (a learning rate or an initial weight too bold would)."""
    img = image_of("noise", 256, 256, 3, 1)
    data = codec.compress(img, payload="mixer")
    assert 8 * len(data) / img.size < 8.03


def test_constant_and_smooth_images_cost_almost_nothing():
    img = image_of("constant", 64, 64, 3, 2)
    assert 8 * len(codec.compress(img, payload="mixer")) / img.size < 0.05


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=st.integers(1, 30), w=st.integers(1, 30), c=st.sampled_from([1, 3]),
       kind=st.sampled_from(["noise", "constant", "smooth"]), parts=st.integers(1, 5),
       strip=st.sampled_from([0, 0, 4]), seed=st.integers(0, 2**16), level=st.sampled_from([1, 9]))
def test_every_image_comes_back_exactly_in_any_number_of_column_parts(h, w, c, kind, parts, strip, seed, level):
    """Coders 3 (the mixer 1, -1's), 12 (the mixer 6, -9's for RGB) and 6 (the mixer 2, -9's for gray) with 1 to
    5 parts, more parts than columns among them."""
    img = image_of(kind, h, w, c, seed)
    net = tiny_int_model(c)
    data = codec.compress(img, net, level=level, payload="mixer+network",
                          options=codec.Options(strip_height=strip, parts=parts))
    assert data[7] == (3 if level == 1 else 12 if c == 3 else 6) and np.array_equal(codec.decompress(data, net), img)


def test_column_parts_decode_the_same_on_one_and_two_threads_and_cost_little():
    """The parts decode at once, one per thread; on one thread, one after
    the other: the same pixels.  Two parts of a smooth image cost at most
    a few percent over one (coder 3, the mixer 1's)."""
    net = tiny_int_model(3)
    img = image_of("smooth", 40, 64, 3, 9)
    one, two = (codec.compress(img, net, level=1, payload="mixer+network", options=codec.Options(parts=p))
                for p in (1, 2))
    assert len(two) < 1.05 * len(one)
    threads = numba.get_num_threads()
    try:
        for t in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(t)
            assert np.array_equal(codec.decompress(two, net), img)
    finally:
        numba.set_num_threads(threads)


def test_a_broken_table_of_parts_is_refused_by_name():
    """The payload's part count and lengths are checked before anything is
    decoded: a count of 0 or over 16, lengths past the payload's end, a
    payload cut inside the table, or a part's stream moved to another part."""
    import dataclasses

    from pixzip.codec.format import container
    from pixzip.errors import CorruptError
    net = tiny_int_model(3)
    img = image_of("smooth", 12, 14, 3, 3)
    data = codec.compress(img, net, payload="mixer+network", options=codec.Options(parts=3))
    header, payload, crc = container.parse(data)
    head = 1 if header.coder == container.PARTS6_CODER else 0     # coder 12: the prior's set, then the parts
    first, payload = bytes(payload[:head]), bytes(payload[head:])

    def with_payload(p):
        p = first + p
        return container.pack(dataclasses.replace(header, payload_length=len(p)), p, crc)
    n0, n1 = int.from_bytes(payload[1:5], "little"), int.from_bytes(payload[5:9], "little")
    cases = {"claims 0 column parts": bytes([0]) + payload[1:],
             "claims 17 column parts": bytes([17]) + payload[1:],
             "longer than the payload": payload[:1] + (10 ** 6).to_bytes(4, "little") + payload[5:],
             "ends inside its table": payload[:6],
             "swapped": payload[:1] + payload[5:9] + payload[1:5] + payload[9 + n0:9 + n0 + n1] + payload[9:9 + n0]
             + payload[9 + n0 + n1:]}
    for what, p in cases.items():
        with pytest.raises(CorruptError):
            codec.decompress(with_payload(p), net)


def test_reused_counts_buffers_give_the_same_stream_and_are_reused():
    """The encoders write each chunk's counts into a few buffers in turn
    (``reuse``): the same stream as fresh arrays, chunk i's counts overwritten
    by chunk i + reuse's."""
    net = tiny_int_model(3)
    img = image_of("smooth", 40, 31, 3, 2)
    from pixzip.codec.network import enc_stream as stream
    old = stream.CHUNK_SYMBOLS
    stream.CHUNK_SYMBOLS = 200      # many chunks from a small image
    try:
        plain = [(s, c.copy()) for s, c, _ in symbols_and_counts(net, img)]
        arrays = []
        for s, c, _ in symbols_and_counts(net, img, reuse=2):
            assert np.array_equal(s, plain[len(arrays)][0]) and np.array_equal(c, plain[len(arrays)][1])
            arrays.append(c)
    finally:
        stream.CHUNK_SYMBOLS = old
    assert len(arrays) >= 4
    assert np.shares_memory(arrays[0], arrays[2]) and not np.shares_memory(arrays[0], arrays[1])


def test_the_mixed_encoder_leaves_the_callers_thread_count_as_it_was(monkeypatch):
    """It runs its counts on one thread once the first block is made, and
    must give the caller's setting back, also when a part fails."""
    from pixzip.codec.mixer import column_parts as parts
    net = tiny_int_model(3)
    img = image_of("smooth", 20, 20, 3, 4)
    threads = numba.get_num_threads()
    codec.compress(img, net, payload="mixer+network")
    assert numba.get_num_threads() == threads

    def broken(*args, **kwargs):
        raise RuntimeError("a part failed")
    monkeypatch.setattr(parts.Encoder, "add_part", broken)
    with pytest.raises(RuntimeError, match="a part failed"):
        codec.compress(img, net, payload="mixer+network")
    assert numba.get_num_threads() == threads


@numba.njit
def _dot(w, row, x):
    return kernel.dot_row(w, row, x)


@numba.njit
def _update(w, row, x, err):
    kernel.update_row(w, row, x, np.int32(err))


@numba.njit
def _masked(a, start, count):
    return kernel.masked_sum16(a, start, count)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), extreme=st.booleans())
def test_the_mixers_vector_operations_equal_their_integer_definitions(seed, extreme):
    """The dot product, the weight update and the masked sum are whole
    vectors (LLVM vector types): each must equal its plain integer
    definition, at the ends of its inputs' ranges too."""
    rng = np.random.default_rng(seed)
    n = kernel.N_PAD
    lim = 2**31 if extreme else 2**20
    w = rng.integers(-lim, lim, (5, n), dtype=np.int64).astype(np.int32)
    x = rng.integers(-2047, 2048, n).astype(np.int32)
    if extreme:
        x[rng.integers(0, 2, n).astype(bool)] = 2047
    row = int(rng.integers(0, 5))
    assert _dot(w, row, x) == sum(int(a) * int(b) for a, b in zip(w[row], x))
    err = int(rng.choice([65535, -65535])) if extreme else int(rng.integers(-65535, 65536))
    want = w.copy()
    want[row] = (w[row].astype(np.int64) + ((x.astype(np.int64) * err + kernel.ROUND) >> 16)).astype(np.int32)
    got = w.copy()
    _update(got, row, x, err)
    assert np.array_equal(got, want)
    hist = rng.integers(0, 2**26 if extreme else 70000, 64).astype(np.int32)
    start, count = int(rng.integers(0, 49)), int(rng.integers(0, 17))
    assert _masked(hist, start, count) == int(hist[start:start + count].astype(np.int64).sum())


def test_a_level_whose_network_codes_other_colours_codes_the_image_with_the_mixer_alone(tmp_path, monkeypatch):
    """The shipped networks are RGB.  A grayscale image at a level whose
    network is RGB: with the mixer 2, by the mixer over the network's counts
    of colour 0, the image seen as (L, L, L) (coder 7), exactly, also with
    the model or the method named; with the mixer 1, by the mixer alone
    (kind 3, coder 2), and refused when the model is named.  The network
    alone never codes it."""
    from pixzip.codec.format import container
    from pixzip.codec import levels
    from pixzip.errors import UnknownModelError
    net = tiny_int_model(3)
    monkeypatch.setattr(levels, "LEVELS", {1: levels.Level("mixer", None, 1),
                                           6: levels.Level("mixer+network", net, 1),
                                           9: levels.Level("mixer+network", net, 2)})
    gray = image_of("smooth", 21, 17, 1, 3)
    for level, kind, coder in ((None, container.MIXER, container.MIXER_CODER),
                               (9, container.NETWORK, container.GRAY_PARTS2_CODER)):
        data = codec.compress(gray, level=level, payload="coded")
        header = container.parse(data)[0]
        assert (header.kind, header.coder, header.mode) == (kind, coder, "L")
        assert np.array_equal(codec.decompress(data, net), gray)
    rgb = image_of("smooth", 21, 17, 3, 3)
    assert container.parse(codec.compress(rgb, level=9, payload="coded"))[0].kind == container.NETWORK
    for named in ({"model": net, "level": 9, "payload": "coded"}, {"model": net, "level": 9, "payload": "mixer+network"}):
        data = codec.compress(gray, named.pop("model", None), **named)
        assert container.parse(data)[0].coder == container.GRAY_PARTS2_CODER
        assert np.array_equal(codec.decompress(data, net), gray)
    with pytest.raises(UnknownModelError, match="codes RGB images, not L"):
        codec.compress(gray, net, payload="network")
    with pytest.raises(UnknownModelError, match="codes RGB images, not L"):
        codec.compress(gray, net, payload="mixer+network")     # the default level here: the mixer 1
