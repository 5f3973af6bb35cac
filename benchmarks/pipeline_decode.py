"""-9's decode: the compiled loop per thread (``network.dec_pipeline``)
against the step kernels driven from Python, A/B alternated in one process.

    python benchmarks/pipeline_decode.py IMAGE... [--rounds 3] [--force] [--one-state]

Each image is compressed at -9 (two column parts; with ``--one-state`` also
in one part, one mixer state), then decoded ``--rounds`` times by each
decoder in turn (the order flips every round), checked pixel-exact.  Prints
each run's wall and CPU seconds and the 1-minute load, the medians and the
old/new ratio of each pair (the relative speed-up, which the neighbours'
load disturbs less than the seconds), and for the loop, each thread's time
by phase (``kernels.pipeline.PHASES``: the network's vertical frontier, its
horizontal stack and head, the mixer, the symbols put back, the wait at the
barrier), from the cycle counter.

Then one decode through the loop with each thread's CPU time per step
(``decode_parts(trace=...)``): the sum over steps of the busiest thread's
share is what the loop would take on two free cores, its barriers aside,
a figure that other processes on the cores disturb far less than the wall
time.

``--force``: both decoders share every step on all threads even when other
processes keep the cores busy (by default each falls back to one thread
then, ``codec.threads``).  ``--one-state``: also decode the one-part archive
through the loop on one thread: with its CPU time split by phase (N the
network's, M the mixer's), a one-state decoder pipelined on two cores can
take no less than max(M, (N + M) / 2), the bound to set against the two
parts' time.
"""
from __future__ import annotations

import os
import statistics
import sys
import time

import click
import numpy as np


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


@click.command()
@click.argument("images", nargs=-1, required=True)
@click.option("--rounds", default=3, show_default=True)
@click.option("--force", is_flag=True, help="share every step on all threads, busy cores or not")
@click.option("--one-state", is_flag=True, help="also time one mixer state (one part) through the loop")
def main(images, rounds, force, one_state):
    import numba

    from pixzip.codec import api
    from pixzip.codec import threads as T
    from pixzip.codec.format import container
    from pixzip.codec.format.images import read_image
    from pixzip.codec.mixer import column_parts
    from pixzip.codec.network import dec_pipeline as DP
    from pixzip.codec.network.kernels import pipeline as KP

    if force:
        T.others_running = lambda: 0

    @numba.njit
    def cycles():
        return KP.cycles()
    c0, t0 = cycles(), time.perf_counter()
    time.sleep(0.3)
    hz = (cycles() - c0) / (time.perf_counter() - t0)
    handles = KP.handles
    threads = numba.get_num_threads()
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores, numba threads {threads}, "
          f"{'forced sharing' if force else 'load-aware sharing'}")

    def phases(clock):
        return " ; ".join(f"thread {k}: " + " ".join(f"{n} {v / hz:.2f}" for n, v in zip(KP.PHASES, clock[k]))
                          for k in range(len(clock)))

    def decode(data, mode):
        KP.handles = handles if mode == "new" else (lambda kernel: False)
        t, c = time.perf_counter(), time.process_time()
        img = api.decompress(data)
        return img, time.perf_counter() - t, time.process_time() - c

    def traced(data, colours, n_threads):
        """Decode through the loop on n_threads threads, every step shared: (wall s, phase s by thread, the CPU s
        of each thread's share of each step)."""
        header, payload, crc = container.parse(data)
        dec = column_parts.Decoder(bytes(payload), header.height, header.width, colours)
        net = api.model_for(header)
        trace = np.zeros((n_threads, header.height * (net.reach + 1) + header.width + net.reach), np.int64)
        busy, T.others_running = T.others_running, lambda: 0
        numba.set_num_threads(n_threads)
        try:
            t = time.perf_counter()
            DP.decode_parts(net, header.height, header.width, header.strip_height, dec, trace=trace)
            wall = time.perf_counter() - t
        finally:
            numba.set_num_threads(threads)
            T.others_running = busy
        assert container.pixels_crc(dec.finish()) == crc
        return wall, DP.last_clock[0] / hz, trace / 1e9

    def report(what, data, colours, n_threads):
        wall, clock, trace = traced(data, colours, n_threads)
        share = clock[:, :4].sum(axis=0) / clock[:, :4].sum()        # the phases' shares of the work
        work = trace.sum()
        print(f"{what}, {n_threads} thread(s): {wall:6.2f} s wall | {phases(clock * hz)}\n"
              f"    CPU s of the steps' work: {work:.2f} (network {work * (share[0] + share[1]):.2f}, mixer "
              f"{work * share[2]:.2f}); by thread {', '.join(f'{x:.2f}' for x in trace.sum(axis=1))}; "
              f"sum over steps of the busiest thread's share: {trace.max(axis=0).sum():.2f} s "
              f"(the loop's time on free cores, its barriers aside)", flush=True)
        return work * (share[0] + share[1]), work * share[2], trace.max(axis=0).sum()

    for path in images:
        name = os.path.basename(path)
        pixels = read_image(path)
        data = api.compress(pixels, level=9)
        single = api.compress(pixels, level=9, options=api.Options(parts=1)) if one_state else None
        if single is not None:
            print(f"{name}: two parts {len(data)} bytes, one part {len(single)} ({len(data) / len(single) - 1:+.2%})")
        for mode in ("old", "new"):           # compile, check
            assert np.array_equal(decode(data, mode)[0], pixels)
        runs: dict = {"old": [], "new": []}
        for r in range(rounds):
            for mode in ("old", "new") if r % 2 == 0 else ("new", "old"):
                load = os.getloadavg()[0]
                img, wall, cpu = decode(data, mode)
                assert np.array_equal(img, pixels)
                runs[mode].append(wall)
                extra = f" | {phases(DP.last_clock[0])}" if mode == "new" else ""
                print(f"{name} {mode}: {wall:6.2f} s wall, {cpu:6.2f} s CPU, load {load:.2f}{extra}", flush=True)
        report(f"{name} two parts", data, pixels.shape[2], 2)
        report(f"{name} two parts", data, pixels.shape[2], 1)
        if single is not None:
            n, m, _ = report(f"{name} one part (one mixer state)", single, pixels.shape[2], 1)
            print(f"    a one-state decoder pipelined on two cores takes at least max(M, (N + M) / 2) = "
                  f"{max(m, (n + m) / 2):.2f} CPU-bound s", flush=True)
        pairs = [a / b for a, b in zip(runs["old"], runs["new"])]
        print(f"{name}: old median {statistics.median(runs['old']):.2f} s, new median "
              f"{statistics.median(runs['new']):.2f} s, old/new by pair: median {statistics.median(pairs):.2f} "
              f"({', '.join(f'{x:.2f}' for x in pairs)})")
    KP.handles = handles
    return 0


if __name__ == "__main__":
    sys.exit(main())
