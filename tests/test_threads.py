"""How the decoders share the cores: a wavefront step too small to share runs
on one thread (two would only wait for each other), a large one on all, and
the bytes never depend on it."""
import os

import numba
import numpy as np
import pytest

from pixzip.codec import api as codec
from pixzip.codec.network import dec_wavefront as wavefront
from pixzip.codec.mixer import kernel as cm_kernel
from pixzip.codec.network import dec_pipeline as pipeline
from pixzip.codec.network.kernels import decoder as K
from pixzip.codec.network.kernels import handover as KH
from pixzip.codec.network.kernels import pipeline as KP
from pixzip.codec import threads as T

two_threads = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="numba has one thread here")


def photo_like(h, w, seed=0):
    """Smooth gradients plus a little noise: what the coders are made for."""
    y, x = np.mgrid[0:h, 0:w]
    noise = np.random.default_rng(seed).integers(0, 6, (h, w, 3))
    return ((np.stack([x * 3 + y, x + 2 * y, 255 - x - y], -1) + noise) % 256).astype(np.uint8)


@pytest.fixture
def kernel_threads(monkeypatch):
    """Records, for every call of a decoder's parallel kernel, its name, the
    positions it decodes, and the numba threads it runs on."""
    calls = []

    def spy(module, name, size, threads=lambda a: numba.get_num_threads()):
        real = getattr(module, name)

        def call(*args):
            calls.append((name, size(args), threads(args)))
            return real(*args)
        monkeypatch.setattr(module, name, call)

    spy(K, "vertical_step", lambda a: len(a[4]))
    spy(K, "horizontal_step", lambda a: len(a[3].i))
    spy(cm_kernel, "code_parts", lambda a: len(a[3].ys))
    # -9's decoder: a chunk of steps on its threads (thread k, threads, t0, t1, (S, strips, last, colours), geo, ...),
    # its size the chunk's positions per step
    spy(KP, "run_steps", lambda a: pipeline.positions_per_step(a[2], a[3], *a[4][:3], a[5].width, a[5].lag).mean(),
        lambda a: a[1])
    # and in one state (-9's colour images): a thread's role in a chunk (role, t0, t1, runs, share, shape, geo, ...),
    # on two threads unless one takes both roles
    spy(KH, "run_role", lambda a: pipeline.positions_per_step(a[1], a[2], *a[5][:3], a[6].width, a[6].lag).mean(),
        lambda a: 1 if a[0] == KH.BOTH else 2)
    return calls


@pytest.fixture
def two_numba_threads():
    threads = numba.get_num_threads()
    numba.set_num_threads(2)
    yield
    numba.set_num_threads(threads)


ARCHIVES = {}


def archive(shape, level, method, strip_height=0):
    key = (shape, level, method, strip_height)
    if key not in ARCHIVES:
        ARCHIVES[key] = codec.compress(photo_like(*shape), level=level, method=method,
                                       payload="network" if method == "network" else "coded",
                                       options=codec.Options(strip_height=strip_height))
    return ARCHIVES[key]


@two_threads
@pytest.mark.parametrize("level,method", [(1, "mixer+network"), (9, None), (None, "network")],
                         ids=["mixer1+network", "-9", "network"])       # (the default level has no network)
@pytest.mark.parametrize("shape", [(1, 150), (150, 1)], ids=["wide", "tall"])
def test_a_thin_image_decodes_on_one_thread(kernel_threads, two_numba_threads, shape, level, method):
    """Each step of a thin image decodes a position or two: shared, each of its
    seven parallel kernels would make two threads wait for each other (a
    6000x1 image: 2.75 s on one thread, 13.4 s on two, on a busy machine)."""
    data = archive(shape, level, method)
    assert np.array_equal(codec.decompress(data), photo_like(*shape))
    assert kernel_threads, "no decoder kernel ran"
    assert {t for _, _, t in kernel_threads} == {1}, kernel_threads[:5]
    assert numba.get_num_threads() == 2           # the caller's thread count comes back


@two_threads
def test_a_large_step_is_shared_and_a_small_one_is_not(kernel_threads, two_numba_threads, monkeypatch):
    """A 120x24 image at -9 in strips of 2 rows has steps of every size up to
    60 positions: those of at least MIN_SHARED positions run on both threads
    (on two free cores)."""
    monkeypatch.setattr(T, "others_running", lambda: 0)
    monkeypatch.setattr(T, "_cores", lambda: 2)
    shape = (120, 24)
    data = archive(shape, 9, None, strip_height=2)
    assert np.array_equal(codec.decompress(data), photo_like(*shape))
    big = {t for _, n, t in kernel_threads if n >= T.MIN_SHARED}
    small = {t for _, n, t in kernel_threads if n < T.MIN_SHARED}
    assert big == {2} and small <= {1}


@two_threads
def test_a_busy_machine_decodes_on_one_thread(kernel_threads, two_numba_threads, monkeypatch):
    """With another process running on one of 2 cores, no step is shared:
    two threads would wait, at every kernel, for the one that shares its
    core; one thread runs at its idle speed."""
    monkeypatch.setattr(T, "others_running", lambda: 1)
    monkeypatch.setattr(T, "_cores", lambda: 2)
    shape = (120, 24)
    data = archive(shape, 9, None, strip_height=2)
    assert np.array_equal(codec.decompress(data), photo_like(*shape))
    assert any(n >= T.MIN_SHARED for _, n, _ in kernel_threads)
    assert {t for _, _, t in kernel_threads} == {1}
    assert numba.get_num_threads() == 2


def test_others_running_sees_another_busy_process():
    """/proc's count of runnable tasks, less this process's own."""
    import subprocess
    import sys
    import time
    if not os.path.exists("/proc/loadavg"):
        pytest.skip("no /proc")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        seen = max(T.others_running() for _ in range(20))
    finally:
        spinner.kill()
        spinner.wait()
    assert seen >= 1


@two_threads
@pytest.mark.parametrize("level,method", [(None, None), (9, None), (None, "network")], ids=["default", "-9", "network"])
def test_the_bytes_do_not_depend_on_sharing(monkeypatch, two_numba_threads, level, method):
    """Every step shared on two threads, or none: the same pixels."""
    monkeypatch.setattr(T, "others_running", lambda: 0)
    monkeypatch.setattr(T, "_cores", lambda: 2)
    shape = (16, 60)
    data = archive(shape, level, method)
    for least in (1, 10**9):
        monkeypatch.setattr(T, "MIN_SHARED", least)
        assert np.array_equal(codec.decompress(data), photo_like(*shape))


def test_decode_image_gives_back_the_callers_thread_count_after_an_error(two_numba_threads):
    from pixzip.codec.network import registry

    def failing(counts, rows, cols, c):
        raise RuntimeError("the source failed")
    with pytest.raises(RuntimeError, match="source failed"):
        wavefront.decode_image(registry.load_model(None), 1, 50, failing)
    assert numba.get_num_threads() == 2


def _fresh(env_changes, code):
    import json
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(env_changes)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


_SEEN = """
import json, os, numpy as np, numba
import pixzip
pixels = np.arange(2 * 40 * 3, dtype=np.uint8).reshape(2, 40, 3)
assert np.array_equal(pixzip.decompress(pixzip.compress(pixels, payload="network")), pixels)
print(json.dumps({k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
                 | {"layer": numba.threading_layer()}))
"""


@pytest.mark.parametrize("user,expected", [
    ({}, {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": T.SPIN_COUNT}),
    ({"GOMP_SPINCOUNT": "123"}, {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": "123"}),
    ({"OMP_WAIT_POLICY": "ACTIVE"}, {"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": None}),
], ids=["pixzip's", "user's spin count", "user's wait policy"])
def test_a_fresh_process_bounds_the_spin_waits_unless_the_user_chose(user, expected):
    """OpenMP's threads spin briefly, then sleep (a 3 ms spin took the core
    that the thread it waited for needed, when another process used one): set
    when pixzip is imported, before numba's threading layer loads
    (it reads them once), and seen by the kernels that run after."""
    seen = _fresh(user, _SEEN)
    assert {k: seen[k] for k in expected} == expected
    assert seen["layer"] in ("omp", "tbb", "workqueue")


def test_setup_leaves_a_users_setting_alone():
    env = {"GOMP_SPINCOUNT": "7"}
    T.setup(env)
    assert env == {"GOMP_SPINCOUNT": "7"}
    env = {"OMP_WAIT_POLICY": "passive"}
    T.setup(env)
    assert env == {"OMP_WAIT_POLICY": "passive"}
    env = {}
    T.setup(env)
    assert env == {"GOMP_SPINCOUNT": T.SPIN_COUNT}
