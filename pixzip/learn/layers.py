"""Convolutions used by both networks: explicit padding plus an optional causal mask."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .masks import causal_mask


class CausalConv2d(nn.Conv2d):
    """A 2-D convolution with explicit (left, right, top, bottom) zero padding and
    an optional causal mask applied to the weight on every call.

    ``centre`` is the kernel tap aligned with the output position.  With
    ``mask_type=None`` the convolution is unmasked (used by the vertical stack,
    whose input is already shifted down one row).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int],
        padding: tuple[int, int, int, int],
        mask_type: str | None = None,
        in_groups: torch.Tensor | None = None,
        out_groups: torch.Tensor | None = None,
        centre: tuple[int, int] | None = None,
    ):
        super().__init__(in_channels, out_channels, kernel, padding=0)
        self.pad = tuple(padding)
        if mask_type is None:
            self.register_buffer("mask", None)
        else:
            self.register_buffer(
                "mask", causal_mask(out_groups, in_groups, kernel, centre, mask_type), persistent=False
            )

    def masked_weight(self) -> torch.Tensor:
        return self.weight if self.mask is None else self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad)
        return F.conv2d(x, self.masked_weight(), self.bias)


def masked_conv(in_ch, out_ch, k, mask_type, in_groups, out_groups) -> CausalConv2d:
    """A k x k mask-A/B convolution, as in the original PixelCNN."""
    p = k // 2
    return CausalConv2d(in_ch, out_ch, (k, k), (p, p, p, p), mask_type, in_groups, out_groups, (p, p))


def masked_1x1(in_ch, out_ch, in_groups, out_groups) -> CausalConv2d:
    """A 1x1 convolution that keeps the colour grouping (mask B)."""
    return CausalConv2d(in_ch, out_ch, (1, 1), (0, 0, 0, 0), "B", in_groups, out_groups, (0, 0))


def vertical_conv(in_ch, out_ch, k) -> CausalConv2d:
    """(k//2+1) x k convolution of the vertical stack: output row i sees input rows i-k//2..i."""
    p = k // 2
    return CausalConv2d(in_ch, out_ch, (p + 1, k), (p, p, p, 0))


def horizontal_conv(in_ch, out_ch, k, mask_type, in_groups, out_groups) -> CausalConv2d:
    """1 x (k//2+1) convolution of the horizontal stack: columns j-k//2..j, current tap masked."""
    p = k // 2
    return CausalConv2d(in_ch, out_ch, (1, p + 1), (p, 0, 0, 0), mask_type, in_groups, out_groups, (0, p))


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """Shift a (B, C, H, W) map down one row, filling the top row with zeros."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]
