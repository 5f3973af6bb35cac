"""The pixzip command line: a thin click wrapper over the library.

Each command imports what it needs when it runs, so that ``pixzip --help``
and ``pixzip info`` start at once, and decoding never imports torch.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click
from click.core import ParameterSource

from pixzip import torchrun
from pixzip.errors import PixzipError


def _printable(text) -> str:
    """``text`` with each control character (C0, DEL and C1: the terminal's
    escape sequences, newlines) or other unprintable one written as its
    Python escape (``\\x1b``), so that a string from an archive, a model
    or an image prints on one line and no terminal obeys it."""
    s = str(text)
    return s if s.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)


def _say(message: str) -> None:
    """One line on stderr, escaped."""
    click.echo(_printable(message), err=True)


def _fail(message: str) -> None:
    _say(f"pixzip: {message}")
    sys.exit(1)


# How long a rank other than 0 waits, after an error, for rank 0 to report it: torchrun stops every rank
# once one has left, so a rank that left first could stop rank 0 before it spoke (a rank met the error a
# moment sooner). Rank 0 leaves at once, and torchrun then stops the waiting rank (silently, as in entry).
RANK_GRACE_S = 30.0


def _signal_of(interrupt: BaseException | None) -> int:
    """The signal an interruption carries: _Terminated's, or training's own stop's; SIGINT for a bare Ctrl-C."""
    import signal
    args = interrupt.args if interrupt is not None else ()
    return args[0] if args and isinstance(args[0], int) else signal.SIGINT


def _fail_once(message: str) -> None:
    """Fail with one line for the whole torchrun job: rank 0 says it (and
    a process outside a torchrun job of several, at once); any other rank
    waits RANK_GRACE_S for torchrun to stop it once rank 0 has
    left, and says it itself (naming its rank) only if rank 0 did not, for
    an error of its own."""
    rank, _, world = torchrun.env_world()
    if rank != 0 and world > 1:
        try:
            time.sleep(RANK_GRACE_S)
        except KeyboardInterrupt as e:     # torchrun's SIGTERM (entry's _Terminated): rank 0 has spoken
            sys.exit(128 + _signal_of(e))
        message = f"rank {rank}: {message}"
    _fail(message)


def _unexpected(where: str | None, error: BaseException) -> str:
    from pixzip.app.batch import unexpected
    return unexpected(where, error)


TRAIN_EXTRA = "pip install 'pixzip[train]'"


def _learn(command: str, module: str):
    """Import the torch side for ``command``; without PyTorch (the codec-only
    install), one line saying how to install it."""
    import importlib
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] in ("torch", "safetensors"):
            _fail(f"{command} needs PyTorch, which is not installed (the train extra): {TRAIN_EXTRA}")
        raise


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
        if h < 1 or w < 1:
            raise ValueError
        return h, w
    except ValueError:
        raise click.BadParameter(f"{text!r} is not HxW, e.g. 32x32") from None


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C, so that every partial output is removed."""


def _on_signal(signum, frame):
    raise _Terminated(signum)


class _Commands(click.Group):
    """The commands, with zstd's habits: ``pixzip -d FILE...`` is ``pixzip
    decompress FILE...`` (-z compress, -t test, -l info; the flag may come
    after other options: ``pixzip -1 -z photo.png``), and ``pixzip
    [OPTIONS] FILE...`` compresses when its first FILE is no command's name
    and exists (or is '-')."""
    SHORT = {"-d": "decompress", "--decompress": "decompress", "-z": "compress", "--compress": "compress",
             "-t": "test", "--test": "test", "-l": "info", "--list": "info"}
    TALK = ("-v", "--verbose", "-q", "--quiet")

    def parse_args(self, ctx, args):
        args = list(args)
        i = 0
        while i < len(args) and (args[i] in self.TALK or (args[i].startswith("-v") and set(args[i][1:]) == {"v"})):
            i += 1
        rest = args[i:]
        if rest and rest[0] not in self.commands:
            ends = rest.index("--") if "--" in rest else len(rest)
            flag = next((a for a in rest[:ends] if a in self.SHORT), None)
            word = next((a for a in rest[:ends] if a == "-" or not a.startswith("-")), None)
            if flag is not None:
                rest.remove(flag)
                rest.insert(0, self.SHORT[flag])
            elif word is not None and word not in self.commands and (word == "-" or os.path.exists(word)):
                rest.insert(0, "compress")
        return super().parse_args(ctx, args[:i] + rest)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="zstd's habits: pixzip -d FILE... decompresses (-z compresses, -t tests, -l shows the "
                    "headers), pixzip FILE... compresses, and a command with no FILE reads stdin when it is "
                    "not a terminal.")
@click.version_option(None, "-V", "--version", package_name="pixzip", message="pixzip, version %(version)s")
@click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=lambda c, p, v: _set_quiet(c, p, v),
              help="Print nothing on success (any command).")
@click.option("-v", "--verbose", count=True, expose_value=False, callback=lambda c, p, v: _count_verbose(c, p, v),
              help="Say more (any command).")
def main() -> None:
    """pixzip: lossless image compression with a Gated PixelCNN."""


def entry(args=None) -> None:
    """The console entry point: SIGTERM and SIGHUP unwind like Ctrl-C (partial
    outputs are removed), and an interruption is one line and exit status
    128 + the signal, as a shell reports it."""
    import signal
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, _on_signal)
    try:
        code = main.main(args=args, prog_name="pixzip", standalone_mode=False)
    except click.exceptions.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt) as e:
        signum = _signal_of(e if isinstance(e, KeyboardInterrupt) else e.__cause__)
        # under torchrun only rank 0 speaks: when one rank fails, torchrun stops the others with SIGTERM,
        # and their line would be a second one
        if torchrun.is_main():
            click.echo(f"pixzip: interrupted ({signal.Signals(signum).name}); no partial output is left", err=True)
        sys.exit(128 + signum)
    except (PixzipError, OSError) as e:     # outside the per-file loop (e.g. bench's JSON, models)
        _fail_once(str(e))
    except Exception as e:   # noqa: BLE001  (the last resort, MemoryError too: one line, never a traceback)
        _say(_unexpected(None, e))
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


@main.command()
@click.argument("data", nargs=-1, required=True, type=click.Path())
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="Checkpoint to write.")
@click.option("--arch", type=click.Choice(["gated", "pixelcnn"]), default="gated", show_default=True)
@click.option("--channels", type=int, default=60, show_default=True, help="Feature maps per stack.")
@click.option("--layers", type=int, default=8, show_default=True, help="Gated layers or residual blocks.")
@click.option("--kernel", type=int, default=5, show_default=True, help="Gated stack kernel size (odd).")
@click.option("--skip-channels", type=int, default=0, show_default=True, help="Gated skip width (0: --channels).")
@click.option("--head-channels", type=int, default=0, show_default=True, help="Output head width (0: --channels).")
@click.option("--classes", "n_classes", type=int, default=0, show_default=True,
              help="Class-conditioning classes (0: off).")
@click.option("--steps", type=int, default=10000, show_default=True, help="Total optimisation steps.")
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--crop", type=int, default=None, help="Random crop size (default: whole images).")
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--lr-decay", type=float, default=0.999995, show_default=True, help="lr * decay**step.")
@click.option("--clip", type=float, default=1.0, show_default=True, help="Gradient-norm clip (0: off).")
@click.option("--flip/--no-flip", default=False, show_default=True, help="Random horizontal flips.")
@click.option("--downscale", type=int, default=0, show_default=True,
              help="Also train on copies downscaled by 2, 4, ... 2**N (box filter).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--resume", is_flag=True, help="Continue the run saved in --out, bit for bit.")
@click.option("--val", "val_paths", multiple=True, type=click.Path(), help="Validation data (repeatable).")
@click.option("--val-every", type=int, default=1000, show_default=True)
@click.option("--save-every", type=int, default=500, show_default=True)
@click.option("--log-every", type=int, default=50, show_default=True, help="Steps per row of the CSV log.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=None, help="CPU threads for torch.")
@click.option("--max-minutes", type=float, default=None, help="Stop (and save) after this long.")
@click.option("--gray", is_flag=True, help="Train a grayscale model (converts RGB data to luma).")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="bf16: the forward pass under autocast (GPUs; also runs on CPUs).")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model.")
@click.option("--channels-last", is_flag=True, help="The channels_last memory format.")
@click.option("--workers", type=int, default=0, show_default=True,
              help="DataLoader processes that read and cut the crops (0: this process).")
@click.option("--cache", metavar="SIZE", default="1G", show_default=True, callback=lambda c, p, v: _bytes(v),
              help="Decoded images a process may hold: a data set that fits is decoded once; a larger one is "
                   "read lazily, each image when a crop needs it (0: always lazily).")
@click.pass_context
def train(ctx, data, out, val_paths, resume, device, threads, max_minutes, gray, compile_, channels_last, workers,
          cache, **kw) -> None:
    """Train a model on image folders/files or npz arrays (DATA...).

    With --resume, the run in --out goes on with its own settings; of the
    options, only --steps, --batch-size, --clip, --val-every, --save-every,
    --log-every and --precision may change (the others must be left out or
    match the run).

    Data-parallel: torchrun --nproc_per_node=N -m pixzip train ... (also with
    --nnodes and --rdzv-endpoint); --batch-size is the global batch, which
    must divide by the number of processes, and rank 0 alone writes (every
    node reads DATA and, on --resume, --out by the same path)."""
    if resume:   # the options given on the command line, not their defaults
        kw = {k: v for k, v in kw.items() if ctx.get_parameter_source(k) is ParameterSource.COMMANDLINE}
    api = _learn("train", "pixzip.learn.api")
    try:
        api.train(list(data), Path(out), val=list(val_paths), resume=resume, device=device,
                  threads=threads, max_minutes=max_minutes, gray=gray, compile=compile_,
                  channels_last=channels_last, workers=workers, cache=cache, **kw)
    except (ValueError, FileNotFoundError) as e:
        _fail_once(str(e))     # under torchrun, one line from rank 0


@main.command(name="eval")
@click.argument("checkpoint", type=click.Path())
@click.argument("data", nargs=-1, required=True, type=click.Path())
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
def eval_(checkpoint, data, device, batch_size) -> None:
    """Print the bits/dim of a checkpoint on DATA..."""
    api = _learn("eval", "pixzip.learn.api")
    try:
        bpd, n_images = api.evaluate(checkpoint, list(data), device=device, batch_size=batch_size)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    click.echo(f"images: {n_images}")
    click.echo(f"bits/dim: {bpd:.4f}")


@main.command(name="sample")
@click.argument("checkpoint", type=click.Path())
@click.option("-n", "n", type=int, default=16, show_default=True, help="Number of samples.")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="Grid image to write.")
@click.option("--label", type=int, default=None, help="Class label for a class-conditional model.")
@click.option("--size", type=str, default=None, help="HxW (default: the training crop).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
def sample_(checkpoint, n, out, label, size, seed, device) -> None:
    """Draw N samples autoregressively and save them as a grid image."""
    api = _learn("sample", "pixzip.learn.api")
    hw = _size(size) if size else None
    t0 = time.perf_counter()
    try:
        grid, (h, w) = api.sample(checkpoint, n, size=hw, label=label, seed=seed, device=device)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    api.save_image_atomic(grid, Path(out))
    if not _quiet():
        click.echo(f"{n} samples of {h}x{w} in {time.perf_counter() - t0:.1f} s -> {out}", err=True)


_progress = click.option("--progress/--no-progress", default=None,
                         help="Show a progress bar even when stderr is not a terminal (or never).")


def _bytes(value: str) -> int:
    """Bytes of a size option (2G, 512M, 1000000; binary units; 0 where the option allows none)."""
    from pixzip.codec.api import parse_size
    if value.strip() == "0":
        return 0
    try:
        return parse_size(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a size such as 2G, 512M or 1000000") from None


def _set_memory(ctx, param, value):
    """--memory SIZE: the memory limit of this run, as $PIXZIP_MAX_MEMORY sets it."""
    if value is not None:
        import os

        from pixzip.codec.api import MEMORY_ENV
        os.environ[MEMORY_ENV] = str(_bytes(value))


_memory = click.option("--memory", metavar="SIZE", callback=_set_memory, expose_value=False,
                       help="Memory limit of the decoder (and of an input's bytes): e.g. 2G, 512M, 1000000 "
                            "(binary units; default 2G, or $PIXZIP_MAX_MEMORY).")


def _current_method(method: str | None) -> str | None:
    """A --method under its current name: an old one with a note on stderr."""
    from pixzip.codec.levels import OLD_NAMES
    if method in OLD_NAMES:
        _say(f"pixzip: --method {method} is now called {OLD_NAMES[method]}; the old name will be removed in a "
             f"later version")
        return OLD_NAMES[method]
    return method


def _coding(level: int | None, method: str | None, model: str | None) -> tuple[str | None, str | None]:
    """(method, model) of compress's options under their current names; a
    level with either is refused (the level chooses both)."""
    if level is not None and (model is not None or method is not None):
        raise click.UsageError("-1/-9 choose the model and the coding: give them, or -m/--method, not both")
    return _current_method(method), _current_model(model)


def _current_model(model: str | None) -> str | None:
    """A model under its current alias: an old one with a note on stderr."""
    from pixzip.codec.network.registry import OLD_ALIASES, old_alias_note
    if model in OLD_ALIASES:
        _say(f"pixzip: -m {model}: {old_alias_note(model)}")
        return OLD_ALIASES[model]
    return model


def _run_files(sources, action, quiet: bool = False) -> None:
    """Process every file, here and in order; one line per failure on stderr,
    whatever failed (escaped: it may quote the file); exit 1 if any failed."""
    from pixzip.app.batch import unexpected
    failed = 0
    for src in sources:
        try:
            result = action(src)
        except BrokenPipeError:      # the reader went away (``| head``): click stops quietly, status 1
            raise
        except (click.exceptions.ClickException, click.exceptions.Abort):
            raise
        except (PixzipError, OSError) as e:
            _say(f"pixzip: {e}")
            failed += 1
            continue
        except Exception as e:   # noqa: BLE001  (MemoryError, a bug: one line, and on to the next file)
            _say(unexpected("<stdin>" if src == "-" else src, e))
            failed += 1
            continue
        for warning in getattr(result, "warnings", None) or ():
            if not quiet:
                _say(f"pixzip: warning: {warning}")
    if failed:
        sys.exit(1)


# -v, -q and -V on every command (and before it: pixzip -q compress ...), as zstd takes them.
def _count_verbose(ctx, param, value):
    if value:
        ctx.meta["pixzip.verbose"] = ctx.meta.get("pixzip.verbose", 0) + value


def _set_quiet(ctx, param, value):
    if value:
        ctx.meta["pixzip.quiet"] = True


def _verbose() -> int:
    return click.get_current_context().meta.get("pixzip.verbose", 0)


def _quiet() -> bool:
    return click.get_current_context().meta.get("pixzip.quiet", False)


_version = click.version_option(None, "-V", "--version", package_name="pixzip",
                                message="pixzip, version %(version)s", help="Print the version and exit.")


def _talk(f):
    """-q, -v (and -V) for a command."""
    f = click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=_set_quiet,
                     help="Print nothing on success: no notes, no warnings, no progress bar.")(f)
    return click.option("-v", "--verbose", count=True, expose_value=False, callback=_count_verbose,
                        help="Say more: per-file timings, a summary, the files a folder walk passes over.")(f)


def _jobs(f):
    f = click.option("-T", "--threads", type=click.IntRange(min=1), default=None,
                     help="Threads within one image (default: the usable cores shared among the workers, "
                          "at least one each).")(f)
    return click.option("-j", "--jobs", type=click.IntRange(min=0), default=None,
                        help="Worker processes over the files (default, or 0: the usable cores, at most one "
                             "per file); -j 1 does the files one by one in this process.")(f)


def _folders(what: str):
    def add(f):
        f = click.option("--output-dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
                         help="Write the outputs under DIR, each folder given under its own name, mirrored "
                              "(photos/a/x -> DIR/photos/a/...), creating folders as needed.")(f)
        return click.option("-r", "--recursive", is_flag=True,
                            help=f"Walk the folders given: every {what} under them (links to files are "
                                 f"followed, links to folders are not).")(f)
    return add


def _inputs(sources, recursive: bool, archives: bool, output=None, to_stdout=False, output_dir=None):
    """The inputs (a batch.Walk): the FILEs, the files under -r's folders, or
    stdin when no FILE is given and stdin is not a terminal (as zstd reads it)."""
    from pixzip.app import batch
    if not sources:
        if sys.stdin.isatty():
            raise click.UsageError("no input: give FILE... (or - for standard input), or pipe data into pixzip")
        sources = (batch.STDIO,)
    if output_dir is not None and (output or to_stdout):
        raise click.UsageError("--output-dir names a folder for every output: leave out -o and -c")
    walk = batch.find(sources, recursive, archives)
    if output and len(walk.found) > 1:
        raise click.UsageError("-o names one output: give a single input file")
    if to_stdout and len(walk.found) > 1:
        raise click.UsageError("-c writes one stream: give a single input file")
    if _verbose():
        for note in walk.notes:
            _say(f"pixzip: {note}")
    for line in walk.errors:
        _say(line)
    return walk


def _batch(command: str, walk, task_delivery, options: dict, output_dir, jobs, threads, progress, say_done) -> None:
    """Run a command over the inputs (app.batch: the pool, the bar); exit 1
    if any failed.  ``say_done(result, seconds)`` prints a success."""
    from pixzip.app import batch
    quiet, verbose = _quiet(), _verbose()
    shown = (sys.stderr.isatty() if progress is None else progress) and not quiet
    delivery = task_delivery
    try:
        planned, failures = batch.plan(walk, command, output_dir, getattr(delivery, "output", None),
                                       getattr(delivery, "to_stdout", False), measure=shown)
    except PixzipError as e:
        _fail(str(e))
    for line in failures:
        _say(line)
    totals = {"files": 0, "in": 0, "out": 0}
    t0 = time.perf_counter()

    def report(done) -> None:
        if done.error:
            _say(done.error)
            return
        r = done.result
        totals["files"] += 1
        totals["in"] += done.in_bytes
        totals["out"] += r.out_bytes
        if not quiet:
            say_done(r, done.seconds if verbose else None)
            for warning in r.warnings or ():
                _say(f"pixzip: warning: {warning}")

    failed = batch.run(batch.Task(command, delivery, options), planned,
                       batch.Settings(jobs or None, threads, progress, quiet), report)
    failed += len(failures) + len(walk.errors)
    if verbose and not quiet and len(planned) + len(failures) > 1:
        sizes = f", {totals['in']} -> {totals['out']} bytes" if command != "test" else ""
        _say(f"pixzip: {totals['files']} files done, {failed} failed{sizes}, in {time.perf_counter() - t0:.1f} s")
    if failed:
        sys.exit(1)


def _took(seconds: float | None) -> str:
    return f" in {seconds:.2f} s" if seconds is not None else ""


LEVEL_HELP = {1: "Fastest level: the context mixer (version 1) alone, no network.",
              6: "The default level: the context mixer (version 3) alone, no network.",
              9: "Smallest files: the context mixer (version 6, one state) with the 'max' model."}


def _list_levels(ctx, param, value):
    """--list-levels: each level, what it codes with, and the model its alias names."""
    if not value or ctx.resilient_parsing:
        return
    from pixzip.codec.levels import LEVELS
    from pixzip.codec.network.registry import shipped_aliases
    table = shipped_aliases()
    for n, level in sorted(LEVELS.items()):
        model = f"{level.model} -> {table.get(level.model, '?')}" if level.model else "no model"
        click.echo(f"-{n}  {level.method:14} {model:26} {LEVEL_HELP.get(n, '')}")
    ctx.exit(0)


@main.command()
@click.argument("sources", nargs=-1)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output file (one input only).")
@click.option("-m", "--model", default=None,
              help="Model name or .pxm file (default: the level's; -9's 'max' with --method alone).")
@click.option("-1", "level", flag_value=1, help=LEVEL_HELP[1])
@click.option("-6", "level", flag_value=6, help=LEVEL_HELP[6])
@click.option("-9", "level", flag_value=9, help=LEVEL_HELP[9])
@click.option("--list-levels", is_flag=True, is_eager=True, expose_value=False, callback=_list_levels,
              help="List the levels, what each codes with, and exit.")
@click.option("--method", type=click.Choice(["network", "mixer+network", "mixer", "mixed"]), default=None,
              help="Force a coding: the network alone, the mixer with the network's counts as an input (the "
                   "default level mixes with the 'fast' model), the mixer alone ('mixed': the old name of "
                   "mixer+network).")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("-c", "--stdout", "to_stdout", is_flag=True, help="Write to standard output (--rm is then ignored).")
@click.option("-k", "--keep", is_flag=True, help="Keep the inputs (the default).")
@click.option("--rm", "remove", is_flag=True,
              help="Delete each input once its archive is written, read back and decoded pixel-exact.")
@click.option("--verify", is_flag=True, help="Decode each archive and check it is pixel-exact.")
@click.option("--strip", is_flag=True, help="Drop the metadata (ICC profile, EXIF, XMP, resolution, text, PNG chunks, TIFF tags), "
                   "naming what is dropped; lets --rm remove an input whose other content pixzip cannot keep.")
@click.option("--strip-height", type=click.IntRange(min=0, max=(1 << 32) - 1), default=0, show_default=True,
              help="Code independent strips of this many rows (0: one strip); faster decoding, slightly larger.")
@click.option("--parts", type=click.IntRange(1, 16), default=None,
              help="With a network (-9): code the image's columns in this many parts (1-16), each with its own "
                   "mixer state, decoded at once, one per core. Default: one state for a colour image (the "
                   "smallest files; its decoder runs the network on one core and the mixer on the other), two "
                   "parts for a gray one. Two parts encode faster; their files are 0.3-1.4% larger.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where the encoder's network pass runs: a CUDA GPU when PyTorch sees one (auto), the CPU's "
                   "compiled kernels, or the GPU (refused without one). The archive's bytes are the same.")
@_folders("image file (a suffix Pillow reads; .pxz files and others are passed over)")
@_jobs
@_memory
@_progress
def compress(sources, output, model, level, method, force, to_stdout, keep, remove, verify, strip, strip_height,
             parts, device, recursive, output_dir, jobs, threads, progress) -> None:
    """Compress images (FILE..., folders with -r, or - for stdin) to .pxz files: photo.png -> photo.png.pxz.

    With no FILE and stdin not a terminal, compress stdin to stdout.
    Levels: -1 fastest, -6 the default, -9 smallest (--list-levels)."""
    from pixzip.app import files
    if keep and remove:
        raise click.UsageError("-k and --rm contradict each other: give one")
    method, model = _coding(level, method, model)
    if method == "mixer" and model is not None:
        raise click.UsageError("--method mixer uses no model: leave out -m")
    if device == "cuda":                     # refused before any work, not once per file
        from pixzip.codec.network.enc_stream import encode_device
        try:
            encode_device(device)
        except PixzipError as e:
            _fail(str(e))
    walk = _inputs(sources, recursive, False, output, to_stdout, output_dir)

    def say_done(r, seconds):
        if r.output:
            stored = r.payload in ("raw", "deflate")
            click.echo(_printable(f"{r.source} -> {r.output}: {r.out_bytes} bytes, "
                                  f"{8 * r.out_bytes / r.subpixels:.3f} bits/sub-pixel"
                                  f"{f' (stored: {r.payload})' if stored else ''}{_took(seconds)}"), err=True)

    _batch("compress", walk, files.Delivery(output, to_stdout, force, remove, verify),
           dict(model=model, level=level, method=method, strip_height=strip_height, strip=strip, device=device,
                parts=parts),
           output_dir, jobs, threads, progress, say_done)


@main.command()
@click.argument("sources", nargs=-1)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output image (one input only).")
@click.option("-m", "--model", default=None, type=click.Path(dir_okay=False),
              help="The model file (.pxm) the archives need, if it is not installed.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs (once the new one is verified).")
@click.option("-c", "--stdout", "to_stdout", is_flag=True,
              help="Write the image to standard output, in its original format (PNG if unknown).")
@click.option("-k", "--keep", is_flag=True, help="Keep the .pxz files (the default).")
@click.option("--rm", "remove", is_flag=True, help="Delete each .pxz file once its image is written and verified.")
@click.option("--strip", is_flag=True, help="Drop the metadata instead of restoring it.")
@_folders(".pxz file")
@_jobs
@_memory
@_progress
def decompress(sources, output, model, force, to_stdout, keep, remove, strip, recursive, output_dir, jobs, threads,
               progress) -> None:
    """Decompress .pxz files (FILE..., folders with -r, or - for stdin): photo.png.pxz -> photo.png, with its metadata.

    With no FILE and stdin not a terminal, decompress stdin to stdout."""
    from pixzip.app import files
    if keep and remove:
        raise click.UsageError("-k and --rm contradict each other: give one")
    walk = _inputs(sources, recursive, True, output, to_stdout, output_dir)

    def say_done(r, seconds):
        if r.output:
            click.echo(_printable(f"{r.source} -> {r.output}{_took(seconds)}"), err=True)

    _batch("decompress", walk, files.Delivery(output, to_stdout, force, remove), dict(model=model, strip=strip),
           output_dir, jobs, threads, progress, say_done)


@main.command(name="test")
@click.argument("sources", nargs=-1)
@click.option("-m", "--model", default=None, type=click.Path(dir_okay=False),
              help="The model file (.pxm) the archives need, if it is not installed.")
@click.option("-r", "--recursive", is_flag=True, help="Test every .pxz file under the folders given.")
@_jobs
@_memory
@_progress
def test_(sources, model, recursive, jobs, threads, progress) -> None:
    """Decode .pxz files (FILE..., folders with -r, or stdin) and verify them without writing anything."""
    walk = _inputs(sources, recursive, True)

    def say_done(r, seconds):
        click.echo(_printable(f"{'<stdin>' if r.source == '-' else r.source}: OK{_took(seconds)}"))

    _batch("test", walk, None, dict(model=model), None, jobs, threads, progress, say_done)


@main.group(name="bulk")
def bulk_() -> None:
    """Compress, decompress or test many files with a manifest, on the local process pool or on Ray Data.

    Each output is mirrored under --output-dir (as -r --output-dir does); a line of JSON per file goes to the
    manifest (DIR/pixzip-manifest.jsonl, or --manifest), and a rerun skips the files it says are done, once
    it has checked that their outputs are unchanged (size, CRC-32, BLAKE2b). A file that fails is a line with
    its error, and the exit status is 1."""


def _bulk_options(command: str):
    """The options every bulk command takes: the inputs, where the outputs and
    the manifest go, the engine and its workers."""
    def add(f):
        options = [
            click.argument("sources", nargs=-1, required=True, type=click.Path()),
            click.option("--output-dir", type=click.Path(file_okay=False), metavar="DIR",
                         required=command != "test",        # no default=None: click 8.3+ takes it as given
                         help="Write the outputs under DIR, each folder given under its own name, mirrored."
                         if command != "test" else "Write the manifest in DIR (test writes nothing else)."),
            click.option("--manifest", type=click.Path(dir_okay=False), default=None, metavar="PATH",
                         help="The manifest (default: DIR/pixzip-manifest.jsonl)."),
            click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                         help="local: a process pool on this machine (nothing to install or start); ray: Ray "
                              "Data, on a local instance or the cluster at --address (pip install 'pixzip[ray]')."),
            click.option("--address", default=None, metavar="ADDR",
                         help="Join this Ray cluster (e.g. 10.0.0.1:6379, or auto) instead of starting a local "
                              "instance; every node must see the same paths."),
            click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
                         help="Workers (default: the usable cores; ray: the cluster's CPUs over -T)."),
            click.option("-T", "--threads", type=click.IntRange(min=1), default=None,
                         help="Threads within one image, per worker (default: local, a fair share of the "
                              "cores; ray, 1)."),
            click.option("-m", "--model", default=None,
                         help="Model name or .pxm file" + (" (default: the level's)." if command == "compress"
                                                           else ", if the archives' is not installed.")),
        ]
        for option in reversed(options):
            f = option(f)
        return _memory(f)
    return add


def _bulk(command: str, run, **kw) -> None:
    """Run a bulk job: each failure in one line as it happens (-v: each file
    done), a file redone said, one summary line at the end; exit 1 if any failed."""
    from pixzip import bulk
    quiet, verbose = _quiet(), _verbose()

    def on_record(rec) -> None:
        if rec["error"]:
            _say(rec["error"])
        elif verbose and not quiet:
            done = f" -> {rec['output']} ({rec['bytes_in']} -> {rec['bytes_out']} bytes" if rec["output"] else \
                f": OK ({rec['bytes_in']} bytes"
            _say(f"pixzip: {rec['input']}{done}, {rec['seconds']:.2f} s)")

    try:
        summary = run(bulk, on_record=on_record, on_note=None if quiet else _say, **kw)
    except PixzipError as e:
        _fail(str(e))
    if not quiet or summary.failed:
        _say(summary.line())
    if summary.failed:
        sys.exit(1)


@bulk_.command(name="compress")
@_bulk_options("compress")
@click.option("-1", "level", flag_value=1, help=LEVEL_HELP[1])
@click.option("-6", "level", flag_value=6, help=LEVEL_HELP[6])
@click.option("-9", "level", flag_value=9, help=LEVEL_HELP[9])
@click.option("--method", type=click.Choice(["network", "mixer+network", "mixer", "mixed"]), default=None,
              help="Force a coding (as compress takes it).")
@click.option("--strip", is_flag=True, help="Drop the metadata, naming what is dropped.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs the manifest does not vouch for.")
def bulk_compress(sources, output_dir, manifest, engine, address, jobs, threads, model, level, method, strip,
                  force) -> None:
    """Compress every image under SOURCES... to .pxz files mirrored under --output-dir."""
    method, model = _coding(level, method, model)
    _bulk("compress", lambda bulk, **kw: bulk.compress(
        list(sources), output_dir, level=level, model=model, method=method, strip=strip, engine=engine,
        address=address, jobs=jobs, threads=threads, manifest=manifest, force=force, **kw))


@bulk_.command(name="decompress")
@_bulk_options("decompress")
@click.option("--strip", is_flag=True, help="Drop the metadata instead of restoring it.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs the manifest does not vouch for.")
def bulk_decompress(sources, output_dir, manifest, engine, address, jobs, threads, model, strip, force) -> None:
    """Decompress every .pxz file under SOURCES... to images mirrored under --output-dir."""
    _bulk("decompress", lambda bulk, **kw: bulk.decompress(
        list(sources), output_dir, model=model, strip=strip, engine=engine, address=address, jobs=jobs,
        threads=threads, manifest=manifest, force=force, **kw))


@bulk_.command(name="test")
@_bulk_options("test")
def bulk_test(sources, output_dir, manifest, engine, address, jobs, threads, model) -> None:
    """Decode and verify every .pxz file under SOURCES..., writing nothing but the manifest."""
    if output_dir is None and manifest is None:
        raise click.UsageError("bulk test writes a manifest: give --output-dir DIR or --manifest PATH")
    _bulk("test", lambda bulk, **kw: bulk.test(
        list(sources), output_dir, model=model, engine=engine, address=address, jobs=jobs, threads=threads,
        manifest=manifest, **kw))


@main.command()
@click.argument("sources", nargs=-1)
@click.option("-r", "--recursive", is_flag=True, help="Show every .pxz file under the folders given.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON list on stdout, an object per file readable (the keys of the text form).")
def info(sources, recursive, as_json) -> None:
    """Show the header of .pxz files (FILE..., folders with -r, or stdin): model, size, payload, metadata."""
    from pixzip.app import files
    walk = _inputs(sources, recursive, True)
    found = []

    def one(src):
        fields = files.info(src)
        if as_json:
            found.append(fields)
            return
        for key, value in fields.items():   # the values come from the archive: escaped
            click.echo(f"{key:18} {value:.4f}" if isinstance(value, float) else f"{key:18} {_printable(value)}")

    try:
        _run_files([f.path for f in walk.found], one, _quiet())
    finally:
        if as_json:      # the files that could be read, failures or not (json escapes what it quotes)
            import json
            click.echo(json.dumps(found, indent=1))
    if walk.errors:
        sys.exit(1)


def _alias_uses() -> dict[str, str]:
    """What uses each shipped alias: "level 6, the default level", "level 9; --method without a level", ..."""
    from pixzip.codec.levels import DEFAULT_LEVEL, LEVELS, METHOD_MODEL
    from pixzip.codec.network.registry import OLD_ALIASES
    uses: dict[str, list[str]] = {}
    for n, level in sorted(LEVELS.items()):
        if level.model is not None:
            default = ", the default level" if n == DEFAULT_LEVEL else ""
            uses.setdefault(level.model, []).append(f"level {n}{default}")
    uses.setdefault(METHOD_MODEL, []).append("--method without a level")
    out = {alias: "; ".join(u) for alias, u in uses.items()}
    out.update({old: f"the old name of {new}, deprecated" for old, new in OLD_ALIASES.items()})
    return out


@main.command()
def models() -> None:
    """List the installed integer models (and the model files that cannot be used)."""
    from pixzip.codec.network import registry
    found = registry.available()
    if not found:
        click.echo("no models installed")
    try:
        table = registry.aliases()
    except PixzipError as e:
        click.echo(_printable(f"warning: {e}"), err=True)
        table = registry.shipped_aliases()
    uses = _alias_uses()
    for alias, target in sorted(table.items()):   # names from model folders: escaped
        use = f"  ({uses[alias]})" if alias in uses else ""
        click.echo(_printable(f"{alias:12} -> {target}{'' if target in found else '  (not installed)'}{use}"))
    for name, path in found.items():
        try:
            net = registry.load_file(path)
        except PixzipError as e:
            click.echo(_printable(f"{name:12} broken: {e}"))
            continue
        c = net.config
        click.echo(_printable(f"{name:12} {net.sha256[:16]}  {'RGB' if c.colors == 3 else 'L'}  "
                              f"{c.channels}ch x {c.layers} layers, k={c.kernel}  {path.stat().st_size} bytes"))
    for path, problem in registry.broken():
        click.echo(_printable(f"{'(broken)':12} {problem}"))


@main.command()
@click.option("-m", "--model", default=None, help="Model name or .pxm file (default: the default model).")
def demo(model) -> None:
    """Compress the bundled sample photo, decode it, verify it, compare with PNG."""
    from pixzip.app import demo as demo_
    quiet = _quiet()
    if not quiet:
        click.echo(f"sample: {demo_.SAMPLE_CREDIT}", err=True)
    try:
        r = demo_.run(model, on_compile=lambda: quiet or click.echo(
            f"compiling the kernels, once after an install or upgrade ({demo_.COMPILE_TIME})...", err=True))
    except PixzipError as e:
        _fail(str(e))
    if r["compile_s"] and not quiet:
        click.echo(f"compiled in {r['compile_s']:.0f} s, and cached: the next run starts at once.", err=True)
    bpsp = lambda n: 8 * n / r["subpixels"]  # noqa: E731
    click.echo(f"image:  {r['width']}x{r['height']} {'RGB' if r['channels'] == 3 else 'L'}, "
               f"{r['subpixels']} bytes raw")
    click.echo(f"pixzip: {r['pixzip_bytes']:>8} bytes  {bpsp(r['pixzip_bytes']):.3f} bits/sub-pixel  "
               f"({'the mixer alone' if r['model'] is None else 'the mixer with ' + _printable(r['model']) + chr(39) + 's counts'}; "
               f"encode {r['encode_s']:.1f} s, decode {r['decode_s']:.1f} s, "
               f"decoded pixel-exact)")
    click.echo(f"PNG:    {r['png_bytes']:>8} bytes  {bpsp(r['png_bytes']):.3f} bits/sub-pixel  (Pillow, optimize)")
    click.echo(f"pixzip is {100 * (1 - r['pixzip_bytes'] / r['png_bytes']):.1f}% smaller than PNG.")
    click.echo("On your own photo:  pixzip compress photo.png  &&  pixzip decompress photo.png.pxz -o copy.png")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-m", "--model", "models", multiple=True,
              help="Model name, level alias or .pxm file; repeat to compare models (default: each level, "
                   "and -9's network alone).")
@click.option("--against", default="png,webp,jxl", show_default=True, help="Classical codecs to compare with.")
@click.option("--float", "float_checkpoints", multiple=True, type=click.Path(dir_okay=False),
              help="Float checkpoint of each -m model in turn, for its bits/dim "
                   "(default: NAME.safetensors beside a shipped NAME.pxm).")
@click.option("--method", "methods", default="network,mixer+network,mixer", show_default=True,
              help="Codings to measure: the network alone, the mixer with the network's counts as an input, "
                   "the mixer alone ('mixed': the old name of mixer+network).")
@click.option("--json", "json_out", default=None, type=click.Path(dir_okay=False), help="Also write JSON here.")
def bench(paths, models, against, float_checkpoints, methods, json_out) -> None:
    """Real compressed sizes and times against the models' bits/dim and PNG, WebP, JPEG-XL."""
    from tqdm import tqdm

    from pixzip.app import bench as bench_
    names = tuple(a for a in against.split(",") if a)
    methods = tuple(_current_method(k) for k in methods.split(",") if k)
    models = [_current_model(m) for m in models]
    try:
        images = bench_.image_files(paths)
        with tqdm(total=len(images), desc="bench", unit="image", file=sys.stderr,
                  disable=_quiet() or not sys.stderr.isatty(),
                  dynamic_ncols=True, leave=False, delay=1.0) as bar:
            reports, summary = bench_.run(images, list(models) or None, names, list(float_checkpoints),
                                          progress=bar.update, methods=methods)
    except (PixzipError, ValueError, FileNotFoundError) as e:
        _fail(str(e))
    click.echo("\n".join(map(_printable, bench_.markdown(reports, summary["total"]).split("\n"))))
    m = summary["machine"]
    used = "; ".join(f"{k}: {v['name']} ({v['sha256'][:16]})" for k, v in summary["models"].items() if v["name"])
    click.echo("\n" + _printable(f"{m['cpu']}, {m['cpus']} CPUs, {m['threads']} threads. Models: {used}. "
                                  f"JPEG-XL: {summary['codecs']['jxl'] or 'skipped'}"))
    for note in summary["notes"]:
        click.echo(_printable(f"note: {note}"))
    if json_out:
        bench_.write_json(summary, json_out)


@main.command(name="export")
@click.argument("checkpoint", type=click.Path())
@click.option("-o", "--out", default=None, type=click.Path(dir_okay=False),
              help="Integer model file (default: NAME.pxm).")
@click.option("--name", required=True, help="Model name stored in every file made with it.")
@click.option("--calib", multiple=True, required=True, type=click.Path(), help="Calibration images.")
@click.option("--val", multiple=True, type=click.Path(), help="Validation images (default: --calib).")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing model file.")
def export_(checkpoint, out, name, calib, val, force) -> None:
    """Freeze a trained float model into an integer model file (NAME.pxm unless -o names it)."""
    export_checkpoint = _learn("export", "pixzip.learn.export").export_checkpoint
    out = out or f"{name}.pxm"
    try:
        r = export_checkpoint(checkpoint, out, name, list(calib), list(val) or None, overwrite=force)
    except (ValueError, FileNotFoundError, PixzipError) as e:
        _fail(str(e))
    click.echo(f"model {r['name']} -> {out} (sha256 {r['sha256'][:16]})")
    click.echo(f"float bits/dim:   {r['float_bpd']:.4f}  ({r['images']} images)")
    click.echo(f"integer bits/dim: {r['int_bpd']:.4f}  ({100 * (r['int_bpd'] / r['float_bpd'] - 1):+.2f}%)")



@main.command(name="shard")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--out", "prefix", required=True, type=click.Path(dir_okay=False),
              help="Write PREFIX-000000.tar, PREFIX-000001.tar, ...")
@click.option("--max-count", default=10_000, show_default=True, type=click.IntRange(min=1),
              help="Images per shard, at most.")
@click.option("--max-size", default=1_000_000_000, show_default=True, type=click.IntRange(min=1),
              help="Bytes per shard, about (a shard ends after the image that reaches it).")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing shards of PREFIX (and remove the rest of them).")
def shard(paths, prefix, max_count, max_size, force) -> None:
    """Write training images (folders, files, npz) into tar shards of the WebDataset layout, for pixzip train."""
    import warnings

    from tqdm import tqdm
    shards = _learn("shard", "pixzip.learn.shards")
    try:
        with warnings.catch_warnings(record=True) as caught, \
                tqdm(desc="shard", unit="image", file=sys.stderr, disable=_quiet() or not sys.stderr.isatty(),
                     dynamic_ncols=True, leave=False, delay=1.0) as bar:
            warnings.simplefilter("always")
            r = shards.write_shards(list(paths), prefix, max_count=max_count, max_size=max_size, overwrite=force,
                                    progress=bar.update)
    except (ValueError, FileNotFoundError, PixzipError) as e:
        _fail(str(e))
    for w in caught if not _quiet() else ():
        _say(_printable(f"pixzip: warning: {w.message}"))
    first, last = r["shards"][0], r["shards"][-1]
    click.echo(_printable(f"{r['images']} images -> {len(r['shards'])} shard(s), {r['bytes']} bytes: "
                          f"{first}{' .. ' + last if last != first else ''}"))


for _command in [*main.commands.values(), *bulk_.commands.values()]:     # -v, -q and -V after any command too
    _version(_talk(_command))


if __name__ == "__main__":
    entry()
