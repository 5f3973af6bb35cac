"""What each hashed context and each residual map is worth: how much larger
the mixer's files get without it (its input muted), the mixer alone.

    python benchmarks/context_worth.py IMAGE... [--crop 192x256]

Each image's top-left crop is coded by coder 2 without a network, once as
shipped and once per input muted.  The shipped kernel has no muting (a
mask of constants 0 that numba should compile away still cost about 5%):
this script builds one benchmark-only kernel from the shipped source, with
a mask inserted into ``hashed_inputs`` and ``map_inputs``, read at run time
from two entries past the end of the stretch table (never read by the
kernel), so all the runs share one compile.  It checks that the built
kernel makes the shipped bytes with nothing muted.  Prints the % growth of the summed bytes per input, and the
median over the images.  Use photos-train images, never Kodak.
"""
from __future__ import annotations

import inspect
import statistics
import textwrap

import click
import numba
import numpy as np

from pixzip.app.bench import machine
from pixzip.codec.format.images import read_image
from pixzip.codec.mixer import components, kernel, one_state

N_STRETCH = 4096       # the stretch table's length: the masks follow it


def _with_runtime_mask(fn, old: str, new: str):
    """``fn`` (an inlined component) recompiled with ``old`` (a line's start) replaced by ``new``."""
    src = textwrap.dedent(inspect.getsource(fn.py_func))
    if old not in src:
        raise SystemExit(f"{fn.py_func.__name__} has no {old!r}: update this benchmark")
    src = src.replace(old, new)
    src = src[src.index("def "):]
    scope = dict(vars(components))
    exec(compile(src, f"<muted {fn.py_func.__name__}>", "exec"), scope)
    return numba.njit(inline="always")(scope[fn.py_func.__name__])


def muted_kernel():
    """``kernel.code`` with masks read at run time: stretch[4096] mutes hashed
    contexts (bit i: context i), stretch[4097] maps."""
    scope = dict(vars(kernel))
    scope["hashed_inputs"] = _with_runtime_mask(components.hashed_inputs, "x_in[i] = 0 if cnt == 0 else",
                                                f"x_in[i] = 0 if cnt == 0 or (stretch[{N_STRETCH}] >> i) & 1 else")
    mask = f"(stretch[{N_STRETCH + 1}] >> m) & 1"
    scope["map_inputs"] = _with_runtime_mask(components.map_inputs, "x_in[N_HASHED + m] = stretch[",
                                             f"x_in[N_HASHED + m] = 0 if {mask} else stretch[")
    src = textwrap.dedent(inspect.getsource(kernel.code.py_func))
    src = src[src.index("def "):]
    exec(compile(src, "<muted code>", "exec"), scope)
    return numba.njit(nogil=True)(scope["code"])


def coded_bytes(code, img: np.ndarray, hashed_mask: int, maps_mask: int) -> int:
    real = kernel.code
    kernel.code = code
    try:
        enc = one_state.Encoder(img)
        tb = enc.tables
        enc.tables = kernel.Tables(tb.squash, np.append(tb.stretch, [hashed_mask, maps_mask]).astype(np.int32),
                                   tb.recip)
        enc.add_image()
        return len(enc.finish())
    finally:
        kernel.code = real


@click.command()
@click.argument("images", nargs=-1, required=True)
@click.option("--crop", default="192x256", show_default=True, help="HxW: code the top-left crop.")
def main(images, crop):
    h, w = (int(v) for v in crop.lower().split("x"))
    crops = [np.ascontiguousarray(read_image(p)[:h, :w]) for p in images]
    code = muted_kernel()
    muted = [(f"hashed {i}", 1 << i, 0) for i in range(kernel.N_HASHED)]
    muted += [(f"map {m}", 0, 1 << m) for m in range(kernel.N_MAPS)]
    print(f"machine: {machine()['cpu']}; {len(crops)} crops of {crop}; the mixer alone")
    shipped = [len(_shipped(img)) for img in crops]
    assert [coded_bytes(code, img, 0, 0) for img in crops] == shipped, "the benchmark kernel differs from the shipped"
    print(f"{'input':10s} {'total %':>8s} {'median %':>9s}")
    for name, hm, mm in muted:
        sizes = [coded_bytes(code, img, hm, mm) for img in crops]
        growth = [100.0 * (s - b) / b for s, b in zip(sizes, shipped)]
        total = 100.0 * (sum(sizes) - sum(shipped)) / sum(shipped)
        print(f"{name:10s} {total:8.3f} {statistics.median(growth):9.3f}", flush=True)


def _shipped(img: np.ndarray) -> bytes:
    enc = one_state.Encoder(img)
    enc.add_image()
    return enc.finish()


if __name__ == "__main__":
    main()
