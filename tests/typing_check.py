"""A user's script, typed: mypy checks it against pixzip's public API (py.typed) in
tests/test_pillow.py, as it would check code that calls an installed pixzip.  It also runs."""
from __future__ import annotations

import io
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import assert_type

import numpy as np
from PIL import Image

import pixzip
import pixzip.pillow


def main() -> None:
    rgba = np.zeros((8, 8, 4), np.uint8)
    data = pixzip.compress(rgba, level=9, options=pixzip.Options(strip=True))
    assert_type(data, bytes)
    ok: bool = pixzip.is_pxz(data)
    back = pixzip.decompress(data)
    assert_type(back, np.ndarray)
    deep = pixzip.decompress(pixzip.compress(np.zeros((4, 4), np.uint16), level=1))
    header = pixzip.read_header(data)
    width: int = header.width
    mode: str = header.mode
    pic, meta = pixzip.decompress_picture(data)
    pic_mode: str = pic.mode
    source: str | None = meta.format
    data, stats = pixzip.compress_with_stats(Image.fromarray(rgba[..., :3]), method="mixer")
    payload: str = stats.payload
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.pxz"
        path.write_bytes(data)
        from_path = pixzip.decompress(path)
        with open(path, "rb") as f:
            from_file = pixzip.decompress(f)
    out, _ = pixzip.decompress_with_metadata(io.BytesIO(data))
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format=pixzip.pillow.FORMAT, level=1)
    pixzip.pillow.register_pxz_opener(max_memory=1 << 30)
    try:
        pixzip.decompress(data[:-1])
    except pixzip.PixzipError as e:
        message: str = str(e)
        print(ok, back.shape, deep.dtype, width, mode, pic_mode, source, payload, from_path.shape, from_file.shape,
              out.shape, message)
    finally:
        pixzip.pillow.register_pxz_opener()


if __name__ == "__main__":
    main()
