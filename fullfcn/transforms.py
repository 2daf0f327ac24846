"""Input normalisation by weights origin, and joint image/label transforms.

A network only works on inputs prepared the way its weights were trained. The FCN models
were trained in Caffe from the Caffe VGG16: BGR channel order, 0..255 values, the
per-channel ImageNet mean subtracted and no scaling. torchvision's VGG16 expects RGB in
0..1 standardised by the ImageNet mean and std. Both are ``(pixel - mean) / std`` on
0..255 pixels with a channel order, so one small class describes them.

Geometric augmentation must move the label exactly as the image: the image is resized
bilinearly, the label with nearest neighbour (a blend of class 3 and class 5 is not class
4), and padding added by a crop is void (255) in the label, so the loss ignores it.
torchvision's ``transforms.v2`` does this when the label is wrapped as a ``Mask``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from fullfcn.pairs import IGNORE_INDEX


@dataclass(frozen=True)
class Preprocess:
    """``(pixel - mean) / std`` on 0..255 pixels, in ``channel_order`` (torchvision's
    ``normalize``); and its inverse."""

    name: str
    channel_order: str  # "RGB" or "BGR"
    mean: tuple[float, float, float]  # in the channel order, on 0..255
    std: tuple[float, float, float]

    def __call__(self, image: Image.Image | Tensor) -> Tensor:
        """An RGB PIL image (or uint8 ``3xHxW`` tensor) as the network's float input."""
        x = F.pil_to_tensor(image.convert("RGB")) if isinstance(image, Image.Image) else image
        x = x.float()
        if self.channel_order == "BGR":
            x = x.flip(-3)
        return F.normalize(x, list(self.mean), list(self.std))

    def denormalize(self, x: Tensor) -> Tensor:
        """Back to a uint8 RGB ``3xHxW`` tensor, e.g. to draw an overlay."""
        x = x * x.new_tensor(self.std).view(3, 1, 1) + x.new_tensor(self.mean).view(3, 1, 1)
        if self.channel_order == "BGR":
            x = x.flip(-3)
        return x.round().clamp(0, 255).to(torch.uint8)


# The mean the Caffe VGG16 (and so the FCN reference models) subtracts, in BGR order.
CAFFE = Preprocess("caffe", "BGR", (104.00698793, 116.66876762, 122.67891434), (1.0, 1.0, 1.0))
TORCHVISION = Preprocess(
    "torchvision",
    "RGB",
    (0.485 * 255, 0.456 * 255, 0.406 * 255),
    (0.229 * 255, 0.224 * 255, 0.225 * 255),
)
PREPROCESS = {p.name: p for p in (CAFFE, TORCHVISION)}


class _ToTensors:
    """The image normalised as ``preprocess`` says, as a ``tv_tensors.Image``; the label as a
    ``tv_tensors.Mask`` of class indices (palette indices, never colours): the types tell
    ``v2``'s transforms to move both together, and to resize the mask with nearest neighbour."""

    def __init__(self, preprocess: Preprocess) -> None:
        self.preprocess = preprocess

    def __call__(self, image: Image.Image, label: Image.Image) -> tuple[Tensor, Tensor]:
        return (
            tv_tensors.Image(self.preprocess(image)),
            tv_tensors.Mask(torch.from_numpy(np.array(label, dtype=np.int64))),
        )


class RandomScale:
    """Resize image and label by one factor drawn uniformly from ``scale``.

    torch's generator draws the factor, as it draws ``v2``'s flips and crops: the training
    loop seeds it per sample, so the augmentation of a sample depends on nothing else.
    """

    def __init__(self, scale: tuple[float, float]) -> None:
        self.scale = scale

    def __call__(self, image: Tensor, label: Tensor) -> tuple[Tensor, Tensor]:
        factor = float(torch.empty(()).uniform_(*self.scale))
        size = [max(1, round(n * factor)) for n in image.shape[-2:]]
        return F.resize(image, size, antialias=True), F.resize(label, size)  # bilinear, nearest


def eval_transforms(preprocess: Preprocess) -> v2.Compose:
    """Full image, normalised; label as class indices. The paper's input, train and test.

    Like every transform here it takes and returns ``(image, label)`` (``v2.Compose`` hands
    both to each step); they come out as ``tv_tensors`` (tensors to anything else), and a
    ``DataLoader`` batches them into plain tensors."""
    return v2.Compose([_ToTensors(preprocess)])


def train_transforms(
    preprocess: Preprocess,
    crop_size: int | None = None,
    scale: tuple[float, float] = (0.5, 2.0),
    flip: bool = True,
) -> v2.Compose:
    """Augmentation for batched training: flip, random scale, ``crop_size`` crop.

    The crop pads small images with 0 in the image (the mean, after normalisation) and
    255 in the label. ``crop_size=None`` keeps full images (the paper, at batch 1), with
    flipping only.
    """
    steps: list[object] = [_ToTensors(preprocess)]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    if crop_size is not None:
        steps.append(RandomScale(scale))
        fill = {tv_tensors.Image: 0.0, tv_tensors.Mask: IGNORE_INDEX}
        steps.append(v2.RandomCrop(crop_size, pad_if_needed=True, fill=fill))
    return v2.Compose(steps)
