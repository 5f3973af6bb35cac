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
    "parts": (DATA / "golden.png", RGB, {"payload": "mixer+network"}),
    "parts-3": (DATA / "golden.png", RGB, {"payload": "mixer+network", "parts": 3}),
    "parts-gray-strips": (DATA / "format1" / "gray.png", GRAY, {"payload": "mixer+network", "strip_height": 5}),
    "parts-photo": (DATA / "golden-photo.png", RGB, {"payload": "mixer+network"}),   # 40x48 of the bundled sample
    "mixer": (DATA / "golden.png", RGB, {"payload": "mixer"}),
    "mixer-photo": (DATA / "golden-photo.png", RGB, {"payload": "mixer"}),
    "metadata": (DATA / "golden.png", RGB, {"payload": "network", "metadata": Metadata(
        format="TIFF", icc=bytes(range(256)) * 2, exif=b"MM\x00*\x00\x00\x00\x08\x00\x00", xmp=b"<x:xmpmeta/>",
        dpi=(300.0, 72.5), text=(("Title", "golden"), ("Comment", "caf\u00e9")))}),
}


@pytest.mark.parametrize("name", sorted(FORMAT2))
def test_golden_file_is_reproduced_bit_for_bit(name):
    src, model, options = FORMAT2[name]
    net = ModelFile.load(model)
    img = image(src)
    golden = (DATA / "format2" / f"{name}.pxz").read_bytes()
    kept = {k: v for k, v in options.items() if k in ("payload", "metadata")}
    coding = codec.Options(**{k: v for k, v in options.items() if k not in kept})
    assert codec.compress(img, net, **kept, options=coding) == golden
    out, md = codec.decompress_with_metadata(golden, net)
    assert np.array_equal(out, img)
    assert md == options.get("metadata", Metadata())
    h = codec.read_header(golden)
    assert h.version == container.VERSION == 2
    if options["payload"] in ("network", "mixer+network"):
        assert h.model_name == net.name and h.model_hash.hex() == net.sha256[:16]
        assert h.coder == (1 if options["payload"] == "network" else container.PARTS_CODER)
    if options["payload"] == "mixer":
        assert (h.kind, h.coder, h.model_name) == (container.MIXER, container.MIXER_CODER, "")


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
