"""The bitstream is pinned, and every format version ever written still decodes.

A fixed model and image must give the exact bytes of tests/data/format2/.  A
change there is a format change: bump container.VERSION, keep a golden set of
the new version beside the old ones, and keep every old file decoding (or
refused by name, "made by an older pixzip", never reported as corrupt).
"""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixzip.codec import api as codec
from pixzip.codec import levels
from pixzip.codec.format import container
from pixzip.codec.format.metadata import Metadata
from pixzip.codec.network.modelfile import ModelFile
from pixzip.errors import CorruptError, ModelFileError

DATA = Path(__file__).parent / "data"
RGB, GRAY = DATA / "golden-tiny.pxm", DATA / "golden-tiny-gray.pxm"


def image(path):
    a = np.asarray(Image.open(path))
    return a[..., None] if a.ndim == 2 else a


# name: (source image, model, compress options)
FORMAT2 = {
    "rgb": (DATA / "golden.png", RGB, {"payload": "network"}),
    "gray": (DATA / "format1" / "gray.png", GRAY, {"payload": "network"}),
    "rgb-strips": (DATA / "format1" / "rgb-strips.png", RGB, {"payload": "network", "strip_height": 5}),
    "raw": (DATA / "golden.png", RGB, {"payload": "raw"}),
    # the mixer 1 (coders 2 and 3): -1's level still makes it
    "parts": (DATA / "golden.png", RGB, {"payload": "mixer+network", "level": 1}),
    "parts-3": (DATA / "golden.png", RGB, {"payload": "mixer+network", "parts": 3, "level": 1}),
    "parts-gray-strips": (DATA / "format1" / "gray.png", GRAY, {"payload": "mixer+network", "strip_height": 5,
                                                                "level": 1}),
    "parts-photo": (DATA / "golden-photo.png", RGB, {"payload": "mixer+network", "level": 1}),   # 40x48 of the sample
    "mixer": (DATA / "golden.png", RGB, {"payload": "mixer", "level": 1}),
    "mixer-photo": (DATA / "golden-photo.png", RGB, {"payload": "mixer", "level": 1}),
    # the mixer 2 (coders 5 and 6), every other level's (written once by --record-format2)
    "parts2": (DATA / "golden.png", RGB, {"payload": "mixer+network"}),
    "parts2-3": (DATA / "golden.png", RGB, {"payload": "mixer+network", "parts": 3}),
    "parts2-gray-strips": (DATA / "format1" / "gray.png", GRAY, {"payload": "mixer+network", "strip_height": 5}),
    "parts2-photo": (DATA / "golden-photo.png", RGB, {"payload": "mixer+network"}),
    "parts2-photo-strips": (DATA / "golden-photo.png", RGB, {"payload": "mixer+network", "strip_height": 7}),
    "mixer2": (DATA / "golden.png", RGB, {"payload": "mixer"}),
    "mixer2-photo": (DATA / "golden-photo.png", RGB, {"payload": "mixer"}),
    "mixer2-gray": (DATA / "format1" / "gray.png", GRAY, {"payload": "mixer"}),
    # coder 7: a gray image over an RGB network (the mixer 2 over its counts of colour 0; -9's for gray)
    "parts2-l-over-rgb": (DATA / "format1" / "gray.png", RGB, {"payload": "mixer+network"}),
    "parts2-l-over-rgb-strips": (DATA / "format1" / "gray.png", RGB, {"payload": "mixer+network", "strip_height": 5}),
    # the mixer 3 (coders 8 and 9), -6's and -9's for colour images since 0.10.0 (gray keeps the mixer 2);
    # coder 9 in two parts: -9's until 0.10.1 (one part since 0.10.2, below)
    "parts3": (DATA / "golden.png", RGB, {"payload": "mixer+network", "parts": 2}),
    "parts3-3": (DATA / "golden.png", RGB, {"payload": "mixer+network", "parts": 3}),
    "parts3-photo": (DATA / "golden-photo.png", RGB, {"payload": "mixer+network", "parts": 2}),
    "parts3-photo-strips": (DATA / "golden-photo.png", RGB, {"payload": "mixer+network", "strip_height": 7,
                                                              "parts": 2}),
    # coder 9 in one part (one state), -9's for colour images since 0.10.2, decoded by the network and the
    # mixer on two threads of their own (0.10.1 and older decode them on one)
    "parts3-1": (DATA / "golden.png", RGB, {"payload": "mixer+network"}),
    "parts3-photo-1": (DATA / "golden-photo.png", RGB, {"payload": "mixer+network"}),
    "parts3-photo-strips-1": (DATA / "golden-photo.png", RGB, {"payload": "mixer+network", "strip_height": 7}),
    "mixer3": (DATA / "golden.png", RGB, {"payload": "mixer"}),
    "mixer3-photo": (DATA / "golden-photo.png", RGB, {"payload": "mixer"}),
    # the mixer 4 over the network (coder 10), -9's for colour images since 0.11.0: one part, and three (each
    # part's table at most 2^20 of the budget's 2^22)
    "parts4-1": (DATA / "golden.png", RGB, {"payload": "mixer+network"}),
    "parts4-3": (DATA / "golden.png", RGB, {"payload": "mixer+network", "parts": 3}),
    "parts4-photo-1": (DATA / "golden-photo.png", RGB, {"payload": "mixer+network"}),
    "parts4-photo-strips-1": (DATA / "golden-photo.png", RGB, {"payload": "mixer+network", "strip_height": 7}),
    # the mixer 5 over the network (coder 11: the mixer 4 from a learned prior), -9's for colour images since
    # 0.12.0
    "parts5-1": (DATA / "golden.png", RGB, {"payload": "mixer+network"}),
    "parts5-3": (DATA / "golden.png", RGB, {"payload": "mixer+network", "parts": 3}),
    "parts5-photo-1": (DATA / "golden-photo.png", RGB, {"payload": "mixer+network"}),
    "parts5-photo-strips-1": (DATA / "golden-photo.png", RGB, {"payload": "mixer+network", "strip_height": 7}),
    # the mixer 6 over the network (coder 12: the mixer 4 from one of two learned priors, named by the payload's
    # first byte), -9's for colour images since 0.13.0: the photos' set, and the set of colour once subsampled
    # (golden-photo-420.png: golden-photo.png's colour differences interpolated at odd rows and columns)
    "parts6-1": (DATA / "golden.png", RGB, {"payload": "mixer+network"}),
    "parts6-3": (DATA / "golden.png", RGB, {"payload": "mixer+network", "parts": 3}),
    "parts6-photo-1": (DATA / "golden-photo.png", RGB, {"payload": "mixer+network"}),
    "parts6-photo-strips-1": (DATA / "golden-photo.png", RGB, {"payload": "mixer+network", "strip_height": 7}),
    "parts6-photo-420-1": (DATA / "golden-photo-420.png", RGB, {"payload": "mixer+network"}),
    "parts6-photo-420-3": (DATA / "golden-photo-420.png", RGB, {"payload": "mixer+network", "parts": 3}),
    "metadata": (DATA / "golden.png", RGB, {"payload": "network", "metadata": Metadata(
        format="TIFF", icc=bytes(range(256)) * 2, exif=b"MM\x00*\x00\x00\x00\x08\x00\x00", xmp=b"<x:xmpmeta/>",
        dpi=(300.0, 72.5), text=(("Title", "golden"), ("Comment", "caf\u00e9")))}),
}


# the levels of 0.8 and 0.9 (the mixer 2 at -6 and -9), with which the colour images of the mixer 2 were made
LEVELS_OF_0_9 = {1: levels.Level("mixer", None, 1), 6: levels.Level("mixer", None, 2),
                 9: levels.Level("mixer+network", "max", 2)}
# and of 0.10 (the mixer 3 at -6 and -9), the mixer 3's
LEVELS_OF_0_10 = {1: levels.Level("mixer", None, 1), 6: levels.Level("mixer", None, 3),
                  9: levels.Level("mixer+network", "max", 3)}
# and of 0.11 (the mixer 4 at -9), the mixer 4's
LEVELS_OF_0_11 = {1: levels.Level("mixer", None, 1), 6: levels.Level("mixer", None, 3),
                  9: levels.Level("mixer+network", "max", 4)}
# and of 0.12 (the mixer 5 at -9), the mixer 5's
LEVELS_OF_0_12 = {**LEVELS_OF_0_11, 9: levels.Level("mixer+network", "max", 5)}
# the levels that made each mixer version's golden files (versions 1 and 6: today's)
LEVELS_OF_VERSION = {2: LEVELS_OF_0_9, 3: LEVELS_OF_0_10, 4: LEVELS_OF_0_11, 5: LEVELS_OF_0_12}
# the coder of each mixer version over the network (version 2: a gray image over an RGB network's, coder 7)
PARTS_CODER_OF_VERSION = {3: container.PARTS3_CODER, 4: container.PARTS4_CODER, 5: container.PARTS5_CODER,
                          6: container.PARTS6_CODER}


def _version_of(name: str) -> int:
    """The mixer version of a format-2 golden file of the mixer ("mixer3-photo": 3; "parts6-1": 6), else 0."""
    for prefix in ("mixer", "parts"):
        if name.startswith(prefix) and name[len(prefix):len(prefix) + 1].isdigit():
            return int(name[len(prefix)])
    return 0


def _levels_of(name: str) -> dict:
    """The levels a format-2 golden file was made with: the release's whose -9 made its mixer version,
    else today's."""
    return LEVELS_OF_VERSION.get(_version_of(name), levels.LEVELS)


@pytest.mark.parametrize("name", sorted(FORMAT2))
def test_golden_file_is_reproduced_bit_for_bit(name, monkeypatch):
    src, model, options = FORMAT2[name]
    monkeypatch.setattr(levels, "LEVELS", _levels_of(name))
    net = ModelFile.load(model)
    img = image(src)
    golden = (DATA / "format2" / f"{name}.pxz").read_bytes()
    kept = {k: v for k, v in options.items() if k in ("payload", "metadata", "level")}
    coding = codec.Options(**{k: v for k, v in options.items() if k not in kept})
    assert codec.compress(img, net, **kept, options=coding) == golden
    out, md = codec.decompress_with_metadata(golden, net)
    assert np.array_equal(out, img)
    assert md == options.get("metadata", Metadata())
    h = codec.read_header(golden)
    assert h.version == container.VERSION == 2
    first = options.get("level") == 1       # the mixer 1's
    version = _version_of(name)
    if options["payload"] in ("network", "mixer+network"):
        assert h.model_name == net.name and h.model_hash.hex() == net.sha256[:16]
        gray_over_rgb = h.mode == "L" and net.colors == 3
        assert h.coder == (1 if options["payload"] == "network" else container.PARTS_CODER if first else
                           PARTS_CODER_OF_VERSION[version] if version > 2 else
                           container.GRAY_PARTS2_CODER if gray_over_rgb else container.PARTS2_CODER)
    if options["payload"] == "mixer":
        assert (h.kind, h.coder, h.model_name) == (container.MIXER, container.MIXER_CODER if first else
                                                   container.MIXER3_CODER if version == 3 else
                                                   container.MIXER2_CODER, "")


# coder 2, the mixer with the network in one state: written by 0.3.0, still read
CODER2 = {
    "mixed": (DATA / "golden.png", RGB),
    "mixed-gray-strips": (DATA / "format1" / "gray.png", GRAY),
    "mixed-photo": (DATA / "golden-photo.png", RGB),
}


@pytest.mark.parametrize("name", sorted(CODER2))
def test_coder_2_files_still_decode(name):
    src, model = CODER2[name]
    golden = (DATA / "format2" / f"{name}.pxz").read_bytes()
    h = codec.read_header(golden)
    assert (h.kind, h.coder) == (container.NETWORK, container.MIXER_CODER)
    assert np.array_equal(codec.decompress(golden, ModelFile.load(model)), image(src))


def test_golden_deflate_file_decodes():
    """The deflate payload is zlib's output, which another zlib may make
    differently, so only its decoding is pinned."""
    golden = (DATA / "format2" / "deflate.pxz").read_bytes()
    h = codec.read_header(golden)
    assert h.kind == container.DEFLATE and h.model_name == ""
    assert np.array_equal(codec.decompress(golden), image(DATA / "format2" / "flat.png"))


@pytest.mark.parametrize("name, model", [("rgb", RGB), ("gray", GRAY), ("rgb-strips", RGB)])
def test_format_1_files_still_decode(name, model, monkeypatch):
    data = (DATA / "format1" / f"{name}.pxz").read_bytes()
    assert codec.read_header(data).version == 1
    want = image(DATA / "format1" / f"{name}.png")
    assert np.array_equal(codec.decompress(data, model), want)      # the model named by its file
    monkeypatch.setenv("PIXZIP_MODELS", str(DATA))
    assert np.array_equal(codec.decompress(data), want)             # found by its name and hash


def test_files_of_the_8_bit_arithmetic_are_refused_by_name(monkeypatch, tmp_path):
    """Before 6cbc814 the integer network was 8-bit; its model files said
    "pixzip-int-gated/1" like the 10-bit ones after it.  Their archives must
    be refused as made by an older pixzip, never decoded as corrupt."""
    old = DATA / "arith1"
    data = (old / "golden.pxz").read_bytes()
    with pytest.raises(ModelFileError, match=r"made by an older pixzip \(model format 1\)"):
        codec.decompress(data, old / "golden-tiny.pxm")
    with pytest.raises(ModelFileError, match=r"made by an older pixzip \(model format 1\)"):
        ModelFile.load(old / "golden-tiny.pxm")
    (tmp_path / "renamed.pxm").write_bytes((old / "golden-tiny.pxm").read_bytes())
    monkeypatch.setenv("PIXZIP_MODELS", str(tmp_path))
    try:
        codec.decompress(data)
    except CorruptError as e:   # the defect: it used to be "payload has data left over"
        pytest.fail(f"reported as corrupt: {e}")
    except ModelFileError as e:
        assert "made by an older pixzip (model format 1)" in str(e)
    else:
        pytest.fail("decoded with the wrong arithmetic")


def test_new_exports_write_the_current_model_format():
    from pixzip.codec.network.modelfile import FORMAT
    net = ModelFile.load(RGB)
    assert FORMAT == "pixzip-int-gated/2"
    assert ModelFile.from_bytes(net.to_bytes()).config == net.config
    import io
    import json
    with np.load(io.BytesIO(net.to_bytes())) as z:
        assert json.loads(bytes(z["__meta__"]).decode())["format"] == FORMAT


# ---- format 3: one archive per picture mode that format 2 does not keep ----
# tests/data/format3/<name>.pxz, made from the pictures in tests/data/format3/pictures.npz
# (python tests/test_golden.py --record-format3 writes both, once; never rewrite a recorded file)
FORMAT3_DIR = DATA / "format3"
# name: (compress keywords, the model file of its network sections or None)
FORMAT3 = {
    "la": ({"level": 1, "payload": "coded"}, None),
    "rgba": ({"level": 1, "payload": "coded"}, None),
    "rgba-network": ({"payload": "mixer+network"}, RGB),
    "rgba-opaque": ({"level": 1, "payload": "coded"}, None),
    "p": ({"level": 1, "payload": "coded"}, None),
    "p-colours": ({"level": 9, "payload": "coded"}, None),     # -9 tries a palette image's colours
    "p-trns": ({"level": 1, "payload": "coded"}, None),
    "1": ({"level": 1, "payload": "coded"}, None),
    "i16": ({"level": 1, "payload": "coded"}, None),
    "i16-x257": ({"level": 1, "payload": "coded"}, None),
    "rgb16-8bit": ({"level": 1, "payload": "coded"}, None),
    "l-trns": ({"level": 1, "payload": "coded"}, None),
    "rgb-trns": ({"level": 1, "payload": "coded"}, None),
}
# the levels these were made with (0.7's: every one with the mixer 1, -6 with the "fast" network)
LEVELS_OF_0_7 = {1: levels.Level("mixer", None, 1), 6: levels.Level("mixer+network", "fast", 1),
                 9: levels.Level("mixer+network", "max", 1)}
# the same pictures with the mixer 2 (this release's -6 and -9; written by --record-format3-mixer2, once)
FORMAT3_MIXER2 = {"rgba-network-2": ("rgba-network", {"payload": "mixer+network"}, RGB),
                  "p-colours-2": ("p-colours", {"level": 9, "payload": "coded"}, None),
                  "la-2": ("la", {"payload": "coded"}, None),
                  # coder 7: the L plane over the RGB network (the alpha by the mixer alone)
                  "la-network-2": ("la", {"payload": "mixer+network"}, RGB)}
# the colour pictures with the mixer 3 (0.10.0's -6 and -9: its RGB planes; one-colour planes keep the mixer 2)
FORMAT3_MIXER3 = {"rgba-network-3": ("rgba-network", {"payload": "mixer+network", "options": codec.Options(parts=2)},
                                     RGB),
                  "rgba-3": ("rgba-network", {"payload": "coded"}, None),
                  # 0.10.2's -9: the RGB planes' coder 9 in one part
                  "rgba-network-3-1": ("rgba-network", {"payload": "mixer+network"}, RGB)}
# and with the mixer 4 (0.11.0's -9: the RGB planes' coder 10, one part)
FORMAT3_MIXER4 = {"rgba-network-4-1": ("rgba-network", {"payload": "mixer+network"}, RGB)}
# and with the mixer 5 (0.12.0's -9: the RGB planes' coder 11, one part)
FORMAT3_MIXER5 = {"rgba-network-5-1": ("rgba-network", {"payload": "mixer+network"}, RGB)}
# and with the mixer 6 (0.13.0's -9: the RGB planes' coder 12, one part)
FORMAT3_MIXER6 = {"rgba-network-6-1": ("rgba-network", {"payload": "mixer+network"}, RGB)}
# each mixer version's (the version, its levels, the coders its colour sections may have)
FORMAT3_OF_VERSION = {
    2: (FORMAT3_MIXER2, LEVELS_OF_0_9, {container.MIXER2_CODER, container.PARTS2_CODER, container.GRAY_PARTS2_CODER}),
    3: (FORMAT3_MIXER3, LEVELS_OF_0_10, {container.MIXER3_CODER, container.PARTS3_CODER}),
    4: (FORMAT3_MIXER4, LEVELS_OF_0_11, {container.PARTS4_CODER}),
    5: (FORMAT3_MIXER5, LEVELS_OF_0_12, {container.PARTS5_CODER}),
    6: (FORMAT3_MIXER6, None, {container.PARTS6_CODER})}     # None: today's levels


def _format3_sources() -> dict:
    """The pictures the format-3 golden files were made from (run once, by --record-format3)."""
    from pixzip.codec.format.picture import Picture, from_pil
    photo = image(DATA / "golden-photo.png")[:12, :16]
    small = image(DATA / "golden.png")
    y, x = np.mgrid[:12, :16]
    alpha = np.clip(255 - 30 * np.hypot(y - 6, x - 8), 0, 255).astype(np.uint8)[..., None]
    rng = np.random.default_rng(25)
    indexed = Image.fromarray(photo).quantize(16)
    order = np.random.default_rng(3).permutation(16)       # a palette whose order is far from its colours
    entries = np.array([[10, 20, 30, 17 * int(k)] for k in order], np.uint8)
    shade = (x + y) * 15 // 26
    colours = Picture(np.argsort(order)[shade].astype(np.uint8)[..., None], "P", entries.tobytes(), "RGBA")
    wide = photo[..., 1:2].astype(np.uint16) * 256 + rng.integers(0, 256, (12, 16, 1)).astype(np.uint16)
    return {
        "la": Picture(np.concatenate([photo[..., :1], alpha], 2), "LA"),
        "rgba": Picture(np.concatenate([photo, alpha], 2), "RGBA"),
        "rgba-network": Picture(np.concatenate([small, alpha[:11, :14]], 2), "RGBA"),
        "rgba-opaque": Picture(np.concatenate([photo, np.full_like(alpha, 255)], 2), "RGBA"),
        "p": from_pil(indexed),
        "p-colours": colours,
        "p-trns": Picture(np.asarray(indexed)[..., None].copy(), "P", bytes(indexed.getpalette()), "RGB",
                          bytes(range(0, 255, 37))),
        "1": Picture((photo[..., :1] > 120).astype(np.uint8), "1"),
        "i16": Picture(wide, "I;16"),
        "i16-x257": Picture(photo[..., :1].astype(np.uint16) * 257, "I;16"),
        "rgb16-8bit": Picture(photo.astype(np.uint16), "RGB;16"),
        "l-trns": Picture(photo[..., :1].copy(), "L", transparency=7),
        "rgb-trns": Picture(photo.copy(), "RGB", transparency=(1, 2, 3)),
    }


def _load_format3_pictures() -> dict:
    import ast

    from pixzip.codec.format.picture import Picture
    with np.load(FORMAT3_DIR / "pictures.npz") as z:
        meta = ast.literal_eval(str(z["meta"]))
        return {name: Picture(z[name], m["mode"], m["palette"], m["palette_mode"], m["transparency"])
                for name, m in meta.items()}


@pytest.mark.parametrize("name", sorted(FORMAT3))
def test_format_3_golden_file_is_reproduced_and_decodes_to_its_picture(name, monkeypatch):
    """The 16-bit pictures' bytes split into planes are pinned here, made without
    the 16-bit coder (whose own bytes tests/test_deep.py pins), which the encoder
    would otherwise weigh against them."""
    from pixzip.codec import coders
    from pixzip.codec.format import picture
    monkeypatch.setattr(coders.Deep, "available", staticmethod(lambda: False))
    monkeypatch.setattr(levels, "LEVELS", LEVELS_OF_0_7)
    kw, model = FORMAT3[name]
    want = _load_format3_pictures()[name]
    golden = (FORMAT3_DIR / f"{name}.pxz").read_bytes()
    net = ModelFile.load(model) if model else None
    got, _ = codec.decompress_picture(golden, net)
    assert picture.same(got, want)
    assert codec.read_header(golden).version == 3 and codec.read_header(golden).mode == want.mode
    assert codec.compress(want, net, **kw) == golden
    assert len(golden) < 700


@pytest.mark.parametrize("version, name", [(v, n) for v, (files, _, _) in FORMAT3_OF_VERSION.items()
                                            for n in sorted(files)])
def test_format_3_golden_file_of_the_mixer_2_to_6_is_reproduced_and_decodes_to_its_picture(version, name,
                                                                                          monkeypatch):
    from pixzip.codec import coders
    from pixzip.codec.format import picture
    monkeypatch.setattr(coders.Deep, "available", staticmethod(lambda: False))
    files, made_by, section_coders = FORMAT3_OF_VERSION[version]
    monkeypatch.setattr(levels, "LEVELS", made_by or levels.LEVELS)
    source, kw, model = files[name]
    want = _load_format3_pictures()[source]
    golden = (FORMAT3_DIR / f"{name}.pxz").read_bytes()
    net = ModelFile.load(model) if model else None
    got, _ = codec.decompress_picture(golden, net)
    assert picture.same(got, want)
    assert {s.coder for s in codec.read_header(golden).sections} & section_coders
    assert codec.compress(want, net, **kw) == golden


def _record_format3_mixer2() -> None:
    from pixzip.codec import coders
    coders.Deep.available = staticmethod(lambda: False)
    pictures = _load_format3_pictures()
    for name, (source, kw, model) in {**FORMAT3_MIXER2, **FORMAT3_MIXER3, **FORMAT3_MIXER4,
                                      **FORMAT3_MIXER5, **FORMAT3_MIXER6}.items():
        path = FORMAT3_DIR / f"{name}.pxz"
        if path.exists():       # recorded: never rewritten (a new one: today's levels)
            continue
        path.write_bytes(codec.compress(pictures[source], ModelFile.load(model) if model else None, **kw))
        print("wrote", path)


def test_format_3_golden_files_cover_every_new_mode_and_section_kind():
    headers = [codec.read_header((FORMAT3_DIR / f"{name}.pxz").read_bytes()) for name in FORMAT3]
    assert {h.mode for h in headers} == {"L", "LA", "RGB", "RGBA", "P", "1", "I;16", "RGB;16"}
    kinds = {s.kind for h in headers for s in h.sections}
    assert {container.NETWORK, container.MIXER, container.CONSTANT, container.EQUAL} <= kinds
    assert {h.layout for h in headers} == {container.SAMPLES, container.PALETTE_COLOURS}


def _record_format3() -> None:
    from pixzip.codec import coders
    coders.Deep.available = staticmethod(lambda: False)      # the split planes' bytes, as the test makes them
    FORMAT3_DIR.mkdir(exist_ok=True)
    pictures = _format3_sources()
    meta = {}
    for name, p in pictures.items():
        kw, model = FORMAT3[name]
        path = FORMAT3_DIR / f"{name}.pxz"
        if path.exists():
            raise SystemExit(f"{path} is recorded; never rewrite a golden file")
        path.write_bytes(codec.compress(p, ModelFile.load(model) if model else None, **kw))
        meta[name] = {"mode": p.mode, "palette": p.palette, "palette_mode": p.palette_mode,
                      "transparency": p.transparency}
    np.savez_compressed(FORMAT3_DIR / "pictures.npz", meta=np.array(repr(meta)),
                        **{name: p.pixels for name, p in pictures.items()})


# ---- format 3 with the 16-bit coder (coder 4, its own model: payload kind 0), which -9 weighs ----
# tests/data/format3/<name>.pxz, made from tests/data/format3/pictures-deep.npz
# (python tests/test_golden.py --record-format3-deep writes both, once)
FORMAT3_DEEP = ("i16-deep", "rgb16-deep")


def _format3_deep_sources() -> dict:
    """Smooth 16-bit surfaces with a little noise, where the 16-bit coder's
    own model beats the planes split in bytes (so -9 keeps it)."""
    from pixzip.codec.format.picture import Picture
    y, x = np.mgrid[:16, :20]
    rng = np.random.default_rng(4)
    gray = x * 1500 + y * 900 + x * y * 37 + rng.integers(0, 40, (16, 20))
    rgb = np.stack([x * 1500 + y * 900, x * 1400 + y * 950, x * 1300 + y * 1000], -1) + rng.integers(0, 40, (16, 20, 3))
    return {"i16-deep": Picture(gray.astype(np.uint16)[..., None], "I;16"),
            "rgb16-deep": Picture(rgb.astype(np.uint16), "RGB;16")}


@pytest.mark.parametrize("name", FORMAT3_DEEP)
def test_format_3_golden_file_of_the_16_bit_coder_is_reproduced_and_decodes_to_its_picture(name):
    from pixzip.codec.format import picture
    with np.load(FORMAT3_DIR / "pictures-deep.npz") as z:
        want = picture.Picture(z[name], "I;16" if z[name].shape[2] == 1 else "RGB;16")
    golden = (FORMAT3_DIR / f"{name}.pxz").read_bytes()
    header = codec.read_header(golden)
    assert [(s.kind, s.coder) for s in header.sections] == [(container.DEEP, container.DEEP_CODER)]
    got, _ = codec.decompress_picture(golden)
    assert picture.same(got, want)
    assert codec.compress(want, level=9) == golden


def _record_format3_deep() -> None:
    pictures = _format3_deep_sources()
    for name, p in pictures.items():
        path = FORMAT3_DIR / f"{name}.pxz"
        if path.exists():
            raise SystemExit(f"{path} is recorded; never rewrite a golden file")
        path.write_bytes(codec.compress(p, level=9))
    np.savez_compressed(FORMAT3_DIR / "pictures-deep.npz", **{name: p.pixels for name, p in pictures.items()})


def _record_format2() -> None:
    """Write the format-2 golden files not yet written (a new coder's); never rewrite one."""
    for name, (src, model, options) in sorted(FORMAT2.items()):
        path = DATA / "format2" / f"{name}.pxz"
        if path.exists():
            continue
        kept = {k: v for k, v in options.items() if k in ("payload", "metadata", "level")}
        coding = codec.Options(**{k: v for k, v in options.items() if k not in kept})
        path.write_bytes(codec.compress(image(src), ModelFile.load(model), **kept, options=coding))
        print("wrote", path)


if __name__ == "__main__":
    import sys
    if sys.argv[1:] == ["--record-format2"]:
        _record_format2()
    elif sys.argv[1:] == ["--record-format3-mixer2"]:
        _record_format3_mixer2()
    elif sys.argv[1:] == ["--record-format3"]:
        _record_format3()
    elif sys.argv[1:] == ["--record-format3-deep"]:
        _record_format3_deep()
