"""An integer model packed for the kernels, with its bound checks, and the
kernels' working buffers.

``Program`` packs a model file's layers into flat arrays (``Weights``, the
one argument that carries the network into every kernel).  The model file
has checked, at load, every bound the kernels rely on (``modelfile.
check_tensors``: table lengths, int32 accumulators, float64 requantization),
so no kernel can index out of bounds, wrap or round: the kernels give
exactly the integers of ``reference.IntGatedPixelCNN``.
"""
from __future__ import annotations

import math
import os
from typing import NamedTuple

import numpy as np

from ... import contract
from ....errors import ModelFileError
from ..modelfile import ModelFile, requantization
from . import gemm

GEMMS = ("simd", "loop")        # the int16 products: gemm.gemm, gemm.gemm_loop
GEMM_ENV = "PIXZIP_GEMM"


class Weights(NamedTuple):
    """The packed network, as the kernels read it.

    ``ops[q] = (weight offset, rows, inputs, row-parameter offset, input
    pairs, padded rows)``: op q's weights are ``w[offset:]`` as packed by
    ``gemm.pack``; row r has requantization scale and offset
    ``scale/offset[poff + r]`` (float64)."""
    w: np.ndarray           # int16, every op on a cache line
    ops: np.ndarray         # int64 (ops, 6)
    scale: np.ndarray       # float64 per row
    offset: np.ndarray      # float64 per row
    layer_ops: np.ndarray   # int64 (L, 2 + 2C): vertical, link, horizontal per colour, skip+out per colour
    head_ops: np.ndarray    # int64 (2, C): head1, head2 per colour
    gates: np.ndarray       # float64 (L, 2): vertical and horizontal gate requantization scales
    head_in: float          # the head input's requantization scale
    tanh: np.ndarray        # float64 tables (exact integers)
    sigmoid: np.ndarray
    exp: np.ndarray         # counts, in the coder's dtype
    loop: bool              # the plain-loop product (gemm.gemm_loop) instead of the vector one


class Scratch(NamedTuple):
    """Working buffers of ``tasks`` tasks (first axis) of up to ``rows``
    positions each.  Input buffers are int16 with an int32 view of their pairs."""
    x: np.ndarray     # int16 layer inputs
    x32: np.ndarray
    z: np.ndarray     # int16 link inputs
    z32: np.ndarray
    g: np.ndarray     # int16 gate outputs (rows of an even length)
    y: np.ndarray     # int32 matrix products (rows of 64 B)
    t: np.ndarray     # int32 gate table indices
    lk: np.ndarray    # float64 link terms
    hr: np.ndarray    # float64 residual stream


def gemm_choice(choice: str | None = None) -> str:
    """The int16 product the kernels use: ``choice``, else $PIXZIP_GEMM, else "simd"."""
    choice = choice or os.environ.get(GEMM_ENV) or "simd"
    if choice not in GEMMS:
        raise ValueError(f"${GEMM_ENV} must be one of {', '.join(GEMMS)}, not {choice!r}")
    return choice


class Program:
    """A model file packed into flat arrays for the kernels."""

    def __init__(self, model: ModelFile, product: str | None = None):
        self.model = model
        cfg, t = model.config, model.tensors
        C, p, L, k2 = model.colors, model.p, model.layers, model.k2
        self.C, self.p, self.L, self.k2 = C, p, L, k2
        self.skip = model.skip_channels
        self.hidden = t["head1.w"].shape[0]
        self._w, self._scale, self._offset, self._ops = [], [], [], []
        self._woff = self._poff = 0
        pg, sg, hg = p // C, self.skip // C, self.hidden // C

        def rows(prefix):
            """(int64 weights, scale, offset) of a layer's rows (bounds checked by the model file)."""
            return requantization(model, prefix)[:3]

        def add(parts, keep_inputs):
            """One op from (layer rows, row indices) parts, inputs cut to keep_inputs."""
            w = np.concatenate([r[0][idx] for r, idx in parts])
            if np.any(w[:, keep_inputs:]):
                raise ModelFileError(f"model {model.name!r}: a masked weight that the decoder skips is not zero")
            packed, pairs, padded = gemm.pack(w[:, :keep_inputs].astype(np.int16))
            self._ops.append((self._woff, w.shape[0], keep_inputs, self._poff, pairs, padded))
            self._w.append(packed)
            self._scale.append(np.concatenate([r[1][idx] for r, idx in parts]))
            self._offset.append(np.concatenate([r[2][idx] for r, idx in parts]))
            self._woff += packed.size
            self._poff += w.shape[0]
            return len(self._ops) - 1

        every = lambda n: np.arange(n)  # noqa: E731
        group = lambda g, size, base=0: np.arange(base + g * size, base + (g + 1) * size)  # noqa: E731
        v_ops, link_ops, h_ops, so_ops = [], [], [], []
        for l in range(L):
            cin = C if l == 0 else p
            # vertical conv: weight (2p, cin, k2+1, k) -> inputs ordered (dy, dx, cin)
            v = rows(f"v_conv.{l}")
            v = (v[0].reshape(2 * p, cin, k2 + 1, 2 * k2 + 1).transpose(0, 2, 3, 1).reshape(2 * p, -1),) + v[1:]
            v_ops.append(add([(v, every(2 * p))], v[0].shape[1]))
            link_ops.append(add([(rows(f"link.{l}"), every(2 * p))], 2 * p))
            # horizontal conv: weight (2p, cin, 1, k2+1) -> inputs ordered (dx, cin); centre tap last
            h = rows(f"h_conv.{l}")
            h = (h[0].reshape(2 * p, cin, k2 + 1).transpose(0, 2, 1).reshape(2 * p, -1),) + h[1:]
            sk, ho = rows(f"skip.{l}"), rows(f"h_out.{l}")
            hs, ss = [], []
            for c in range(C):
                seen = (c if l == 0 else c + 1) if C > 1 else (0 if l == 0 else 1)
                centre = seen * (cin // C) if C > 1 else seen * cin
                hs.append(add([(h, np.concatenate([group(c, pg), group(c, pg, p)]))], k2 * cin + centre))
                ss.append(add([(sk, group(c, sg)), (ho, group(c, pg))], (c + 1) * pg))
            h_ops.append(hs)
            so_ops.append(ss)
        h1, h2 = rows("head1"), rows("head2")
        head1_ops = [add([(h1, group(c, hg))], (c + 1) * sg) for c in range(C)]
        head2_ops = [add([(h2, group(c, 256))], (c + 1) * hg) for c in range(C)]

        w = gemm.zeros(self._woff, np.int16)   # every op starts on a cache line (see gemm.pack)
        w[:] = np.concatenate(self._w)
        ops = np.array(self._ops, dtype=np.int64)
        gm, gs = cfg.gate_mult, cfg.gate_shift   # exact in float64 (modelfile.check_tensors)
        self.product = gemm_choice(product)
        self.weights = Weights(
            w=w, ops=ops, scale=np.concatenate(self._scale), offset=np.concatenate(self._offset),
            layer_ops=np.array([[v_ops[l], link_ops[l]] + h_ops[l] + so_ops[l] for l in range(L)], np.int64),
            head_ops=np.array([head1_ops, head2_ops], dtype=np.int64),
            gates=np.array([[math.ldexp(gm[2 * l], -gs[2 * l]), math.ldexp(gm[2 * l + 1], -gs[2 * l + 1])]
                            for l in range(L)], np.float64),
            head_in=math.ldexp(cfg.head_in_mult, -cfg.head_in_shift),
            tanh=np.asarray(t["tanh"], np.float64), sigmoid=np.asarray(t["sigmoid"], np.float64),
            exp=contract.coder_counts(model.exp), loop=self.product == "loop")
        del self._w, self._scale, self._offset, self._ops
        self.width_in = 2 * int(ops[:, 4].max())      # int16 columns of an input buffer
        self.head_width = gemm.even(self.skip)        # int16 columns of a head input
        self.width_out = int(ops[:, 5].max())         # int32 columns of an output buffer

    def conditioning(self, label: int | None) -> tuple[np.ndarray, np.ndarray]:
        """(vertical, link) class biases (L, 2p) float64 for a label; zeros without one."""
        biases = self.model.class_biases(label)
        if biases is not None:
            return tuple(np.ascontiguousarray(b, dtype=np.float64) for b in biases)
        z = np.zeros((self.L, 2 * self.p), np.float64)
        return z, z.copy()

    def scratch(self, tasks: int, rows: int) -> Scratch:
        """Working buffers for ``tasks`` tasks of up to ``rows`` positions each."""
        rows = gemm.padded(rows)
        p2 = 2 * self.p
        x = gemm.zeros((tasks, rows, self.width_in), np.int16)
        z = gemm.zeros((tasks, rows, gemm.even(p2)), np.int16)
        g = gemm.zeros((tasks, rows, gemm.even(self.p)), np.int16)
        return Scratch(x=x, x32=x.view(np.int32), z=z, z32=z.view(np.int32), g=g,
                       y=gemm.zeros((tasks, rows, max(self.width_out, 256)), np.int32),
                       t=np.zeros((tasks, rows, p2), np.int32), lk=np.zeros((tasks, rows, p2), np.float64),
                       hr=np.zeros((tasks, rows, self.p), np.float64))

    def scratch_bytes_per_row(self) -> int:
        """Bytes of one task's buffers per position (the shapes of ``scratch``)."""
        p2 = 2 * self.p
        return (2 * self.width_in + 2 * gemm.even(p2) + 2 * gemm.even(self.p) + 4 * max(self.width_out, 256)
                + 4 * p2 + 8 * p2 + 8 * self.p)


def program(model: ModelFile, product: str | None = None) -> Program:
    """The model packed for the kernels (built once per loaded model and
    product), the kernels' cache made ready on first use."""
    from ... import kernel_cache as cache
    cache.enable()
    product = gemm_choice(product)
    progs = model.__dict__.setdefault("_programs", {})
    if product not in progs:
        progs[product] = Program(model, product)
    return progs[product]
