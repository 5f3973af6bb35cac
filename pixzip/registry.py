"""Integer models by name: the shipped ones and any folder named in $PIXZIP_MODELS.

A model file is ``NAME.pxm``; its sha256 is its identity, and a .pxz file names
the model it was made with, so decompression needs no flag.  Names are
forever, so the compression levels are aliases: ``aliases.json`` in a model
folder maps "default", "fast" (-1) and "max" (-9) to model names, and a file
records the model's own name, never the alias.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from .errors import UnknownModelError
from .intnet import IntGatedPixelCNN

SUFFIX = ".pxm"
ALIASES = "aliases.json"
DEFAULT_MODEL = "default"
LEVELS = {1: "fast", 9: "max"}   # -1, -9; no level is DEFAULT_MODEL


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


def aliases() -> dict[str, str]:
    """Alias -> model name, from every folder on the search path (first wins)."""
    found: dict[str, str] = {}
    for d in search_path():
        f = d / ALIASES
        if f.is_file():
            try:
                table = json.loads(f.read_text())
            except (OSError, ValueError) as e:
                raise UnknownModelError(f"{f}: unreadable alias table ({e.__class__.__name__})") from None
            for alias, target in table.items():
                found.setdefault(str(alias), str(target))
    return found


def resolve(name: str) -> str:
    """The model name behind an alias (a name that is not an alias is itself)."""
    return aliases().get(name, name)


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
        name = resolve(name)
    if name not in models:
        known = ", ".join(sorted(models)) or "none installed"
        asked = str(name_or_path)
        if asked == name and asked in (DEFAULT_MODEL, *LEVELS.values()):
            raise UnknownModelError(f"no model is installed for the level {asked!r} (available: {known})")
        what = f"{asked!r} (an alias of {name!r})" if asked != name else repr(name)
        raise UnknownModelError(f"unknown model {what} (available: {known})")
    f = models[name]
    return _load(str(f.resolve()), f.stat().st_mtime)
