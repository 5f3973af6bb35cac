"""Every image file users have is read to the exact picture it holds and
written back to the same picture, or refused by name in the user's words:
the file, what it is ("a CMYK TIFF", "an animated GIF of 3 frames"), and
what to do; never converted, never reduced to its first frame, and no
message names Pillow's internals."""
import io
import re
import struct
from dataclasses import replace

import imagecodecs
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, PngImagePlugin

from pixzip.codec.format import picture as pictures
from pixzip.codec.format.images import encode_picture_file, read_picture_file
from pixzip.codec.format.metadata import Metadata, missing
from pixzip.errors import ImageError

# what a message must never say: Pillow's names of modes and errors
PILLOW_INTERNALS = re.compile(r"mode [A-Z1]|I;16|RGB;16|UnidentifiedImageError|rawmode|Traceback")


def saved(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def palette_image(indices: np.ndarray, colours: bytes) -> Image.Image:
    im = Image.fromarray(indices, "P")
    im.putpalette(colours, "RGB")
    return im


# ------------------------------------------------------------------ files of every mode pixzip keeps
@st.composite
def samples(draw, channels: int, top: int = 255, dtype=np.uint8):
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    a = np.random.default_rng(seed).integers(0, top + 1, (h, w, channels)).astype(dtype)
    return a


@st.composite
def palette_samples(draw, power_of_two: bool = False):
    n = 1 << draw(st.integers(1, 8)) if power_of_two else draw(st.integers(1, 256))
    a = draw(samples(1, n - 1))
    colours = draw(st.binary(min_size=3 * n, max_size=3 * n))
    return a, colours


def make(kind: str, a, fmt: str) -> bytes:
    """A file of ``fmt`` holding the samples ``a`` as the kind says, made by
    Pillow or, for 16-bit RGB (Pillow writes no such file), by imagecodecs."""
    if kind == "RGB;16" and fmt == "PPM":
        return b"P6\n%d %d\n65535\n" % (a.shape[1], a.shape[0]) + a.astype(">u2").tobytes()
    if kind == "RGB;16":
        return imagecodecs.png_encode(a) if fmt == "PNG" else imagecodecs.tiff_encode(a)
    if kind == "I;16":
        return saved(Image.frombytes("I;16", (a.shape[1], a.shape[0]), a.astype("<u2").tobytes()), fmt)
    if kind == "1":
        return saved(Image.fromarray(a[..., 0].astype(bool)), fmt)
    if kind in ("P", "P+tRNS", "P+index"):
        indices, colours = a
        n = len(colours) // 3
        kw = {"transparency": bytes(range(255, 255 - n, -1))[:n]} if kind == "P+tRNS" else \
            {"transparency": n - 1} if kind == "P+index" else {}
        if fmt == "GIF":
            kw["optimize"] = False          # else Pillow keeps only the colours used
        return saved(palette_image(indices[..., 0], colours), fmt, **kw)
    if kind == "L+tRNS":
        return saved(Image.fromarray(a[..., 0]), fmt, transparency=int(a[0, 0, 0]))
    if kind == "RGB+tRNS":
        return saved(Image.fromarray(a), fmt, transparency=tuple(int(v) for v in a[0, 0]))
    extra = {"WEBP": {"lossless": True, "exact": True}}.get(fmt, {})
    return saved(Image.fromarray(a[..., 0] if kind == "L" else a, kind), fmt, **extra)


PIXELS = {"1": samples(1, 1), "L": samples(1), "LA": samples(2), "RGB": samples(3), "RGBA": samples(4),
          "I;16": samples(1, 65535, np.uint16), "RGB;16": samples(3, 65535, np.uint16),
          "P": palette_samples(), "P+tRNS": palette_samples(), "P+index": palette_samples(power_of_two=True),
          "L+tRNS": samples(1), "RGB+tRNS": samples(3)}
# (kind, format) that a file holds, and pixzip keeps and writes back in the same format
KEPT = [(k, "PNG") for k in PIXELS] + \
    [(k, "TIFF") for k in ("1", "L", "LA", "RGB", "RGBA", "I;16", "RGB;16")] + \
    [(k, "BMP") for k in ("1", "L", "RGB", "P")] + [("P+index", "GIF")] + \
    [(k, "WEBP") for k in ("RGB", "RGBA")] + [(k, "PPM") for k in ("1", "L", "RGB", "I;16", "RGB;16")]


def expected(kind: str, a) -> tuple[str, np.ndarray]:
    mode = kind.split("+")[0]
    pixels = a[0] if mode == "P" else a
    return mode, pixels


@pytest.mark.parametrize("kind, fmt", KEPT)
def test_every_kind_of_file_is_read_to_its_picture_and_written_back_to_the_same(kind, fmt):
    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(a=PIXELS[kind])
    def check(a):
        if kind.startswith("P"):
            colours = np.frombuffer(a[1], np.uint8).reshape(-1, 3)
            # Pillow reads a BMP of gray colours as gray (L or 1-bit), and writes a GIF's equal colours as one
            assume(fmt != "BMP" or not (colours == colours[:, :1]).all())
            assume(fmt != "GIF" or len(np.unique(colours, axis=0)) == len(colours))
        data = make(kind, a, fmt)
        name = f"x.{fmt.lower()}"
        p, md = read_picture_file(name, data)
        mode, pixels = expected(kind, a)
        assert p.mode == mode and p.pixels.shape == pixels.shape and np.array_equal(p.pixels, pixels)
        assert p.pixels.dtype == (np.uint16 if mode in pictures.SIXTEEN_BIT else np.uint8)
        if mode == "P" and fmt == "PNG":
            assert p.palette == a[1]                  # the palette in its order, as many colours as it had
        if "+" in kind:
            assert p.transparency is not None
        for out in {fmt, "PNG"}:
            written = encode_picture_file(p, out, md, f"y.{out.lower()}")
            back, _ = read_picture_file(f"y.{out.lower()}", written)
            assert pictures.same(back, p)
    check()


def test_a_1x1_picture_of_every_mode_is_kept_through_png():
    for kind in PIXELS:
        a = (np.zeros((1, 1, 1), np.uint8), b"\x01\x02\x03") if kind.startswith("P") else \
            np.zeros((1, 1, pictures.CHANNELS[kind.split("+")[0]]),
                     np.uint16 if kind in pictures.SIXTEEN_BIT else np.uint8)
        p, md = read_picture_file("one.png", make(kind, a, "PNG"))
        back, _ = read_picture_file("y.png", encode_picture_file(p, "PNG", md, "y.png"))
        assert pictures.same(back, p), kind


def test_16_bit_rgb_keeps_its_metadata_through_png():
    a = np.random.default_rng(1).integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "sixteen")
    shell = saved(Image.new("RGB", (7, 5)), "PNG", icc_profile=icc, dpi=(300, 300), pnginfo=info)
    from pixzip.codec.format.source_check import swap_png_pixels
    p, md = read_picture_file("deep.png", swap_png_pixels(shell, imagecodecs.png_encode(a)))
    assert p.mode == "RGB;16" and np.array_equal(p.pixels, a)
    assert md.icc == icc and round(md.dpi[0]) == 300 and ("Title", "sixteen") in md.text
    back, back_md = read_picture_file("y.png", encode_picture_file(p, "PNG", md, "y.png"))
    assert pictures.same(back, p) and back_md == md


def tiff_rgb16(a, orientation=None) -> bytes:
    """An uncompressed 16-bit RGB TIFF written by hand, with an Orientation tag if given."""
    h, w, _ = a.shape
    pix = a.astype("<u2").tobytes()
    entries = [(256, 4, w), (257, 4, h), (258, 3, None), (259, 3, 1), (262, 3, 2), (273, 4, None),
               (274, 3, orientation), (277, 3, 3), (278, 4, h), (279, 4, len(pix)), (284, 3, 1)]
    entries = [e for e in entries if e[2] is not None or e[0] in (258, 273)]
    bps_at = 8 + 2 + 12 * len(entries) + 4
    out = b"II*\0" + struct.pack("<IH", 8, len(entries))
    for tag, typ, val in entries:
        if tag == 258:
            out += struct.pack("<HHII", tag, 3, 3, bps_at)
        elif typ == 3:
            out += struct.pack("<HHIHH", tag, 3, 1, val if tag != 273 else bps_at + 6, 0)
        else:
            out += struct.pack("<HHII", tag, 4, 1, bps_at + 6 if tag == 273 else val)
    return out + struct.pack("<I", 0) + struct.pack("<HHH", 16, 16, 16) + pix


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_16_bit_rgb_tiff_is_turned_by_its_orientation_as_pillow_turns_every_tiff(orientation):
    a = np.random.default_rng(orientation).integers(0, 65536, (3, 5, 3), dtype=np.uint16)
    data = tiff_rgb16(a, orientation)
    p, md = read_picture_file("turned.tif", data)       # checked against Pillow's (8-bit) view inside
    with Image.open(io.BytesIO(data)) as im:
        assert np.array_equal(p.pixels >> 8, np.asarray(im)) and p.mode == "RGB;16"
    assert sorted(p.pixels.ravel()) == sorted(a.ravel())
    assert (274, orientation) in md.tiff_tags


def test_a_single_frame_gif_keeps_its_palette_order_and_transparent_index():
    rng = np.random.default_rng(2)
    colours = bytes(rng.integers(0, 256, 48, dtype=np.uint8))
    data = saved(palette_image(rng.integers(0, 16, (9, 8), dtype=np.uint8), colours), "GIF", transparency=5)
    p, md = read_picture_file("g.gif", data)
    assert p.mode == "P" and p.palette == colours and p.transparency == 5
    for fmt in ("GIF", "PNG"):
        back, _ = read_picture_file("y", encode_picture_file(p, fmt, md, f"y.{fmt.lower()}"))
        assert pictures.same(back, p)


# ------------------------------------------------------------------ what cannot be written is named
@pytest.mark.parametrize("kind, fmt, needle", [
    ("RGB;16", "BMP", "BMP cannot keep 16-bit samples; choose .png"),
    ("I;16", "WEBP", "WEBP cannot keep 16-bit samples; choose .png"),
    ("RGBA", "BMP", "BMP cannot keep alpha; choose .png"),
    ("RGB", "GIF", "GIF is lossy"),
    ("P+tRNS", "GIF", "GIF cannot keep an alpha for each palette colour"),
    ("L+tRNS", "TIFF", "TIFF cannot keep this image's transparency exactly; choose .png"),
])
def test_a_format_that_cannot_keep_a_picture_is_refused_by_name(kind, fmt, needle):
    a = (np.zeros((2, 3, 1), np.uint8), bytes(range(12))) if kind.startswith("P") else \
        np.ones((2, 3, pictures.CHANNELS[kind.split("+")[0]]), np.uint16 if kind in pictures.SIXTEEN_BIT else np.uint8)
    p, md = read_picture_file("x.png", make(kind, a, "PNG"))
    with pytest.raises(ImageError) as e:
        encode_picture_file(p, fmt, md, "photo.out")
    assert str(e.value).startswith("photo.out: ") and needle in str(e.value)
    assert not PILLOW_INTERNALS.search(str(e.value))


# ------------------------------------------------------------------ refused by name, in the user's words
def frames(fmt: str, n: int, **kw) -> bytes:
    ims = [palette_image(np.full((4, 4), i, np.uint8), bytes(range(48))) for i in range(n)]
    return saved(ims[0], fmt, save_all=True, append_images=ims[1:], **kw)


REFUSED = {
    "photo.tif": (lambda: saved(Image.new("CMYK", (4, 4)), "TIFF"), "a CMYK TIFF", "convert it to RGB yourself"),
    "photo.jpg": (lambda: saved(Image.new("CMYK", (4, 4)), "JPEG"), "a CMYK JPEG", "convert it to RGB yourself"),
    "anim.gif": (lambda: frames("GIF", 12), "an animated GIF of 12 frames", "never only the first frame"),
    "anim.png": (lambda: frames("PNG", 3), "an animated PNG (APNG) of 3 frames", "never only the first frame"),
    "pages.tif": (lambda: frames("TIFF", 2), "a TIFF of 2 pages", "never only the first frame"),
    "float.tif": (lambda: saved(Image.new("F", (4, 4)), "TIFF"), "a 32-bit gray TIFF of floating-point samples",
                  "keep the original"),
    "int.tif": (lambda: saved(Image.new("I", (4, 4)), "TIFF"), "a 32-bit gray TIFF of signed integer samples",
                "keep the original"),
    "rgba16.png": (lambda: imagecodecs.png_encode(np.zeros((3, 3, 4), np.uint16)), "a 16-bit RGBA PNG",
                   "16-bit alpha is not kept"),
    "la16.png": (lambda: imagecodecs.png_encode(np.zeros((3, 3, 2), np.uint16)), "a 16-bit gray and alpha PNG",
                 "16-bit alpha is not kept"),
    "rgba16.tif": (lambda: imagecodecs.tiff_encode(np.zeros((3, 3, 4), np.uint16)), "a 16-bit RGB TIFF with alpha",
                   "16-bit alpha is not kept"),
    "ycbcr.tif": (lambda: saved(Image.new("YCbCr", (4, 4)), "TIFF"), "a YCbCr TIFF", "convert it to RGB yourself"),
    "lab.tif": (lambda: saved(Image.new("LAB", (4, 4)), "TIFF"), "a Lab TIFF", "convert it to RGB yourself"),
    "empty.png": (lambda: b"", "empty file", "not an image file pixzip can read"),
    "notes.png": (lambda: b"shopping list\nmilk\n", "not an image file pixzip can read", "it looks like text"),
    "photo.png": (lambda: b"PXZ\0" + bytes(40), "not an image file pixzip can read", "a pixzip archive (.pxz)"),
    "cut.png": (lambda: saved(Image.new("RGB", (40, 40)), "PNG")[:30], "a damaged or cut-short PNG", None),
    "noise.png": (lambda: bytes(range(256)), "not an image file pixzip can read", None),
}


@pytest.mark.parametrize("name", REFUSED)
def test_a_file_pixzip_does_not_keep_is_refused_naming_the_file_what_it_is_and_what_to_do(name):
    make_file, kind, advice = REFUSED[name]
    try:
        data = make_file()
    except (OSError, ValueError, KeyError):
        pytest.skip(f"this Pillow cannot write {name}")
    with pytest.raises(ImageError) as e:
        read_picture_file(name, data)
    line = str(e.value)
    assert line.startswith(f"{name}: ") and "\n" not in line
    for needle in (kind, advice):
        assert needle is None or needle in line, (needle, line)
    assert not PILLOW_INTERNALS.search(line), line


def test_a_refusal_says_what_pixzip_keeps():
    with pytest.raises(ImageError, match="pixzip keeps 1-bit, 8-bit gray and RGB .* and 16-bit gray and RGB images "
                                         "exactly and converts nothing"):
        read_picture_file("photo.tif", saved(Image.new("CMYK", (4, 4)), "TIFF"))


# ------------------------------------------------------------------ lossy sources are named
@pytest.mark.parametrize("fmt, kw, lossy", [
    ("JPEG", {"quality": 80}, "a JPEG"),
    ("WEBP", {"quality": 50}, "a lossy WebP"),
    ("WEBP", {"lossless": True}, None),
    ("PNG", {}, None),
])
def test_a_lossily_coded_source_is_known_by_its_own_structure(fmt, kw, lossy):
    a = np.random.default_rng(3).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    _, md = read_picture_file("x", saved(Image.fromarray(a), fmt, **kw))
    assert md.lossy == lossy


def test_metadata_of_a_new_mode_is_kept_and_what_a_format_cannot_hold_is_named():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgba = Image.fromarray(np.random.default_rng(4).integers(0, 256, (4, 5, 4), dtype=np.uint8), "RGBA")
    exif = Image.Exif()
    exif[0x0110] = "a camera"
    p, md = read_picture_file("a.png", saved(rgba, "PNG", icc_profile=icc, exif=exif.tobytes(), dpi=(72, 72)))
    assert md.icc == icc and md.exif and md.dpi
    back, back_md = read_picture_file("y.png", encode_picture_file(p, "PNG", md, "y.png"))
    assert pictures.same(back, p) and back_md == md
    with pytest.raises(ImageError, match="y.webp: WEBP cannot keep the resolution; choose .png"):
        encode_picture_file(p, "WEBP", md, "y.webp")
    with pytest.raises(ImageError, match="y.tif: TIFF cannot keep EXIF; choose .png, or drop them with --strip"):
        encode_picture_file(p, "TIFF", md, "y.tif")
    back, back_md = read_picture_file("y.tif", encode_picture_file(p, "TIFF", replace(md, exif=None), "y.tif"))
    assert pictures.same(back, p) and back_md.icc == icc and missing(replace(md, exif=None), back_md) == []
    deep = pictures.from_array(np.ones((4, 5, 3), np.uint16))     # a 16-bit RGB TIFF is written by imagecodecs
    md = Metadata(icc=icc, dpi=(300.0, 300.0), tiff_tags=((270, b"a scan"), (305, b"a scanner")))
    back, back_md = read_picture_file("y.tif", encode_picture_file(deep, "TIFF", md, "y.tif"))
    assert pictures.same(back, deep) and missing(md, back_md) == []
    with pytest.raises(ImageError, match="y.tif: TIFF cannot keep XMP; choose .png"):
        encode_picture_file(deep, "TIFF", Metadata(xmp=b"<x:xmpmeta/>"), "y.tif")


# ------------------------------------------------------------------ the lossy warning
def test_compressing_a_jpeg_says_in_one_line_what_it_was_the_sizes_and_what_to_use_instead(tmp_path):
    from pixzip.app import files
    a = np.random.default_rng(5).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    src = tmp_path / "photo.jpg"
    Image.fromarray(a).save(src, quality=75)
    r = files.compress_file(str(src), level=1)
    line, = [w for w in r.warnings if "JPEG" in w]
    size = src.stat().st_size
    assert line.startswith(f"{src}: a JPEG of {size:,} B gives an archive of {r.out_bytes:,} B (")
    assert "keep the original, or transcode it losslessly with JPEG XL (cjxl photo.jpg photo.jxl)" in line


def test_compressing_a_lossy_webp_warns_and_a_lossless_one_does_not(tmp_path):
    from pixzip.app import files
    a = np.random.default_rng(6).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    for name, kw, warned in (("q.webp", {"quality": 60}, True), ("l.webp", {"lossless": True}, False)):
        Image.fromarray(a).save(tmp_path / name, **kw)
        r = files.compress_file(str(tmp_path / name), level=1)
        lines = [w for w in r.warnings if "lossy WebP" in w]
        assert len(lines) == warned and all("keep the original" in w and "cjxl" not in w for w in lines)


def test_the_cli_prints_the_lossy_warning(tmp_path):
    from click.testing import CliRunner
    from pixzip.cli.main import main
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(tmp_path / "p.jpg")
    r = CliRunner().invoke(main, ["compress", "-1", str(tmp_path / "p.jpg")])
    assert r.exit_code == 0 and "p.jpg: a JPEG of" in r.stderr and "cjxl p.jpg p.jxl" in r.stderr


# ------------------------------------------------------------------ through the command line, every mode
def pillow_view(path):
    """What Pillow reads of a file: mode, size, samples, palette, transparency
    (16-bit RGB, which Pillow reads as 8-bit, by imagecodecs)."""
    with Image.open(path) as im:
        im.load()
        if im.mode == "RGB" and path.suffix == ".png" and path.read_bytes()[24] == 16:
            a = imagecodecs.png_decode(path.read_bytes())
        else:
            a = np.asarray(im)
        return (im.mode, im.size, a.dtype.str, a.tobytes(), im.getpalette() if im.mode == "P" else None,
                im.info.get("transparency"))


CLI_KINDS = {"RGBA": "PNG", "LA": "PNG", "P": "PNG", "P+tRNS": "PNG", "P+index": "GIF", "1": "PNG",
             "I;16": "PNG", "RGB;16": "PNG", "L+tRNS": "PNG", "RGB+tRNS": "PNG", "RGBA ": "TIFF", "1 ": "BMP",
             "I;16 ": "TIFF", "RGB;16 ": "TIFF"}


@pytest.mark.parametrize("kind", CLI_KINDS)
def test_every_mode_survives_compress_then_decompress_as_pillow_reads_it(tmp_path, kind):
    from click.testing import CliRunner
    from pixzip.cli.main import main
    fmt, kind = CLI_KINDS[kind], kind.strip()
    rng = np.random.default_rng(len(kind))
    mode = kind.split("+")[0]
    if mode == "P":
        n = 16 if fmt == "GIF" else 11
        a = (rng.integers(0, n, (9, 7, 1), dtype=np.uint8), bytes(rng.permutation(256)[:3 * n].astype(np.uint8)))
    else:
        top = 65535 if mode in pictures.SIXTEEN_BIT else 1 if mode == "1" else 255
        a = rng.integers(0, top + 1, (9, 7, pictures.CHANNELS[mode])).astype(
            np.uint16 if mode in pictures.SIXTEEN_BIT else np.uint8)
    src = tmp_path / f"x.{fmt.lower()}"
    src.write_bytes(make(kind, a, fmt))
    out = tmp_path / f"y.{fmt.lower()}"
    run = CliRunner().invoke
    r = run(main, ["compress", "-1", str(src)])
    assert r.exit_code == 0, r.output
    r = run(main, ["decompress", f"{src}.pxz", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert pillow_view(out) == pillow_view(src)
    assert run(main, ["test", f"{src}.pxz"]).exit_code == 0     # test passes what decompress writes


def test_a_palette_of_rgba_colours_is_written_as_png_and_read_back_as_the_same_colours_and_alphas():
    rng = np.random.default_rng(8)
    colours = bytes(rng.integers(0, 256, 4 * 6, dtype=np.uint8))
    p = pictures.Picture(rng.integers(0, 6, (4, 5, 1), dtype=np.uint8), "P", colours, "RGBA")
    back, _ = read_picture_file("y.png", encode_picture_file(p, "PNG", Metadata(), "y.png"))
    rgba = np.frombuffer(colours, np.uint8).reshape(6, 4)
    assert back.palette == rgba[:, :3].tobytes() and bytes(back.transparency) == rgba[:, 3].tobytes()
    assert np.array_equal(back.pixels, p.pixels)


def test_rm_removes_a_file_of_a_new_mode_only_once_its_archive_restores_it(tmp_path):
    from click.testing import CliRunner
    from pixzip.cli.main import main
    run = CliRunner().invoke
    rgba = np.random.default_rng(9).integers(0, 256, (6, 5, 4), dtype=np.uint8)
    src = tmp_path / "icon.png"
    Image.fromarray(rgba, "RGBA").save(src)
    view = pillow_view(src)
    r = run(main, ["compress", "-1", "--rm", str(src)])
    assert r.exit_code == 0 and not src.exists(), r.output
    assert run(main, ["decompress", f"{src}.pxz"]).exit_code == 0 and pillow_view(src) == view
    # a 16-bit RGB TIFF's Orientation: its own format, as pixzip writes it, cannot hold it again
    turned = tmp_path / "turned.tif"
    before = tiff_rgb16(np.ones((3, 4, 3), np.uint16), orientation=6)
    turned.write_bytes(before)
    r = run(main, ["compress", "-1", "--rm", str(turned)])
    assert r.exit_code == 1 and turned.read_bytes() == before and not (tmp_path / "turned.tif.pxz").exists()
    assert "turned.tif: TIFF cannot keep the TIFF tags Orientation;" in r.stderr and "without --rm" in r.stderr
