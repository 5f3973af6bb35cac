"""The bits of 16-bit samples that carry information: a 16-bit image often
holds fewer.  Three forms, one for the whole image (all its colours), chosen
by the encoder and written in the payload's header:

- shift (``FORM_SHIFT``): the lowest ``param`` bits are the same in every
  sample (``low``): a 12-bit sensor shifted left by 4, or a constant image
  (param 16);
- replicated (``FORM_REPLICATED``): each sample is a ``param``-bit value with
  its bits repeated down to 16, as PNG widens a lower bit depth (8-bit
  values x257, 12-bit v << 4 | v >> 8);
- scaled (``FORM_SCALED``): round(v * 65535 / (2^param - 1)), as most tools
  widen a lower depth otherwise.

What is coded (``Depth.reduce``) is the narrower value; ``bits`` is the bit
length of its largest value, the coder's range.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .spec import FORM_REPLICATED, FORM_SCALED, FORM_SHIFT, MAX_BITS


@dataclass(frozen=True)
class Depth:
    form: int
    param: int      # the shift, or the narrower values' bit depth
    low: int        # FORM_SHIFT: the constant low bits; else 0
    bits: int       # the coded values' bit length (0..16)

    def reduce(self, samples: np.ndarray) -> np.ndarray:
        """The coded values of 16-bit ``samples`` (uint16)."""
        s = samples.astype(np.int64)
        if self.form == FORM_SHIFT:
            return (s >> self.param).astype(np.uint16) if self.param < MAX_BITS else np.zeros_like(samples)
        return (s >> (MAX_BITS - self.param)).astype(np.uint16) if self.form == FORM_REPLICATED \
            else unscale(s, self.param).astype(np.uint16)

    def widen(self, coded: np.ndarray) -> np.ndarray:
        """The 16-bit samples of coded values (uint16)."""
        v = coded.astype(np.int64)
        if self.form == FORM_SHIFT:
            out = (v << self.param) | self.low if self.param < MAX_BITS else np.full_like(v, self.low)
        elif self.form == FORM_REPLICATED:
            out = replicate(v, self.param)
        else:
            out = scale(v, self.param)
        return out.astype(np.uint16)


def replicate(v: np.ndarray, k: int) -> np.ndarray:
    """k-bit values with their bits repeated down to 16 bits."""
    out = v << (MAX_BITS - k)
    shift = MAX_BITS - k
    while shift > 0:
        shift -= k
        out = out | ((v << shift) if shift >= 0 else (v >> -shift))
    return out


def scale(v: np.ndarray, k: int) -> np.ndarray:
    """round(v * 65535 / (2^k - 1)), halves up, in integers."""
    top = (1 << k) - 1
    return (2 * v * 65535 + top) // (2 * top)


def unscale(s: np.ndarray, k: int) -> np.ndarray:
    """The k-bit value nearest s * (2^k - 1) / 65535 (``scale``'s inverse where s is in its range)."""
    top = (1 << k) - 1
    return (2 * s * top + 65535) // (2 * 65535)


def _holds(samples: np.ndarray, form: int, k: int) -> bool:
    """Whether every sample is of the form (a few first, then all)."""
    for part in (samples[:4096], samples):
        d = Depth(form, k, 0, 0)
        if not np.array_equal(d.widen(d.reduce(part)), part):
            return False
    return True


def find(samples: np.ndarray) -> Depth:
    """The narrowest form that holds every one of the uint16 ``samples``."""
    flat = np.ascontiguousarray(samples).reshape(-1)
    if flat.size == 0:
        return Depth(FORM_SHIFT, 0, 0, 0)
    first = int(flat[0])
    vary = int(np.bitwise_or.reduce(flat ^ np.uint16(first)))
    shift = MAX_BITS if vary == 0 else (vary & -vary).bit_length() - 1
    low = first & ((1 << shift) - 1)
    best = Depth(FORM_SHIFT, shift, low, MAX_BITS - shift if vary else 0)
    if shift == 0:
        for k in range(1, MAX_BITS):
            for form in (FORM_REPLICATED, FORM_SCALED):
                if _holds(flat, form, k):
                    best = Depth(form, k, 0, 0)
                    break
            if best.form != FORM_SHIFT:
                break
    top = int(best.reduce(flat).max())
    return Depth(best.form, best.param, best.low, top.bit_length())
