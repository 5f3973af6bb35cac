"""Version 2's mixer in one state and in column parts: version 1's coders (``one_state``, ``column_parts``)
over this version's kernel."""
from __future__ import annotations

from ...network.kernels import pipeline
from .. import column_parts, one_state
from . import kernel

pipeline.register(kernel)       # the -9 decoder's compiled loop decodes this version's parts too


class OneStateEncoder(one_state.Encoder):
    kernel = kernel


class OneStateDecoder(one_state.Decoder):
    kernel = kernel


class PartsEncoder(column_parts.Encoder):
    kernel = kernel


class PartsDecoder(column_parts.Decoder):
    kernel = kernel
