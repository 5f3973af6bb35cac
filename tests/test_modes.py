"""Every picture mode (L, LA, RGB, RGBA, P, 1, I;16, RGB;16) comes back
exactly through the API, in format 3; plain 8-bit L and RGB keep format 2;
format-3 files an older pixzip cannot read are refused there by name, and
damaged ones give PixzipError only."""
import functools
import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import pixzip
from pixzip.codec import api as codec
from pixzip.codec import planes
from pixzip.codec.format import container, picture
from pixzip.codec.format.picture import Picture
from pixzip.errors import FormatError, PixzipError
from tests.conftest import tiny_int_model

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


@st.composite
def pictures(draw, modes=picture.MODES, max_side=6):
    mode = draw(st.sampled_from(modes))
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    c = picture.CHANNELS[mode]
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["noise", "flat", "few"]))
    top = {"1": 2, "I;16": 65536, "RGB;16": 65536}.get(mode, 256)
    if kind == "flat":
        a = np.full((h, w, c), rng.integers(0, top), np.int64)
    elif kind == "few":
        a = rng.choice(rng.integers(0, top, 3), (h, w, c))
    else:
        a = rng.integers(0, top, (h, w, c))
    if mode in picture.SIXTEEN_BIT and draw(st.booleans()):
        a = a % 256 * draw(st.sampled_from([1, 257]))      # 8-bit values, or x257
    pixels = a.astype(np.uint16 if mode in picture.SIXTEEN_BIT else np.uint8)
    palette, palette_mode, transparency = b"", "", None
    if mode == "P":
        palette_mode = draw(st.sampled_from(["RGB", "RGBA"]))
        n = draw(st.integers(1, 256))
        entries = rng.integers(0, draw(st.sampled_from([2, 256])), (n, len(palette_mode)))
        palette = entries.astype(np.uint8).tobytes()
        pixels = (pixels.astype(np.int64) % n).astype(np.uint8)
        transparency = draw(st.sampled_from([None, int(rng.integers(0, n)), bytes(rng.integers(0, 256, n % 7,
                                                                                               np.uint8))]))
    elif mode == "L":
        transparency = draw(st.sampled_from([None, int(rng.integers(0, 256))]))
    elif mode == "RGB":
        transparency = draw(st.sampled_from([None, tuple(int(v) for v in rng.integers(0, 256, 3))]))
    flat = c == 1 and mode != "P" and draw(st.booleans())
    return Picture(np.ascontiguousarray(pixels), mode, palette, palette_mode, transparency, flat)


def round_trip(p: Picture, **kw) -> bytes:
    data = codec.compress(p, **kw)
    back, _ = codec.decompress_picture(data, kw.get("model"))
    assert picture.same(back, p), (p.mode, kw)
    assert back.flat == p.flat
    header = codec.read_header(data)
    assert header.mode == p.mode
    assert header.version == (2 if p.plain else 3)
    assert np.array_equal(codec.decompress(data, kw.get("model")), picture.to_array(p))
    return data


@SETTINGS
@given(p=pictures(), payload=st.sampled_from(["auto", "coded"]))
def test_every_mode_comes_back_exactly_at_level_1(p, payload):
    round_trip(p, level=1, payload=payload)


@SETTINGS
@given(p=pictures(), payload=st.sampled_from(["auto", "coded", "raw", "deflate"]))
def test_every_mode_comes_back_exactly_at_level_6_with_a_network(p, payload):
    colours = 3 if p.mode in ("RGB", "RGBA", "RGB;16", "P") else 1
    round_trip(p, model=tiny_int_model(colours), level=6, payload=payload)


def test_a_one_pixel_picture_of_every_mode_comes_back():
    for mode in picture.MODES:
        c = picture.CHANNELS[mode]
        pixels = np.full((1, 1, c), 1, np.uint16 if mode in picture.SIXTEEN_BIT else np.uint8)
        extra = {"palette": b"\x01\x02\x03", "palette_mode": "RGB"} if mode == "P" else {}
        p = Picture(pixels, mode, **extra)
        net = tiny_int_model(3 if c == 3 or mode in ("RGBA", "P") else 1)
        for kw in ({"level": 1}, {"level": 6, "model": net, "payload": "coded"}):
            round_trip(p, **kw)


@SETTINGS
@given(p=pictures(modes=("1", "L", "LA", "P", "RGB", "RGBA", "I;16")))
def test_every_mode_comes_back_through_pillow(p):
    im = picture.to_pil(p)
    expected = picture.from_pil(im)
    data = codec.compress(im, level=1)
    back, _ = codec.decompress_picture(data)
    assert picture.same(back, expected)
    again = picture.from_pil(picture.to_pil(back))
    assert picture.same(again, expected)


@SETTINGS
@given(p=pictures(modes=("P",), max_side=8))
def test_a_palette_image_comes_back_when_its_colours_are_tried_too(p):
    import unittest.mock
    with unittest.mock.patch.object(codec, "tries_every_way", lambda plan: True):
        round_trip(p, level=1, payload="coded")


def test_only_the_smallest_files_level_tries_a_palette_image_s_colours_and_the_16_bit_coder():
    from pixzip.codec import levels
    assert [levels.tries_every_way(levels.choose(level)) for level in (1, 6, 9, None)] == [False, False, True, False]
    assert [s.kind for s in codec.read_header(codec.compress(_sine16(), level=1)).sections] != [container.DEEP]
    assert not levels.tries_every_way(levels.choose(9, method="mixer"))


def test_arrays_come_back_in_the_shape_and_type_they_went_in(rng):
    cases = [rng.integers(0, 256, (4, 5), np.uint8), rng.integers(0, 256, (4, 5, 1), np.uint8),
             rng.integers(0, 256, (4, 5, 2), np.uint8), rng.integers(0, 256, (4, 5, 4), np.uint8),
             rng.integers(0, 65536, (4, 5), np.uint16), rng.integers(0, 65536, (4, 5, 3), np.uint16),
             rng.integers(0, 2, (4, 5)).astype(bool)]
    for a in cases:
        back = pixzip.decompress(pixzip.compress(a, level=1))
        assert back.shape == a.shape and back.dtype == a.dtype and np.array_equal(back, a)


def test_a_2d_gray_array_adds_only_an_optional_chunk_to_its_format_2_archive(rng):
    a = rng.integers(0, 256, (6, 7), np.uint8)
    flat, deep = codec.compress(a, level=1), codec.compress(a[..., None], level=1)
    header = codec.read_header(flat)
    assert header.version == 2 and header.chunks == ((container.FLAT_CHUNK, b""),)
    assert len(flat) == len(deep) + 8
    assert codec.decompress(deep).shape == (6, 7, 1)


def test_files_and_pil_images_come_back_3d_as_before(tmp_path, rng):
    a = rng.integers(0, 256, (6, 7), np.uint8)
    Image.fromarray(a).save(tmp_path / "g.png")
    for src in (Image.fromarray(a), tmp_path / "g.png"):
        assert codec.decompress(codec.compress(src, level=1)).shape == (6, 7, 1)


def test_decompress_takes_bytes_a_path_and_a_file_object(tmp_path, rng):
    a = rng.integers(0, 256, (3, 4, 4), np.uint8)
    data = codec.compress(a, level=1)
    (tmp_path / "a.pxz").write_bytes(data)
    for src in (data, tmp_path / "a.pxz", str(tmp_path / "a.pxz"), io.BytesIO(data)):
        assert np.array_equal(pixzip.decompress(src), a)
    assert pixzip.is_pxz(data) and not pixzip.is_pxz(b"\x89PNG\r\n") and not pixzip.is_pxz(b"PXZ")


def _photo_like(h=32, w=40, seed=3):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:h, :w]
    return ((x[..., None] * 5 + y[..., None] * 3 + rng.integers(0, 12, (h, w, 3))) % 256).astype(np.uint8)


def test_a_fully_opaque_alpha_costs_a_few_bytes():
    rgb = _photo_like()
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    for kw in ({"level": 1}, {"level": 6, "model": tiny_int_model(3)}):
        assert len(codec.compress(rgba, **kw)) <= len(codec.compress(rgb, **kw)) + 32     # a section: 11 bytes


def test_a_16_bit_picture_of_8_bit_values_costs_at_most_its_8_bit_twin_and_64_bytes():
    rgb = _photo_like()
    for twin in (rgb, rgb[..., :1]):
        for kw in ({"level": 1}, {"level": 6, "model": tiny_int_model(twin.shape[2])}):
            size = len(codec.compress(twin, **kw))
            for wide in (twin.astype(np.uint16), twin.astype(np.uint16) * 257):
                assert len(round_trip(Picture(wide, "RGB;16" if twin.shape[2] == 3 else "I;16"), **kw)) \
                    <= size + 64


def test_the_colours_under_a_clear_alpha_are_kept_exactly():
    rgb = _photo_like(8, 9)
    alpha = np.zeros((8, 9, 1), np.uint8)
    alpha[2:5, 3:7] = 200
    for kw in ({"level": 1}, {"level": 6, "model": tiny_int_model(3), "payload": "coded"}):
        data = codec.compress(np.concatenate([rgb, alpha], 2), **kw)
        assert np.array_equal(codec.decompress(data, kw.get("model"))[..., :3], rgb)


def test_a_palette_image_keeps_its_palette_order_length_and_transparency():
    im = Image.fromarray(_photo_like()).quantize(16)
    im.putpalette(bytes(range(255, -1, -1)) * 3)        # 256 entries, most unused, in a chosen order
    im.info["transparency"] = bytes(range(0, 250, 10))
    p = picture.from_pil(im)
    data = round_trip(p, level=1)
    back, _ = codec.decompress_picture(data)
    assert back.palette == p.palette and len(back.palette) == 768 and back.transparency == p.transparency


def test_a_palette_image_is_coded_as_its_colours_only_where_they_rebuild_its_indices():
    colours = np.array([[1, 2, 3], [9, 9, 9], [1, 2, 3]], np.uint8)     # entries 0 and 2 the same colour
    pixels = np.array([[[0], [1]], [[1], [0]]], np.uint8)
    p = Picture(pixels, "P", colours.tobytes(), "RGB")
    assert planes.colours_rebuild_indices(p)
    q = Picture(np.array([[[2], [1]], [[1], [0]]], np.uint8), "P", colours.tobytes(), "RGB")
    assert not planes.colours_rebuild_indices(q)
    import unittest.mock
    with unittest.mock.patch.object(codec, "tries_every_way", lambda plan: True):
        for each in (p, q):
            round_trip(each, level=1, payload="coded")


@pytest.mark.parametrize("p", [
    Picture(np.zeros((2, 2, 1), np.uint8), "P", bytes(257 * 3), "RGB"),
    Picture(np.zeros((2, 2, 1), np.uint8), "P", bytes(10), "RGB"),
    Picture(np.zeros((2, 2, 1), np.uint8), "L", transparency=-1),
    Picture(np.zeros((2, 2, 3), np.uint8), "RGB", transparency=()),
])
def test_a_picture_whose_palette_or_transparency_the_format_cannot_hold_is_refused_by_name(p):
    from pixzip.errors import ImageError
    with pytest.raises(ImageError, match="pixzip keeps"):
        codec.compress(p, level=1)


def test_a_format_3_archive_is_refused_by_name_where_formats_1_and_2_are_read(monkeypatch, rng):
    data = codec.compress(rng.integers(0, 256, (3, 4, 4), np.uint8), level=1)
    monkeypatch.setattr(container, "READS", (1, 2))
    with pytest.raises(FormatError, match=r"made by a newer pixzip \(format 3\)"):
        codec.decompress(data)
    assert not pixzip.is_pxz(data)


def _relabel(data: bytes, edit) -> bytes:
    """A format-3 file with its header edited by ``edit(bytearray, sections_at)`` and its CRC made right."""
    header = codec.read_header(data)
    head_end = len(data) - header.payload_length - 8
    head = bytearray(data[:head_end])
    sections_at = head_end - 8 - 11 * len(header.sections)
    edit(head, sections_at)
    return bytes(head) + struct.pack("<I", zlib.crc32(bytes(head))) + data[head_end + 4:]


@functools.cache
def _samples():
    rng = np.random.default_rng(7)
    rgb = _photo_like(6, 7)
    im = Image.fromarray(rgb).quantize(8)
    im.info["transparency"] = 2
    return [codec.compress(np.concatenate([rgb, rng.integers(0, 256, (6, 7, 1), np.uint8)], 2), level=1,
                           payload="coded"),
            codec.compress(np.concatenate([rgb, np.full((6, 7, 1), 255, np.uint8)], 2), level=1),
            codec.compress(rgb.astype(np.uint16) * 257, level=1, payload="coded"),
            codec.compress(rng.integers(0, 65536, (5, 4), np.uint16), level=1),
            codec.compress(im, level=1, payload="coded"),
            codec.compress(rgb[..., 0] > 100, level=1),
            codec.compress(Picture(rgb[..., :1].copy(), "L", transparency=3), level=1, payload="coded"),
            codec.compress(_sine16(), level=9)]


def _sine16() -> np.ndarray:
    """A smooth 16-bit surface: coded whole by the 16-bit coder where this pixzip has it."""
    y, x = np.mgrid[:24, :32]
    return (30000 + 20000 * np.sin(x / 5.0) * np.cos(y / 4.0)).astype(np.uint16)[..., None]


def test_the_damage_samples_are_format_3_files_of_every_section_kind():
    headers = [codec.read_header(data) for data in _samples()]
    assert {h.version for h in headers} == {3}
    kinds = {s.kind for h in headers for s in h.sections}
    assert {container.MIXER, container.CONSTANT, container.EQUAL} <= kinds
    assert container.DEEP in kinds or not __import__("pixzip.codec.coders", fromlist=["Deep"]).Deep.available()


def _refused_cleanly(data: bytes) -> None:
    try:
        codec.decompress_picture(data)
    except PixzipError:
        pass


def test_truncated_format_3_archives_are_refused_as_pixzip_errors():
    for data in _samples():
        for n in range(len(data)):
            with pytest.raises(PixzipError):
                codec.decompress(data[:n])


def test_lying_section_fields_are_refused_as_pixzip_errors():
    for data in _samples():
        n = len(codec.read_header(data).sections)
        for i in range(n):
            for offset, values in ((0, (0, 2, 4, 9, 255)), (1, (0, 1, 2, 3, 4, 5, 6, 7, 200)), (2, (0, 1, 2, 3, 4, 9))):
                for v in values:
                    def edit(head, at, i=i, offset=offset, v=v):
                        head[at + 11 * i + offset] = v
                    _refused_cleanly(_relabel(data, edit))

            def edit_len(head, at, i=i):
                struct.pack_into("<Q", head, at + 11 * i + 3, 1 << 40)
            with pytest.raises(PixzipError):
                codec.decompress(_relabel(data, edit_len))

        def edit_mode(head, at):
            head[6] = (head[6] + 3) % 9
        _refused_cleanly(_relabel(data, edit_mode))

        def edit_layout(head, at):
            head[7] ^= 1
        _refused_cleanly(_relabel(data, edit_layout))


def test_a_coded_section_of_other_than_1_or_3_planes_is_refused_before_the_mixer_runs(rng):
    """The mixer's kernel codes the 1 or 3 colours of format 2's images only: an RGBA file whose
    colour and alpha sections claim to be one mixer section of 4 planes is refused by name."""
    rgba = rng.integers(0, 256, (5, 6, 4), np.uint8)
    data = codec.compress(rgba, level=1, payload="mixer")
    header = codec.read_header(data)
    assert [(s.planes, s.kind) for s in header.sections] == [(3, container.MIXER), (1, container.MIXER)]
    head_end = len(data) - header.payload_length - 8
    head = bytearray(data[:head_end])
    at = head_end - 8 - 11 * 2
    total = sum(s.length for s in header.sections)
    one = struct.pack("<BBBQ", 4, container.MIXER, header.sections[0].coder, total)
    head[at - 1:at + 22] = bytes([1]) + one
    head = bytes(head)
    merged = head + struct.pack("<I", zlib.crc32(head)) + data[head_end + 4:]
    with pytest.raises(FormatError, match="section of 4 planes"):
        codec.decompress(merged)


@settings(max_examples=300, deadline=None)
@given(which=st.integers(0, 7), pos=st.integers(0, 10 ** 6), value=st.integers(0, 255),
       fix_crc=st.booleans())
def test_fuzzed_format_3_archives_give_pixzip_errors_only(which, pos, value, fix_crc):
    data = _samples()[which]
    header = codec.read_header(data)
    head_end = len(data) - header.payload_length - 8
    if fix_crc:
        def edit(head, at):
            head[pos % len(head)] = value
        _refused_cleanly(_relabel(data, edit))
    else:
        b = bytearray(data)
        b[pos % len(b)] = value
        _refused_cleanly(bytes(b))
    assert head_end > 0


def test_a_format_3_archive_within_the_limits_is_refused_over_the_memory_limit(rng):
    data = codec.compress(rng.integers(0, 256, (40, 50, 4), np.uint8), level=1, payload="coded")
    with pytest.raises(PixzipError, match="over the limit"):
        codec.decompress(data, max_memory=10_000)


def test_a_format_3_archive_whose_decoding_would_be_over_the_memory_limit_is_never_made(rng):
    with pytest.raises(PixzipError, match="would need"):
        codec.compress(rng.integers(0, 256, (40, 50, 4), np.uint8), level=1, payload="coded",
                       options=codec.Options(max_memory=10_000))


def test_the_header_names_the_mode_and_the_sections():
    data = codec.compress(np.zeros((3, 4, 4), np.uint8), level=1)
    h = codec.read_header(data)
    assert h.mode == "RGBA" and h.version == 3 and [s.kind for s in h.sections] == [container.CONSTANT] * 2
    from pixzip.codec import coders
    assert coders.payload_name(h) == "constant, constant"


@pytest.mark.skipif(not __import__("pixzip.codec.coders", fromlist=["Deep"]).Deep.available(),
                    reason="no 16-bit coder in this pixzip")
def test_at_9_a_16_bit_picture_is_coded_whole_by_the_16_bit_coder_where_that_is_smaller():
    """A smooth 16-bit surface: the 16-bit coder predicts it better than the
    high and low bytes coded apart."""
    p = Picture(_sine16(), "I;16")
    data = round_trip(p, level=9)                   # -9 tries every way (levels.tries_every_way)
    assert [s.kind for s in codec.read_header(data).sections] == [container.DEEP]
    with pytest.raises(PixzipError, match="over the limit"):
        codec.decompress(data, max_memory=1000)
