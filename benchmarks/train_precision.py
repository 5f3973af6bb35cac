"""What bf16 autocast does to a model after export: the same small gated model
trained from the same seed in fp32 and in bf16, both exported to the integer
network, then measured on held-out images (every ``--hold-every``-th file of
the data, never trained on).

    python benchmarks/train_precision.py /work/shared/data/photos-train --steps 300 --threads 2

Prints, per precision: the float bits/dim and the integer (.pxm) bits/dim on
the held-out images, and the median seconds per training step, timed apart
from the runs, the precisions' steps alternated (``--time-steps`` each), so
that a busy machine slows them alike.  Kodak is not for tuning: give a
training collection.
"""
from __future__ import annotations

import csv
import platform
import statistics
import tempfile
import time
from pathlib import Path

import click
import torch

from pixzip.learn import api
from pixzip.learn.datasets import IMAGE_SUFFIXES, open_source
from pixzip.learn.export import export_checkpoint
from pixzip.learn.networks import ModelConfig
from pixzip.learn.training import TrainConfig, Trainer, log_path_for


def step_times(source, model: ModelConfig, precisions, rounds: int, device: str, **train) -> dict:
    """Median seconds per step of each precision, their steps alternated."""
    trainers = {p: Trainer(model, TrainConfig(precision=p, **train), source, device=device) for p in precisions}
    for t in trainers.values():
        t.train_step()                     # warm-up
    times: dict = {p: [] for p in precisions}
    for _ in range(rounds):
        for p, t in trainers.items():
            t0 = time.perf_counter()
            t.train_step()
            times[p].append(time.perf_counter() - t0)
    return {p: statistics.median(v) for p, v in times.items()}


@click.command()
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.option("--channels", type=int, default=30, show_default=True)
@click.option("--layers", type=int, default=4, show_default=True)
@click.option("--kernel", type=int, default=3, show_default=True)
@click.option("--crop", type=int, default=32, show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--steps", type=int, default=300, show_default=True)
@click.option("--lr", type=float, default=3e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--hold-every", type=int, default=20, show_default=True, help="Hold out every n-th file.")
@click.option("--calib", type=int, default=8, show_default=True, help="Training files that calibrate the export.")
@click.option("--precision", "precisions", multiple=True, default=("fp32", "bf16"), show_default=True)
@click.option("--time-steps", type=int, default=8, show_default=True, help="Alternated timed steps per precision.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=int, default=None)
def main(data, channels, layers, kernel, crop, batch_size, steps, lr, seed, hold_every, calib, precisions, time_steps,
         device, threads):
    files = sorted(f for f in Path(data).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    held = files[::hold_every]
    train = [f for f in files if f not in held]
    if threads:
        torch.set_num_threads(threads)
    print(f"gated {channels}x{layers} k{kernel}, crop {crop}, batch {batch_size}, {steps} steps, lr {lr}, "
          f"seed {seed}; {len(train)} training files, {len(held)} held out; {device} "
          f"({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch "
          f"{torch.__version__})")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for precision in precisions:
            out = Path(tmp) / f"{precision}.pt"
            api.train([str(f) for f in train], out, steps=steps, batch_size=batch_size, crop=crop, lr=lr,
                      seed=seed, channels=channels, layers=layers, kernel=kernel, precision=precision,
                      device=device, progress=False, log_every=1, save_every=steps, val_every=steps + 1)
            log = list(csv.DictReader(open(log_path_for(out))))
            r = export_checkpoint(out, Path(tmp) / f"{precision}.pxm", f"precision-{precision}",
                                  [str(f) for f in train[:calib]], [str(f) for f in held])
            rows.append((precision, log[-1]["train_bpd"], r["float_bpd"], r["int_bpd"]))
    source = open_source([str(f) for f in train])
    model = ModelConfig(colors=source.colors, channels=channels, layers=layers, kernel=kernel)
    seconds = step_times(source, model, precisions, time_steps, device, batch_size=batch_size, crop=crop, lr=lr,
                         seed=seed, steps=time_steps + 1)
    print("| precision | last train bits/dim | float val bits/dim | integer (.pxm) bits/dim | s/step (median) |")
    print("|---|---|---|---|---|")
    for p, tr, fl, it in rows:
        print(f"| {p} | {float(tr):.4f} | {fl:.4f} | {it:.4f} | {seconds[p]:.3f} |")


if __name__ == "__main__":
    main()
