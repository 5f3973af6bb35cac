"""Training throughput of a model on this machine: seconds per step and crops
per second at several batch sizes.  Each step is ``Trainer.train_step``, the
training loop's own (crop sampling, forward, backward, clipping, Adam), on
random images, so no data is needed.

    python benchmarks/train_speed.py --channels 66 --layers 8 --kernel 3 --head-channels 192 \\
        --crop 64 --batch 8 --batch 16 --batch 32 [--device cpu] [--threads 2] [--steps 3]

Each batch size runs one warm-up step, then --steps timed steps; the median is
reported, with the machine.
"""
from __future__ import annotations

import platform
import statistics
import time

import click
import numpy as np
import torch

from pixzip.learn.datasets import ImageSet
from pixzip.learn.networks import ModelConfig, build_model
from pixzip.learn.training import TrainConfig, Trainer, pick_device


@click.command()
@click.option("--channels", type=int, default=66, show_default=True)
@click.option("--layers", type=int, default=8, show_default=True)
@click.option("--kernel", type=int, default=3, show_default=True)
@click.option("--head-channels", type=int, default=192, show_default=True)
@click.option("--crop", type=int, default=64, show_default=True)
@click.option("--batch", "batches", type=int, multiple=True, default=(8, 16, 32), show_default=True)
@click.option("--steps", type=int, default=3, show_default=True, help="Timed steps per batch size.")
@click.option("--device", default="auto", show_default=True)
@click.option("--threads", type=int, default=None)
def main(channels, layers, kernel, head_channels, crop, batches, steps, device, threads):
    if threads:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    data = ImageSet([rng.integers(0, 256, (4 * crop, 4 * crop, 3), dtype=np.uint8) for _ in range(4)])
    cfg = ModelConfig(channels=channels, layers=layers, kernel=kernel, head_channels=head_channels)
    n_params = sum(p.numel() for p in build_model(cfg).parameters())
    print(f"gated {channels}x{layers}, kernel {kernel}, head {head_channels}: {n_params:,} parameters; "
          f"{crop}x{crop} crops on {pick_device(device)} ({platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__})")
    print("| batch | s per step (median) | crops per s |")
    print("|---|---|---|")
    for b in batches:
        trainer = Trainer(cfg, TrainConfig(batch_size=b, crop=crop, flip=True), data, device=device)
        trainer.train_step()     # warm-up
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            trainer.train_step()  # ends with loss.item(), which waits for the device
            times.append(time.perf_counter() - t)
        s = statistics.median(times)
        print(f"| {b} | {s:.2f} | {b / s:.1f} |")


if __name__ == "__main__":
    main()
