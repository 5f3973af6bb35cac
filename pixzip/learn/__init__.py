"""The float, trainable side (torch): masks, layers, the PixelCNN and Gated
PixelCNN networks, likelihood (bits/dim), sampling, datasets, training,
checkpoints, and the export to the frozen integer model of ``pixzip.codec``.
Needs ``pip install 'pixzip[train]'``."""
from .checkpoints import load_checkpoint, load_model
from .networks import GatedPixelCNN, ModelConfig, PixelCNN, build_model

__all__ = ["GatedPixelCNN", "ModelConfig", "PixelCNN", "build_model", "load_checkpoint", "load_model"]
