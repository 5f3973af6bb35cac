"""-9's decoder for one mixer state (coder 3, 6, 7 or 9 with one column part;
``network.kernels.handover``): the network on one thread and the mixer on
the other, handing each other runs of a step's positions.  The same pixels
as the step kernels driven from Python, whatever the threads, the chunks,
the runs and the share of the network's work the mixer's thread takes
(``test_pipeline`` also cuts and flips these payloads' bytes: a
PixzipError on both threads, never a hang)."""
import time

import numba
import numpy as np
import pytest

from pixzip.codec import api as codec
from pixzip.codec.format import container
from pixzip.codec.network import dec_pipeline
from pixzip.codec.network.kernels import handover as KH
from pixzip.codec.network.kernels import pipeline as KP

from .conftest import column_parts_of, tiny_int_model
from .test_pipeline import photo_like, shared  # noqa: F401  (shared: the fixture)

two_threads = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="numba has one thread here")


def one_part(img, net, strip=0, mixer=3, monkeypatch=None):
    if monkeypatch is not None:
        from pixzip.codec import levels
        monkeypatch.setattr(levels, "LEVELS", {**levels.LEVELS, 9: levels.Level("mixer+network", "max", mixer)})
    data = codec.compress(img, net, level=9, payload="mixer+network",
                          options=codec.Options(strip_height=strip, parts=1))
    assert column_parts_of(data) == 1
    return data


def step_kernels(monkeypatch, data, net):
    """The image as the step kernels driven from Python decode it (``dec_wavefront``)."""
    with monkeypatch.context() as m:
        m.setattr(KP, "handles", lambda kernel: False)
        return codec.decompress(data, net)


CASES = [((24, 40), 3, 0), ((20, 45), 3, 4), ((9, 50), 3, 0), ((17, 3), 3, 0), ((1, 1), 3, 0), ((1, 9), 3, 0),
         ((13, 1), 3, 0), ((30, 33), 1, 5), ((1, 1), 1, 0)]


@two_threads
@pytest.mark.parametrize("shape,colours,strip,mixer",
                         [(*case, mixer) for case in CASES for mixer in (1, 2, 3, 4, 5, 6) if case[1] == 3 or mixer > 1])
def test_one_part_decodes_what_the_step_kernels_decode(shared, monkeypatch, shape, colours, strip, mixer):
    """Coders 3, 6 and 9 (and 7: a gray image over the RGB network) with one
    part, from 1x1 up, in strips or not, in chunks of 1, 3 or many steps, in
    1 to 7 runs per step with the mixer's thread taking none, some or all of
    the frontiers: the image, on one thread and on two, as the step kernels
    decode it."""
    net = tiny_int_model(3)
    img = photo_like(*shape, colours)
    data = one_part(img, net, strip, mixer, monkeypatch)
    assert np.array_equal(step_kernels(monkeypatch, data, net), img)
    for chunk, groups, share in [(1, 2, 250), (3, 1, 0), (dec_pipeline.CHUNK_STEPS, 7, 1024),
                                 (dec_pipeline.CHUNK_STEPS, dec_pipeline.HANDOVER_GROUPS, dec_pipeline.VERTICAL_SHARE)]:
        monkeypatch.setattr(dec_pipeline, "CHUNK_STEPS", chunk)
        monkeypatch.setattr(dec_pipeline, "HANDOVER_GROUPS", groups)
        monkeypatch.setattr(dec_pipeline, "VERTICAL_SHARE", share)
        for threads in (1, 2):
            numba.set_num_threads(threads)
            assert np.array_equal(codec.decompress(data, net), img), (chunk, groups, share, threads)


@two_threads
def test_each_thread_takes_its_role_and_the_step_kernels_are_never_called(shared, monkeypatch):
    """On two free cores every chunk runs the network's role on one thread
    and the mixer's on the other, which alone counts the pixels decoded; on
    one thread, one call takes both roles."""
    from pixzip.codec.network.kernels import decoder as K
    net = tiny_int_model(3)
    img = photo_like(40, 60, 3)
    data = one_part(img, net)
    seen = []
    real = KH.run_role

    def spy(role, *args):
        n = real(role, *args)
        seen.append((role, n))
        return n
    monkeypatch.setattr(KH, "run_role", spy)
    monkeypatch.setattr(K, "horizontal_step", None)
    numba.set_num_threads(2)
    assert np.array_equal(codec.decompress(data, net), img)
    assert {role for role, _ in seen} == {KH.NETWORK, KH.MIXER}
    assert sum(n for role, n in seen if role == KH.NETWORK) == 0
    assert sum(n for role, n in seen if role == KH.MIXER) == 40 * 60
    seen.clear()
    numba.set_num_threads(1)
    assert np.array_equal(codec.decompress(data, net), img)
    assert {role for role, _ in seen} == {KH.BOTH} and sum(n for _, n in seen) == 40 * 60


@numba.njit(nogil=True)
def wait(flags, slot, need):
    return KH.wait_for(flags, slot, need)


def test_a_wait_ends_when_the_other_thread_says_so_or_aborts():
    """wait_for returns False once the counter reaches what is needed, True once the abort flag is up."""
    import threading
    flags = KH.flags_array()
    out = []
    th = threading.Thread(target=lambda: out.append(wait(flags, KH.progress(KH.MIXER), 5)))
    th.start()
    time.sleep(0.05)
    assert th.is_alive()
    flags[KH.progress(KH.MIXER)] = 5
    th.join(10)
    flags[:] = 0
    th = threading.Thread(target=lambda: out.append(wait(flags, KH.VERTICAL, 1)))
    th.start()
    time.sleep(0.05)
    flags[KH.ABORT] = 1
    th.join(10)
    assert out == [False, True]


@numba.njit(nogil=True)
def take_all(flags, groups, steps, wins):
    for t in range(steps):
        for g in range(groups):
            if KH.take_unit(flags, g, 4 * (t + 1)):
                wins[t, g] += 1


def test_a_colour_0_unit_is_taken_by_one_thread_once_per_step():
    """take_unit: a unit claimed or done in a step is not taken again in it, a unit of an earlier step
    is free; two threads racing through the same units of many steps take each exactly once."""
    import threading
    flags = KH.flags_array(3)
    one = np.zeros((2, 3), np.int64)
    take_all(flags, 3, 1, one)
    take_all(flags, 3, 1, one)
    assert one[0].tolist() == [1, 1, 1]
    flags[KH.UNITS + 1] = 8 + KH.DONE
    take_all(flags, 3, 2, one)
    assert one[1].tolist() == [1, 0, 1]
    flags = KH.flags_array(5)
    wins = [np.zeros((200_000, 5), np.int64) for _ in range(2)]
    threads = [threading.Thread(target=take_all, args=(flags, 5, 200_000, w)) for w in wins]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert np.array_equal(wins[0] + wins[1], np.ones((200_000, 5), np.int64))


def test_positions_upto_counts_the_step_positions_at_or_before_a_row():
    """positions_upto(t, ..., b, i) against the positions listed by step_positions, in every strip layout."""
    for S, nb, last, width, lag in [(5, 1, 5, 7, 2), (4, 3, 2, 9, 3), (6, 2, 6, 1, 2)]:
        cap = S * nb
        pb, pi, pj, prow = (np.zeros(cap, np.int64) for _ in range(4))
        for t in range(-3, width + lag * S + 2):
            n = KH.step_positions(t, lag, S, nb, last, width, pb, pi, pj, prow)
            for b in range(nb):
                for i in range(-1, S + 1):
                    want = sum(1 for q in range(n) if (pb[q], pi[q]) <= (b, i))
                    assert KH.positions_upto(t, lag, S, nb, last, width, b, i) == want, (S, nb, t, b, i)


def test_minus_9_codes_colour_in_one_state_and_gray_in_two_parts_unless_told():
    """-9's default: coder 12 in one part for a colour image, coder 7 in two for a gray one (the network's
    work dominates there, and two parts share it); Options(parts=N) overrides both."""
    net = tiny_int_model(3)
    for colours, coder, parts in ((3, container.PARTS6_CODER, 1), (1, container.GRAY_PARTS2_CODER, 2)):
        img = photo_like(12, 20, colours)
        data = codec.compress(img, net, level=9, payload="mixer+network")
        assert (container.parse(data)[0].coder, column_parts_of(data)) == (coder, parts)
        assert np.array_equal(codec.decompress(data, net), img)
        told = codec.compress(img, net, level=9, payload="mixer+network", options=codec.Options(parts=3))
        assert column_parts_of(told) == 3
