"""pixzip bench: real file sizes and times, against the model's own estimates
and against the classical lossless codecs.

For every image and each way pixzip codes it (``METHODS``: the network
alone, the context mixer with the network's counts as an input, the mixer
alone; without a model named, each level and -9's network alone): the
float model's bits/dim (when its checkpoint is known), the
integer network's cross-entropy, the mixer's ideal code length, the .pxz
file's bits per sub-pixel and its overhead over the ideal code length of
what coded it, encode and decode seconds; and the same image through PNG
(Pillow, optimize), WebP lossless (Pillow, method 6, quality 100) and
JPEG-XL lossless (``cjxl -d 0 -e 9`` when it is on PATH, else the libjxl in
``imagecodecs``).  The mixer with and without the network, in one run, shows
the network's share.  Every round trip is checked pixel-exact; a codec that
fails to round-trip is an error, not a number.
"""
from __future__ import annotations

import io
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..codec import api as codec
from ..codec.levels import LEVELS, METHOD_MODEL, MIXER, MIXER_NETWORK, NETWORK, new_name
from ..codec.network import registry
from ..codec.format.images import read_image, to_pil
from ..errors import ImageError, PixzipError, describe_os_error

CODECS = ("png", "webp", "jxl")
METHODS = (NETWORK, MIXER_NETWORK, MIXER)
IMAGE_SUFFIXES = {".png", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".webp", ".jpg", ".jpeg"}


class RoundTripError(PixzipError):
    """A codec's decoded image differs from the original."""


NO_TORCH = "PyTorch is not installed: pip install 'pixzip[train]'"


def _torch():
    """The torch module, or None without the train extra (the float model's
    figures are then left out; everything else runs)."""
    try:
        import torch
        import safetensors  # noqa: F401  (the shipped float checkpoints)
    except ImportError:
        return None
    return torch


@dataclass
class Result:
    """One codec on one image: size in bytes, seconds, and the verified round trip."""
    bytes: int
    encode_s: float
    decode_s: float


@dataclass
class ModelFigures:
    """A pixzip coding's own estimates for one image, beside its file's size:
    the float network's bits/dim, the integer network's cross-entropy, the
    mixer's ideal code length (bits per sub-pixel; None where they do not
    apply), and the payload's size."""
    float_bpd: float | None = None
    int_bpd: float | None = None
    cm_bpd: float | None = None
    payload_bytes: int = 0

    @property
    def ideal_bpd(self) -> float | None:
        """The ideal code length of what coded the payload."""
        return self.cm_bpd if self.cm_bpd is not None else self.int_bpd


@dataclass
class ImageReport:
    path: str
    width: int
    height: int
    channels: int
    models: dict[str, ModelFigures] = field(default_factory=dict)   # label ("pixzip-NAME") -> figures
    codecs: dict[str, Result] = field(default_factory=dict)         # label or codec -> file and times

    @property
    def subpixels(self) -> int:
        return self.width * self.height * self.channels

    def bpsp(self, name: str) -> float:
        return 8 * self.codecs[name].bytes / self.subpixels

    def overhead_pct(self, label: str) -> float | None:
        m = self.models[label]
        if not m.ideal_bpd:
            return None
        return 100 * (8 * m.payload_bytes / (m.ideal_bpd * self.subpixels) - 1)


def image_files(paths) -> list[Path]:
    """Image files from files and folders (a folder's images in name order);
    an error when there are none."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        else:
            out.append(p)
    if not out:
        raise PixzipError("no images found in " + ", ".join(map(str, paths)))
    return out


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _check(name: str, path, pixels: np.ndarray, decoded: np.ndarray) -> None:
    if decoded.shape != pixels.shape or not np.array_equal(decoded, pixels):
        raise RoundTripError(f"{path}: {name} round trip is not pixel-exact")


def pixzip_round_trip(path, pixels: np.ndarray, net, method: str = NETWORK,
                      level: int | None = None) -> tuple[bytes, float, float]:
    """(file, encode s, decode s) of an image through pixzip's ``method``
    (``METHODS``; the mixer alone needs no ``net``) with ``level``'s mixer
    version (None: the default level's), checked pixel-exact."""
    data, t_enc, t_dec, _ = _round_trip(path, pixels, net, method, level, measure=False)
    return data, t_enc, t_dec


def measured_round_trip(path, pixels: np.ndarray, net, method: str = NETWORK,
                        level: int | None = None) -> tuple[bytes, float, float, codec.Stats]:
    """``pixzip_round_trip``, and the ``codec.Stats`` of the same pass; the
    encode seconds leave out the time spent measuring them."""
    return _round_trip(path, pixels, net, method, level, measure=True)


def _round_trip(path, pixels, net, method, level, measure):
    # the coded payload always: the bench measures the models (a stored payload wins only on
    # tiny, flat or noise images, where its overhead figure would mean nothing)
    if measure:
        (data, stats), t_enc = _timed(lambda: codec.compress_with_stats(pixels, net, level=level, payload=method))
        t_enc -= stats.ideal_s
    else:
        (data, t_enc), stats = _timed(lambda: codec.compress(pixels, net, level=level, payload=method)), None
    decoded, t_dec = _timed(lambda: codec.decompress(data, net))
    _check("pixzip", path, pixels, decoded)
    return data, t_enc, t_dec, stats


def png(pixels: np.ndarray) -> tuple[bytes, float, np.ndarray, float]:
    """PNG as the benchmark makes it (Pillow, optimize): (file, encode s, decoded, decode s)."""
    return _pil_codec(pixels, "PNG", optimize=True)


def _pil_codec(pixels: np.ndarray, fmt: str, **options) -> tuple[bytes, float, np.ndarray, float]:
    def encode():
        buf = io.BytesIO()
        to_pil(pixels).save(buf, format=fmt, **options)
        return buf.getvalue()

    def decode():
        with Image.open(io.BytesIO(data)) as im:
            a = np.asarray(im.convert(to_pil(pixels).mode))
        return a[..., None] if a.ndim == 2 else a

    data, t_enc = _timed(encode)
    decoded, t_dec = _timed(decode)
    return data, t_enc, decoded, t_dec


def jxl_backend() -> str | None:
    """How JPEG-XL runs here: "cjxl" (on PATH), "imagecodecs", or None."""
    if shutil.which("cjxl") and shutil.which("djxl"):
        return "cjxl"
    try:
        import imagecodecs
        if imagecodecs.JPEGXL.available:
            return "imagecodecs"
    except ImportError:
        pass
    return None


def jxl_version(backend: str | None) -> str | None:
    if backend == "cjxl":
        out = subprocess.run(["cjxl", "--version"], capture_output=True, text=True)
        return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "cjxl"
    if backend == "imagecodecs":
        import imagecodecs
        return f"imagecodecs {imagecodecs.__version__}, {imagecodecs.jpegxl_version()}"
    return None


def _jxl(pixels: np.ndarray, backend: str) -> tuple[bytes, float, np.ndarray, float]:
    if backend == "imagecodecs":
        import imagecodecs
        a = pixels[..., 0] if pixels.shape[2] == 1 else pixels
        data, t_enc = _timed(lambda: imagecodecs.jpegxl_encode(a, lossless=True, effort=9))
        decoded, t_dec = _timed(lambda: imagecodecs.jpegxl_decode(data))
        return bytes(data), t_enc, decoded.reshape(pixels.shape), t_dec
    with tempfile.TemporaryDirectory() as d:
        src, enc, dec = (os.path.join(d, n) for n in ("in.png", "out.jxl", "out.png"))
        to_pil(pixels).save(src)
        _, t_enc = _timed(lambda: subprocess.run(["cjxl", src, enc, "-d", "0", "-e", "9", "--quiet"],
                                                 check=True, capture_output=True))
        _, t_dec = _timed(lambda: subprocess.run(["djxl", enc, dec, "--quiet"], check=True, capture_output=True))
        data = Path(enc).read_bytes()
        return data, t_enc, read_image(dec), t_dec


def float_model_for(model_name: str, explicit=None):
    """The float checkpoint behind an integer model: ``explicit``, else
    NAME.safetensors next to the shipped NAME.pxm; None when there is none,
    or when PyTorch is not installed."""
    torch = _torch()
    if torch is None:
        return None
    from ..learn.checkpoints import load_model
    path = Path(explicit) if explicit else None
    if path is None:
        f = registry.available().get(model_name)
        if f is not None and f.with_suffix(".safetensors").exists():
            path = f.with_suffix(".safetensors")
    if path is None:
        return None
    return load_model(path).to(memory_format=torch.channels_last)   # see float_bpd


FLOAT_TILE_PIXELS = 1 << 15   # the float pass's strips: 42 rows of a Kodak image, plus the halo


def float_bpd(model, pixels: np.ndarray) -> float:
    """The float model's bits/dim of an image, on the CPU.  Strips of about
    32k pixels and the channels-last layout (of the image here, and of the
    model from ``float_model_for``) make this pass 1.8x faster than
    one of 128k pixels in the default layout (13.2 s -> 7.2 s for 256 rows of
    kodim05 with the default model, on the project's 2-core CPU), with the
    same bits/dim to 6 decimals (the halos make the strips exact, up to
    float rounding)."""
    import torch

    from ..learn.likelihood import LN2, image_nll_nats
    x = torch.from_numpy(pixels.transpose(2, 0, 1)[None].copy()).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        return image_nll_nats(model, x, max_pixels=FLOAT_TILE_PIXELS) / pixels.size / LN2


@dataclass
class ModelUnderTest:
    """A way of coding in a benchmark: the label its columns carry, the
    method (``METHODS``), its integer model (None for the mixer alone) and
    the float model when the checkpoint is known."""
    label: str
    net: object
    float_model: object = None
    method: str = "network"
    level: int | None = None        # the level whose mixer version codes (None: the default level's)


def bench_image(path, models: list[ModelUnderTest], against=CODECS, jxl: str | None = None) -> ImageReport:
    pixels = read_image(path)
    h, w, c = pixels.shape
    rep = ImageReport(str(path), w, h, c)
    floats: dict = {}
    for m in models:
        other_colours = m.net is not None and m.net.colors != c
        if other_colours and m.method == NETWORK:
            continue    # the network alone codes its own colours only (-9 codes a gray image over an RGB network
                        # by the mixer over the network's counts of colour 0: coder 7)
        data, t_enc, t_dec, stats = measured_round_trip(path, pixels, m.net, m.method, m.level)
        rep.codecs[m.label] = Result(len(data), t_enc, t_dec)
        if m.float_model is not None and not other_colours and id(m.float_model) not in floats:
            floats[id(m.float_model)] = float_bpd(m.float_model, pixels)
        network_bits = stats.ideal_bits if m.method == NETWORK else stats.network_bits
        rep.models[m.label] = ModelFigures(
            float_bpd=floats.get(id(m.float_model)) if m.float_model is not None else None,
            int_bpd=None if network_bits is None else network_bits / pixels.size,
            cm_bpd=None if m.method == NETWORK else stats.ideal_bits / pixels.size,
            payload_bytes=codec.read_header(data).payload_length)
    runs = {"png": lambda: png(pixels),
            "webp": lambda: _pil_codec(pixels, "WEBP", lossless=True, quality=100, method=6),
            "jxl": lambda: _jxl(pixels, jxl)}
    for name in against:
        if name == "jxl" and jxl is None:
            continue
        blob, te, out, td = runs[name]()
        _check(name, path, pixels, out)
        rep.codecs[name] = Result(len(blob), te, td)
    return rep


def machine() -> dict:
    import numba
    import PIL

    from .. import __version__
    torch = _torch()
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cpus": os.cpu_count(), "threads": numba.get_num_threads(), "platform": platform.platform(),
            "python": platform.python_version(), "pixzip": __version__,
            "torch": torch.__version__ if torch else None, "numba": numba.__version__, "pillow": PIL.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch and torch.cuda.is_available() else None}


def totals(reports: list[ImageReport]) -> dict:
    """Total bits per sub-pixel (all bytes over all sub-pixels), summed and
    median seconds, per codec; and each pixzip model's estimates and overhead."""
    n = sum(r.subpixels for r in reports)
    out: dict = {"images": len(reports), "subpixels": n, "codecs": {}, "models": {}}
    names = [k for k in reports[0].codecs if all(k in r.codecs for r in reports)]
    for k in names:
        res = [r.codecs[k] for r in reports]
        out["codecs"][k] = {"bpsp": 8 * sum(x.bytes for x in res) / n,
                            "encode_s_total": sum(x.encode_s for x in res),
                            "decode_s_total": sum(x.decode_s for x in res),
                            "encode_s_median": statistics.median(x.encode_s for x in res),
                            "decode_s_median": statistics.median(x.decode_s for x in res)}
    for label in reports[0].models:
        figs = [r.models[label] for r in reports]
        t: dict = {}
        if all(f.int_bpd for f in figs):
            t["int_bpd"] = sum(f.int_bpd * r.subpixels for f, r in zip(figs, reports)) / n
        if all(f.cm_bpd for f in figs):
            t["cm_bpd"] = sum(f.cm_bpd * r.subpixels for f, r in zip(figs, reports)) / n
        if all(f.ideal_bpd for f in figs):
            ideal = sum(f.ideal_bpd * r.subpixels for f, r in zip(figs, reports)) / n
            t["overhead_pct"] = 100 * (8 * sum(f.payload_bytes for f in figs) / (ideal * n) - 1)
            t["overhead_pct_max"] = max(r.overhead_pct(label) for r in reports)
        if all(f.float_bpd is not None for f in figs):
            t["float_bpd"] = sum(f.float_bpd * r.subpixels for f, r in zip(figs, reports)) / n
        out["models"][label] = t
    return out


def _fmt(v, spec=".3f"):
    return "—" if v is None else format(v, spec)


def markdown(reports: list[ImageReport], total: dict) -> str:
    """Two tables: bits per sub-pixel (with each model's float and integer
    estimates and its coding overhead), then encode / decode seconds."""
    names = list(total["codecs"])
    labels = list(total["models"])
    head = ["image", "size"]
    for k in labels:
        head += [f"{k} float bpd", f"{k} net CE", f"{k} cm ideal", f"{k} overhead %"]
    head += [f"{k} bpsp" for k in names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in reports:
        row = [Path(r.path).name, f"{r.width}x{r.height}"]
        for k in labels:
            m = r.models[k]
            row += [_fmt(m.float_bpd), _fmt(m.int_bpd), _fmt(m.cm_bpd), _fmt(r.overhead_pct(k), "+.4f")]
        row += [f"{r.bpsp(k):.3f}" for k in names]
        lines.append("| " + " | ".join(row) + " |")
    row = [f"**total ({total['images']})**", ""]
    for k in labels:
        t = total["models"][k]
        row += [_fmt(t.get("float_bpd")), _fmt(t.get("int_bpd")), _fmt(t.get("cm_bpd")),
                _fmt(t.get("overhead_pct"), "+.4f")]
    row += [f"**{total['codecs'][k]['bpsp']:.3f}**" for k in names]
    lines.append("| " + " | ".join(row) + " |")
    lines += ["", "| image | " + " | ".join(f"{k} enc / dec s" for k in names) + " |",
              "|" + "---|" * (len(names) + 1)]
    for r in reports:
        lines.append(f"| {Path(r.path).name} | " + " | ".join(
            f"{r.codecs[k].encode_s:.2f} / {r.codecs[k].decode_s:.2f}" for k in names) + " |")
    lines.append("| **median** | " + " | ".join(
        f"**{total['codecs'][k]['encode_s_median']:.2f} / {total['codecs'][k]['decode_s_median']:.2f}**"
        for k in names) + " |")
    lines.append("")
    lines.append("bpsp: bits per sub-pixel of the file; total: all bytes over all sub-pixels. net CE: the "
                 "integer network's cross-entropy; cm ideal: the context mixer's ideal code length; overhead: "
                 "payload over the ideal code length of what coded it. pixzip -N: the level N (-1: the mixer 1 "
                 "alone; -6, the default: the mixer 3 alone (a gray image: the mixer 2); -9: the mixer 6 with the "
                 "level's network's counts as an input (a gray image: the mixer 2 over the counts of colour 0, "
                 "the image seen as (L, L, L))); "
                 "pixzip-NAME: the network NAME alone; pixzip-NAME+cm: the mixer with NAME's counts as an input; "
                 "pixzip-cm: the mixer alone. Seconds: per image, median last.")
    return "\n".join(lines)


def _label(model) -> str:
    name = Path(str(model)).stem if str(model).endswith(registry.SUFFIX) else str(model)
    return f"pixzip-{name}"


def run(files, models=None, against=CODECS, float_checkpoints=None, progress=None,
        methods=METHODS) -> tuple[list[ImageReport], dict]:
    """Benchmark the images ``files`` (see ``image_files``) with each of
    ``models`` (names, aliases or .pxm files), each coded by every one of
    ``methods`` that uses a network, and once by the mixer alone if "mixer"
    is among them; ``float_checkpoints`` optionally pairs each model with
    its float checkpoint.  Without ``models`` (and float checkpoints, which
    then pair with -9's model), each level whose method is among
    ``methods`` ("pixzip -1", "pixzip -6", "pixzip -9"), and -9's network
    alone ("pixzip-max") if "network" is.  Returns the reports and
    a JSON-able summary (machine, models, codecs, per-image figures and
    totals)."""
    for f in files:   # fail before any work on a path that cannot be read
        if not f.is_file():
            raise ImageError(describe_os_error(f, FileNotFoundError()) if not f.exists() else f"{f}: not a file")
    unknown = set(against) - set(CODECS)
    if unknown:
        raise PixzipError(f"unknown codec(s) {', '.join(sorted(unknown))} (known: {', '.join(CODECS)})")
    methods = tuple(new_name(k) for k in methods)
    unknown = set(methods) - set(METHODS)
    if unknown or not methods:
        raise PixzipError(f"unknown method(s) {', '.join(sorted(unknown)) or '(none given)'} "
                          f"(known: {', '.join(METHODS)})")
    if isinstance(models, (str, Path)):
        models = [models]
    if models is None and float_checkpoints:       # a float checkpoint pairs with a model: -9's, as before
        models = [METHOD_MODEL]
    under_test = _levels_under_test(methods) if models is None else \
        _models_under_test(models, methods, list(float_checkpoints or []))
    if len({m.label for m in under_test}) != len(under_test):
        raise PixzipError("the same model is named twice")
    jxl = jxl_backend() if "jxl" in against else None
    for m in under_test:
        codec.warm_up(m.net, m.method, m.level)
    reports = []
    for f in files:
        reports.append(bench_image(f, under_test, against, jxl))
        if progress is not None:
            progress(1)
    total = totals(reports)
    notes = []
    if "jxl" in against and jxl is None:
        notes.append("JPEG-XL skipped: neither cjxl/djxl on PATH nor imagecodecs with libjxl")
    for m in under_test:
        if m.float_model is None and m.net is not None and m.method == "network":
            notes.append(f"{m.label}: no float bits/dim: " + (
                "no float checkpoint for this model (--float CKPT)" if _torch() else NO_TORCH))
    summary = {"machine": machine(),
               "models": {m.label: {"method": m.method, "name": m.net.name if m.net else None,
                                    "sha256": m.net.sha256 if m.net else None, "config": {
                   k: getattr(m.net.config, k) for k in ("colors", "channels", "layers", "kernel", "skip_channels",
                                                "head_channels")} if m.net else None} for m in under_test},
               "codecs": {"png": "Pillow optimize=True", "webp": "Pillow lossless, method 6, quality 100",
                          "jxl": f"lossless, effort 9 ({jxl_version(jxl)})" if jxl else None},
               "notes": notes, "images": [_report_json(r) for r in reports], "total": total}
    return reports, summary


def _levels_under_test(methods) -> list[ModelUnderTest]:
    """Each level whose method is among ``methods``, and -9's network alone if "network" is."""
    out, nets = [], {}
    for n, level in sorted(LEVELS.items()):
        if level.method in methods:
            if level.model is not None and level.model not in nets:
                nets[level.model] = codec.load_model(level.model)
            net = nets.get(level.model)
            fm = float_model_for(net.name) if net is not None else None
            out.append(ModelUnderTest(f"pixzip -{n}", net, fm, level.method, n))
    if NETWORK in methods:
        net = nets.get(METHOD_MODEL) or codec.load_model(METHOD_MODEL)
        out.append(ModelUnderTest(_label(METHOD_MODEL), net, float_model_for(net.name), NETWORK))
    return out


def _models_under_test(models, methods, floats) -> list[ModelUnderTest]:
    """Each model by each of ``methods`` that uses a network, and the mixer alone if "mixer" is among them."""
    if len(floats) > len(models):
        raise PixzipError(f"{len(floats)} float checkpoints for {len(models)} model(s)")
    floats += [None] * (len(models) - len(floats))
    if any(floats) and _torch() is None:
        raise PixzipError(f"the float checkpoints (--float) need PyTorch; {NO_TORCH}")
    out = []
    networked = [k for k in METHODS if k in methods and k != MIXER]
    for m, f in zip(models, floats):
        net = codec.load_model(m) if networked else None
        fm = float_model_for(net.name, f) if net is not None else None
        for k in networked:
            out.append(ModelUnderTest(_label(m) + ("+cm" if k == MIXER_NETWORK else ""), net, fm, k))
    if MIXER in methods:
        out.append(ModelUnderTest("pixzip-cm", None, None, MIXER))
    return out


def _report_json(r: ImageReport) -> dict:
    return {"path": r.path, "width": r.width, "height": r.height, "channels": r.channels,
            "models": {k: {"float_bpd": m.float_bpd, "int_bpd": m.int_bpd, "cm_bpd": m.cm_bpd,
                           "payload_bytes": m.payload_bytes, "overhead_pct": r.overhead_pct(k)}
                       for k, m in r.models.items()},
            "codecs": {k: {"bytes": x.bytes, "bpsp": r.bpsp(k), "encode_s": x.encode_s, "decode_s": x.decode_s}
                       for k, x in r.codecs.items()}}


def write_json(summary: dict, path) -> None:
    import json

    from ..atomic import atomic_write
    text = json.dumps(summary, indent=1)
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text))
