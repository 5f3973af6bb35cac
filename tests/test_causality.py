"""Causality of both networks by autograd: no leak from the current or later
sub-pixels, no blind spot in the Gated PixelCNN, and the plain PixelCNN's blind
spot shown."""
import itertools

import pytest
import torch

from .conftest import tiny_model

H, W = 11, 13


def input_gradient(model, i, j, c, seed=0, labels=None):
    """d(random projection of the logits of sub-pixel (i,j,c)) / d(input), as (C,H,W)."""
    g = torch.Generator().manual_seed(seed)
    colors = model.config.colors
    x = torch.rand(1, colors, H, W, generator=g, dtype=torch.float64) * 2 - 1
    x.requires_grad_(True)
    model.normalise = lambda t: t  # differentiate w.r.t. the normalised input
    out = model(x, labels)
    proj = torch.randn(256, generator=g, dtype=torch.float64)
    (grad,) = torch.autograd.grad((out[0, c, :, i, j] * proj).sum(), x)
    return grad[0]


def order(i, j, c, colors):
    return (i * W + j) * colors + c


def expected_context(model, i, j, c):
    """Boolean (C,H,W): the sub-pixels the Gated PixelCNN must see (its exact receptive field)."""
    rf = model.receptive_field()
    colors = model.config.colors
    want = torch.zeros(colors, H, W, dtype=torch.bool)
    for ii in range(max(0, i - rf["rows_above"]), i):
        want[:, ii, max(0, j - rf["cols_left"]):min(W, j + rf["cols_right"] + 1)] = True
    want[:, i, max(0, j - rf["cols_left_current"]):j] = True
    want[:c, i, j] = True
    return want


CONFIGS = [
    ("gated", 3, 6, 2, 3),
    ("gated", 3, 9, 3, 3),
    ("gated", 3, 6, 2, 5),
    ("gated", 1, 4, 3, 3),
    ("gated", 1, 4, 2, 7),
    ("pixelcnn", 3, 6, 2, None),
    ("pixelcnn", 1, 4, 1, None),
]
POSITIONS = [(0, 0), (0, 5), (5, 0), (6, 6), (10, 12), (4, 12)]


@pytest.mark.parametrize("arch,colors,channels,layers,kernel", CONFIGS)
def test_no_leak_from_current_or_later_subpixels(arch, colors, channels, layers, kernel):
    model = tiny_model(arch, colors, channels, layers, kernel or 3)
    for (i, j), c in itertools.product(POSITIONS, range(colors)):
        grad = input_gradient(model, i, j, c)
        if (i, j, c) != (0, 0, 0):
            assert grad.any(), f"logits of {(i, j, c)} see nothing: the test would be vacuous"
        for cc, ii, jj in itertools.product(range(colors), range(H), range(W)):
            if order(ii, jj, cc, colors) >= order(i, j, c, colors):
                assert grad[cc, ii, jj] == 0, f"logits of {(i, j, c)} depend on {(ii, jj, cc)}"


@pytest.mark.parametrize("arch,colors,channels,layers,kernel", [c for c in CONFIGS if c[0] == "gated"])
def test_gated_sees_exactly_its_receptive_field(arch, colors, channels, layers, kernel):
    """Every earlier sub-pixel inside the receptive field has a non-zero gradient
    (no blind spot), and nothing outside it does (receptive_field() is exact)."""
    model = tiny_model(arch, colors, channels, layers, kernel)
    for (i, j), c in itertools.product(POSITIONS, range(colors)):
        seen = input_gradient(model, i, j, c) != 0
        want = expected_context(model, i, j, c)
        missing = (want & ~seen).nonzero().tolist()
        extra = (seen & ~want).nonzero().tolist()
        assert not missing, f"blind spot at {(i, j, c)}: {missing[:5]}"
        assert not extra, f"{(i, j, c)} sees outside its receptive field: {extra[:5]}"


def test_first_subpixel_sees_nothing():
    for colors in (1, 3):
        model = tiny_model("gated", colors, 6 if colors == 3 else 4, 2, 3)
        assert torch.all(input_gradient(model, 0, 0, 0) == 0)


def test_plain_pixelcnn_has_the_blind_spot():
    """Stacked k x k masks never see part of the region above-right: the row
    above, beyond the first few columns to the right, is unseen although it lies
    inside the stack's nominal (rows_above x cols) extent."""
    model = tiny_model("pixelcnn", 3, 6, 3)
    rf = model.receptive_field()
    i, j = 8, 3
    seen = (input_gradient(model, i, j, 0) != 0).any(0)
    nominal = [(ii, jj) for ii in range(i - rf["rows_above"], i)
               for jj in range(j - rf["cols_left"], j + rf["cols_right"] + 1) if 0 <= jj < W]
    blind = [p for p in nominal if not seen[p]]
    assert blind, "expected a blind spot"
    # The blind spot is above-right: every unseen position is right of the pixel.
    assert all(jj > j for _, jj in blind)
    assert not seen[i - 1, j + rf["cols_right"]]
    # While the gated network with the same reach sees all of it.
    gated = tiny_model("gated", 3, 6, 3, 3)
    gseen = (input_gradient(gated, i, j, 0) != 0).any(0)
    rg = gated.receptive_field()
    assert all(gseen[ii, jj] for ii in range(i - rg["rows_above"], i)
               for jj in range(max(0, j - rg["cols_left"]), min(W, j + rg["cols_right"] + 1)))


def test_class_conditioning_changes_logits_but_not_causality():
    model = tiny_model("gated", 3, 6, 2, 3, n_classes=4)
    torch.nn.init.normal_(model.v_cond.weight, std=0.3)
    torch.nn.init.normal_(model.h_cond.weight, std=0.3)
    x = torch.randint(0, 256, (1, 3, 5, 5))
    assert not torch.allclose(model(x, torch.tensor([0])), model(x, torch.tensor([1])))
    seen = input_gradient(model, 6, 6, 1, labels=torch.tensor([2])) != 0
    assert torch.equal(seen, expected_context(model, 6, 6, 1))
