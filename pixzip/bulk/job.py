"""A bulk job: every file under the folders given (walked as ``-r`` walks
them, ``batch.find``), each output mirrored under the output folder
(``batch.mirrored``), each file done as the command line does it alone
(``batch.do``: atomic writes, no overwrite without force, nothing partial
left), by one of two engines, with a manifest (``manifest``) that a rerun
reads to skip what is done.

The engines: ``local``, the ``-j`` process pool of ``batch.run`` (the
default: nothing to install, nothing to start, and on one machine as fast);
``ray``, Ray Data on a local instance or a cluster (``ray_engine``).  Both
make the same files and the same manifest lines (but the seconds).

A file that fails is a manifest line with its one-line error, never a
stopped job; a rerun does it again.  A file whose line says done is skipped
when what it vouches for is still as recorded; otherwise it is done again
(an output pixzip made and that has changed since is replaced) and said.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

from . import manifest

ENGINES = ("local", "ray")
DEFAULT_ENGINE = "local"


@dataclass
class Summary:
    """What a bulk job did: files ``done`` now, ``skipped`` (done before and
    verified), ``failed`` (each a manifest line with its error), ``redone``
    (of the done: recorded as done, but found changed or missing),
    ``bytes_in`` (the input files' bytes done now) and the wall ``seconds``."""
    command: str
    engine: str
    manifest: str
    done: int = 0
    skipped: int = 0
    failed: int = 0
    redone: int = 0
    bytes_in: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def mb_per_s(self) -> float:
        """Input megabytes (10**6 bytes) done per second of the job."""
        return self.bytes_in / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (f"pixzip: bulk {self.command} ({self.engine}): {self.done} done, {self.skipped} skipped, "
                f"{self.failed} failed, {self.bytes_in / 1e6:.1f} MB in {self.seconds:.1f} s, "
                f"{self.mb_per_s:.2f} MB/s; manifest {self.manifest}")


@dataclass(frozen=True)
class Engine:
    """Where the files are done: ``name`` (``ENGINES``), ``address`` (ray: a
    cluster to join; None starts a local instance), ``jobs`` workers (None:
    the usable cores, or the cluster's CPUs), ``threads`` each (None: local,
    a fair share of the cores; ray, one)."""
    name: str = DEFAULT_ENGINE
    address: str | None = None
    jobs: int | None = None
    threads: int | None = None


def run(command: str, sources: Sequence, output_dir, options: dict, *, engine: Engine = Engine(),
        manifest_path=None, force: bool = False, on_record: Callable[[dict], None] | None = None,
        on_note: Callable[[str], None] | None = None) -> Summary:
    """Do ``command`` (compress, decompress, test) on every file of
    ``sources`` (files, and folders walked), outputs under ``output_dir``
    (test: none), ``options`` the per-file keywords (level, model, ...).
    ``on_record`` sees each manifest line as it is written, ``on_note``
    each line that says what the job passed over or redoes."""
    from ..app import batch, files
    from ..errors import PixzipError
    if engine.name not in ENGINES:
        raise PixzipError(f"unknown engine {engine.name!r}: one of {', '.join(ENGINES)}")
    if engine.address is not None and engine.name != "ray":
        raise PixzipError("--address joins a Ray cluster: give --engine ray")
    if output_dir is None and (command != "test" or manifest_path is None):
        raise PixzipError(f"bulk {command} needs an output folder" + ("" if command != "test" else " or a manifest"))
    if engine.name == "ray":
        from . import ray_engine
        ray_engine.require()          # before anything is written
    path = str(manifest_path or os.path.join(output_dir, manifest.NAME))
    note = on_note or (lambda line: None)
    summary = Summary(command, engine.name, path)
    t0 = time.perf_counter()

    walk = batch.find([os.fspath(s) for s in sources], True, command != "compress")
    if batch.STDIO in (f.path for f in walk.found):
        raise PixzipError("a bulk job reads files, not standard input ('-')")
    planned, failures = batch.plan(walk, command, None if command == "test" else os.fspath(output_dir), None,
                                   False, measure=False)
    coding = _coding(command, options)
    previous, bad = manifest.read(path)
    if bad:
        note(f"pixzip: {path}: {bad} line(s) that could not be read passed over (a job killed while writing?)")
    todo: list = []
    redo: list = []
    for job in planned:
        rec = previous.get(manifest.key(command, job.source, job.output))
        if rec is None or rec.get("error") is not None or any(rec.get(k) != v for k, v in coding.items()):
            todo.append(job)
            continue
        why = manifest.changed(rec)
        if why is None:
            summary.skipped += 1
            continue
        note(f"pixzip: {job.source}: done before, but {why}; done again")
        summary.redone += 1
        (redo if job.output and os.path.lexists(job.output) else todo).append(job)

    writer = manifest.Writer(path)

    def written(rec: dict) -> None:
        writer.write(rec)
        if rec["error"] is None:
            summary.done += 1
            summary.bytes_in += rec["bytes_in"] or 0
        else:
            summary.failed += 1
            summary.errors.append(rec["error"])
        if on_record:
            on_record(rec)

    try:
        planned_indices = {j.index for j in planned}
        unplanned = [f for k, f in enumerate(walk.found) if k not in planned_indices]
        for found, error in zip(unplanned, failures):      # plan's failures, in the inputs' order
            written(manifest.record(batch.Done(batch.Job(-1, found.path), error=error), command, coding))
        for line in walk.errors:             # a folder that cannot be read: a line with no input of its own
            written(dict(dict.fromkeys(manifest.FIELDS), command=command, error=line, version=manifest.version(),
                         **coding))
        delivery = None if command == "test" else files.Delivery(force=force)
        task = batch.Task(command, delivery, dict(options))
        forced = replace(task, delivery=replace(delivery, force=True)) if delivery is not None else task
        groups = [(task, todo), (forced, redo)]
        if engine.name == "local":
            _local(groups, command, coding, engine, written)
        else:
            ray_engine.run(groups, coding, engine, written)
    finally:
        writer.close()
        summary.seconds = time.perf_counter() - t0
    return summary


def _coding(command: str, options: dict) -> dict:
    """What a compress job's lines record of the coding asked for (``manifest.CODING``):
    the level given, or the default level when neither a model nor a method is
    named, and the model and method as given; all None for other commands."""
    coding = dict.fromkeys(manifest.CODING)
    if command != "compress":
        return coding
    coding.update(model=options.get("model"), method=options.get("method"), level=options.get("level"))
    if coding["level"] is None and coding["model"] is None and coding["method"] is None:
        from ..codec.levels import DEFAULT_LEVEL
        coding["level"] = DEFAULT_LEVEL
    return coding


def _local(groups, command: str, coding: dict, engine: Engine, written: Callable[[dict], None]) -> None:
    """The -j process pool of ``batch.run``; each file's line made here as it ends."""
    from ..app import batch
    settings = batch.Settings(engine.jobs, engine.threads, progress=False, quiet=True)
    for task, jobs in groups:
        batch.run(task, jobs, settings, lambda done: written(manifest.record(done, command, coding)), ordered=False)
