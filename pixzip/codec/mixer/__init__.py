"""The context mixer: version 1 here, coders 2 (one state) and 3 (column parts); version 2 in ``v2/``,
coders 5 and 6, and 7 (coder 6 over an RGB network's counts of a gray image, ``with_network``).

Versions.  The mixer's bitstream has a version of its own: ``spec.MixerSpec``
holds its numbers, ``definition.py`` is its readable definition, and
``spec.RELEASED`` maps each coder id to the spec its bytes follow.

    Any change to a mixer byte (a context, a map, a rate, a table's layout,
    the arithmetic) is a new spec version and a new coder id, and every
    released spec stays decodable.

``tests/test_mixer_versions.py`` fails when a mixer byte changes under a
released coder id (``tests/data/mixer-versions.json`` records the bytes).
The kernel is frozen, not built from the spec: version 1's numbers are
module constants that numba compiles in (no cost in speed or compile
time).  A new version copies the kernel's files (``kernel.py``,
``components.py``, ``contexts.py``, ``vector_ops.py``) into ``legacy/v1/``
where they keep reading ``SPEC_1``, as zstd keeps ``lib/legacy/``, and the
coders dispatch on the coder id.

Files: ``spec.py`` (the numbers), ``contexts.py`` (what is known of a
sub-pixel: neighbours, earlier colours, the hashed contexts, one line
each), ``components.py`` (hashed table, residual maps, blend, mixers, APM),
``vector_ops.py`` (LLVM vector intrinsics), ``kernel.py`` (the state and
the coding loop), ``bitcoder.py`` (the binary range coder), ``tables.py``
(squash, stretch, reciprocals), ``table_memory.py`` (a fresh hashed
table, written on several threads), ``one_state.py`` (coder 2),
``column_parts.py`` (coder 3), ``definition.py`` (plain Python, the tests'
reference).

Glossary (one word per idea):

- sub-pixel: one colour of one pixel, 8 bits, coded as 8 binary decisions
  (bits), most significant first;
- stretch: ln(p / (1 - p)) in 1/256 nat, -2047..2047; squash: its inverse,
  a 12-bit probability;
- hashed context: a hash of values known before the sub-pixel; it picks a
  bucket of the hashed table;
- bucket: 16 uint32, a check and the 15 counters of one nibble's tree;
  node: a counter's place in that tree (1..15);
- counter: a 16-bit probability and a count (its rate falls as 1/(n + 1.5));
- residual map (map): an adaptive histogram of (value - prediction) mod 256
  in an error context, read as P(bit | the bits known);
- prediction: a map's guess of the value; sub-prediction: one of the
  blend's; blend: the sub-predictions weighted by the inverse square of
  their recent errors;
- input: one stretch the first mixer weighs (contexts, maps, network, bias);
- weight set: the first mixer's rows chosen by one small context; the
  second mixer weighs the sets' outputs;
- APM: an adaptive probability map, refining a probability in a context;
- network input (``Network``): the network's counts for the sub-pixel;
- independent: no sub-pixel of a call reads the one coded just before it,
  so each one's contexts are made while the one before is coded;
- part: a column range with its own state and stream (coder 3);
- spec: the numbers of one mixer version; digest: the hash of its
  canonical form.
"""
