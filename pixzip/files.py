"""File-level compress/decompress with the conventions of gzip and zstd:
output names, no overwriting without force, atomic writes, removal of the
input only after a verified success, '-' for stdin/stdout."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import codec
from .errors import PixzipError, describe_os_error
from .atomic import atomic_write_bytes as write_atomic
from .images import as_array, read_image, to_pil

PXZ = ".pxz"
STDIO = "-"


@dataclass
class Result:
    source: str
    output: str | None
    out_bytes: int
    subpixels: int


def _read_bytes(src: str) -> bytes:
    if src == STDIO:
        return sys.stdin.buffer.read()
    try:
        return Path(src).read_bytes()
    except OSError as e:
        raise PixzipError(describe_os_error(src, e)) from None


def _check_output(dst: Path, src: str, force: bool) -> None:
    if src != STDIO and dst.resolve() == Path(src).resolve():
        raise PixzipError(f"{src}: output would overwrite the input")
    if dst.exists() and not force:
        raise PixzipError(f"{dst}: already exists (use -f to overwrite)")


def _check_stdout() -> None:
    if sys.stdout.isatty():
        raise PixzipError("refusing to write binary data to a terminal (redirect it, or use -o)")


def _write_stdout(data: bytes) -> None:
    _check_stdout()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def compressed_name(src: str) -> Path:
    return Path(src).with_suffix(PXZ)


def decompressed_name(src: str) -> Path:
    p = Path(src)
    if p.suffix.lower() != PXZ:
        raise PixzipError(f"{src}: unknown suffix, expected {PXZ} (use -o to name the output)")
    return p.with_suffix(".png")


def _image_from(src: str) -> np.ndarray:
    if src == STDIO:
        import io
        from PIL import Image
        data = sys.stdin.buffer.read()
        if not data:
            raise PixzipError("<stdin>: empty input")
        try:
            im = Image.open(io.BytesIO(data))
            im.load()
        except Exception:
            raise PixzipError("<stdin>: not a readable image") from None
        return as_array(im)
    return read_image(src)


def _output(src: str, output: str | None, to_stdout: bool, force: bool, default) -> Path | None:
    """The output path (None for stdout), checked before any work is done."""
    if to_stdout or (output is None and src == STDIO):
        _check_stdout()
        return None
    dst = Path(output) if output else default(src)
    _check_output(dst, src, force)
    return dst


def compress_file(src: str, output: str | None = None, *, model=None, force=False, to_stdout=False,
                  remove=False, verify=False, strip_height=0, progress=None) -> Result:
    """Compress one image file (or '-') to .pxz."""
    dst = _output(src, output, to_stdout, force, compressed_name)
    to_stdout = dst is None
    pixels = _image_from(src)
    name = "<stdin>" if src == STDIO else src
    try:
        data = codec.compress(pixels, model, strip_height=strip_height, progress=progress)
        if (verify or remove) and not np.array_equal(codec.decompress(data, model, progress=progress), pixels):
            raise PixzipError("verification failed: the archive does not decode to the input")
    except PixzipError as e:
        raise type(e)(f"{name}: {e}") from None
    if to_stdout:
        _write_stdout(data)
    else:
        write_atomic(dst, data)
    if remove and src != STDIO:
        Path(src).unlink()
    return Result(src, None if to_stdout else str(dst), len(data), pixels.size)


def decompress_file(src: str, output: str | None = None, *, force=False, to_stdout=False,
                    progress=None) -> Result:
    """Decompress one .pxz file (or '-') to an image (PNG unless -o names another format)."""
    dst = _output(src, output, to_stdout, force, decompressed_name)
    to_stdout = dst is None
    data = _read_bytes(src)
    name = "<stdin>" if src == STDIO else src
    try:
        pixels = codec.decompress(data, progress=progress)
    except PixzipError as e:
        raise type(e)(f"{name}: {e}") from None
    if to_stdout:
        import io
        buf = io.BytesIO()
        to_pil(pixels).save(buf, format="PNG")
        _write_stdout(buf.getvalue())
    else:
        _save_image(pixels, dst)
    return Result(src, None if to_stdout else str(dst), 0, pixels.size)


def _save_image(pixels: np.ndarray, dst: Path) -> None:
    import io
    from PIL import Image
    fmt = Image.registered_extensions().get(dst.suffix.lower())
    if fmt is None:
        raise PixzipError(f"{dst}: unknown image format for suffix {dst.suffix!r}")
    if fmt in ("JPEG", "MPO"):
        raise PixzipError(f"{dst}: JPEG is lossy; choose a lossless format such as .png")
    buf = io.BytesIO()
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    to_pil(pixels).save(buf, format=fmt, **kwargs)
    write_atomic(dst, buf.getvalue())


def test_file(src: str, progress=None) -> Result:
    data = _read_bytes(src)
    try:
        pixels = codec.decompress(data, progress=progress)
    except PixzipError as e:
        raise type(e)(f"{src}: {e}") from None
    return Result(src, None, 0, pixels.size)


def info(src: str) -> dict:
    data = _read_bytes(src)
    try:
        h = codec.read_header(data)
    except PixzipError as e:
        raise type(e)(f"{src}: {e}") from None
    return {"file": src, "format_version": h.version, "model": h.model_name, "model_hash": h.model_hash.hex(),
            "width": h.width, "height": h.height, "mode": h.mode, "strip_height": h.strip_height,
            "payload_bytes": h.payload_length, "file_bytes": len(data),
            "bits_per_subpixel": 8 * len(data) / h.n_subpixels}
