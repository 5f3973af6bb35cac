"""Sampling: the windowed steps see exactly what the full pass sees, and
draws are reproducible."""
import numpy as np
import pytest
import torch

from pixzip.learn.sampling import context_window, image_grid, sample
from pixzip.learn.stepper import GatedStepper

from .conftest import tiny_model


@pytest.mark.parametrize("arch,colors,channels,layers,kernel", [
    ("gated", 3, 6, 2, 3), ("gated", 1, 4, 2, 5), ("pixelcnn", 3, 6, 1, 3)])
def test_windowed_logits_equal_full_pass(arch, colors, channels, layers, kernel):
    """The window used per sampling step reproduces the full-image logits at
    every position, including image borders."""
    model = tiny_model(arch, colors, channels, layers, kernel)
    h, w = 14, 19
    x = torch.randint(0, 256, (2, colors, h, w))
    with torch.no_grad():
        full = model(x)
        for i in range(h):
            for j in range(w):
                top, left, right = context_window(model, i, j, h, w)
                win = model(x[:, :, top:i + 1, left:right])[:, :, :, i - top, j - left]
                torch.testing.assert_close(win, full[:, :, :, i, j], rtol=0, atol=1e-9)
    # The windows are genuinely smaller than the image.
    assert context_window(model, h - 1, 0, h, w)[0] > 0


@pytest.mark.parametrize("colors,channels,layers,kernel,n_classes", [
    (3, 6, 3, 3, 0), (1, 4, 2, 5, 0), (3, 6, 2, 5, 3)])
def test_gated_stepper_equals_full_pass(colors, channels, layers, kernel, n_classes):
    """Teacher-forced incremental logits (row pass + per-column sub-steps)
    match the one-pass logits at every sub-pixel."""
    model = tiny_model("gated", colors, channels, layers, kernel, n_classes=n_classes)
    if n_classes:
        torch.nn.init.normal_(model.v_cond.weight)
        torch.nn.init.normal_(model.h_cond.weight)
    h, w = 9, 7
    x = torch.randint(0, 256, (2, colors, h, w))
    labels = torch.tensor([1, 2]) if n_classes else None
    with torch.no_grad():
        full = model(x, labels)
        st = GatedStepper(model, 2, h, w, labels)
        for i in range(h):
            st.start_row(i)
            for j in range(w):
                for c in range(colors):
                    torch.testing.assert_close(st.logits(i, j)[:, c], full[:, c, :, i, j], rtol=0, atol=1e-12)
                    st.write(i, j, c, x[:, c, i, j])


def test_sample_shapes_and_reproducibility():
    model = tiny_model("gated", 3, 6, 2, 3).float()
    a = sample(model, 3, 5, 4, seed=7)
    b = sample(model, 3, 5, 4, seed=7)
    c = sample(model, 3, 5, 4, seed=8)
    assert a.shape == (3, 5, 4, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_sample_follows_a_peaked_model():
    """A model whose logits put (almost) all mass on one value must sample it."""
    model = tiny_model("gated", 1, 4, 1, 3).float()
    with torch.no_grad():
        last = model.head[-1]
        last.weight.zero_()
        last.bias.fill_(-50.0)
        last.bias[77] = 50.0
    out = sample(model, 2, 3, 3, seed=0)
    assert np.all(out == 77)


def test_conditional_sample_uses_label():
    model = tiny_model("gated", 1, 4, 1, 3, n_classes=3).float()
    with torch.no_grad():
        model.h_cond.weight.normal_(std=5.0)
        model.head[-1].weight.mul_(20.0)  # sharpen, so the label's effect shows in the draws
    a = sample(model, 4, 4, 4, labels=0, seed=1)
    b = sample(model, 4, 4, 4, labels=2, seed=1)
    assert not np.array_equal(a, b)


def test_image_grid_layout():
    imgs = np.zeros((5, 4, 6, 3), dtype=np.uint8)
    g = image_grid(imgs, pad=1)
    assert g.size == (3 * 7 + 1, 2 * 5 + 1)  # 3 columns, 2 rows
    assert image_grid(np.zeros((1, 2, 2, 1), dtype=np.uint8)).mode == "L"


def test_integer_sampling_uses_the_decoder_loop(tmp_path):
    """pixzip sample on a .pxm model: the decoder's loop with a random source."""
    from pixzip.learn import api
    from pixzip.learn.sampling import sample_integer

    from .conftest import tiny_int_model

    net = tiny_int_model(3)
    a = sample_integer(net, 2, 5, 6, seed=3)
    assert a.shape == (2, 5, 6, 3) and a.dtype == np.uint8
    assert np.array_equal(a, sample_integer(net, 2, 5, 6, seed=3))
    assert not np.array_equal(a, sample_integer(net, 2, 5, 6, seed=4))
    path = tmp_path / "m.pxm"
    path.write_bytes(net.to_bytes())
    grid, size = api.sample(path, 4, size=(3, 4), progress=False)
    assert size == (3, 4) and grid.size == (2 * 6 + 2, 2 * 5 + 2)
