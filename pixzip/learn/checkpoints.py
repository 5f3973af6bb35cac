"""Float models on disk: weights files and training checkpoints.

- A **weights file** (``.safetensors``) holds a float model's tensors and its
  config (in the file's metadata), nothing executable: the shipped float
  models and the best weights of a run (``CKPT.best.safetensors``) are these.
- A **checkpoint** (``.pt``) is a training run: the model, its config, and
  the state needed to resume bit for bit (optimiser, schedule, random
  generators).  Only ``train --resume`` unpickles one in full; every other
  use reads its weights with torch's restricted loader (``weights_only``),
  which runs no code from the file.

``load_model`` reads either.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..atomic import atomic_write
from .networks import ModelConfig, build_model

WEIGHTS_SUFFIX = ".safetensors"
WEIGHTS_FORMAT = "pixzip-float/1"


def atomic_torch_save(obj, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_checkpoint(path, map_location="cpu", resume: bool = False) -> dict:
    """A checkpoint's contents.  Only with ``resume`` is it unpickled in full
    (the training state); otherwise torch's restricted loader reads it."""
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=not resume)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such checkpoint") from None
    except Exception as e:  # torch raises many types for a bad file
        raise ValueError(f"{path}: not a pixzip checkpoint ({e.__class__.__name__})") from None
    if not isinstance(ckpt, dict) or "model_config" not in ckpt or "model" not in ckpt:
        raise ValueError(f"{path}: not a pixzip checkpoint")
    return ckpt


def save_weights(model, path, **info) -> None:
    """A float model's weights and config as a .safetensors file (atomically);
    ``info`` (numbers or strings) goes into its metadata."""
    from safetensors.torch import save_file
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": WEIGHTS_FORMAT, "model_config": json.dumps(model.config.to_dict(), sort_keys=True),
            **{k: json.dumps(v) for k, v in info.items()}}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def read_weights(path) -> dict:
    """{"model_config", "model", and the metadata's other items} of a weights file."""
    from safetensors import SafetensorError, safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such weights file") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable weights file ({e.__class__.__name__})") from None
    if meta.get("format") != WEIGHTS_FORMAT or "model_config" not in meta:
        raise ValueError(f"{path}: not a pixzip weights file")
    out = {k: json.loads(v) for k, v in meta.items() if k != "format"}
    out["model"] = tensors
    return out


def read(path) -> dict:
    """A weights file's or a checkpoint's contents (the checkpoint through the
    restricted loader): "model_config", "model", and what else it holds."""
    return read_weights(path) if Path(path).suffix == WEIGHTS_SUFFIX else load_checkpoint(path)


def load_model(path_or_checkpoint, device="cpu"):
    """The float model in a weights file or a checkpoint (a path, or one
    already loaded), in eval mode."""
    ckpt = path_or_checkpoint if isinstance(path_or_checkpoint, dict) else read(path_or_checkpoint)
    model = build_model(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval()
