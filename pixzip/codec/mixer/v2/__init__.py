"""Version 2 of the context mixer, in development: no coder id makes it yet.

It starts as a copy of version 1's kernel files (``kernel.py``,
``components.py``, ``contexts.py``, ``vector_ops.py``) reading ``spec.SPEC_2``;
the parts it adds are measured by ``benchmarks/mixer_tune.py`` on whole
photos-train images (never Kodak), each kept only where it pays.  When it is
released it gets coder ids of its own, golden files, and a readable
definition tested byte-equal, as version 1 has.

``coders.py``: version 1's one-state and column-part coders over this kernel.
"""
