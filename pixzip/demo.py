"""pixzip demo: the main job on the bundled sample photo, with sizes against PNG."""
from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np

from . import codec
from .images import read_image, to_pil

SAMPLE = Path(__file__).resolve().parent / "data" / "astronaut.png"
SAMPLE_CREDIT = "NASA photo of Eileen Collins (public domain), via scikit-image"


def run(model=None, image=SAMPLE) -> dict:
    """Compress the sample with ``model`` (default: the default model), decode
    it, check it is pixel-exact, and measure PNG (Pillow, optimize) on it."""
    pixels = read_image(image)
    net = codec._model(model)
    t = time.perf_counter()
    data = codec.compress(pixels, net)
    t_enc = time.perf_counter() - t
    t = time.perf_counter()
    decoded = codec.decompress(data, net)
    t_dec = time.perf_counter() - t
    exact = bool(np.array_equal(decoded, pixels))
    if not exact:
        raise AssertionError(f"{image}: the round trip is not pixel-exact")
    buf = io.BytesIO()
    to_pil(pixels).save(buf, format="PNG", optimize=True)
    h, w, c = pixels.shape
    return {"image": str(image), "width": w, "height": h, "channels": c, "model": net.name,
            "pixzip_bytes": len(data), "png_bytes": len(buf.getvalue()), "encode_s": t_enc, "decode_s": t_dec,
            "exact": exact, "subpixels": pixels.size}
