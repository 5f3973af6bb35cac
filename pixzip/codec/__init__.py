"""The exact path: everything that writes and reads .pxz files, in integers
and tables, identical on every machine.  It never imports torch.

Grouped by role (the whole map, one line a module: ``docs/layout.md``):

- ``contract``: the model <-> coder contract (alphabet, scales, counts
  rule, what the coder is given, the source protocol, the stream order);
- ``network/``: the integer network: its model file and registry, its
  schedule, its compiled kernels, the encoder (``enc_stream``) and the
  decoder (``dec_wavefront``) that run it, and its range coder;
- ``mixer/``: the context mixer, its binary coder and its definition;
- ``format/``: the .pxz container, stored payloads, metadata and what an
  image file holds, kept exactly or refused;
- ``kernel_cache``: where compiled kernels are kept;
- ``api``: compress, decompress, read_header.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .api import compress, decompress, decompress_with_metadata, read_header
    from .network.modelfile import ModelFile
    from .network.registry import load_model

_LAZY = {"compress": "api", "decompress": "api", "decompress_with_metadata": "api", "read_header": "api",
         "ModelFile": "network.modelfile", "load_model": "network.registry"}
__all__ = ["ModelFile", "compress", "decompress", "decompress_with_metadata", "load_model", "read_header"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
