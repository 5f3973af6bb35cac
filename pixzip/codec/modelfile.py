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
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from .contract import GATE_LIMIT

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
        if not isinstance(d, dict):
            raise ModelFileError("the model's config is not a table")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known - set(LEGACY_KEYS)
        if unknown:
            raise ModelFileError(f"the model's config has unknown fields: {', '.join(sorted(unknown))}")
        try:
            cfg = cls(**{k: v for k, v in d.items() if k in known})
        except TypeError as e:
            raise ModelFileError(f"the model's config is incomplete ({e})") from None
        if cfg.arch != "gated" or cfg.colors not in (1, 3) or cfg.kernel % 2 != 1 or cfg.channels % cfg.colors:
            raise ModelFileError(f"not a model this pixzip runs (arch {cfg.arch!r}, {cfg.colors} colours, "
                                 f"kernel {cfg.kernel}, {cfg.channels} channels)")
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)


class ModelFile:
    """An integer model as its file holds it: name, config, tensors, sha256."""

    def __init__(self, config: IntConfig | dict, tensors: dict[str, np.ndarray], name: str = "",
                 sha256: str = ""):
        self.config = config if isinstance(config, IntConfig) else IntConfig.from_dict(config)
        self.tensors = {k: np.asarray(v) for k, v in tensors.items()}
        self.name = name
        self.sha256 = sha256
        exp = self.tensors["exp"]
        if len(exp) - 1 >= 1 << 15:
            raise ModelFileError("exp table too long")
        self.exp = exp.astype(np.int64)

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
        from ..atomic import atomic_write_bytes
        data = self.to_bytes()
        atomic_write_bytes(path, data, overwrite=overwrite)
        self.sha256 = hashlib.sha256(data).hexdigest()
        return self.sha256

    @classmethod
    def from_bytes(cls, data: bytes) -> "ModelFile":
        """A model from a file's bytes; a damaged file or one of another model
        format is a ModelFileError that names the problem."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                meta = json.loads(bytes(z["__meta__"]).decode())
                model_format(meta, z["tanh"])
                tensors = {k: z[k] for k in z.files if k != "__meta__"}
            return cls(meta["config"], tensors, meta["name"], hashlib.sha256(data).hexdigest())
        except ModelFileError:
            raise
        except Exception as e:   # zipfile, zlib, json and numpy raise many kinds on a damaged file
            raise ModelFileError(f"not a readable pixzip model file ({e.__class__.__name__})") from None

    @classmethod
    def load(cls, path) -> "ModelFile":
        return cls.from_bytes(Path(path).read_bytes())

    def __repr__(self) -> str:
        c = self.config
        return (f"<ModelFile {self.name!r} {self.sha256[:16]}: {c.channels}ch x {c.layers} layers, "
                f"k={c.kernel}, {c.colors} colours>")


def read_name(data: bytes) -> str | None:
    """The model's own name in a file's bytes, or None if it is not a readable model file."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            name = json.loads(bytes(z["__meta__"]).decode()).get("name")
    except Exception:   # not a model file
        return None
    return name if isinstance(name, str) and name else None


def model_format(meta: dict, tanh: np.ndarray) -> int:
    """The model format of a file's metadata and tanh table, if this pixzip
    runs it; else a ModelFileError that names the format."""
    tag = meta.get("format") if isinstance(meta, dict) else None
    if not isinstance(tag, str) or not tag.startswith(FORMAT_PREFIX) or not tag[len(FORMAT_PREFIX):].isdigit():
        raise ModelFileError(f"not a pixzip integer model (format {tag!r})")
    n = int(tag[len(FORMAT_PREFIX):])
    if n == 1 and len(tanh) == 2 * GATE_LIMIT + 1:
        n = 2                 # a 10-bit file from before the format string was bumped
    if n not in FORMATS:
        newer = "a newer" if n > max(FORMATS) else "an older"
        raise ModelFileError(f"model made by {newer} pixzip (model format {n}); this pixzip runs model format "
                             f"{', '.join(map(str, FORMATS))}")
    return n
