"""-9's decoder in one compiled loop per thread (``network.dec_pipeline``,
``network.kernels.pipeline``): the same pixels as the step kernels driven
from Python, on any number of threads and chunks, and a damaged payload
stops every thread with a PixzipError, never a hang."""
import threading
import time

import numba
import numpy as np
import pytest

from pixzip.codec import api as codec
from pixzip.codec import threads as T
from pixzip.codec.network import dec_pipeline
from pixzip.codec.network.kernels import pipeline as KP
from pixzip.errors import PixzipError

from .conftest import tiny_int_model

@numba.njit(nogil=True)
def barrier(flags, k, threads, done):
    return KP.barrier(flags, k, threads, done)


two_threads = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="numba has one thread here")


def photo_like(h, w, c, seed=0):
    y, x = np.mgrid[0:h, 0:w]
    noise = np.random.default_rng(seed).integers(0, 6, (h, w, 3))
    return ((np.stack([x * 3 + y, x + 2 * y, 255 - x - y], -1) + noise) % 256).astype(np.uint8)[..., :c]


@pytest.fixture
def shared(monkeypatch):
    """Every chunk of steps shared by every thread it can use (free cores, no least step size)."""
    monkeypatch.setattr(T, "others_running", lambda: 0)
    monkeypatch.setattr(T, "_cores", lambda: 64)
    monkeypatch.setattr(T, "MIN_SHARED", 0)
    threads = numba.get_num_threads()
    yield
    numba.set_num_threads(threads)


def old_decoder(monkeypatch):
    monkeypatch.setattr(KP, "handles", lambda kernel: False)


CASES = [((24, 40), 3, 0, 2), ((30, 33), 1, 5, 2), ((20, 45), 3, 4, 3), ((9, 50), 3, 0, 5), ((17, 3), 3, 0, 4)]


@two_threads
@pytest.mark.parametrize("mixer", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("shape,colours,strip,parts", CASES)
def test_the_compiled_loop_decodes_what_the_step_kernels_decode_on_one_and_two_threads(
        shared, monkeypatch, shape, colours, strip, parts, mixer):
    """Coders 3 (the mixer 1), 6 (the mixer 2), 9 (the mixer 3), 10 (the
    mixer 4), 11 (the mixer 5) and 12 (the mixer 6; a gray image keeps the mixer 2) with 2 to 5 parts (more parts than columns
    among them), in strips or not, gray or RGB, in chunks of 1, 3 or many
    steps: the image, on one thread and on two."""
    from pixzip.codec import levels
    monkeypatch.setattr(levels, "LEVELS", {**levels.LEVELS, 9: levels.Level("mixer+network", "max", mixer)})
    net = tiny_int_model(colours)
    img = photo_like(*shape, colours)
    data = codec.compress(img, net, level=9, payload="mixer+network",
                          options=codec.Options(strip_height=strip, parts=parts))
    assert data[7] == {1: 3, 2: 6, 3: 9 if colours == 3 else 6, 4: 10 if colours == 3 else 6,
                       5: 11 if colours == 3 else 6, 6: 12 if colours == 3 else 6}[mixer]
    for chunk in (1, 3, dec_pipeline.CHUNK_STEPS):
        monkeypatch.setattr(dec_pipeline, "CHUNK_STEPS", chunk)
        for threads in (1, 2):
            numba.set_num_threads(threads)
            assert np.array_equal(codec.decompress(data, net), img), (chunk, threads)


@two_threads
def test_files_of_the_mixer_2_and_3_decode_in_one_process_in_any_order(shared, monkeypatch):
    """Coders 6 and 9 share the compiled loop, each version's state its own
    type: decoded alternately in one process, each gives its image (once, a
    version 2 file after a version 3 one was decoded by version 3's kernel)."""
    from pixzip.codec import levels
    net = tiny_int_model(3)
    img = photo_like(20, 30, 3)
    data = {}
    for mixer in (2, 3):
        monkeypatch.setattr(levels, "LEVELS", {**levels.LEVELS, 9: levels.Level("mixer+network", "max", mixer)})
        data[mixer] = codec.compress(img, net, level=9, payload="mixer+network", options=codec.Options(parts=2))
    data[1] = codec.compress(img, net, level=9, payload="mixer+network", options=codec.Options(parts=1))
    assert (data[2][7], data[3][7], data[1][7]) == (6, 9, 9)
    for mixer in (3, 2, 1, 3, 2, 1):            # (1: the mixer 3 in one state, ``kernels.handover``)
        assert np.array_equal(codec.decompress(data[mixer], net), img), mixer


GRAY_CASES = [((24, 40), 0, 2), ((30, 33), 5, 2), ((9, 50), 0, 5), ((17, 3), 0, 4), ((1, 1), 0, 2)]


@two_threads
@pytest.mark.parametrize("shape,strip,parts", GRAY_CASES)
def test_a_gray_image_over_an_rgb_network_decodes_the_same_by_the_loop_and_by_the_step_kernels(
        shared, monkeypatch, shape, strip, parts):
    """Coder 7 (a gray image, seen by the RGB network as (L, L, L), the mixer 2
    over its counts of colour 0): in strips or not, 2 to 5 parts, the
    compiled loop in chunks of 1 or many steps on one and two threads, and
    the step kernels driven from Python, all give the image; its code
    length differs from the mixer alone's (the network's counts are used)."""
    from pixzip.codec.format import container
    net = tiny_int_model(3)
    img = photo_like(*shape, 1)
    options = codec.Options(strip_height=strip, parts=parts)
    data = codec.compress(img, net, payload="mixer+network", options=options)
    assert container.parse(data)[0].coder == container.GRAY_PARTS2_CODER
    with_net = codec.compress_with_stats(img, net, payload="mixer+network", options=options)[1].ideal_bits
    alone = codec.compress_with_stats(img, payload="mixer", options=options)[1].ideal_bits
    assert with_net != alone or img.size == 1     # (a lone sub-pixel may cost the same either way)
    for chunk in (1, dec_pipeline.CHUNK_STEPS):
        monkeypatch.setattr(dec_pipeline, "CHUNK_STEPS", chunk)
        for threads in (1, 2):
            numba.set_num_threads(threads)
            assert np.array_equal(codec.decompress(data, net), img), (chunk, threads)
    old_decoder(monkeypatch)
    assert np.array_equal(codec.decompress(data, net), img)


@two_threads
def test_both_threads_decode_a_share_of_each_step(shared, monkeypatch):
    """On two free cores every chunk of steps runs on two threads, each of
    which decodes pixels; the step kernels are never called."""
    from pixzip.codec.network.kernels import decoder as K
    net = tiny_int_model(3)
    img = photo_like(40, 60, 3)
    data = codec.compress(img, net, payload="mixer+network", options=codec.Options(parts=2))
    seen = []
    real = KP.run_steps

    def spy(*args):
        n = real(*args)
        seen.append((args[0], args[1], n))
        return n
    monkeypatch.setattr(KP, "run_steps", spy)
    monkeypatch.setattr(K, "horizontal_step", None)
    numba.set_num_threads(2)
    assert np.array_equal(codec.decompress(data, net), img)
    assert {threads for _, threads, _ in seen} == {2}
    assert sum(n for k, _, n in seen if k == 0) > 0 and sum(n for k, _, n in seen if k == 1) > 0
    assert sum(n for _, _, n in seen) == 40 * 60


@two_threads
@pytest.mark.parametrize("parts", [2, 1])
@pytest.mark.parametrize("cut", [0.0, 0.3, 0.7, 0.95])
def test_a_truncated_payload_stops_every_thread_with_an_error(shared, cut, parts):
    """Cut the payload (its header's length kept): a PixzipError, on two threads, quickly; in
    parts, or in one state (``kernels.handover``: the network's thread and the mixer's)."""
    import dataclasses

    from pixzip.codec.format import container
    net = tiny_int_model(3)
    img = photo_like(40, 60, 3, seed=3)
    data = codec.compress(img, net, payload="mixer+network", options=codec.Options(parts=parts))
    header, payload, crc = container.parse(data)
    payload = bytes(payload)
    cut_payload = payload[:max(1, int(len(payload) * cut))]       # (the count of parts kept)
    bad = container.pack(dataclasses.replace(header, payload_length=len(cut_payload)), cut_payload, crc)
    numba.set_num_threads(2)
    t = time.monotonic()
    with pytest.raises(PixzipError):
        codec.decompress(bad, net)
    assert time.monotonic() - t < 60


@two_threads
@pytest.mark.parametrize("parts", [2, 1])
def test_flipped_payload_bytes_give_an_error_or_the_image(shared, parts):
    net = tiny_int_model(3)
    img = photo_like(30, 50, 3, seed=4)
    data = bytearray(codec.compress(img, net, payload="mixer+network", options=codec.Options(parts=parts)))
    end = len(data) - 4
    numba.set_num_threads(2)
    for k in range(6):
        bad = bytearray(data)
        bad[end - 1 - 37 * k] ^= 0x5A
        try:
            out = codec.decompress(bytes(bad), net)
        except PixzipError:
            continue
        assert np.array_equal(out, img)


def test_an_exception_in_one_thread_stops_the_others_at_their_barrier():
    """A thread that fails raises the abort flag: the other, waiting at the
    barrier for it, stops, and the error is raised in the caller."""
    flags = KP.flags_array(2)
    waited = []

    def run(k, threads, t0, t1):
        if k == 1:
            time.sleep(0.2)
            raise RuntimeError("thread 1 failed")
        stop = barrier(flags, k, threads, 1)
        waited.append(stop)
        return 0
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as pool:
        t = time.monotonic()
        with pytest.raises(RuntimeError, match="thread 1 failed"):
            dec_pipeline.run_chunk(2, 0, 1, run, pool, flags)
    assert waited == [True] and time.monotonic() - t < 10


def test_the_barrier_waits_for_every_thread_and_publishes_their_writes():
    """Three threads, 200 steps: after each barrier every thread sees the
    value each other thread wrote at that step."""
    threads, steps = 3, 200
    flags = KP.flags_array(threads)
    board = np.zeros((threads, steps), np.int64)
    bad = []

    def run(k):
        for t in range(steps):
            board[k, t] = t + 1
            if barrier(flags, k, threads, t + 1):
                bad.append("stopped")
                return
            if not (board[:, t] == t + 1).all():
                bad.append((k, t))
    ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for x in ts:
        x.start()
    for x in ts:
        x.join(30)
    assert not any(x.is_alive() for x in ts) and bad == []


@pytest.mark.parametrize("parts", [2, 1])
@pytest.mark.parametrize("threads", [1, 2])
def test_progress_counts_every_pixel_once(shared, threads, parts):
    """The loop reports each chunk's pixels: every pixel once, on one thread or two, in parts or in one
    state."""
    net = tiny_int_model(3)
    img = photo_like(21, 37, 3, seed=5)
    data = codec.compress(img, net, payload="mixer+network", options=codec.Options(strip_height=6, parts=parts))
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    seen = []
    assert np.array_equal(codec.decompress(data, net, progress=seen.append), img)
    assert sum(seen) == 21 * 37 and all(n > 0 for n in seen)
