"""Learnable upsampling initialised as bilinear interpolation.

FCN upsamples coarse scores with a *transposed convolution* ("deconvolution" in Caffe).
A transposed conv of stride ``f`` spreads every input value over a ``2f x 2f`` patch of
the output, weighted by its kernel. If that kernel is the outer product of two triangles
(a "tent"), neighbouring patches overlap so that their weights sum to one everywhere, and
the layer computes exactly bilinear interpolation. The paper initialises every upsampling
layer this way; the final one is then kept frozen (learning it bought nothing), while the
2x layers inside the skip architecture may learn.

Each class is upsampled independently, so the kernel is placed on the diagonal of the
channel-to-channel weight: class ``c`` of the output only reads class ``c`` of the input.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def bilinear_kernel(channels: int, kernel_size: int) -> Tensor:
    """A ``(channels, channels, k, k)`` ConvTranspose2d weight that interpolates bilinearly.

    The 1-D tent peaks at the kernel's centre and falls to zero one ``factor`` away, where
    ``factor = ceil(k / 2)``; for an even ``k = 2f`` the centre sits between two taps, which
    is what makes stride ``f`` patches tile without gaps (the reference code's
    ``upsample_filt``).
    """
    if channels < 1 or kernel_size < 1:
        raise ValueError(f"need channels >= 1 and kernel_size >= 1, got {channels}, {kernel_size}")
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    taps = torch.arange(kernel_size, dtype=torch.float64)
    tent = 1 - (taps - center).abs() / factor
    kernel2d = (tent[:, None] * tent[None, :]).float()
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    index = torch.arange(channels)
    weight[index, index] = kernel2d
    return weight


def upsample_layer(
    channels: int, factor: int, *, learnable: bool = False, kernel_size: int | None = None
) -> nn.ConvTranspose2d:
    """A ``factor``-times upsampler: kernel ``2 * factor``, stride ``factor``, no bias.

    ``learnable=False`` freezes it (``requires_grad=False``), as the paper does for the final
    upsampling; the weights stay in the state dict either way so checkpoints round-trip.
    Another ``kernel_size`` (the M2NIST article's 6 at stride 2) is not a ``2f x 2f`` tent,
    which would tile to one: each of the ``factor**2`` phases of the output sums an equal
    share of the kernel, so the tent is rescaled by ``factor**2 / sum`` and a constant map
    stays constant.
    """
    if factor < 1:
        raise ValueError(f"upsampling factor must be >= 1, got {factor}")
    kernel_size = kernel_size or 2 * factor
    layer = nn.ConvTranspose2d(channels, channels, kernel_size, stride=factor, bias=False)
    weight = bilinear_kernel(channels, kernel_size)
    if kernel_size != 2 * factor:
        weight = weight * factor**2 / weight[0, 0].sum()
    with torch.no_grad():
        layer.weight.copy_(weight)
    layer.weight.requires_grad_(learnable)
    return layer
