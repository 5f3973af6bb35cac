"""Nothing is lost: one regression test per defect of issue 13, each of which
lost a user's data or made an archive undecodable before it was fixed."""
import io
import json
import struct
import zlib

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageCms
from pixzip.cli.main import main

from pixzip.codec import api as codec
from pixzip.codec.format import container

from .conftest import tiny_int_model


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def pixels(path):
    with Image.open(path) as im:
        a = np.asarray(im)
    return a


def photo_like(h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([yy * 3 + xx, 128 + (xx - yy), 200 - yy * 2], -1)
    return np.clip(base + rng.integers(-6, 7, (h, w, 3)), 0, 255).astype(np.uint8)


# 1. two inputs, one output, --rm
def test_two_inputs_that_map_to_one_name_keep_both_images(tmp_path, model_dir):
    a, b = photo_like(6, 7, 1), photo_like(6, 7, 2)
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "a.bmp")
    r = run("compress", "--rm", "-f", "-m", "tiny3", tmp_path / "a.png", tmp_path / "a.bmp")
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "a.pxz").exists()
    for name, want in (("a.png", a), ("a.bmp", b)):
        pxz = tmp_path / f"{name}.pxz"
        assert pxz.exists() and not (tmp_path / name).exists()
        assert run("info", pxz).output.count(f"original_format    {name[2:].upper()}") == 1
        assert run("decompress", pxz).exit_code == 0
        assert np.array_equal(pixels(tmp_path / name), want)
        with Image.open(tmp_path / name) as im:
            assert im.format == name[2:].upper()


def test_one_output_for_two_inputs_is_refused_before_any_work(tmp_path, model_dir):
    Image.fromarray(photo_like(4, 4)).save(tmp_path / "a.png")
    for args in (["a.png", "a.png"], ["a.png", "./a.png"]):
        r = CliRunner().invoke(main, ["compress", "--rm", "-m", "tiny3", *(str(tmp_path / a) for a in args)])
        assert r.exit_code == 1 and "would both be written to" in r.stderr
        assert (tmp_path / "a.png").exists() and not (tmp_path / "a.png.pxz").exists()


# 2. --rm with -c
def test_rm_with_stdout_keeps_the_input(tmp_path, model_dir):
    src = tmp_path / "c.png"
    Image.fromarray(photo_like(5, 5)).save(src)
    before = src.read_bytes()
    r = run("compress", "--rm", "-c", "-m", "tiny3", src)
    assert r.exit_code == 0 and r.stdout_bytes[:4] == b"PXZ\0"
    assert src.read_bytes() == before
    assert "--rm is ignored when writing to standard output" in r.stderr


# 3. archives made with your own model, exported under any file name
def test_own_model_under_any_file_name_decodes_with_no_flag(tmp_path, monkeypatch, network_payload):
    net = tiny_int_model(3, name="mine")
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "m.pxm").write_bytes(net.to_bytes())          # not called mine.pxm
    src = tmp_path / "x.png"
    img = photo_like(5, 6)
    Image.fromarray(img).save(src)
    monkeypatch.delenv("PIXZIP_MODELS", raising=False)
    assert run("compress", src, "-m", folder / "m.pxm").exit_code == 0
    pxz = tmp_path / "x.png.pxz"
    r = run("decompress", pxz, "-o", tmp_path / "y.png")
    assert r.exit_code == 1
    assert "needs model 'mine' (sha256 " in r.stderr and "PIXZIP_MODELS" in r.stderr and "-m" in r.stderr
    r = run("decompress", pxz, "-m", folder / "m.pxm", "-o", tmp_path / "y.png")   # the file named directly
    assert r.exit_code == 0, r.output
    assert np.array_equal(pixels(tmp_path / "y.png"), img)
    monkeypatch.setenv("PIXZIP_MODELS", str(folder))                               # or found by its own name
    r = run("decompress", pxz, "-o", tmp_path / "z.png")
    assert r.exit_code == 0, r.output
    assert np.array_equal(pixels(tmp_path / "z.png"), img)
    other = tiny_int_model(3, layers=1, name="mine")                                 # same name, other model
    (tmp_path / "other.pxm").write_bytes(other.to_bytes())
    r = run("decompress", pxz, "-m", tmp_path / "other.pxm", "-o", tmp_path / "w.png")
    assert r.exit_code == 1 and "needs model 'mine'" in r.stderr and not (tmp_path / "w.png").exists()


def test_export_names_the_file_after_the_model_and_never_overwrites(tmp_path, monkeypatch):
    import torch

    from .conftest import tiny_model
    ckpt = tmp_path / "ck.pt"
    model = tiny_model("gated", 3, 6, 2, 3).float()
    torch.save({"model_config": model.config.__dict__, "model": model.state_dict()}, ckpt)
    calib = tmp_path / "calib.png"
    Image.fromarray(photo_like(12, 12)).save(calib)
    monkeypatch.chdir(tmp_path)
    r = run("export", ckpt, "--name", "mine", "--calib", calib)
    assert r.exit_code == 0, r.output
    made = (tmp_path / "mine.pxm").read_bytes()
    (tmp_path / "mine.pxm").write_bytes(b"precious")
    r = run("export", ckpt, "--name", "mine", "--calib", calib)
    assert r.exit_code == 1 and "already exists" in r.stderr
    assert (tmp_path / "mine.pxm").read_bytes() == b"precious"
    assert run("export", ckpt, "--name", "mine", "--calib", calib, "-f").exit_code == 0
    assert (tmp_path / "mine.pxm").read_bytes() == made
    assert not list(tmp_path.glob(".*.tmp"))


# 4. no expansion
@pytest.mark.parametrize("shape", [(24, 24, 3), (1, 1, 3), (1, 40, 3), (40, 1, 1), (16, 16, 1)])
def test_noise_never_costs_more_than_the_raw_pixels_plus_the_header(shape):
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    data = codec.compress(img, tiny_int_model(shape[2]))
    header = len(data) - codec.read_header(data).payload_length
    assert len(data) <= img.size + header and header <= 48
    assert np.array_equal(codec.decompress(data), img)


def png_size(img):
    buf = io.BytesIO()
    Image.fromarray(img[..., 0] if img.shape[2] == 1 else img).save(buf, format="PNG", optimize=True)
    return len(buf.getvalue())


@pytest.mark.parametrize("kind", ["constant", "flat", "stripes", "gray-constant"])
def test_flat_and_synthetic_images_cost_at_most_twice_their_png(kind):
    yy, xx = np.mgrid[0:32, 0:48]
    img = {"constant": np.full((32, 48, 3), (12, 200, 7), np.uint8),
           "flat": np.stack([yy * 0 + 90, xx * 0 + 20, (yy > 15) * 255], -1).astype(np.uint8),
           "stripes": np.stack([(xx % 8) * 32, (yy % 4) * 64, xx * 0 + 3], -1).astype(np.uint8),
           "gray-constant": np.zeros((32, 48, 1), np.uint8)}[kind]
    net = tiny_int_model(img.shape[2])
    data = codec.compress(img, net)
    assert len(data) <= 2 * png_size(img), (len(data), png_size(img))
    assert np.array_equal(codec.decompress(data, net), img)


# 5. metadata
def image_with_metadata(path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010E] = "a test photo"
    exif[0x0132] = "2026:12:01 12:00:00"
    img = photo_like(9, 10)
    Image.fromarray(img).save(path, icc_profile=icc, exif=exif.tobytes(), dpi=(300, 300))
    return img


def test_icc_profile_exif_and_dpi_come_back_as_pillow_reads_them(tmp_path, model_dir):
    src = tmp_path / "p.png"
    img = image_with_metadata(src)
    with Image.open(src) as im:
        want = {k: im.info[k] for k in ("icc_profile", "exif", "dpi")}
    assert run("compress", "-m", "tiny3", src, "-o", tmp_path / "p.pxz").exit_code == 0
    info = run("info", tmp_path / "p.pxz").output
    assert "ICC profile (" in info and "EXIF (" in info and "resolution 300x300 dpi" in info
    assert run("decompress", tmp_path / "p.pxz", "-o", tmp_path / "back.png").exit_code == 0
    with Image.open(tmp_path / "back.png") as im:
        assert np.array_equal(np.asarray(im), img)
        assert im.info["icc_profile"] == want["icc_profile"]
        assert im.info["exif"] == want["exif"]
        assert im.info["dpi"] == pytest.approx(want["dpi"], abs=0.02)
        assert im.getexif()[0x010E] == "a test photo"


def test_strip_drops_the_metadata_on_request(tmp_path, model_dir):
    src = tmp_path / "p.png"
    img = image_with_metadata(src)
    assert run("compress", "-m", "tiny3", "--strip", src).exit_code == 0
    assert "metadata           none" in run("info", tmp_path / "p.png.pxz").output
    assert run("decompress", tmp_path / "p.png.pxz", "-o", tmp_path / "s.png").exit_code == 0
    with Image.open(tmp_path / "s.png") as im:
        assert np.array_equal(np.asarray(im), img) and "icc_profile" not in im.info and "exif" not in im.info


def test_a_format_that_cannot_keep_the_metadata_is_refused_by_name(tmp_path, model_dir):
    src = tmp_path / "p.png"
    img = image_with_metadata(src)
    assert run("compress", "-m", "tiny3", src).exit_code == 0
    r = run("decompress", tmp_path / "p.png.pxz", "-o", tmp_path / "p.bmp")
    assert r.exit_code == 1 and "BMP cannot keep the ICC profile and EXIF" in r.stderr
    assert not (tmp_path / "p.bmp").exists()
    r = run("decompress", tmp_path / "p.png.pxz", "-o", tmp_path / "p.bmp", "--strip")
    assert r.exit_code == 0 and np.array_equal(pixels(tmp_path / "p.bmp"), img)


# 6. the coder is pinned and named
def test_the_coder_is_pinned_and_named_in_the_header(network_payload):
    from importlib.metadata import requires, version
    pins = [r for r in requires("pixzip") if r.startswith("constriction")]
    assert pins == ["constriction==0.5.0"] and version("constriction") == "0.5.0"
    data = codec.compress(photo_like(3, 3), tiny_int_model(3), method="network")
    h = codec.read_header(data)
    assert h.coder == 1 and "constriction 0.5" in container.CODERS[h.coder]
    for level, method, kind, coder in ((1, "mixer+network", container.NETWORK, container.PARTS_CODER),
                                       (1, "mixer", container.MIXER, container.MIXER_CODER),
                                       (None, "mixer+network", container.NETWORK, container.PARTS6_CODER),
                                       (6, "mixer+network", container.NETWORK, container.PARTS3_CODER),
                                       (None, "mixer", container.MIXER, container.MIXER3_CODER)):
        h = codec.read_header(codec.compress(photo_like(3, 3), tiny_int_model(3), level=level, method=method))
        assert (h.kind, h.coder) == (kind, coder) and "context mixer" in container.CODERS[h.coder]


def test_an_unknown_coder_is_refused_by_name(network_payload):
    data = codec.compress(photo_like(3, 3), tiny_int_model(3))
    h, payload, crc = container.parse(data)
    bad = bytearray(data)
    bad[7] = 13                                  # the coder id byte, after magic, version, flags, kind
    end = len(data) - h.payload_length - 8
    bad[end:end + 4] = struct.pack("<I", zlib.crc32(bytes(bad[:end])))
    with pytest.raises(container.FormatError, match="unknown coder id 13"):
        codec.decompress(bytes(bad), tiny_int_model(3))


# 7. model files
def test_model_files_are_written_atomically(tmp_path, monkeypatch):
    net = tiny_int_model(3)
    target = tmp_path / "m.pxm"
    target.write_bytes(b"old model")

    from pathlib import Path
    write = Path.write_bytes

    def interrupted(self, data):   # half the file is written, then Ctrl-C
        write(self, data[:len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_bytes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        net.save(target)
    monkeypatch.undo()
    assert target.read_bytes() == b"old model" and not list(tmp_path.glob(".*.tmp"))


# 8. old files are protected: see test_golden.py (format 1 archives decode; 8-bit models are refused by name)
def test_model_files_of_another_format_are_refused_by_name(tmp_path):
    from pixzip.codec.network.modelfile import ModelFile
    from pixzip.errors import ModelFileError
    net = tiny_int_model(3)
    z = dict(np.load(io.BytesIO(net.to_bytes())))
    meta = json.loads(bytes(z.pop("__meta__")).decode())
    for fmt, message in (("pixzip-int-gated/3", r"made by a newer pixzip \(model format 3\)"),
                         ("something-else", "not a pixzip integer model")):
        buf = io.BytesIO()
        m = json.dumps({**meta, "format": fmt}).encode()
        np.savez(buf, __meta__=np.frombuffer(m, np.uint8), **z)
        with pytest.raises(ModelFileError, match=message):
            ModelFile.from_bytes(buf.getvalue())
    with pytest.raises(ModelFileError, match="not a readable pixzip model file"):
        ModelFile.from_bytes(net.to_bytes()[:1000])


@pytest.mark.parametrize("suffix, fmt", [(".tif", "TIFF"), (".webp", "WEBP"), (".ppm", "PPM"), (".bmp", "BMP")])
def test_decompress_writes_the_format_the_inner_suffix_names(tmp_path, model_dir, suffix, fmt):
    img = photo_like(7, 5)
    src = tmp_path / f"p{suffix}"
    Image.fromarray(img).save(src, **({"lossless": True} if fmt == "WEBP" else {}))
    assert run("compress", "-m", "tiny3", "--rm", src).exit_code == 0 and not src.exists()
    assert f"original_format    {fmt}" in run("info", tmp_path / f"p{suffix}.pxz").output
    r = run("decompress", tmp_path / f"p{suffix}.pxz")
    assert r.exit_code == 0, r.output
    with Image.open(src) as im:
        assert im.format == fmt and np.array_equal(np.asarray(im), img)
    (tmp_path / f"p{suffix}.pxz").rename(tmp_path / "bare.pxz")     # no image suffix left: the original format's
    assert run("decompress", tmp_path / "bare.pxz").exit_code == 0
    with Image.open(tmp_path / f"bare{ {'TIFF': '.tif', 'WEBP': '.webp', 'PPM': '.ppm', 'BMP': '.bmp'}[fmt]}") as im:
        assert im.format == fmt and np.array_equal(np.asarray(im), img)


def test_a_jpeg_is_never_removed_nor_rewritten_as_jpeg(tmp_path, model_dir):
    src = tmp_path / "j.jpg"
    Image.fromarray(photo_like(8, 8)).save(src, quality=90)
    before = src.read_bytes()
    r = run("compress", "-m", "tiny3", "--rm", src)
    assert r.exit_code == 1 and "JPEG is lossy" in r.stderr and src.read_bytes() == before
    assert run("compress", "-m", "tiny3", src).exit_code == 0
    src.unlink()
    r = run("decompress", tmp_path / "j.jpg.pxz")
    assert r.exit_code == 1 and "lossy" in r.stderr and "-o j.png" in r.stderr and not src.exists()
    assert run("decompress", tmp_path / "j.jpg.pxz", "-o", tmp_path / "j.png").exit_code == 0


# bounds of the decoder against lying headers (see also test_fuzz.py)
@pytest.mark.parametrize("method", ["network", "mixer+network", "mixer"])
@pytest.mark.parametrize("shape, strip", [((40, 33, 3), 0), ((40, 33, 3), 3), ((9, 70, 1), 1)])
def test_the_decoders_memory_estimate_bounds_what_it_allocates(shape, strip, method, network_payload):
    import tracemalloc

    from pixzip.codec import coders
    net = tiny_int_model(shape[2])
    img = photo_like(shape[0], shape[1])[..., :shape[2]].copy()
    data = codec.compress(img, net, method=method, options=codec.Options(strip_height=strip))
    codec.decompress(data, net)                     # compiled and cached before measuring
    tracemalloc.start()
    try:
        assert np.array_equal(codec.decompress(data, net), img)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    h, payload, _ = container.parse(data)
    coder = coders.for_header(h)
    estimate = coder.decode_memory(coder.frame(h, payload), net if coder.uses_network else None)
    assert peak <= estimate + (1 << 20) and estimate <= 4 * peak + (4 << 20), (peak, estimate)


def test_a_file_needing_more_decoder_memory_than_allowed_is_refused_and_never_made(network_payload, monkeypatch):
    from pixzip.errors import LimitError
    net = tiny_int_model(1)
    img = np.zeros((600, 1, 1), np.uint8)
    # 600 strips of one row: within the default limit
    data = codec.compress(img, net, options=codec.Options(strip_height=1))
    with pytest.raises(LimitError, match="over the limit of 1 MB"):
        codec.decompress(data, net, max_memory=1 << 20)
    monkeypatch.setenv("PIXZIP_MAX_MEMORY", "1M")
    with pytest.raises(LimitError, match=r"set \$PIXZIP_MAX_MEMORY"):
        codec.decompress(data, net)
    with pytest.raises(LimitError, match="use taller strips"):
        codec.compress(img, net, options=codec.Options(strip_height=1))
    monkeypatch.setenv("PIXZIP_MAX_MEMORY", "1G")
    assert np.array_equal(codec.decompress(data, net), img)


def test_a_long_run_of_near_certain_symbols_at_the_end_still_decodes(network_payload):
    """The decoder stops a payload that ran out (a lying header) once the
    symbols after its last word carry more than coder.TAIL_BITS; a real
    file's last symbols, many and the cheapest there are, stay within that."""
    net = codec.load_model("max")
    img = np.full((40, 300, 3), 128, np.uint8)
    img[0, 0] = (3, 250, 17)
    data = codec.compress(img, net)
    assert np.array_equal(codec.decompress(data, net), img)


def test_an_unknown_original_format_byte_is_read_as_unknown():
    img = photo_like(3, 4)
    data = codec.compress(img, payload="raw", metadata=codec.Metadata(format="PNG"))
    h, payload, crc = container.parse(data)
    lie = container.pack(container.Header(**{**h.__dict__, "source_format": 200}), bytes(payload), crc)
    out, md = codec.decompress_with_metadata(lie)
    assert np.array_equal(out, img) and md.format is None
    assert codec.header_metadata(h).format == "PNG"


def test_metadata_pixzip_does_not_keep_is_named_in_a_warning(tmp_path, model_dir):
    from PIL import TiffImagePlugin
    img = photo_like(4, 4)
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[65000], tags[65001] = "private", "tags"          # (ImageDescription, Artist, gAMA: now kept)
    Image.fromarray(img).save(tmp_path / "t.tif", tiffinfo=tags)
    r = run("compress", "-m", "tiny3", tmp_path / "t.tif")
    assert r.exit_code == 0 and "not kept: TIFF tag 65000, TIFF tag 65001" in r.stderr
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    (tmp_path / "g.png").write_bytes(buf.getvalue() + b"appended")
    r = run("compress", "-m", "tiny3", tmp_path / "g.png")
    assert r.exit_code == 0 and "not kept: 8 bytes after the PNG's end (IEND)" in r.stderr
    assert "not kept" not in run("compress", "-m", "tiny3", "-f", "--strip", tmp_path / "g.png").stderr
