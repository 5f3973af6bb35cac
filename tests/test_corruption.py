"""Damaged files: each raises the right PixzipError quickly; never wrong pixels."""
import struct
import time
import zlib

import numpy as np
import pytest

from pixzip.codec import api as codec
from pixzip.codec.format import container
from pixzip.errors import (
    CorruptError,
    FormatError,
    LimitError,
    PixzipError,
    TruncatedError,
    UnknownModelError,
)

from .conftest import tiny_int_model


@pytest.fixture(scope="module")
def sample():
    net = tiny_int_model(3)
    img = np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    return net, img, codec.compress(img, net, payload="network")


def header_end(data):
    return len(data) - codec.read_header(data).payload_length - 4


def decode_or_error(data, net, img):
    """Decoding either raises a PixzipError or returns exactly the image."""
    t = time.monotonic()
    try:
        out = codec.decompress(data, net)
    except PixzipError as e:
        assert str(e), "errors carry a message"
        return type(e)
    finally:
        assert time.monotonic() - t < 10, "no hang"
    assert np.array_equal(out, img), "wrong pixels without an error"
    return None


def test_truncated_at_every_length(sample):
    net, img, data = sample
    for n in range(len(data)):
        with pytest.raises((TruncatedError, FormatError)):
            codec.decompress(data[:n], net)


def test_flipped_header_bytes_are_refused(sample):
    net, img, data = sample
    for pos in range(header_end(data)):
        for bit in (0, 7):
            bad = bytearray(data)
            bad[pos] ^= 1 << bit
            assert decode_or_error(bytes(bad), net, img) is not None, f"byte {pos} bit {bit}"


def test_flipped_payload_bytes_never_give_wrong_pixels(sample):
    net, img, data = sample
    start = header_end(data)
    rng = np.random.default_rng(1)
    errors = set()
    ends = list(range(start, start + 4)) + list(range(len(data) - 8, len(data)))
    for pos in ends + list(rng.integers(start, len(data), 40)):
        bad = bytearray(data)
        bad[pos] ^= 1 << int(rng.integers(0, 8))
        errors.add(decode_or_error(bytes(bad), net, img))
    assert CorruptError in errors


def test_specific_failures(sample):
    net, img, data = sample
    with pytest.raises(FormatError, match="magic"):
        codec.decompress(b"PNG\0" + data[4:], net)
    with pytest.raises(FormatError, match=r"made by a newer pixzip \(format 9\)"):
        codec.decompress(data[:4] + bytes([9]) + data[5:], net)
    with pytest.raises(FormatError, match=r"unknown pixzip \(format 0\)"):
        codec.decompress(data[:4] + bytes([0]) + data[5:], net)
    with pytest.raises(FormatError, match="flags"):
        codec.decompress(data[:5] + bytes([0x80]) + data[6:], net)
    with pytest.raises(FormatError, match="magic"):
        codec.decompress(b"", net)
    with pytest.raises(FormatError, match="trailing"):
        codec.decompress(data + b"\0", net)


def repack(data, **changes):
    h, payload, crc = container.parse(data)
    h2 = container.Header(**{**h.__dict__, **changes})
    return container.pack(h2, bytes(payload), crc)


def test_unknown_model_and_hash(sample, model_dir):
    net, img, data = sample
    with pytest.raises(UnknownModelError, match=r"needs model 'nosuch' \(sha256 [0-9a-f]{16}\.\.\.\), which is "
                                                r"not installed; put its \.pxm file in a folder listed in "
                                                r"\$PIXZIP_MODELS, or name the file with -m"):
        codec.decompress(repack(data, model_name="nosuch"))
    with pytest.raises(UnknownModelError, match="with sha256 0000000000000000.*is another model"):
        codec.decompress(repack(data, model_hash=b"\0" * 8))


def test_huge_claimed_size_is_refused_before_allocating(sample):
    net, img, data = sample
    t = time.monotonic()
    for h, w in ((1 << 20, 1 << 20), (1 << 16, 1 << 16), (0, 5), (5, 0), ((1 << 20) + 1, 1)):
        with pytest.raises(LimitError):
            codec.decompress(repack(data, height=h, width=w), net)
    assert time.monotonic() - t < 1


def test_wrong_dimensions_fail_the_checksum(sample):
    net, img, data = sample
    for h, w in ((12, 10), (10, 11), (1, 1)):
        assert decode_or_error(repack(data, height=h, width=w), net, img) in (CorruptError,)


def test_pixel_crc_mismatch(sample):
    net, img, data = sample
    bad = data[:-4] + struct.pack("<I", (zlib.crc32(img.tobytes()) + 1) & 0xFFFFFFFF)
    with pytest.raises(CorruptError, match="checksum"):
        codec.decompress(bad, net)
