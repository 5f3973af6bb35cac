"""The exactness contract (DESIGN §2): the decoder's per-step counts equal the
encoder's full-pass counts, and the integers do not change with tiling, batch
size or thread count."""
import numba
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pixzip.codec import api as codec
from pixzip.codec.contract import ACT_MAX, GATE_LIMIT
from pixzip.codec.network.integer_torch import network as ref
from pixzip.codec.network.integer_torch import requant_scalar
from pixzip.codec.network.dec_wavefront import decode_image

from .conftest import tiny_int_model


def image(h, w, c, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


@pytest.mark.parametrize("colors,layers,kernel", [(3, 2, 3), (1, 3, 5), (3, 3, 5), (3, 1, 7)])
@pytest.mark.parametrize("shape", [(9, 13), (1, 6), (6, 1), (12, 4), (5, 67)])
def test_decoder_steps_equal_full_pass(colors, layers, kernel, shape):
    """Also on an image wider than the decoder's column ring, which wraps."""
    net = tiny_int_model(colors, layers, kernel)
    img = image(*shape, colors, seed=layers)
    x = torch.from_numpy(img)
    full = ref(net).counts(ref(net).logits(x[None]))[0]
    seen = torch.zeros(shape + (colors,), dtype=torch.bool)

    def teacher(counts, rows, cols, c):
        assert counts.dtype == np.float64
        assert np.array_equal(counts, full[rows, cols, c].numpy()), \
            f"counts differ at rows {rows} cols {cols} colour {c}"
        seen[rows, cols, c] = True
        return img[rows, cols, c]

    out = decode_image(net, *shape, teacher)
    assert seen.all(), "every sub-pixel must be decoded exactly once"
    assert np.array_equal(out, img)


def test_tiling_and_batch_do_not_change_integers():
    net = tiny_int_model(3, 3, 5)
    imgs = torch.from_numpy(np.stack([image(23, 17, 3, s) for s in range(3)]))
    whole = ref(net).counts(ref(net).logits(imgs))
    for b in range(3):
        single = ref(net).counts(ref(net).logits(imgs[b:b + 1]))[0]
        assert torch.equal(single, whole[b])
        for strip in (1, 2, 5, 8, 23):
            tiled = torch.cat([ref(net).strip_counts(imgs[b], a, min(23, a + strip)) for a in range(0, 23, strip)])
            assert torch.equal(tiled, whole[b]), f"strip {strip}"


@pytest.mark.parametrize("strip_height", [0, 3])
def test_threads_do_not_change_integers_or_files(strip_height):
    """torch and numba thread counts; with strips a decoder step has more
    positions than one thread task takes, so the steps are split differently."""
    net = tiny_int_model(3, 2, 3)
    img = image(30, 26, 3, 9)
    old, old_nb = torch.get_num_threads(), numba.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            results.append((ref(net).logits(torch.from_numpy(img)[None]),
                            codec.compress(img, net, payload="network",
                                           options=codec.Options(strip_height=strip_height))))
        assert torch.equal(results[0][0], results[1][0])
        assert results[0][1] == results[1][1]
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            assert np.array_equal(codec.decompress(results[0][1], net), img)
    finally:
        torch.set_num_threads(old)
        numba.set_num_threads(old_nb)


@pytest.mark.parametrize("colors,layers,kernel", [(1, 2, 3), (3, 3, 5)])
def test_strip_size_of_encoder_does_not_change_the_file(colors, layers, kernel):
    """Each encoder block continues from the vertical stack's last k2 rows of
    the block above, also when a block is shorter than k2 rows."""
    net = tiny_int_model(colors, layers, kernel)
    img = image(21, 9, colors, 4)
    files = {codec.compress(img, net, payload="network", options=codec.Options(strip_rows=s)) for s in (1, 3, 4, 32)}
    assert len(files) == 1
    assert np.array_equal(codec.decompress(files.pop(), net), img)


def test_float32_accumulation_matches_int64_reference():
    """Every layer, at its worst-case inputs and at random ones, gives the
    integer (int64) reference result: the float32/float64 accumulation and the
    float64 requantization are exact under the export bounds."""
    net = tiny_int_model(3, 3, 5)
    t, cfg = net.tensors, net.config
    r = ref(net)
    layers = {f"{kind}.{l}": getattr(r, kind)[l] for kind in ("v_conv", "link", "h_conv", "skip", "h_out")
              for l in range(3)}
    layers.update(head1=r.head1, head2=r.head2)
    for name, lin in layers.items():
        assert (cfg.bound[name] < 2 ** 24) == (len(lin.chunks) == 1 and not lin.split), name
        w = lin.weight.to(torch.int64)          # the layer's own input order (conv taps are reordered)
        assert sorted(w.flatten().tolist()) == sorted(t[name + ".w"].astype(np.int64).flatten().tolist())
        b = torch.from_numpy(t[name + ".b"])
        m = torch.from_numpy(t[name + ".m"])
        shift = cfg.shift[name]
        limit = GATE_LIMIT if name.startswith("link") else (255 if name in ("v_conv.0", "h_conv.0") else ACT_MAX)
        worst = torch.sign(w) * limit                      # row o maximises |acc| of output o
        a = torch.cat([worst, -worst, torch.randint(-limit, limit + 1, (32, w.shape[1]))])
        want = ((a @ w.T + b) * m + (1 << (shift - 1))) >> shift
        assert torch.equal(lin(a).to(torch.int64), want), name


@pytest.mark.parametrize("max_in,k", [(ACT_MAX, 400), (GATE_LIMIT, 300), (GATE_LIMIT, 3)])
def test_layers_past_the_float32_bound_are_split_exactly(max_in, k):
    """A layer whose sums can pass 2^24 is chunked (and its inputs split into
    digits when that saves chunks); at worst-case inputs it still gives the
    int64 reference."""
    from pixzip.codec.network.integer_torch import IntLinear
    rng = np.random.default_rng(k)
    w = rng.integers(-511, 512, (24, k))
    w[:, 0] = 511
    b = rng.integers(-1000, 1000, 24)
    m = rng.integers(1, 1 << 20, 24)
    shift = 30
    lin = IntLinear(w, b, m, shift, max_in)
    bound = float((np.abs(w).sum(1) * max_in).max())
    assert (len(lin.chunks) > 1 or lin.split) == (bound >= 2 ** 24)
    wt = torch.from_numpy(w)
    worst = torch.sign(wt) * max_in
    a = torch.cat([worst, -worst, torch.randint(-max_in, max_in + 1, (16, k))])
    want = ((a @ wt.T + torch.from_numpy(b)) * torch.from_numpy(m) + (1 << (shift - 1))) >> shift
    assert torch.equal(lin(a).to(torch.int64), want)


def test_requantization_rounds_half_up_on_negatives():
    x = torch.tensor([-5, -4, -3, -1, 0, 1, 3, 4, 5])
    # multiply by 1/2: round half up, arithmetic shift
    assert requant_scalar(x, 1, 1).tolist() == [-2, -2, -1, 0, 0, 1, 2, 2, 3]


@pytest.mark.parametrize("h,w,lag", [(1, 1, 3), (5, 2, 4), (3, 9, 2), (7, 7, 1)])
def test_schedule_visits_every_pixel_once_when_ready(h, w, lag):
    from pixzip.codec.network.schedule import n_steps, plan

    done = np.zeros((h, w), dtype=bool)
    for t, _, rows, cols, _ in plan(h, w, lag, 1, h, 0, n_steps(h, w, lag)):
        for i, j in zip(rows, cols):
            # ready: row above decoded up to j + lag - 1, own row up to j - 1
            assert i == 0 or done[i - 1, :min(w, j + lag)].all()
            assert done[i, :j].all() and not done[i, j]
        done[rows, cols] = True
    assert done.all()


@pytest.mark.parametrize("strip_height", [1, 2, 5, 9, 40])
def test_strips_are_independent_images_decoded_in_lockstep(strip_height):
    """With strips, each strip's counts are those of the strip coded alone,
    and the file round-trips."""
    net = tiny_int_model(3, 2, 3)
    img = image(13, 10, 3, 6)
    x = torch.from_numpy(img)
    full = torch.cat([ref(net).counts(ref(net).logits(x[None, a:a + strip_height]))[0]
                      for a in range(0, 13, strip_height)])

    def teacher(counts, rows, cols, c):
        assert np.array_equal(counts, full[rows, cols, c].numpy())
        return img[rows, cols, c]

    assert np.array_equal(decode_image(net, 13, 10, teacher, strip_height=strip_height), img)
    data = codec.compress(img, net, payload="network", options=codec.Options(strip_height=strip_height))
    assert codec.read_header(data).strip_height == strip_height
    assert np.array_equal(codec.decompress(data, net), img)


@pytest.mark.parametrize("colors,layers,kernel", [(3, 2, 3), (1, 3, 5), (3, 3, 5)])
@pytest.mark.parametrize("start,stop", [(0, 11), (0, 1), (4, 11), (9, 10)])
def test_encoder_kernel_equals_full_pass(colors, layers, kernel, start, stop):
    """The encoder's compiled pass over a block of rows (with its halo), and
    its head run on the positions in any order, give the counts of the
    reference full pass over the whole image."""
    from pixzip.codec.network.kernels.encoder import counts, row_heads
    from pixzip.codec.network.kernels.program import program
    net = tiny_int_model(colors, layers, kernel)
    img = image(11, 7, colors, seed=start)
    full = ref(net).counts(ref(net).logits(torch.from_numpy(img)[None]))[0].numpy()
    prog = program(net)
    heads = row_heads(prog, img, start, stop)[None]
    n = (stop - start) * 7
    order = np.random.default_rng(stop).permutation(n * colors).reshape(n, colors)
    rows, cols = np.divmod(np.arange(n), 7)
    got = counts(prog, heads, np.zeros(n, np.int64), rows, cols, order, n * colors)
    assert np.array_equal(got[order], full[start:stop].reshape(n, colors, 256))


@pytest.mark.parametrize("colors,layers,kernel,strip_height", [(3, 2, 3, 0), (1, 3, 5, 4)])
def test_torch_encoder_path_writes_the_same_file(colors, layers, kernel, strip_height):
    """The encoder's PyTorch full pass (what runs on a GPU) and its compiled
    CPU kernels give the same head inputs, hence the same file."""
    net = tiny_int_model(colors, layers, kernel)
    img = image(19, 23, colors, seed=kernel)
    files = {codec.compress(img, net, payload="network",
                            options=codec.Options(strip_rows=s, strip_height=strip_height, device=d))
             for d in ("cpu", "torch") for s in (5, 32)}
    assert len(files) == 1
    assert np.array_equal(codec.decompress(files.pop(), net), img)


def test_decoder_memory_grows_with_the_width_not_its_square():
    """Rows alive at once grow with the width (W/lag), so buffers of whole
    rows would grow with W^2; the decoder keeps only a few steps of outputs
    of the rows alive (``kernels.decoder.slots``).  Measured: doubling the
    width multiplies the peak by 1.80 (0.13.3's rings of columns: 1.96;
    buffers of whole rows: 2.95)."""
    import tracemalloc
    net = tiny_int_model(3, 2, 3)
    decode_image(net, 2, 2, lambda counts, rows, cols, c: np.zeros(len(rows), np.int64))   # load the kernels
    peaks = []
    for w in (100, 200):
        img = image(200, w, 3, seed=w)

        def teacher(counts, rows, cols, c):
            return img[rows, cols, c]

        tracemalloc.start()
        out = decode_image(net, 200, w, teacher)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert np.array_equal(out, img)
    assert peaks[1] / peaks[0] < 2.4, peaks


@given(st.integers(1, 12), st.integers(1, 12), st.integers(1, 6), st.integers(1, 4), st.integers(0, 3),
       st.integers(1, 5))
@settings(max_examples=60, deadline=None)
def test_the_step_plan_is_the_schedule(S, w, lag, n_strips, short, chunk):
    """schedule.plan gives, step by step, the (strip, row) pairs of the rows
    whose columns j..j+ahead meet the image (ahead 0: the decoded rows; > 0:
    the vertical frontier's), strip-major, the shorter last strip cut."""
    from pixzip.codec.network.schedule import n_steps, plan

    last = max(1, S - short) if n_strips > 1 else S   # only the last of several strips is shorter
    for ahead in (0, 3):
        start, stop = -ahead, n_steps(S, w, lag)
        got = list(plan(S, w, lag, n_strips, last, start, stop, ahead, chunk))
        assert [g[0] for g in got] == list(range(start, stop))
        for t, b, i, j, rows in got:
            local = [r for r in range(S) if t - r * lag <= w - 1 and t - r * lag + ahead >= 0]
            pairs = [(k, r) for k in range(n_strips) for r in local if k < n_strips - 1 or r < last]
            eb = np.array([k for k, _ in pairs], np.int64)
            ei = np.array([r for _, r in pairs], np.int64)
            assert np.array_equal(b, eb) and np.array_equal(i, ei), (t, ahead)
            assert np.array_equal(j, t - i * lag) and np.array_equal(rows, b * S + i)
