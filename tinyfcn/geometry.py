"""Layer geometry: where each output pixel of a conv net sits in its input.

A fully convolutional net turns an image into a *coarse* score map. To compare that map
with the per-pixel labels, or to add two maps from different depths (the FCN skips), we
must know exactly which input coordinate every score corresponds to. The FCN paper's
reference code answers this with a "coordinate map": for each layer, output index ``i``
corresponds to input coordinate ``stride * i + offset``. Convolutions and poolings
multiply the stride and shift the offset; transposed convolutions divide it again.
Composing the maps along a path gives the crop that aligns two paths -- the famous
offsets 19 (FCN-32s), 5 and 27 (FCN-16s), 5, 9 and 31 (FCN-8s) fall out of this
arithmetic instead of being typed in.

Everything here is exact (``fractions.Fraction``): pooling offsets are quarter and
eighth pixels on the way down, and only the final crops must come out as integers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

from torch import Tensor, nn

# Layers that never move pixels: they pass the coordinate map through unchanged.
_POINTWISE = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.Dropout,
    nn.Dropout2d,
    nn.BatchNorm2d,
    nn.Identity,
    nn.Sigmoid,
    nn.Tanh,
)


@dataclass(frozen=True)
class CoordMap:
    """Output index ``i`` of a layer stack lies at input coordinate ``stride * i + offset``.

    ``offset`` is the input coordinate of the centre of output pixel 0's receptive field;
    it is negative when padding puts that centre outside the image (conv1_1's pad of 100
    in FCN makes it very negative), which is exactly what later crops undo.
    """

    stride: Fraction = Fraction(1)
    offset: Fraction = Fraction(0)

    def then(self, stride: Fraction, offset: Fraction) -> CoordMap:
        """Append one layer whose own output index ``j`` sits at its input ``stride*j+offset``."""
        return CoordMap(self.stride * stride, self.stride * offset + self.offset)


@dataclass(frozen=True)
class LayerGeometry:
    """One row of a receptive-field table (all lengths in input pixels, along one axis)."""

    name: str
    kind: str
    size: int | None  # output length along the axis, when an input size was given
    stride: Fraction  # distance in the input between neighbouring outputs ("jump")
    receptive_field: Fraction  # how many input pixels one output can see
    offset: Fraction  # input coordinate of the centre of output 0


def _pair(v: int | tuple[int, ...]) -> int:
    """The geometry of the height axis; FCNs here use square kernels, and we check that."""
    if isinstance(v, tuple):
        if len(set(v)) != 1:
            raise ValueError(f"non-square kernel/stride/padding {v} is not supported")
        return int(v[0])
    return int(v)


@dataclass(frozen=True)
class _Op:
    kind: str  # "conv", "pool", "deconv"
    kernel: int
    stride: int
    padding: int
    dilation: int = 1
    ceil_mode: bool = False


def _op(module: nn.Module) -> _Op | None:
    """Reduce a module to its spatial arithmetic; None for point-wise layers."""
    if isinstance(module, nn.Conv2d):
        if isinstance(module.padding, str):
            raise ValueError(f"padding={module.padding!r} must be numeric to compute geometry")
        sizes = (module.kernel_size, module.stride, module.padding, module.dilation)
        return _Op("conv", *map(_pair, sizes))
    if isinstance(module, nn.ConvTranspose2d):
        if _pair(module.dilation) != 1 or _pair(module.output_padding) != 0:
            raise ValueError("transposed convs with dilation or output_padding are not supported")
        return _Op("deconv", _pair(module.kernel_size), _pair(module.stride), _pair(module.padding))
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        sizes = (module.kernel_size, module.stride, module.padding, getattr(module, "dilation", 1))
        return _Op("pool", *map(_pair, sizes), bool(module.ceil_mode))
    if isinstance(module, _POINTWISE):
        return None
    raise TypeError(
        f"cannot compute the geometry of {type(module).__name__}; "
        "only Conv2d, ConvTranspose2d, MaxPool2d/AvgPool2d and point-wise layers move pixels"
    )


def _leaves(modules: Iterable[nn.Module], prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """Walk nested Sequentials in order, yielding dotted names like ``features.0``."""
    for i, module in enumerate(modules):
        if isinstance(module, nn.Sequential):
            for name, child in module.named_children():
                yield from (
                    _leaves([child], f"{prefix}{name}.")
                    if isinstance(child, nn.Sequential)
                    else [(f"{prefix}{name}", child)]
                )
        else:
            yield f"{prefix}{i}", module


def _ops(modules: nn.Module | Iterable[nn.Module]) -> Iterator[tuple[str, nn.Module, _Op]]:
    """The layers that move pixels, in order, each with its arithmetic."""
    for name, module in _leaves([modules] if isinstance(modules, nn.Module) else modules):
        if (op := _op(module)) is not None:
            yield name, module, op


def _layer_map(op: _Op) -> tuple[Fraction, Fraction]:
    """(stride, offset) of a single layer: its output ``j`` sits at input ``stride*j+offset``."""
    if op.kind == "deconv":
        # Output o = s*i + (k-1)/2 - p, so input i = o/s - ((k-1)/2 - p)/s.
        s = Fraction(1, op.stride)
        return s, -(Fraction(op.kernel - 1, 2) - op.padding) * s
    k_eff = op.dilation * (op.kernel - 1) + 1
    return Fraction(op.stride), Fraction(k_eff - 1, 2) - op.padding


def coord_map(modules: nn.Module | Iterable[nn.Module], start: CoordMap | None = None) -> CoordMap:
    """Compose the coordinate maps of a layer stack, in order, onto ``start``.

    ``start`` lets a branch continue from where another stack ended: the map of
    ``score_pool4`` is ``coord_map(score_pool4, start=coord_map(features_up_to_pool4))``.
    Point-wise layers (ReLU, Dropout, BatchNorm) are skipped; anything that moves pixels
    in a way this module does not model raises instead of being silently ignored.
    """
    cmap = start if start is not None else CoordMap()
    for _, _, op in _ops(modules):
        cmap = cmap.then(*_layer_map(op))
    return cmap


def crop_offset(src: CoordMap, ref: CoordMap) -> int:
    """Offset at which to crop ``src``'s map so that its pixels line up with ``ref``'s.

    Two maps can be added (or compared with labels) only at the same stride; then
    ``src[i + c]`` and ``ref[i]`` see the same input point when
    ``src.stride * (i + c) + src.offset == ref.stride * i + ref.offset``, i.e.
    ``c = (ref.offset - src.offset) / stride``. A crop must be a whole, non-negative
    number of pixels: anything else means the net is mis-designed, and we say so.
    """
    if src.stride != ref.stride:
        raise ValueError(f"cannot align maps of stride {src.stride} and {ref.stride}")
    c = (ref.offset - src.offset) / src.stride
    if c.denominator != 1 or c < 0:
        raise ValueError(
            f"maps are misaligned by {c} pixels; a crop needs a non-negative integer offset"
        )
    return int(c)


def crop(x: Tensor, offset: int, size: tuple[int, int]) -> Tensor:
    """Cut the ``size`` window starting at ``(offset, offset)`` from the last two dims of x."""
    h, w = size
    if x.shape[-2] < offset + h or x.shape[-1] < offset + w:
        raise ValueError(
            f"map of size {tuple(x.shape[-2:])} is too small to crop {size} at offset {offset}"
        )
    return x[..., offset : offset + h, offset : offset + w]


def _out_len(op: _Op, n: int) -> int:
    """Length of one axis after a layer, with PyTorch's floor/ceil rules (0 = empty)."""
    if n <= 0:
        return 0
    if op.kind == "deconv":
        return (n - 1) * op.stride - 2 * op.padding + op.kernel
    k_eff = op.dilation * (op.kernel - 1) + 1
    # PyTorch's rule: ceil mode rounds the window count up, so a last window may overhang
    # the input (even a 1-pixel input gets one 2x2 pooling window) ...
    rounding = op.stride - 1 if op.ceil_mode else 0
    out = (n + 2 * op.padding - k_eff + rounding) // op.stride + 1
    # ... but never a window that would start inside the right padding.
    if op.ceil_mode and (out - 1) * op.stride >= n + op.padding:
        out -= 1
    return max(out, 0)


def output_size(modules: nn.Module | Iterable[nn.Module], size: tuple[int, int]) -> tuple[int, int]:
    """Spatial size after the stack, computed from layer arithmetic alone (no forward pass).

    A size of 0 means the input was too small for some layer: a classifier's valid
    convolutions need at least their receptive field, which is why FCN pads conv1_1.
    """
    h, w = size
    for _, _, op in _ops(modules):
        h, w = _out_len(op, h), _out_len(op, w)
    return h, w


def receptive_fields(
    modules: nn.Module | Iterable[nn.Module], input_size: int | None = None
) -> list[LayerGeometry]:
    """Per-layer stride ("jump"), receptive field and offset, along one axis.

    The receptive field grows by ``(k_eff - 1) * jump`` at each conv or pool: a layer's
    kernel spans ``k`` of its inputs, which are ``jump`` input pixels apart. A transposed
    conv of stride ``s`` reads ``ceil(k / s)`` inputs per output, so it grows the field too
    while dividing the jump.
    """
    rows: list[LayerGeometry] = []
    cmap = CoordMap()
    rf = Fraction(1)
    n = input_size
    for name, module, op in _ops(modules):
        if op.kind == "deconv":
            rf += (math.ceil(op.kernel / op.stride) - 1) * cmap.stride
        else:
            rf += op.dilation * (op.kernel - 1) * cmap.stride
        cmap = cmap.then(*_layer_map(op))
        if n is not None:
            n = _out_len(op, n)
        rows.append(LayerGeometry(name, type(module).__name__, n, cmap.stride, rf, cmap.offset))
    return rows
