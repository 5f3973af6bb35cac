"""Hostile model files: a .pxm is exchanged between users, so it is untrusted
input.  Every damaged, lying or malicious file is a ModelFileError (one line
naming the file) at load, never a crash, a traceback, an out-of-bounds read or
a huge allocation; and a level always codes with the shipped model, whatever
a folder in $PIXZIP_MODELS holds."""
from __future__ import annotations

import functools
import io
import json
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixzip.codec import api as codec
from pixzip.codec.format import container
from pixzip.codec.network import registry
from pixzip.codec.network.modelfile import ModelFile
from pixzip.errors import ModelFileError, PixzipError

from .conftest import tiny_int_model

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_TINY = ROOT / "tests" / "data" / "golden-tiny.pxm"
SHIPPED = ROOT / "models"
SMALL_PEAK = 64 << 20        # what loading a hostile file may allocate at most (tracemalloc)


# -- building model files -----------------------------------------------------
def members(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, tensors) of a model file's bytes."""
    z = dict(np.load(io.BytesIO(data), allow_pickle=False))
    return json.loads(bytes(z.pop("__meta__")).decode()), z


def npz(meta: dict, tensors: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **tensors)
    return buf.getvalue()


def mutated(base: bytes, config: dict | None = None, meta: dict | None = None, drop=(), **tensors) -> bytes:
    """The model file ``base`` with config fields, meta fields and tensors replaced, members dropped."""
    m, t = members(base)
    m["config"].update(config or {})
    m.update(meta or {})
    t.update(tensors)
    for k in drop:
        del t[k]
    return npz(m, t)


@functools.lru_cache(maxsize=None)
def zeros_deflate(n: int) -> bytes:
    """A raw deflate stream of n zero bytes (n a multiple of 1 MiB), about n / 1000 bytes long:
    after a full flush the compressor's output for the same input repeats."""
    mib = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    c.compress(mib)
    c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(mib) + c.flush(zlib.Z_FULL_FLUSH)
    return block * (n >> 20) + c.flush()


@functools.lru_cache(maxsize=None)
def zeros_crc(n: int) -> int:
    crc, chunk = 0, bytes(16 << 20)
    for _ in range(n // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    return zlib.crc32(bytes(n % len(chunk)), crc)


def build_zip(parts: list[tuple[str, bytes | int]]) -> bytes:
    """A zip by hand: (name, content) deflated, or (name, n) for a bomb of n zero bytes,
    whose size and CRC the headers state truthfully."""
    out, central = bytearray(), bytearray()
    for name, content in parts:
        if isinstance(content, int):
            comp, size, crc = zeros_deflate(content), content, zeros_crc(content)
        else:
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            comp, size, crc = c.compress(content) + c.flush(), len(content), zlib.crc32(content)
        fname = name.encode()
        zip64 = size >= 0xFFFFFFFF
        extra = struct.pack("<HHQQ", 1, 16, size, len(comp)) if zip64 else b""
        s32, c32 = (0xFFFFFFFF, 0xFFFFFFFF) if zip64 else (size, len(comp))
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 8, 0, 0, crc, c32, s32, len(fname), len(extra))
        out += fname + extra + comp
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 8, 0, 0, crc, c32, s32,
                               len(fname), len(extra), 0, 0, 0, 0, offset) + fname + extra
    cd = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(parts), len(parts), len(central), cd, 0)
    return bytes(out)


def npz_parts(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


@pytest.fixture(scope="module")
def tiny() -> bytes:
    return tiny_int_model(3).to_bytes()


def refused(data: bytes, match: str | None = None):
    with pytest.raises(ModelFileError, match=match) as e:
        ModelFile.from_bytes(data)
    assert "\n" not in str(e.value)
    return str(e.value)


# -- the audit's cases ----------------------------------------------------------
def test_the_unmodified_files_load(tiny):
    for data in (tiny, GOLDEN_TINY.read_bytes(), *(p.read_bytes() for p in SHIPPED.glob("*.pxm"))):
        net = ModelFile.from_bytes(data)
        assert net.tensors["tanh"].shape == (8193,)


def test_a_damaged_zip_directory_is_refused(tiny):
    # found by benchmarks/fuzz_models.py: zipfile raised NotImplementedError("zip file version 15.5")
    b = bytearray(tiny)
    cd = b.index(b"PK\x01\x02")
    b[cd + 6] = 155
    refused(bytes(b), "not a readable pixzip model file")
    # numpy's .npy header parser raised tokenize.TokenError on "'shape': (768, 48;V }"
    parts = npz_parts(tiny)
    bad = [(n, c.replace(b"), }", b";V }", 1) if n == "head2.w.npy" else c) for n, c in parts]
    refused(build_zip(bad), "head2.w")


def test_cut_and_missing_tensors_are_refused(tiny):
    m, t = members(tiny)
    refused(mutated(tiny, **{"v_conv.0.w": t["v_conv.0.w"][:, :9]}), "v_conv.0.w")
    refused(mutated(tiny, **{"head2.w": t["head2.w"][:256]}), "head2.w")
    refused(mutated(tiny, drop=["head2.w"]), "head2.w")
    refused(mutated(tiny, **{"link.1.b": t["link.1.b"].astype(np.float64)}), "link.1.b")
    refused(mutated(tiny, **{"extra": np.zeros(3, np.int16)}), "extra")


@pytest.mark.parametrize("field, value", [("layers", 99), ("layers", 0), ("kernel", -1), ("kernel", 4),
                                          ("channels", 0), ("colors", 2), ("layers", True), ("layers", "2"),
                                          ("gate_shift", [5000] * 4), ("gate_mult", [2 ** 80] * 4),
                                          ("head_in_shift", 0), ("head_in_mult", 1.5), ("shift", {"head1": 3}),
                                          ("n_classes", -1), ("skip_channels", 10 ** 12)])
def test_bad_configs_are_refused(tiny, field, value):
    refused(mutated(tiny, config={field: value}))


def test_bad_shift_of_a_layer_is_refused(tiny):
    m, _ = members(tiny)
    for shift in (0, 63, 5000, -1):
        refused(mutated(tiny, config={"shift": {**m["config"]["shift"], "head2": shift}}), "shift")


def test_bad_tables_are_refused(tiny):
    m, t = members(tiny)
    refused(mutated(tiny, exp=np.zeros_like(t["exp"])), "exp")
    refused(mutated(tiny, exp=t["exp"][:0]), "exp")
    refused(mutated(tiny, exp=np.full(1 << 16, 2, np.int64)), "exp")
    refused(mutated(tiny, exp=t["exp"] * (1 << 40)), "exp")
    for name in ("tanh", "sigmoid"):
        refused(mutated(tiny, meta={"format": "pixzip-int-gated/2"}, **{name: t[name][:1]}), name)
        refused(mutated(tiny, **{name: t[name] * 1000}), name)
        refused(mutated(tiny, **{name: np.full(len(t[name]), -(1 << 63), np.int64)}), name)
    # a 1-entry tanh in a file that says format 1 is an 8-bit model: refused by name, as before
    refused(mutated(tiny, meta={"format": "pixzip-int-gated/1"}, tanh=t["tanh"][:1]), "older pixzip")


def test_bad_weights_and_multipliers_are_refused(tiny):
    _, t = members(tiny)
    refused(mutated(tiny, **{"head2.m": np.full_like(t["head2.m"], 1 << 62)}), "head2")
    refused(mutated(tiny, **{"link.0.b": np.full_like(t["link.0.b"], -(1 << 63))}), "link.0")
    refused(mutated(tiny, **{"link.0.w": np.full_like(t["link.0.w"], 32767)}), "link.0")


def test_an_empty_exp_table_is_refused_without_a_crash(tmp_path, tiny):
    # it made the compiled head read exp[2^32 - 1]: a segfault, so it runs in a process of its own
    _, t = members(tiny)
    f = tmp_path / "empty-exp.pxm"
    f.write_bytes(mutated(tiny, exp=t["exp"][:0]))
    script = ("import sys, numpy as np\n"
              "from pixzip.codec import api\n"
              "from pixzip.errors import ModelFileError\n"
              "try:\n"
              f"    net = api.load_model({str(f)!r})\n"
              "except ModelFileError as e:\n"
              "    print(e); sys.exit(3)\n"
              "x = np.zeros((4, 5, 3), np.uint8)\n"
              "api.compress(x, net, method='network', payload='network')\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert r.returncode == 3, (r.returncode, r.stderr[-2000:])
    assert str(f) in r.stdout and "exp" in r.stdout


def _peak(fn):
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_bomb_member_is_refused_before_it_is_decompressed(tiny):
    parts = npz_parts(tiny)
    extra = build_zip(parts + [("zeros.npy", 2 << 30)])          # 2 GiB of zeros in a 2 MB file
    assert len(extra) < 3 << 20
    assert _peak(lambda: refused(extra, "zeros")) < SMALL_PEAK
    big_tanh = build_zip([(n, 1 << 30) if n == "tanh.npy" else (n, c) for n, c in parts])
    assert _peak(lambda: refused(big_tanh, "tanh")) < SMALL_PEAK
    twice = build_zip(parts + [parts[-1]])
    refused(twice, "twice")


def test_a_huge_meta_is_refused_and_costs_no_command_anything(tmp_path, monkeypatch, tiny):
    parts = npz_parts(tiny)
    bomb = build_zip([("__meta__.npy", 512 << 20)] + parts[1:])    # 512 MiB of zeros in a 600 KB file
    assert len(bomb) < 1 << 20
    assert _peak(lambda: refused(bomb, "__meta__")) < SMALL_PEAK
    d = tmp_path / "models"
    d.mkdir()
    (d / "bomb.pxm").write_bytes(bomb)
    (d / "broken.pxm").write_bytes(tiny[:1000])
    (d / "tiny3.pxm").write_bytes(tiny)
    monkeypatch.setenv("PIXZIP_MODELS", str(d))
    registry._meta.cache_clear()

    def lookups():
        assert "tiny3" in registry.available()
        net = registry.load_model("tiny3")
        assert registry.find("tiny3", bytes.fromhex(net.sha256[:16])).sha256 == net.sha256
    assert _peak(lookups) < SMALL_PEAK
    with pytest.raises(ModelFileError, match="bomb.pxm"):
        registry.load_model(d / "bomb.pxm")
    broken = dict(registry.broken())
    assert set(broken) == {d / "bomb.pxm", d / "broken.pxm"}
    from click.testing import CliRunner

    from pixzip.cli.main import main
    r = CliRunner().invoke(main, ["models"])
    assert r.exit_code == 0 and "tiny3" in r.output, r.output
    assert sum("(broken)" in line and ("bomb.pxm" in line or "broken.pxm" in line)
               for line in r.output.splitlines()) == 2, r.output


def test_model_errors_are_one_line_naming_the_file_in_the_cli(tmp_path, tiny):
    from click.testing import CliRunner

    from pixzip.cli.main import main
    _, t = members(tiny)
    bad = tmp_path / "bad.pxm"
    bad.write_bytes(mutated(tiny, drop=["head2.w"]))
    img = tmp_path / "a.png"
    from PIL import Image
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(img)
    r = CliRunner().invoke(main, ["compress", "--method", "network", "-m", str(bad), str(img)])
    assert r.exit_code == 1, r.output
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and str(bad) in lines[0] and "head2.w" in lines[0], r.output
    assert not (tmp_path / "a.png.pxz").exists()


# -- a level codes with the shipped model ---------------------------------------
def test_a_level_codes_with_the_shipped_model_whatever_the_user_folder_holds(tmp_path, monkeypatch, tiny):
    d = tmp_path / "models"
    d.mkdir()
    ok = mutated(tiny, meta={"name": "ok-copy"})
    for name in ("fast", "max", "default"):
        (d / f"{name}.pxm").write_bytes(ok)
    impostor = mutated(tiny, meta={"name": "photo-g36x4-v1"})
    (d / "photo-g36x4-v1.pxm").write_bytes(impostor)
    (d / "photo-g66x8-v1.pxm").write_bytes(mutated(tiny, meta={"name": "photo-g66x8-v1"}))
    (d / "aliases.json").write_text(json.dumps({"fast": "ok-copy", "max": "ok-copy", "default": "ok-copy",
                                                "mine": "ok-copy"}))
    monkeypatch.setenv("PIXZIP_MODELS", str(d))
    shipped = ModelFile.load(SHIPPED / "photo-g36x4-v1.pxm")
    x = np.random.default_rng(0).integers(0, 256, (3, 4, 3), dtype=np.uint8)
    header = container.parse(codec.compress(x, level=9, payload="coded"))[0]       # -9's network: max
    shipped_max = ModelFile.load(SHIPPED / "photo-g66x8-v1.pxm")
    assert (header.model_name, header.model_hash.hex()) == ("photo-g66x8-v1", shipped_max.sha256[:16])
    for alias, name in (("fast", "photo-g36x4-v1"), ("max", "photo-g66x8-v1"), ("default", "photo-g66x8-v1")):
        with warnings.catch_warnings(record=True) as said:     # "default" is deprecated, and says so
            warnings.simplefilter("always")
            net = registry.load_model(alias)
        assert net.name == name and net.sha256 == ModelFile.load(SHIPPED / f"{name}.pxm").sha256
        assert [w.category for w in said] == ([DeprecationWarning] if alias == "default" else [])
    assert registry.load_model("photo-g36x4-v1").sha256 == shipped.sha256
    # a user alias or file is used when named; decoding still finds a model by name and hash
    assert registry.load_model("mine").name == "ok-copy"
    assert registry.load_model("ok-copy").name == "ok-copy"
    imp = ModelFile.from_bytes(impostor)
    assert registry.find("photo-g36x4-v1", bytes.fromhex(imp.sha256[:16])).sha256 == imp.sha256
    assert registry.load_model(d / "photo-g36x4-v1.pxm").sha256 == imp.sha256


# -- mutated files ---------------------------------------------------------------
MUTATIONS = ("flip", "truncate", "drop", "rename", "duplicate", "shape", "dtype", "table", "config",
             "values", "bomb", "meta")


def _extreme(rng, kind="int"):
    choices = [0, 1, -1, 2, 3, 255, 511, 4096, 8193, 32767, -32768, 1 << 15, 1 << 16, 1 << 31, -(1 << 31),
               1 << 52, 1 << 53, 1 << 62, -(1 << 63), (1 << 63) - 1, 1 << 70, 10 ** 30]
    if kind == "any":
        choices += [None, True, "x", 1.5, float("inf"), [], {}, [1] * 3, {"a": 1}]
    return choices[rng.integers(len(choices))]


def mutate(base: bytes, rng: np.random.Generator, kind: str | None = None, bomb_log2: int = 28) -> tuple[str, bytes]:
    """A mutant of the model file ``base``: (what was done, its bytes); bombs of up to 2^bomb_log2 bytes."""
    kind = kind or MUTATIONS[rng.integers(len(MUTATIONS))]
    meta, t = members(base)
    names = sorted(t)
    pick = names[rng.integers(len(names))]
    if kind == "flip":
        b = bytearray(base)
        n = int(rng.integers(1, 9))
        for i in rng.integers(0, len(b), n):
            b[i] ^= int(rng.integers(1, 256))
        return f"flip {n} bytes", bytes(b)
    if kind == "truncate":
        n = int(rng.integers(0, len(base)))
        return f"truncate at {n}", base[:n]
    parts = npz_parts(base)
    if kind in ("drop", "rename", "duplicate"):
        i = int(rng.integers(len(parts)))
        name, content = parts[i]
        if kind == "drop":
            return f"drop {name}", build_zip(parts[:i] + parts[i + 1:])
        if kind == "duplicate":
            return f"duplicate {name}", build_zip(parts + [parts[i]])
        new = [parts[int(rng.integers(len(parts)))][0], "x.npy", "../" + name, name.upper(), name + "/",
               "__meta__.npy", name[:-4]][rng.integers(7)]
        return f"rename {name} to {new}", build_zip(parts[:i] + [(new, content)] + parts[i + 1:])
    if kind == "shape":
        a = t[pick]
        choice = rng.integers(4)
        if choice == 0 and a.size:
            t[pick] = a.reshape(-1)[: int(rng.integers(0, a.size))]
        elif choice == 1:
            t[pick] = np.concatenate([a.reshape(-1), a.reshape(-1)[:7]])
        elif choice == 2:
            t[pick] = a.reshape(-1)
        else:
            t[pick] = a[None]
        return f"{pick} shape {t[pick].shape}", npz(meta, t)
    if kind == "dtype":
        dt = [np.int8, np.int16, np.int32, np.int64, np.uint16, np.uint64, np.float32, np.float64, np.bool_,
              ">i2", ">i8", np.complex64][rng.integers(12)]
        t[pick] = t[pick].astype(dt)
        return f"{pick} as {np.dtype(dt)}", npz(meta, t)
    if kind == "table":
        name = ["tanh", "sigmoid", "exp"][rng.integers(3)]
        a = t[name]
        choice = rng.integers(3)
        if choice == 0:
            t[name] = a[: int(rng.integers(0, len(a) + 1))]
        elif choice == 1:
            a, info = a.copy(), np.iinfo(a.dtype)
            a[rng.integers(len(a))] = min(max(_extreme(rng), info.min), info.max)
            t[name] = a
        else:
            t[name] = np.full(int(rng.integers(0, 40000)), _extreme(rng) % (1 << 31), np.int64)
        return f"{name} table", npz(meta, t)
    if kind == "values":
        a = t[pick].copy()
        if a.size:
            info = np.iinfo(a.dtype) if a.dtype.kind == "i" else None
            v = _extreme(rng)
            if info is not None:
                v = min(max(v, info.min), info.max)
            a.reshape(-1)[rng.integers(0, a.size, int(rng.integers(1, 4)))] = v
        t[pick] = a
        return f"{pick} values", npz(meta, t)
    if kind == "config":
        cfg = meta["config"]
        field = sorted(cfg)[rng.integers(len(cfg))]
        value = _extreme(rng, "any")
        if isinstance(cfg[field], list) and rng.integers(2):
            value = [value] * len(cfg[field])
        elif isinstance(cfg[field], dict) and cfg[field] and rng.integers(2):
            key = sorted(cfg[field])[rng.integers(len(cfg[field]))]
            value = {**cfg[field], key: value}
        cfg[field] = value
        return f"config {field} = {str(value)[:40]}", npz(meta, t)
    if kind == "meta":
        choice = rng.integers(5)
        body = [b"[]", b"{", b"[" * 100000, json.dumps({**meta, "name": "\x1b[2J" * 3}).encode(),
                json.dumps({**meta, "format": "pixzip-int-gated/" + "9" * 5000}).encode()][choice]
        i = [n for n, _ in parts].index("__meta__.npy")
        buf = io.BytesIO()
        np.save(buf, np.frombuffer(body, np.uint8))
        return f"meta {choice}", build_zip(parts[:i] + [("__meta__.npy", buf.getvalue())] + parts[i + 1:])
    # bomb: a member (or a new one) of up to 2^bomb_log2 zero bytes
    size = 1 << int(rng.integers(20, bomb_log2 + 1))
    i = int(rng.integers(len(parts) + 1))
    name = parts[i][0] if i < len(parts) else "bomb.npy"
    return f"bomb {name} {size >> 20} MiB", build_zip([(n, size if n == name else c) for n, c in parts]
                                                      + ([] if i < len(parts) else [(name, size)]))


def _use(net: ModelFile) -> None:
    """A model that loads codes a small image exactly, or refuses with a PixzipError."""
    x = np.random.default_rng(1).integers(0, 256, (3, 4, net.colors), dtype=np.uint8)
    try:
        data = codec.compress(x, net, method="network", payload="network")
    except PixzipError:
        return
    assert np.array_equal(codec.decompress(data, net), x)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_model_files_are_refused_or_work(tiny, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    kind, blob = mutate(tiny, rng, bomb_log2=24)
    try:
        net = ModelFile.from_bytes(blob)
    except ModelFileError as e:
        assert "\n" not in str(e)
        return
    _use(net)


def test_a_broken_user_alias_table_breaks_only_the_names_it_would_resolve(tmp_path, monkeypatch, tiny):
    d = tmp_path / "models"
    d.mkdir()
    (d / "tiny3.pxm").write_bytes(tiny)
    (d / "aliases.json").write_text("{" * 100)
    monkeypatch.setenv("PIXZIP_MODELS", str(d))
    assert registry.load_model("tiny3").name == "tiny3"
    assert registry.load_model("fast").name == "photo-g36x4-v1"
    with pytest.raises(PixzipError, match="aliases.json"):
        registry.load_model("nothing-of-that-name")
