"""The mixer 5's prior (``mixer/prior.py``): the tables its state starts
from are the shipped file's, pinned by the spec's digest, and a file that
is not the one the format names is refused by name, never used."""
import numpy as np
import pytest

from pixzip.codec.mixer import prior
from pixzip.codec.mixer.spec import SPEC_4, SPEC_5
from pixzip.codec.mixer.v4 import coders as coders4
from pixzip.codec.mixer.v5 import coders as coders5
from pixzip.codec.mixer.v5 import kernel as kernel5
from pixzip.errors import FormatError, PixzipError

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
