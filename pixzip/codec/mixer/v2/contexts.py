"""What the mixer knows of a sub-pixel before its bits: its neighbours, the
colours of its pixel coded before it, the network's summary, and the
hashed contexts made of them.

Each hashed context is one line of ``hashes_of``, for the first colour and
for the later ones.  The comment after it: how much larger the files got
without input i (muted in every colour at once), measured by
``benchmarks/context_worth.py`` on five 192x256 crops of photos-train
images (never Kodak), the mixer alone, so contexts 8, 14 and 15 were
measured in their form without a network.
"""
from __future__ import annotations

import numba
import numpy as np

@numba.njit(inline="always")
def mix(h, v):
    """One step of the context hash (values below 2^62, never overflowing)."""
    h = ((h ^ (v & 0xFFFFFFFF)) * 0x2C9277B5) & 0xFFFFFFFF
    return h ^ (h >> 15)


@numba.njit(inline="always")
def clamp8(v):
    return min(255, max(0, v))


# log_class's table: the bit length of 0..64, at most 7
LOG_CLASS = np.array([min(7, v.bit_length()) for v in range(65)], np.int64)


@numba.njit(inline="always")
def log_class(v):
    """0, 1, 2-3, 4-7, ... 64+ -> 0..7 (a table: no loop, no branch)."""
    return LOG_CLASS[min(abs(v), 64)]


@numba.njit(inline="always")
def median(w, n, nw):
    if nw >= max(w, n):
        return min(w, n)
    if nw <= min(w, n):
        return max(w, n)
    return w + n - nw


@numba.njit(inline="always")
def neighbours(img, y, x, r, ch):
    """W, N, NW, NE, WW, NN of colour ``ch`` at (y, x), r rows into the strip;
    missing ones fall back on the nearest known (128 at the first pixel)."""
    width = img.shape[1]
    if x > 0:
        w = np.int64(img[y, x - 1, ch])
    elif r > 0:
        w = np.int64(img[y - 1, x, ch])
    else:
        w = np.int64(128)
    n = np.int64(img[y - 1, x, ch]) if r > 0 else w
    nw = np.int64(img[y - 1, x - 1, ch]) if r > 0 and x > 0 else n
    ne = np.int64(img[y - 1, x + 1, ch]) if r > 0 and x + 1 < width else n
    ww = np.int64(img[y, x - 2, ch]) if x > 1 else w
    nn = np.int64(img[y - 2, x, ch]) if r > 1 else n
    return w, n, nw, ne, ww, nn


@numba.njit(inline="always")
def previous_colours(img, y, x, r, c):
    """For colour c >= 1: the pixel's colours before it (p1 = c - 1, p2 = c - 2
    or 0), the neighbours W, N, NW, NE of colour c - 1, p1's differences from
    its W and N, and colour c - 1's MED prediction."""
    p1 = np.int64(img[y, x, c - 1])
    p2 = np.int64(img[y, x, c - 2]) if c >= 2 else np.int64(0)
    w1, n1, nw1, ne1, _, _ = neighbours(img, y, x, r, c - 1)
    return p1, p2, w1, n1, nw1, ne1, p1 - w1, p1 - n1, median(w1, n1, nw1)


@numba.njit(inline="always")
def local(nbrs):
    """The local activity's class, the MED prediction and the clamped gradient."""
    w, n, nw, ne, _, _ = nbrs
    return log_class(abs(w - nw) + abs(n - nw) + abs(n - ne)), median(w, n, nw), clamp8(w + n - nw)


@numba.njit(inline="always")
def far(img, y, x, r, dy, dx, fallback):
    """Pixel (y - dy, x + dx) of a one-colour image where it is known in both
    stream orders (in the row, to the left; dy <= r rows above, in the strip,
    up to dy columns to the right), else ``fallback``."""
    if dy == 0:
        ok = dx < 0 and x + dx >= 0
    else:
        ok = dy <= r and dx <= dy and 0 <= x + dx < img.shape[1]
    return np.int64(img[y - dy, x + dx, 0]) if ok else fallback


@numba.njit(inline="always")
def gray_hashes(img, y, x, r, nbrs, h0, hashes):
    """A one-colour image's own contexts, in place of the first colour's
    weakest (6, 8, 12, 14, 15): longer-range extrapolations of the rows,
    the columns and the diagonal, tuned on gray images only."""
    w, n, nw, ne, ww, nn = nbrs
    www = far(img, y, x, r, 0, -3, ww)
    nnn = far(img, y, x, r, 3, 0, nn)
    nne = far(img, y, x, r, 2, 1, ne)
    nnne = far(img, y, x, r, 3, 1, nne)
    hashes[6] = mix(mix(h0 + 7, clamp8(2 * n - nn)), w >> 2)
    hashes[8] = mix(mix(h0 + 9, clamp8(2 * w - ww)), n >> 2)
    hashes[12] = mix(mix(h0 + 13, clamp8(3 * n - 3 * nn + nnn)), clamp8(3 * w - 3 * ww + www) >> 1)
    hashes[14] = mix(mix(h0 + 15, w), nw)
    hashes[15] = mix(mix(h0 + 16, (w + clamp8(3 * ne - 3 * nne + nnne) + 1) >> 1), n >> 2)


@numba.njit(inline="always")
def hashes_of(img, at, nbrs, summary, has_net, hashes):
    """The hashed contexts of sub-pixel ``at`` = (y, x, r, c), r rows into
    its strip (``nbrs``: its ``neighbours``; ``summary``: the network's
    mode, mean and confidence, ``network_summary``).  They read only pixels
    coded before it: its neighbours, and its own earlier colours.  One line
    per context; the comment: files without it, larger by (module docstring)."""
    y, x, r, c = at
    w, n, nw, ne, ww, nn = nbrs
    mode, mean, conf = summary
    qa, med, grad = local(nbrs)
    h0 = (c + 1) * 0x10000
    if c == 0:
        nne = np.int64(img[y - 2, x + 1, c]) if r > 1 and x + 1 < img.shape[1] else ne
        hashes[0] = mix(mix(h0 + 1, w), n)                                          # 0: +0.267%
        hashes[1] = mix(mix(mix(h0 + 2, w), n), nw)                                 # 1: +0.047%
        hashes[2] = mix(mix(h0 + 3, n), ne)                                         # 2: +0.015%
        hashes[3] = mix(mix(h0 + 4, w), ww)                                         # 3: +0.030%
        hashes[4] = mix(mix(h0 + 5, n), nn)                                         # 4: +0.018%
        hashes[5] = mix(mix(h0 + 6, grad), qa)                                      # 5: +0.012%
        hashes[6] = mix(mix(mix(mix(h0 + 7, w >> 2), n >> 2), nw >> 2), ne >> 2)   # 6: +0.008%
        hashes[7] = mix(mix(h0 + 8, w), ne)                                         # 7: +0.014%
        hashes[8] = mix(mix(h0 + 9, mode), conf) if has_net else \
            mix(mix(h0 + 9, med), log_class(w - nw))                                # 8: +0.005%
        hashes[9] = h0 + 10                                                         # 9: +0.234%
        hashes[10] = mix(h0 + 11, clamp8(n + ne - nne))                             # 10: +0.083%
        hashes[11] = mix(h0 + 12, clamp8(w + ne - n))                               # 11: +0.055%
        hashes[12] = mix(mix(mix(mix(mix(mix(h0 + 13, w >> 4), n >> 4), nw >> 4), ne >> 4), ww >> 4),
                         nn >> 4)                                                   # 12: +0.010%
        hashes[13] = mix(mix(mix(h0 + 14, med >> 2), (w - nw) >> 3), (n - nw) >> 3)  # 13: +0.122%
        hashes[14] = mix(mix(h0 + 15, mode), mean) if has_net else \
            mix(mix(mix(h0 + 15, w), ne >> 2), nn >> 2)                             # 14: +0.009%
        hashes[15] = mix(mix(h0 + 16, mode), qa) if has_net else \
            mix(mix(mix(h0 + 16, n >> 1), w >> 1), ne >> 3)                         # 15: +0.007%
        if img.shape[2] == 1:
            gray_hashes(img, y, x, r, nbrs, h0, hashes)
    else:
        p1, p2, w1, n1, nw1, ne1, du, dn, med1 = previous_colours(img, y, x, r, c)
        hashes[0] = mix(mix(h0 + 1, p1), p2)                                        # 0: +0.267%
        hashes[1] = mix(mix(mix(h0 + 2, w), p1), p2)                                # 1: +0.047%
        hashes[2] = mix(mix(mix(h0 + 3, n), p1), p2)                                # 2: +0.015%
        hashes[3] = mix(mix(h0 + 4, clamp8(w + du)), clamp8(n + dn))                # 3: +0.030%
        hashes[4] = mix(mix(mix(h0 + 5, w), n), p1)                                 # 4: +0.018%
        hashes[5] = mix(mix(h0 + 6, ne), clamp8(n + dn))                            # 5: +0.012%
        hashes[6] = mix(mix(mix(h0 + 7, p1), w - w1 + 256), n - n1 + 256)           # 6: +0.008%
        hashes[7] = mix(mix(h0 + 8, med), p1 - med1 + 256)                          # 7: +0.014%
        hashes[8] = mix(mix(mix(h0 + 9, mode), conf), p1) if has_net else \
            mix(mix(h0 + 9, med), p1)                                               # 8: +0.005%
        hashes[9] = mix(h0 + 10, p1 >> 3)                                           # 9: +0.234%
        hashes[10] = mix(mix(h0 + 11, clamp8(nw + p1 - nw1)), clamp8(ne + p1 - ne1))  # 10: +0.083%
        hashes[11] = mix(h0 + 12, clamp8(p1 + ((w - w1 + n - n1) >> 1)))            # 11: +0.055%
        # 12: the colour differences' prediction, their activity against the colour before's, the 2x2 phase
        ad = abs(w - w1 - nw + nw1) + abs(n - n1 - nw + nw1) + abs(n - n1 - ne + ne1)
        al = abs(w1 - nw1) + abs(n1 - nw1) + abs(n1 - ne1)
        hashes[12] = mix(mix(mix(mix(h0 + 13, clamp8(p1 + ((w - w1 + n - n1) >> 1))), log_class(ad)),
                             log_class(al) >> 1), (y & 1) * 2 + (x & 1))
        if c >= 2:
            w2, n2, _, _, _, _ = neighbours(img, y, x, r, c - 2)
            hashes[13] = mix(mix(h0 + 14, clamp8(w + p2 - w2)), clamp8(n + p2 - n2))  # 13: +0.122%
        else:
            hashes[13] = mix(mix(h0 + 14, clamp8(w + du)), p1 >> 2)                 # 13: +0.122% (two colours)
        hashes[14] = mix(mix(h0 + 15, mode), clamp8(w + du)) if has_net else \
            mix(mix(mix(mix(h0 + 15, w), n), ne >> 2), p1 >> 2)                    # 14: +0.009%
        hashes[15] = mix(mix(mix(h0 + 16, mode), log_class(du)), log_class(dn)) if has_net else \
            mix(mix(h0 + 16, clamp8(med + p1 - med1)), qa)                          # 15: +0.007%


@numba.njit(inline="always")
def network_summary(counts, row, ncum, mode, mean):
    """The prefix sums ``ncum`` of the network's counts counts[row], and its
    mode, mean and confidence (0..7); ``mode`` and ``mean`` are returned as
    given when there is no network (row < 0)."""
    conf = np.int64(0)
    if row >= 0:
        ncum[0] = 0
        best = np.int64(-1)
        msum = np.int64(0)
        for v in range(256):
            cv = np.int64(counts[row, v])
            ncum[v + 1] = ncum[v] + cv
            msum += v * cv
            if cv > best:
                best = cv
                mode = v
        total = ncum[256]
        mean = (msum + (total >> 1)) // total
        conf = min(7, (best * 8) // total)
    return mode, mean, conf


@numba.njit(inline="always")
def prepare(img, pos, net, e, hashes, ncum):
    """Everything of sub-pixel e of ``pos`` that the adaptive state does
    not decide: the network's summary (ncum, and mode, mean, conf returned)
    and the hashed contexts."""
    y, x, c = np.int64(pos.ys[e]), np.int64(pos.xs[e]), np.int64(pos.cs[e])
    r = y - pos.tops[e]
    nbrs = neighbours(img, y, x, r, c)
    w, n, nw, ne, _, _ = nbrs
    summary = network_summary(net.counts, net.rows[e] if net.has_net else -1, ncum, median(w, n, nw),
                              clamp8((2 * w + 2 * n + ne - nw + 2) >> 2))
    hashes_of(img, (y, x, r, c), nbrs, summary, net.has_net, hashes)
    return summary
