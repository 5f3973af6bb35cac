"""Every released mixer spec keeps its bytes, under its own coder id.

The rule (``pixzip/codec/mixer/__init__.py``, ``tests/data/README.md``): any
change to a mixer byte, whether a context, a map, a rate or a table's
layout, is a new spec version (``mixer/spec.py``) and a new coder id
(``container.CODERS``), and every released spec stays decodable.
``tests/data/mixer-versions.json`` records, per released coder id, its spec's
digest and the sha256 of the bytes it makes of a few small fixed images (the
mixer alone; with made-up network counts; in column parts).  A new coder id
is recorded with ``python tests/test_mixer_versions.py --record``, which adds
ids and never rewrites a recorded one.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from pixzip.codec.format import container
from pixzip.codec.mixer import column_parts, one_state
from pixzip.codec.mixer.spec import RELEASED
from pixzip.codec.mixer.v2 import coders as v2
from pixzip.codec.mixer.v3 import coders as v3
from pixzip.codec.mixer.v4 import coders as v4
from pixzip.codec.mixer.v5 import coders as v5
from pixzip.codec.mixer.v6 import coders as v6

# each released coder id's (one-state encoder, decoder) or (column parts' encoder, decoder)
CLASSES = {container.MIXER_CODER: (one_state.Encoder, one_state.Decoder),
           container.PARTS_CODER: (column_parts.Encoder, column_parts.Decoder),
           container.MIXER2_CODER: (v2.OneStateEncoder, v2.OneStateDecoder),
           container.PARTS2_CODER: (v2.PartsEncoder, v2.PartsDecoder),
           # coder 7 is coder 6's mixer over other counts (an RGB network's of a gray image): the same mixer
           # bytes for the same counts; the golden files pin what counts it takes
           container.GRAY_PARTS2_CODER: (v2.PartsEncoder, v2.PartsDecoder),
           container.MIXER3_CODER: (v3.OneStateEncoder, v3.OneStateDecoder),
           container.PARTS3_CODER: (v3.PartsEncoder, v3.PartsDecoder),
           container.PARTS4_CODER: (v4.PartsEncoder, v4.PartsDecoder),
           container.PARTS5_CODER: (v5.PartsEncoder, v5.PartsDecoder),
           container.PARTS6_CODER: (v6.PartsEncoder, v6.PartsDecoder)}
ONE_STATE = (container.MIXER_CODER, container.MIXER2_CODER, container.MIXER3_CODER)

RECORD = Path(__file__).parent / "data" / "mixer-versions.json"
RULE = ("a mixer byte changed: any change to a mixer byte is a new spec version (mixer/spec.py) and a new coder "
        "id (container.CODERS), and every released spec stays decodable; keep the old kernel, add the new id "
        "with `python tests/test_mixer_versions.py --record`")


def synthetic(height: int, width: int, colours: int) -> np.ndarray:
    """A fixed image with edges, gradients and integer noise (no random generator)."""
    y, x, c = np.meshgrid(np.arange(height), np.arange(width), np.arange(colours), indexing="ij")
    noise = (x * 2654435761 + y * 40503 + c * 9973) % 17
    return ((x * 9 + y * 5 + c * 60 + (x > width // 2) * 90 + noise) % 256).astype(np.uint8)


def made_up_counts(n: int) -> np.ndarray:
    """A network's counts (one row per sub-pixel): a peak that moves, on a floor."""
    v = np.arange(256)
    centre = (np.arange(n)[:, None] * 37) % 256
    return (1 + 4000 // (1 + np.abs(v[None, :] - centre))).astype(np.int64)


IMAGES = {"rgb": (12, 10, 3), "gray": (9, 7, 1)}
# and, for the coders whose prior holds sets (the mixer 6), an image whose colour was once subsampled: set 1
SUBSAMPLED = {"rgb-420": (12, 10, 3)}
PRIOR_SETS = (container.PARTS6_CODER,)


def images_of(coder: int) -> dict:
    return {**IMAGES, **SUBSAMPLED} if coder in PRIOR_SETS else IMAGES


def picture(name: str, shape) -> np.ndarray:
    if __package__:
        from .conftest import once_subsampled
    else:                           # run as a script (--record): this folder is on the path
        from conftest import once_subsampled
    return once_subsampled(synthetic(*shape)) if name in SUBSAMPLED else synthetic(*shape)


def encode(coder: int, case: str, shape, name: str = "rgb") -> bytes:
    img = picture(name, shape)
    h, w, c = shape
    pos = one_state.raster_positions(0, h, w, c)
    counts = made_up_counts(h * w * c) if case == "counts" else None
    if coder in ONE_STATE:
        enc = CLASSES[coder][0](img)
        if counts is None:
            enc.add_image()
        else:
            enc.add(*pos, counts)
        return enc.finish()
    enc = CLASSES[coder][0](img, 2)
    enc.add(*pos, counts)
    return enc.finish()


def decode(coder: int, case: str, shape, data: bytes) -> np.ndarray:
    """One sub-pixel per call, in the encoder's order (any order the encoder used decodes)."""
    h, w, c = shape
    ys, xs, cs, tops = one_state.raster_positions(0, h, w, c)
    counts = made_up_counts(h * w * c) if case == "counts" else None
    dec = CLASSES[coder][1](data, h, w, c)
    for e in range(len(ys)):
        at = slice(e, e + 1)
        dec.take(ys[at], xs[at], cs[at], tops[at], None if counts is None else counts[at])
    return dec.finish()


CASES = {coder: ("alone", "counts") for coder in CLASSES}


def measured() -> dict:
    out = {}
    for coder, spec in sorted(RELEASED.items()):
        out[str(coder)] = {"spec": json.loads(spec.canonical()), "spec_digest": spec.digest(), "bytes": {
            f"{case}-{name}": hashlib.sha256(encode(coder, case, shape, name)).hexdigest()
            for case in CASES[coder] for name, shape in images_of(coder).items()}}
    return out


@pytest.fixture(scope="module")
def now():
    return measured()


def recorded() -> dict:
    return json.loads(RECORD.read_text())["coders"]


def test_every_released_coder_id_is_recorded_and_known_to_the_container():
    assert sorted(recorded()) == sorted(str(c) for c in RELEASED), RULE
    for coder in RELEASED:
        assert coder in container.CODERS and any(coder in ids for ids in container.KIND_CODERS.values())


def test_a_released_spec_never_changes(now):
    for coder, rec in recorded().items():
        assert now[coder]["spec_digest"] == rec["spec_digest"], f"coder {coder}: {RULE}"


def test_a_mixer_byte_change_needs_a_new_coder_id(now):
    for coder, rec in recorded().items():
        for case, digest in rec["bytes"].items():
            assert now[coder]["bytes"][case] == digest, f"coder {coder}, {case}: {RULE}"


@pytest.mark.parametrize("coder", sorted(RELEASED))
@pytest.mark.parametrize("case", ["alone", "counts"])
def test_every_released_coder_decodes_what_it_made(coder, case):
    for name, shape in images_of(coder).items():
        if shape[2] == 3:
            data = encode(coder, case, shape, name)
            if coder in PRIOR_SETS:          # the prior's set, named by the payload's first byte
                assert data[0] == (name in SUBSAMPLED)
            assert np.array_equal(decode(coder, case, shape, data), picture(name, shape))


def record() -> None:
    """Add the released coder ids not yet recorded; a recorded one is never rewritten."""
    old = json.loads(RECORD.read_text()) if RECORD.exists() else {"coders": {}}
    new = measured()
    for coder, entry in new.items():
        if coder in old["coders"] and old["coders"][coder] != entry:
            sys.exit(f"coder {coder} is recorded with other bytes or another spec: {RULE}")
        old["coders"].setdefault(coder, entry)
    old["rule"] = RULE.split(": ", 1)[1]
    RECORD.write_text(json.dumps(old, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        record()
