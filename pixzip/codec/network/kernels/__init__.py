"""The compiled kernels of the integer network (numba), in exact arithmetic.

- ``gemm``: the exact int16 x int16 -> int32 matrix product (LLVM vector IR,
  and a plain-loop twin);
- ``program``: a model file packed for the kernels, with its bound checks
  (``Weights``), and the working buffers (``Scratch``);
- ``layers``: the per-layer routines that decoder and encoder share;
- ``decoder``: the wavefront step kernels; ``encoder``: the full pass.

Kernels take the network as one ``Weights`` tuple and their buffers as
named tuples, at most 10 arguments each.  Importing this package does
nothing; ``program.program`` (the way into every kernel) readies the cache
(``codec.kernel_cache``).

Every compiled routine is compiled once per set of argument types, so the
callers pass one type for each argument: an integer argument of a routine
called from a kernel is an int64 (``layers.one_type``), never a literal 0 or
a ``prange`` index (numba types those twice).

Glossary of the network's symbols (the model file's names, DESIGN.md):

==========  ===================================================================
symbol      meaning
==========  ===================================================================
H, W        the image's height and width (``width`` in ``Geometry``)
C           colours: 3 (RGB) or 1 (grey); colour c of a pixel sees colours < c
k           the convolutions' kernel size (odd); k2 = k // 2, their reach in
            rows above and columns left
R           the network's reach: columns right of a pixel, in the rows above,
            that can reach it (``ModelFile.reach``)
lag         R + 1: the wavefront decodes column j of row i at step
            t = i * lag + j
L           layers (each a vertical and a horizontal gated stack)
p           channels of each stack; p2 = 2p, a gate's two halves (tanh,
            sigmoid); pg = p / C the channels of one colour group
skip, sg    the skip sum's channels, and those of one colour group
hidden, hg  the head's hidden channels, and those of one colour group
l           a layer; c a colour; q a position in a block; n positions in it
b, i, j     a strip, a row in it, a column; f the vertical frontier's column
S, nb       rows per strip, strips (independent, decoded in lockstep)
t           a wavefront step (in ``Scratch``, ``t`` is the gate table indices)
task        a thread's block of positions, its row of every ``Scratch`` buffer
xi          the network's input rows, 2x - 255 of the sub-pixels, k2 + 1 zero
            rows on top (flat: padded column, channel)
V, HB, LK   per layer and row: the vertical stack's gate outputs, the
            horizontal stack's rows, the link terms (vertical to horizontal)
ring        rows kept per strip (``decoder.Rings``)
tv, tlk, th the steps of outputs that V, LK and HB keep (``decoder.slots``)
G, SK, HID  at a step's positions: gate outputs, skip sums, the head's hidden
            rows
x, z, y     a task's layer inputs, link inputs (int16, read as int32 pairs:
            x32, z32), and matrix products (int32)
lk, hr      a task's link terms and residual stream (float64)
op, ops     one packed weight matrix, and the table of them (weight offset,
            rows, inputs kept, first scale row, input pairs, padded outputs);
            ``layer_ops`` and ``head_ops`` index it
cond        the (vertical, link) class biases of a label, zeros without one
U           an index known to be >= 0 (numba skips the wraparound check)
==========  ===================================================================
"""
