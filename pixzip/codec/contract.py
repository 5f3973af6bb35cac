"""The contract between the network and the coder, in one place.

An arithmetic decoder fails on the first probability that differs by one
unit, so the encoder (one parallel pass), the decoder (the wavefront loop),
the sampler and the PyTorch reference must agree on every integer.  What
they agree on is stated and implemented here; everything else may differ.

1. **Alphabet.**  A symbol is one sub-pixel, 0..255 (``ALPHABET``); the
   network reads it as ``2x - 255`` (``network_input``).
2. **Fixed-point scales.**  Gate pre-activations are in units of
   1/``GATE_UNITS``, clamped to +-``GATE_LIMIT``; tanh and sigmoid tables are
   in units of 2^-``TABLE_BITS``; activations are integers in
   +-``ACT_MAX``; logits are in units of 1/``LOGIT_UNITS`` nat.  Layers
   accumulate exactly (int32 below ``ACC_LIMIT`` in the kernels, float32
   parts below ``EXACT_F32`` in the reference) and requantize with
   ``floor(acc * M / 2^shift + (b*M + 2^(shift-1)) / 2^shift)`` in float64,
   exact below ``EXACT_F64``; the other scales are the model file's.
   The tables are made once, at export, by ``make_tables`` and stored in
   the model file; they are never recomputed at load.
3. **Counts rule.**  ``counts``: the integer logits of a sub-pixel, minus
   their maximum and clamped, index the exp table, so every count is an
   integer >= 1 (at most 2^``COUNT_BITS``).
4. **What the coder is given.**  Counts as a C-contiguous (n, 256) array of
   ``COUNT_DTYPE`` (exact integers), one row per symbol, quantized by coder
   ``CODER_ID``: the range coder of constriction ``CONSTRICTION`` with
   ``Categorical(perfect=False)``.  The same counts in that dtype and layout
   give the same quantization on every machine; another dtype or order may
   not, so both are fixed.
5. **Source protocol.**  The decoder loop (``wavefront.decode_image``) asks a
   ``Source`` for the symbols of each batch of counts: the entropy decoder
   when decompressing, a seeded random generator when sampling, the known
   image when checking.  One loop serves all three.
6. **Stream order.**  Symbols are coded in schedule order: step by step
   (``schedule.plan``), and inside a step colour by colour, then strip by
   strip, then row by row (``step_destinations``).  Encoder and decoder both
   take the order from here.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

# 1. the alphabet
ALPHABET = 256

# 2. fixed-point scales and exactness bounds
GATE_UNITS = 512
GATE_LIMIT = 8 * GATE_UNITS
TABLE_BITS = 15
LOGIT_UNITS = 32
COUNT_BITS = 16
ACT_MAX = 511
SKIP_LIMIT = float(1 << 24)    # clamp of the summed skip connections
TERM_LIMIT = 4 * GATE_LIMIT    # clamp of the two summands of a horizontal pre-activation
EXACT_F32 = 1 << 24            # float32 partial sums of the reference stay below this
ACC_LIMIT = 1 << 31            # int32 accumulators of the kernels
EXACT_F64 = 2.0 ** 53          # float64 requantization
LOGIT_LIMIT = 2.0 ** 30        # logits are int32

# 4. what the coder is given
COUNT_DTYPE = np.float64
CODER_ID = 1
CONSTRICTION = "0.5.0"


def network_input(x):
    """The network's reading of sub-pixels x in 0..255: 2x - 255 (so that
    x / 127.5 - 1 = value / 255)."""
    return 2 * x - 255


def make_tables() -> dict[str, np.ndarray]:
    """The lookup tables, computed once at export and stored in the model
    file: tanh and sigmoid over the gate range, and exp of the counts rule,
    cut where counts stay 1."""
    i = np.arange(-GATE_LIMIT, GATE_LIMIT + 1, dtype=np.float64) / GATE_UNITS
    one = 1 << TABLE_BITS
    tanh = np.round(one * np.tanh(i)).astype(np.int32)
    sigmoid = np.round(one / (1.0 + np.exp(-i))).astype(np.int32)
    d = np.arange(0, 4096, dtype=np.float64)
    exp = np.maximum(1, np.round((1 << COUNT_BITS) * np.exp(-d / LOGIT_UNITS))).astype(np.int64)
    last = int(np.argmax(exp == 1))  # counts stay 1 from here on: clamp the index
    return {"tanh": tanh, "sigmoid": sigmoid, "exp": exp[: last + 1]}


# 3. the counts rule
def counts(logits: np.ndarray, exp: np.ndarray) -> np.ndarray:
    """Counts (..., 256) in the coder's dtype and layout from integer logits
    (..., 256): exp[min(max - logit, len(exp) - 1)], each >= 1."""
    logits = np.asarray(logits, np.int64)
    gap = np.minimum(logits.max(axis=-1, keepdims=True) - logits, len(exp) - 1)
    return coder_counts(np.asarray(exp)[gap])


def coder_counts(counts) -> np.ndarray:
    """Counts as the coder must be given them: C-contiguous COUNT_DTYPE."""
    return np.ascontiguousarray(counts, dtype=COUNT_DTYPE)


# 5. the source protocol
class Source(Protocol):
    def __call__(self, counts: np.ndarray, rows: np.ndarray, cols: np.ndarray, colour: int) -> np.ndarray:
        """The symbols (n,) of n positions (image rows and columns) of one
        colour sub-step, given their counts (n, 256) (COUNT_DTYPE, exact
        integers >= 1), in stream order."""
        ...


# 6. the stream order inside a run of steps
def step_destinations(sizes: np.ndarray, colours: int) -> np.ndarray:
    """Stream positions (n, colours) of the n positions of consecutive steps
    with ``sizes`` positions each (strip-major, then row, as ``schedule.plan``
    lists them): a step's symbols are colour-major, so colour c of its e-th
    position is at start + c * size + e."""
    sizes = np.asarray(sizes, np.int64)
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    local = np.arange(int(sizes.sum())) - starts
    return (colours * starts + local)[:, None] + np.repeat(sizes, sizes)[:, None] * np.arange(colours)
