import importlib.util
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from pixzip.learn import ModelConfig, build_model


def pytest_configure(config):
    # The checkout's cli/ installs as pixzip.cli, so the tests need the package
    # installed; a plain install would also leave them testing a stale copy.
    if importlib.util.find_spec("pixzip.cli") is None:
        raise pytest.UsageError("pixzip.cli is not importable: install the checkout editable, "
                                "python -m pip install -e \".[train,test,bench]\" (see the README)")
    config.addinivalue_line("markers", "start_early(start): the test waits for a process that start(folder) "
                                       "began when the tests were collected (``early_process``)")


_EARLY: dict = {}       # test id -> (its process, its folder)


@pytest.hookimpl(trylast=True)      # after -k and -m have deselected: a deselected test starts nothing
def pytest_collection_modifyitems(config, items):
    """A selected test that waits for a long process of its own (the generic
    x86-64 build: minutes of compiling on one core) has it started now, so
    that it runs on another core while the other tests do."""
    for item in items:
        if item.get_closest_marker("start_early") is not None:
            _start_early(item)


def _start_early(item):
    """(process, folder) of the item's ``start_early`` mark, started once."""
    if item.nodeid not in _EARLY:
        folder = Path(tempfile.mkdtemp(prefix="pixzip-early-"))
        _EARLY[item.nodeid] = (item.get_closest_marker("start_early").args[0](folder), folder)
    return _EARLY[item.nodeid]


def pytest_sessionfinish(session):
    for process, folder in _EARLY.values():
        if process.poll() is None:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)
    _EARLY.clear()


@pytest.fixture
def early_process(request):
    """(process, folder) of the test's ``start_early`` mark, started at collection (or now)."""
    return _start_early(request.node)


def tiny_model(arch="gated", colors=3, channels=6, layers=2, kernel=3, n_classes=0, seed=0, dtype=torch.float64,
               head_channels=48, skip_channels=48):
    """A small random model.  A wide skip and head keep the head's ReLUs from all
    dying for one colour group, which would make every gradient trivially zero."""
    torch.manual_seed(seed)
    m = build_model(ModelConfig(arch=arch, colors=colors, channels=channels, layers=layers,
                                kernel=kernel, n_classes=n_classes, head_channels=head_channels,
                                skip_channels=skip_channels))
    return m.to(dtype).eval()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


_INT_MODELS = {}


def tiny_int_model(colors=3, layers=2, kernel=3, channels=None, name=None):
    """A small randomly initialised model exported to the integer network.
    Losslessness must not depend on training, so the codec is tested with these."""
    from pixzip.codec.network.modelfile import ModelFile
    from pixzip.learn.export import export_gated

    channels = channels or (6 if colors == 3 else 4)
    key = (colors, layers, kernel, channels, name)
    if key not in _INT_MODELS:
        model = tiny_model("gated", colors, channels, layers, kernel, seed=11).float()
        rng = np.random.default_rng(5)
        calib = [rng.integers(0, 256, (12, 12, colors), dtype=np.uint8) for _ in range(4)]
        net = export_gated(model, calib, name or f"tiny{colors}")
        _INT_MODELS[key] = ModelFile.from_bytes(net.to_bytes())
    return _INT_MODELS[key]


@pytest.fixture
def model_dir(tmp_path, monkeypatch):
    """A model folder on $PIXZIP_MODELS holding tiny models named tiny3 (RGB) and tiny1 (L)."""
    d = tmp_path / "models"
    d.mkdir()
    for colors in (3, 1):
        net = tiny_int_model(colors)
        (d / f"{net.name}.pxm").write_bytes(net.to_bytes())
    monkeypatch.setenv("PIXZIP_MODELS", str(d))
    return d


@pytest.fixture
def network_payload(monkeypatch):
    """Compression always codes (with the level's or the given method).  The
    tiny random models never beat the raw pixels, so without this the
    automatic choice would store every test image raw, and the coded paths
    would go untested."""
    import functools
    import inspect

    from pixzip.codec import api as codec
    if "payload" in inspect.signature(codec.compress).parameters:   # (pixzip before 0.2 had no choice)
        monkeypatch.setattr(codec, "compress", functools.partial(codec.compress, payload="coded"))


def once_subsampled(img: np.ndarray) -> np.ndarray:
    """An RGB image whose colour differences (R - G, B - G) at odd columns, then at odd rows, are the mean of
    their two neighbours', the green kept: colour interpolated back from half the samples, as 4:2:0 colour is
    (the mixer 6's ``prior.choose`` names set 1 for it)."""
    out = img.astype(np.int64)
    g = out[..., 1]
    for c in (0, 2):
        d = out[..., c] - g
        d[:, 1:-1:2] = (d[:, 0:-2:2] + d[:, 2::2]) // 2
        d[1:-1:2] = (d[0:-2:2] + d[2::2]) // 2
        out[..., c] = np.clip(g + d, 0, 255)
    return out.astype(np.uint8)


def column_parts_of(data: bytes) -> int:
    """The column parts of a format-2 archive's mixer payload over a network, as its coder reads them (coder
    12's payload names its prior's set before them)."""
    from pixzip.codec import coders
    from pixzip.codec.format import container
    header, payload, _ = container.parse(data)
    return coders.for_header(header).frame(header, payload).parts
