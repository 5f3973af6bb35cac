import numpy as np
import pytest
import torch

from pixzip import ModelConfig, build_model


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
