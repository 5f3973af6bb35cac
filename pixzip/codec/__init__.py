"""The exact path: everything that writes and reads .pxz files, in integers
and tables, identical on every machine.  It never imports torch.

- ``contract``: the model <-> coder contract (alphabet, scales, counts
  rule, what the coder is given, the source protocol, the stream order);
- ``modelfile``: the .pxm file; ``registry``: models by their own name;
- ``kernels``: the compiled integer network; ``wavefront`` (decoder) and
  ``stream`` (encoder) run it in schedule order (``schedule``);
- ``coder``: the entropy coder; ``container``: the .pxz header;
  ``stored``: raw and deflate payloads; ``metadata`` and ``images``: what
  an image file holds, kept exactly or refused;
- ``api``: compress, decompress, read_header;
- ``reference``: the same integer network in PyTorch, for tests, export
  and the GPU encoder (imported only by them).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .api import compress, decompress, decompress_with_metadata, read_header
    from .modelfile import ModelFile
    from .registry import load_model

_LAZY = {"compress": "api", "decompress": "api", "decompress_with_metadata": "api", "read_header": "api",
         "ModelFile": "modelfile", "load_model": "registry"}
__all__ = ["ModelFile", "compress", "decompress", "decompress_with_metadata", "load_model", "read_header"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
