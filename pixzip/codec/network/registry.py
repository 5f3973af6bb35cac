"""Integer models by their own name: the shipped ones and any folder named in $PIXZIP_MODELS.

A model file (``.pxm``) holds the model's own name, and its sha256 is its
identity.  A .pxz file names the model it was made with by that name and a
hash prefix, so decompression needs no flag, whatever the model's file is
called: the registry reads the name inside every ``.pxm`` on the search path
(only its bounded ``__meta__``, cached by path, size and modification time;
a file's sha256 only when a file needs a model of its name).  Names are
forever, so the compression levels are aliases: the shipped ``aliases.json``
maps "fast" (the default level's network) and "max" (-9's, also what
``--method`` codes with when no level is given) to shipped model names, and
a file records the model's own name, never the alias.  "default", the old
name of "max", still resolves, with a deprecation note.

The levels' aliases and the shipped models' names always mean the shipped
files: a ``fast.pxm``, an ``aliases.json`` entry for "fast", or a file that
claims a shipped model's name in a user's folder never changes what a level
codes with.  A user's model or alias is used when it is asked for by its own
name (``-m NAME``) or path; a file claiming a shipped name is used by path,
and found by name and hash when a .pxz file needs it.  A damaged file on the
search path is skipped (``broken`` lists it) and breaks no command that does
not name it.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Union

from ...errors import ModelFileError, UnknownModelError, describe_os_error
from .modelfile import FILE_BYTES, ModelFile, read_name

ModelLike = Union[ModelFile, str, os.PathLike, None]   # a model, a name or alias, a .pxm path; None: -9's

SUFFIX = ".pxm"
ALIASES = "aliases.json"
ALIASES_BYTES = 64 << 10
MAX_MODEL = "max"          # what None means: -9's model (``levels.LEVELS``)
OLD_ALIASES = {"default": MAX_MODEL}    # still resolved, with a DeprecationWarning when named
HOW_TO_SUPPLY = "put its .pxm file in a folder listed in $PIXZIP_MODELS, or name the file with -m"


def shipped_path() -> list[Path]:
    """The folders of the shipped models: installed package data, or a source checkout."""
    package = Path(__file__).resolve().parents[2]     # pixzip/
    return [d for d in (package / "models", package.parent / "models") if d.is_dir()]


def user_path() -> list[Path]:
    return [Path(d) for d in os.environ.get("PIXZIP_MODELS", "").split(os.pathsep) if d and Path(d).is_dir()]


def search_path() -> list[Path]:
    return user_path() + shipped_path()


@dataclass(frozen=True)
class Entry:
    name: str        # the model's own name, from inside the file
    path: Path
    size: int
    mtime_ns: int
    shipped: bool

    @property
    def sha256(self) -> str:
        return _sha256(str(self.path.resolve()), self.size, self.mtime_ns)


@lru_cache(maxsize=1024)
def _meta(path: str, size: int, mtime_ns: int) -> tuple[str | None, str]:
    """(own name, "") of a model file, or (None, what is wrong with it); reads
    only the file's zip directory and its __meta__ (at most META_BYTES)."""
    if size > FILE_BYTES:
        return None, f"{path}: over {FILE_BYTES} bytes"
    try:
        return read_name(path), ""
    except ModelFileError as e:
        return None, f"{path}: {e}"
    except OSError as e:
        return None, describe_os_error(path, e)


@lru_cache(maxsize=1024)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _scan(dirs: list[Path], shipped: bool) -> tuple[list[Entry], list[tuple[Path, str]]]:
    good, bad = [], []
    for d in dirs:
        for f in sorted(d.glob("*" + SUFFIX)):
            try:
                st = f.stat()
                name, problem = _meta(str(f.resolve()), st.st_size, st.st_mtime_ns)
            except OSError as e:
                name, problem = None, describe_os_error(f, e)
            if name is None:
                bad.append((f, problem))
            else:
                good.append(Entry(name, f, st.st_size, st.st_mtime_ns, shipped))
    return good, bad


def entries() -> list[Entry]:
    """Every readable model file on the search path, in search order."""
    return _scan(user_path(), False)[0] + _scan(shipped_path(), True)[0]


def broken() -> list[tuple[Path, str]]:
    """The model files on the search path that cannot be read: (path, what is wrong)."""
    return _scan(user_path(), False)[1] + _scan(shipped_path(), True)[1]


def available() -> dict[str, Path]:
    """Model name -> its file: the shipped file for a shipped name, else the first on the search path."""
    found: dict[str, Path] = {}
    for e in sorted(entries(), key=lambda e: not e.shipped):
        found.setdefault(e.name, e.path)
    return found


def _alias_table(d: Path) -> dict[str, str]:
    f = d / ALIASES
    if not f.is_file():
        return {}
    try:
        with open(f, "rb") as fh:
            raw = fh.read(ALIASES_BYTES + 1)
        table = json.loads(raw.decode("utf-8")) if len(raw) <= ALIASES_BYTES else None
    except (OSError, ValueError, RecursionError) as e:
        raise UnknownModelError(f"{f}: unreadable alias table ({e.__class__.__name__})") from None
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise UnknownModelError(f"{f}: not an alias table (a JSON table of names)")
    return table


def shipped_aliases() -> dict[str, str]:
    """The levels' aliases -> shipped model names (the shipped aliases.json)."""
    found: dict[str, str] = {}
    for d in shipped_path():
        for alias, target in _alias_table(d).items():
            found.setdefault(alias, target)
    return found


def aliases() -> dict[str, str]:
    """Alias -> model name: the shipped ones, then those of the folders in
    $PIXZIP_MODELS (first wins) for other names; a user's table cannot
    redefine a shipped alias."""
    found = shipped_aliases()
    for d in user_path():
        for alias, target in _alias_table(d).items():
            found.setdefault(str(alias), target)
    return found


def resolve(name: str) -> str:
    """The model name behind an alias (a name that is not an alias is itself)."""
    return aliases().get(name, name)


@lru_cache(maxsize=8)
def _load(path: str, size: int, mtime_ns: int) -> ModelFile:
    return ModelFile.load(path)


def load_file(path) -> ModelFile:
    """The model in a .pxm file, whatever its name; a ModelFileError names the file."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        raise ModelFileError(describe_os_error(p, e)) from None
    try:
        return _load(str(p.resolve()), st.st_size, st.st_mtime_ns)
    except ModelFileError as e:
        raise ModelFileError(str(e).replace(str(p.resolve()), str(path), 1)) from None


def _is_path(name_or_path) -> bool:
    s = str(name_or_path)
    return isinstance(name_or_path, os.PathLike) or s.endswith(SUFFIX) or os.sep in s


def load_model(model: ModelLike = None) -> ModelFile:
    """An integer model: ``model`` itself if it is one, else by name or alias
    (from the search path) or by .pxm path; None is -9's model ("max").  A
    shipped alias or a shipped model's name is always the shipped file."""
    if isinstance(model, ModelFile):
        return model
    name_or_path = MAX_MODEL if model is None else model
    if name_or_path in OLD_ALIASES:
        warnings.warn(old_alias_note(name_or_path), DeprecationWarning, stacklevel=2)
    if _is_path(name_or_path):
        return load_file(name_or_path)
    asked = str(name_or_path)
    found = entries()
    shipped = shipped_aliases()
    mine = [e for e in found if not e.shipped]
    ours = [e for e in found if e.shipped]
    if asked in shipped:      # a level's alias: the shipped model, whatever $PIXZIP_MODELS holds
        name = shipped[asked]
        for e in ours:
            if e.name == name:
                return load_file(e.path)
        known = ", ".join(sorted({e.name for e in ours})) or "none installed"
        raise UnknownModelError(f"no model is installed for the level {asked!r} (the shipped {name!r} is "
                                f"missing; shipped: {known})")
    shipped_names = {e.name for e in ours}
    if asked in shipped_names:
        return load_file(next(e.path for e in ours if e.name == asked))
    for want in (asked, None):
        want = want or resolve(asked)    # a user's alias table is read only for a name no file holds
        for e in found:
            if e.name == want and (e.shipped or want not in shipped_names):
                return load_file(e.path)
        for e in found:   # a file named after the model it does not hold: by its file name
            if e.path.stem == want and (e.shipped or e.name not in shipped_names):
                return load_file(e.path)
    name = resolve(asked)
    known = ", ".join(sorted({e.name for e in found})) or "none installed"
    what = f"{asked!r} (an alias of {name!r})" if asked != name else repr(name)
    raise UnknownModelError(f"unknown model {what} (available: {known})")


def old_alias_note(alias: str) -> str:
    """The deprecation note of an old alias."""
    return (f"the model alias {alias!r} is -9's model, now called {OLD_ALIASES[alias]!r}; "
            f"the old name will be removed in a later version")


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
