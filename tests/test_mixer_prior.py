"""The mixer 5 and 6's priors (``mixer/prior.py``): the tables their states
start from are the shipped files', pinned by the spec's digest, and a file
that is not the one the format names is refused by name, never used.  The
mixer 6's prior holds two sets; the encoder chooses one by how smooth the
image's colour is (its 2x2 phase statistic, its colour's curvature against
the green's) and names it in the payload's first byte."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixzip.codec.mixer import prior
from pixzip.codec.mixer.spec import SPEC_4, SPEC_5, SPEC_6
from pixzip.codec.mixer.v4 import coders as coders4
from pixzip.codec.mixer.v5 import coders as coders5
from pixzip.codec.mixer.v5 import kernel as kernel5
from pixzip.codec.mixer.v6 import coders as coders6
from pixzip.codec.mixer.v6 import kernel as kernel6
from pixzip.errors import CorruptError, FormatError, PixzipError

from .conftest import once_subsampled
from .test_mixer_definition import make_image, raster


def test_the_shipped_prior_is_the_one_the_spec_names():
    tables = prior.for_spec(SPEC_5)
    assert tuple(tables) == prior.FIELDS
    assert tuple(a.shape for a in tables.values()) == prior.shapes(SPEC_5)
    assert prior.content_digest(tables) == SPEC_5.prior_digest
    assert all(a.dtype == np.int32 and not a.flags.writeable for a in tables.values())
    assert prior.for_spec(SPEC_4) is None
    # learned, not the equal start: the rows differ from w1_init and from each other
    assert (tables["w1"] != SPEC_5.w1_init).mean() > 0.5 and len(np.unique(tables["w1"][:, 0])) > 100


@pytest.mark.parametrize("colours", [1, 2, 3])
def test_a_state_starts_from_the_prior_its_colours_rows_first(colours):
    tables = prior.for_spec(SPEC_5)
    st = kernel5.part(kernel5.new_states(2, 5, 6, colours, 10), 1)
    assert np.array_equal(st.w1, tables["w1"])
    assert np.array_equal(st.w2, tables["w2"][:colours * 8])
    assert np.array_equal(st.apm1, tables["apm1"][:colours * 256])
    assert np.array_equal(st.apm2, tables["apm2"][:colours * 128])
    st.w1[0, 0] += 1                  # a state's tables are its own: the prior stays as shipped
    assert prior.content_digest(prior.for_spec(SPEC_5)) == SPEC_5.prior_digest


def test_the_prior_is_what_sets_version_5_apart_from_version_4():
    """The same image and positions: version 5's bytes differ from version 4's, and are version 4's once
    version 5's state is given version 4's equal start."""
    img = make_image("smooth", 9, 11, 3, seed=3)
    pos = raster(0, 9, 11, 3)
    ys, xs, cs, tops = (np.array([p[i] for p in pos], np.int64) for i in range(4))

    def payload(cls, start=None):
        enc = cls(img, 1)
        if start is not None:
            for f in prior.FIELDS:
                getattr(enc.state, f)[0][...] = getattr(start, f)[0]
        enc.add(ys, xs, cs, tops)
        return enc.finish()
    four = payload(coders4.PartsEncoder)
    assert payload(coders5.PartsEncoder) != four
    assert payload(coders5.PartsEncoder, coders4.PartsEncoder(img, 1).state) == four


@pytest.mark.parametrize("damage", ["missing", "garbage", "one weight", "a field less", "another dtype"])
def test_a_prior_that_is_not_the_named_one_is_refused_by_name(tmp_path, monkeypatch, damage):
    tables = {f: np.array(a) for f, a in prior.for_spec(SPEC_5).items()}
    path = tmp_path / SPEC_5.prior
    if damage == "garbage":
        path.write_bytes(b"PK\x03\x04" + bytes(range(200)))
    elif damage == "one weight":
        tables["w1"][7, 3] += 1
        np.savez(path, **tables)
    elif damage == "a field less":
        np.savez(path, **{f: a for f, a in tables.items() if f != "apm2"})
    elif damage == "another dtype":
        np.savez(path, **{**tables, "w2": tables["w2"].astype(np.int64)})
    monkeypatch.setattr(prior, "HERE", tmp_path)
    with pytest.raises(FormatError, match=f"prior {path}") as e:
        prior.load.__wrapped__(SPEC_5.prior, SPEC_5.prior_digest, prior.shapes(SPEC_5))
    assert isinstance(e.value, PixzipError) and "\n" not in str(e.value)


# ---------------------------------------------------------------- the mixer 6: two sets

def test_the_mixer_6s_prior_holds_two_sets_that_differ():
    both = prior.load(SPEC_6.prior, SPEC_6.prior_digest, prior.shapes(SPEC_6))
    assert prior.sets(SPEC_6) == 2 and prior.sets(SPEC_5) == 1 and prior.sets(SPEC_4) == 0
    assert prior.content_digest(both) == SPEC_6.prior_digest
    assert tuple(a.shape for a in both.values()) == tuple((2,) + s for s in prior.shapes(SPEC_5))
    photos, once = prior.for_spec(SPEC_6, 0), prior.for_spec(SPEC_6, 1)
    assert all(not np.array_equal(photos[f], once[f]) for f in prior.FIELDS)
    with pytest.raises(ValueError):
        prior.for_spec(SPEC_6, 2)
    st = kernel6.part(kernel6.new_states(1, 5, 6, 3, 10, prior_set=1), 0)
    assert np.array_equal(st.w1, once["w1"]) and np.array_equal(st.apm2, once["apm2"])


def _sums_directly(img: np.ndarray) -> np.ndarray:
    """``phase_sums`` written plainly, position by position."""
    im = img.astype(np.int64)
    h, w = im.shape[:2]
    out = np.zeros((4, 2), np.int64)
    for i, d in enumerate((im[..., 2] - im[..., 1], im[..., 0] - im[..., 1])):
        for y in range(h):
            for x in range(1, w - 1):
                out[2 * i, x % 2] += abs(2 * d[y, x] - d[y, x - 1] - d[y, x + 1])
        for y in range(1, h - 1):
            for x in range(w):
                out[2 * i + 1, y % 2] += abs(2 * d[y, x] - d[y - 1, x] - d[y + 1, x])
    return out


def _smoothness_directly(img: np.ndarray) -> np.ndarray:
    """``smoothness_sums`` written plainly, position by position."""
    im = img.astype(np.int64)
    h, w = im.shape[:2]
    out = np.zeros((3, 2), np.int64)
    for i, p in enumerate((im[..., 2] - im[..., 1], im[..., 0] - im[..., 1], im[..., 1])):
        for y in range(h):
            for x in range(w):
                if 0 < x < w - 1:
                    out[i, 0] += (2 * p[y, x] - p[y, x - 1] - p[y, x + 1]) ** 2
                if 0 < y < h - 1:
                    out[i, 0] += (2 * p[y, x] - p[y - 1, x] - p[y + 1, x]) ** 2
                if x:
                    out[i, 1] += (p[y, x] - p[y, x - 1]) ** 2
                if y:
                    out[i, 1] += (p[y, x] - p[y - 1, x]) ** 2
    return out


@settings(max_examples=30, deadline=None, database=None)
@given(h=st.integers(1, 19), w=st.integers(1, 17), block=st.integers(1, 8), seed=st.integers(0, 2 ** 16))
def test_the_choices_sums_are_the_plain_ones_in_blocks_of_any_rows(h, w, block, seed):
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    assert np.array_equal(prior.phase_sums(img, block), _sums_directly(img))
    assert np.array_equal(prior.smoothness_sums(img, block), _smoothness_directly(img))


def _colour_blurred(img: np.ndarray) -> np.ndarray:
    """An RGB image whose colour differences (R - G, B - G) are averaged over 3x3 neighbourhoods twice, the
    green kept: colour smoothed alike at every position of the grid, as a JPEG decoder's 4:2:0 colour is."""
    out = img.astype(np.int64)
    g = out[..., 1]
    h, w = g.shape
    for c in (0, 2):
        mean = out[..., c] - g
        for _ in range(2):
            d = np.pad(mean, 1, mode="edge")
            mean = sum(d[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)) // 9
        out[..., c] = np.clip(g + mean, 0, 255)
    return out.astype(np.uint8)


def test_the_encoder_chooses_the_set_of_smooth_colour_for_colour_smoothed_by_any_filter():
    img = make_image("noise", 48, 64, 3, seed=7)
    assert prior.choose(img, SPEC_6) == 0
    blurred = _colour_blurred(img)
    s = prior.phase_sums(blurred)
    assert max(max(a, b) / max(1, min(a, b)) for a, b in s.tolist()) < 1.1      # no phase to see
    assert prior.choose(blurred, SPEC_6) == 1
    assert prior.choose(blurred, SPEC_5) == 0


@pytest.mark.parametrize("kind", ["smooth", "noise"])
def test_the_encoder_chooses_the_set_of_colour_once_subsampled_only_for_such_colour(kind):
    img = make_image(kind, 24, 30, 3, seed=5)
    assert prior.choose(img, SPEC_6) == 0
    assert prior.choose(once_subsampled(img), SPEC_6) == 1
    assert prior.choose(once_subsampled(img), SPEC_5) == 0           # one set: nothing to choose
    gray = np.repeat(img[..., :1], 3, axis=2)                        # no colour: both phases' sums 0
    for flat in (gray, np.zeros((1, 1, 3), np.uint8), np.zeros((2, 2, 3), np.uint8), np.zeros((1, 40, 3), np.uint8)):
        assert prior.choose(flat, SPEC_6) == 0
    assert prior.choose(img[..., :1], SPEC_6) == 0                   # one colour


def _coded(img, cls, parts=1):
    h, w, c = img.shape
    pos = raster(0, h, w, c)
    ys, xs, cs, tops = (np.array([p[i] for p in pos], np.int64) for i in range(4))
    enc = cls(img, parts)
    enc.add(ys, xs, cs, tops)
    return enc.finish(), (ys, xs, cs, tops)


def _decoded(data, shape, where):
    """The decoder's image, one sub-pixel per call (in raster order each reads the ones before)."""
    dec = coders6.PartsDecoder(data, *shape)
    for e in range(len(where[0])):
        dec.take(*(a[e:e + 1] for a in where))
    return dec.prior_set, dec.finish()


@pytest.mark.parametrize("parts", [1, 2])
def test_the_payload_names_its_set_and_the_decoder_starts_from_it(monkeypatch, parts):
    img = once_subsampled(make_image("smooth", 10, 12, 3, seed=8))
    data, where = _coded(img, coders6.PartsEncoder, parts)
    assert data[0] == 1
    which, out = _decoded(data, img.shape, where)
    assert which == 1 and np.array_equal(out, img)
    # the same image from the photos' set: other bytes, the same pixels
    monkeypatch.setattr(prior, "choose", lambda pixels, spec: 0)
    other, _ = _coded(img, coders6.PartsEncoder, parts)
    assert other[0] == 0 and other[1:] != data[1:]
    which, out = _decoded(other, img.shape, where)
    assert which == 0 and np.array_equal(out, img)
    # version 6 from set 0 is version 5 with set 0's tables: a payload of version 5's layout after the byte
    assert other[1] == parts


def _unsure(seed: int, subsampled: int = 1) -> np.ndarray:
    """An image between colour as it is and once subsampled (weights 1 and ``subsampled``): its phase
    statistic in ``prior.PHASE_UNSURE``."""
    img = make_image("noise", 24, 30, 3, seed=seed)
    mixed = img.astype(np.int64) + subsampled * once_subsampled(img).astype(np.int64)
    return (mixed // (1 + subsampled)).astype(np.uint8)


def test_the_encoder_tries_both_sets_only_where_the_phase_is_unsure():
    for seed, subsampled in ((0, 1), (1, 1), (2, 1), (0, 2), (1, 2)):
        img = _unsure(seed, subsampled)
        assert 1.16 < prior.phase_ratio(img) <= 1.45
        assert prior.candidates(img, SPEC_6) == (prior.choose(img, SPEC_6), 1 - prior.choose(img, SPEC_6))
        assert prior.candidates(img, SPEC_5) == (0,)                     # one set: nothing to try
        sure = make_image("noise", 24, 30, 3, seed=seed)
        for one in (sure, once_subsampled(sure), sure[..., :1], np.zeros((1, 1, 3), np.uint8)):
            assert prior.candidates(one, SPEC_6) == (prior.choose(one, SPEC_6),)


@pytest.mark.parametrize("seed, subsampled, other_wins", [(0, 1, False), (0, 2, True), (1, 2, True)])
def test_where_unsure_the_file_is_the_smaller_of_both_sets_and_decodes(seed, subsampled, other_wins, monkeypatch):
    from pixzip.codec import api as codec
    from pixzip.codec.network.modelfile import ModelFile
    from .test_golden import RGB
    net = ModelFile.load(RGB)
    img = _unsure(seed, subsampled)
    made = codec.compress(img, net, payload="mixer+network")
    assert np.array_equal(codec.decompress(made, net), img)
    choose = prior.choose
    each = []
    for s in (0, 1):
        monkeypatch.setattr(prior, "choose", lambda pixels, spec, s=s: s)
        monkeypatch.setattr(prior, "candidates", lambda pixels, spec, s=s: (s,))
        each.append(codec.compress(img, net, payload="mixer+network"))
        assert np.array_equal(codec.decompress(each[-1], net), img)
    assert each[0] != each[1]
    first = choose(img, SPEC_6)
    smaller = min((each[first], each[1 - first]), key=len)       # the first where they tie
    assert made == smaller
    assert (made != each[first]) == other_wins      # both ways are taken (these images, the golden model)


@pytest.mark.parametrize("first", [2, 3, 255])
def test_a_payload_naming_a_set_the_prior_lacks_is_refused(first):
    img = make_image("smooth", 6, 7, 3, seed=1)
    data, _ = _coded(img, coders6.PartsEncoder)
    with pytest.raises(CorruptError, match=f"prior set {first}"):
        coders6.PartsDecoder(bytes([first]) + data[1:], *img.shape)
    with pytest.raises(CorruptError, match="empty"):
        coders6.PartsDecoder(b"", *img.shape)
