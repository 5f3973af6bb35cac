"""The source file is never lost: samples pixzip does not keep exactly are
refused by name (Pillow reads a 4-bit gray PNG as 8-bit gray), 16-bit RGB
is read exactly (Pillow reads it as 8-bit RGB), PNG chunks and
TIFF tags that Pillow reads past are kept or named, and --rm removes an input
only when what pixzip keeps restores it, or when the user named what is
dropped with --strip."""
import io
import struct
import zlib

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, TiffImagePlugin, features
from pixzip.cli.main import main

from pixzip.codec import api as codec
from pixzip.codec.format import container
from pixzip.codec.format.images import encode_file, read_image_file, read_picture_file
from pixzip.codec.format.source_check import png_chunks, tiff_tags


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def chunk(cid, data):
    return struct.pack(">I", len(data)) + cid + data + struct.pack(">I", zlib.crc32(cid + data))


def png(pixels, depth=8, colour=2, before=(), after=()):
    """A PNG written by hand: ``before``/``after`` are (type, data) chunks around IDAT."""
    h, w = pixels.shape[:2]
    dt = ">u2" if depth == 16 else np.uint8
    raw = b"".join(b"\0" + pixels[y].astype(dt).tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0))
            + b"".join(chunk(c, d) for c, d in before) + chunk(b"IDAT", zlib.compress(raw))
            + b"".join(chunk(c, d) for c, d in after) + chunk(b"IEND", b""))


def tiff_rgb16(a):
    """A 16-bit RGB TIFF written by hand (Pillow reads it as 8-bit RGB)."""
    h, w, _ = a.shape
    pix = a.astype("<u2").tobytes()
    entries = [(256, w), (257, h), (258, None), (259, 1), (262, 2), (273, None), (277, 3), (278, h),
               (279, len(pix)), (284, 1)]
    bps_at = 8 + 2 + 12 * len(entries) + 4
    out = b"II*\0" + struct.pack("<IH", 8, len(entries))
    for tag, val in entries:
        if tag == 258:
            out += struct.pack("<HHII", tag, 3, 3, bps_at)
        else:
            out += struct.pack("<HHII", tag, 4 if tag in (273, 279) else 3, 1, bps_at + 6 if tag == 273 else val)
    return out + struct.pack("<I", 0) + struct.pack("<HHH", 16, 16, 16) + pix


def bmp16(a):
    """A 16-bit (5-5-5) BMP written by hand (Pillow reads it as 8-bit RGB)."""
    h, w = a.shape
    pix = a.astype("<u2").tobytes()           # rows of 12 bytes: no padding
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 16, 0, len(pix), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + len(pix), 0, 0, 14 + len(info)) + info + pix


rng = np.random.default_rng(7)
RGB = rng.integers(0, 256, (8, 9, 3), dtype=np.uint8)


def untouched(tmp_path, name, before, result, *needles):
    """exit 1, the input as it was, no output left, one line naming it all"""
    assert result.exit_code == 1, result.output
    assert (tmp_path / name).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "models") == [name]
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in result.output
    for n in (name, *needles):
        assert n in line, (n, line)
    return line


NOT_KEPT = {
    "grey4.png": (lambda: png(np.zeros((4, 2), np.uint8), 4, 0), "a 4-bit gray PNG"),
    "rgba16.png": (lambda: png(rng.integers(0, 65536, (6, 5, 4), dtype=np.uint16), 16, 6), "a 16-bit RGBA PNG"),
    "rgb10.ppm": (lambda: b"P6\n5 4\n1023\n" + rng.integers(0, 1024, (4, 5, 3)).astype(">u2").tobytes(),
                  "a PPM with maxval 1023 (10-bit samples)"),
    "rgb100.ppm": (lambda: b"P6 5 4 100\n" + rng.integers(0, 101, (4, 5, 3)).astype(np.uint8).tobytes(),
                   "a PPM with maxval 100"),
    "rgb16.bmp": (lambda: bmp16(rng.integers(0, 65536, (4, 6), dtype=np.uint16)), "a 16-bit BMP"),
    "grey10.pgm": (lambda: b"P5\n5 4\n1023\n" + rng.integers(0, 1024, (4, 5)).astype(">u2").tobytes(),
                   "a PGM with maxval 1023"),
}


@pytest.mark.parametrize("name", NOT_KEPT)
def test_samples_pixzip_does_not_keep_exactly_are_refused_by_name_and_never_removed(tmp_path, model_dir, name):
    make, desc = NOT_KEPT[name]
    before = make()
    (tmp_path / name).write_bytes(before)
    untouched(tmp_path, name, before, run("compress", "-m", "tiny3", "--rm", tmp_path / name), desc,
              "pixzip keeps 1-bit, 8-bit gray and RGB", "converts nothing")
    untouched(tmp_path, name, before, run("compress", "-m", "tiny3", tmp_path / name), desc)


@pytest.mark.parametrize("name, make, shape", [
    ("rgb16.png", lambda a: png(a, 16, 2), (6, 5, 3)),
    ("grey16.png", lambda a: png(a[..., 0], 16, 0), (6, 5, 1)),
    ("rgb16.tif", tiff_rgb16, (4, 5, 3)),
    ("rgb16.ppm", lambda a: b"P6\n5 4\n65535\n" + a.astype(">u2").tobytes(), (4, 5, 3)),
    ("grey16.pgm", lambda a: b"P5\n5 4\n65535\n" + a.astype(">u2").tobytes(), (4, 5, 1)),
])
def test_16_bit_samples_that_pillow_reads_as_8_bit_are_read_exactly(name, make, shape):
    a = rng.integers(0, 65536, shape, dtype=np.uint16)
    picture, _ = read_picture_file(name, make(a))
    assert picture.mode == ("RGB;16" if shape[2] == 3 else "I;16") and np.array_equal(picture.pixels, a)


def test_an_8_bit_ppm_still_compresses_and_is_removed(tmp_path, model_dir):
    src = tmp_path / "p.ppm"
    src.write_bytes(b"P6\n9 8\n255\n" + RGB.tobytes())
    r = run("compress", "-m", "tiny3", "--rm", src)
    assert r.exit_code == 0 and not src.exists() and "warning" not in r.stderr


PNG_EXTRA_BEFORE = [(b"tIME", struct.pack(">HBBBBB", 2020, 1, 2, 3, 4, 5)), (b"sBIT", bytes([5, 6, 5])),
                    (b"bKGD", struct.pack(">HHH", 1, 2, 3)), (b"cHRM", bytes(range(32))),
                    (b"gAMA", (45455).to_bytes(4, "big")), (b"pHYs", struct.pack(">IIB", 2, 3, 0)),
                    (b"caBX", b"C2PA manifest")]
PNG_EXTRA_AFTER = [(b"prVt", b"app data")]


def names(data):
    return [(c, d) for c, d, _ in png_chunks(data)[0] if c not in (b"IDAT", b"IHDR", b"IEND")]


def test_png_chunks_pillow_reads_past_are_kept_and_rm_is_safe(tmp_path, model_dir):
    src = tmp_path / "c.png"
    before = png(RGB, before=PNG_EXTRA_BEFORE, after=PNG_EXTRA_AFTER)
    src.write_bytes(before)
    r = run("compress", "-m", "tiny3", "--rm", src)
    assert r.exit_code == 0 and "warning" not in r.stderr and not src.exists()
    assert "PNG chunks (tIME, sBIT, bKGD, cHRM, gAMA, pHYs, caBX, prVt)" in run("info", f"{src}.pxz").output
    assert run("decompress", f"{src}.pxz").exit_code == 0
    back = src.read_bytes()
    assert names(back) == PNG_EXTRA_BEFORE + PNG_EXTRA_AFTER
    assert [c for c, _, after in png_chunks(back)[0] if after] == [b"prVt", b"IEND"]
    assert np.array_equal(np.asarray(Image.open(src)), RGB)
    # a format that cannot hold them is refused by name, unless --strip
    r = run("decompress", f"{src}.pxz", "-o", tmp_path / "c.tif")
    assert r.exit_code == 1 and "cannot keep the PNG chunks tIME, sBIT" in r.stderr
    assert not (tmp_path / "c.tif").exists()
    assert run("decompress", f"{src}.pxz", "-o", tmp_path / "c.tif", "--strip").exit_code == 0


def test_an_archive_without_such_chunks_is_the_same_bytes():
    plain = codec.compress(RGB, payload="raw", metadata=codec.Metadata(format="PNG"))
    h = container.parse(plain)[0]
    assert h.chunks == ()
    with_chunks = codec.compress(RGB, payload="raw", metadata=read_image_file(
        "x.png", png(RGB, before=PNG_EXTRA_BEFORE))[1])
    assert [t for t, _ in container.parse(with_chunks)[0].chunks] == [b"PNGC"]


def tags_tif(path, **tags):
    t = TiffImagePlugin.ImageFileDirectory_v2()
    for k, v in tags.items():
        t[int(k[1:])] = v
    Image.fromarray(RGB).save(path, tiffinfo=t)
    return path.read_bytes()


def test_tiff_orientation_and_strings_are_kept_and_rm_is_safe(tmp_path, model_dir):
    src = tmp_path / "t.tif"
    tags_tif(src, t274=6, t269="doc", t316="host", t33432="(c) me", t270="a description", t315="an artist")
    with Image.open(src) as im:
        shown = np.asarray(im)        # Pillow turns it by its Orientation
    r = run("compress", "-m", "tiny3", "--rm", src)
    assert r.exit_code == 0 and "warning" not in r.stderr and not src.exists()
    assert "TIFF tags (DocumentName, ImageDescription, Orientation 6, Artist, HostComputer, Copyright)" \
        in run("info", f"{src}.pxz").output
    assert run("decompress", f"{src}.pxz").exit_code == 0
    tags = tiff_tags(src.read_bytes())
    assert tags[274][1] == struct.pack("<H", 6)
    assert {t: tags[t][1] for t in (269, 270, 315, 316, 33432)} == {
        269: b"doc\0", 270: b"a description\0", 315: b"an artist\0", 316: b"host\0", 33432: b"(c) me\0"}
    with Image.open(src) as im:
        assert im.size == (8, 9) and np.array_equal(np.asarray(im), shown)
    # PNG shows the image turned as the TIFF did; the strings it cannot hold are refused by name
    r = run("decompress", f"{src}.pxz", "-o", tmp_path / "t.png")
    assert r.exit_code == 1 and "cannot keep the TIFF tags DocumentName, ImageDescription, Artist" in r.stderr
    assert run("decompress", f"{src}.pxz", "-o", tmp_path / "t.png", "--strip").exit_code == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "t.png")), shown)


def test_what_is_dropped_stops_rm_unless_strip_names_it(tmp_path, model_dir):
    src = tmp_path / "d.tif"
    before = tags_tif(src, t285="a page", t65000="private")
    r = run("compress", "-m", "tiny3", "--rm", src)
    untouched(tmp_path, "d.tif", before, r, "pixzip does not keep TIFF tag 65000", "without --rm", "--strip")
    r = run("compress", "-m", "tiny3", src)      # without --rm: compressed, every dropped item named
    assert r.exit_code == 0 and "not kept: TIFF tag 65000" in r.stderr and src.read_bytes() == before
    r = run("compress", "-m", "tiny3", "-f", "--rm", "--strip", src)
    assert r.exit_code == 0 and not src.exists()
    assert "dropped (--strip):" in r.stderr and "TIFF tags (PageName)" in r.stderr and "TIFF tag 65000" in r.stderr


@pytest.mark.parametrize("name, extra, needle", [
    ("t.png", b"appended", "8 bytes after the PNG's end (IEND)"),
    ("c.ppm", None, "1 comment of the PPM header"),
])
def test_bytes_pillow_ignores_are_named_and_stop_rm(tmp_path, model_dir, name, extra, needle):
    src = tmp_path / name
    before = png(RGB) + extra if extra else b"P6\n# made by hand\n9 8\n255\n" + RGB.tobytes()
    src.write_bytes(before)
    untouched(tmp_path, name, before, run("compress", "-m", "tiny3", "--rm", src), needle)


def lossy_sources(tmp_path):
    out = {}
    Image.fromarray(RGB).save(tmp_path / "q.webp", quality=50)
    out["q.webp"] = "this WebP is lossy"
    Image.fromarray(RGB).save(tmp_path / "j.tif", compression="jpeg")
    out["j.tif"] = "this TIFF is JPEG-compressed"
    if features.check("avif"):
        Image.fromarray(RGB).save(tmp_path / "a.avif")
        out["a.avif"] = "AVIF is lossy"
    if features.check("jpg_2000"):
        Image.fromarray(RGB).save(tmp_path / "k.jp2")
        out["k.jp2"] = "JPEG 2000 may be lossy"
    return out


def test_lossy_sources_are_never_removed(tmp_path, model_dir):
    for name, needle in lossy_sources(tmp_path).items():
        d = tmp_path / name.replace(".", "_")
        d.mkdir()
        (tmp_path / name).rename(d / name)
        before = (d / name).read_bytes()
        untouched(d, name, before, run("compress", "-m", "tiny3", "--rm", d / name), needle, "without --rm")
        assert run("compress", "-m", "tiny3", d / name).exit_code == 0 and (d / name).read_bytes() == before


def test_a_lossless_webp_is_still_removed(tmp_path, model_dir):
    src = tmp_path / "l.webp"
    Image.fromarray(RGB).save(src, lossless=True)
    assert run("compress", "-m", "tiny3", "--rm", src).exit_code == 0 and not src.exists()


def test_an_icc_profile_over_pillows_limit_is_named(tmp_path, model_dir):
    src = tmp_path / "big.png"
    before = png(RGB, before=[(b"iCCP", b"big\0\0" + zlib.compress(bytes(2 << 20)))])
    src.write_bytes(before)
    untouched(tmp_path, "big.png", before, run("compress", "-m", "tiny3", "--rm", src),
              "the ICC profile is over the 1 MB that Pillow reads")


def test_a_damaged_chunk_structure_is_refused_by_name():
    data = png(RGB, before=[(b"prVt", b"x")])
    bad = data.replace(b"prVt", b"prVu")          # the CRC no longer matches: Pillow refuses it too
    with pytest.raises(Exception, match="not a readable image|damaged"):
        read_image_file("b.png", bad)
    lying = data[:33] + struct.pack(">I", 1 << 30) + data[37:]
    with pytest.raises(Exception, match="not a readable image|damaged"):
        read_image_file("b.png", lying)


chunk_name = st.tuples(st.sampled_from("abcdefghijklmnopqrstuvwxyz"), st.sampled_from("abcdefghijklmnopqrstuvwxyz"),
                       st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
                       st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")) \
    .map(lambda t: "".join(t).encode()).filter(lambda c: c not in (b"acTL", b"fcTL", b"fdAT"))
some_chunks = st.lists(st.tuples(chunk_name, st.binary(max_size=40)), max_size=5)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=some_chunks, after=some_chunks, grey=st.booleans())
def test_random_private_chunks_round_trip(before, after, grey):
    pixels = RGB[..., :1] if grey else RGB
    data = png(pixels[..., 0] if grey else pixels, colour=0 if grey else 2, before=before, after=after)
    px, md = read_image_file("r.png", data)
    archive = codec.compress(px, payload="raw", metadata=md)
    back_px, back_md = codec.decompress_with_metadata(archive)
    assert back_md == md and np.array_equal(back_px, pixels)
    out = encode_file(back_px, "PNG", back_md, "r.png")
    assert names(out) == before + after
    assert [c for c, _, a in png_chunks(out)[0] if a] == [c for c, _ in after] + [b"IEND"]
    with Image.open(io.BytesIO(out)) as im:
        assert np.array_equal(np.asarray(im).reshape(pixels.shape), pixels)


def test_an_icc_profile_keeps_its_name_and_png_text_its_language(tmp_path, model_dir):
    from PIL import ImageCms, PngImagePlugin
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "n.png"
    iccp = b"sRGB IEC61966-2.1\0\0" + zlib.compress(icc)
    src.write_bytes(png(RGB, before=[(b"iCCP", iccp)]))
    assert run("compress", "-m", "tiny3", "--rm", src).exit_code == 0 and not src.exists()
    assert run("decompress", f"{src}.pxz").exit_code == 0
    assert names(src.read_bytes()) == [(b"iCCP", iccp)]
    with Image.open(src) as im:
        assert im.info["icc_profile"] == icc
    info = PngImagePlugin.PngInfo()
    info.add_itxt("Title", "Titel", lang="de", tkey="Title")
    d = tmp_path / "lang"
    d.mkdir()
    Image.fromarray(RGB).save(d / "i.png", pnginfo=info)
    before = (d / "i.png").read_bytes()
    untouched(d, "i.png", before, run("compress", "-m", "tiny3", "--rm", d / "i.png"),
              "the language tag of PNG text 'Title'")


def test_rm_needs_the_inputs_own_format_to_hold_what_is_kept(tmp_path, model_dir):
    src = tmp_path / "m.tif"
    before = tags_tif(src, t269=b"two\0strings")     # Pillow's libtiff writer keeps only the first
    assert tiff_tags(before)[269][1] == b"two\0strings\0"
    untouched(tmp_path, "m.tif", before, run("compress", "-m", "tiny3", "--rm", src),
              "TIFF cannot keep the TIFF tags DocumentName", "not compressed with --rm")


def test_an_archive_whose_png_chunks_lie_is_refused_by_name():
    md = read_image_file("x.png", png(RGB, before=[(b"prVt", b"x")]))[1]
    archive = codec.compress(RGB, payload="raw", metadata=md)
    h, payload, crc = container.parse(archive)
    for lie in (b"IDAT", b"IEND"):
        chunks = tuple((t, d.replace(b"prVt", lie)) for t, d in h.chunks)
        bad = container.pack(container.Header(**{**h.__dict__, "chunks": chunks}), bytes(payload), crc)
        with pytest.raises(Exception, match="damaged metadata chunk"):
            codec.decompress_with_metadata(bad)


def test_a_tiffs_xmp_is_written_back_to_tiff(tmp_path, model_dir):
    src = tmp_path / "x.tif"
    tags_tif(src, t700=b"<x:xmpmeta/>")
    r = run("compress", "-m", "tiny3", "--rm", src)
    assert r.exit_code == 0 and "warning" not in r.stderr and not src.exists()
    assert run("decompress", f"{src}.pxz").exit_code == 0
    with Image.open(src) as im:
        assert im.info["xmp"] == b"<x:xmpmeta/>"
