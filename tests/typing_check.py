"""A user's script, typed: mypy checks it against pixzip's public API (py.typed) in
tests/test_pillow.py, as it would check code that calls an installed pixzip.  It also runs."""
from __future__ import annotations

import io
from typing import assert_type

import numpy as np
from PIL import Image

import pixzip
import pixzip.pillow


def main() -> None:
    pixels = np.zeros((8, 8, 3), np.uint8)
    data = pixzip.compress(pixels, level=9, options=pixzip.Options(strip=True))
    assert_type(data, bytes)
    back = pixzip.decompress(data)
    assert_type(back, np.ndarray)
    header = pixzip.read_header(data)
    width: int = header.width
    mode: str = header.mode
    out, meta = pixzip.decompress_with_metadata(data)
    source: str | None = meta.format
    data, stats = pixzip.compress_with_stats(Image.fromarray(pixels), method="mixer")
    payload: str = stats.payload
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=pixzip.pillow.FORMAT, level=1)
    pixzip.pillow.register_pxz_opener(max_memory=1 << 30)
    try:
        pixzip.decompress(data[:-1])
    except pixzip.PixzipError as e:
        message: str = str(e)
        print(width, mode, out.shape, source, payload, message)


if __name__ == "__main__":
    main()
