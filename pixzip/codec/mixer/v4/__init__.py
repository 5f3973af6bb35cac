"""Version 4 of the context mixer: coder 10 (column parts over the
network's counts, ``-9``'s colour images; one part unless the caller names
more).

Version 4 is version 3's rules (``mixer/v2/``: this package imports that
folder's modules as its own) with ``spec.SPEC_4``: version 3, 14 of the
bank's 32 predictors through residual maps of their own (version 3: 8), and
one table budget for all column parts together (``SPEC_4.table_budget``,
2^22 buckets): one state, ``-9``'s way since 0.10.2, gets the table of the
mixer alone rather than a part's 2^20.  Measured on whole photos-train
images in ``docs/mixer2.md`` ("0.11.0").

numba compiles this package's kernels apart from versions 2's and 3's (their
own cache entries: ``kernel_cache``), with SPEC_4's numbers frozen in.
"""
from pathlib import Path

from ..spec import SPEC_4 as SPEC  # noqa: F401  (read by the modules below)

# the modules of this package are version 2's files
__path__ = [str(Path(__file__).resolve().parent.parent / "v2")]
