"""Version 2's online least-squares predictors (``pixzip/codec/mixer/v2/ols.py``):
int64 arithmetic over an int32 state that never overflows (checked against Python's unbounded
integers with extreme inputs), within its stated bounds, close to a float64
solver, reading only pixels known in both stream orders."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixzip.codec.mixer.v2 import ols

U = 65026       # bound 1: |A_ij|, |b_i| < U * 2^s


def _py_update(a, b, f, t, s):
    n = len(f)
    for i in range(n):
        for j in range(i, n):
            a[i][j] = a[i][j] - (a[i][j] >> s) + f[i] * f[j]
        b[i] = b[i] - (b[i] >> s) + f[i] * t


def _py_solve(a, b, ridge, s):
    """``ols.solve`` in Python's unbounded integers, and the largest magnitude met inside."""
    n = len(b)
    m = [[a[i][j] + (ridge << s if i == j else 0) for j in range(n)] for i in range(n)]
    v = list(b)
    top = max([1] + [abs(m[i][j]) for i in range(n) for j in range(i, n)] + [abs(x) for x in v])
    sh = 0
    while (top << (sh + 1)) < ols.ENTRY_MAX:
        sh += 1
    m = [[x << sh for x in row] for row in m]
    v = [x << sh for x in v]
    big = 0

    def clamp(x, lim):
        return min(lim, max(-lim, x))

    def div(num, den):
        return (num + (den >> 1)) // den
    for i in range(n):
        piv = m[i][i]
        mx = max([0] + [abs(m[i][j]) for j in range(i + 1, n)])
        if piv <= 0 or mx > piv << 32:
            m[i][i] = 0
            continue
        q = 30
        while q > 0 and (mx << q) > (piv << 32):
            q -= 1
        half = (1 << q) >> 1
        for j in range(i + 1, n):
            if m[i][j] == 0:
                continue
            big = max(big, abs(m[i][j] << q), abs(piv << 32))
            lj = div(m[i][j] << q, piv)
            for k in range(j, n):
                big = max(big, abs(lj * m[i][k] + half))
                m[j][k] = clamp(m[j][k] - ((lj * m[i][k] + half) >> q), ols.ENTRY_MAX)
            big = max(big, abs(lj * v[i] + half))
            v[j] = clamp(v[j] - ((lj * v[i] + half) >> q), ols.ENTRY_MAX)
    w = [0] * n
    for i in range(n - 1, -1, -1):
        piv = m[i][i]
        if piv <= 0:
            continue
        num = v[i] << ols.W_ONE
        for j in range(i + 1, n):
            num -= m[i][j] * w[j]
        big = max(big, abs(num))
        w[i] = clamp(div(num, piv), ols.W_MAX)
    return w, big


_extreme = st.sampled_from([-255, 255, 0, 1, -1, 254, -254])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, ols.OLS_N), s=st.integers(1, 12), ridge=st.sampled_from([0, 1, 4, 256]),
       steps=st.integers(1, 60), data=st.data())
def test_the_solver_never_overflows_and_stays_within_its_bounds_on_extreme_inputs(n, s, ridge, steps, data):
    """The compiled update and solve equal the same arithmetic in unbounded integers, whose every
    value stays within the bounds the module's docstring proves (so neither the int32 state nor the
    int64 arithmetic ever wrapped: s up to 12 reaches bound 1's 2^28)."""
    rows = data.draw(st.lists(st.tuples(st.lists(_extreme | st.integers(-255, 255), min_size=n, max_size=n),
                                        _extreme), min_size=steps, max_size=steps))
    state = ols.new_ols(1)[0, 0]
    work = np.zeros((ols.OLS_N + 1, ols.OLS_N), np.int64)
    a = [[0] * n for _ in range(n)]
    b = [0] * n
    f = np.zeros(ols.OLS_N, np.int32)
    for feats, t in rows:
        f[:n] = feats
        ols.update(state, f, n, t, s)
        _py_update(a, b, feats, t, s)
    # a long run of the largest products, where bound 1 is reached
    for _ in range(data.draw(st.sampled_from([0, 4 << s]))):
        f[:n] = 255
        ols.update(state, f, n, -255, s)
        _py_update(a, b, [255] * n, -255, s)
    ols.solve(state, n, ridge, s, work)
    w, big = _py_solve(a, b, ridge, s)
    assert [[int(state[i, j]) for j in range(i, n)] for i in range(n)] == [a[i][i:] for i in range(n)]
    assert [int(v) for v in state[ols.ROW_B, :n]] == b
    assert [int(v) for v in state[ols.ROW_W, :n]] == w
    assert max(abs(x) for row in a for x in row) < U << s and max(abs(x) for x in b) < U << s
    assert max(abs(x) for x in w) <= ols.W_MAX
    assert big < 1 << 63


def test_the_count_of_updates_wraps_and_keeps_its_residue():
    """The int32 state keeps its count of updates modulo 2^30: a multiple of every solve interval, so a
    predictor solves on the same updates for ever (a 2^30-update photo's predictors, not wrapped, would
    overflow int32 at 2^31)."""
    state = ols.new_ols(1)[0, 0]
    f = np.zeros(ols.OLS_N, np.int32)
    state[ols.ROW_COUNT, 0] = ols.COUNT_WRAP - 2
    seen = []
    for _ in range(4):
        ols.update(state, f, 3, 0, 6)
        seen.append(int(state[ols.ROW_COUNT, 0]))
    assert seen == [ols.COUNT_WRAP - 1, 0, 1, 2]
    assert all(ols.COUNT_WRAP % int(e) == 0 for e in ols.EVERY.flat)


def test_the_integer_solver_agrees_with_a_float64_one():
    """On correlated inputs like a photo's, the integer weights' predictions are those of float64's
    (the forgetting and the ridge the same) to within one level, and mostly equal."""
    rng = np.random.default_rng(5)
    n, s, ridge = 10, 8, 4
    lam = 1 - 2.0 ** -s
    state = ols.new_ols(1)[0, 0]
    work = np.zeros((ols.OLS_N + 1, ols.OLS_N), np.int64)
    fa, fb = np.zeros((n, n)), np.zeros(n)
    true = rng.normal(0, 0.3, n)
    base = rng.normal(0, 20, 4000)
    same = close = total = 0
    fw = np.zeros(n)
    f = np.zeros(ols.OLS_N, np.int32)
    for step in range(4000):
        feats = np.clip(np.round(base[step] + rng.normal(0, 6, n)), -255, 255).astype(np.int64)
        t = int(np.clip(round(feats @ true + rng.normal(0, 3)), -255, 255))
        f[:n] = feats
        if step > 200:
            pi = (int(feats @ state[ols.ROW_W, :n]) + (1 << 15)) >> 16
            pf = int(np.floor(feats @ fw + 0.5))
            total += 1
            same += pi == pf
            close += abs(pi - pf) <= 1
        ols.update(state, f, n, t, s)
        fa = lam * fa + np.outer(feats, feats)
        fb = lam * fb + feats * t
        if (step + 1) % 4 == 0:
            ols.solve(state, n, ridge, s, work)
            fw = np.clip(np.linalg.solve(fa + (ridge << s) * np.eye(n), fb), -16, 16)
    assert close == total and same > 0.95 * total


def test_a_plane_is_learnt_exactly():
    """On a plane (slopes 2 and 1 per pixel), every predictor's error goes to at most 1 after a few rows."""
    h, w = 24, 40
    for colours in (1, 3):
        img = (np.add.outer(2 * np.arange(h), np.arange(w))[:, :, None] + 7 * np.arange(colours)).astype(np.uint8)
        state = ols.new_ols(colours)
        oerr = np.zeros((h, w, colours, ols.N_OLS), np.int16)
        feats = np.zeros((ols.N_OLS, ols.OLS_N), np.int32)
        refs = np.zeros(ols.N_OLS, np.int64)
        preds, ctxs = np.zeros(ols.OLS_MAPS, np.int64), np.zeros(ols.OLS_MAPS, np.int64)
        work = np.zeros((ols.OLS_N + 1, ols.OLS_N), np.int64)
        for y in range(h):
            for x in range(w):
                for c in range(colours):
                    ref = int(img[y, x - 1, c]) if x else (int(img[y - 1, x, c]) if y else 128)
                    ols.ols_predictions(state, oerr, img, y, y, y - 1, x, y, c, ref, feats, refs, preds, ctxs, 0)
                    ols.ols_learn(state, oerr, y, y, x, c, int(img[y, x, c]), feats, refs, preds, work)
        assert np.abs(oerr[h // 2:, 4:]).max() <= 1
        assert ctxs.max() < 64


def test_every_input_is_a_pixel_known_in_both_stream_orders():
    """Row y: only pixels to the left; row y - dy: at most dy columns to the right (the network's
    reach is at least 1 column per row); the earlier colours' inputs only where c > kind."""
    for g in range(3):
        for k in range(ols.N_OLS):
            for kind, dy, dx in ols.FEATURES[g, k, :ols.N_FEATURES[g, k]]:
                assert 0 <= kind <= 2 and 0 <= dy <= 3
                assert dx < 0 if dy == 0 else dx <= dy
                assert g == ols.LATER or kind == 0
                if kind == 0:
                    assert (dy, dx) != (0, -1)      # W is the reference
