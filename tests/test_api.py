"""The public API: one pure plan of what ``compress`` makes, one table of
coders for every payload, archives byte-identical to those made before the
table, and the old names still working, with a note."""
import dataclasses
import hashlib
import inspect
import itertools
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import pixzip
from pixzip.cli.main import main
from pixzip.codec import api as codec
from pixzip.codec import coders, levels
from pixzip.codec.format import container
from pixzip.codec.network.modelfile import ModelFile
from pixzip.errors import UnknownModelError

DATA = Path(__file__).resolve().parent / "data"
TINY = DATA / "golden-tiny.pxm"
MODELS = (None, "tiny3")
METHODS = (None, "network", "mixer+network", "mixer", "bogus")
PAYLOADS = levels.PAYLOADS + ("bogus",)
LEVELS = (None, 1, 6, 9, 5)


def plan_as_before(level, model, method, payload):
    """``compress``'s choice as the release before the plan wrote it, inline
    in its if/elif ("mixed" read as "mixer+network", the alias "default" as
    "max", the same file), with this release's levels (-1 the mixer 1
    alone, -6 the mixer 3 alone, -9 the mixer 6 with "max"; the mixer over
    a network without a level is -9's, 6): (method, model, stored payloads,
    by_level, mixer version), or ValueError."""
    if payload not in levels.PAYLOADS or level not in (None, 1, 6, 9):
        return ValueError
    level_method, level_model, mixer = {None: ("mixer", None, 3), 1: ("mixer", None, 1),
                                        6: ("mixer", None, 3), 9: ("mixer+network", "max", 6)}[level]
    forced = method is not None and level is None
    by_level = model is None and method is None and payload in ("auto", "coded")
    if method is None:
        method = level_method
        if model is not None and method == "mixer":
            method = "mixer+network"
    elif method not in ("network", "mixer+network", "mixer"):
        return ValueError
    if model is None and method != "mixer":
        model = "max" if forced else level_model
    if payload in ("network", "mixer+network", "mixer"):
        method = payload
    if level is None and method == "mixer+network":
        mixer = 6
    stored = tuple(k for k in ("raw", "deflate") if payload in ("auto", k))
    if payload in ("raw", "deflate"):
        return None, None, stored, by_level, mixer
    if method == "mixer":
        return "mixer", None, stored, by_level, mixer
    return method, "max" if model is None else model, stored, by_level, mixer     # load_model(None): "max"


@pytest.mark.parametrize("level", LEVELS)
def test_the_plan_of_every_level_model_method_and_payload_is_the_choice_compress_made_before(level):
    for model, method, payload in itertools.product(MODELS, METHODS, PAYLOADS):
        want = plan_as_before(level, model, method, payload)
        if want is ValueError:
            with pytest.raises(ValueError):
                levels.choose(level, model, method, payload)
        else:
            assert levels.choose(level, model, method, payload) == levels.Plan(*want), (level, model, method, payload)


def test_a_plan_fits_the_image_colours_or_refuses_a_network_asked_for_by_name():
    for (level, model, method, payload), channels, colors in itertools.product(
            itertools.product(LEVELS[:4], MODELS, METHODS[:4], levels.PAYLOADS), (1, 3), (1, 3)):
        plan = levels.choose(level, model, method, payload)
        if plan.method in (None, "mixer") or channels == colors:
            assert plan.for_image(channels, colors, "net") == plan
        elif plan.method == "mixer+network" and plan.mixer >= 2 and (channels, colors) == (1, 3):
            # a gray image over an RGB network (coder 7: the mixer 2, which a gray image keeps), named or not
            fitted = plan.for_image(channels, colors, "net")
            assert fitted == dataclasses.replace(plan, gray=True) and fitted.mixer_for(channels) == 2
            assert coders.making(fitted.method, fitted.mixer_for(channels), fitted.gray).coder_id == \
                container.GRAY_PARTS2_CODER
        elif plan.by_level:         # the level chose the network: the mixer alone codes the image
            assert plan.for_image(channels, colors, "net") == levels.Plan("mixer", None, plan.stored, True,
                                                                          plan.mixer)
        else:
            with pytest.raises(UnknownModelError, match="model 'net' codes"):
                plan.for_image(channels, colors, "net")


def test_compress_takes_at_most_seven_parameters_and_the_rest_as_options():
    for f in (pixzip.compress, pixzip.compress_with_stats):
        params = inspect.signature(f).parameters
        assert len(params) <= 7, list(params)
        assert "options" in params and "stats" not in params
    # parts: None, each coder's own choice (0.10.2: one for the mixer 3 with a network, two for the others)
    assert pixzip.Options().strip_height == 0 and pixzip.Options().parts is None
    from pixzip.codec import coders
    assert [coders.making("mixer+network", v, gray).parts for v, gray in ((1, False), (2, False), (2, True), (3, False))] \
        == [2, 2, 2, 1]


def image(h=9, w=11, c=3, seed=0):
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    return ((x[..., None] * 9 + y[..., None] * 4 + rng.integers(0, 9, (h, w, c))) % 256).astype(np.uint8)


@pytest.mark.parametrize("key", sorted(coders.CODERS), ids=lambda k: f"kind{k[0]}-coder{k[1]}")
def test_every_coder_in_the_table_round_trips_a_small_image(key, monkeypatch):
    coder = coders.CODERS[key]
    net = ModelFile.load(TINY)
    if coder.method is None and not coder.stored:        # coder 2 over a network: only read (0.3.0's files)
        data = (DATA / "format2" / "mixed.pxz").read_bytes()
        assert coders.for_header(codec.read_header(data)) is coder
        h = codec.read_header(data)
        assert codec.decompress(data, net).shape == (h.height, h.width, 3)
        return
    img = image(c=1 if coder.gray else 3)     # coder 7: a gray image over the RGB network
    name = coder.method or container.KINDS[coder.kind]
    version = getattr(coder, "version", 3)
    # -1's mixer is version 1; -6's 3 (over a network too: coder 9); -9's and a network's without a level, 6 (a
    # gray image's, 2)
    level = 1 if version == 1 else 6 if version == 3 else None
    if version == 2 and not coder.gray:     # colour images of the mixer 2: 0.9's levels made them
        monkeypatch.setattr(levels, "LEVELS", {**levels.LEVELS, 6: levels.Level("mixer", None, 2),
                                               9: levels.Level("mixer+network", "max", 2)})
    if version in (4, 5):                   # the mixers 4 and 5: 0.11's and 0.12's -9 made them
        monkeypatch.setattr(levels, "LEVELS", {**levels.LEVELS, 9: levels.Level("mixer+network", "max", version)})
    data = codec.compress(img, net if coder.uses_network else None, level=level, payload=name)
    assert coders.for_header(codec.read_header(data)) is coder
    assert np.array_equal(codec.decompress(data, net), img)
    assert coders.payload_name(coder) == name


def test_each_coders_decode_memory_and_least_payload_are_what_the_functions_before_gave():
    """tests/data/coder-memory-before.json holds what api.decode_memory,
    api.stored_memory, api._min_payload_bytes and the mixer's
    min_payload_bytes gave before each coder said its own, with the network
    decoder's buffers as 0.13.4 keeps them (by step: each figure with a
    network is the one before less a whole number of times the bytes its
    rings of columns took more, ``kernels.decoder.slots``)."""
    before = json.loads((DATA / "coder-memory-before.json").read_text())
    nets = {"golden-tiny": ModelFile.load(TINY), "fast": codec.load_model("fast"), "max": codec.load_model("max"),
            None: None}
    by = {m: coders.making(m, 1) for m in ("network", "mixer", "mixer+network")}     # version 1's, as before
    for name, h, w, c, strip, mixer, parts, need in before["decode_memory"]:
        net = nets[name]
        frame = coders.Frame(h, w, c, strip, parts)
        if net is None:
            coder = by["mixer+network"] if mixer else by["mixer"]
        elif not mixer:
            coder = by["network"]
        else:
            coder = by["mixer+network"] if parts else coders.CODERS[container.NETWORK, container.MIXER_CODER]
        assert coder.decode_memory(frame, net) == need, (name, h, w, c, strip, mixer, parts)
    for kind, h, w, c, payload_bytes, need in before["stored_memory"]:
        assert coders.CODERS[kind, 0].decode_memory(coders.Frame(h, w, c), None, payload_bytes) == need
    for name, n, least in before["min_payload_bytes"]:
        coder = by["network"] if name else by["mixer"]
        assert coder.min_payload_bytes(n, nets[name]) == least
        if name is None:        # every mixer coder shares the mixer's bound
            assert by["mixer+network"].min_payload_bytes(n) == least


def _call(case):
    """The case's options, through the new API (``Options``, new names)."""
    kw = dict(case["options"])
    options = codec.Options(**{k: kw.pop(k) for k in ("parts", "strip_height") if k in kw})
    for k in ("method", "payload"):
        if kw.get(k) == "mixed":
            kw[k] = "mixer+network"
    return kw.pop("model", None), kw, options


def test_new_archives_are_byte_identical_to_those_made_before_the_coder_table(monkeypatch):
    """tests/data/archive-sha256s.json: the sha256 of each archive (or the
    error) that compress made before, for three small images (RGB smooth,
    RGB noise, L) at every level, method and payload, a few models, parts
    and strips."""
    recorded = json.loads((DATA / "archive-sha256s.json").read_text())
    images = {k: np.frombuffer(bytes.fromhex(v["hex"]), np.uint8).reshape(v["shape"])
              for k, v in recorded["images"].items()}
    assert len(recorded["cases"]) == 144
    # the levels those archives were made with, every one with the mixer 1 (this release's -6 and -9
    # code with the mixer 2, whose bytes the golden files pin)
    monkeypatch.setattr(levels, "LEVELS", {1: levels.Level("mixer", None, 1), 6: levels.Level("mixer+network", "fast", 1),
                                           9: levels.Level("mixer+network", "max", 1)})
    for case in recorded["cases"]:
        model, kw, options = _call(case)
        try:
            got = hashlib.sha256(codec.compress(images[case["image"]], model, options=options, **kw)).hexdigest()
        except Exception as e:   # noqa: BLE001  (the same refusals too)
            got = "error:" + type(e).__name__
        assert got == case["sha256"], case


def test_the_old_method_name_still_works_and_warns():
    net = ModelFile.load(TINY)
    img = image(5, 6)
    new = codec.compress(img, net, payload="mixer+network")
    for kw in ({"payload": "mixed"}, {"method": "mixed", "payload": "coded"}):
        with pytest.warns(DeprecationWarning, match="'mixed' is now called 'mixer\\+network'"):
            assert codec.compress(img, net, **kw) == new
    with pytest.warns(DeprecationWarning):
        codec.warm_up(net, "mixed")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data, stats = codec.compress_with_stats(img, net, payload="mixer+network")
    assert data == new and stats.payload == "mixer+network" and stats.ideal_bits > 0 and stats.network_bits > 0


def test_the_keywords_compress_took_before_options_still_work_and_warn():
    net = ModelFile.load(TINY)
    img = image(6, 7)
    new, stats = codec.compress_with_stats(img, net, payload="network", options=codec.Options(strip_height=2))
    old_stats = {}
    with pytest.warns(DeprecationWarning, match="keywords strip_height, stats are now Options fields"):
        assert codec.compress(img, net, payload="network", strip_height=2, stats=old_stats) == new
    assert old_stats == {"payload": "network", "ideal_bits": stats.ideal_bits, "ideal_s": old_stats["ideal_s"]}
    with pytest.warns(DeprecationWarning):
        assert pixzip.compress(img, payload="raw", strip=True) == pixzip.compress(img, payload="raw")
    raw_stats = {}
    with pytest.warns(DeprecationWarning):
        pixzip.compress(img, payload="raw", stats=raw_stats)
    assert raw_stats == {"payload": "raw"}
    with pytest.raises(TypeError):
        pixzip.compress(img, no_such_keyword=1)


def test_the_old_alias_default_still_names_the_max_model_and_warns():
    with pytest.warns(DeprecationWarning, match="'default' is -9's model, now called 'max'"):
        old = codec.load_model("default")
    assert old.sha256 == codec.load_model("max").sha256 == codec.load_model(None).sha256


def test_the_command_line_takes_the_old_names_with_one_line_on_stderr(tmp_path, monkeypatch):
    from PIL import Image
    monkeypatch.setenv("PIXZIP_MODELS", str(DATA))
    src = tmp_path / "a.png"
    Image.fromarray(image(4, 5)).save(src)
    r = CliRunner().invoke(main, ["compress", str(src), "-m", str(TINY), "--method", "mixed", "-q"])
    assert r.exit_code == 0, r.output
    assert r.stderr.splitlines() == ["pixzip: --method mixed is now called mixer+network; the old name will be "
                                     "removed in a later version"]
    assert np.array_equal(codec.decompress((tmp_path / "a.png.pxz").read_bytes()), image(4, 5))
    r = CliRunner().invoke(main, ["compress", str(src), "-f", "-m", "default", "--method", "network", "-q"])
    assert r.exit_code == 0, r.output
    assert r.stderr.splitlines() == ["pixzip: -m default: the model alias 'default' is -9's model, now called "
                                     "'max'; the old name will be removed in a later version"]


def test_pixzip_models_shows_which_level_uses_which_alias():
    r = CliRunner().invoke(main, ["models"])
    assert r.exit_code == 0, r.output
    lines = {line.split()[0]: line for line in r.output.splitlines() if "->" in line}
    assert "level" not in lines["fast"]         # the default level, -6, is the mixer 3 alone
    assert lines["max"].endswith("(level 9; --method without a level)")
    assert lines["default"].endswith("(the old name of max, deprecated)")


def test_bench_without_a_model_measures_every_level_and_labels_its_columns_by_level():
    from pixzip.app import bench
    under_test = bench._levels_under_test(bench.METHODS)
    assert [(m.label, m.method, m.level) for m in under_test] == [
        ("pixzip -1", "mixer", 1), ("pixzip -6", "mixer", 6), ("pixzip -9", "mixer+network", 9),
        ("pixzip-max", "network", None)]
    assert under_test[0].net is None and under_test[1].net is None
    assert under_test[2].net.name == under_test[3].net.name == codec.load_model("max").name
