"""The integer model file (.pxm): a typed config, the integer tensors and
tables, and the model's own name; its sha256 is the model's identity.

A .pxm file is a numpy .npz archive (no pickles): ``__meta__`` holds the
JSON of {"format", "name", "config"}, and every other member is an integer
array (weights ``*.w``, biases ``*.b``, multipliers ``*.m``, and the tanh,
sigmoid and exp tables of ``contract.make_tables``).  Nothing here needs
torch: the kernels, the registry and the reference network all read models
through this class.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from ...errors import ModelFileError, describe_os_error
from ..contract import (ACC_LIMIT, ACT_MAX, COUNT_BITS, EXACT_F64, GATE_LIMIT, LOGIT_LIMIT, SKIP_LIMIT, TABLE_BITS)

# The model format names the integer arithmetic, the file's layout and the
# tables; any change to one of them is a new format.  Format 1 was 8-bit
# (gate units 128, activations to 127); 6cbc814 made it 10-bit (gate units
# 512, activations to 511) but kept the string "pixzip-int-gated/1", so a file
# saying /1 is told apart by its tanh table: 2 * 8 * GATE_UNITS + 1 entries.
# Those 10-bit files (the shipped models among them) are format 2, which is
# what exports write now.
FORMAT = "pixzip-int-gated/2"
FORMAT_PREFIX = "pixzip-int-gated/"
FORMATS = (2,)                       # the model formats this pixzip runs
LEGACY_KEYS = ("exact",)             # written by older exports, read by nothing


# Limits of what a model file may ask for.  A .pxm is exchanged between users,
# so it is untrusted input: everything the kernels index with or allocate from
# is checked at load (``IntConfig.from_dict``, ``check_tensors``, ``_read_npz``).
# The shipped models are far inside them (photo-g66x8-v1: 66 channels, 8
# layers, kernel 3, 1.9 MB of tensors).
MAX_LAYERS = 64
MAX_KERNEL = 15                      # odd, >= 3
MAX_CHANNELS = 1024                  # feature maps per stack
MAX_WIDE = 4096                      # skip and head channels
MAX_CLASSES = 4096
MAX_SHIFT = 62                       # requantization shifts are 1..62
MAX_MULT = 1 << 53                   # |multipliers| and |biases|: exact in float64
MAX_EXP = 1 << 15                    # exp table entries (the coder's counts rule)
META_BYTES = 64 << 10                # the __meta__ JSON
MODEL_BYTES = 64 << 20               # all tensors together, as the config implies them
FILE_BYTES = MODEL_BYTES + (1 << 20)  # a model file on disk
NPY_HEADER = 4096                    # room for a member's .npy header
TABLE_ONE = 1 << TABLE_BITS
COUNT_MAX = 1 << COUNT_BITS


def _int(where: str, v, lo: int, hi: int) -> int:
    if type(v) is not int or not lo <= v <= hi:
        raise ModelFileError(f"{where} is {_show(v)}, not an integer in {lo}..{hi}")
    return v


def _show(v) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


@dataclass(frozen=True)
class IntConfig:
    """The shape and the fixed-point parameters of an integer Gated PixelCNN."""
    colors: int                      # 1 (L) or 3 (RGB)
    channels: int                    # feature maps per stack (p)
    layers: int
    kernel: int                      # odd
    skip_channels: int
    head_channels: int
    shift: dict[str, int]            # requantization shift of each linear layer, by prefix
    gate_mult: list[int]             # gate requantization (2 per layer: vertical, horizontal)
    gate_shift: list[int]
    head_in_mult: int
    head_in_shift: int
    n_classes: int = 0
    arch: str = "gated"
    bound: dict[str, float] = field(default_factory=dict)        # sum|w| * max|a| per layer (for reading)
    calibration: dict[str, float] = field(default_factory=dict)  # the export's activation statistics

    @classmethod
    def from_dict(cls, d: dict) -> "IntConfig":
        """The config of a model file's JSON, every field checked: a model this
        pixzip does not run, or one whose shapes or scales the kernels cannot
        index or keep exact with, is a ModelFileError."""
        if not isinstance(d, dict):
            raise ModelFileError("the model's config is not a table")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known - set(LEGACY_KEYS)
        if unknown:
            raise ModelFileError(f"the model's config has unknown fields: {_show(', '.join(sorted(map(str, unknown))))}")
        try:
            cfg = cls(**{k: v for k, v in d.items() if k in known})
        except TypeError as e:
            raise ModelFileError(f"the model's config is incomplete ({e})") from None
        if cfg.arch != "gated" or cfg.colors not in (1, 3):
            raise ModelFileError(f"not a model this pixzip runs (arch {_show(cfg.arch)}, {_show(cfg.colors)} colours)")
        cfg._check()
        return cfg

    def _check(self) -> None:
        C = self.colors
        _int("the model's layers", self.layers, 1, MAX_LAYERS)
        if _int("the model's kernel", self.kernel, 3, MAX_KERNEL) % 2 != 1:
            raise ModelFileError(f"the model's kernel is {self.kernel}, not odd")
        for what, v, hi in (("channels", self.channels, MAX_CHANNELS), ("skip_channels", self.skip_channels, MAX_WIDE),
                            ("head_channels", self.head_channels, MAX_WIDE)):
            if _int(f"the model's {what}", v, 1, hi) % C:
                raise ModelFileError(f"the model's {what} ({v}) is not a multiple of its {C} colours")
        _int("the model's n_classes", self.n_classes, 0, MAX_CLASSES)
        if not isinstance(self.shift, dict) or set(self.shift) != set(layer_prefixes(self.layers)):
            raise ModelFileError("the model's shifts do not name its layers")
        for prefix, s in self.shift.items():
            _int(f"the shift of layer {prefix}", s, 1, MAX_SHIFT)
        for what, v in (("gate_mult", self.gate_mult), ("gate_shift", self.gate_shift)):
            if not isinstance(v, list) or len(v) != 2 * self.layers:
                raise ModelFileError(f"the model's {what} is not a list of 2 per layer")
        for i in range(2 * self.layers):
            _int(f"the model's gate_mult[{i}]", self.gate_mult[i], 1 - MAX_MULT, MAX_MULT - 1)
            _int(f"the model's gate_shift[{i}]", self.gate_shift[i], 1, MAX_SHIFT)
        _int("the model's head_in_mult", self.head_in_mult, 1 - MAX_MULT, MAX_MULT - 1)
        _int("the model's head_in_shift", self.head_in_shift, 1, MAX_SHIFT)
        for what, v in (("bound", self.bound), ("calibration", self.calibration)):
            if not isinstance(v, dict) or not all(isinstance(k, str) and type(x) in (int, float)
                                                  for k, x in v.items()):
                raise ModelFileError(f"the model's {what} is not a table of numbers")

    def to_dict(self) -> dict:
        return asdict(self)

    def tensor_specs(self) -> dict[str, tuple[tuple[int, ...] | None, tuple[int, ...]]]:
        """Every tensor a model of this config holds: name -> (exact shape, or
        None for the exp table (1..MAX_EXP entries), allowed integer sizes in
        bytes).  Weights are 2-D (rows, inputs) as ``learn.export`` writes them."""
        C, p, L, k = self.colors, self.channels, self.layers, self.kernel
        k2, S, H = k // 2, self.skip_channels, self.head_channels
        w, wide, table = (1, 2), (4, 8), (4, 8)
        specs: dict = {"tanh": ((2 * GATE_LIMIT + 1,), table), "sigmoid": ((2 * GATE_LIMIT + 1,), table),
                       "exp": (None, table)}

        def linear(prefix, rows, inputs):
            specs[prefix + ".w"] = ((rows, inputs), w)
            specs[prefix + ".b"] = ((rows,), wide)
            specs[prefix + ".m"] = ((rows,), wide)
        for l in range(L):
            cin = C if l == 0 else p
            linear(f"v_conv.{l}", 2 * p, cin * (k2 + 1) * k)
            linear(f"link.{l}", 2 * p, 2 * p)
            linear(f"h_conv.{l}", 2 * p, cin * (k2 + 1))
            linear(f"skip.{l}", S, p)
            linear(f"h_out.{l}", p, p)
        linear("head1", H, S)
        linear("head2", 256 * C, H)
        if self.n_classes:
            specs["v_cond"] = ((self.n_classes, L, 2 * p), wide)
            specs["h_cond"] = ((self.n_classes, L, 2 * p), wide)
        return specs


def layer_prefixes(layers: int) -> list[str]:
    """The linear layers of a model, by the prefix of their tensors."""
    return [f"{kind}.{l}" for l in range(layers) for kind in ("v_conv", "link", "h_conv", "skip", "h_out")] + \
        ["head1", "head2"]


def max_input(prefix: str) -> int:
    """The largest |input| of a linear layer: layer 0's convolutions read 2x - 255,
    the links read clamped gate pre-activations, the others activations."""
    if prefix in ("v_conv.0", "h_conv.0"):
        return 255
    return GATE_LIMIT if prefix.startswith("link.") else ACT_MAX


def requantization(model: "ModelFile", prefix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(int64 weights, float64 scale, float64 offset, largest |output|) per row of a
    linear layer, after checking that its int32 accumulation cannot wrap and that
    ``floor(acc * scale + offset)`` is exact in float64 (below 2^53), so the
    kernels give exactly the reference's integers."""
    t = model.tensors
    w = np.asarray(t[prefix + ".w"], np.int64)
    b = np.asarray(t[prefix + ".b"], np.int64)
    m = np.asarray(t[prefix + ".m"], np.int64)
    shift = int(model.config.shift[prefix])
    if np.any(np.abs(b.astype(np.float64)) >= MAX_MULT) or np.any(np.abs(m.astype(np.float64)) >= MAX_MULT):
        raise ModelFileError(f"layer {prefix}: a bias or multiplier is not below 2^53")
    acc = np.abs(w).reshape(w.shape[0], -1).sum(axis=1) * max_input(prefix)
    if acc.size and acc.max() >= ACC_LIMIT:
        raise ModelFileError(f"layer {prefix}: accumulator bound {acc.max():.3g} does not fit in int32")
    half = 1 << (shift - 1)
    # float64 rounding is monotonic and 2^53 is a float64: a product that reaches
    # 2^53 never rounds below it, so this test refuses every inexact layer
    top = (acc + np.abs(b)).astype(np.float64) * np.abs(m).astype(np.float64) + half
    if np.any(top >= EXACT_F64):
        raise ModelFileError(f"layer {prefix}: requantization is not exact in float64")
    scale = np.ldexp(m.astype(np.float64), -shift)
    offset = np.ldexp((b * m + half).astype(np.float64), -shift)
    return w, scale, offset, np.ldexp(top, -shift)


def check_tensors(model: "ModelFile") -> None:
    """Refuse tensors the kernels could not run exactly and safely with.

    Shapes and integer dtypes are the config's (``IntConfig.tensor_specs``).
    The compiled kernels (``kernels/layers.py``) and the reference index:

    - ``tanh[a + GATE_LIMIT]`` and ``sigmoid[b + GATE_LIMIT]`` with a, b
      clamped to +-GATE_LIMIT: both tables have exactly 2 * GATE_LIMIT + 1
      entries, each |v| <= 2^TABLE_BITS (their product, <= 2^30, is exact);
    - ``exp[min(gap, len(exp) - 1)]`` with gap >= 0 the distance of a logit to
      the largest (int32: logits are below 2^30): 1..MAX_EXP entries, each
      1..2^COUNT_BITS, so every count is >= 1 and 256 counts sum exactly;
    - every linear layer: sum|w| * max|input| < 2^31 (int32 accumulators, and
      the int16 pair products), |b|, |m| < 2^53 and (acc + |b|) * |m| +
      2^(shift-1) < 2^53 (float64 requantization); head2's logits below 2^30;
      the skip terms summed over the layers below 2^53;
    - the gate and head-input requantizations: max|tanh| * max|sigmoid| (or
      the skip clamp) * |mult| + 2^(shift-1) < 2^53;
    - class biases (when the model has classes) within +-GATE_LIMIT.
    """
    cfg, t = model.config, model.tensors
    for name in ("tanh", "sigmoid"):
        a = t[name]
        if np.any(a < -TABLE_ONE) or np.any(a > TABLE_ONE):
            raise ModelFileError(f"its {name} table has values beyond +-2^{TABLE_BITS}")
    exp = t["exp"]
    if not 1 <= len(exp) <= MAX_EXP:
        raise ModelFileError(f"its exp table has {len(exp)} entries, not 1..{MAX_EXP}")
    if np.any(exp < 1) or np.any(exp > COUNT_MAX):
        raise ModelFileError(f"its exp table has counts outside 1..2^{COUNT_BITS}")
    for name in ("v_cond", "h_cond"):
        if name in t and np.any(np.abs(t[name].astype(np.float64)) > GATE_LIMIT):
            raise ModelFileError(f"its {name} class biases are beyond +-{GATE_LIMIT}")
    skip_top = 0.0
    for prefix in layer_prefixes(cfg.layers):
        top = requantization(model, prefix)[3]
        if prefix.startswith("skip."):
            skip_top += float(top.max())
        if prefix == "head2" and np.any(top >= LOGIT_LIMIT):
            raise ModelFileError("layer head2: logits may not fit in int32")
    if skip_top >= EXACT_F64:
        raise ModelFileError("its skip connections' sum is not exact in float64")
    table_max = float(np.abs(t["tanh"]).max()) * float(np.abs(t["sigmoid"]).max())
    scalars = [(cfg.gate_mult[i], cfg.gate_shift[i], table_max) for i in range(2 * cfg.layers)]
    scalars.append((cfg.head_in_mult, cfg.head_in_shift, SKIP_LIMIT))
    for m, s, top in scalars:
        if top * abs(m) + 2.0 ** (s - 1) >= EXACT_F64:
            raise ModelFileError("a gate or head requantization is not exact in float64")


class ModelFile:
    """An integer model as its file holds it: name, config, tensors, sha256."""

    def __init__(self, config: IntConfig | dict, tensors: dict[str, np.ndarray], name: str = "",
                 sha256: str = ""):
        """A model from its config and tensors, every tensor checked against the
        config (names, integer dtypes, shapes) and the kernels' bounds
        (``check_tensors``): a ModelFileError names what is wrong."""
        self.config = config if isinstance(config, IntConfig) else IntConfig.from_dict(config)
        self.tensors = {k: np.asarray(v) for k, v in tensors.items()}
        self.name = name
        self.sha256 = sha256
        specs = self.config.tensor_specs()
        missing, extra = sorted(set(specs) - set(self.tensors)), sorted(set(self.tensors) - set(specs))
        if missing or extra:
            raise ModelFileError(f"{'missing tensor' if missing else 'unexpected member'} "
                                 f"{_show((missing or extra)[0])}")
        for key, (shape, sizes) in specs.items():
            _check_array(key, self.tensors[key].dtype, self.tensors[key].shape, shape, sizes)
        check_tensors(self)
        self.exp = self.tensors["exp"].astype(np.int64)

    # -- shape ---------------------------------------------------------------
    @property
    def colors(self) -> int:
        return self.config.colors

    @property
    def p(self) -> int:
        return self.config.channels

    @property
    def layers(self) -> int:
        return self.config.layers

    @property
    def k2(self) -> int:
        return self.config.kernel // 2

    @property
    def n_classes(self) -> int:
        return self.config.n_classes

    @property
    def skip_channels(self) -> int:
        return self.config.skip_channels

    @property
    def reach(self) -> int:
        """R: columns of context to the right in the rows above (and to the left)."""
        return self.layers * self.k2

    @property
    def rows_above(self) -> int:
        return self.reach + 1

    def class_biases(self, label: int | None) -> tuple[np.ndarray, np.ndarray] | None:
        """(vertical, link) class biases (layers, 2p) of a label in gate units, or None."""
        if not self.n_classes or label is None:
            return None
        return self.tensors["v_cond"][label], self.tensors["h_cond"][label]

    # -- bytes ---------------------------------------------------------------
    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        meta = json.dumps({"format": FORMAT, "name": self.name, "config": self.config.to_dict()}, sort_keys=True)
        np.savez_compressed(buf, __meta__=np.frombuffer(meta.encode(), dtype=np.uint8), **self.tensors)
        return buf.getvalue()

    def save(self, path, overwrite: bool = True) -> str:
        """Write the model file atomically; its sha256 is the model's identity."""
        from ...atomic import atomic_write_bytes
        data = self.to_bytes()
        atomic_write_bytes(path, data, overwrite=overwrite)
        self.sha256 = hashlib.sha256(data).hexdigest()
        return self.sha256

    @classmethod
    def from_bytes(cls, data: bytes) -> "ModelFile":
        """A model from a file's bytes; a damaged or hostile file, or one of
        another model format, is a ModelFileError that names the problem."""
        if len(data) > FILE_BYTES:
            raise ModelFileError(f"not a pixzip model file: {len(data)} bytes, over {FILE_BYTES}")
        with _zip(io.BytesIO(data)) as z:
            meta, config = _read_meta(z)
            tensors = _read_tensors(z, config)
        return cls(config, tensors, meta["name"], hashlib.sha256(data).hexdigest())

    @classmethod
    def load(cls, path) -> "ModelFile":
        """The model in a file; every ModelFileError names the file."""
        try:
            if Path(path).stat().st_size > FILE_BYTES:
                raise ModelFileError(f"not a pixzip model file: over {FILE_BYTES} bytes")
            return cls.from_bytes(Path(path).read_bytes())
        except ModelFileError as e:
            raise ModelFileError(f"{path}: {e}") from None
        except OSError as e:
            raise ModelFileError(describe_os_error(path, e)) from None

    def __repr__(self) -> str:
        c = self.config
        return (f"<ModelFile {self.name!r} {self.sha256[:16]}: {c.channels}ch x {c.layers} layers, "
                f"k={c.kernel}, {c.colors} colours>")


# -- reading the file: a zip of .npy members, read within bounds -------------------
def _check_array(key: str, dtype: np.dtype, shape: tuple, want: tuple | None, sizes: tuple[int, ...]) -> None:
    if dtype.kind != "i" or dtype.itemsize not in sizes:
        raise ModelFileError(f"tensor {key} is {dtype}, not an integer of {' or '.join(map(str, sizes))} bytes")
    if want is None:                                  # the exp table
        if len(shape) != 1 or not 1 <= shape[0] <= MAX_EXP:
            raise ModelFileError(f"its exp table has shape {shape}, not 1..{MAX_EXP} entries")
    elif tuple(shape) != want:
        raise ModelFileError(f"tensor {key} has shape {tuple(shape)}, not {want}")


@contextmanager
def _zip(source):
    """The model file as a zip archive, its members listed (not read): every
    name once, stored or deflated, not encrypted."""
    try:
        z = zipfile.ZipFile(source)
    except Exception as e:   # noqa: BLE001 - zipfile's parser raises many kinds on a damaged directory
        # (BadZipFile, NotImplementedError, ValueError, EOFError, OSError, struct.error, ...)
        raise ModelFileError(f"not a readable pixzip model file ({e.__class__.__name__})") from None
    with z:
        names = [i.filename for i in z.infolist()]
        if len(names) > 4 * len(layer_prefixes(MAX_LAYERS)) + 16:
            raise ModelFileError(f"not a pixzip model file: {len(names)} members")
        seen = set()
        for info in z.infolist():
            if info.filename in seen:
                raise ModelFileError(f"member {_show(info.filename)} appears twice")
            seen.add(info.filename)
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 1:
                raise ModelFileError(f"member {_show(info.filename)} is encrypted or compressed in an unknown way")
        yield z


def _member(z: zipfile.ZipFile, key: str, want: tuple | None, sizes: tuple[int, ...], cap: int | None = None,
            kind: str = "i") -> np.ndarray:
    """Tensor ``key`` of the zip: its size from the zip's directory checked
    before anything is decompressed, its .npy header's dtype and shape checked
    before its data is read, and at most the bytes they imply read."""
    try:
        info = z.getinfo(key + ".npy")
    except KeyError:
        raise ModelFileError(f"missing tensor {key}") from None
    n = int(np.prod(want)) * max(sizes) if want is not None else cap
    if info.file_size > n + NPY_HEADER:
        raise ModelFileError(f"member {key} claims {info.file_size} bytes, over the {n + NPY_HEADER} it may hold")
    try:
        with z.open(info) as f:
            shape, fortran, dtype = _npy_header(f, key)
            if kind == "u":        # __meta__: JSON bytes
                if dtype != np.uint8 or len(shape) != 1 or not 0 <= shape[0] <= cap:
                    raise ModelFileError(f"its {key} is not up to {cap} bytes of JSON")
            else:
                _check_array(key, dtype, shape, want, sizes)
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            raw = f.read(nbytes + 1)
            if len(raw) != nbytes:
                raise ModelFileError(f"member {key} holds {len(raw)} bytes of data, not {nbytes}")
    except ModelFileError:
        raise
    except Exception as e:   # noqa: BLE001 - numpy's .npy header parser (ast, tokenize), zipfile's CRC
        # check and zlib raise many kinds on a damaged member; the sizes were bounded above
        raise ModelFileError(f"member {key} is damaged ({e.__class__.__name__})") from None
    a = np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return a.astype(dtype.newbyteorder("="))


def _read_name(z: zipfile.ZipFile) -> dict:
    """The model's metadata with its name checked, reading no more than META_BYTES."""
    raw = _member(z, "__meta__", None, (1,), cap=META_BYTES, kind="u")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, RecursionError):
        raise ModelFileError("its __meta__ is not JSON") from None
    if not isinstance(meta, dict):
        raise ModelFileError("its __meta__ is not a table")
    name = meta.get("name")
    if not (isinstance(name, str) and 1 <= len(name) <= 64 and name.isascii() and name.isprintable()):
        raise ModelFileError(f"its model name {_show(name)} is not 1..64 printable ASCII characters")
    return meta


def _read_meta(z: zipfile.ZipFile) -> tuple[dict, IntConfig]:
    """The model's metadata and checked config, its members those the config
    names; a model format this pixzip does not run is refused by name."""
    meta = _read_name(z)
    tanh = _npy_shape(z, "tanh")
    model_format(meta, tanh[0] if len(tanh) == 1 else -1)
    config = IntConfig.from_dict(meta.get("config"))
    specs = {k + ".npy" for k in config.tensor_specs()} | {"__meta__.npy"}
    found = set(z.namelist())
    if found != specs:
        missing, extra = sorted(specs - found), sorted(found - specs)
        raise ModelFileError(f"missing tensor {missing[0][:-4]}" if missing else f"unexpected member {_show(extra[0])}")
    return meta, config


def _npy_header(f, key: str) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran order, dtype) of the .npy header at the start of a member (at most NPY_HEADER bytes)."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f, max_header_size=NPY_HEADER)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f, max_header_size=NPY_HEADER)
    raise ModelFileError(f"member {key} is an .npy of version {version}")


def _npy_shape(z: zipfile.ZipFile, key: str) -> tuple:
    """The shape in a member's .npy header (its data not read); () if it cannot be read."""
    try:
        with z.open(key + ".npy") as f:
            return _npy_header(f, key)[0]
    except Exception:   # noqa: BLE001 - missing or damaged: the full read names the problem
        return ()


def _read_tensors(z: zipfile.ZipFile, config: IntConfig) -> dict[str, np.ndarray]:
    specs = config.tensor_specs()
    total = sum(int(np.prod(shape)) * max(sizes) for shape, sizes in specs.values() if shape is not None)
    if total > MODEL_BYTES:
        raise ModelFileError(f"its config asks for {total} bytes of tensors, over {MODEL_BYTES}")
    return {k: _member(z, k, shape, sizes, cap=MAX_EXP * max(sizes)) for k, (shape, sizes) in specs.items()}


def read_name(source) -> str:
    """The model's own name in a model file (a path or a binary file), reading
    only its bounded __meta__ (its format and tensors are checked when it is
    loaded); a ModelFileError if it has no readable name."""
    with _zip(source) as z:
        return _read_name(z)["name"]


def model_format(meta: dict, tanh_entries: int) -> int:
    """The model format of a file's metadata and the length of its tanh table,
    if this pixzip runs it; else a ModelFileError that names the format."""
    tag = meta.get("format") if isinstance(meta, dict) else None
    if not isinstance(tag, str) or not tag.startswith(FORMAT_PREFIX) or not tag[len(FORMAT_PREFIX):].isdigit() \
            or len(tag) > 32:
        raise ModelFileError(f"not a pixzip integer model (format {_show(tag)})")
    n = int(tag[len(FORMAT_PREFIX):])
    if n == 1 and tanh_entries == 2 * GATE_LIMIT + 1:
        n = 2                 # a 10-bit file from before the format string was bumped
    if n not in FORMATS:
        newer = "a newer" if n > max(FORMATS) else "an older"
        raise ModelFileError(f"model made by {newer} pixzip (model format {n}); this pixzip runs model format "
                             f"{', '.join(map(str, FORMATS))}")
    return n
