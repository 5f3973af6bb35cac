"""The models shipped in models/: every compression level names a shipped
model, every model has its card and float weights, loads (the integer bounds
are checked at load), and round-trips images pixel-exact."""
import json
from pathlib import Path

import numpy as np
import pytest

from pixzip.codec import api as codec
from pixzip.codec.network.modelfile import ModelFile
from pixzip.learn.checkpoints import load_model

MODELS = Path(__file__).resolve().parent.parent / "models"
SHIPPED = sorted(MODELS.glob("*.pxm"))


def test_every_level_names_a_shipped_model():
    aliases = json.loads((MODELS / "aliases.json").read_text())
    assert {"default", "fast"} <= set(aliases)
    for alias, name in aliases.items():
        assert (MODELS / f"{name}.pxm").is_file(), f"{alias} -> {name}: no such model"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_model_has_card_and_float_weights_and_round_trips(path, rng):
    net = ModelFile.load(path)
    assert net.name == path.stem
    card = (MODELS / f"{path.stem}.md").read_text()
    assert net.sha256[:16] in card, "the card names the file it describes"
    float_model = load_model(path.with_suffix(".safetensors"))
    assert float_model.config.channels == net.config.channels
    assert float_model.config.layers == net.config.layers
    for shape in [(1, 1, 3), (6, 9, 3)]:
        x = rng.integers(0, 256, shape, dtype=np.uint8)
        assert np.array_equal(codec.decompress(codec.compress(x, net), net), x)
