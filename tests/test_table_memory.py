"""The hashed table's memory (``pixzip/codec/mixer/table_memory.py``): written on several threads, the same
table as on one."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixzip.codec.mixer import kernel as kernel1
from pixzip.codec.mixer import table_memory
from pixzip.codec.mixer.v6 import kernel as kernel6


def reference(parts: int, buckets: int) -> np.ndarray:
    """Every bucket empty, as the kernels made it until 0.13.4: the counters at p = 1/2 with no count, the check 0."""
    table = np.full((parts, buckets * 16), 32768 << 16, np.uint32)
    table[:, ::16] = 0
    return table


@settings(max_examples=40, deadline=None)
@given(parts=st.integers(1, 4), log_buckets=st.integers(0, 9), threads=st.integers(1, 9),
       slice_bytes=st.sampled_from([64, 1000, 4096, 1 << 20]))
def test_any_number_of_threads_writes_the_same_table(parts, log_buckets, threads, slice_bytes):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(table_memory, "MIN_SLICE_BYTES", slice_bytes)
        table = table_memory.empty_table(parts, 1 << log_buckets, threads)
    assert table.dtype == np.uint32 and table.flags.c_contiguous
    np.testing.assert_array_equal(table, reference(parts, 1 << log_buckets))


def test_a_large_table_is_split_and_a_small_one_is_not(monkeypatch):
    assert table_memory.fill_threads(256 << 20, 2) == 2
    assert table_memory.fill_threads(256 << 20, 64) == table_memory.MAX_THREADS
    assert table_memory.fill_threads(64 << 20, 1) == 1
    assert table_memory.fill_threads(table_memory.MIN_SLICE_BYTES - 1, 8) == 1
    written = []
    real = table_memory.ThreadPoolExecutor.submit

    def counting(self, fn, *args):
        written.append(args)
        return real(self, fn, *args)
    monkeypatch.setattr(table_memory.ThreadPoolExecutor, "submit", counting)
    monkeypatch.setattr(table_memory, "MIN_SLICE_BYTES", 4096)
    np.testing.assert_array_equal(table_memory.empty_table(2, 1 << 8, 3), reference(2, 1 << 8))
    assert written == [(1,), (2,)]                  # 32 KB in 3 slices: two helper threads


def test_a_helper_threads_error_is_raised_not_lost(monkeypatch):
    class Broken(Exception):
        pass

    def broken(i):
        raise Broken(f"slice {i}")
    real = table_memory.ThreadPoolExecutor.submit
    monkeypatch.setattr(table_memory.ThreadPoolExecutor, "submit", lambda self, fn, *args: real(self, broken, *args))
    monkeypatch.setattr(table_memory, "MIN_SLICE_BYTES", 4096)
    with pytest.raises(Broken, match="slice 1"):
        table_memory.empty_table(1, 1 << 8, 2)


@pytest.mark.parametrize("k", [kernel1, kernel6], ids=["mixer 1", "mixer 6"])
def test_the_kernels_states_start_from_the_empty_table(k):
    args = (2, 8, 8, 3, 10) + ((0,) if k is kernel6 else ())
    np.testing.assert_array_equal(k.new_states(*args).table, reference(2, 1 << 10))
