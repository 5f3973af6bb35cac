"""The coder of 16-bit samples (grayscale and RGB): exact, integers only.

Each sample is predicted from its causal neighbours (and, after the first
colour, from the colour before's error at the pixel), and its residual is
coded bit by bit with adaptive probabilities mixed from three contexts,
through the mixer's binary range coder.  An image whose
samples carry fewer than 16 bits (a constant low part, 8-bit values x257, a
12-bit sensor shifted by 4) is coded as its narrower values (``depth``).

Files: ``spec.py`` (the numbers and the header's fields), ``depth.py`` (the
bits that vary), ``kernel.py`` (the compiled loop), ``coder.py`` (the
payload end to end).

Interface: ``encode(pixels)`` of a uint16 (H, W, C) array, C 1 or 3, gives
the payload; ``decode(payload, height, width, channels)`` gives the array
back; ``decode_memory`` and ``min_payload_bytes`` bound what a decoder may
be asked for.  A damaged payload raises ``CorruptError``.
"""
from .coder import decode, decode_memory, encode, min_payload_bytes

__all__ = ["encode", "decode", "decode_memory", "min_payload_bytes"]
