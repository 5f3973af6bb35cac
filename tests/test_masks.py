"""The masked convolution's mask: mask A/B with RGB grouping, any odd kernel."""
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pixzip.learn.masks import causal_mask, channel_groups


@settings(max_examples=40, deadline=None)
@given(k=st.sampled_from([1, 3, 5, 7, 9]), mtype=st.sampled_from("AB"),
       n_in=st.sampled_from([3, 6, 12]), n_out=st.sampled_from([3, 6, 9]))
def test_square_mask_rgb(k, mtype, n_in, n_out):
    gi, go = channel_groups(n_in, 3), channel_groups(n_out, 3)
    c = k // 2
    m = causal_mask(go, gi, (k, k), (c, c), mtype)
    assert m.shape == (n_out, n_in, k, k)
    assert torch.all(m[:, :, c + 1:, :] == 0), "rows below the centre must be zero"
    assert torch.all(m[:, :, c, c + 1:] == 0), "taps right of the centre must be zero"
    assert torch.all(m[:, :, :c, :] == 1) and torch.all(m[:, :, c, :c] == 1), "causal taps must be kept"
    for o in range(n_out):
        for i in range(n_in):
            allowed = gi[i] < go[o] if mtype == "A" else gi[i] <= go[o]
            assert m[o, i, c, c].item() == float(allowed)


def test_mask_a_b_grouping_from_image_channels():
    # R, G, B input channels into R, G, B output groups.
    rgb = torch.arange(3)
    a = causal_mask(rgb, rgb, (1, 1), (0, 0), "A")[:, :, 0, 0]
    b = causal_mask(rgb, rgb, (1, 1), (0, 0), "B")[:, :, 0, 0]
    assert a.tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0]]  # G sees R; B sees R, G
    assert b.tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]


def test_grayscale_has_no_grouping():
    g = channel_groups(5, 1)
    assert torch.all(g == 0)
    a = causal_mask(g, torch.zeros(1, dtype=torch.long), (3, 3), (1, 1), "A")
    b = causal_mask(g, g, (3, 3), (1, 1), "B")
    assert torch.all(a[:, :, 1, 1] == 0) and torch.all(b[:, :, 1, 1] == 1)


def test_channels_must_split_into_colours():
    import pytest
    with pytest.raises(ValueError):
        channel_groups(64, 3)
