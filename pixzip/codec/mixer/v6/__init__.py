"""Version 6 of the context mixer: coder 12 (column parts over the
network's counts, ``-9``'s colour images; one part unless the caller names
more).

Version 6 is version 5 (``mixer/v2/``'s rules: this package imports that
folder's modules as its own) with ``spec.SPEC_6``: its prior (``mixer/prior.py``,
the file ``SPEC_6.prior``) holds two sets of tables, one learned on photos
and one on photos whose colour was once subsampled 2x2.  The encoder
chooses one by the image's 2x2 phase statistic (``prior.choose``) and
names it in the payload's first byte (``column_parts``).  Measured on whole
photos-train images in ``docs/mixer2.md`` ("0.13.0").

numba compiles this package's kernels apart from the other versions' (their
own cache entries: ``kernel_cache``), with SPEC_6's numbers frozen in.
"""
from pathlib import Path

from ..spec import SPEC_6 as SPEC  # noqa: F401  (read by the modules below)

# the modules of this package are version 2's files
__path__ = [str(Path(__file__).resolve().parent.parent / "v2")]
