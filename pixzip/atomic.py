"""Atomic output: write to a temporary file beside the target, then rename.

A failure or interruption never leaves a half-written output behind, and the
final file gets the usual permissions (0666 minus the umask), not mkstemp's 0600,
or those and the times of a given file (as gzip, xz and zstd give their outputs
the input's).
"""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Callable


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path, directory=False) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    except OSError:   # some file systems cannot sync a directory
        if not directory:
            raise
    finally:
        os.close(fd)


def atomic_write(path, write: Callable[[str], None], overwrite: bool = True,
                 check: Callable[[str], None] | None = None, like: os.stat_result | None = None) -> None:
    """Call ``write(tmp_path)``, then ``check(tmp_path)`` (which raises if the
    file is not right), and move the result to ``path``, synced to disk, so
    that an input may be deleted once this returns.  With ``overwrite``
    False, an existing ``path`` is never replaced (FileExistsError), even one
    that appears while the file is written.  With ``like`` (a file's stat),
    the output gets that file's permission bits (not set-user/group-ID or
    sticky) and its access and modification times, else 0666 minus the
    umask and the current time."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        if check is not None:
            check(tmp)
        if like is None:
            os.chmod(tmp, 0o666 & ~_umask())
        else:
            os.chmod(tmp, stat.S_IMODE(like.st_mode) & 0o777)
            os.utime(tmp, ns=(like.st_atime_ns, like.st_mtime_ns))
        _fsync(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)      # fails if path exists: no race with another writer
            except FileExistsError:
                raise
            except OSError:             # no hard links on this file system
                if path.exists():
                    raise FileExistsError(f"{path}: already exists") from None
                os.replace(tmp, path)
            else:
                os.unlink(tmp)
        _fsync(path.parent, directory=True)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path, data: bytes, overwrite: bool = True) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), overwrite=overwrite)
