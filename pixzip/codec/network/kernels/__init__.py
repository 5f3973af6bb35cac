"""The compiled kernels of the integer network (numba), in exact arithmetic.

- ``gemm``: the exact int16 x int16 -> int32 matrix product (LLVM vector IR,
  and a plain-loop twin);
- ``program``: a model file packed for the kernels, with its bound checks
  (``Weights``), and the working buffers (``Scratch``);
- ``layers``: the per-layer routines that decoder and encoder share;
- ``decoder``: the wavefront step kernels; ``encoder``: the full pass;
- ``cache``: where the compiled code is kept, made ready on first use.

Kernels take the network as one ``Weights`` tuple and their buffers as
named tuples.  Importing this package does nothing; ``program.program``
(the way into every kernel) readies the cache.
"""
