"""Causal masks with RGB channel grouping (PixelCNN masks A and B).

A feature map of an image with ``n_colors`` colours is split into ``n_colors``
contiguous groups; group ``g`` may depend on colours ``< g`` of the current
pixel (and, for mask B, on its own group too).  Grayscale images have a single
group, so mask A hides the whole current pixel and mask B shows all of it.
"""
from __future__ import annotations

import torch


def channel_groups(n_channels: int, n_colors: int) -> torch.Tensor:
    """Group index of each of ``n_channels`` feature channels (contiguous blocks)."""
    if n_colors == 1:
        return torch.zeros(n_channels, dtype=torch.long)
    if n_channels % n_colors:
        raise ValueError(f"{n_channels} channels cannot be split into {n_colors} colour groups")
    return torch.arange(n_colors).repeat_interleave(n_channels // n_colors)


def causal_mask(
    out_groups: torch.Tensor,
    in_groups: torch.Tensor,
    kernel: tuple[int, int],
    centre: tuple[int, int],
    mask_type: str,
) -> torch.Tensor:
    """Mask of shape (out, in, kh, kw) for a convolution whose tap ``centre`` is
    aligned with the output position.

    Taps before the centre in raster order are kept, taps after it are zero, and
    the centre tap connects input group i to output group j only if i < j
    (mask ``"A"``) or i <= j (mask ``"B"``).
    """
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask type must be 'A' or 'B', not {mask_type!r}")
    kh, kw = kernel
    cy, cx = centre
    mask = torch.zeros(len(out_groups), len(in_groups), kh, kw)
    order = torch.arange(kh * kw).view(kh, kw)
    mask[:, :, order < cy * kw + cx] = 1.0
    o = out_groups.view(-1, 1)
    i = in_groups.view(1, -1)
    allowed = (i < o) if mask_type == "A" else (i <= o)
    mask[:, :, cy, cx] = allowed.float()
    return mask
