"""GPU encode against CPU encode, and GPU-made files decoded on the CPU.

    python benchmarks/gpu_encode.py -m MODEL IMAGE... [--repeat 3] [--out DIR]

Run it where there is a CUDA device. For each image it times
``codec.compress(options=Options(device="cuda"))`` and ``device="cpu"`` (median of --repeat
runs after a warm-up), checks that both files are byte-identical, and with
--out writes the GPU-made files there, so that ``pixzip decompress`` on a
machine without a GPU can check them pixel-exact.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import click
import torch

from pixzip.codec import api as codec
from pixzip.codec.network import registry
from pixzip.codec.format.images import read_image


def _timed(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        torch.cuda.synchronize()
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, statistics.median(times)


@click.command()
@click.argument("images", nargs=-1, required=True)
@click.option("-m", "--model", required=True, help="Model name or .pxm file.")
@click.option("--repeat", type=int, default=3, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Write the GPU-made .pxz files here.")
def main(images, model, repeat, out):
    if not torch.cuda.is_available():
        raise click.ClickException("no CUDA device here")
    net = registry.load_model(model)
    warm = read_image(images[0])[:64, :64]
    for device in ("cuda", "cpu"):
        codec.compress(warm, net, options=codec.Options(device=device))
    print(f"{torch.cuda.get_device_name(0)}; model {net.name}")
    print("| image | GPU encode s | CPU encode s | bytes | identical |")
    print("|---|---|---|---|---|")
    for path in images:
        pixels = read_image(path)
        gpu, t_gpu = _timed(lambda: codec.compress(pixels, net, options=codec.Options(device="cuda")), repeat)
        cpu, t_cpu = _timed(lambda: codec.compress(pixels, net, options=codec.Options(device="cpu")), repeat)
        print(f"| {Path(path).name} | {t_gpu:.3f} | {t_cpu:.3f} | {len(gpu)} | {gpu == cpu} |")
        if out:
            Path(out).mkdir(parents=True, exist_ok=True)
            (Path(out) / (Path(path).stem + ".pxz")).write_bytes(gpu)


if __name__ == "__main__":
    main()
