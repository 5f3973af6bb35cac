"""pixzip: lossless image compression with a Gated PixelCNN."""
from .codec import compress, decompress, decompress_with_metadata, read_header
from .errors import PixzipError
from .networks import GatedPixelCNN, ModelConfig, PixelCNN, build_model

try:
    from importlib.metadata import PackageNotFoundError, version as _version
    __version__ = _version("pixzip")
except PackageNotFoundError:   # a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["GatedPixelCNN", "ModelConfig", "PixelCNN", "PixzipError", "build_model", "compress", "decompress",
           "read_header", "decompress_with_metadata", "__version__"]
