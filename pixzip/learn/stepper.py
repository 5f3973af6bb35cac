"""Incremental evaluation of a Gated PixelCNN, for sampling.

The vertical stack is computed once per row (one output row per layer from the
k//2+1 rows above it), and the horizontal stack only at the column being
drawn, from per-layer row buffers.  Within a pixel, the colour sub-steps
recompute that one column: the masks guarantee that colour group c does not
depend on colours >= c of the current pixel, so its logits are final at
sub-step c.  The logits equal the full-pass logits (up to float rounding; the
integer decoder of the codec makes them exact).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .layers import CausalConv2d
from .networks import GatedPixelCNN


def _matrix(conv: CausalConv2d) -> torch.Tensor:
    """(out, in*kh*kw) matrix of a (masked) convolution, flattened like a slab."""
    w = conv.masked_weight().detach()
    return w.reshape(w.shape[0], -1)


class GatedStepper:
    """Holds the row buffers of ``n`` images being generated."""

    def __init__(self, model: GatedPixelCNN, n: int, height: int, width: int, labels=None):
        cfg = model.config
        self.model, self.n, self.h, self.w = model, n, height, width
        self.p, self.k2 = cfg.channels, cfg.kernel // 2
        dev = model.head[-1].weight.device
        dt = model.head[-1].weight.dtype
        self.x = torch.zeros(n, cfg.colors, height, width, dtype=dt, device=dev)  # normalised image
        self.v = [torch.zeros(n, self.p, height, width, dtype=dt, device=dev) for _ in range(cfg.layers)]
        self.link = [torch.zeros(n, 2 * self.p, width, dtype=dt, device=dev) for _ in range(cfg.layers)]
        self.hbuf = [torch.zeros(n, self.p, width, dtype=dt, device=dev) for _ in range(cfg.layers)]
        self.v_bias = self.h_bias = None
        if cfg.n_classes and labels is not None:
            lab = torch.as_tensor(labels, device=dev).expand(n)
            self.v_bias = model.v_cond(lab).view(n, cfg.layers, 2 * self.p)
            self.h_bias = model.h_cond(lab).view(n, cfg.layers, 2 * self.p)
        self.wh = [_matrix(c) for c in model.h_convs]
        self.bh = [c.bias.detach() for c in model.h_convs]
        self.wo = [_matrix(c) for c in model.h_outs]
        self.bo = [c.bias.detach() for c in model.h_outs]
        self.ws = [_matrix(c) for c in model.skips]
        self.bs = [c.bias.detach() for c in model.skips]
        self.w1, self.b1 = _matrix(model.head[1]), model.head[1].bias.detach()
        self.w2, self.b2 = _matrix(model.head[3]), model.head[3].bias.detach()

    def start_row(self, i: int) -> None:
        """Vertical stack for row i (it sees rows < i only) and its link terms."""
        m, k2 = self.model, self.k2
        for layer in range(m.config.layers):
            if layer == 0:  # the image shifted down one row: rows i-1-k2 .. i-1
                src, top = self.x, i - 1 - k2
            else:
                src, top = self.v[layer - 1], i - k2
            slab = src[:, :, max(0, top):top + k2 + 1]
            slab = F.pad(slab, (k2, k2, k2 + 1 - slab.shape[2], 0))
            v_pre = F.conv2d(slab, m.v_convs[layer].weight, m.v_convs[layer].bias)[:, :, 0]
            link = m.links[layer](v_pre[..., None])[..., 0]
            if self.v_bias is not None:
                v_pre = v_pre + self.v_bias[:, layer, :, None]
                link = link + self.h_bias[:, layer, :, None]
            self.v[layer][:, :, i] = m.gate(v_pre)
            self.link[layer] = link

    def logits(self, i: int, j: int) -> torch.Tensor:
        """(n, C, 256) logits of pixel (i, j), given everything written so far."""
        m, k2 = self.model, self.k2
        skip = 0
        for layer in range(m.config.layers):
            src = self.x[:, :, i] if layer == 0 else self.hbuf[layer - 1]
            slab = src[:, :, max(0, j - k2):j + 1]
            slab = F.pad(slab, (k2 + 1 - slab.shape[2], 0)).reshape(self.n, -1)
            h_pre = torch.addmm(self.bh[layer], slab, self.wh[layer].T) + self.link[layer][:, :, j]
            g = m.gate(h_pre)
            skip = skip + torch.addmm(self.bs[layer], g, self.ws[layer].T)
            h = torch.addmm(self.bo[layer], g, self.wo[layer].T)
            self.hbuf[layer][:, :, j] = h + (self.hbuf[layer - 1][:, :, j] if layer else 0)
        hid = torch.relu(torch.addmm(self.b1, torch.relu(skip), self.w1.T))
        return torch.addmm(self.b2, hid, self.w2.T).view(self.n, m.config.colors, -1)

    def write(self, i: int, j: int, c: int, values: torch.Tensor) -> None:
        """Record the integer value of sub-pixel (i, j, c) for every image."""
        self.x[:, c, i, j] = self.model.normalise(values)
