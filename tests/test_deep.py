"""The 16-bit coder (``pixzip.codec.deep``): exact round trips of every
shape and kind of content, narrower samples coded narrow, damaged payloads
refused as CorruptError, and its bytes pinned (a change is a new version)."""
from __future__ import annotations

import hashlib
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixzip.codec import deep
from pixzip.codec.deep import depth, spec
from pixzip.errors import CorruptError

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def content(kind: str, shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """A uint16 image of one kind of content."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    y, x, ch = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
    smooth = (x * 997 + y * 613 + ch * 4099 + rng.integers(0, 64, shape)) % 65536
    return {
        "zeros": np.zeros(shape, np.int64),
        "max": np.full(shape, 65535),
        "noise": rng.integers(0, 65536, shape),
        "smooth": smooth,
        "x257": (smooth >> 8) * 257,
        "12-bit<<4": (smooth >> 4) << 4,
        "12-bit": smooth >> 4,
        "low bits set": (smooth & ~15) | 9,
        "scaled 10-bit": depth.scale(smooth >> 6, 10),
    }[kind].astype(np.uint16)


KINDS = ["zeros", "max", "noise", "smooth", "x257", "12-bit<<4", "12-bit", "low bits set", "scaled 10-bit"]


def round_trip(img: np.ndarray) -> bytes:
    payload = deep.encode(img)
    back = deep.decode(payload, *img.shape)
    assert back.dtype == np.uint16 and back.shape == img.shape
    assert np.array_equal(back, img)
    return payload


@FAST
@given(h=st.integers(1, 9), w=st.integers(1, 9), c=st.sampled_from([1, 3]), kind=st.sampled_from(KINDS),
       seed=st.integers(0, 2**16))
def test_every_shape_and_kind_of_content_comes_back_exactly(h, w, c, kind, seed):
    round_trip(content(kind, (h, w, c), seed))


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 1, 3), (1, 37, 3), (41, 1, 1), (23, 31, 3)])
@pytest.mark.parametrize("kind", KINDS)
def test_lines_single_pixels_and_small_images_come_back_exactly(shape, kind):
    round_trip(content(kind, shape, 7))


def test_a_larger_image_spanning_several_row_blocks_comes_back_exactly():
    round_trip(content("smooth", (200, 97, 3), 3))


def test_the_encoder_reads_any_memory_layout_the_same():
    img = content("smooth", (12, 9, 3), 5)
    assert deep.encode(np.asfortranarray(img)) == deep.encode(img)
    wide = content("smooth", (12, 18, 3), 5)
    assert deep.encode(wide[:, ::2]) == deep.encode(np.ascontiguousarray(wide[:, ::2]))


@pytest.mark.parametrize("kind", ["zeros", "max"])
def test_a_constant_image_costs_its_header_and_a_few_bytes(kind):
    payload = round_trip(content(kind, (64, 64, 3), 0))
    assert len(payload) <= spec.HEADER_BYTES + 8
    assert len(payload) >= deep.min_payload_bytes(64, 64, 3)


@pytest.mark.parametrize("wide, narrow", [("x257", None), ("12-bit<<4", "12-bit"), ("low bits set", "12-bit")])
def test_samples_with_fewer_bits_cost_what_their_narrower_values_cost(wide, narrow):
    """8-bit values x257, a 12-bit sensor shifted by 4 (with constant low
    bits or not): the same stream as the narrower values, header apart."""
    img = content(wide, (40, 30, 3), 1)
    twin = (img >> 8) if narrow is None else content(narrow, (40, 30, 3), 1)
    assert deep.encode(img)[spec.HEADER_BYTES:] == deep.encode(twin)[spec.HEADER_BYTES:]


def test_incompressible_samples_are_stored_at_two_bytes_each():
    img = content("noise", (16, 16, 3), 2)
    payload = round_trip(img)
    assert payload[1] == spec.KIND_STORED and len(payload) == spec.HEADER_BYTES + 2 * img.size


def test_every_truncated_payload_is_refused_as_corrupt():
    img = content("smooth", (9, 11, 3), 4)
    payload = deep.encode(img)
    assert payload[1] == spec.KIND_CODED
    for n in range(len(payload)):
        with pytest.raises(CorruptError):
            deep.decode(payload[:n], *img.shape)
    with pytest.raises(CorruptError):
        deep.decode(payload + b"\0", *img.shape)


def test_a_stored_payload_of_the_wrong_length_is_refused_as_corrupt():
    img = content("noise", (5, 5, 1), 2)
    payload = deep.encode(img)
    for bad in (payload[:-1], payload + b"\0\0"):
        with pytest.raises(CorruptError):
            deep.decode(bad, *img.shape)


@pytest.mark.parametrize("field, value", [(0, spec.VERSION + 1), (1, 2), (2, 3), (3, 17), (6, 17)])
def test_an_unknown_version_or_header_field_is_refused_as_corrupt(field, value):
    payload = bytearray(deep.encode(content("smooth", (6, 6, 1), 1)))
    payload[field] = value
    with pytest.raises(CorruptError):
        deep.decode(bytes(payload), 6, 6, 1)


@FAST
@given(seed=st.integers(0, 2**32 - 1), flips=st.integers(1, 6), kind=st.sampled_from(["smooth", "x257", "noise"]))
def test_a_fuzzed_payload_is_refused_as_corrupt_or_decodes_to_an_image_of_its_shape(seed, flips, kind):
    """Never another exception, a crash or a hang: the container's checksum
    catches an image that decodes but differs."""
    img = content(kind, (7, 8, 3), 9)
    payload = bytearray(deep.encode(img))
    rng = np.random.default_rng(seed)
    for _ in range(flips):
        payload[int(rng.integers(len(payload)))] ^= int(rng.integers(1, 256))
    try:
        out = deep.decode(bytes(payload), *img.shape)
    except CorruptError:
        return
    assert out.shape == img.shape and out.dtype == np.uint16


def test_a_payload_too_short_for_its_image_stops_after_a_few_bytes_past_its_end():
    payload = deep.encode(content("smooth", (8, 8, 3), 1))
    with pytest.raises(CorruptError):
        deep.decode(payload, 400, 400, 3)


def test_decoding_takes_no_more_memory_than_decode_memory_says():
    img = content("smooth", (120, 80, 3), 6)
    payload = deep.encode(img)
    tracemalloc.start()
    deep.decode(payload, *img.shape)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak <= deep.decode_memory(*img.shape)


def test_the_payload_minimum_never_exceeds_a_real_payload():
    for shape in [(1, 1, 1), (300, 300, 3), (1000, 1000, 1)]:
        assert deep.min_payload_bytes(*shape) <= len(deep.encode(np.zeros(shape, np.uint16)))


def test_shapes_and_types_it_does_not_code_are_refused_by_name():
    with pytest.raises(ValueError):
        deep.encode(np.zeros((4, 4, 2), np.uint16))
    with pytest.raises(ValueError):
        deep.encode(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError):
        deep.decode(b"", 4, 4, 4)


PINNED = "7998f8cd8fd0438b9c5d533a6208083430e492936d73fc3de956b98278216faa"


def test_a_byte_change_of_the_16_bit_coder_needs_a_new_spec_version():
    """The bytes of version 1 on a fixed image (gradients, an edge, integer
    noise; no random generator).  A change to any byte is a new
    ``spec.VERSION``, and the old version stays decodable."""
    y, x, c = np.meshgrid(np.arange(14), np.arange(11), np.arange(3), indexing="ij")
    noise = (x * 2654435761 + y * 40503 + c * 9973) % 251
    img = ((x * 3001 + y * 1777 + c * 9000 + (x > 5) * 20000 + noise * 7) % 65536).astype(np.uint16)
    payload = round_trip(img)
    assert spec.VERSION == 1
    assert hashlib.sha256(payload).hexdigest() == PINNED
