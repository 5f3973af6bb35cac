"""Round trips through the library API with tiny random integer models:
losslessness must not depend on training."""
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import pixzip
from pixzip.codec import api as codec
from pixzip.codec.network.integer_torch import network as ref
from pixzip.errors import ImageError, PixzipError

from .conftest import tiny_int_model


def pattern(kind, h, w, c, seed):
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return rng.integers(0, 256, (h, w, c), dtype=np.uint8)
    if kind == "constant":
        return np.full((h, w, c), rng.integers(0, 256), dtype=np.uint8)
    if kind == "extremes":
        return (rng.integers(0, 2, (h, w, c)) * 255).astype(np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    g = (yy * 255 // max(1, h - 1) + xx * 255 // max(1, w - 1)) // 2
    return np.repeat(g[..., None], c, axis=2).astype(np.uint8)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=st.integers(1, 40), w=st.integers(1, 40), colors=st.sampled_from([1, 3]),
       kind=st.sampled_from(["noise", "constant", "extremes", "gradient"]), seed=st.integers(0, 1000))
def test_round_trip_any_shape(h, w, colors, kind, seed):
    net = tiny_int_model(colors)
    img = pattern(kind, h, w, colors, seed)
    data = codec.compress(img, net, payload="network")
    out = codec.decompress(data, net)
    assert out.dtype == np.uint8 and out.shape == (h, w, colors)
    assert np.array_equal(out, img)


@pytest.mark.parametrize("shape", [(1, 1), (1, 17), (17, 1), (2, 2), (31, 5)])
def test_thin_and_tiny_shapes(shape):
    for colors in (1, 3):
        net = tiny_int_model(colors)
        img = pattern("noise", *shape, colors, 3)
        assert np.array_equal(codec.decompress(codec.compress(img, net, payload="network"), net), img)


def test_api_accepts_array_pil_and_path(tmp_path, model_dir):
    rgb = pattern("gradient", 9, 11, 3, 0)
    gray = pattern("noise", 7, 5, 1, 0)
    p = tmp_path / "a.png"
    Image.fromarray(rgb).save(p)
    for src in (rgb, Image.fromarray(rgb), p, str(p)):
        data = pixzip.compress(src, model="tiny3", payload="network")
        assert np.array_equal(pixzip.decompress(data), rgb)
    data = pixzip.compress(gray[..., 0], model="tiny1", payload="network")  # (H, W) arrays are L
    assert np.array_equal(pixzip.decompress(data), gray[..., 0])           # and come back (H, W)
    h = pixzip.read_header(data)
    assert (h.height, h.width, h.mode, h.model_name) == (7, 5, "L", "tiny1")


@pytest.mark.parametrize("mode", ["CMYK", "F", "I", "YCbCr", "HSV"])
def test_modes_pixzip_does_not_keep_are_refused_by_name(mode, model_dir):
    im = Image.new(mode, (4, 4))
    with pytest.raises(ImageError, match="images are not kept by pixzip"):
        pixzip.compress(im, model="tiny3")


@pytest.mark.parametrize("mode", ["RGBA", "I;16", "P", "1", "LA"])
def test_the_modes_pixzip_keeps_come_back_from_pil_images(mode):
    from pixzip.codec.format import picture
    im = Image.new(mode, (4, 4))
    back, _ = pixzip.decompress_picture(pixzip.compress(im, level=1))
    assert picture.same(back, picture.from_pil(im))


def test_wrong_colour_mode_for_model(model_dir):
    """An RGB image with a gray model, and a gray image with an RGB model
    for the network alone or the mixer 1, are refused; the mixer 2 codes a
    gray image over an RGB model (coder 7)."""
    gray, rgb = pattern("noise", 3, 3, 1, 0), pattern("noise", 3, 3, 3, 0)
    with pytest.raises(PixzipError, match="codes L images, not RGB"):
        pixzip.compress(rgb, model="tiny1")
    for kw in ({"method": "network"}, {"level": 1}):
        with pytest.raises(PixzipError, match="codes RGB images, not L"):
            pixzip.compress(gray, model="tiny3", **kw)
    data = pixzip.compress(gray, model="tiny3", payload="coded")
    assert pixzip.read_header(data).coder == 7
    assert np.array_equal(pixzip.decompress(data), gray)


def test_size_is_cross_entropy_plus_small_overhead():
    """Actual payload within 0.1% of the integer model's cross-entropy, plus a
    header and checksums of at most 64 bytes."""
    net = tiny_int_model(3)
    img = pattern("gradient", 40, 40, 3, 0) // 2 + pattern("noise", 40, 40, 3, 1) // 8
    data = codec.compress(img, net, payload="network")
    ideal = ref(net).cross_entropy_bits(img) / 8
    header = len(data) - pixzip.read_header(data).payload_length
    assert header <= 64
    assert pixzip.read_header(data).payload_length <= ideal * 1.001 + 4  # + the coder's final word
    # compress measures the same cross-entropy in its own pass, and the file does not change
    again, stats = codec.compress_with_stats(img, net, payload="network")
    assert again == data and stats.payload == "network"
    assert stats.ideal_bits == codec.ideal_bits(img, net)
    assert stats.ideal_bits / 8 == pytest.approx(ideal, rel=1e-12) and stats.ideal_s >= 0


def test_png_output_of_decode_round_trips(model_dir):
    img = pattern("noise", 6, 6, 3, 2)
    out = pixzip.decompress(pixzip.compress(img, model="tiny3"))
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, format="PNG")
    assert np.array_equal(np.asarray(Image.open(buf)), img)


@pytest.mark.parametrize("strip_height", [0, 4])
def test_progress_counts_every_pixel_once(strip_height):
    """Encoder and decoder report progress (the CLI's bars) pixel by pixel."""
    net = tiny_int_model(3)
    img = np.random.default_rng(3).integers(0, 256, (13, 21, 3), dtype=np.uint8)
    seen = []
    data = codec.compress(img, net, payload="network",
                          options=codec.Options(strip_height=strip_height, progress=seen.append))
    assert sum(seen) == 13 * 21
    seen.clear()
    codec.decompress(data, net, progress=seen.append)
    assert sum(seen) == 13 * 21


def test_warm_up_runs_the_network_path(monkeypatch):
    """The demo and the bench time the coding after warm_up: it must compile
    the network's kernels, not store its tiny image raw."""
    kinds = []
    real = codec.compress

    def spy(*args, **kwargs):
        data = real(*args, **kwargs)
        kinds.append(codec.read_header(data).kind)
        return data

    monkeypatch.setattr(codec, "compress", spy)
    codec.warm_up(tiny_int_model(3))
    assert kinds == [0]
