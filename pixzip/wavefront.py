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
from .schedule import active_rows, n_steps, rows_at, strip_layout

# source(counts (n, 256) int64 tensor, rows, cols, colour) -> symbols (n,) int64
Source = Callable[[torch.Tensor, np.ndarray, np.ndarray, int], torch.Tensor]


def decode_image(net: IntGatedPixelCNN, height: int, width: int, source: Source, label: int | None = None,
                 progress: Callable[[int], None] | None = None, strip_height: int = 0) -> np.ndarray:
    """Run the schedule over an (H, W) image; returns the uint8 (H, W, C) pixels.

    With ``strip_height`` S > 0 the image is coded as independent strips of S
    rows (no context across them), decoded in lockstep as a batch: a step then
    decodes the ready pixels of every strip, strip by strip in stream order."""
    R, k2, p, L, C = net.reach, net.k2, net.p, net.layers, net.colors
    lag = R + 1
    nb, S = strip_layout(height, strip_height)
    last = height - (nb - 1) * S                       # rows in the last strip
    ring = min(S, (width + R) // lag + k2 + 3)         # rows alive at once, plus those read above
    zero = ring                                        # a slot that stays zero (rows above a strip)
    f32 = torch.float32
    xi = torch.zeros(nb, S + k2 + 1, width + 2 * k2, C, dtype=f32)   # 2x-255; k2+1 zero rows on top
    V = [torch.zeros(nb, ring + 1, width + 2 * k2, p, dtype=f32) for _ in range(L)]
    links = [torch.zeros(nb, ring + 1, width, 2 * p, dtype=f32) for _ in range(L)]
    hb = [torch.zeros(nb, ring + 1, width + k2, p, dtype=f32) for _ in range(L)]
    out = np.zeros((height, width, C), dtype=np.uint8)
    cond = [None] * L
    if net.n_classes and label is not None:
        cond = [(net.v_cond[label, l], net.h_cond[label, l]) for l in range(L)]
    dy_v = torch.arange(k2 + 1)
    dx_v = torch.arange(2 * k2 + 1)
    dx_h = torch.arange(k2 + 1)

    def slot(rows: torch.Tensor) -> torch.Tensor:
        return torch.where(rows >= 0, rows % ring, torch.full_like(rows, zero))

    def pairs(local: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(strip, row-in-strip) of the given strip rows, strip-major: stream order."""
        b = np.repeat(np.arange(nb), len(local))
        i = np.tile(local, nb)
        keep = (b < nb - 1) | (i < last)
        return torch.from_numpy(b[keep]), torch.from_numpy(i[keep])

    for t in range(-R, n_steps(S, width, lag)):
        # Vertical frontier: layer l at column t - i*lag + R - (l+1)*k2 of row i.
        for l in range(L):
            offset = R - (l + 1) * k2
            b, i = pairs(rows_at(t, offset, S, width, lag))
            if not len(i):
                continue
            f = t - i * lag + offset
            bb = b[:, None, None]
            cols = (f[:, None] + dx_v[None, :])[:, None, :]            # padded column index
            if l == 0:   # image rows i-1-k2 .. i-1, stored at offset k2+1
                slab = xi[bb, (i[:, None] + dy_v[None, :])[:, :, None], cols]
            else:
                slab = V[l - 1][bb, slot(i[:, None] - k2 + dy_v[None, :])[:, :, None], cols]
            v_raw = net.v_conv[l](slab.permute(0, 3, 1, 2).reshape(len(i), -1))
            v_pre, link = net.vertical_terms(l, v_raw, cond[l])
            s = slot(i)
            V[l][b, s, f + k2] = net.gate(v_pre, net.v_gate[l]).to(f32)
            links[l][b, s, f] = link.to(f32)
        # Decode the ready pixels, colour by colour.
        b, i = pairs(active_rows(t, S, width, lag))
        if not len(i):
            continue
        j = t - i * lag
        s = slot(i)
        rows = (b * S + i).numpy()
        cols_np = j.numpy()
        hcols = j[:, None] + dx_h[None, :]
        for c in range(C):
            skip = 0
            for l in range(L):
                if l == 0:
                    slab = xi[b[:, None], (i + k2 + 1)[:, None], hcols]          # (n, k2+1, C)
                else:
                    slab = hb[l - 1][b[:, None], s[:, None], hcols]              # (n, k2+1, p)
                h_part = net.h_conv[l](slab.permute(0, 2, 1).reshape(len(i), -1))
                h_prev = hb[l - 1][b, s, j + k2] if l else None
                _, sk, h_new = net.horizontal(l, h_part, links[l][b, s, j], h_prev)
                hb[l][b, s, j + k2] = h_new.to(f32)
                skip = skip + sk
            logits = net.head(skip).view(len(i), C, 256)[:, c]
            sym = torch.as_tensor(source(net.counts(logits), rows, cols_np, c), dtype=torch.int64)
            out[rows, cols_np, c] = sym.numpy()
            xi[b, i + k2 + 1, j + k2, c] = (2 * sym - 255).to(f32)
        if progress is not None:
            progress(len(i))
    return out
