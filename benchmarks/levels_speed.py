"""The levels' speed against the previous release's codings, by the same build in one run.

    python benchmarks/levels_speed.py IMAGE... [--rounds 3] [--no-stage] [--bar-only]

For each image, every coding below is compressed and decompressed
``--rounds`` times, the codings alternated within a round (so that a
neighbour's load falls on all of them alike), each decode checked
pixel-exact.  Prints each coding's median encode and decode seconds and
its file's bits per sub-pixel, and the ratios the release's speed bars are
stated in:

- ``-9`` (the mixer 6 with the ``max`` network in one state, coder 12)
  against the mixer 1 with the same network (coder 3, 0.7's ``-9``),
  against the mixer 5's in one state (coder 11, 0.12's ``-9``) and the
  mixer 3's (coder 9, 0.10.2's ``-9``);
- ``-6`` (the mixer 3 alone, coder 8) and ``-1`` (the mixer 1 alone,
  coder 2), both unchanged since 0.10.0.

``--bar-only`` times only the decode bar's two codings, ``-9`` and 0.7's
``-9`` (and the floor below), in about a third of the time.

The earlier releases' levels are made by this build, under a level name of
their own (``0.12 -9``, ``0.10.2 -9``) that this script adds to its copy of
``levels.LEVELS``.

Each round also times ``-9``'s floor: its mixer alone (the mixer 6 in one
state) decoding the image on one core, over the network's counts made
before the round, one call per colour of a step as the decoder makes them,
checked pixel-exact.  A ``-9`` decoder can be no faster than its mixer, so
its ratio to 0.7's ``-9`` decode bounds what any sharing of the two cores
could reach.

Then the mixer stage alone on one core, in microseconds per sub-pixel: each
mixer version alone (raster order, one state), and over the network's counts
in one state (the counts' making between its calls not counted); and the
peak resident memory of the process (``ru_maxrss``).
"""
from __future__ import annotations

import resource
import statistics
import time

import click
import numpy as np


def _timed(f):
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


def _mixer_alone(img, version: int) -> float:
    from pixzip.codec.coders import _mixer_classes
    enc = _mixer_classes(version)[0](img)
    _, s = _timed(enc.add_image)
    return s


def _mixer_over_counts(img, net, version: int) -> float:
    """Seconds the column parts' encoder in one part takes over the network's counts, one core (the
    counts' making between its calls is not counted)."""
    from pixzip.codec.coders import _mixer_classes
    from pixzip.codec.network.enc_stream import symbols_and_counts
    enc = _mixer_classes(version)[2](img, 1)
    total = 0.0
    for _, counts, _, where in symbols_and_counts(net, img, None, 0, None, positions=True):
        t = time.perf_counter()
        enc.add(*where, counts)
        total += time.perf_counter() - t
    return total


def _mixer_decoding(img, net, version: int):
    """A function that decodes, with the mixer ``version``'s one state on one core, the payload it makes of
    ``img`` over the network's counts (made here, once), and returns its seconds."""
    import numba

    from pixzip.codec.coders import _mixer_classes
    from pixzip.codec.network.enc_stream import symbols_and_counts
    units = []          # one colour of a step each, in stream order, as the decoder's units are
    for _, counts, _, where in symbols_and_counts(net, img, None, 0, None, positions=True):
        where, counts = tuple(np.array(w) for w in where), np.array(counts)
        cut = np.flatnonzero(np.diff(where[2]) != 0) + 1
        for a, b in zip(np.r_[0, cut], np.r_[cut, len(where[2])]):
            units.append((tuple(w[a:b] for w in where), counts[a:b]))
    enc = _mixer_classes(version)[2](img, 1)
    for where, counts in units:
        enc.add(*where, counts)
    payload = enc.finish()

    def decode() -> float:
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            dec = _mixer_classes(version)[3](payload, *img.shape)
            t = time.perf_counter()
            for where, counts in units:
                dec.take(*where, counts)
            s = time.perf_counter() - t
        finally:
            numba.set_num_threads(threads)
        assert np.array_equal(dec.finish(), img), "the mixer alone decoded other pixels"
        return s
    return decode


@click.command()
@click.argument("images", nargs=-1, required=True)
@click.option("--rounds", default=3, show_default=True)
@click.option("--stage/--no-stage", default=True, show_default=True,
              help="Also time the mixer stage alone on one core (long: several minutes per image).")
@click.option("--bar-only", is_flag=True,
              help="Only the decode bar's codings: -9 and 0.7's -9 (and -9's floor), a third of the time.")
def main(images, rounds, stage, bar_only):
    import numba

    from pixzip.app.bench import machine
    from pixzip.codec import api as codec
    from pixzip.codec.format.images import read_image
    from pixzip.codec import levels
    levels.LEVELS = {**levels.LEVELS, 93: levels.Level("mixer+network", "max", 3),
                     95: levels.Level("mixer+network", "max", 5)}
    # coding: (level, model, payload, the mixer's column parts)
    codings = {"-9 (mixer 6 + max)": (9, "max", "mixer+network", None),
               "0.12 -9 (mixer 5 + max)": (95, "max", "mixer+network", None),
               "0.10.2 -9 (mixer 3 + max)": (93, "max", "mixer+network", None),
               "0.7 -9 (mixer 1 + max)": (1, "max", "mixer+network", 2),
               "-6 (mixer 3 alone)": (6, None, "mixer", 2),
               "-1 (mixer 1 alone)": (1, None, "mixer", 2)}
    if bar_only:
        codings = {k: v for k, v in codings.items() if k in ("-9 (mixer 6 + max)", "0.7 -9 (mixer 1 + max)")}
    print(f"machine: {machine()['cpu']}, {numba.config.NUMBA_NUM_THREADS} threads; rounds {rounds}")
    for level, model, payload, _ in codings.values():
        codec.warm_up(model, payload, level)
    for path in images:
        img = np.ascontiguousarray(read_image(path))
        times = {k: ([], []) for k in codings}
        size = {}
        floor = _mixer_decoding(img, codec.load_model("max"), 6) if img.ndim == 3 and img.shape[2] == 3 else None
        floors = []
        for r in range(rounds):
            order = list(codings) if r % 2 == 0 else list(reversed(codings))
            if floor is not None:
                floors.append(floor())
            for k in order:
                level, model, payload, parts = codings[k]
                data, te = _timed(lambda: codec.compress(img, model, level=level, payload=payload,
                                                         options=codec.Options(parts=parts)))
                out, td = _timed(lambda: codec.decompress(data))
                assert np.array_equal(out.reshape(img.shape), img), k
                times[k][0].append(te)
                times[k][1].append(td)
                size[k] = len(data) * 8 / img.size
        print(f"\n{path} ({img.shape[1]}x{img.shape[0]}x{img.shape[2] if img.ndim == 3 else 1})")
        print(f"{'coding':26s} {'bits/sp':>8s} {'encode s':>9s} {'decode s':>9s}")
        med = {k: (statistics.median(a), statistics.median(b)) for k, (a, b) in times.items()}
        for k in codings:
            print(f"{k:26s} {size[k]:8.4f} {med[k][0]:9.2f} {med[k][1]:9.2f}")
        new, old = med["-9 (mixer 6 + max)"], med["0.7 -9 (mixer 1 + max)"]
        print(f"-9 against 0.7's -9: encode {new[0] / old[0]:.2f}x, decode {new[1] / old[1]:.2f}x")
        if floors:
            s = statistics.median(floors)
            print(f"-9's mixer alone decoding, one core, the counts made beforehand: {s:.2f} s, "
                  f"{s / old[1]:.2f}x 0.7's -9 decode (the floor of any -9 decoder)")
        if bar_only:
            continue
        prev = med["0.10.2 -9 (mixer 3 + max)"]
        print(f"0.10.2's -9 against 0.7's -9: encode {prev[0] / old[0]:.2f}x, decode {prev[1] / old[1]:.2f}x")
        last = med["0.12 -9 (mixer 5 + max)"]
        print(f"-9 against 0.12's -9: encode {new[0] / last[0]:.2f}x, decode {new[1] / last[1]:.2f}x, files "
              f"{size['-9 (mixer 6 + max)'] / size['0.12 -9 (mixer 5 + max)'] - 1:+.2%}")
        print(f"-9 against 0.10.2's -9: encode {new[0] / prev[0]:.2f}x, decode {new[1] / prev[1]:.2f}x, files "
              f"{size['-9 (mixer 6 + max)'] / size['0.10.2 -9 (mixer 3 + max)'] - 1:+.2%}")
        if not stage:
            continue
        im = img if img.ndim == 3 else img[:, :, None]
        im = np.ascontiguousarray(im)
        numba.set_num_threads(1)
        try:
            for v in (1, 2, 3):
                s = statistics.median(_mixer_alone(im, v) for _ in range(rounds))
                print(f"mixer {v} alone, one core: {1e6 * s / im.size:.2f} us per sub-pixel")
            if im.shape[2] == 3:
                net = codec.load_model("max")
                for v in (1, 2, 3, 4, 5, 6):
                    s = statistics.median(_mixer_over_counts(im, net, v) for _ in range(rounds))
                    print(f"mixer {v} over max's counts, one state, one core: {1e6 * s / im.size:.2f} us per "
                          f"sub-pixel")
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    print(f"\npeak resident memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
