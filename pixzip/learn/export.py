"""Export a trained float Gated PixelCNN to the frozen integer network.

Scales of the activations are calibrated on images (a high percentile of each
traced map), weights are 10-bit integers with a per-output-channel scale
folded into the requantization multiplier, and each layer's exact accumulation type is chosen
from the bound sum(|w|) * max|a| per output channel (float32 below 2^24).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..codec.contract import (
    ACT_MAX,
    GATE_LIMIT,
    GATE_UNITS,
    LOGIT_UNITS,
    TABLE_BITS,
    make_tables,
)
from ..codec.network.modelfile import IntConfig, ModelFile
from .networks import GatedPixelCNN

PERCENTILE = 0.9999
# 10-bit weights and activations with gate inputs in 1/512: on Kodak crops with a
# CIFAR-trained model, int8 weights and activations cost +1.93% bits/dim over the
# float model, this costs +0.12% (the budget is 1%).
WEIGHT_MAX = 511
MAX_SHIFT = 48


def _quantile(t: torch.Tensor, q: float, limit: int = 1 << 22) -> float:
    flat = t.detach().abs().flatten().double()
    if flat.numel() > limit:
        idx = torch.randint(0, flat.numel(), (limit,), generator=torch.Generator().manual_seed(0))
        flat = flat[idx]
    return float(torch.quantile(flat, q)) if flat.numel() else 0.0


def _shift_for(ratio_max: float, acc_max: float) -> int:
    """Largest shift (<= MAX_SHIFT) with mult * acc_max + 2^(shift-1) < 2^52,
    so that requantization is exact in float64 (see intnet)."""
    room = 51 - math.log2(max(acc_max, 1.0)) - math.log2(max(ratio_max, 1e-300)) - 1
    return int(max(1, min(MAX_SHIFT, math.floor(room))))


def _linear(prefix, weight, bias, s_in, max_in, s_out, tensors, config):
    """Quantize one (masked) conv/linear: integer weights (|w| <= WEIGHT_MAX), one scale per output channel."""
    w = weight.detach().double().reshape(weight.shape[0], -1)
    b = bias.detach().double() if bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    s_w = w.abs().amax(dim=1) / WEIGHT_MAX
    s_w = torch.where(s_w > 0, s_w, torch.ones_like(s_w))
    wq = torch.round(w / s_w[:, None]).clamp_(-WEIGHT_MAX, WEIGHT_MAX)
    bq = torch.round(b / (s_w * s_in))
    ratio = s_w * s_in / s_out
    bound = float((wq.abs().sum(dim=1) * max_in).max())
    acc_max = bound + float(bq.abs().max())
    shift = _shift_for(float(ratio.max()), acc_max)
    mult = torch.round(ratio * 2.0 ** shift)
    tensors[prefix + ".w"] = wq.numpy().astype(np.int8 if WEIGHT_MAX <= 127 else np.int16)
    tensors[prefix + ".b"] = bq.numpy().astype(np.int64)
    tensors[prefix + ".m"] = mult.numpy().astype(np.int64)
    config["shift"][prefix] = shift
    config["bound"][prefix] = bound


def _tiles(images: list[np.ndarray], size: int):
    """The images cut into tiles of at most size x size, image by image."""
    for im in images:
        for a in range(0, im.shape[0], size):
            for b in range(0, im.shape[1], size):
                yield im[a:a + size, b:b + size]


@torch.no_grad()
def calibrate(model: GatedPixelCNN, images: list[np.ndarray], max_pixels: int = 1 << 20, tile: int = 192) -> dict:
    """Percentile magnitudes of the traced maps over ``images``, in tiles (a
    traced pass keeps every layer's maps: about 8 KB per pixel and layer)."""
    stats: dict[str, float] = {}
    seen = 0
    for im in _tiles(images, tile):
        x = torch.from_numpy(im.transpose(2, 0, 1)[None].copy())
        trace: dict = {}
        model(x, trace=trace)
        for key in ("v", "g", "h", "skip"):
            for l, t in enumerate(trace[key]):
                k = f"{key}.{l}"
                stats[k] = max(stats.get(k, 0.0), _quantile(t, PERCENTILE))
        stats["skip_sum"] = max(stats.get("skip_sum", 0.0), _quantile(torch.relu(trace["skip_sum"]), PERCENTILE))
        stats["hidden"] = max(stats.get("hidden", 0.0), _quantile(trace["hidden"], PERCENTILE))
        stats["skip_max"] = max(stats.get("skip_max", 0.0),
                                max(float(t.abs().max()) for t in trace["skip"]))
        seen += im.shape[0] * im.shape[1]
        if seen >= max_pixels:
            break
    return stats


def export_gated(model: GatedPixelCNN, calib_images: list[np.ndarray], name: str) -> ModelFile:
    model = model.double().eval().cpu()
    cfg = model.config
    stats = calibrate(model, calib_images)
    L = cfg.layers
    eps = 1e-8
    s_v = [max(stats[f"v.{l}"], eps) / ACT_MAX for l in range(L)]
    s_g = [max(stats[f"g.{l}"], eps) / ACT_MAX for l in range(L)]
    s_res = max(max(stats[f"h.{l}"] for l in range(L)), eps) / ACT_MAX
    s_skip = max(stats["skip_max"], eps) / (1 << 16)
    s_a = max(stats["skip_sum"], eps) / ACT_MAX
    s_hid = max(stats["hidden"], eps) / ACT_MAX
    s_x, s_gate, s_logit = 1.0 / 255, 1.0 / GATE_UNITS, 1.0 / LOGIT_UNITS

    config = {"arch": "gated", "colors": cfg.colors, "channels": cfg.channels, "layers": L,
              "kernel": cfg.kernel, "skip_channels": cfg.skip_channels or cfg.channels,
              "head_channels": cfg.head_channels or cfg.channels, "n_classes": cfg.n_classes,
              "shift": {}, "bound": {}, "gate_mult": [], "gate_shift": []}
    tensors: dict[str, np.ndarray] = dict(make_tables())
    for l in range(L):
        v_in, v_max = (s_x, 255) if l == 0 else (s_v[l - 1], ACT_MAX)
        h_in, h_max = (s_x, 255) if l == 0 else (s_res, ACT_MAX)
        _linear(f"v_conv.{l}", model.v_convs[l].weight, model.v_convs[l].bias, v_in, v_max, s_gate, tensors, config)
        _linear(f"link.{l}", model.links[l].weight, model.links[l].bias, s_gate, GATE_LIMIT, s_gate, tensors, config)
        _linear(f"h_conv.{l}", model.h_convs[l].masked_weight(), model.h_convs[l].bias, h_in, h_max, s_gate,
                tensors, config)
        _linear(f"skip.{l}", model.skips[l].masked_weight(), model.skips[l].bias, s_g[l], ACT_MAX, s_skip,
                tensors, config)
        _linear(f"h_out.{l}", model.h_outs[l].masked_weight(), model.h_outs[l].bias, s_g[l], ACT_MAX, s_res,
                tensors, config)
        for s_out in (s_v[l], s_g[l]):  # gate products are in units of 2^-30
            ratio = 2.0 ** (-2 * TABLE_BITS) / s_out
            shift = _shift_for(ratio, 2.0 ** (2 * TABLE_BITS))
            config["gate_mult"].append(int(round(ratio * 2 ** shift)))
            config["gate_shift"].append(shift)
    ratio = s_skip / s_a
    shift = _shift_for(ratio, 2.0 ** 24)  # the skip sum is clamped to +-2^24
    config["head_in_mult"], config["head_in_shift"] = int(round(ratio * 2 ** shift)), shift
    _linear("head1", model.head[1].masked_weight(), model.head[1].bias, s_a, ACT_MAX, s_hid, tensors, config)
    _linear("head2", model.head[3].masked_weight(), model.head[3].bias, s_hid, ACT_MAX, s_logit, tensors, config)
    if cfg.n_classes:
        for key, emb in (("v_cond", model.v_cond), ("h_cond", model.h_cond)):
            e = emb.weight.detach().double().view(cfg.n_classes, L, -1)
            tensors[key] = torch.round(e * GATE_UNITS).clamp_(-GATE_LIMIT, GATE_LIMIT).numpy().astype(np.int64)
    config["calibration"] = {k: float(v) for k, v in stats.items()}
    return ModelFile(IntConfig.from_dict(config), tensors, name)


def export_checkpoint(checkpoint, out, name: str, calib, val=None, max_calib: int = 64, overwrite: bool = False):
    """Export a checkpoint's model to ``out`` (written atomically; an
    existing file is replaced only with ``overwrite``) and measure it.

    Returns a dict with the float and integer bits/dim on the validation images
    (the calibration images when none are given) and the file's sha256."""
    from pathlib import Path

    from ..codec.api import ideal_bits
    from ..errors import PixzipError
    from .checkpoints import load_model
    from .datasets import load_images
    from .likelihood import evaluate_bpd
    if not (1 <= len(name) <= 64 and name.isascii() and name.isprintable()):
        raise PixzipError(f"model name {name!r} must be 1..64 printable ASCII characters")
    if Path(out).exists() and not overwrite:
        raise PixzipError(f"{out}: already exists (use -f to overwrite)")
    model = load_model(checkpoint)
    if not isinstance(model, GatedPixelCNN):
        raise ValueError(f"{checkpoint}: only gated models can be exported")
    calib_set = load_images(calib, colors=model.config.colors)
    val_set = load_images(val, colors=model.config.colors) if val else calib_set
    net = export_gated(model, calib_set.images[:max_calib], name)
    try:
        net.save(Path(out), overwrite=overwrite)
    except FileExistsError:
        raise PixzipError(f"{out}: already exists (use -f to overwrite)") from None
    float_bpd = evaluate_bpd(model.float(), val_set)
    int_bits = sum(ideal_bits(im, net) for im in val_set.images)
    int_bpd = int_bits / val_set.n_subpixels
    return {"name": name, "sha256": net.sha256, "float_bpd": float_bpd, "int_bpd": int_bpd,
            "images": len(val_set)}
