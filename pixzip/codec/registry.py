"""Integer models by their own name: the shipped ones and any folder named in $PIXZIP_MODELS.

A model file (``.pxm``) holds the model's own name, and its sha256 is its
identity.  A .pxz file names the model it was made with by that name and a
hash prefix, so decompression needs no flag, whatever the model's file is
called: the registry reads the name inside every ``.pxm`` on the search path
(cached by path, size and modification time).  Names are forever, so the
compression levels are aliases: ``aliases.json`` in a model folder maps
"default" (the network that ``--method`` codes with), "fast" (the default
level's) and "max" (-9's) to model names, and a file records the model's own
name, never the alias.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Union

from ..errors import ModelFileError, UnknownModelError, describe_os_error
from .modelfile import ModelFile, read_name

ModelLike = Union[ModelFile, str, os.PathLike, None]   # a model, a name or alias, a .pxm path; None: the default

SUFFIX = ".pxm"
ALIASES = "aliases.json"
DEFAULT_MODEL = "default"
HOW_TO_SUPPLY = "put its .pxm file in a folder listed in $PIXZIP_MODELS, or name the file with -m"


def search_path() -> list[Path]:
    dirs = [Path(d) for d in os.environ.get("PIXZIP_MODELS", "").split(os.pathsep) if d]
    package = Path(__file__).resolve().parent.parent
    dirs += [package / "models", package.parent / "models"]  # installed package data, or a source checkout
    return [d for d in dirs if d.is_dir()]


@dataclass(frozen=True)
class Entry:
    name: str        # the model's own name, from inside the file
    sha256: str
    path: Path


@lru_cache(maxsize=256)
def _identity(path: str, size: int, mtime_ns: int) -> tuple[str, str] | None:
    """(own name, sha256) of a model file, or None if it is not a readable one."""
    data = Path(path).read_bytes()
    name = read_name(data)     # None: not a model file, skipped (loading it by path names the problem)
    return (name, hashlib.sha256(data).hexdigest()) if name else None


def _entry(f: Path) -> Entry | None:
    try:
        st = f.stat()
        ident = _identity(str(f.resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        return None
    return Entry(ident[0], ident[1], f) if ident else None


def entries() -> list[Entry]:
    """Every readable model file on the search path, in search order."""
    out = []
    for d in search_path():
        for f in sorted(d.glob("*" + SUFFIX)):
            e = _entry(f)
            if e is not None:
                out.append(e)
    return out


def available() -> dict[str, Path]:
    """Model name -> its file (the first on the search path)."""
    found: dict[str, Path] = {}
    for e in entries():
        found.setdefault(e.name, e.path)
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
def _load(path: str, size: int, mtime_ns: int) -> ModelFile:
    try:
        return ModelFile.load(path)
    except ModelFileError as e:
        raise ModelFileError(f"{path}: {e}") from None


def load_file(path) -> ModelFile:
    """The model in a .pxm file, whatever its name."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        raise ModelFileError(describe_os_error(p, e)) from None
    return _load(str(p.resolve()), st.st_size, st.st_mtime_ns)


def _is_path(name_or_path) -> bool:
    s = str(name_or_path)
    return isinstance(name_or_path, os.PathLike) or s.endswith(SUFFIX) or os.sep in s


def load_model(model: ModelLike = None) -> ModelFile:
    """An integer model: ``model`` itself if it is one, else by name or alias
    (from the search path) or by .pxm path; None is the default model."""
    if isinstance(model, ModelFile):
        return model
    name_or_path = DEFAULT_MODEL if model is None else model
    if _is_path(name_or_path):
        return load_file(name_or_path)
    asked = str(name_or_path)
    found = entries()
    for name in (asked, resolve(asked)):
        for e in found:
            if e.name == name:
                return load_file(e.path)
        for e in found:   # a file named after the model it does not hold: by its file name
            if e.path.stem == name:
                return load_file(e.path)
    name = resolve(asked)
    known = ", ".join(sorted({e.name for e in found})) or "none installed"
    from .levels import LEVELS
    if asked == name and asked in (DEFAULT_MODEL, *(lv.model for lv in LEVELS.values())):
        raise UnknownModelError(f"no model is installed for the level {asked!r} (available: {known})")
    what = f"{asked!r} (an alias of {name!r})" if asked != name else repr(name)
    raise UnknownModelError(f"unknown model {what} (available: {known})")


def find(name: str, hash_prefix: bytes) -> ModelFile:
    """The model a .pxz file names: its own name and the prefix of its sha256."""
    want = hash_prefix.hex()
    same_name = [e for e in entries() if e.name == name]
    for e in same_name:
        if e.sha256.startswith(want):
            return load_file(e.path)
    if same_name:
        others = ", ".join(f"{e.path} ({e.sha256[:16]})" for e in same_name)
        raise UnknownModelError(f"needs model {name!r} with sha256 {want}..., but the installed {name!r} "
                                f"is another model: {others}; {HOW_TO_SUPPLY}")
    raise UnknownModelError(f"needs model {name!r} (sha256 {want}...), which is not installed; {HOW_TO_SUPPLY}")


def check(net: ModelFile, name: str, hash_prefix: bytes, where: str = "the given model") -> None:
    """Refuse a model given by the caller that is not the one a file needs."""
    if net.name != name or not net.sha256.startswith(hash_prefix.hex()):
        raise UnknownModelError(f"needs model {name!r} (sha256 {hash_prefix.hex()}...), but {where} is "
                                f"{net.name!r} (sha256 {net.sha256[:16]}...)")
