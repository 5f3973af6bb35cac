"""The PyTorch reference of the integer network: the same integers as the
compiled kernels, computed another way.

Tests compare the kernels with it on every sub-pixel, ``pixzip export``
measures a new model's bits/dim with it, and the encoder runs it on a GPU.
The coding path never needs it (nor torch): it is imported only for those.

Every value is an integer.  A layer multiplies 10-bit integer activations
(|a| <= 511) by 10-bit integer weights (|w| <= 511) and accumulates exactly,
here in float32 parts that stay below 2^24 (``IntLinear``), in the kernels
in int32.  Any summation order gives the same integer, so the result does
not depend on the device, the thread count, the batch or the tiling.
Results are requantized as ``contract`` states:

    out = floor((acc + b[o]) * M[o] / 2^shift + 1/2)

computed exactly in float64 as floor(acc * (M / 2^shift) + (b*M + 2^(shift-1)) / 2^shift)
(the exporter keeps every product and sum below 2^53).  Activations are
held as integer-valued float tensors; tanh, sigmoid and exp are the model
file's tables.
"""
from __future__ import annotations

import contextlib
import copy
import math

import numpy as np
import torch
import torch.nn.functional as F

from ..contract import ACT_MAX, EXACT_F32, GATE_LIMIT, SKIP_LIMIT, TERM_LIMIT, network_input
from .modelfile import ModelFile


class IntLinear:
    """y = requant(W @ a + b): W 10-bit (out, in), b, M integers, one shift.

    The matmul runs in float32, which is exact while every partial sum stays
    below 2^24 in magnitude.  A layer whose bound sum(|w|) * max|a| is larger
    is split until each part is under it: the inputs into chunks (each output
    sums its chunks in float64), and if one input alone is too big, each
    activation into two base-64 digits, a = 64*hi + lo with lo in 0..63, whose
    products are combined in float64.  Every part is an exact integer, so the
    result is the same integer as a direct int64 sum."""

    DIGIT = 64.0

    def __init__(self, weight: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: int, max_in: float):
        w = np.asarray(weight, dtype=np.float64)
        self.weight = torch.from_numpy(w)
        b = np.asarray(bias, dtype=np.int64)
        m = np.asarray(mult, dtype=np.int64)
        half = 1 << (shift - 1)
        self.scale = torch.from_numpy(np.ldexp(m.astype(np.float64), -shift))
        self.offset = torch.from_numpy(np.ldexp((b * m + half).astype(np.float64), -shift))
        self.max_in = float(max_in)
        self._plan()

    def _plan(self) -> None:
        w = self.weight.abs().numpy()
        whole = self._chunks(w, self.max_in)
        halves = self._chunks(w, max(self.DIGIT, self.max_in / self.DIGIT + 1))
        # splitting doubles the matmuls; it pays when it saves many chunks
        self.split = len(whole) > 2 and 2 * len(halves) < len(whole)
        self.chunks = halves if self.split else whole
        self.parts = [self.weight[:, a:b].T.to(torch.float32).contiguous() for a, b in self.chunks]

    @staticmethod
    def _chunks(w: np.ndarray, top: float) -> list[tuple[int, int]]:
        """Input ranges, greedily as long as possible, whose sums stay below 2^24
        for every output when each input is at most ``top`` in magnitude."""
        chunks, start, run = [], 0, np.zeros(w.shape[0])
        for k in range(w.shape[1]):
            if k > start and float((run + w[:, k]).max()) * top >= EXACT_F32:
                chunks.append((start, k))
                start, run = k, np.zeros(w.shape[0])
            run += w[:, k]
        chunks.append((start, w.shape[1]))
        return chunks

    def accumulate(self, a: torch.Tensor) -> torch.Tensor:
        """Exact W @ a for an integer-valued tensor a (..., in), as float64 (..., out)."""
        a = a.to(torch.float32)
        if self.split:
            hi = torch.floor(a / self.DIGIT)
            digits = [(hi, self.DIGIT), (a - hi * self.DIGIT, 1.0)]
        else:
            digits = [(a, 1.0)]
        acc = None
        for x, unit in digits:
            for (lo, hi_), wt in zip(self.chunks, self.parts):
                part = (x[..., lo:hi_] if len(self.chunks) > 1 else x) @ wt
                part = part.to(torch.float64)
                if unit != 1.0:
                    part.mul_(unit)
                acc = part if acc is None else acc.add_(part)
        return acc

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        """a: integer-valued tensor (..., in) -> integer-valued float64 (..., out)."""
        return requant(self.accumulate(a), self.scale, self.offset)

    def to(self, device) -> "IntLinear":
        """A copy with its tensors on ``device``."""
        out = copy.copy(self)
        out.weight, out.scale, out.offset = self.weight.to(device), self.scale.to(device), self.offset.to(device)
        out.parts = [p.to(device) for p in self.parts]
        return out

    def reorder_inputs(self, shape: tuple[int, ...], order: tuple[int, ...]) -> "IntLinear":
        """The same layer with its inputs, viewed as ``shape``, permuted to ``order``."""
        w = self.weight.view(-1, *shape).permute(0, *(1 + i for i in order)).reshape(self.weight.shape[0], -1)
        self.weight = w.contiguous()
        self._plan()
        return self

    @staticmethod
    def stack(parts: list["IntLinear"]) -> "IntLinear":
        """One linear computing several that share an input (outputs concatenated)."""
        out = IntLinear.__new__(IntLinear)
        out.weight = torch.cat([p.weight for p in parts])
        out.scale = torch.cat([p.scale for p in parts])
        out.offset = torch.cat([p.offset for p in parts])
        out.max_in = max(p.max_in for p in parts)
        out._plan()
        return out


def requant(acc: torch.Tensor, scale, offset) -> torch.Tensor:
    """floor(acc * scale + offset) in float64, in place on the float64 ``acc``.
    Exact under the export bound: the product and the sum are exact, so the
    order and fusion of the operations cannot change the result."""
    return acc.mul_(scale).add_(offset).floor_()


def requant_scalar(x: torch.Tensor, mult: int, shift: int) -> torch.Tensor:
    """floor(x * mult / 2^shift + 1/2) for an integer-valued tensor x."""
    return requant(x.to(torch.float64, copy=True), math.ldexp(mult, -shift), 0.5)


class IntGatedPixelCNN:
    """Integer inference of an exported Gated PixelCNN in PyTorch (no
    autograd, no floats outside exact integer matmuls).  ``network(model)``
    gives the one of a model file."""

    def __init__(self, model: ModelFile):
        self.model = model
        cfg = model.config
        self.name, self.sha256 = model.name, model.sha256
        self.colors = cfg.colors
        self.p = cfg.channels
        self.layers = cfg.layers
        self.k2 = cfg.kernel // 2
        self.n_classes = cfg.n_classes
        t = model.tensors
        self.tanh = torch.from_numpy(t["tanh"].astype(np.float64))
        self.sigmoid = torch.from_numpy(t["sigmoid"].astype(np.float64))
        self.exp = torch.from_numpy(model.exp)
        self.exp_max_index = len(self.exp) - 1
        self.device = torch.device("cpu")    # where the tensors are (``on``)

        def lin(prefix, max_in=ACT_MAX):
            return IntLinear(t[prefix + ".w"], t[prefix + ".b"], t[prefix + ".m"], int(cfg.shift[prefix]), max_in)

        L = range(self.layers)
        k2, c, p = self.k2, self.colors, self.p
        x_max = lambda l: 255 if l == 0 else ACT_MAX  # noqa: E731  (inputs are 2x - 255)
        cin = lambda l: c if l == 0 else p  # noqa: E731
        # conv weights are stored (out, in, kh, kw); _taps wants the inputs tap-major
        self.v_conv = [lin(f"v_conv.{l}", x_max(l)).reorder_inputs((cin(l), k2 + 1, 2 * k2 + 1), (1, 2, 0))
                       for l in L]
        self.link = [lin(f"link.{l}", GATE_LIMIT) for l in L]
        self.h_conv = [lin(f"h_conv.{l}", x_max(l)).reorder_inputs((cin(l), 1, k2 + 1), (1, 2, 0)) for l in L]
        self.skip = [lin(f"skip.{l}") for l in L]
        self.h_out = [lin(f"h_out.{l}") for l in L]
        # skip and h_out read the same gate output: one matmul for both.
        self.skip_out = [IntLinear.stack([self.skip[l], self.h_out[l]]) for l in L]
        self.skip_channels = cfg.skip_channels
        gm, gs = cfg.gate_mult, cfg.gate_shift
        self.v_gate = [(int(gm[2 * l]), int(gs[2 * l])) for l in L]
        self.h_gate = [(int(gm[2 * l + 1]), int(gs[2 * l + 1])) for l in L]
        self.head_in = (int(cfg.head_in_mult), int(cfg.head_in_shift))
        self.head1 = lin("head1")
        self.head2 = lin("head2")
        self.v_cond = self.h_cond = None   # (classes, layers, 2p) in gate units
        if "v_cond" in t:
            self.v_cond = torch.from_numpy(t["v_cond"].astype(np.float64))
            self.h_cond = torch.from_numpy(t["h_cond"].astype(np.float64))

    @property
    def rows_above(self) -> int:
        """The rows above a row that it can see (the model file's receptive field)."""
        return self.model.rows_above

    # -- building blocks -----------------------------------------------------
    def gate(self, pre: torch.Tensor, gate: tuple[int, int]) -> torch.Tensor:
        """tanh(a) * sigmoid(b) by table, requantized to the layer's activation scale."""
        idx = (pre + GATE_LIMIT).long()
        a, b = idx.split(self.p, dim=-1)
        return requant_scalar(self.tanh[a] * self.sigmoid[b], *gate).clamp_(-ACT_MAX, ACT_MAX)

    def vertical_terms(self, l: int, v_raw: torch.Tensor, cond=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(clamped vertical pre-activation, clamped link term) from the
        requantized vertical convolution of layer l."""
        link = self.link[l](v_raw.clamp(-GATE_LIMIT, GATE_LIMIT))
        if cond is not None:
            v_raw = v_raw + cond[0]
            link = link + cond[1]
        return v_raw.clamp_(-GATE_LIMIT, GATE_LIMIT), link.clamp_(-TERM_LIMIT, TERM_LIMIT)

    def horizontal(self, l: int, h_part: torch.Tensor, link: torch.Tensor, h_prev):
        """(gate output, skip term, new residual stream) of layer l at some positions."""
        h_pre = (h_part.clamp(-TERM_LIMIT, TERM_LIMIT) + link).clamp_(-GATE_LIMIT, GATE_LIMIT)
        g = self.gate(h_pre, self.h_gate[l])
        skip, h_new = self.skip_out[l](g).split([self.skip_channels, self.p], dim=-1)
        if h_prev is not None:
            h_new = h_new + h_prev
        return g, skip, h_new.clamp_(-ACT_MAX, ACT_MAX)

    def counts(self, logits: torch.Tensor) -> torch.Tensor:
        """Integer counts (each >= 1) from integer logits (..., 256)."""
        d = (logits.max(dim=-1, keepdim=True).values - logits).clamp_(max=self.exp_max_index)
        return self.exp[d.long()]

    def head(self, skip_sum: torch.Tensor) -> torch.Tensor:
        hid = self.head1(self.head_input(skip_sum)).clamp_(0, ACT_MAX)
        return self.head2(hid)

    def head_input(self, skip_sum: torch.Tensor) -> torch.Tensor:
        return requant_scalar(skip_sum.clamp(-SKIP_LIMIT, SKIP_LIMIT), *self.head_in).clamp_(0, ACT_MAX)

    # -- full pass (encoder) -------------------------------------------------
    def logits(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Integer logits (B, H, W, C, 256) of uint8-valued images x (B, H, W, C),
        in one parallel pass over the given rows."""
        b, h, w, c = x.shape
        with exact_matmuls():
            return self.head(self.skip_sum(x, labels)).view(b, h, w, c, 256)

    def skip_sum(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The summed skip connections (B, H, W, skip) of uint8-valued images x."""
        xi = network_input(x.to(torch.float64))
        k2 = self.k2
        v_in = F.pad(xi, (0, 0, 0, 0, 1, 0))[:, :-1]          # shifted down one row
        h_in = xi
        skip = 0
        for l in range(self.layers):
            v_raw = _taps(v_in, self.v_conv[l], k2 + 1, 2 * k2 + 1, (k2, k2, k2))
            h_part = _taps(h_in, self.h_conv[l], 1, k2 + 1, (0, k2, 0))
            cond = (self.v_cond[labels, l][:, None, None, :], self.h_cond[labels, l][:, None, None, :]) \
                if self.n_classes and labels is not None else None
            v_pre, link = self.vertical_terms(l, v_raw, cond)
            v_in = self.gate(v_pre, self.v_gate[l])
            g, s, h_in = self.horizontal(l, h_part, link, h_in if l else None)
            skip = skip + s
        return skip

    def strip_counts(self, pixels: torch.Tensor, start: int, stop: int, labels=None) -> torch.Tensor:
        """Counts (stop-start, W, C, 256) of rows [start, stop) of an (H, W, C)
        image, from one pass over those rows plus a halo of the rows above that
        they can see.  The receptive field is bounded, so the integers equal
        those of a pass over the whole image."""
        top = max(0, start - self.rows_above)
        with torch.no_grad():
            return self.counts(self.logits(pixels[None, top:stop], labels))[0, start - top:]

    def strip_head_inputs(self, pixels: np.ndarray, start: int, stop: int, labels=None) -> np.ndarray:
        """Head inputs (stop-start, W, skip) int16 of rows [start, stop) of an
        (H, W, C) uint8 image, computed on the net's device from those rows and
        the rows above that they see; the same integers as ``intkernels.row_heads``."""
        top = max(0, start - self.rows_above)
        x = torch.from_numpy(np.array(pixels[top:stop])).to(self.device)   # a copy: views may be read-only
        with torch.no_grad(), exact_matmuls():
            a = self.head_input(self.skip_sum(x[None], labels))[0, start - top:]
        return a.to(torch.int16).cpu().numpy()

    def on(self, device) -> "IntGatedPixelCNN":
        """This net with its tensors on ``device`` (made once, then cached).
        Its passes run with TF32 off on a GPU (``exact_matmuls``), without
        changing the process's settings outside them."""
        device = torch.device(device)
        if device.type == "cpu":
            return self
        cache = self.__dict__.setdefault("_on", {})
        if device not in cache:
            net = copy.copy(self)
            net.device = device
            for name in ("tanh", "sigmoid", "exp", "v_cond", "h_cond"):
                if getattr(net, name) is not None:
                    setattr(net, name, getattr(net, name).to(device))
            moved = {}
            for name in ("v_conv", "link", "h_conv", "skip", "h_out", "skip_out"):
                setattr(net, name, [moved.setdefault(id(m), m.to(device)) for m in getattr(net, name)])
            net.head1, net.head2 = self.head1.to(device), self.head2.to(device)
            net.__dict__.pop("_on", None)
            cache[device] = net
        return cache[device]

    def cross_entropy_bits(self, pixels: np.ndarray, strip_rows: int = 32) -> float:
        """Ideal code length in bits of an (H, W, C) uint8 image under the integer model."""
        x = torch.from_numpy(np.array(pixels))
        bits = 0.0
        for a in range(0, x.shape[0], strip_rows):
            c = self.strip_counts(x, a, min(x.shape[0], a + strip_rows)).to(torch.float64)
            sym = x[a:a + c.shape[0]].to(torch.int64)[..., None]
            bits -= torch.log2(torch.gather(c, -1, sym)[..., 0] / c.sum(-1)).sum().item()
        return bits


def _taps(x: torch.Tensor, lin: IntLinear, kh: int, kw: int, pad: tuple[int, int, int]) -> torch.Tensor:
    """Exact convolution of channels-last integer maps x (B, H, W, Cin) with a
    kh x kw kernel and (top, left, right) zero padding, as one matmul over the
    taps gathered tap-major (the order of ``lin``'s inputs)."""
    b, h, w, cin = x.shape
    top, left, right = pad
    xp = F.pad(x.to(torch.float32), (0, 0, left, right, top, 0))
    cols = torch.cat([xp[:, dy:dy + h, dx:dx + w] for dy in range(kh) for dx in range(kw)], dim=-1)
    return requant(lin.accumulate(cols), lin.scale, lin.offset)


@contextlib.contextmanager
def exact_matmuls():
    """Plain IEEE float32 matmuls on a GPU (no TF32, which rounds the inputs
    to 10 bits and would break the exact integer sums) for the duration,
    the process's own settings restored after."""
    if not torch.cuda.is_available():
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def network(model: ModelFile) -> IntGatedPixelCNN:
    """The reference network of a model file (built once per loaded model)."""
    net = model.__dict__.get("_reference")
    if net is None:
        net = model.__dict__["_reference"] = IntGatedPixelCNN(model)
    return net
