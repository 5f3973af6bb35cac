"""The bitstream is pinned: a fixed model and image must give these exact bytes.
A change here is a format change: bump container.VERSION and keep old files
decoding (or refused by name)."""
from pathlib import Path

import numpy as np
from PIL import Image

from pixzip import codec, container
from pixzip.intnet import IntGatedPixelCNN

DATA = Path(__file__).parent / "data"


def test_golden_file_is_reproduced_bit_for_bit():
    net = IntGatedPixelCNN.load(DATA / "golden-tiny.pxm")
    img = np.asarray(Image.open(DATA / "golden.png"))
    golden = (DATA / "golden.pxz").read_bytes()
    assert codec.compress(img, net) == golden
    assert np.array_equal(codec.decompress(golden, net), img)
    h = codec.read_header(golden)
    assert h.version == container.VERSION == 1
    assert h.model_name == "golden-tiny" and h.model_hash.hex() == net.sha256[:16]
