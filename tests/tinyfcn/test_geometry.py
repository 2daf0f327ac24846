"""Geometry against numbers worked out by hand, and against real forward passes."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from tinyfcn.classifier import MnistClassifier
from tinyfcn.geometry import (
    CoordMap,
    coord_map,
    crop,
    crop_offset,
    output_size,
    receptive_fields,
)


def test_classifier_features_by_hand() -> None:
    # conv5: jump 1, rf 5, centre of output 0 at 2.   pool2: jump 2, rf 6, centre 2.5.
    # conv3: jump 2, rf 6+2*2=10, centre 2.5+2=4.5.   pool2: jump 4, rf 10+1*2=12, centre 5.5.
    rows = receptive_fields(MnistClassifier().features, 28)
    assert [(r.size, r.stride, r.receptive_field, r.offset) for r in rows] == [
        (24, 1, 5, 2),
        (12, 2, 6, Fraction(5, 2)),
        (10, 2, 10, Fraction(9, 2)),
        (5, 4, 12, Fraction(11, 2)),
    ]


def test_dense32_as_conv_sees_the_whole_digit() -> None:
    # A 5x5 conv on the stride-4 map adds 4*4 = 16 pixels: 12 + 16 = 28, the digit's size.
    stack = [*MnistClassifier().features, nn.Conv2d(8, 32, 5)]
    assert receptive_fields(stack, 28)[-1].receptive_field == 28
    assert output_size(stack, (28, 28)) == (1, 1)
    assert output_size(stack, (64, 84)) == (10, 15)


def test_layer_maps_by_hand() -> None:
    # conv k=3 p=100: output 0 is centred at input 1 - 100 = -99.
    assert coord_map(nn.Conv2d(3, 3, 3, padding=100)) == CoordMap(Fraction(1), Fraction(-99))
    # pool k=2 s=2: output i covers inputs 2i, 2i+1, centred at 2i + 1/2.
    assert coord_map(nn.MaxPool2d(2)) == CoordMap(Fraction(2), Fraction(1, 2))
    # deconv k=4 s=2: input i lands on outputs centred at 2i + 3/2, so output j <- (j-3/2)/2.
    assert coord_map(nn.ConvTranspose2d(1, 1, 4, 2)) == CoordMap(Fraction(1, 2), Fraction(-3, 4))
    # Dilation widens the kernel: k=3, d=2 spans 5 pixels, centre 2.
    assert coord_map(nn.Conv2d(1, 1, 3, dilation=2)) == CoordMap(Fraction(1), Fraction(2))
    # Point-wise layers do not move anything; nested Sequentials are walked.
    seq = nn.Sequential(nn.ReLU(), nn.Sequential(nn.Dropout(), nn.MaxPool2d(2)))
    assert coord_map(seq) == coord_map(nn.MaxPool2d(2))


def test_upsampling_undoes_a_stride() -> None:
    down = coord_map([nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2)])
    up = coord_map(nn.ConvTranspose2d(1, 1, 4, 2, padding=1), start=down)
    assert up.stride == 1
    assert crop_offset(up, CoordMap()) == 0


def test_crop_offset_rejects_misalignment() -> None:
    with pytest.raises(ValueError, match="stride"):
        crop_offset(CoordMap(Fraction(2)), CoordMap(Fraction(1)))
    with pytest.raises(ValueError, match="misaligned"):
        crop_offset(CoordMap(Fraction(1), Fraction(0)), CoordMap(Fraction(1), Fraction(1, 2)))
    with pytest.raises(ValueError, match="misaligned"):  # would need a negative crop
        crop_offset(CoordMap(Fraction(1), Fraction(3)), CoordMap())


def test_crop() -> None:
    x = torch.arange(100).reshape(1, 1, 10, 10)
    assert crop(x, 2, (3, 4)).tolist() == [[[[22, 23, 24, 25], [32, 33, 34, 35], [42, 43, 44, 45]]]]
    with pytest.raises(ValueError, match="too small"):
        crop(x, 8, (3, 3))


def test_unknown_layers_are_refused() -> None:
    with pytest.raises(TypeError, match="Upsample"):
        coord_map(nn.Upsample(scale_factor=2))


def _stack(draw: st.DrawFn) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(draw(st.integers(1, 5))):
        k = draw(st.integers(1, 5))
        s = draw(st.integers(1, 3))
        p = draw(st.integers(0, k // 2))
        if draw(st.booleans()):
            layers.append(nn.Conv2d(1, 1, k, s, p, dilation=draw(st.integers(1, 2))))
        else:
            layers.append(nn.MaxPool2d(k, s, p, ceil_mode=draw(st.booleans())))
    if draw(st.booleans()):
        k = draw(st.integers(2, 6))
        layers.append(nn.ConvTranspose2d(1, 1, k, draw(st.integers(1, k)), 0))
    return nn.Sequential(*layers)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), h=st.integers(1, 60), w=st.integers(1, 60))
def test_output_size_matches_a_forward_pass(data: st.DataObject, h: int, w: int) -> None:
    stack = data.draw(st.composite(_stack)())
    try:
        expected = tuple(stack(torch.zeros(1, 1, h, w)).shape[-2:])
    except RuntimeError:  # PyTorch refuses inputs that end up empty
        assert 0 in output_size(stack, (h, w)) or min(output_size(stack, (h, w))) <= 0
        return
    assert output_size(stack, (h, w)) == expected


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_coord_map_locates_an_impulse(data: st.DataObject) -> None:
    """Where the map says output i looks, an impulse there must reach output i.

    For a stack of convs with all-ones kernels, output i responds to exactly the inputs in
    its receptive field, whose centre is ``stride * i + offset``. (With a stride larger than
    its kernel a conv skips inputs, and the field has holes; such stacks are left out.)
    """
    n_layers = data.draw(st.integers(1, 4))
    layers = []
    for _ in range(n_layers):
        k = data.draw(st.sampled_from([1, 3, 5]))
        stride = data.draw(st.integers(1, min(2, k)))
        conv = nn.Conv2d(1, 1, k, stride, data.draw(st.integers(0, k // 2)))
        nn.init.ones_(conv.weight)
        nn.init.zeros_(conv.bias)
        layers.append(conv)
    stack = nn.Sequential(*layers)
    cmap = coord_map(stack)
    rf = receptive_fields(stack)[-1].receptive_field
    size = 96  # > 61, the largest field drawn here, plus a stride of slack
    out_len = output_size(stack, (size, size))[0]
    # An impulse on the diagonal at (pos, pos) reaches output (i, i) iff pos is inside
    # output i's receptive field along both axes, which share the same geometry.
    x = torch.zeros(size, 1, size, size)
    x[torch.arange(size), 0, torch.arange(size), torch.arange(size)] = 1
    with torch.no_grad():
        response = stack(x)[:, 0]
    checked = 0
    for i in range(out_len):
        centre = cmap.stride * i + cmap.offset
        lo, hi = centre - (rf - 1) / 2, centre + (rf - 1) / 2
        if lo < 0 or hi > size - 1:
            continue  # part of the field is padding (or a window floor-division dropped)
        checked += 1
        for pos in range(size):
            hit = response[pos, i, i].item() > 0
            assert hit == (lo <= pos <= hi), (i, pos, float(lo), float(hi))
    assert checked > 0
