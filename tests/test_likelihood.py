"""Bits/dim: the loss counts every sub-pixel, and strip evaluation of large
images equals one pass."""
import math

import numpy as np
import torch

from pixzip.learn.datasets import ImageSet
from pixzip.learn.likelihood import evaluate_bpd, image_nll_nats, nll_nats

from .conftest import tiny_model


def test_uniform_model_costs_eight_bits():
    model = tiny_model("gated", 3, 6, 1, 3)
    with torch.no_grad():
        model.head[-1].weight.zero_()
        model.head[-1].bias.zero_()
    imgs = [np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8) for _ in range(3)]
    assert math.isclose(evaluate_bpd(model, ImageSet(imgs)), 8.0, rel_tol=1e-12)


def test_bits_per_dim_is_total_over_all_subpixels():
    """Mixed image sizes: total nats over total sub-pixels, not a mean of means."""
    model = tiny_model("gated", 1, 4, 2, 3)
    rng = np.random.default_rng(1)
    imgs = [rng.integers(0, 256, s, dtype=np.uint8) for s in [(3, 4, 1), (6, 2, 1), (1, 1, 1)]]
    total = 0.0
    with torch.no_grad():
        for im in imgs:
            x = torch.from_numpy(im.transpose(2, 0, 1)[None].copy())
            total += nll_nats(model(x), x, reduction="sum").item()
    want = total / sum(im.size for im in imgs) / math.log(2)
    assert math.isclose(evaluate_bpd(model, ImageSet(imgs), batch_size=2), want, rel_tol=1e-12)


def test_strips_equal_one_pass():
    model = tiny_model("gated", 3, 6, 2, 3)
    x = torch.randint(0, 256, (2, 3, 23, 9))
    with torch.no_grad():
        one = image_nll_nats(model, x, max_pixels=10 ** 9)
        for pixels in (18, 50, 100):  # strips of 1, 2 and 5 rows
            assert math.isclose(image_nll_nats(model, x, max_pixels=pixels), one, rel_tol=1e-12)
