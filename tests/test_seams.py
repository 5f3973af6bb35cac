"""The seams between the float side and the exact path, on models that are
not just random: a trained network's integer export keeps its bits/dim
within the design's 1% budget (measured by ``pixzip export`` itself), and
the class-conditional integer path gives the decoder the encoder's counts."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from pixzip.cli.main import main

from pixzip.codec.network.kernels.encoder import counts as head_counts
from pixzip.codec.network.kernels.encoder import row_heads
from pixzip.codec.network.kernels.program import program
from pixzip.codec.network.modelfile import ModelFile
from pixzip.codec.network.integer_torch import network as ref
from pixzip.codec.network.dec_wavefront import decode_image
from pixzip.learn.export import export_gated

from .conftest import tiny_model


def photo_like(rng, n, h, w):
    """Smooth colour images with texture: gradients, a soft edge and noise."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    out = []
    for _ in range(n):
        a, b, c = rng.uniform(-6, 6, 3)
        base = rng.uniform(40, 200, 3)
        edge = 40 * np.tanh((x * np.cos(c) + y * np.sin(c) - w / 2) / 2)
        img = base + a * x[..., None] / 4 + b * y[..., None] / 4 + edge[..., None] * rng.uniform(-1, 1, 3)
        img += rng.normal(0, 3, img.shape)
        out.append(np.clip(np.round(img), 0, 255).astype(np.uint8))
    return np.stack(out)


SHIPPED_FLOAT = Path(__file__).resolve().parent.parent / "models" / "photo-g36x4-v1.safetensors"


def test_the_integer_export_of_a_trained_network_keeps_its_bits_per_dim_within_one_percent(tmp_path):
    """The shipped fast model's float weights (a trained network, 4 layers of
    36 channels), exported by ``pixzip export`` under a new name with
    calibration and validation images made here."""
    rng = np.random.default_rng(7)
    np.savez(tmp_path / "calib.npz", x=photo_like(rng, 32, 32, 32))
    np.savez(tmp_path / "val.npz", x=photo_like(rng, 6, 32, 32))
    r = CliRunner().invoke(main, ["export", str(SHIPPED_FLOAT), "--name", "seam-test", "-o", str(tmp_path / "m.pxm"),
                                  "--calib", str(tmp_path / "calib.npz"), "--val", str(tmp_path / "val.npz")])
    assert r.exit_code == 0, r.output
    float_bpd = float(re.search(r"float bits/dim:\s+([\d.]+)", r.output)[1])
    int_bpd = float(re.search(r"integer bits/dim:\s+([\d.]+)", r.output)[1])
    assert float_bpd < 6.0, f"not a trained network ({float_bpd} bits/dim)"   # uniform is 8
    assert abs(int_bpd / float_bpd - 1) < 0.01, r.output
    assert ModelFile.load(tmp_path / "m.pxm").name == "seam-test"


@pytest.fixture(scope="module")
def conditional_net():
    model = tiny_model("gated", 3, 6, 2, 3, n_classes=3, seed=4).float()
    with torch.no_grad():               # class biases big enough to change every distribution
        model.v_cond.weight.normal_(0, 2.0)
        model.h_cond.weight.normal_(0, 2.0)
    rng = np.random.default_rng(2)
    calib = [rng.integers(0, 256, (10, 10, 3), dtype=np.uint8) for _ in range(3)]
    net = export_gated(model, calib, "tiny-classes")
    return ModelFile.from_bytes(net.to_bytes())


@pytest.mark.parametrize("label", [0, 2])
def test_the_class_conditional_decoder_gets_the_encoders_counts(conditional_net, label):
    """For each class, the decoder's per-step counts, the encoder kernel's
    full pass and the PyTorch reference agree on every sub-pixel, and the
    class changes them."""
    net = conditional_net
    assert net.n_classes == 3
    img = np.random.default_rng(label).integers(0, 256, (8, 11, 3), dtype=np.uint8)
    r = ref(net)
    full = r.counts(r.logits(torch.from_numpy(img)[None], torch.tensor([label])))[0].numpy()
    other = r.counts(r.logits(torch.from_numpy(img)[None], torch.tensor([1])))[0].numpy()
    assert not np.array_equal(full, other), "the class biases change the distributions"

    prog = program(net)
    heads = row_heads(prog, img, 0, 8, label)[None]
    n = 8 * 11
    rows, cols = np.divmod(np.arange(n), 11)
    dest = np.arange(n * 3).reshape(n, 3)
    encoder = head_counts(prog, heads, np.zeros(n, np.int64), rows, cols, dest, n * 3)
    assert np.array_equal(encoder.reshape(8, 11, 3, 256), full)

    seen = np.zeros(img.shape, bool)

    def teacher(c, rows, cols, colour):
        assert np.array_equal(c, full[rows, cols, colour]), (rows, cols, colour)
        seen[rows, cols, colour] = True
        return img[rows, cols, colour]

    assert np.array_equal(decode_image(net, 8, 11, teacher, label=label), img)
    assert seen.all()
