"""Many files at once: folders walked (``-r``), outputs mirrored under
``--output-dir``, the files shared by worker processes (``-j``), each with
its share of the cores' threads (``-T``), and one progress bar over them all.

Each file is done by ``files`` as when it is named alone (no overwrite
without force, atomic writes, nothing lost), and one that fails stops
nothing else: it is reported in one line, and the run goes on.

Workers are started by ``spawn`` (numba's threads and a forked process do
not mix), each sets its thread count before numba loads (``start_worker``),
and keeps its models and compiled kernels for every file it is given (the
registry caches them).  Ctrl-C, SIGTERM or SIGHUP stop every worker, each
removing the temporary file it was writing: no partial output is left.

This module imports nothing heavy at the top, so that a worker can set its
threads before numba loads.
"""
from __future__ import annotations

import os
import signal
import stat
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

STDIO = "-"
PXZ = ".pxz"
COMMANDS = ("compress", "decompress", "test")

# What the progress bar calls each command's work.
VERBS = {"compress": "compress", "decompress": "decode", "test": "test"}

# The progress bar: tqdm's, with the unit after both counts (raw bytes of the images).
BAR = "{l_bar}{bar}| {n_fmt}B/{total_fmt}B [{elapsed}<{remaining}, {rate_fmt}{postfix}]"

# How often a worker sends the pixels it has coded (seconds).
PROGRESS_EVERY = 0.2


# ------------------------------------------------------------ finding files

def usable_cores() -> int:
    """The cores this process may run on (its affinity, as taskset or a container sets it)."""
    from ..codec import threads
    return threads._cores()


def image_suffixes() -> frozenset[str]:
    """The suffixes of the image formats Pillow reads here (.png, .tif, ...), never .pxz."""
    from PIL import Image
    Image.init()
    return frozenset(s.lower() for s in Image.registered_extensions()) - {PXZ}


@dataclass(frozen=True)
class Found:
    """An input: ``path`` as given or found; ``root``, the folder argument it
    was found under (None: it was named itself)."""
    path: str
    root: str | None = None


@dataclass
class Walk:
    """What ``find`` found: the inputs, in order; ``notes``, the files and
    folders it passed over and why (shown under -v); ``errors``, the folders
    it could not read (each a failure, one line)."""
    found: list[Found] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def find(paths, recursive: bool, archives: bool) -> Walk:
    """The inputs named by ``paths``: a file as given; with ``recursive``,
    every image file under a folder (a suffix Pillow knows, never .pxz), or
    every .pxz file with ``archives``, in sorted order.  Links to files are
    followed (the output is named after the link); links to folders are not
    (a folder is never walked twice, and a link never loops).  A path named
    twice is refused by ``plan``, as two inputs of one output."""
    walk = Walk()
    want = (lambda name: name.lower().endswith(PXZ)) if archives else _is_image_name()
    for p in paths:
        if recursive and p != STDIO and os.path.isdir(p):
            _walk_folder(p, want, archives, walk)
        else:
            walk.found.append(Found(p))
    return walk


def _is_image_name() -> Callable[[str], bool]:
    suffixes = image_suffixes()
    return lambda name: not name.lower().endswith(PXZ) and os.path.splitext(name)[1].lower() in suffixes


def _walk_folder(root: str, want, archives: bool, walk: Walk) -> None:
    def failed(e: OSError) -> None:
        from ..errors import describe_os_error
        walk.errors.append(f"pixzip: {describe_os_error(e.filename or root, e)}")

    what = "a .pxz file" if archives else "an image file (a suffix Pillow reads)"
    for folder, dirs, names in os.walk(root, onerror=failed):
        dirs.sort()
        for d in list(dirs):
            if os.path.islink(os.path.join(folder, d)):
                dirs.remove(d)
                walk.notes.append(f"{os.path.join(folder, d)}: skipped, a link to a folder (not followed)")
        for name in sorted(names):
            path = os.path.join(folder, name)
            try:
                mode = os.stat(path).st_mode      # a link's target
            except OSError:
                walk.notes.append(f"{path}: skipped, a broken link")
                continue
            if not stat.S_ISREG(mode):
                walk.notes.append(f"{path}: skipped, not a regular file")
            elif not want(name):
                walk.notes.append(f"{path}: skipped, not {what}")
            else:
                walk.found.append(Found(path, root))


# ------------------------------------------------------------ planning

@dataclass(frozen=True)
class Job:
    """One file's work: ``output`` its output path where the run chose it
    (None: the suffix rule, -o or stdout); ``make_folder`` creates the
    output's folder first; ``pixels`` and ``raw_bytes`` (the image's samples
    in bytes) size it on the progress bar (0: not known)."""
    index: int
    source: str
    output: str | None = None
    make_folder: bool = False
    pixels: int = 0
    raw_bytes: int = 0


def mirrored(found: Found, output_dir: str, command: str) -> str:
    """The output of ``found`` under ``output_dir``: a file found under a
    folder keeps its place under the folder's own name (photos/a/b.png ->
    OUT/photos/a/b.png.pxz, whatever path named photos), a file named
    itself goes at the top (OUT/b.png.pxz)."""
    from . import files
    if command == "compress":
        name = files.compressed_name(os.path.basename(found.path)).name
    else:
        name = files.output_for(found.path, None, False, True).name
    if found.root is None:
        return os.path.join(output_dir, name)
    top = Path(os.path.abspath(found.root)).name
    rel = os.path.relpath(os.path.dirname(found.path), found.root)
    return os.path.normpath(os.path.join(output_dir, top, rel, name))


def plan(walk: Walk, command: str, output_dir: str | None, output: str | None, to_stdout: bool,
         measure: bool) -> tuple[list[Job], list[str]]:
    """(jobs, failures): a job per input; an input whose output cannot be
    named is a failure (its one line), not a job.  Two inputs that would
    write one output are refused before any work (PixzipError).  With
    ``measure``, each job is sized for the progress bar (its header read)."""
    from ..errors import PixzipError
    from . import files
    jobs, failures, outputs = [], [], {}
    for k, f in enumerate(walk.found):
        dst = None
        if command == "compress" and f.path.lower().endswith(PXZ):
            failures.append(f"pixzip: {f.path}: already a {PXZ} file, not compressed again "
                            f"(pixzip -d decompresses it)")
            continue
        if output_dir is not None and f.path != STDIO:
            try:
                dst = mirrored(f, output_dir, command)
            except PixzipError as e:
                failures.append(f"pixzip: {e}")
                continue
            outputs[f.path] = dst
        pixels, raw = _size(f.path, command) if measure else (0, 0)
        jobs.append(Job(k, f.path, dst, dst is not None, pixels, raw))
    if command != "test":
        files.check_outputs([j.source for j in jobs], output, to_stdout, command == "decompress", outputs)
    return jobs, failures


def _size(src: str, command: str) -> tuple[int, int]:
    """(pixels, raw bytes) of an input, from its header alone; (0, 0) for a
    stream (read once), or what cannot be read (its error comes when it is done)."""
    try:
        if src == STDIO or not stat.S_ISREG(os.stat(src).st_mode):
            return 0, 0
        if command == "compress":
            import warnings

            from PIL import Image
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(src) as im:
                    pixels = im.width * im.height
                    return pixels, pixels * len(im.getbands()) * (2 if "16" in im.mode else 1)
        from . import files
        h = files.read_archive(src, payload=False)[0]
        return h.width * h.height, h.n_subpixels * (2 if "16" in str(getattr(h, "mode", "")) else 1)
    except Exception:   # noqa: BLE001  (only the bar's size: the file's own error is reported when it is done)
        return 0, 0


# ------------------------------------------------------------ one file

@dataclass(frozen=True)
class Task:
    """What every file of a run gets: the command, its ``files.Delivery``
    (its ``output`` is -o's; a job's own output wins) and keywords
    (model, level, method, strip, ...)."""
    command: str
    delivery: object = None
    options: dict = field(default_factory=dict)


@dataclass
class Done:
    """A finished job: its ``files.Result``, or ``error``, the one line that
    says why it failed; ``in_bytes``, the input file's size; ``seconds``."""
    job: Job
    result: object = None
    error: str | None = None
    in_bytes: int = 0
    seconds: float = 0.0


def unexpected(where: str | None, error: BaseException) -> str:
    """The one line for an error pixzip does not expect: the file, the
    exception's type and first line, and how to see the traceback (shown
    before it when $PIXZIP_DEBUG is set)."""
    if isinstance(error, MemoryError):
        return f"pixzip: {where + ': ' if where else ''}out of memory (this machine cannot give pixzip what it needs)"
    debug = bool(os.environ.get("PIXZIP_DEBUG"))
    if debug:
        import traceback
        print("".join(traceback.format_exception(error)).rstrip("\n"), file=sys.stderr, flush=True)
    first = (str(error).splitlines() or [""])[0]
    return (f"pixzip: {where + ': ' if where else ''}unexpected error ({type(error).__name__}"
            f"{': ' + first if first else ''}), a bug in pixzip; please report it"
            f"{'' if debug else ' (PIXZIP_DEBUG=1 shows the traceback)'}")


def do(task: Task, job: Job, progress: Callable[[int], None] | None = None) -> Done:
    """One file, as the command does it alone; a failure is its one line."""
    from ..errors import PixzipError
    from . import files
    t0 = time.perf_counter()
    done = Done(job)
    try:
        done.in_bytes = os.stat(job.source).st_size if job.source != STDIO else 0
    except OSError:
        pass
    try:
        if job.make_folder:
            Path(job.output).parent.mkdir(parents=True, exist_ok=True)
        delivery = task.delivery if job.output is None else replace(task.delivery, output=job.output)
        if task.command == "compress":
            done.result = files.compress_file(job.source, delivery, progress=progress, **task.options)
        elif task.command == "decompress":
            done.result = files.decompress_file(job.source, delivery, progress=progress, **task.options)
        else:
            done.result = files.test_file(job.source, progress=progress, **task.options)
    except BrokenPipeError:      # the reader went away (``| head``): the caller stops quietly
        raise
    except (PixzipError, OSError) as e:
        done.error = f"pixzip: {e}"
    except Exception as e:   # noqa: BLE001  (MemoryError, a bug: one line, and on to the next file)
        done.error = unexpected("<stdin>" if job.source == STDIO else job.source, e)
    done.seconds = time.perf_counter() - t0
    return done


# ------------------------------------------------------------ workers

class _Stopped(KeyboardInterrupt):
    """SIGTERM in a worker: unwinds the file being written (its temporary file is removed)."""


_worker: dict = {"queue": None, "busy": False}


def _on_term(signum, frame):
    if _worker["busy"]:
        raise _Stopped(signum)
    os._exit(128 + signum)


def start_worker(threads: int, queue) -> None:
    """A worker's start: its numba threads (before numba loads, which reads
    NUMBA_NUM_THREADS once), Ctrl-C left to the parent (which stops every
    worker), SIGTERM unwinding the file in hand."""
    os.environ["NUMBA_NUM_THREADS"] = str(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_term)
    _worker["queue"] = queue


def _work(task: Task, job: Job) -> Done:
    """A job in a worker: its pixels sent to the parent as they are coded."""
    queue = _worker["queue"]
    sent = [0, time.monotonic()]

    def progress(n: int) -> None:
        sent[0] += n
        if time.monotonic() - sent[1] >= PROGRESS_EVERY:
            queue.put((job.index, sent[0]))
            sent[:] = [0, time.monotonic()]

    _worker["busy"] = True
    try:
        return do(task, job, progress)
    except _Stopped:       # the file in hand has been unwound (no temporary file is left)
        os._exit(128 + signal.SIGTERM)
    finally:
        _worker["busy"] = False


# ------------------------------------------------------------ the run

def threads_each(jobs: int, threads: int | None) -> int:
    """Numba threads per worker: ``threads`` (-T) if given, else a fair share
    of the usable cores (at least one), no more than $NUMBA_NUM_THREADS."""
    if threads:
        return threads
    share = max(1, usable_cores() // max(1, jobs))
    user = os.environ.get("NUMBA_NUM_THREADS", "")
    return min(share, int(user)) if user.isdigit() and int(user) > 0 else share


class Bar:
    """One progress bar over every file: the images' raw bytes (their samples)
    done of the total, the files done, the ratio so far (output bytes against
    raw, compressed bytes against raw when decompressing) and an ETA.  On
    stderr only when it is a terminal or ``show`` asks, never when ``quiet``;
    it appears after a second of work."""

    def __init__(self, command: str, jobs: list[Job], show: bool | None, quiet: bool):
        from tqdm import tqdm
        self.command, self.n, self.files = command, len(jobs), 0
        self.raw = {j.index: (j.raw_bytes / j.pixels if j.pixels else 0.0) for j in jobs}
        self.left = {j.index: j.raw_bytes for j in jobs}
        self.coded = self.samples = 0
        total = sum(j.raw_bytes for j in jobs)
        name = jobs[0].source if len(jobs) == 1 else f"{len(jobs)} files"
        visible = (sys.stderr.isatty() if show is None else show) and not quiet
        self.bar = tqdm(total=total or None, desc=f"{VERBS[command]} {'<stdin>' if name == STDIO else name}",
                        unit="B", unit_scale=True, delay=1.0, leave=False, dynamic_ncols=True, file=sys.stderr,
                        disable=not visible, mininterval=0.2, bar_format=BAR if total else None)

    def pixels(self, index: int, n: int) -> None:
        """``n`` more pixels of a job coded."""
        step = min(self.left.get(index, 0), round(n * self.raw.get(index, 0.0)))
        if step:
            self.left[index] -= step
            self.bar.update(step)
        elif not self.raw.get(index):
            self.bar.update(0)

    def finished(self, done: Done) -> None:
        self.bar.update(self.left.pop(done.job.index, 0))
        self.files += 1
        r = done.result
        if r is not None and r.subpixels:
            self.coded += r.out_bytes if self.command == "compress" else done.in_bytes
            self.samples += r.subpixels
        ratio = f", ratio {100 * self.coded / self.samples:.1f}%" if self.samples else ""
        self.bar.set_postfix_str(f"{self.files}/{self.n} files{ratio}", refresh=False)

    def write(self, say: Callable[[], None]) -> None:
        """Run ``say`` (which prints) with the bar out of the way."""
        from tqdm import tqdm
        if self.bar.disable:
            say()
            return
        with tqdm.external_write_mode(file=sys.stderr):
            say()

    def close(self) -> None:
        self.bar.close()


@dataclass(frozen=True)
class Settings:
    """How a run shares the machine: ``jobs`` worker processes (None: the
    usable cores), ``threads`` per image (None: a fair share), the bar
    (``progress``: None for a terminal only; ``quiet``)."""
    jobs: int | None = None
    threads: int | None = None
    progress: bool | None = None
    quiet: bool = False


def run(task: Task, jobs: list[Job], settings: Settings, report: Callable[[Done], None],
        ordered: bool = True) -> int:
    """Do every job, ``report(done)`` each in the jobs' order (a job that
    ends early waits for those before it; ``report`` prints, with the bar
    out of the way), or as each ends when not ``ordered`` (a bulk job's
    manifest), and return how many failed.  Workers: ``settings.jobs``, at
    most one per file; with one, the jobs run here."""
    if not jobs:
        return 0
    n = min(settings.jobs or usable_cores(), len(jobs))
    bar = Bar(task.command, jobs, settings.progress, settings.quiet)
    failed = [0]
    order, ready = [j.index for j in reversed(jobs)], {}

    def finish(done: Done) -> None:
        bar.finished(done)
        failed[0] += done.error is not None
        if not ordered:
            bar.write(lambda: report(done))
            return
        ready[done.job.index] = done
        while order and order[-1] in ready:
            now = ready.pop(order.pop())
            bar.write(lambda: report(now))

    try:
        if n == 1:
            with _threads_here(settings.threads):
                for job in jobs:
                    finish(do(task, job, lambda k, i=job.index: bar.pixels(i, k)))
        else:
            _pool(task, jobs, n, threads_each(n, settings.threads), bar, finish)
    finally:
        bar.close()
    return failed[0]


class _threads_here:
    """-T in this process: numba's threads for the run, as they were after."""

    def __init__(self, threads: int | None):
        self.threads, self.before = threads, None

    def __enter__(self):
        if self.threads:
            import numba
            self.before = numba.get_num_threads()
            numba.set_num_threads(max(1, min(self.threads, numba.config.NUMBA_NUM_THREADS)))

    def __exit__(self, *exc):
        if self.before is not None:
            import numba
            numba.set_num_threads(self.before)


def _pool(task: Task, jobs: list[Job], n: int, threads: int, bar: Bar, finish: Callable[[Done], None]) -> None:
    import multiprocessing
    import queue as queues
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool
    ctx = multiprocessing.get_context("spawn")
    news = ctx.Queue()
    pool = ProcessPoolExecutor(n, mp_context=ctx, initializer=start_worker, initargs=(threads, news))
    pending = {}

    def drain() -> None:
        while True:
            try:
                index, k = news.get_nowait()
            except queues.Empty:
                return
            bar.pixels(index, k)

    try:
        pending = {pool.submit(_work, task, job): job for job in jobs}
        while pending:
            ended, _ = wait(pending, timeout=PROGRESS_EVERY, return_when=FIRST_COMPLETED)
            drain()
            for f in ended:
                job = pending.pop(f)
                try:
                    done = f.result()
                except BrokenProcessPool:
                    done = Done(job, error=f"pixzip: {job.source}: not done, a worker process ended "
                                           f"unexpectedly (killed, or out of memory?)")
                finish(done)
    except BaseException:        # Ctrl-C, SIGTERM: every worker stops and unwinds its file
        workers = list((getattr(pool, "_processes", None) or {}).values())    # shutdown forgets them
        pool.shutdown(wait=False, cancel_futures=True)    # not f.cancel(): a broken pool then fails on them
        _stop(workers)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        news.close()
        news.join_thread()


def _stop(processes) -> None:
    """SIGTERM every worker (each removes the temporary file it was
    writing), then wait for them; one that does not end is killed."""
    for p in processes:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + 30
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()
