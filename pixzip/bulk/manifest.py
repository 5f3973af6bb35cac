"""A bulk job's manifest: a line of JSON per file, appended and flushed as
each file finishes, so that a job killed at any point keeps what it
finished, and a rerun knows what it may skip.

A line's fields, in this order: ``input`` and ``output`` (absolute paths;
``output`` null for ``test``), ``command``, ``bytes_in`` (the input file's
size), ``bytes_out`` (the output's; null for ``test``), ``bits_per_subpixel``
(of the archive: the output's when compressing, the input's otherwise),
``seconds``, ``error`` (the one line that says why the file failed, null
when it is done), ``crc32`` (8 hex digits), ``blake2b`` (32 hex digits: see
``checksums``) and ``size`` of the file the line vouches for (the output; for ``test``, the archive tested), ``version``
(pixzip's), and ``level``, ``model`` and ``method`` (compress's, as
given: the coding asked for; null otherwise).

A rerun skips a file whose last line says done only when that file still
has the recorded size and checksums (``changed`` reads it); anything else is
done again.  The job's driver writes the manifest (``Writer``); workers only
return the lines (``record``), so that one process appends to it.
"""
from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

NAME = "pixzip-manifest.jsonl"
FIELDS = ("input", "output", "command", "bytes_in", "bytes_out", "bits_per_subpixel", "seconds", "error",
          "crc32", "blake2b", "size", "version", "level", "model", "method")
CODING = ("level", "model", "method")     # what a compress job asked for: a rerun that asks otherwise redoes
READ_STEP = 1 << 20


def checksums(path: str) -> tuple[str, str]:
    """(CRC-32, BLAKE2b-128) of a file's bytes, as hex digits, in one read.

    The CRC-32 alone cannot vouch for a .pxz file: each of its blocks ends
    with its own CRC-32, and the CRC-32 of a block followed by its CRC-32 is
    a constant, so two stored archives of one size have one file CRC-32."""
    import hashlib
    crc, blake = 0, hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(READ_STEP):
            crc = zlib.crc32(block, crc)
            blake.update(block)
    return f"{crc:08x}", blake.hexdigest()


def version() -> str:
    import pixzip
    return pixzip.__version__


def key(command: str, source: str | None, output: str | None) -> tuple:
    """What a line is about: the command, its input and output (absolute)."""
    return command, os.path.abspath(source) if source else None, os.path.abspath(output) if output else None


def record(done, command: str, coding: dict) -> dict:
    """The manifest line of a finished ``batch.Done`` (in a worker or the
    driver), with ``coding`` (``CODING``'s fields): the vouched file's size
    and checksums are read from the disk."""
    job, r = done.job, done.result
    rec: dict = dict.fromkeys(FIELDS)
    rec.update(input=os.path.abspath(job.source), output=os.path.abspath(job.output) if job.output else None,
               command=command, bytes_in=done.in_bytes, seconds=round(done.seconds, 4), error=done.error,
               version=version(), **coding)
    if r is None:
        return rec
    vouched = rec["output"] if command != "test" else rec["input"]
    if command != "test":
        rec["bytes_out"] = r.out_bytes
    archive = r.out_bytes if command == "compress" else done.in_bytes
    if r.subpixels:
        rec["bits_per_subpixel"] = round(8 * archive / r.subpixels, 6)
    try:
        (rec["crc32"], rec["blake2b"]), rec["size"] = checksums(vouched), os.stat(vouched).st_size
    except OSError as e:
        from ..errors import describe_os_error
        rec["error"] = f"pixzip: {describe_os_error(vouched, e)} (done, but not readable back)"
    return rec


def changed(rec: dict) -> str | None:
    """Why the file a done line vouches for is not as recorded (missing,
    another size, another CRC32), or None when it is."""
    path = rec["output"] if rec["command"] != "test" else rec["input"]
    try:
        size = os.stat(path).st_size
        if size != rec["size"]:
            return f"{path} is {size} bytes, the manifest says {rec['size']}"
        crc, blake = checksums(path)
    except FileNotFoundError:
        return f"{path} is missing"
    except OSError as e:
        from ..errors import describe_os_error
        return describe_os_error(path, e)
    if (crc, blake) != (rec["crc32"], rec["blake2b"]):
        return f"{path} has CRC-32 {crc} and BLAKE2b {blake[:8]}..., the manifest says {rec['crc32']} and " \
               f"{str(rec['blake2b'])[:8]}..."
    return None


def read(path: str) -> tuple[dict[tuple, dict], int]:
    """(the last line of each (command, input, output), the number of lines
    that could not be read: a line cut short by a killed job is passed
    over).  No manifest yet: nothing."""
    found: dict[tuple, dict] = {}
    bad = 0
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError:
        return found, 0
    with f:
        for line in f:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                found[key(rec["command"], rec["input"], rec["output"])] = rec
            except (ValueError, KeyError, TypeError):
                bad += 1
    return found, bad


class Writer:
    """Appends lines to a manifest, each flushed at once; the file is locked
    (two jobs never append to one manifest), and a last line a killed job
    cut short is ended first, so that the next line stands alone."""

    def __init__(self, path: str):
        from ..errors import PixzipError
        self.path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "ab")
        try:
            import fcntl
            fcntl.flock(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:      # no fcntl (Windows): not locked
            pass
        except OSError:
            self.file.close()
            raise PixzipError(f"{path}: in use by another bulk job (wait for it, or give --manifest)") from None
        with open(path, "rb") as f:
            if f.seek(0, os.SEEK_END):
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    self.file.write(b"\n")

    def write(self, rec: dict) -> None:
        self.file.write(json.dumps(rec).encode() + b"\n")
        self.file.flush()

    def close(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
