"""A mixer version's prior: the tables its adaptive state starts from.

Versions 1 to 4 start every weight row of the first mixer at ``w1_init``,
the second mixer's at equal weights and the APM stages at the identity.
Version 5 starts them from learned values (``benchmarks/mixer_prior.py``:
the mean of their final values over photos), so that rows an image visits
rarely begin where photos leave them.  The prior is part of the format: a
spec names its file (``MixerSpec2.prior``, shipped beside this module) and
the SHA-256 of its arrays (``prior_digest``), and a file that does not match
is refused by name, never used.

The file is a numpy ``.npz`` of four int32 arrays in the kernel's own
layout (``kernel.State``), for three colours:

- ``w1``: (W1_ROWS, N_PAD), the first mixer's weight rows;
- ``w2``: (3 * 8, N_SETS + 1), the second mixer's, by colour and bit;
- ``apm1``: (3 * 256, 33) and ``apm2``: (3 * 128, 33), the APM stages' rows.

An image of fewer colours takes the first rows of ``w2``, ``apm1`` and
``apm2`` (their rows are laid out colour by colour); ``w1``'s layout does
not depend on the image.  Reading it needs numpy only.
"""
from __future__ import annotations

import functools
import hashlib
import zipfile
from pathlib import Path

import numpy as np

from ...errors import FormatError

HERE = Path(__file__).resolve().parent
FIELDS = ("w1", "w2", "apm1", "apm2")


def content_digest(arrays: dict) -> str:
    """The SHA-256 of the prior's arrays: each one's name, dtype, shape and
    little-endian bytes, in ``FIELDS``' order (not the file's bytes, which
    carry a zip archive's dates)."""
    h = hashlib.sha256()
    for name in FIELDS:
        a = np.ascontiguousarray(arrays[name], dtype="<i4")
        h.update(f"{name}:{a.dtype.str}:{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@functools.lru_cache(maxsize=4)
def load(name: str, digest: str, shapes: tuple) -> dict:
    """The prior ``name`` (a file beside this module), checked against its
    spec's ``digest`` and the kernel's ``shapes`` (one per field of
    ``FIELDS``): read-only int32 arrays.  Raises FormatError naming the file
    where it is missing, unreadable or not the one the format names."""
    path = HERE / name
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {f: np.ascontiguousarray(z[f], dtype=np.int32) for f in FIELDS
                      if f in z.files and z[f].dtype == np.int32}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise FormatError(f"the mixer's prior {path} cannot be read ({e}); reinstall pixzip") from None
    if tuple(arrays) != FIELDS or tuple(a.shape for a in arrays.values()) != shapes \
            or content_digest(arrays) != digest:
        raise FormatError(f"the mixer's prior {path} is not the one this format names; reinstall pixzip")
    for a in arrays.values():
        a.flags.writeable = False
    return arrays


def shapes(spec) -> tuple:
    """The shapes of a spec's prior's arrays, in ``FIELDS``' order, for its colours (three)."""
    return ((spec.w1_rows, spec.n_pad), (spec.colours * 8, spec.n_sets + 1), (spec.colours * 256, 33),
            (spec.colours * 128, 33))


def for_spec(spec) -> dict | None:
    """A spec's prior (``load``), or None where it starts from equal weights (versions 1 to 4)."""
    if not getattr(spec, "prior", ""):
        return None
    return load(spec.prior, spec.prior_digest, shapes(spec))
