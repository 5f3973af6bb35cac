"""Integer models by name: the shipped ones and any folder named in $PIXZIP_MODELS.

A model file is ``NAME.pxm``; its sha256 is its identity, and a .pxz file names
the model it was made with, so decompression needs no flag.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from .errors import UnknownModelError
from .intnet import IntGatedPixelCNN

SUFFIX = ".pxm"
DEFAULT_MODEL = "default"


def search_path() -> list[Path]:
    dirs = [Path(d) for d in os.environ.get("PIXZIP_MODELS", "").split(os.pathsep) if d]
    here = Path(__file__).resolve().parent
    dirs += [here / "models", here.parent / "models"]  # installed package data, or a source checkout
    return [d for d in dirs if d.is_dir()]


def available() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in search_path():
        for f in sorted(d.glob("*" + SUFFIX)):
            found.setdefault(f.stem, f)
    return found


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> IntGatedPixelCNN:
    return IntGatedPixelCNN.load(path)


def load(name_or_path) -> IntGatedPixelCNN:
    """A model by name (from the search path) or by file path."""
    p = Path(name_or_path)
    if p.suffix == SUFFIX and p.exists():
        return _load(str(p.resolve()), p.stat().st_mtime)
    models = available()
    name = str(name_or_path)
    if name not in models:
        known = ", ".join(sorted(models)) or "none installed"
        raise UnknownModelError(f"unknown model {name!r} (available: {known})")
    f = models[name]
    return _load(str(f.resolve()), f.stat().st_mtime)
