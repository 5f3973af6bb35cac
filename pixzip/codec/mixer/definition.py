"""The readable definition of the mixer's format (coders 2 and 3): a slow,
independent, plain-Python model of the context mixer (the compiled one is
``kernel.code``), which the tests check the kernel against.

Its numbers are the spec's (``spec.SPEC_1``, the same object the kernel
reads); its rules are written here apart from the kernel.

It computes every binary decision's 16-bit probability from the same rules as
the kernel, but is written apart from it: no numba, nothing imported from
``kernel``, ``tables`` or ``bitcoder`` (only the numbers of ``spec``) (the squash, stretch and reciprocal
tables are rebuilt here from their definitions), Python integers throughout
(numpy only to read the image and the counts), and the adaptive state kept in
small objects keyed by what each entry means rather than in the kernel's flat
arrays.  Where the kernel stores into int32 arrays, the stores here wrap the
same way (they never need to in practice).

- ``trace(img, positions, counts)``: the (p16, bit) of every decision;
- ``probabilities(img, positions, counts)``: the p16 values alone;
- ``encode(img, positions, counts)``: the payload, with the LZMA-style range
  coder of ``bitcoder`` re-implemented here (encoder only);
- ``ideal_bits(trace)``: the ideal code length of a trace.

``positions`` yields (y, x, colour, strip_top) per sub-pixel, in coding order,
and with a network (``counts`` given) a fifth item: the index of the
sub-pixel's row in ``counts`` (an (n, 256) array of the network's counts).
A position without the fifth item (or any, when ``counts`` is None) is coded
without a network, as ``kernel.code`` does with ``has_net`` false; one model
serves the whole sequence, so mixing the two is like successive calls of
``Encoder.add`` with and without counts.
"""
from __future__ import annotations

import bisect
import math

from .spec import SPEC_1

SPEC = SPEC_1

# ---------------------------------------------------------------- the tables

ST_MAX = 2047
# 4096 / (1 + e^(-x)) at x = -8, -7.5, ..., 8 nats, rounded (the definition of squash)
SQUASH_POINTS = (1, 2, 4, 6, 10, 17, 27, 45, 74, 120, 194, 311, 488, 747, 1102, 1546, 2048,
                 2550, 2994, 3349, 3608, 3785, 3902, 3976, 4022, 4051, 4069, 4079, 4086, 4090, 4092, 4094, 4095)


def _squash_rule(d: int) -> int:
    """Linear interpolation of SQUASH_POINTS (128 stretch units apart), rounded."""
    d = min(ST_MAX, max(-ST_MAX, d))
    seg, frac = divmod(d + 16 * 128, 128)          # d = (seg - 16) * 128 + frac, 0 <= frac < 128
    lo_pt = SQUASH_POINTS[seg]
    hi_pt = SQUASH_POINTS[seg + 1]
    return (lo_pt * (128 - frac) + hi_pt * frac + 64) // 128


_SQUASH = [_squash_rule(d) for d in range(-ST_MAX, ST_MAX + 1)]     # index d + ST_MAX
# stretch(p): the smallest d whose squash reaches p (ST_MAX past the top); squash is non-decreasing
_STRETCH = []
for _p in range(4096):
    _i = bisect.bisect_left(_SQUASH, _p)
    _STRETCH.append(_i - ST_MAX if _i < len(_SQUASH) else ST_MAX)
del _p, _i
COUNT_MAX = SPEC.count_max
# a counter's rate at count n: floor(65536 / (n + 1.5))
_RECIP = [131072 // (2 * n + 3) for n in range(COUNT_MAX + 1)]


def squash(d: int) -> int:
    return _SQUASH[min(ST_MAX, max(-ST_MAX, d)) + ST_MAX]


def stretch(p12: int) -> int:
    return _STRETCH[p12]


def _wrap32(v: int) -> int:
    """v stored into an int32 array (two's complement wrap)."""
    if -0x80000000 <= v <= 0x7FFFFFFF:
        return v
    return ((v + 0x80000000) & 0xFFFFFFFF) - 0x80000000


def _p12(upper: int, total: int) -> int:
    """The rounded 12-bit probability upper / total, kept inside 1..4095 (2048 if empty)."""
    if total <= 0:
        return 2048
    return min(4095, max(1, (upper * 4096 + total // 2) // total))


# ---------------------------------------------------------------- contexts

def _hash_step(h: int, v: int) -> int:
    h = ((h ^ (v & 0xFFFFFFFF)) * 0x2C9277B5) & 0xFFFFFFFF
    return h ^ (h >> 15)


def _hash(*values: int) -> int:
    h = values[0]
    for v in values[1:]:
        h = _hash_step(h, v)
    return h


def _clamp8(v: int) -> int:
    return max(0, min(255, v))


def _log_class(v: int) -> int:
    """|v| as 0, 1, 2-3, 4-7, ..., 64+ -> 0..7."""
    return min(7, abs(v).bit_length())


def _median(a: int, b: int, c: int) -> int:
    """MED / LOCO-I predictor from W = a, N = b, NW = c."""
    if c >= max(a, b):
        return min(a, b)
    if c <= min(a, b):
        return max(a, b)
    return a + b - c


class Neighbourhood:
    """The causal neighbours of one colour at (y, x), r rows into its strip."""

    def __init__(self, img, y: int, x: int, r: int, ch: int):
        width = img.shape[1]

        def px(yy, xx):
            return int(img[yy, xx, ch])

        above = r > 0
        if x > 0:
            self.w = px(y, x - 1)
        elif above:
            self.w = px(y - 1, x)
        else:
            self.w = 128
        self.n = px(y - 1, x) if above else self.w
        self.nw = px(y - 1, x - 1) if above and x > 0 else self.n
        self.ne = px(y - 1, x + 1) if above and x + 1 < width else self.n
        self.ww = px(y, x - 2) if x >= 2 else self.w
        self.nn = px(y - 2, x) if r >= 2 else self.n
        self.nne = px(y - 2, x + 1) if r >= 2 and x + 1 < width else self.ne


class NetworkView:
    """The network's counts for one sub-pixel: P(bit | known bits), mode, mean, confidence."""

    def __init__(self, row):
        vals = [int(row[v]) for v in range(256)]         # int64 conversion truncates, as int() does
        self.prefix = [0]
        for cv in vals:
            self.prefix.append(self.prefix[-1] + cv)
        total = self.prefix[256]
        peak = max(vals)
        self.mode = vals.index(peak)                     # the first of the largest counts
        self.mean = (sum(v * cv for v, cv in enumerate(vals)) + total // 2) // total
        self.conf = min(7, peak * 8 // total)

    def p12(self, lo: int, half: int) -> int:
        pre = self.prefix
        return _p12(pre[lo + 2 * half] - pre[lo + half], pre[lo + 2 * half] - pre[lo])


class SubpixelContext:
    """Everything the mixer derives from the neighbourhood of one sub-pixel
    before its first bit: the hashed contexts, the residual maps' predictions
    and error contexts, and the small contexts that choose weights."""

    def __init__(self, img, y, x, c, top, net: NetworkView | None, blender: "BlendPredictor"):
        r = y - top
        nb = Neighbourhood(img, y, x, r, c)
        w, n, nw, ne, ww, nn = nb.w, nb.n, nb.nw, nb.ne, nb.ww, nb.nn
        self.qa = qa = _log_class(abs(w - nw) + abs(n - nw) + abs(n - ne))
        self.med = med = _median(w, n, nw)
        grad = _clamp8(w + n - nw)
        if net is not None:
            mode, mean, conf = net.mode, net.mean, net.conf
        else:
            mode, mean, conf = med, _clamp8((2 * w + 2 * n + ne - nw + 2) >> 2), 0
        self.conf = conf
        seed = (c + 1) << 16
        if c == 0:
            ctx8 = _hash(seed + 9, mode, conf) if net is not None else _hash(seed + 9, med, _log_class(w - nw))
            self.hashes = [
                _hash(seed + 1, w, n),
                _hash(seed + 2, w, n, nw),
                _hash(seed + 3, n, ne),
                _hash(seed + 4, w, ww),
                _hash(seed + 5, n, nn),
                _hash(seed + 6, grad, qa),
                _hash(seed + 7, w >> 2, n >> 2, nw >> 2, ne >> 2),
                _hash(seed + 8, w, ne),
                ctx8,
                seed + 10,
                _hash(seed + 11, _clamp8(n + ne - nb.nne)),
                _hash(seed + 12, _clamp8(w + ne - n)),
                _hash(seed + 13, w >> 4, n >> 4, nw >> 4, ne >> 4, ww >> 4, nn >> 4),
                _hash(seed + 14, med >> 2, (w - nw) >> 3, (n - nw) >> 3),
                _hash(seed + 15, mode, mean) if net is not None else _hash(seed + 15, w, ne >> 2, nn >> 2),
                _hash(seed + 16, mode, qa) if net is not None else _hash(seed + 16, n >> 1, w >> 1, ne >> 3),
            ]
            self.subs = [w, n, ne, grad, (w + ne + 1) >> 1, _clamp8(n + ne - nb.nne)]
            self.blend, berr = blender.predict(self.subs, y, x, r, c)
            self.preds = [med, grad, w, n, (w + ne + 1) >> 1, mode, mean, self.blend]
            self.map_ctx = [qa * 8] * 7 + [_log_class(berr) * 8 + _log_class(w - n)]
        else:
            p1 = int(img[y, x, c - 1])
            p2 = int(img[y, x, c - 2]) if c >= 2 else 0
            prev = Neighbourhood(img, y, x, r, c - 1)
            w1, n1, nw1, ne1 = prev.w, prev.n, prev.nw, prev.ne
            du, dn = p1 - w1, p1 - n1
            med1 = _median(w1, n1, nw1)
            ctx8 = _hash(seed + 9, mode, conf, p1) if net is not None else _hash(seed + 9, med, p1)
            self.hashes = [
                _hash(seed + 1, p1, p2),
                _hash(seed + 2, w, p1, p2),
                _hash(seed + 3, n, p1, p2),
                _hash(seed + 4, _clamp8(w + du), _clamp8(n + dn)),
                _hash(seed + 5, w, n, p1),
                _hash(seed + 6, ne, _clamp8(n + dn)),
                _hash(seed + 7, p1, w - w1 + 256, n - n1 + 256),
                _hash(seed + 8, med, p1 - med1 + 256),
                ctx8,
                _hash(seed + 10, p1 >> 3),
                _hash(seed + 11, _clamp8(nw + p1 - nw1), _clamp8(ne + p1 - ne1)),
                _hash(seed + 12, _clamp8(p1 + ((w - w1 + n - n1) >> 1))),
                _hash(seed + 13, (w - w1) >> 2, (n - n1) >> 2, (ne - ne1) >> 2, p1 >> 4),
            ]
            if c >= 2:
                two = Neighbourhood(img, y, x, r, c - 2)
                self.hashes.append(_hash(seed + 14, _clamp8(w + p2 - two.w), _clamp8(n + p2 - two.n)))
            else:
                self.hashes.append(_hash(seed + 14, _clamp8(w + du), p1 >> 2))
            self.hashes.append(_hash(seed + 15, mode, _clamp8(w + du)) if net is not None
                               else _hash(seed + 15, w, n, ne >> 2, p1 >> 2))
            self.hashes.append(_hash(seed + 16, mode, _log_class(du), _log_class(dn)) if net is not None
                               else _hash(seed + 16, _clamp8(med + p1 - med1), qa))
            self.subs = [_clamp8(w + du), _clamp8(n + dn), _clamp8(ne + p1 - ne1),
                         _clamp8(grad + p1 - _clamp8(w1 + n1 - nw1)), _clamp8(med + p1 - med1),
                         _clamp8(nw + p1 - nw1)]
            self.blend, berr = blender.predict(self.subs, y, x, r, c)
            self.preds = [med, _clamp8(med + p1 - med1), _clamp8(w + du), _clamp8(n + dn),
                          _clamp8(((w + n + 1) >> 1) + p1 - ((w1 + n1 + 1) >> 1)), mode, mean, self.blend]
            # the previous colour's errors under the same predictors (maps 1, 4, 5, 6 have none);
            # the blend's map: its error sum and the previous colour's blend residual
            errs = [p1 - med1, 0, du, dn, 0, 0, 0]
            self.map_ctx = [qa * 8 + _log_class(e) for e in errs]
            self.map_ctx.append(_log_class(berr) * 8 + _log_class(blender.residual[(y, x, c - 1)]))
        self.berr_class = _log_class(berr)


# ---------------------------------------------------------------- adaptive models

class BlendPredictor:
    """Six sub-predictions per colour, averaged with weights 2^32 // (e^2 + 4),
    where e sums a sub-predictor's past absolute errors (each at most 255) at
    W and N (twice) and at NW and NE, those of them known in the strip.  A
    pixel this model did not code (another column part's, coder 3) has
    errors of 0."""

    def __init__(self, width: int):
        self.width = width
        self.errors = {}      # (y, x, c) -> the sub-predictors' absolute errors there, at most 255
        self.residual = {}    # (y, x, c) -> value - blend, wrapped into -128..127

    def predict(self, subs, y, x, r, c):
        """(the blend, the smallest error sum)."""
        near = []
        if x > 0:
            near.append((2, (y, x - 1, c)))
        if r > 0:
            near.append((2, (y - 1, x, c)))
            if x > 0:
                near.append((1, (y - 1, x - 1, c)))
            if x + 1 < self.width:
                near.append((1, (y - 1, x + 1, c)))
        unknown = [0] * len(subs)
        sums = [sum(f * self.errors.get(where, unknown)[i] for f, where in near) for i in range(len(subs))]
        weights = [(1 << 32) // (e * e + 4) for e in sums]
        total = sum(weights)
        blend = (sum(wt * p for wt, p in zip(weights, subs)) + total // 2) // total
        return blend, min(sums)

    def learn(self, subs, blend, y, x, c, value) -> None:
        self.errors[(y, x, c)] = [min(255, abs(value - p)) for p in subs]
        self.residual[(y, x, c)] = ((value - blend + 128) & 255) - 128


class HashedContexts:
    """A table of buckets, each a check word and 15 counters (the binary tree
    of one nibble: node 1 the nibble's first bit).  Two candidate buckets per
    context; a miss takes the one whose first node has seen less."""

    def __init__(self, n_subpixels: int, most_bits: int = SPEC.table_bits_max):
        need = max(1, n_subpixels * SPEC.n_hashed // 4 - 1)
        bits = min(most_bits, max(SPEC.table_bits_min, need.bit_length()))
        self.n_buckets = 1 << bits
        self.check = [0] * self.n_buckets
        self.prob = [32768] * (self.n_buckets * 16)     # index bucket * 16 + node (1..15)
        self.count = [0] * (self.n_buckets * 16)

    def _reset(self, b: int) -> None:
        for node in range(1, 16):
            self.prob[b * 16 + node] = 32768
            self.count[b * 16 + node] = 0

    def select(self, hashes, nibble_prefix: int) -> list[int]:
        """The bucket of each context for the nibble after the prefix (0 for
        the first nibble, 16..31 for the second: 1 then the first nibble)."""
        chosen = []
        for h in hashes:
            hn = _hash_step(h, nibble_prefix + 1)
            first = hn & (self.n_buckets - 1)
            second = first ^ 1
            tag = hn | 1
            if self.check[first] == tag:
                b = first
            elif self.check[second] == tag:
                b = second
            else:
                b = first if self.count[first * 16 + 1] <= self.count[second * 16 + 1] else second
                self.check[b] = tag
                self._reset(b)
            chosen.append(b)
        return chosen

    def inputs(self, buckets, node: int) -> list[int]:
        out = []
        for b in buckets:
            i = b * 16 + node
            cnt = self.count[i]       # never seen: nothing; seen once: half
            out.append(0 if cnt == 0 else stretch(self.prob[i] >> 4) >> (1 if cnt == 1 else 0))
        return out

    def update(self, buckets, node: int, bit: int) -> None:
        target = bit << 16
        for b in buckets:                       # in order: two contexts may share a bucket
            i = b * 16 + node
            cnt = self.count[i]
            p = self.prob[i]
            self.prob[i] = p + (((target - p) * _RECIP[cnt]) >> 16)
            self.count[i] = min(COUNT_MAX, cnt + 1)


class ResidualMaps:
    """Per map, colour and error context: a histogram of (value - prediction) mod 256."""

    INC = SPEC.h_inc
    LIMIT = SPEC.h_limit

    def __init__(self):
        self.hist = {}       # (map, colour, ctx) -> [256 bins]
        self.total = {}

    def _bins(self, key):
        if key not in self.hist:
            self.hist[key] = [0] * 256
            self.total[key] = 0
        return self.hist[key]

    def value_prefix(self, m, c, ctx, pred) -> list[int]:
        """Prefix sums of the histogram re-indexed by value (bin (v - pred) mod 256 for value v)."""
        bins = self._bins((m, c, ctx))
        pre = [0] * 257
        acc = 0
        for v in range(256):
            acc += bins[(v - pred) & 255]
            pre[v + 1] = acc
        return pre

    def learn(self, m, c, ctx, pred, value) -> None:
        key = (m, c, ctx)
        bins = self._bins(key)
        bins[(value - pred) & 255] = _wrap32(bins[(value - pred) & 255] + self.INC)
        self.total[key] = _wrap32(self.total[key] + self.INC)
        if self.total[key] > self.LIMIT:
            for v in range(256):
                bins[v] >>= 1
            self.total[key] = sum(bins)


N_MAPS = SPEC.n_maps
N_INPUTS = SPEC.n_inputs      # hashed contexts, maps, the network, the bias
BIAS = SPEC.bias


class Mixer:
    """Four weight sets chosen by small contexts, each a logistic mix of the
    inputs, then a second mixer over their outputs (per colour and bit)."""

    def __init__(self):
        self.w1 = {}     # (set, context...) -> [N_INPUTS weights]
        self.w2 = {}     # (colour, bit index) -> [4 weights, bias weight]

    def _row(self, key):
        row = self.w1.get(key)
        if row is None:
            row = self.w1[key] = [SPEC.w1_init] * N_INPUTS
        return row

    def predict(self, keys, xs):
        """The final stretch value and what the update needs."""
        rows = [self._row(k) for k in keys]
        dots = []
        for row in rows:
            acc = sum(wi * xi for wi, xi in zip(row, xs))
            dots.append(min(2047, max(-2047, acc >> 16)))
        return rows, dots

    def final(self, ck, dots):
        w2 = self.w2.get(ck)
        if w2 is None:
            w2 = self.w2[ck] = [65536 // SPEC.n_sets] * SPEC.n_sets + [0]
        acc = sum(w2[s] * dots[s] for s in range(SPEC.n_sets)) + w2[SPEC.n_sets] * BIAS
        return w2, min(2047, max(-2047, acc >> 16))

    @staticmethod
    def learn(rows, dots, xs, w2, pm, bit):
        target = bit << 12
        for row, d in zip(rows, dots):
            err = (target - squash(d)) * SPEC.mix_lr
            for i in range(N_INPUTS):
                row[i] = _wrap32(row[i] + ((xs[i] * err + SPEC.rounding) >> 16))
        err = (target - pm) * SPEC.mix2_lr
        for s in range(SPEC.n_sets):
            w2[s] = _wrap32(w2[s] + ((dots[s] * err + SPEC.rounding) >> 16))
        w2[SPEC.n_sets] = _wrap32(w2[SPEC.n_sets] + ((BIAS * err + SPEC.rounding) >> 16))


class APM:
    """An adaptive probability map: 33 16-bit points over the stretch domain
    per context, interpolated; the nearest point learns."""

    RATE = SPEC.apm_rate

    def __init__(self):
        self.rows = {}

    def _row(self, ctx):
        row = self.rows.get(ctx)
        if row is None:
            row = self.rows[ctx] = [squash((i - 16) * 128) * 16 for i in range(33)]
        return row

    def refine(self, ctx, d):
        row = self._row(ctx)
        pos = d + 2048                      # 1..4095
        seg, frac = pos // 128, pos % 128
        p = (row[seg] * (128 - frac) + row[seg + 1] * frac) // 128
        nearest = seg + 1 if frac >= 64 else seg
        return p, (row, nearest)

    @classmethod
    def learn(cls, handle, bit):
        row, j = handle
        row[j] = _wrap32(row[j] + (((bit << 16) - row[j]) >> cls.RATE))


# ---------------------------------------------------------------- the model

class ReferenceModel:
    """The whole adaptive model of one image, coding sub-pixels one at a time."""

    def __init__(self, img, table_subpixels: int | None = None, most_bits: int = SPEC.table_bits_max):
        h, w, colours = img.shape
        self.img = img
        self.hashed = HashedContexts(h * w * colours if table_subpixels is None else table_subpixels, most_bits)
        self.maps = ResidualMaps()
        self.mixer = Mixer()
        self.apm1 = APM()
        self.apm2 = APM()
        self.blender = BlendPredictor(w)

    def code_subpixel(self, y, x, c, top, counts_row=None, out=None):
        """Append (p16, bit) of the sub-pixel's 8 decisions to ``out``; the value
        is read from the image (as the encoder does)."""
        img = self.img
        net = NetworkView(counts_row) if counts_row is not None else None
        ctx = SubpixelContext(img, y, x, c, top, net, self.blender)
        value_prefix = [self.maps.value_prefix(m, c, ctx.map_ctx[m], ctx.preds[m]) for m in range(N_MAPS)]
        value = int(img[y, x, c])
        known = 0                     # the bits coded so far, as a number
        buckets = None
        out = [] if out is None else out
        for k in range(8):
            half = 128 >> k
            lo = known << (8 - k)     # the open range of values: [lo, lo + 2 * half)
            if k % 4 == 0:
                buckets = self.hashed.select(ctx.hashes, 0 if k == 0 else 16 | known)
            node = 1 << (k % 4) | (known & ((1 << (k % 4)) - 1))
            xs = self.hashed.inputs(buckets, node)
            for pre in value_prefix:
                xs.append(stretch(_p12(pre[lo + 2 * half] - pre[lo + half], pre[lo + 2 * half] - pre[lo])))
            xs.append(stretch(net.p12(lo, half)) if net is not None else 0)
            xs.append(BIAS)
            # weight-set contexts
            tree = (1 << k) | known            # 1 followed by the known bits
            if ctx.blend >> (8 - k) == known:
                agree = 1 + ((ctx.blend >> (7 - k)) & 1)
            else:
                agree = 0
            keys = [(0, c, tree), (1, c, k, ctx.conf), (2, c, k, ctx.berr_class), (3, c, k, agree)]
            rows, dots = self.mixer.predict(keys, xs)
            w2, dm = self.mixer.final((c, k), dots)
            pm = squash(dm)
            pa1, h1 = self.apm1.refine((c, tree), dm)
            # the kernel's own row numbers: with and without a network they share one table
            apm2_ctx = (c * 8 + k) * 16 + ((xs[-2] + 2048) >> 8) if net is not None else (c * 8 + k) * 8 + ctx.qa
            pa2, h2 = self.apm2.refine(apm2_ctx, dm)
            p16 = (pm * 32 + pa1 + pa2 + 2) // 4
            p16 = min(65535 - 32, max(32, p16))
            bit = (value >> (7 - k)) & 1
            out.append((p16, bit))
            # learning
            self.hashed.update(buckets, node, bit)
            Mixer.learn(rows, dots, xs, w2, pm, bit)
            APM.learn(h1, bit)
            APM.learn(h2, bit)
            known = known * 2 + bit
        for m in range(N_MAPS):
            self.maps.learn(m, c, ctx.map_ctx[m], ctx.preds[m], value)
        self.blender.learn(ctx.subs, ctx.blend, y, x, c, value)
        return out


def trace(img, positions, counts=None) -> list[tuple[int, int]]:
    """(p16, bit) of every binary decision, in coding order, where p16 is
    P(bit = 1) * 65536 after the final clamp."""
    model = ReferenceModel(img)
    out = []
    for pos in positions:
        y, x, c, top = (int(v) for v in pos[:4])
        row = counts[int(pos[4])] if counts is not None and len(pos) > 4 else None
        model.code_subpixel(y, x, c, top, row, out)
    return out


def probabilities(img, positions, counts=None) -> list[int]:
    return [p for p, _ in trace(img, positions, counts)]


def ideal_bits(decisions) -> float:
    return sum(-math.log2((p if bit else 65536 - p) / 65536.0) for p, bit in decisions)


# ---------------------------------------------------------------- the range coder

class RangeEncoder:
    """The LZMA range encoder: 32-bit range, carry through a cached byte and
    a run of pending 0xFF bytes."""

    def __init__(self):
        self.low = 0
        self.range = 0xFFFFFFFF
        self.cache = 0
        self.pending = 1          # the cache counts as one pending byte (the first one out)
        self.out = bytearray()

    def _shift(self):
        if self.low < 0xFF000000 or self.low >= 1 << 32:
            carry = self.low >> 32
            self.out.append((self.cache + carry) & 0xFF)
            self.out.extend(bytes([(0xFF + carry) & 0xFF]) * (self.pending - 1))
            self.pending = 0
            self.cache = (self.low >> 24) & 0xFF
        self.pending += 1
        self.low = (self.low & 0xFFFFFF) << 8

    def encode(self, bit, p16):
        bound = self.range * p16 >> 16
        if bit:
            self.range = bound
        else:
            self.low += bound
            self.range -= bound
        while self.range < 1 << 24:
            self.range <<= 8
            self._shift()

    def finish(self) -> bytes:
        for _ in range(5):
            self._shift()
        return bytes(self.out)


def encode_decisions(decisions) -> bytes:
    enc = RangeEncoder()
    for p, bit in decisions:
        enc.encode(bit, p)
    return enc.finish()


def encode(img, positions, counts=None) -> bytes:
    return encode_decisions(trace(img, positions, counts))


# ---------------------------------------------------------------- coder 3: column parts

def encode_parts(img, positions, counts, parts: int) -> bytes:
    """Coder 3's payload: the columns in ``parts`` parts (part p: columns
    w*p//parts .. w*(p+1)//parts - 1), each coded by a model of its own
    (its table sized for the widest part's sub-pixels, at most 2^20
    buckets) over its own positions, in the order given; all read the one
    image.  Then the part count, the lengths of all parts but the last
    (uint32 little-endian), and the streams."""
    h, w, colours = img.shape
    bounds = [w * p // parts for p in range(parts + 1)]
    widest = max(b - a for a, b in zip(bounds, bounds[1:]))
    streams = []
    for p in range(parts):
        model = ReferenceModel(img, h * widest * colours, most_bits=SPEC.part_table_bits_max)
        decisions: list[tuple[int, int]] = []
        for pos in positions:
            y, x, c, top = (int(v) for v in pos[:4])
            if bounds[p] <= x < bounds[p + 1]:
                row = counts[int(pos[4])] if counts is not None and len(pos) > 4 else None
                model.code_subpixel(y, x, c, top, row, decisions)
        streams.append(encode_decisions(decisions))
    lengths = b"".join(len(s).to_bytes(4, "little") for s in streams[:-1])
    return bytes([parts]) + lengths + b"".join(streams)
