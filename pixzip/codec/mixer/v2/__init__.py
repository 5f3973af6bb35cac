"""Version 2 of the context mixer: coders 5 (one state, ``-6``) and 6
(column parts over the network's counts, ``-9``), released in 0.8.0 (0.8.1: the same bytes, faster);
coder 7 (0.9.0) is coder 6 over an RGB network's counts of colour 0 of a gray image (``with_network``).

It began as a copy of version 1's kernel files (``kernel.py``,
``components.py``, ``contexts.py``, ``vector_ops.py``), reading
``spec.SPEC_2``; the parts it adds (``predictors.py``: the bank and the
coding cost; ``ols.py``: the least-squares predictors) were measured by
``benchmarks/mixer_tune.py`` on whole photos-train images (never Kodak),
each kept only where it pays (``docs/mixer2.md``).  ``definition.py`` is
its readable definition, tested byte for byte; its bytes are frozen like
version 1's (``tests/data/mixer-versions.json``, the golden files).

``coders.py``: version 1's one-state and column-part coders over this kernel.

Every module here reads its numbers from this package's ``SPEC``.  Versions 3
to 6 (``v3`` to ``v6``) are packages of their own over these same files
with ``SPEC_3`` to ``SPEC_6``: numba compiles each package's modules apart,
with its spec's numbers frozen in.
"""
from ..spec import SPEC_2 as SPEC  # noqa: E402  (before the modules that read it)
