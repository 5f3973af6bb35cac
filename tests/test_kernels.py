"""The compiled kernels beyond this CPU: the int16 product's plain-loop twin
gives the same integers, a generic x86-64 build decodes the golden files (both mixers)
pixel-exact with the reference's counts, and the compiled code is cached
where it can be written, never stale."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pixzip.codec import api as codec
from pixzip.codec import kernel_cache as cache
from pixzip.codec.network.kernels import gemm
from pixzip.codec.network.kernels.program import GEMM_ENV, gemm_choice
from pixzip.codec.network.modelfile import ModelFile
from pixzip.codec.network.integer_torch import network as ref
from pixzip.codec.network.dec_wavefront import decode_image

from .conftest import tiny_int_model

DATA = Path(__file__).parent / "data"


@given(st.integers(1, 13), st.integers(1, 41), st.integers(1, 37), st.integers(0, 5), st.integers(0, 2 ** 32 - 1))
@settings(max_examples=60, deadline=None)
def test_the_plain_loop_product_equals_the_vector_one(n, rows, n_in, x0, seed):
    """On odd shapes: positions not a multiple of 4, outputs not of 8 or 16,
    an odd number of inputs, and an offset into the input rows; at the
    largest magnitudes the packer allows (int16 extremes, sums below 2^31)."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-511, 512, (rows, n_in)).astype(np.int16)
    if seed % 3 == 0:
        w[:, :] = np.where(rng.random((rows, n_in)) < 0.5, 511, -511)
    packed, pairs, out = gemm.pack(w)
    x16 = np.zeros((x0 + gemm.padded(n), 2 * pairs), np.int16)
    limit = 4096 if seed % 2 else 511
    x16[:, :n_in] = rng.integers(-limit, limit + 1, (x16.shape[0], n_in))
    x32 = x16.view(np.int32)
    y_simd = np.full((gemm.padded(n), out), 7, np.int32)
    y_loop = np.full((gemm.padded(n), out), -7, np.int32)
    gemm.gemm(x32, x0, n, packed, 0, pairs, out, y_simd)
    gemm.gemm_loop(x32, x0, n, packed, 0, pairs, out, y_loop)
    assert np.array_equal(y_simd, y_loop)
    want = x16[x0:x0 + n, :n_in].astype(np.int64) @ w.T.astype(np.int64)
    assert np.array_equal(y_loop[:n, :rows], want)


@pytest.mark.parametrize("colors,layers,kernel", [(3, 2, 3), (1, 3, 5)])
def test_decoding_with_the_plain_loop_product_gives_the_same_counts(colors, layers, kernel):
    net = tiny_int_model(colors, layers, kernel)
    img = np.random.default_rng(layers).integers(0, 256, (7, 9, colors), dtype=np.uint8)
    seen = {}

    def teacher(product):
        def source(counts, rows, cols, c):
            seen.setdefault(product, []).append(counts.copy())
            return img[rows, cols, c]
        return source

    for product in ("simd", "loop"):
        assert np.array_equal(decode_image(net, 7, 9, teacher(product), product=product), img)
    assert len(seen["simd"]) == len(seen["loop"])
    assert all(np.array_equal(a, b) for a, b in zip(seen["simd"], seen["loop"]))


def test_the_product_is_chosen_by_name(monkeypatch):
    assert gemm_choice() == "simd"
    monkeypatch.setenv(GEMM_ENV, "loop")
    assert gemm_choice() == "loop"
    monkeypatch.setenv(GEMM_ENV, "avx9")
    with pytest.raises(ValueError, match="PIXZIP_GEMM must be one of simd, loop"):
        gemm_choice()


GENERIC = """
import json, sys
import numpy as np
from pixzip.codec.format import container
from pixzip.codec.network import rangecoder as coder, registry
from pixzip.codec import kernel_cache as cache
from pixzip.codec.network.dec_wavefront import decode_image
out = {}
for name, model in (("rgb", "golden-tiny.pxm"), ("gray", "golden-tiny-gray.pxm"), ("rgb-strips", "golden-tiny.pxm")):
    net = registry.load_model(sys.argv[1] + "/" + model)
    h, payload, crc = container.parse(open(sys.argv[1] + "/format2/" + name + ".pxz", "rb").read())
    dec = coder.Decoder(bytes(payload))
    counts = []
    def source(c, rows, cols, colour):
        counts.append([rows.tolist(), cols.tolist(), colour, c.astype(np.int64).tolist()])
        return dec.decode(c)
    pixels = decode_image(net, h.height, h.width, source, strip_height=h.strip_height)
    assert container.pixels_crc(pixels) == crc and dec.exhausted(), name
    out[name] = {"pixels": pixels.tolist(), "counts": counts}
for name, model in (("mixed", "golden-tiny.pxm"), ("mixed-gray-strips", "golden-tiny-gray.pxm"), ("mixer", None),
                    ("parts", "golden-tiny.pxm"), ("parts-gray-strips", "golden-tiny-gray.pxm"), ("mixer2", None),
                    ("parts2-gray-strips", "golden-tiny-gray.pxm"), ("parts2-photo-strips", "golden-tiny.pxm")):
    from pixzip.codec import api
    data = open(sys.argv[1] + "/format2/" + name + ".pxz", "rb").read()
    out[name] = {"pixels": api.decompress(data, sys.argv[1] + "/" + model if model else None).tolist()}
out["folder"] = cache.folder()
from numba.core import config
out["cpu"] = config.CPU_NAME
out["inspected"] = sum(len(k.inspect_asm()) for k in cache.kernels())
out["ymm"] = sorted(k.py_func.__name__ for k in cache.kernels() for asm in k.inspect_asm().values() if "ymm" in asm)
json.dump(out, open(sys.argv[2], "w"))
"""


def start_generic_build(folder: Path) -> subprocess.Popen:
    """The generic x86-64 build's decoding (``GENERIC``) in a process of its
    own, in a fresh cache under ``folder``, its result in folder/out.json."""
    env = dict(os.environ, NUMBA_CPU_NAME="generic", NUMBA_CPU_FEATURES="", NUMBA_CACHE_DIR=str(folder / "cache"))
    with open(folder / "stderr.txt", "w") as err:      # (a file, not a pipe: a full pipe would stop it)
        return subprocess.Popen([sys.executable, "-c", GENERIC, str(DATA), str(folder / "out.json")],
                                stdout=subprocess.DEVNULL, stderr=err, env=env)


@pytest.mark.start_early.with_args(start_generic_build)   # (with_args: a lone function would be decorated)
def test_a_generic_x86_64_build_decodes_the_golden_files_with_the_references_counts(early_process):
    """"Bit-exact on any machine" must not rest on this CPU's vector unit:
    the kernels compiled for LLVM's generic x86-64 (no AVX), in a fresh
    cache, decode the golden files pixel-exact, and every count equals the
    PyTorch reference's.  (Two minutes of compiling: started with the
    session, on the other core, ``conftest.pytest_collection_modifyitems``.)"""
    process, folder = early_process
    assert process.wait() == 0, (folder / "stderr.txt").read_text()[-3000:]
    got = json.loads((folder / "out.json").read_text())
    assert got["folder"].startswith(str(folder / "cache")), "compiled afresh, in the given cache"
    # the machine code was made here (not loaded), and uses no AVX register (this host's build uses them all over)
    assert got["cpu"] == "generic" and got["inspected"] >= 5 and got["ymm"] == [], got
    for name, model, src in (("rgb", "golden-tiny.pxm", "golden.png"),
                             ("gray", "golden-tiny-gray.pxm", "format1/gray.png"),
                             ("rgb-strips", "golden-tiny.pxm", "format1/rgb-strips.png")):
        img = np.array(Image.open(DATA / src))
        img = img[..., None] if img.ndim == 2 else img
        assert np.array_equal(np.array(got[name]["pixels"], np.uint8), img), name
        net = ref(ModelFile.load(DATA / model))
        strip = codec.read_header((DATA / "format2" / f"{name}.pxz").read_bytes()).strip_height or img.shape[0]
        full = np.concatenate([net.counts(net.logits(torch.from_numpy(img[a:a + strip])[None]))[0].numpy()
                               for a in range(0, img.shape[0], strip)])
        n = 0
        for rows, cols, colour, counts in got[name]["counts"]:
            assert np.array_equal(np.array(counts), full[rows, cols, colour].astype(np.int64)), (name, rows, cols)
            n += len(rows)
        assert n == img.size, name
    for name, src in (("mixed", "golden.png"), ("mixed-gray-strips", "format1/gray.png"), ("mixer", "golden.png"),
                      ("parts", "golden.png"), ("parts-gray-strips", "format1/gray.png"), ("mixer2", "golden.png"),
                      ("parts2-gray-strips", "format1/gray.png"), ("parts2-photo-strips", "golden-photo.png")):
        img = np.array(Image.open(DATA / src))
        img = img[..., None] if img.ndim == 2 else img
        assert np.array_equal(np.array(got[name]["pixels"], np.uint8), img), name


def test_the_cache_stamp_changes_with_any_kernel_source_or_the_contract(tmp_path, monkeypatch):
    """numba ties cached code to its own file; these kernels compile in the
    other kernel modules and the contract, so the stamp hashes them all."""
    copies = []
    for p in cache.SOURCES:
        q = tmp_path / p.name
        q.write_bytes(p.read_bytes())
        copies.append(q)
    monkeypatch.setattr(cache, "SOURCES", copies)
    before = cache.sources_stamp()
    assert before == cache.sources_stamp()
    for q in copies:
        if q.name in ("gemm.py", "contract.py"):
            old = q.read_bytes()
            q.write_bytes(old + b"\n# an edit\n")
            assert cache.sources_stamp() != before, q.name
            q.write_bytes(old)
    assert cache.sources_stamp() == before
    assert {p.name for p in cache.SOURCES} >= {"gemm.py", "layers.py", "decoder.py", "encoder.py", "program.py",
                                              "contract.py"}


def test_the_cache_stamp_changes_with_a_replaced_mixer_spec(monkeypatch):
    """A spec replaced before the kernels compile (the tuning scripts do it)
    is frozen into their code: it must not load the code of another spec."""
    import dataclasses

    from pixzip.codec.mixer import spec
    before = cache.sources_stamp()
    monkeypatch.setattr(spec, "SPEC_2", dataclasses.replace(spec.SPEC_2, mix_lr=spec.SPEC_2.mix_lr + 1))
    assert cache.sources_stamp() != before
    monkeypatch.undo()
    assert cache.sources_stamp() == before


def test_a_read_only_package_folder_caches_in_the_users_cache(tmp_path, monkeypatch):
    """A system-wide install cannot write beside the kernels: the cache goes
    to $XDG_CACHE_HOME/pixzip, one folder per installation; $NUMBA_CACHE_DIR,
    when set, comes first."""
    from numba.core import config
    monkeypatch.setattr(config, "CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    package = tmp_path / "site-packages" / "pixzip" / "codec" / "kernels"
    package.mkdir(parents=True)
    py_file = str(package / "decoder.py")
    in_tree = package / "__pycache__"
    real = cache._CacheLocator.ensure_cache_path

    def ensure(self):
        if Path(self.get_cache_path()) == in_tree:
            raise PermissionError("read-only")        # (the tests run as root, which chmod cannot stop)
        return real(self)

    monkeypatch.setattr(cache._CacheLocator, "ensure_cache_path", ensure)

    def func():
        pass

    where = Path(cache._Locator.from_function(func, py_file).get_cache_path())
    assert where.parent == tmp_path / "xdg" / "pixzip" and where.is_dir()
    monkeypatch.setattr(cache._CacheLocator, "ensure_cache_path", real)
    assert Path(cache._Locator.from_function(func, py_file).get_cache_path()) == in_tree
    monkeypatch.setattr(config, "CACHE_DIR", str(tmp_path / "numba"))
    assert Path(cache._Locator.from_function(func, py_file).get_cache_path()).parent == tmp_path / "numba" / "pixzip"


def test_the_kernels_are_cached_and_hit_on_the_next_run(tmp_path):
    """Two fresh interpreters decode the golden file in one new cache: the
    first compiles and writes it, the second loads every kernel from it."""
    code = f"""
import sys
from pixzip.codec import api
from pixzip.codec.network import registry
from pixzip.codec import kernel_cache as cache
net = registry.load_model({str(DATA / 'golden-tiny.pxm')!r})
api.decompress(open({str(DATA / 'format2' / 'rgb.pxz')!r}, 'rb').read(), net)
print(sum(sum(k.stats.cache_hits.values()) for k in cache.kernels()),
      sum(sum(k.stats.cache_misses.values()) for k in cache.kernels()))
"""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    runs = []
    for _ in range(2):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr[-2000:]
        runs.append(tuple(map(int, r.stdout.split())))
    (hits1, misses1), (hits2, misses2) = runs
    assert misses1 > 0 and hits2 > 0 and misses2 == 0, runs
    assert any(tmp_path.rglob("*.nbi"))


AHEAD = """
import json, sys
import numpy as np
from pixzip.codec import api
from pixzip.codec import kernel_cache as cache
from pixzip.codec.network import registry
model = sys.argv[1]
before = cache.compiled("network")
cache.precompile_decoder(model)
net = registry.load_model(model)
img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
assert np.array_equal(api.decompress(api.compress(img, net, payload="network"), net), img)
runs = {k.py_func.__name__: [sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values())]
        for k in cache.kernels("network")}
print(json.dumps([before, cache.compiled("network"), cache.compiled(), runs]))
"""


@pytest.mark.slow
def test_the_decoders_kernels_compiled_ahead_in_a_process_of_their_own_are_loaded_from_the_cache(tmp_path):
    """A first use: the cache holds nothing; the decoder's kernels compile in
    a second process while this one compiles the encoder's, and the decoder
    loads them; then the cache holds every kernel of the network (not the
    mixer's, never run)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", AHEAD, str(DATA / "golden-tiny.pxm")], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    before, after, everything, runs = json.loads(r.stdout)
    assert before is False and after is True and everything is False
    for name in ("vertical_step", "horizontal_step", "put_symbols"):
        assert runs[name] == [1, 0], (name, runs)
    for name in ("full_pass", "head_counts"):
        assert runs[name] == [0, 1], (name, runs)


def test_every_compiled_kernel_has_a_cache():
    """Every module of compiled kernels is one ``kernel_cache`` gives a cache
    to: a module left out compiles on every run.  0.10.2 and 0.11.0 left out
    the one-state decoder (``handover``): the first ``-9`` decode of a colour
    image in each process compiled it (20-27 s on a 2-core AMD EPYC)."""
    import importlib
    import pkgutil

    import pixzip.codec as codec_package

    cached = {m.__name__ for m in cache._modules()}
    names = [info.name for info in pkgutil.walk_packages(codec_package.__path__, "pixzip.codec.")]
    names += [f"pixzip.codec.mixer.{version}.{name}" for version in ("v3", "v4", "v5", "v6")    # version 2's files again
              for name in ("kernel", "vector_ops", "components", "contexts", "predictors", "ols")]
    found = {name for name in names if cache.module_kernels(importlib.import_module(name))}
    assert "pixzip.codec.network.kernels.handover" in found and "pixzip.codec.mixer.v6.kernel" in found
    # ``ols.solve`` is not inlined, but only the kernels call it (compiled into their cached code); from Python
    # only the tests do
    inner = {f"pixzip.codec.mixer.{v}.ols" for v in ("v2", "v3", "v4", "v5", "v6")}
    assert found - inner <= cached, sorted(found - inner - cached)
