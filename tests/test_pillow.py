"""The Pillow plugin, through Pillow's own API only: ``import pixzip.pillow``,
then ``Image.open`` reads a .pxz header at once and decodes on ``load()``,
``save`` compresses with pixzip's options, and every other file is Pillow's
as before."""
import io
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, UnidentifiedImageError

import pixzip
import pixzip.pillow
from pixzip import errors

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
FORMAT2 = DATA / "format2"
TINY = DATA / "golden-tiny.pxm"
PHOTO = DATA / "golden-photo.png"          # a 48x40 photo crop: every level codes it smaller than stored


def photo() -> np.ndarray:
    with Image.open(PHOTO) as im:
        return np.asarray(im)


def gradient(h=16, w=24, channels=3) -> np.ndarray:
    """A smooth image."""
    y, x = np.mgrid[0:h, 0:w]
    planes = [(x * 5 + y * 3 + 40 * c) % 256 for c in range(channels)]
    return np.stack(planes, axis=-1).astype(np.uint8)


def saved(im: Image.Image, **params) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PXZ", **params)
    return buf.getvalue()


class CountingReader(io.BytesIO):
    """A file object that counts the bytes read from it."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.bytes_read = 0

    def read(self, n=-1):
        got = super().read(n)
        self.bytes_read += len(got)
        return got


def test_importing_the_plugin_registers_pxz_by_extension_and_mime():
    assert Image.registered_extensions()[".pxz"] == "PXZ"
    assert Image.MIME["PXZ"] == "image/x-pixzip"
    assert "PXZ" in Image.OPEN and "PXZ" in Image.SAVE


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(1, 9), w=st.integers(1, 9), gray=st.booleans(), payload=st.sampled_from(["auto", "raw", "deflate"]),
       seed=st.integers(0, 2 ** 16))
def test_an_l_or_rgb_image_comes_back_from_save_and_open_pixel_exact(tmp_path, h, w, gray, payload, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w) if gray else (h, w, 3), dtype=np.uint8)
    path = tmp_path / "x.pxz"
    Image.fromarray(pixels).save(path, payload=payload)
    with Image.open(path) as im:
        assert (im.format, im.mode, im.size) == ("PXZ", "L" if gray else "RGB", (w, h))
        assert np.array_equal(np.asarray(im), pixels)


@st.composite
def pillow_images(draw) -> Image.Image:
    """A small Pillow image of a mode pixzip keeps, with a palette and a transparency where the mode has them."""
    mode = draw(st.sampled_from(["1", "L", "LA", "P", "RGB", "RGBA", "I;16"]))
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    if mode == "1":
        return Image.fromarray(rng.integers(0, 2, (h, w)).astype(bool))
    if mode == "I;16":
        return Image.frombytes("I;16", (w, h), rng.integers(0, 65536, (h, w), dtype="<u2").tobytes())
    if mode == "P":
        palette_mode = draw(st.sampled_from(["RGB", "RGBA"]))
        entries = draw(st.integers(1, 256))
        im = Image.fromarray(rng.integers(0, entries, (h, w), dtype=np.uint8), "P")
        im.putpalette(rng.integers(0, 256, entries * len(palette_mode), dtype=np.uint8).tobytes(), palette_mode)
        transparency = draw(st.sampled_from([None, "index", "alphas"])) if palette_mode == "RGB" else None
        if transparency == "index":
            im.info["transparency"] = int(rng.integers(0, entries))
        elif transparency == "alphas":
            im.info["transparency"] = rng.integers(0, 256, entries, dtype=np.uint8).tobytes()
        return im
    channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
    im = Image.fromarray(rng.integers(0, 256, (h, w, channels), dtype=np.uint8).squeeze(2) if channels == 1
                         else rng.integers(0, 256, (h, w, channels), dtype=np.uint8), mode)
    if mode in ("L", "RGB") and draw(st.booleans()):
        im.info["transparency"] = int(rng.integers(0, 256)) if mode == "L" else \
            tuple(int(v) for v in rng.integers(0, 256, 3))
    return im


def as_pillow_sees_it(im: Image.Image) -> tuple:
    """What Pillow says an image is: mode, size, samples, palette (with its mode) and transparency."""
    palette = (im.palette.mode, im.getpalette(im.palette.mode)) if im.mode == "P" else None
    return im.mode, im.size, np.asarray(im).tobytes(), palette, im.info.get("transparency")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(im=pillow_images(), level=st.sampled_from([1, None]))
def test_every_mode_comes_back_from_save_and_open_as_pillow_saw_it(tmp_path, im, level):
    path = tmp_path / "x.pxz"
    im.save(path, level=level)
    with Image.open(path) as back:
        assert back.info.get("transparency") == im.info.get("transparency")     # from the header, before load
        assert (back.mode, back.size) == (im.mode, im.size)
        assert as_pillow_sees_it(back) == as_pillow_sees_it(im)


def photo_in(mode: str) -> Image.Image:
    """The photo as an image of ``mode``, big enough that its planes are coded, not stored."""
    rgb = Image.open(PHOTO)
    gray = np.asarray(rgb.convert("L"))
    if mode == "RGBA":
        return Image.fromarray(np.dstack([np.asarray(rgb), gray]), "RGBA")
    if mode == "LA":
        return Image.fromarray(np.dstack([gray, 255 - gray]), "LA")
    if mode == "I;16":
        return Image.frombytes("I;16", rgb.size, (gray.astype("<u2") * 251).tobytes())
    return rgb.quantize(64) if mode == "P" else rgb.convert(mode)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"])
def test_a_photo_of_every_mode_is_coded_and_comes_back_through_pillow(tmp_path, mode):
    im = photo_in(mode)
    im.save(tmp_path / "x.pxz", level=1)
    with Image.open(tmp_path / "x.pxz") as back:
        assert "raw" not in back.info["pxz_payload"] and "deflate" not in back.info["pxz_payload"]
        assert back.info["pxz_version"] == (2 if mode in ("L", "RGB") else 3)
        assert as_pillow_sees_it(back) == as_pillow_sees_it(im)


def test_every_format_3_golden_archive_opens_through_pillow_as_it_decodes(monkeypatch):
    """Pillow's image of each golden archive is the picture pixzip decodes from it; 16-bit RGB is refused."""
    from pixzip.codec.format import picture
    monkeypatch.setenv("PIXZIP_MODELS", str(DATA))            # the network section's golden-tiny
    for path in sorted((DATA / "format3").glob("*.pxz")):
        pic, _ = pixzip.decompress_picture(path)
        if pic.mode == "RGB;16":
            with pytest.raises(errors.ImageError):
                Image.open(path)
            continue
        with Image.open(path) as im:
            assert as_pillow_sees_it(im) == as_pillow_sees_it(picture.to_pil(pic)), path.name


def test_a_palette_image_has_its_palette_and_transparency_at_open(tmp_path):
    im = Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4) % 3, "P")
    im.putpalette(bytes([255, 0, 0, 0, 255, 0, 0, 0, 255]))
    im.info["transparency"] = 2
    im.save(tmp_path / "p.pxz")
    with Image.open(tmp_path / "p.pxz") as back:
        assert back.tile and back.info["transparency"] == 2 and back.palette.mode == "RGB"
        assert back.convert("RGBA").getpixel((2, 0)) == (0, 0, 255, 0)


def test_a_16_bit_rgb_archive_is_refused_at_open_by_name_pointing_at_pixzip_decompress(tmp_path):
    deep = np.random.default_rng(3).integers(0, 65536, (4, 5, 3), dtype=np.uint16)
    (tmp_path / "deep.pxz").write_bytes(pixzip.compress(deep, level=1))
    with pytest.raises(errors.ImageError) as caught:
        Image.open(tmp_path / "deep.pxz")
    assert isinstance(caught.value, OSError)
    assert "16-bit RGB" in str(caught.value) and "pixzip.decompress" in str(caught.value)
    assert pixzip.decompress(tmp_path / "deep.pxz").dtype == np.uint16


def test_a_coded_image_comes_back_pixel_exact_at_every_level(tmp_path):
    pixels = photo()
    for level in (1, 6, 9):
        Image.fromarray(pixels).save(tmp_path / f"{level}.pxz", level=level)
        with Image.open(tmp_path / f"{level}.pxz") as im:
            assert im.info["pxz_payload"] in ("mixer", "mixer+network")
            assert np.array_equal(np.asarray(im), pixels)


def test_open_reads_only_the_header_and_load_reads_the_rest():
    data = saved(Image.fromarray(np.zeros((64, 64, 3), np.uint8)), payload="raw")
    stream = CountingReader(data)
    im = Image.open(stream)
    assert (im.size, im.mode, im.info["pxz_payload"]) == ((64, 64), "RGB", "raw")
    assert stream.bytes_read < 200 < len(data)          # the header, not the 12 KB of pixels
    im.load()
    assert stream.bytes_read >= len(data)


def test_pillows_incremental_parser_reads_a_pxz_file_fed_in_pieces():
    data = saved(Image.open(PHOTO), level=1)
    parser = ImageFile.Parser()
    for i in range(0, len(data), 100):
        parser.feed(data[i:i + 100])
    im = parser.close()
    assert im.format == "PXZ" and np.array_equal(np.asarray(im), photo())
    cut = ImageFile.Parser()
    cut.feed(data[:-1])
    with pytest.raises(OSError):
        cut.close()


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_a_corrupt_payload_opens_and_fails_only_at_load_as_a_pixzip_error_and_an_oserror(tmp_path, mode):
    data = bytearray(saved(photo_in(mode), level=1))
    data[-8] ^= 0x10                                    # in the payload, after the header's checksum
    path = tmp_path / "corrupt.pxz"
    path.write_bytes(data)
    im = Image.open(path)
    assert (im.size, im.mode, im.info["pxz_payload"].split(",")[0]) == ((48, 40), mode, "mixer")
    with pytest.raises(errors.CorruptError) as caught:
        im.load()
    assert isinstance(caught.value, OSError) and isinstance(caught.value, pixzip.pillow.PillowError)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)
    im.close()


def test_a_network_archive_opens_without_its_model_and_needs_it_only_to_load(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXZIP_MODELS", str(tmp_path))      # an empty model folder: golden-tiny is not found
    with Image.open(FORMAT2 / "rgb.pxz") as im:
        assert (im.info["pxz_payload"], im.info["pxz_model"]) == ("network", "golden-tiny")
        with pytest.raises(errors.UnknownModelError) as caught:
            im.load()
        assert isinstance(caught.value, OSError)
    try:
        pixzip.pillow.register_pxz_opener(model=str(TINY))
        with Image.open(FORMAT2 / "rgb.pxz") as im:
            expected = np.asarray(Image.open(DATA / "golden.png").convert("RGB"))
            assert np.array_equal(np.asarray(im), expected)
    finally:
        pixzip.pillow.register_pxz_opener()


def test_a_damaged_header_or_a_cut_file_is_refused_at_open_by_name(tmp_path):
    data = (FORMAT2 / "raw.pxz").read_bytes()
    bad_header = bytearray(data)
    bad_header[12] ^= 1
    for name, damaged, kind in (("header.pxz", bytes(bad_header), errors.FormatError),
                                ("cut.pxz", data[:-5], errors.TruncatedError)):
        (tmp_path / name).write_bytes(damaged)
        with pytest.raises(kind) as caught:
            Image.open(tmp_path / name)
        assert isinstance(caught.value, OSError) and not isinstance(caught.value, UnidentifiedImageError)
        assert name in str(caught.value)


def test_the_plugins_errors_survive_pickling_with_their_kind():
    e = pickle.loads(pickle.dumps(pixzip.pillow.CorruptError("x.pxz: checksum mismatch")))
    assert isinstance(e, errors.CorruptError) and isinstance(e, OSError) and str(e) == "x.pxz: checksum mismatch"


def test_the_level_model_and_method_options_change_the_file(model_dir):
    im = Image.open(PHOTO)
    by_level = {level: saved(im, level=level) for level in (1, 9)}
    assert by_level[1] != by_level[9]
    assert Image.open(io.BytesIO(by_level[1])).info["pxz_payload"] == "mixer"
    assert Image.open(io.BytesIO(by_level[9])).info["pxz_payload"] == "mixer+network"
    tiny = saved(im, model="tiny3", method="network", payload="coded")
    with Image.open(io.BytesIO(tiny)) as back:
        assert (back.info["pxz_model"], back.info["pxz_payload"]) == ("tiny3", "network")
        assert np.array_equal(np.asarray(back), photo())


def test_info_holds_the_archives_metadata_under_pillows_keys():
    with Image.open(FORMAT2 / "metadata.pxz") as im:
        assert len(im.info["icc_profile"]) == 512 and im.info["exif"] and im.info["xmp"]
        assert im.info["dpi"] == (300.0, 72.5)
        assert im.info["pxz_source_format"] == "TIFF" and im.info["pxz_version"] == 2
        assert im.text["Comment"] == "café" and im.info["Title"] == "golden"


def test_metadata_goes_into_the_archive_and_a_resave_keeps_it_and_the_original_format(tmp_path):
    png = tmp_path / "a.png"
    Image.fromarray(gradient()).save(png, dpi=(300, 300), exif=Image.Exif().tobytes())
    with Image.open(png) as im:
        im.save(tmp_path / "a.pxz", payload="raw")
    with Image.open(tmp_path / "a.pxz") as im:
        assert im.info["pxz_source_format"] == "PNG" and im.info["dpi"][0] == pytest.approx(300, abs=0.01)
        im.save(tmp_path / "b.pxz", payload="raw", icc_profile=b"an icc profile")
    with Image.open(tmp_path / "b.pxz") as im:
        assert im.info["pxz_source_format"] == "PNG" and im.info["icc_profile"] == b"an icc profile"
        assert im.info["dpi"][0] == pytest.approx(300, abs=0.01)


def test_strip_keeps_no_metadata(tmp_path):
    im = Image.fromarray(gradient())
    data = saved(im, payload="raw", strip=True, dpi=(300, 300), icc_profile=b"profile")
    info = Image.open(io.BytesIO(data)).info
    assert not {"dpi", "icc_profile", "exif", "xmp"} & set(info)
    assert len(data) < len(saved(im, payload="raw", dpi=(300, 300), icc_profile=b"profile"))


def test_saving_to_a_file_object_and_opening_from_one():
    pixels = gradient(9, 7, 3)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PXZ", level=1)
    buf.seek(0)
    with Image.open(buf) as im:
        assert im.format == "PXZ" and np.array_equal(np.asarray(im), pixels)


def test_an_image_pixzip_does_not_keep_is_refused_at_save_and_no_file_is_left(tmp_path):
    path = tmp_path / "cmyk.pxz"
    with pytest.raises(errors.ImageError) as caught:
        Image.new("CMYK", (4, 4)).save(path)
    assert isinstance(caught.value, OSError) and "CMYK" in str(caught.value)
    assert not path.exists()


def test_save_all_refuses_several_frames_by_name_and_saves_one(tmp_path):
    frames = [Image.fromarray(gradient()), Image.fromarray(photo())]
    with pytest.raises(errors.ImageError, match="2 frames"):
        frames[0].save(tmp_path / "two.pxz", save_all=True, append_images=frames[1:])
    assert not (tmp_path / "two.pxz").exists()
    frames[1].save(tmp_path / "one.pxz", save_all=True, payload="raw")
    with Image.open(tmp_path / "one.pxz") as im:
        assert np.array_equal(np.asarray(im), photo())


def test_other_files_are_opened_by_pillow_as_before(tmp_path):
    Image.fromarray(gradient()).save(tmp_path / "a.png")
    with Image.open(tmp_path / "a.png") as im:
        assert im.format == "PNG"
    (tmp_path / "png-named.pxz").write_bytes((tmp_path / "a.png").read_bytes())
    with Image.open(tmp_path / "png-named.pxz") as im:
        assert im.format == "PNG"                        # the magic decides, not the name
    (tmp_path / "junk.pxz").write_bytes(b"PXZ!" + bytes(40))
    with pytest.raises(UnidentifiedImageError):
        Image.open(tmp_path / "junk.pxz")
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(b"not an image at all"), formats=["PXZ"])


def mypy(tmp_path, *files) -> subprocess.CompletedProcess:
    """mypy on ``files`` as on a user's code: pixzip is read for its types (py.typed) and its own
    modules are not checked (``--follow-imports=silent``, as for an installed package)."""
    pytest.importorskip("mypy")
    return subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-error-summary",
                           "--cache-dir", str(tmp_path / "mypy-cache"), *map(str, files)],
                          capture_output=True, text=True, cwd=ROOT)


def test_mypy_accepts_a_typed_user_script_of_the_public_api_and_the_plugin(tmp_path):
    done = mypy(tmp_path, ROOT / "tests" / "typing_check.py", ROOT / "pixzip" / "pillow.py")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_sees_the_public_signatures_and_refuses_a_wrong_call(tmp_path):
    """The public functions are typed, not Any: a wrong argument or result is an error."""
    script = tmp_path / "wrong.py"
    script.write_text("import numpy as np\nimport pixzip\n"
                      "pixzip.compress(np.zeros((2, 2), np.uint8), level='9')\n"
                      "n: int = pixzip.decompress(b'')\n")
    out = mypy(tmp_path, script).stdout
    assert 'Argument "level" to "compress" has incompatible type "str"' in out
    assert "wrong.py:4: error: Incompatible types in assignment" in out


def test_the_typed_user_script_runs(capsys):
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import typing_check
        typing_check.main()
    finally:
        sys.path.remove(str(ROOT / "tests"))
    assert "truncated" in capsys.readouterr().out
