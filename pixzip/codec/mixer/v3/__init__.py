"""Version 3 of the context mixer: coders 8 (one state, ``-6``) and 9 (column
parts over the network's counts, ``-9``), for images of three colours.

Version 3 is version 2's rules (``mixer/v2/``: this package imports that
folder's modules as its own) with ``spec.SPEC_3``: version 2 and the 2x2
phase of colours 1 and 2 (``SPEC_3.phase``).  Chroma that was once
subsampled 2x2 and interpolated back (Photo CD scans, JPEG's 4:2:0) is
exactly predictable from its neighbours at some phases of the 2x2 grid and
new at the others.  So colours 1 and 2 keep one set of least-squares
systems per phase (``ols``), their maps from the 9th on (the bank's and the
least squares') read their 64 error contexts once per phase, and weight
set 4 is selected by the phase (version 2's: by the locally best blend
sub-predictor).  Where each rule reads the phase is
written in ``v2/definition.py``, the readable definition of both versions.

numba compiles this package's kernels apart from version 2's (their own
cache entries: ``kernel_cache``), with SPEC_3's numbers frozen in.
"""
from pathlib import Path

from ..spec import SPEC_3 as SPEC  # noqa: F401  (read by the modules below)

# the modules of this package are version 2's files
__path__ = [str(Path(__file__).resolve().parent.parent / "v2")]
