"""File-level compress/decompress with the conventions of gzip and zstd:
the suffix is appended (photo.png -> photo.png.pxz -> photo.png), nothing is
overwritten without force, outputs are written atomically and checked
before they replace anything, an input is removed only after its output
has been verified and synced, and '-' is stdin/stdout.  Nothing is lost:
when in doubt, a step refuses with one line naming the file."""
from __future__ import annotations

import contextlib
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_write
from ..codec import api as codec
from ..codec.coders import payload_name
from ..codec.format import container
from ..codec.format.images import (LOSSY_FORMATS, encode_picture_file, format_for, read_picture_file, suffix_for,
                                   written_format)
from ..codec.format.metadata import Metadata
from ..codec.format.picture import same
from ..errors import ImageError, PixzipError, describe_os_error

PXZ = ".pxz"
STDIO = "-"


@dataclass(frozen=True)
class Delivery:
    """Where an output goes and what happens to the input, as gzip and zstd
    do it: ``output`` names it (else the suffix rule), ``to_stdout`` writes
    it there, ``force`` replaces an existing file (once the new one is
    complete), ``remove`` deletes the input once its output is verified, and
    ``verify`` decodes a new archive before it is kept."""
    output: str | None = None
    to_stdout: bool = False
    force: bool = False
    remove: bool = False
    verify: bool = False


@dataclass
class Result:
    source: str
    output: str | None
    out_bytes: int
    subpixels: int
    warnings: list[str] = field(default_factory=list)
    payload: str = ""


def _name(src: str) -> str:
    return "<stdin>" if src == STDIO else src


@contextlib.contextmanager
def _opened(src: str):
    """(binary stream, its length or None) of an input: '-' is stdin; a
    regular file or a FIFO (a stream, as stdin: zstd reads them, and shells
    make them for ``<(...)``) is opened; anything else (a device such as
    /dev/zero, a socket) is refused by name, as xz and gzip do."""
    if src == STDIO:
        yield sys.stdin.buffer, None
        return
    try:
        f = open(src, "rb")
    except OSError as e:
        raise PixzipError(describe_os_error(src, e)) from None
    with f:
        mode = os.fstat(f.fileno()).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
            raise PixzipError(f"{src}: {'is a directory' if stat.S_ISDIR(mode) else 'not a regular file'}")
        yield f, os.fstat(f.fileno()).st_size if stat.S_ISREG(mode) else None


def _is_stream(src: str) -> bool:
    """Whether an input can be read only once (stdin, a FIFO)."""
    try:
        return src == STDIO or stat.S_ISFIFO(os.stat(src).st_mode)
    except OSError:
        return False


def read_archive(src: str, payload: bool = True) -> tuple[container.Header, memoryview]:
    """(header, bytes) of a .pxz input, read no further than it needs: the
    magic first, the header, then exactly the payload it declares (refused
    unread when over the memory limit) and one byte for trailing data.
    Without ``payload`` the payload is skipped (see ``container.read``)."""
    limit = codec.memory_limit()
    with _opened(src) as (f, size):
        try:
            return container.read(f, size, max_bytes=limit, payload=payload,
                                  too_big=lambda n: codec.over_limit("reading this archive needs", n, limit))
        except PixzipError as e:
            raise type(e)(f"{_name(src)}: {e}") from None
        except OSError as e:
            raise PixzipError(describe_os_error(_name(src), e)) from None


def _read_image(src: str) -> bytes:
    """The bytes of an image input, at most the memory limit (a larger
    file is refused by name, unread when its size is known)."""
    limit = codec.memory_limit()
    with _opened(src) as (f, size):
        try:
            if size is not None and size > limit:
                raise codec.over_limit("reading this image file needs", size, limit)
            data = f.read() if size is not None else _read_at_most(f, limit + 1)
        except OSError as e:
            raise PixzipError(describe_os_error(_name(src), e)) from None
        except PixzipError as e:
            raise ImageError(f"{_name(src)}: {e}") from None
    if len(data) > limit:
        raise ImageError(f"{_name(src)}: {codec.over_limit('reading this image needs at least', limit + 1, limit)}")
    return data


def _read_at_most(f, n: int) -> bytes:
    """Up to n bytes of a stream, read in steps (never an n-byte buffer up front)."""
    out = bytearray()
    while len(out) < n:
        got = f.read(min(container.READ_STEP, n - len(out)))
        if not got:
            break
        out += got
    return bytes(out)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISBLK, "a block device"))


def _is_device(dst: Path) -> bool:
    """Whether an output is an existing character device (/dev/null): it is
    written in place, as zstd does, never replaced by a file."""
    try:
        return stat.S_ISCHR(dst.stat().st_mode)
    except OSError:
        return False


def _check_output(dst: Path, src: str, force: bool) -> None:
    if src != STDIO and _same_file(dst, Path(src)):
        raise PixzipError(f"{src}: output would overwrite the input")
    if dst.is_dir():
        raise PixzipError(f"{dst}: is a directory")
    try:
        mode = dst.stat().st_mode
    except OSError:
        mode = 0
    for test, kind in _KINDS:   # a FIFO would block or feed a reader unverified data; a block device is a disk
        if test(mode):
            raise PixzipError(f"{dst}: not a regular file ({kind}); pixzip writes files and character devices")
    if dst.exists() and not force:
        raise PixzipError(f"{dst}: already exists (use -f to overwrite)")
    if stat.S_ISCHR(mode):
        return      # written in place: its folder need not be writable
    parent = dst.parent
    if not parent.is_dir():
        raise PixzipError(f"{dst}: no such directory {str(parent)!r}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PixzipError(f"{dst}: permission denied (cannot write in {str(parent)!r})")


def _check_stdout() -> None:
    if sys.stdout.isatty():
        raise PixzipError("refusing to write binary data to a terminal (redirect it, or use -o)")


def _write_stdout(data: bytes) -> None:
    _check_stdout()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def compressed_name(src: str) -> Path:
    """photo.png -> photo.png.pxz (the suffix is appended, as gzip, xz and zstd do)."""
    return Path(src + PXZ)


def decompressed_name(src: str, md: Metadata | None = None) -> Path:
    """photo.png.pxz -> photo.png.  A name with no image suffix left
    (photo.pxz) gets the suffix of the original format (PNG if unknown)."""
    if not src.lower().endswith(PXZ) or len(Path(src).name) <= len(PXZ):
        raise PixzipError(f"{src}: unknown suffix, expected {PXZ} (use -o to name the output)")
    dst = Path(src[:-len(PXZ)])
    fmt = format_for(dst)
    if fmt is None:
        return Path(str(dst) + suffix_for(md.format if md else None))
    if fmt in LOSSY_FORMATS:
        raise PixzipError(f"{src}: the name asks for {fmt}, which is lossy; name a lossless output with -o, "
                          f"e.g. -o {dst.with_suffix('.png').name}")
    return dst


def output_for(src: str, output: str | None, to_stdout: bool, decompress: bool,
               md: Metadata | None = None) -> Path | None:
    """The output path of one input (None for stdout), before any work.  A
    .pxz name with no image suffix left takes the original format's, from
    ``md`` when given, else from the header of a regular file (read alone;
    a stream is never read here: it can be read only once)."""
    if to_stdout or (output is None and src == STDIO):
        return None
    if output:
        return Path(output)
    if not decompress:
        return compressed_name(src)
    if md is None and src.lower().endswith(PXZ) and format_for(src[:-len(PXZ)]) is None and not _is_stream(src):
        try:    # the name keeps no image suffix: the original format's
            md = codec.header_metadata(read_archive(src, payload=False)[0])
        except (OSError, PixzipError):
            pass       # the file's own error is reported when it is decoded
    return decompressed_name(src, md)


def check_outputs(sources, output: str | None, to_stdout: bool, decompress: bool,
                  outputs: dict[str, str] | None = None) -> None:
    """Refuse, before any work, two inputs of one command that would write
    one output, or an output that is another input.  ``outputs``: the
    outputs a caller chose for some inputs (a folder mirrored elsewhere)."""
    seen: dict[Path, str] = {}
    inputs = {Path(s).resolve(): s for s in sources if s != STDIO}
    if list(sources).count(STDIO) > 1:
        raise PixzipError("'-' (stdin) is given more than once")
    for src in sources:
        try:
            dst = Path(outputs[src]) if outputs and src in outputs else output_for(src, output, to_stdout,
                                                                                  decompress)
        except PixzipError:
            continue   # reported when this input is processed
        if dst is None:
            continue
        key = dst.resolve()
        if key in seen:
            raise PixzipError(f"{seen[key]} and {src} would both be written to {dst}; give them one at a time")
        if key in inputs and inputs[key] != src:
            raise PixzipError(f"{src}: its output {dst} is another input of this command")
        seen[key] = src


def _stat_key(path: Path):
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


def _remove_input(src: str, key, warnings: list[str]) -> None:
    p = Path(src)
    try:
        if _stat_key(p) != key:
            warnings.append(f"{src}: changed while it was being processed; not removed")
            return
        p.unlink()
    except OSError as e:
        warnings.append(f"{describe_os_error(src, e)}; not removed")


def _destination(src: str, output, to_stdout: bool, force: bool, remove: bool, decompress: bool,
                 warnings: list[str], md: Metadata | None = None) -> tuple[Path | None, bool]:
    """(output path or None for stdout, whether to remove the input), checked
    before any work; with stdout, --rm is ignored with a warning (zstd's rule)."""
    dst = output_for(src, output, to_stdout, decompress, md)
    if dst is not None:
        _check_output(dst, src, force)
        if remove and src != STDIO and _is_device(dst):
            warnings.append(f"{src}: --rm is ignored when the output ({dst}) is not a regular file; the input is kept")
            return dst, False
        return dst, remove and src != STDIO      # standard input has no file to remove
    _check_stdout()
    if remove and src != STDIO:
        warnings.append(f"{src}: --rm is ignored when writing to standard output; the input is kept")
    return None, False


def _source_stat(src: str) -> os.stat_result | None:
    """The stat of an input whose permissions and times its output takes (a
    regular file's; None for stdin and the rest)."""
    try:
        st = os.stat(src) if src != STDIO else None
    except OSError:
        return None
    return st if st is not None and stat.S_ISREG(st.st_mode) else None


def _write_device(data: bytes, dst: Path) -> None:
    try:
        fd = os.open(dst, os.O_WRONLY | os.O_NOCTTY)
        try:
            if os.isatty(fd):
                raise PixzipError(f"{dst}: refusing to write binary data to a terminal")
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
    except OSError as e:
        raise PixzipError(f"{dst}: cannot write ({e.strerror or e})") from None


def _deliver(data: bytes, dst: Path | None, force: bool, what: str, src: str = STDIO) -> None:
    """Write ``data`` to stdout, into a character device in place, or
    atomically to ``dst`` with the permissions and times of ``src``: read
    back and compared before it replaces anything, and synced."""
    if dst is None:
        _write_stdout(data)
        return
    if _is_device(dst):
        _write_device(data, dst)
        return

    def check(tmp):
        if Path(tmp).read_bytes() != data:
            raise PixzipError(f"{dst}: the written {what} does not read back the same")

    try:
        atomic_write(dst, lambda tmp: Path(tmp).write_bytes(data), overwrite=force, check=check,
                     like=_source_stat(src))
    except FileExistsError:
        raise PixzipError(f"{dst}: already exists (use -f to overwrite)") from None
    except OSError as e:
        raise PixzipError(f"{dst}: cannot write ({e.strerror or e})") from None


def compress_file(src: str, delivery: Delivery = Delivery(), *, model=None, level=None, method=None,
                  strip_height=0, strip=False, device="auto", progress=None, parts=None) -> Result:
    """Compress one image file (or '-') to .pxz (``parts``: the mixer's
    column parts with a network, ``codec.Options.parts``; None: its default).  With ``delivery.remove``,
    the input is deleted only after the archive on disk has been read back
    and decoded to the same pixels and metadata; with stdout, ``remove`` is
    ignored (with a warning), as zstd does."""
    name = _name(src)
    warnings: list[str] = []
    force, verify = delivery.force, delivery.verify
    dst, remove = _destination(src, delivery.output, delivery.to_stdout, force, delivery.remove, False, warnings)
    key = None
    if src != STDIO:
        try:
            key = _stat_key(Path(src))
        except OSError as e:
            raise ImageError(describe_os_error(src, e)) from None
    data = _read_image(src)
    if not data and src == STDIO:
        raise ImageError("<stdin>: empty input")
    picture, md = read_picture_file(name, data)
    # --rm removes an input only when what pixzip keeps restores it, or when the user named what is dropped
    if remove and md.not_restorable:
        raise ImageError(f"{src}: {md.not_restorable}, and its file cannot be restored from what pixzip keeps; "
                         f"not compressed with --rm (compress it without --rm)")
    if remove and md.dropped and not strip:
        raise ImageError(f"{src}: pixzip does not keep {', '.join(md.dropped)}; not compressed with --rm "
                         f"(compress it without --rm, or add --strip to drop them)")
    if md.dropped and not strip:
        warnings.append(f"{name}: not kept: {', '.join(md.dropped)}")
    if strip and remove and (md.items() or md.dropped):
        warnings.append(f"{name}: dropped (--strip): {', '.join(md.items() + list(md.dropped))}")
    kept = md.stripped() if strip else md
    try:
        archive = codec.compress(picture, model, level=level, method=method, metadata=kept,
                                 options=codec.Options(strip_height=strip_height, device=device,
                                                       progress=progress, parts=parts))
        if verify or remove:
            back, back_md = codec.decompress_picture(archive, model)
            if not same(back, picture) or back_md != kept:
                raise PixzipError("verification failed: the archive does not decode to the input")
    except PixzipError as e:
        raise type(e)(f"{name}: {e}") from None
    # the input's format must hold the picture and what is kept verbatim again
    if remove and (kept.png_chunks or kept.tiff_tags or not picture.plain):
        try:
            encode_picture_file(back, written_format(md.format, back.mode), back_md, name)
        except ImageError as e:
            raise ImageError(f"{e}; not compressed with --rm (compress it without --rm, or add --strip)") from None
    if md.lossy:
        warnings.append(lossy_source(name, md.lossy, len(data), len(archive)))
    _deliver(archive, dst, force, "archive", src)
    if remove:
        _remove_input(src, key, warnings)
    return Result(src, None if dst is None else str(dst), len(archive), picture.pixels.size, warnings,
                  payload_name(codec.read_header(archive)))


def lossy_source(name: str, lossy: str, source_bytes: int, archive_bytes: int) -> str:
    """One line on an archive of a lossily coded source (a JPEG, a lossy
    WebP): pixzip keeps its decoded pixels exactly, which costs several times
    the source; what it was, the sizes, and what to use instead."""
    ratio = archive_bytes / max(source_bytes, 1)
    instead = "keep the original"
    if lossy == "a JPEG":
        jxl = Path(name).with_suffix(".jxl").name
        instead += f", or transcode it losslessly with JPEG XL (cjxl {Path(name).name} {jxl})"
    size = f"{ratio:.1f}x larger" if ratio >= 1.05 else "about as large" if ratio > 0.95 else \
        f"{1 / ratio:.1f}x smaller"
    return (f"{name}: {lossy} of {source_bytes:,} B gives an archive of {archive_bytes:,} B ({size}): pixzip keeps "
            f"its decoded pixels exactly, not its lossy coding; {instead}")


def decompress_file(src: str, delivery: Delivery = Delivery(), *, model=None, strip=False, progress=None) -> Result:
    """Decompress one .pxz file (or '-') to an image, in the format its name
    asks for (photo.png.pxz -> photo.png) or ``delivery.output`` names, with
    its metadata.  The image is written only after it has been read back to
    the same pixels and metadata, and replaces an existing file only with
    ``force``; with ``remove``, the .pxz is deleted after that."""
    name = _name(src)
    warnings: list[str] = []
    output, to_stdout, force, remove = delivery.output, delivery.to_stdout, delivery.force, delivery.remove
    once = _is_stream(src) and src != STDIO     # a FIFO: named after its header, read once
    if not once:
        dst, remove = _destination(src, output, to_stdout, force, remove, True, warnings)
    key = _stat_key(Path(src)) if src != STDIO and Path(src).exists() else None
    header, data = read_archive(src)
    if once:
        dst, remove = _destination(src, output, to_stdout, force, remove, True, warnings,
                                   codec.header_metadata(header))
    try:
        picture, md = codec.decompress_picture(data, model, progress=progress)
    except PixzipError as e:
        raise type(e)(f"{name}: {e}") from None
    if strip:
        md = md.stripped()
    fmt = format_for(dst) if dst is not None else None
    if fmt is None and (dst is None or _is_device(dst)):    # stdout, /dev/null: the original format
        fmt = written_format(md.format, picture.mode)
    if fmt is None:
        raise ImageError(f"{dst}: unknown image format for suffix {dst.suffix!r}")
    image = encode_picture_file(picture, fmt, md, str(dst) if dst is not None else "<stdout>")
    _deliver(image, dst, force, "image", src)
    if remove:
        _remove_input(src, key, warnings)
    return Result(src, None if dst is None else str(dst), len(image), picture.pixels.size, warnings)


def test_file(src: str, model=None, progress=None) -> Result:
    """Decode an archive and check that its image can be written in its own
    format (as ``decompress`` writes it to stdout, or to a name without an
    image suffix), so that ``test`` passes exactly what ``decompress`` does."""
    data = read_archive(src)[1]
    try:
        picture, md = codec.decompress_picture(data, model, progress=progress)
    except PixzipError as e:
        raise type(e)(f"{_name(src)}: {e}") from None
    encode_picture_file(picture, written_format(md.format, picture.mode), md, _name(src))
    return Result(src, None, 0, picture.pixels.size)


def info(src: str) -> dict:
    h, head = read_archive(src, payload=False)
    file_bytes = len(head) + h.payload_length + 4
    try:
        md = codec.header_metadata(h)
    except PixzipError as e:
        raise type(e)(f"{_name(src)}: {e}") from None
    out = {"file": _name(src), "format_version": h.version,
           "payload": payload_name(h) if h.sections else container.KINDS[h.kind]}   # format 3: its sections
    if h.model_name:
        out.update(model=h.model_name, model_hash=h.model_hash.hex())
    if h.kind in (container.NETWORK, container.MIXER):
        out.update(coder=f"{h.coder}: {container.CODERS[h.coder]}")
    out.update(width=h.width, height=h.height, mode=h.mode, strip_height=h.strip_height,
               original_format=md.format or "unknown", metadata="; ".join(md.items()) or "none",
               payload_bytes=h.payload_length, file_bytes=file_bytes,
               bits_per_subpixel=8 * file_bytes / h.n_subpixels)
    return out
