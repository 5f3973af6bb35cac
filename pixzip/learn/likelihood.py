"""Bits/dim of images under a float model: the training loss and evaluation.

Bits/dim is the mean negative log2-likelihood over ALL sub-pixels, the first
one included, because the coder has to code it too.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .datasets import ImageSet

LN2 = math.log(2.0)


def nll_nats(logits: torch.Tensor, x: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy in nats of integer images x (B,C,H,W) under logits (B,C,256,H,W)."""
    return F.cross_entropy(logits.transpose(1, 2), x.long(), reduction=reduction)


def image_nll_nats(model, x: torch.Tensor, labels=None, max_pixels: int = 1 << 17) -> float:
    """Total nats of a batch of images x (B,C,H,W), computed in horizontal
    strips with a context halo of ``rows_above`` rows so that a large image
    never runs in one pass.  The receptive field is bounded, so every strip's
    logits equal the one-pass logits of those rows."""
    b, _, h, w = x.shape
    rows = max(1, max_pixels // max(1, b * w))
    if rows >= h:
        return nll_nats(model(x, labels), x, reduction="sum").item()
    halo = model.receptive_field()["rows_above"]
    total = 0.0
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        a = max(0, r0 - halo)
        logits = model(x[:, :, a:r1], labels)[:, :, :, r0 - a:]
        total += nll_nats(logits, x[:, :, r0:r1], reduction="sum").item()
    return total


@torch.no_grad()
def evaluate_bpd(model, data: ImageSet, batch_size: int = 64, device="cpu", progress=None) -> float:
    """Bits/dim of a whole dataset: total nats over total sub-pixels, / ln 2."""
    model.eval()
    total = 0.0
    order = sorted(range(len(data)), key=lambda i: data.images[i].shape)
    i = 0
    while i < len(order):
        shape = data.images[order[i]].shape
        j = i
        while j < len(order) and j - i < batch_size and data.images[order[j]].shape == shape:
            j += 1
        idx = order[i:j]
        x = torch.from_numpy(np.stack([data.images[k] for k in idx]).transpose(0, 3, 1, 2).copy()).to(device)
        y = None
        if data.labels is not None and model.config.n_classes:
            y = torch.from_numpy(data.labels[idx]).to(device)
        total += image_nll_nats(model, x, y)
        if progress is not None:
            progress(len(idx))
        i = j
    return total / data.n_subpixels / LN2
