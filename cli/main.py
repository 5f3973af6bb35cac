"""The pixzip command line: a thin click wrapper over the library."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from tqdm import tqdm

from pixzip import api


def _fail(message: str) -> None:
    click.echo(f"pixzip: {message}", err=True)
    sys.exit(1)


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
        if h < 1 or w < 1:
            raise ValueError
        return h, w
    except ValueError:
        raise click.BadParameter(f"{text!r} is not HxW, e.g. 32x32") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pixzip")
def main() -> None:
    """pixzip: lossless image compression with a Gated PixelCNN."""


@main.command()
@click.argument("data", nargs=-1, required=True, type=click.Path())
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="Checkpoint to write.")
@click.option("--arch", type=click.Choice(["gated", "pixelcnn"]), default="gated", show_default=True)
@click.option("--channels", type=int, default=60, show_default=True, help="Feature maps per stack.")
@click.option("--layers", type=int, default=8, show_default=True, help="Gated layers or residual blocks.")
@click.option("--kernel", type=int, default=5, show_default=True, help="Gated stack kernel size (odd).")
@click.option("--classes", type=int, default=0, show_default=True, help="Class-conditioning classes (0: off).")
@click.option("--steps", type=int, default=10000, show_default=True, help="Total optimisation steps.")
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--crop", type=int, default=None, help="Random crop size (default: whole images).")
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--lr-decay", type=float, default=0.999995, show_default=True, help="lr * decay**step.")
@click.option("--clip", type=float, default=1.0, show_default=True, help="Gradient-norm clip (0: off).")
@click.option("--flip/--no-flip", default=False, show_default=True, help="Random horizontal flips.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--resume", is_flag=True, help="Continue the run saved in --out, bit for bit.")
@click.option("--val", "val_paths", multiple=True, type=click.Path(), help="Validation data (repeatable).")
@click.option("--val-every", type=int, default=1000, show_default=True)
@click.option("--save-every", type=int, default=500, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=None, help="CPU threads for torch.")
@click.option("--max-minutes", type=float, default=None, help="Stop (and save) after this long.")
@click.option("--gray", is_flag=True, help="Train a grayscale model (converts RGB data to luma).")
def train(data, out, val_paths, resume, device, threads, max_minutes, gray, classes, **kw) -> None:
    """Train a model on image folders/files or npz arrays (DATA...)."""
    try:
        api.train(list(data), Path(out), val=list(val_paths), resume=resume, device=device,
                  threads=threads, max_minutes=max_minutes, gray=gray, n_classes=classes, **kw)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))


@main.command(name="eval")
@click.argument("checkpoint", type=click.Path())
@click.argument("data", nargs=-1, required=True, type=click.Path())
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
def eval_(checkpoint, data, device, batch_size) -> None:
    """Print the bits/dim of a checkpoint on DATA..."""
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
    hw = _size(size) if size else None
    t0 = time.perf_counter()
    try:
        grid, (h, w) = api.sample(checkpoint, n, size=hw, label=label, seed=seed, device=device)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    api.save_image_atomic(grid, Path(out))
    click.echo(f"{n} samples of {h}x{w} in {time.perf_counter() - t0:.1f} s -> {out}", err=True)


if __name__ == "__main__":
    main()
