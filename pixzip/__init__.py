"""pixzip: lossless image compression with a Gated PixelCNN."""
from .codec import compress, decompress, read_header
from .errors import PixzipError
from .networks import GatedPixelCNN, ModelConfig, PixelCNN, build_model

__version__ = "0.1.0"

__all__ = ["GatedPixelCNN", "ModelConfig", "PixelCNN", "PixzipError", "build_model", "compress", "decompress",
           "read_header", "__version__"]
