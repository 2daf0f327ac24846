"""The FCN decoder, written once: score layers, skip fusion and the crop plan.

The tiny MNIST nets (:mod:`tinyfcn.model`) and the VGG16 nets (:mod:`fullfcn.model`) decode
alike (Long, Shelhamer & Darrell, sec. 4.2): a 1x1 *score layer* turns features into class
scores (:func:`score_layer`); the coarse scores, upsampled 2x, get the finer layer's scores
added, cropped to line up -- "combining what and where" (:func:`fuse`); a last upsampling
returns to the input's stride, and a crop to its size. No crop is typed in: each net lists,
per crop, the layers from the image to the map that is cropped and to the map it must line
up with (``[]``: the image), and :func:`crop_plan` reads the offsets off their coordinate
maps (:mod:`tinyfcn.geometry`). The class count is the caller's: no dataset is known here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from tinyfcn.geometry import coord_map, crop, crop_offset

#: For each crop, by name: (layers from the image to the map that is cropped, layers from the
#: image to the map it must line up with).
CropPaths = Mapping[str, tuple[Sequence[nn.Module], Sequence[nn.Module]]]


def score_layer(in_channels: int, num_classes: int) -> nn.Conv2d:
    """A 1x1 class scorer starting at exactly zero (weights and bias), as the paper's skips:
    a fused net starts out computing its coarser parent and learns how much detail the finer
    layer adds."""
    conv = nn.Conv2d(in_channels, num_classes, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def fuse(coarse: Tensor, skip: Tensor, offset: int) -> Tensor:
    """The skip fusion: upsampled coarse scores plus a finer layer's scores, the latter
    cropped at ``offset`` to the coarse map's size so that pixel for pixel they see the same
    place of the image."""
    return coarse + crop(skip, offset, coarse.shape[-2:])


def crop_plan(paths: CropPaths) -> dict[str, int]:
    """Every crop of a net from coordinate maps, by name.

    ``crop_offset`` raises when a crop is not a whole, non-negative number of pixels: the
    net is then mis-designed (or, for the tiny nets, padded too little).
    """
    return {name: crop_offset(coord_map(src), coord_map(ref)) for name, (src, ref) in paths.items()}
