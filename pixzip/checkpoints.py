"""Checkpoints: a float model with its own config, plus the training state
needed to resume bit-for-bit."""
from __future__ import annotations

from pathlib import Path

import torch

from .atomic import atomic_write

from .networks import ModelConfig, build_model


def atomic_torch_save(obj, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_checkpoint(path, map_location="cpu") -> dict:
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such checkpoint") from None
    except Exception as e:  # torch raises many types for a bad file
        raise ValueError(f"{path}: not a pixzip checkpoint ({e.__class__.__name__})") from None
    if not isinstance(ckpt, dict) or "model_config" not in ckpt or "model" not in ckpt:
        raise ValueError(f"{path}: not a pixzip checkpoint")
    return ckpt


def load_model(path_or_checkpoint, device="cpu"):
    """The float model stored in a checkpoint (a path, or one already loaded), in eval mode."""
    ckpt = path_or_checkpoint if isinstance(path_or_checkpoint, dict) else load_checkpoint(path_or_checkpoint)
    model = build_model(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval()
