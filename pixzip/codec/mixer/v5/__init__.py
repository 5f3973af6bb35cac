"""Version 5 of the context mixer: coder 11 (column parts over the
network's counts, ``-9``'s colour images; one part unless the caller names
more).

Version 5 is version 4's rules (``mixer/v2/``: this package imports that
folder's modules as its own) with ``spec.SPEC_5``: version 4 whose first
mixer, second mixer and two APM stages start from learned tables
(``mixer/prior.py``, the file ``SPEC_5.prior``) instead of equal weights and
the identity.  Measured on whole photos-train images in ``docs/mixer2.md``
("0.12.0").

numba compiles this package's kernels apart from the other versions' (their
own cache entries: ``kernel_cache``), with SPEC_5's numbers frozen in.
"""
from pathlib import Path

from ..spec import SPEC_5 as SPEC  # noqa: F401  (read by the modules below)

# the modules of this package are version 2's files
__path__ = [str(Path(__file__).resolve().parent.parent / "v2")]
