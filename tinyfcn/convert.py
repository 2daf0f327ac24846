"""The paper's central move: a classifier's fully connected layers *are* convolutions.

A dense layer that reads a flattened ``C x h x w`` feature map computes, for every output
unit, a dot product with a ``C x h x w`` weight block -- exactly what a ``h x w``
convolution with ``C`` input channels computes at one position. Re-shaping the weight
matrix into conv kernels therefore changes nothing on the input size the classifier was
trained for (the map is ``h x w``, the conv fires once), and on a larger input the same
weights simply slide: the classifier becomes a *heatmap* of class scores, one per
position, computed with all the shared work of overlapping windows done once
(Long, Shelhamer & Darrell, sec. 3.1). Later dense layers read a vector, so they become
``1 x 1`` convolutions.

``convolutionalize`` does this for any torchvision-style classifier -- ``features``
(convs and pools), an optional ``avgpool``, a flatten, and ``classifier`` (Linear, ReLU,
Dropout) -- so the same function converts the tiny MNIST net and VGG16.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import torch
from torch import nn

from tinyfcn.geometry import output_size


def linear_to_conv(linear: nn.Linear, in_channels: int, kernel: tuple[int, int]) -> nn.Conv2d:
    """The convolution that computes ``linear`` on a ``in_channels x kernel`` feature map.

    PyTorch flattens ``(C, H, W)`` in C-major order, so the weight row of each output unit
    reshapes to ``(C, H, W)`` with no transposition.
    """
    h, w = kernel
    if linear.in_features != in_channels * h * w:
        raise ValueError(
            f"{linear} reads {linear.in_features} features, but a {in_channels}x{h}x{w} "
            f"feature map has {in_channels * h * w}"
        )
    conv = nn.Conv2d(in_channels, linear.out_features, (h, w), bias=linear.bias is not None)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.reshape(linear.out_features, in_channels, h, w))
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv


def _feature_shape(model: nn.Module, input_size: tuple[int, int]) -> tuple[int, int, int]:
    """Channels and spatial size of what ``classifier`` flattens, at the nominal input."""
    h, w = output_size(model.features, input_size)
    convs = [m for m in model.features.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("model.features holds no Conv2d; nothing to convolutionalize")
    channels = convs[-1].out_channels
    pool = getattr(model, "avgpool", None)
    if pool is not None and not isinstance(pool, nn.Identity):
        if not isinstance(pool, nn.AdaptiveAvgPool2d):
            raise ValueError(f"unsupported avgpool {pool}; expected AdaptiveAvgPool2d")
        target = pool.output_size
        target = (target, target) if isinstance(target, int) else tuple(target)
        if target != (h, w):
            # The adaptive pool resamples the map; on the nominal input it must be a no-op,
            # otherwise the dense weights were trained on something a conv cannot reproduce.
            raise ValueError(
                f"avgpool resizes the {h}x{w} feature map to {target} at input {input_size}; "
                "convolutionalize at the input size where it is the identity"
            )
    return channels, h, w


def convolutionalize(model: nn.Module, input_size: tuple[int, int]) -> nn.Sequential:
    """Turn a ``features / avgpool / flatten / classifier`` net into a fully conv net.

    ``input_size`` is the size the classifier was trained on (28x28 for MNIST, 224x224 for
    VGG16): it fixes the feature-map size the first dense layer reads, hence the kernel of
    its conv (5x5 and 7x7). The returned ``Sequential`` has children ``features`` and
    ``classifier`` (convs holding the dense weights, ReLU/Dropout kept), all copies: the
    original classifier stays usable and untouched when the FCN is later modified or
    trained. On ``input_size`` it reproduces the logits as an ``N x classes x 1 x 1`` map;
    on larger inputs it yields a map of logits.
    """
    if not isinstance(getattr(model, "features", None), nn.Module) or not isinstance(
        getattr(model, "classifier", None), nn.Module
    ):
        raise TypeError("expected a torchvision-style model with .features and .classifier")
    channels, h, w = _feature_shape(model, input_size)
    if h < 1 or w < 1:
        raise ValueError(f"input {input_size} is too small for the features: map is {h}x{w}")
    layers: list[nn.Module] = []
    kernel = (h, w)
    classifier = model.classifier
    for module in classifier if isinstance(classifier, nn.Sequential) else [classifier]:
        if isinstance(module, nn.Linear):
            layers.append(linear_to_conv(module, channels, kernel))
            channels, kernel = module.out_features, (1, 1)
        elif isinstance(module, nn.ReLU | nn.Dropout | nn.Identity):
            layers.append(copy.deepcopy(module))
        elif isinstance(module, nn.Flatten):
            continue
        else:
            raise TypeError(f"cannot convolutionalize classifier layer {module}")
    return nn.Sequential(
        OrderedDict(features=copy.deepcopy(model.features), classifier=nn.Sequential(*layers))
    )
