"""The float networks: the seeds' PixelCNN and the Gated PixelCNN.

Both map an integer image batch ``x`` of shape (B, C, H, W) with values 0..255
to logits of shape (B, C, 256, H, W): ``logits[b, c, :, i, j]`` is the
unnormalised 256-way distribution of sub-pixel (i, j, c), conditioned on every
sub-pixel before it in raster order and R -> G -> B inside a pixel.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from .layers import horizontal_conv, masked_1x1, masked_conv, shift_down, vertical_conv
from .masks import channel_groups

N_LEVELS = 256


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network; stored in checkpoints."""

    arch: str = "gated"          # "gated" or "pixelcnn"
    colors: int = 3              # 1 (grayscale) or 3 (RGB)
    channels: int = 60           # p: feature maps per stack (divisible by 3 for RGB)
    layers: int = 8              # gated layers, or residual blocks for pixelcnn
    kernel: int = 5              # k for gated stacks (odd); pixelcnn uses 7 then 3
    skip_channels: int = 0       # gated skip width; 0 means `channels`
    head_channels: int = 0       # hidden width of the output head; 0 means `channels`
    n_classes: int = 0           # > 0 enables class conditioning

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def build_model(config: ModelConfig) -> "AutoregressiveNet":
    if config.colors not in (1, 3):
        raise ValueError(f"colors must be 1 or 3, not {config.colors}")
    if config.arch == "gated":
        return GatedPixelCNN(config)
    if config.arch == "pixelcnn":
        return PixelCNN(config)
    raise ValueError(f"unknown architecture {config.arch!r} (choose gated or pixelcnn)")


class AutoregressiveNet(nn.Module):
    config: ModelConfig

    def _init_common(self, config: ModelConfig):
        self.config = config
        c = config.colors
        self.in_groups = torch.arange(c) if c > 1 else torch.zeros(1, dtype=torch.long)
        self.logit_groups = self.in_groups.repeat_interleave(N_LEVELS)

    def groups(self, n: int) -> torch.Tensor:
        return channel_groups(n, self.config.colors)

    def _head(self, in_ch: int) -> nn.Sequential:
        hc = self.config.head_channels or self.config.channels
        return nn.Sequential(
            nn.ReLU(),
            masked_1x1(in_ch, hc, self.groups(in_ch), self.groups(hc)),
            nn.ReLU(),
            masked_1x1(hc, self.config.colors * N_LEVELS, self.groups(hc), self.logit_groups),
        )

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Map 0..255 to [-1, 1] in the model's floating type."""
        return x.to(self.head[-1].weight.dtype) / 127.5 - 1.0

    def _logits(self, out: torch.Tensor) -> torch.Tensor:
        b, _, h, w = out.shape
        return out.view(b, self.config.colors, N_LEVELS, h, w)

    def receptive_field(self) -> dict:
        """Exact extent of the context: ``rows_above`` full rows above the pixel,
        ``cols_left``/``cols_right`` columns either side in those rows, and
        ``cols_left_current`` columns to the left in the pixel's own row."""
        raise NotImplementedError


class GatedPixelCNN(AutoregressiveNet):
    """Gated PixelCNN (van den Oord et al. 2016) with vertical and horizontal stacks.

    The vertical stack works on the image shifted down one row, so at row i it
    sees only rows < i.  The horizontal stack sees the current row up to the
    current column; its centre tap carries the RGB mask (A in layer 0, B after).
    Each layer computes the 2p gate maps in one convolution, links vertical into
    horizontal by a 1x1 convolution, adds a residual on the horizontal stack and
    emits a skip connection; the skips are summed into the output head.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self._init_common(config)
        p, k, c = config.channels, config.kernel, config.colors
        if k % 2 == 0 or k < 3:
            raise ValueError(f"kernel must be odd and >= 3, not {k}")
        if config.layers < 1:
            raise ValueError("a gated PixelCNN needs at least one layer")
        self.groups(p)  # validates divisibility
        skip = config.skip_channels or p
        gate_groups = torch.cat([self.groups(p), self.groups(p)])
        self.v_convs = nn.ModuleList()
        self.h_convs = nn.ModuleList()
        self.links = nn.ModuleList()
        self.h_outs = nn.ModuleList()
        self.skips = nn.ModuleList()
        for layer in range(config.layers):
            first = layer == 0
            in_ch = c if first else p
            in_groups = self.in_groups if first else self.groups(p)
            self.v_convs.append(vertical_conv(in_ch, 2 * p, k))
            self.h_convs.append(horizontal_conv(in_ch, 2 * p, k, "A" if first else "B", in_groups, gate_groups))
            self.links.append(nn.Conv2d(2 * p, 2 * p, 1))
            self.h_outs.append(masked_1x1(p, p, self.groups(p), self.groups(p)))
            self.skips.append(masked_1x1(p, skip, self.groups(p), self.groups(skip)))
        if config.n_classes:
            self.v_cond = nn.Embedding(config.n_classes, 2 * p * config.layers)
            self.h_cond = nn.Embedding(config.n_classes, 2 * p * config.layers)
            nn.init.zeros_(self.v_cond.weight)
            nn.init.zeros_(self.h_cond.weight)
        self.head = self._head(skip)

    @staticmethod
    def gate(a: torch.Tensor) -> torch.Tensor:
        t, s = a.chunk(2, dim=1)
        return torch.tanh(t) * torch.sigmoid(s)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, trace: dict | None = None) -> torch.Tensor:
        """Logits (B, C, 256, H, W).  With ``trace``, the intermediate maps
        (per-layer lists under "v_pre", "h_pre", "v", "g", "h", "skip", and
        "skip_sum", "hidden") are recorded in it, for calibrating the export."""
        cfg = self.config
        p = cfg.channels
        xin = self.normalise(x)
        v, h = shift_down(xin), xin
        skip = 0
        if cfg.n_classes and labels is not None:
            vb = self.v_cond(labels).view(-1, cfg.layers, 2 * p, 1, 1)
            hb = self.h_cond(labels).view(-1, cfg.layers, 2 * p, 1, 1)
        for layer in range(cfg.layers):
            v_pre = self.v_convs[layer](v)
            h_pre = self.h_convs[layer](h) + self.links[layer](v_pre)
            if cfg.n_classes and labels is not None:
                v_pre = v_pre + vb[:, layer]
                h_pre = h_pre + hb[:, layer]
            v = self.gate(v_pre)
            g = self.gate(h_pre)
            s = self.skips[layer](g)
            skip = skip + s
            h = self.h_outs[layer](g) + (h if layer else 0)
            if trace is not None:
                for key, val in (("v_pre", v_pre), ("h_pre", h_pre), ("v", v), ("g", g), ("h", h), ("skip", s)):
                    trace.setdefault(key, []).append(val)
        if trace is not None:
            trace["skip_sum"] = skip
            trace["hidden"] = self.head[2](self.head[1](self.head[0](skip)))
        return self._logits(self.head(skip))

    def receptive_field(self) -> dict:
        r = self.config.layers * (self.config.kernel // 2)
        return {"rows_above": r + 1, "cols_left": r, "cols_right": r, "cols_left_current": r}


class PixelCNN(AutoregressiveNet):
    """The seeds' PixelCNN: a 7x7 mask-A convolution, residual blocks of
    1x1 -> 3x3 -> 1x1 mask-B convolutions with ReLU, then ReLU -> 1x1 -> ReLU -> 1x1.

    Stacked masked k x k convolutions have a blind spot above and to the right.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self._init_common(config)
        h, c = config.channels, config.colors
        g1, g2 = self.groups(h), self.groups(2 * h)
        self.input_conv = masked_conv(c, 2 * h, 7, "A", self.in_groups, g2)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.ReLU(), masked_1x1(2 * h, h, g2, g1),
                nn.ReLU(), masked_conv(h, h, 3, "B", g1, g1),
                nn.ReLU(), masked_1x1(h, 2 * h, g1, g2),
            )
            for _ in range(config.layers)
        )
        if config.n_classes:
            self.cond = nn.Embedding(config.n_classes, 2 * h)
            nn.init.zeros_(self.cond.weight)
        self.head = self._head(2 * h)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        out = self.input_conv(self.normalise(x))
        if self.config.n_classes and labels is not None:
            out = out + self.cond(labels)[:, :, None, None]
        for block in self.blocks:
            out = out + block(out)
        return self._logits(self.head(out))

    def receptive_field(self) -> dict:
        # Nominal extent of the stacked masks; the region above-right of the
        # diagonal inside it is the blind spot and is never seen.
        r = 3 + self.config.layers
        return {"rows_above": r, "cols_left": r, "cols_right": r, "cols_left_current": r}
