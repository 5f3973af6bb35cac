"""pixzip: lossless image compression with a Gated PixelCNN."""
from .networks import GatedPixelCNN, ModelConfig, PixelCNN, build_model

__version__ = "0.1.0"

__all__ = ["GatedPixelCNN", "ModelConfig", "PixelCNN", "build_model", "__version__"]
