"""Where the kernels' machine code is cached, made ready on first use.

numba compiles the kernels on their first call (about a minute for all of
them) and can cache the result.  Its own cache checks a kernel against its
own source file only, but these kernels compile the other kernel modules
and the contract into their code; and when the package folder is
read-only (a system-wide install) numba falls back to a folder that does
not know about pixzip.  So each kernel gets a cache here:

- the source stamp is one hash of every kernel module, ``contract.py``,
  the context mixer's modules (``mixer/``) and the 16-bit coder's kernel
  and spec (``deep/``), so an edit to any of them recompiles every kernel,
  never runs stale code;
- the folder is the first writable one of: ``$NUMBA_CACHE_DIR/pixzip`` when
  that is set; ``__pycache__`` beside the kernels; the user's cache
  folder (``$XDG_CACHE_HOME/pixzip``, else ``~/.cache/pixzip``), one
  subfolder per installation.  With none writable the kernels run uncached.

Nothing happens at import: ``enable`` runs when a model is first packed
for the kernels (``program.program``) or a context mixer is first made.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from numba.core import config
from numba.core.caching import CompileResultCacheImpl, FunctionCache, _CacheLocator
from numba.core.dispatcher import Dispatcher

HERE = Path(__file__).resolve().parent
SOURCES = (sorted((HERE / "network" / "kernels").glob("*.py")) + [HERE / "contract.py", Path(__file__).resolve()]
           + sorted((HERE / "mixer").glob("*.py")) + sorted((HERE / "mixer" / "v2").glob("*.py"))
           + sorted((HERE / "mixer" / "v3").glob("*.py")) + sorted((HERE / "mixer" / "v4").glob("*.py"))
           + sorted((HERE / "mixer" / "v5").glob("*.py")) + sorted((HERE / "mixer" / "v6").glob("*.py"))
           + [HERE / "deep" / "kernel.py", HERE / "deep" / "spec.py"])
_enabled: dict[str, str] = {}      # kernel -> its cache folder


def sources_stamp() -> str:
    """One hash of every source the kernels' machine code depends on, and
    of the mixer specs in force (numba freezes their numbers into the code:
    a spec replaced before the kernels compile, as the tuning scripts do,
    must not load the code of another)."""
    from .mixer import spec
    h = hashlib.sha256()
    for path in SOURCES:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    for s in (spec.SPEC_1, spec.SPEC_2, spec.SPEC_3, spec.SPEC_4, spec.SPEC_5, spec.SPEC_6):
        h.update(s.digest().encode())
    return h.hexdigest()


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pixzip"


def candidates(py_file: str) -> list[Path]:
    """The cache folders to try, in order (see the module's docstring)."""
    sub = _CacheLocator.get_suitable_cache_subpath(py_file)   # the folder's name and a hash of its path
    found = [Path(config.CACHE_DIR) / "pixzip" / sub] if config.CACHE_DIR else []
    return found + [Path(py_file).parent / "__pycache__", user_cache_dir() / sub]


class _Locator(_CacheLocator):
    def __init__(self, py_func, py_file, path: Path):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._module = py_func.__module__.rsplit(".", 2)[-2]       # its package: "v2", "v3", "mixer", ...
        self._path = str(path)

    def get_cache_path(self):
        return self._path

    def get_source_stamp(self):
        return _STAMP[0]

    def get_disambiguator(self):
        # the module's name too: version 3's mixer modules are version 2's files in another package
        return f"{self._module}-{self._lineno}"

    @classmethod
    def from_function(cls, py_func, py_file):
        for path in candidates(py_file):
            locator = cls(py_func, py_file, path)
            try:
                locator.ensure_cache_path()
            except OSError:       # not writable: the next one
                continue
            return locator
        return None


class _Impl(CompileResultCacheImpl):
    _locator_classes = [_Locator]


class _Cache(FunctionCache):
    _impl_class = _Impl


_STAMP = [""]


def _modules(method: str | None = None) -> list:
    """The kernel modules a coding method runs: "network", "mixer", "deep" (16-bit samples); the network's and
    the mixer's for "mixer+network"; all for None."""
    from .deep import kernel as deep
    from .mixer import bitcoder
    from .mixer import kernel as mixer
    from .mixer.v2 import kernel as mixer2
    from .mixer.v3 import kernel as mixer3
    from .mixer.v4 import kernel as mixer4
    from .mixer.v5 import kernel as mixer5
    from .mixer.v6 import kernel as mixer6
    from .network.kernels import decoder, encoder, gemm, handover, layers, pipeline
    network, mix = [gemm, layers, decoder, encoder], [bitcoder, mixer, mixer2, mixer3, mixer4, mixer5, mixer6]
    loops = [pipeline, handover]        # the mixer over the network's decoders (in parts; one state)
    if method == "mixer+network":
        return network + mix + loops
    return {"network": network, "mixer": mix, "deep": [bitcoder, deep]}.get(method, network + mix + loops + [deep])


def kernels(method: str | None = None) -> list[Dispatcher]:
    """Every compiled (not inlined) kernel, or those a coding method runs (``_modules``)."""
    return [k for module in _modules(method) for k in module_kernels(module)]


def module_kernels(module) -> list[Dispatcher]:
    """The compiled (not inlined) kernels a module defines (not those it imports)."""
    return [obj for obj in vars(module).values()
            if isinstance(obj, Dispatcher) and obj.targetoptions.get("inline", "never") != "always"
            and obj.py_func.__module__ == module.__name__]


def enable() -> dict[str, str]:
    """Give every kernel its cache (once per process); returns kernel -> folder."""
    if _enabled:
        return _enabled
    _STAMP[0] = sources_stamp()
    for k in kernels():
        try:
            k._cache = _Cache(k.py_func)
        except RuntimeError:          # no writable folder: this kernel compiles on every run
            _enabled[k.py_func.__qualname__] = ""
            continue
        _enabled[k.py_func.__qualname__] = k._cache.cache_path
    return _enabled


def folder() -> str:
    """The folder the kernels are cached in ("" when none is writable)."""
    found = set(enable().values())
    return found.pop() if len(found) == 1 else ", ".join(sorted(found))


def compiled(method: str | None = None) -> bool:
    """Whether the cache holds machine code of every kernel a coding method
    runs (every kernel for None), made from these sources: if not, their
    first call compiles them (a first use, or the first after an upgrade)."""
    enable()
    for k in kernels(method):
        if not isinstance(k._cache, _Cache):
            return False
        machine = k.targetctx.codegen().magic_tuple()        # the index's keys: (types, machine, code hashes)
        if not any(key[1] == machine for key in k._cache._cache_file._load_index()):
            return False
    return True


_precompiling: list = []        # the background compiles started (subprocess.Popen)


def precompile_decoder(model: str | None) -> None:
    """Compile the network decoder's kernels into the cache in a process of
    its own, on another core, while this one compiles the encoder's and the
    mixer's (numba compiles one kernel at a time per process).  ``model``:
    a name ``registry.load_model`` takes (the kernels' types do not depend
    on the model).  The decoder waits for it (``wait_for_precompiled``) and loads
    them from the cache.  Nothing happens with one core or no writable cache."""
    if _precompiling or (os.cpu_count() or 1) < 2 or not folder():
        return
    import subprocess
    import sys
    code = f"from pixzip.codec.kernel_cache import _compile_decoder; _compile_decoder({model!r})"
    _precompiling.append(subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


def wait_for_precompiled() -> None:
    """Wait for the background compile, if one was started and still runs."""
    while _precompiling:
        _precompiling.pop().wait()


def _compile_decoder(model: str | None) -> None:
    """Decode a 2x2 image (each symbol 0) with ``model``: compiles and caches the decoder's kernels."""
    import numpy as np

    from .network.dec_wavefront import decode_image
    from .network.registry import load_model
    decode_image(load_model(model), 2, 2, lambda counts, rows, cols, c: np.zeros(len(rows), np.int64))
