"""Bulk jobs: compress, decompress or test a large set of files, on the
local process pool or on Ray Data (the ``pixzip[ray]`` extra), with a
manifest of JSON lines that a rerun reads to skip what is done.

    from pixzip import bulk
    s = bulk.compress(["photos"], "archives", level=1, engine="ray", jobs=4)
    print(s.done, s.skipped, s.failed, s.mb_per_s)

Imports nothing heavy: the codec loads when a job runs, Ray only in the
ray engine.
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

from .job import DEFAULT_ENGINE, ENGINES, Engine, Summary
from .manifest import NAME as MANIFEST_NAME

__all__ = ["DEFAULT_ENGINE", "ENGINES", "MANIFEST_NAME", "Engine", "Summary", "compress", "decompress", "test"]

PathLike = str | os.PathLike
OnRecord = Callable[[dict], None] | None
OnNote = Callable[[str], None] | None


def compress(sources: Sequence[PathLike], output_dir: PathLike, *, level: int | None = None,
             model: str | None = None, method: str | None = None, strip: bool = False, engine: str = DEFAULT_ENGINE,
             address: str | None = None, jobs: int | None = None, threads: int | None = None,
             manifest: PathLike | None = None, force: bool = False, on_record: OnRecord = None,
             on_note: OnNote = None) -> Summary:
    """Compress every image of ``sources`` (files, and folders walked) to
    .pxz files mirrored under ``output_dir``, as ``pixzip compress``
    does each; the manifest (default ``output_dir/pixzip-manifest.jsonl``)
    gets a line per file, and the files it says are done (and still are)
    are skipped."""
    from . import job
    options = dict(level=level, model=model, method=method, strip=strip)
    return job.run("compress", sources, output_dir, options, engine=Engine(engine, address, jobs, threads),
                   manifest_path=manifest, force=force, on_record=on_record, on_note=on_note)


def decompress(sources: Sequence[PathLike], output_dir: PathLike, *, model: str | None = None, strip: bool = False,
               engine: str = DEFAULT_ENGINE, address: str | None = None, jobs: int | None = None,
               threads: int | None = None, manifest: PathLike | None = None, force: bool = False,
               on_record: OnRecord = None, on_note: OnNote = None) -> Summary:
    """Decompress every .pxz file of ``sources`` to images mirrored under ``output_dir``."""
    from . import job
    return job.run("decompress", sources, output_dir, dict(model=model, strip=strip),
                   engine=Engine(engine, address, jobs, threads), manifest_path=manifest, force=force,
                   on_record=on_record, on_note=on_note)


def test(sources: Sequence[PathLike], output_dir: PathLike | None = None, *, model: str | None = None,
         engine: str = DEFAULT_ENGINE, address: str | None = None, jobs: int | None = None,
         threads: int | None = None, manifest: PathLike | None = None, on_record: OnRecord = None,
         on_note: OnNote = None) -> Summary:
    """Decode every .pxz file of ``sources`` and verify it, writing nothing
    but the manifest (in ``output_dir``, or at ``manifest``)."""
    from . import job
    return job.run("test", sources, output_dir, dict(model=model), engine=Engine(engine, address, jobs, threads),
                   manifest_path=manifest, on_record=on_record, on_note=on_note)


setattr(test, "__test__", False)     # not a test for pytest, when a test module imports it
