"""The bilinear initialisation really is bilinear interpolation."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

from tinyfcn.geometry import CoordMap, coord_map, crop, crop_offset
from tinyfcn.upsample import bilinear_kernel, upsample_layer


def test_kernel_by_hand() -> None:
    # k=4 (factor 2): centre 1.5, tent 1 - |t - 1.5| / 2 = [0.25, 0.75, 0.75, 0.25].
    tent = torch.tensor([0.25, 0.75, 0.75, 0.25])
    w = bilinear_kernel(3, 4)
    assert w.shape == (3, 3, 4, 4)
    torch.testing.assert_close(w[1, 1], tent[:, None] * tent[None, :])
    # Classes are upsampled independently: everything off the diagonal is zero.
    assert w[0, 1].abs().sum() == 0 and w[2, 0].abs().sum() == 0
    # Odd kernels peak on their centre tap: k=3 -> [0.5, 1, 0.5].
    torch.testing.assert_close(bilinear_kernel(1, 3)[0, 0, 1], torch.tensor([0.5, 1.0, 0.5]))


@pytest.mark.parametrize("factor", [2, 4, 8, 32])
def test_matches_bilinear_interpolation_inside(factor: int) -> None:
    """Away from the borders the layer equals align_corners=False bilinear resizing."""
    x = torch.randn(1, 2, 6, 7)
    up = upsample_layer(2, factor)
    y = up(x)
    # F.interpolate's output j samples input coordinate (j + 1/2)/factor - 1/2; the geometry
    # module tells where the deconv's output j samples, and so the crop that aligns them
    # (factor/2: the 2f-tap kernel overhangs the first input by half a stride on each side).
    interp = CoordMap(Fraction(1, factor), Fraction(1, 2 * factor) - Fraction(1, 2))
    c = crop_offset(coord_map(up), interp)
    assert c == factor // 2
    ref = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    inner = slice(factor, -factor)  # the outermost input pixel has only one neighbour
    got = crop(y, c, ref.shape[-2:])
    torch.testing.assert_close(got[..., inner, inner], ref[..., inner, inner])


def test_constant_is_preserved() -> None:
    """Overlapping tents sum to one, so a constant map stays constant (inside)."""
    y = upsample_layer(1, 4)(torch.full((1, 1, 5, 5), 3.0))
    torch.testing.assert_close(y[..., 4:-4, 4:-4], torch.full_like(y[..., 4:-4, 4:-4], 3.0))


def test_frozen_or_learnable() -> None:
    assert not upsample_layer(5, 2).weight.requires_grad
    assert upsample_layer(5, 2, learnable=True).weight.requires_grad
    assert upsample_layer(5, 2).bias is None


@pytest.mark.parametrize("bad", [(0, 4), (2, 0)])
def test_bad_arguments(bad: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        bilinear_kernel(*bad)
    with pytest.raises(ValueError):
        upsample_layer(1, 0)


def test_another_kernel_is_rescaled_so_a_constant_map_stays_constant() -> None:
    y = upsample_layer(1, 2, kernel_size=6)(torch.full((1, 1, 6, 6), 3.0))
    assert y.shape[-2:] == (16, 16)
    assert torch.allclose(y[..., 4:-4, 4:-4], torch.tensor(3.0))
