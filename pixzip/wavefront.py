"""The decode loop: the integer network run along the wavefront schedule.

Each step evaluates the network, batched, at every ready pixel.  The vertical
stack is computed once per position, one column per layer and row per step,
along a frontier that runs ahead of the decoded pixels.  The horizontal stack
is computed only at the positions being decoded, in three colour sub-steps,
from per-layer row buffers.  A ``source`` turns each batch of counts into
symbols: the entropy decoder when decompressing, a random generator when
sampling, or the known image when checking exactness.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .intnet import IntGatedPixelCNN
from .schedule import active_rows, n_steps, rows_at

# source(counts (n, 256) int64 tensor, rows, cols, colour) -> symbols (n,) int64
Source = Callable[[torch.Tensor, np.ndarray, np.ndarray, int], torch.Tensor]


def decode_image(net: IntGatedPixelCNN, height: int, width: int, source: Source, label: int | None = None,
                 progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Run the schedule over an (H, W) image; returns the uint8 (H, W, C) pixels."""
    R, k2, p, L, C = net.reach, net.k2, net.p, net.layers, net.colors
    lag = R + 1
    ring = min(height, (width + R) // lag + k2 + 3)   # rows alive at once, plus those read above
    zero = ring                                        # a slot that stays zero (rows above the image)
    f32 = torch.float32
    xi = torch.zeros(height + k2 + 1, width + 2 * k2, C, dtype=f32)   # 2x-255; k2+1 zero rows on top
    V = [torch.zeros(ring + 1, width + 2 * k2, p, dtype=f32) for _ in range(L)]
    links = [torch.zeros(ring + 1, width, 2 * p, dtype=f32) for _ in range(L)]
    hb = [torch.zeros(ring + 1, width + k2, p, dtype=f32) for _ in range(L)]
    out = np.zeros((height, width, C), dtype=np.uint8)
    cond = [None] * L
    if net.n_classes and label is not None:
        cond = [(net.v_cond[label, l], net.h_cond[label, l]) for l in range(L)]
    dy_v = torch.arange(k2 + 1)
    dx_v = torch.arange(2 * k2 + 1)
    dx_h = torch.arange(k2 + 1)

    def slot(rows: torch.Tensor) -> torch.Tensor:
        return torch.where(rows >= 0, rows % ring, torch.full_like(rows, zero))

    for t in range(-R, n_steps(height, width, lag)):
        # Vertical frontier: layer l at column t - i*lag + R - (l+1)*k2 of row i.
        for l in range(L):
            rows = rows_at(t, R - (l + 1) * k2, height, width, lag)
            if not len(rows):
                continue
            i = torch.from_numpy(rows)
            f = t - i * lag + R - (l + 1) * k2
            cols = (f[:, None] + dx_v[None, :])[:, None, :]            # padded column index
            if l == 0:   # image rows i-1-k2 .. i-1, stored at offset k2+1
                slab = xi[(i[:, None] + dy_v[None, :])[:, :, None], cols]
            else:
                slab = V[l - 1][slot(i[:, None] - k2 + dy_v[None, :])[:, :, None], cols]
            v_raw = net.v_conv[l](slab.permute(0, 3, 1, 2).reshape(len(rows), -1))
            v_pre, link = net.vertical_terms(l, v_raw, cond[l])
            s = slot(i)
            V[l][s, f + k2] = net.gate(v_pre, net.v_gate[l]).to(f32)
            links[l][s, f] = link.to(f32)
        # Decode the ready pixels, colour by colour.
        rows = active_rows(t, height, width, lag)
        if not len(rows):
            continue
        i = torch.from_numpy(rows)
        j = t - i * lag
        s = slot(i)
        hcols = j[:, None] + dx_h[None, :]
        for c in range(C):
            skip = 0
            for l in range(L):
                if l == 0:
                    slab = xi[(i + k2 + 1)[:, None], hcols]                  # (n, k2+1, C)
                else:
                    slab = hb[l - 1][s[:, None], hcols]                      # (n, k2+1, p)
                h_part = net.h_conv[l](slab.permute(0, 2, 1).reshape(len(rows), -1))
                h_prev = hb[l - 1][s, j + k2] if l else None
                _, sk, h_new = net.horizontal(l, h_part, links[l][s, j], h_prev)
                hb[l][s, j + k2] = h_new.to(f32)
                skip = skip + sk
            logits = net.head(skip).view(len(rows), C, 256)[:, c]
            sym = source(net.counts(logits), rows, j.numpy(), c)
            out[rows, j.numpy(), c] = sym.numpy() if isinstance(sym, torch.Tensor) else sym
            xi[i + k2 + 1, j + k2, c] = (2 * torch.as_tensor(sym, dtype=torch.int64) - 255).to(f32)
        if progress is not None:
            progress(len(rows))
    return out
