"""The ray engine of a bulk job: Ray Data over the files' paths.

Paths in (``ray.data.from_items``), not bytes (``read_binary_files``): the
codec reads each file itself, as the command line does (size checked before
it is read, its permissions and times given to its output), and writes its
output atomically beside the target, so a worker needs only the path, and
the driver never holds the images.  On a cluster the paths must name the
same files on every node (a shared file system), and pixzip must be
installed on every node.

Each worker is an instance of ``Coder`` (a callable class in
``map_batches``): its ``__init__`` sets its numba threads and loads the
level's model and compiled kernels once; the actor pool's size (``compute=
ActorPoolStrategy(size=N)``, what ``concurrency=N`` said before Ray 2.51) is
the number of workers (``--jobs``), ``num_cpus`` each one's threads
(``--threads``).  The
workers return manifest lines; the driver writes them as they stream back
(``iter_rows``), so that the manifest grows as files finish.

Ray is imported only here, and only when a job runs.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import threading

from . import manifest

RAY_EXTRA = "pip install 'pixzip[ray]'"
# Files per block at most (a block's lines reach the manifest together): one file a block up to this many files.
MAX_BLOCKS = 10_000


def require():
    """Ray, imported; without it, one line saying how to install it (PixzipError)."""
    from ..errors import PixzipError
    try:
        import ray
        import ray.data
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] == "ray":
            raise PixzipError(f"the ray engine needs Ray Data, which is not installed (the ray extra): "
                              f"{RAY_EXTRA}") from None
        raise
    return ray


def _warm(task) -> None:
    """Load a compress job's model and compile its kernels (a 2x2 round
    trip); an archive names its own model, loaded at its first file.  A
    failure here is left for each file to report."""
    if task.command != "compress":
        return
    from ..codec import api, levels
    o = task.options
    method, model = o.get("method"), o.get("model")
    if method is None and model is None:
        method, model, _ = levels.level_choice(o.get("level"))
    try:
        api.warm_up(model, method or levels.MIXER_NETWORK)
    except Exception:   # noqa: BLE001  (an unknown model, ...: said per file, in its line)
        pass


class Coder:
    """A Ray Data worker: one file at a time (batches of one row), each done
    by ``batch.do`` and returned as its manifest line (JSON text)."""

    def __init__(self, tasks: tuple, coding: dict, threads: int):
        os.environ["NUMBA_NUM_THREADS"] = str(threads)     # before numba loads, which reads it once
        self.tasks, self.coding = tasks, coding
        _warm(tasks[0])

    def __call__(self, rows: dict) -> dict:
        import numpy as np

        from ..app import batch
        lines = []
        for index, source, output, make_folder, group in zip(rows["index"], rows["source"], rows["output"],
                                                               rows["make_folder"], rows["group"]):
            task = self.tasks[int(group)]
            job = batch.Job(int(index), str(source), str(output) or None, bool(make_folder))
            lines.append(json.dumps(manifest.record(batch.do(task, job), task.command, self.coding)))
        return {"line": np.array(lines, dtype=object)}


def run(groups, coding: dict, engine, written) -> None:
    """Do every group's jobs (``(task, jobs)``) on Ray Data; ``written(line)``
    each line as it comes back.  Without ``engine.address`` a local Ray
    instance is started and stopped; with it, the job joins that cluster.
    A Ray already started in this process (a test's) is used as it is."""
    from ..app import batch
    items = [dict(index=j.index, source=j.source, output=j.output or "", make_folder=j.make_folder, group=g)
             for g, (_, jobs) in enumerate(groups) for j in jobs]
    if not items:
        return
    new = {item["output"] for item in items if item["output"] and not os.path.lexists(item["output"])}
    ray = require()
    started = not ray.is_initialized()
    threads = engine.threads or 1
    if started:
        _start(ray, engine, threads)
    seen: set[str] = set()
    context = ray.data.DataContext.get_current()
    before = context.enable_progress_bars, context.max_errored_blocks
    try:
        context.enable_progress_bars = False
        context.max_errored_blocks = -1     # a worker that dies: its files are lines of their own (below)
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        workers = min(engine.jobs or max(1, cpus // threads), len(items))
        data = ray.data.from_items(items, override_num_blocks=min(len(items), MAX_BLOCKS))
        lines = data.map_batches(Coder, fn_constructor_kwargs=dict(tasks=tuple(t for t, _ in groups), coding=coding,
                                                                   threads=threads),
                                 batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=threads)
        for row in lines.iter_rows():
            rec = json.loads(row["line"])
            seen.add(rec["input"])
            written(rec)
        for item in items:          # a block lost with its worker (killed, out of memory)
            if os.path.abspath(item["source"]) not in seen:
                task = groups[item["group"]][0]
                lost = batch.Done(batch.Job(item["index"], item["source"], item["output"] or None),
                                  error=f"pixzip: {item['source']}: not done, a Ray worker ended unexpectedly "
                                        f"(killed, or out of memory?)")
                written(manifest.record(lost, task.command, coding))
    except BaseException:       # Ctrl-C, SIGTERM, Ray's own failure: the workers stop, their files are unwound
        if started:
            ray.shutdown()
            started = False
        _remove_unrecorded([item["output"] for item in items if os.path.abspath(item["source"]) not in seen], new)
        raise
    finally:
        context.enable_progress_bars, context.max_errored_blocks = before
        if started:
            ray.shutdown()


def _start(ray, engine, threads: int) -> None:
    """A local Ray instance with the CPUs the job asks for, or the cluster
    at ``engine.address`` joined; Ray's notes kept off the terminal."""
    from ..app import batch
    from ..errors import PixzipError
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")     # the C++ core: no notes on a normal run
    quiet = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    main_thread = threading.current_thread() is threading.main_thread()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s and main_thread}
    try:
        if engine.address:
            ray.init(address=engine.address, **quiet)
        else:
            ray.init(num_cpus=max(batch.usable_cores(), (engine.jobs or 1) * threads), **quiet)
    except (ConnectionError, ValueError, RuntimeError) as e:
        where = f"the Ray cluster at {engine.address}" if engine.address else "a local Ray instance"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise PixzipError(f"cannot start or join {where}: {first}") from None
    for sig, handler in handlers.items():     # Ray's core would end the process at once: SIGTERM unwinds, as Ctrl-C
        if callable(handler):
            signal.signal(sig, handler)


def _remove_unrecorded(outputs: list[str], new: set[str]) -> None:
    """After an interruption, of the files with no manifest line: the
    temporary files (``atomic_write``'s, beside each output) of workers Ray
    stopped at once, and an output this job made (it did not exist before)
    whose line never came back, so that every output left is vouched for
    and a rerun makes the rest."""
    import glob
    for output in outputs:
        if not output:
            continue
        folder, name = os.path.split(output)
        made = glob.glob(os.path.join(glob.escape(folder or "."), f".{glob.escape(name)}.*.tmp"))
        for path in made + ([output] if output in new else []):
            try:
                os.unlink(path)
            except OSError:
                pass
