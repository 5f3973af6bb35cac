"""Autoregressive sampling from a float model, one sub-pixel at a time.

A Gated PixelCNN is stepped incrementally (vertical stack once per row,
horizontal stack at the current column only; see stepper.py).  Other models
run, per step, only on the window of rows and columns inside the receptive
field, never on the full image.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from .networks import GatedPixelCNN
from .stepper import GatedStepper


def context_window(model, i: int, j: int, height: int, width: int) -> tuple[int, int, int]:
    """(top, left, right) bounds of the input window whose output at (i, j)
    equals the full-image output there."""
    rf = model.receptive_field()
    top = max(0, i - rf["rows_above"])
    left = max(0, j - max(rf["cols_left"], rf["cols_left_current"]))
    right = min(width, j + rf["cols_right"] + 1)
    return top, left, right


@torch.no_grad()
def sample(model, n: int, height: int, width: int, labels=None, seed: int = 0,
           device="cpu", progress=None) -> np.ndarray:
    """Draw ``n`` images; returns uint8 (n, H, W, C).

    Each step is a handful of tiny ops, which run fastest on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _sample(model, n, height, width, labels, seed, device, progress)
    finally:
        torch.set_num_threads(threads)


def _sample(model, n, height, width, labels, seed, device, progress) -> np.ndarray:
    model.eval()
    c = model.config.colors
    gen = torch.Generator(device=device).manual_seed(seed)
    x = torch.zeros(n, c, height, width, dtype=torch.long, device=device)
    y = None
    if labels is not None:
        y = torch.as_tensor(labels, dtype=torch.long, device=device).expand(n)
    stepper = GatedStepper(model, n, height, width, y) if isinstance(model, GatedPixelCNN) else None

    def draw(logits: torch.Tensor) -> torch.Tensor:
        return torch.multinomial(torch.softmax(logits.double(), dim=1), 1, generator=gen)[:, 0]

    def windowed_logits(i: int, j: int) -> torch.Tensor:
        top, left, right = context_window(model, i, j, height, width)
        return model(x[:, :, top:i + 1, left:right], y)[:, :, :, i - top, j - left]

    logits_at = stepper.logits if stepper is not None else windowed_logits
    for i in range(height):
        if stepper is not None:
            stepper.start_row(i)
        for j in range(width):
            for ch in range(c):
                x[:, ch, i, j] = draw(logits_at(i, j)[:, ch])
                if stepper is not None:
                    stepper.write(i, j, ch, x[:, ch, i, j])
            if progress is not None:
                progress(1)
    return x.permute(0, 2, 3, 1).to(torch.uint8).cpu().numpy()


def image_grid(images: np.ndarray, pad: int = 2) -> Image.Image:
    """Tile (n, H, W, C) uint8 images into a near-square grid with a white border."""
    n, h, w, c = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, dtype=np.uint8)
    for k in range(n):
        r, q = divmod(k, cols)
        y0, x0 = pad + r * (h + pad), pad + q * (w + pad)
        grid[y0:y0 + h, x0:x0 + w] = images[k]
    return Image.fromarray(grid[..., 0] if c == 1 else grid)


def sample_integer(net, n: int, height: int, width: int, label: int | None = None, seed: int = 0,
                   progress=None) -> np.ndarray:
    """Draw ``n`` images from an integer model through the decoder's own loop,
    with a seeded random source in place of the bitstream; (n, H, W, C) uint8."""
    from ..codec.network.dec_wavefront import decode_image

    rng = np.random.default_rng(seed)

    def source(counts, rows, cols, c):
        cdf = np.cumsum(counts.astype(np.int64), axis=1)
        u = rng.integers(0, cdf[:, -1:], size=(len(cdf), 1))
        return (cdf <= u).sum(axis=1)

    return np.stack([decode_image(net, height, width, source, label=label, progress=progress)
                     for _ in range(n)])
