"""PASCAL VOC 2012 segmentation (and SBD) for the paper's experiments.

The FCN paper trains on the 8,498 images of the Semantic Boundaries Dataset (SBD,
Hariharan et al. 2011) -- VOC images re-annotated with dense masks -- and reports
validation numbers on ``seg11valid``: the 736 images of VOC2011 ``val`` that SBD does
not train on (the paper's footnote 7). Everything is read through torchvision's dataset
classes, which also download the archives when online.

Labels are palette PNGs whose *indices* are the classes: 0 background, 1..20 objects and
255 for the "void" band drawn around every object, which no metric or loss counts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision import datasets
from torchvision.datasets.utils import download_url

from fullfcn.pairs import (
    LabelError,
    SegmentationPairs,
    check_ids,
    check_palette,
    decode_mask,
    read_list,
)

VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
NUM_CLASSES = len(VOC_CLASSES)
# The paper's validation list, from the reference implementation's repository.
SEG11VALID_URL = (
    "https://raw.githubusercontent.com/shelhamer/fcn.berkeleyvision.org/master/"
    "data/pascal/seg11valid.txt"
)


def voc_palette() -> list[int]:
    """The 256-entry VOC colour map (flat RGB list), as the devkit's ``VOClabelcolormap``.

    Class ``c``'s colour spreads the bits of ``c`` over the high bits of R, G and B,
    three bits at a time, so that neighbouring class ids get very different colours;
    255 (void) comes out as the cream (224, 224, 192) seen around VOC objects.
    """
    palette = []
    for c in range(256):
        r = g = b = 0
        cid = c
        for shift in range(7, -1, -1):
            r |= (cid & 1) << shift
            g |= ((cid >> 1) & 1) << shift
            b |= ((cid >> 2) & 1) << shift
            cid >>= 3
        palette += [r, g, b]
    return palette


def colorize(mask: np.ndarray | torch.Tensor, palette: list[int] | None = None) -> Image.Image:
    """A class-index mask as a palette ("P") image, the format of VOC's own labels.

    ``palette`` is a flat RGB list (a dataset's own, as a checkpoint stores it); VOC's
    colour map when ``None``.
    """
    array = mask.cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    image = Image.fromarray(array.astype(np.uint8), mode="P")
    image.putpalette(voc_palette() if palette is None else palette)
    return image


def find_voc2012(root: str | os.PathLike[str]) -> Path:
    """The ``VOC2012`` folder under ``root``, in the devkit layout or directly below it.

    Accepts ``root/VOCdevkit/VOC2012`` (what torchvision downloads), ``root/VOC2012`` and
    ``root`` itself; raises FileNotFoundError naming what was looked for otherwise.
    """
    root = Path(root)
    for candidate in (root / "VOCdevkit" / "VOC2012", root / "VOC2012", root):
        if (candidate / "JPEGImages").is_dir() and (candidate / "SegmentationClass").is_dir():
            return candidate
    raise FileNotFoundError(
        f"no PASCAL VOC 2012 found under {root} (expected VOCdevkit/VOC2012/ or VOC2012/ "
        "with JPEGImages/ and SegmentationClass/; pass --download to fetch it)"
    )


def check_label(image: Image.Image, label: Image.Image, label_path: str) -> None:
    """Raise :class:`LabelError` unless ``label`` is a VOC label for ``image``.

    A VOC label is a palette ("P") image whose *indices* are the classes 0..20 and 255
    (void); a grey ("L") image of the same indices is accepted too. An RGB rendering of
    the colours or another palette (its index 3 not meaning "boat") would train and
    evaluate without any error, on wrong targets; so would a mask of another size
    (:func:`fullfcn.pairs.decode_mask`).
    """
    if label.mode not in ("P", "L"):
        raise LabelError(
            f"label {label_path} is a {label.mode} image; VOC labels are palette images "
            "whose indices are the classes"
        )
    what = f"label {label_path}"
    values, _ = decode_mask(label, image.size, what)
    check_ids(values, what, NUM_CLASSES, "VOC")
    check_palette(label.getpalette(), values, voc_palette(), what, "VOC")


class _VOCPairs(SegmentationPairs):
    """VOC's and SBD's pairs: what their labels mean, as every fullfcn dataset says, and
    each label (read by torchvision's ``_get_target``) checked against its image."""

    classes: tuple[str, ...] = VOC_CLASSES
    num_classes: int = NUM_CLASSES
    palette: list[int] = voc_palette()
    images: list[str]
    masks: list[str]
    _get_target: Callable[[str], Image.Image]

    def load_pair(self, index: int) -> tuple[Image.Image, Image.Image]:
        image = Image.open(self.images[index]).convert("RGB")
        label = self._get_target(self.masks[index])
        check_label(image, label, self.masks[index])
        return image, label


class VOCSegmentation(_VOCPairs, datasets.VOCSegmentation):
    """torchvision's VOC 2012 segmentation set, for any split list and either layout.

    ``image_set`` is ``train``, ``val``, ``trainval`` or ``seg11valid`` (the paper's
    validation images; its list is fetched from the reference repository when missing and
    ``download`` is set), or a path to a text file of image ids. With ``download=True``
    torchvision fetches and unpacks the 2 GB VOC archive into ``root`` first. Items are
    ``(PIL RGB image, PIL "P" label)`` passed through ``transforms(image, label)``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        image_set: str = "train",
        *,
        download: bool = False,
        transforms: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        if download:
            datasets.VOCSegmentation(root, year="2012", image_set="train", download=True)
        voc = find_voc2012(root)
        # The parent's __init__ only knows the devkit layout and the three official lists:
        # the listing is ours (and so is loading, ``load_pair``, checked per label).
        datasets.VisionDataset.__init__(self, str(root), transforms=transforms)
        self.year, self.image_set = "2012", image_set
        split_file = Path(image_set)  # a file of ids, or the name of a VOC list:
        if os.path.sep not in image_set and not image_set.endswith(".txt"):
            split_file = voc / "ImageSets" / "Segmentation" / f"{image_set}.txt"
            if not split_file.is_file() and image_set == "seg11valid" and download:
                download_url(SEG11VALID_URL, str(split_file.parent), split_file.name)
        ids = read_list(split_file)
        self.images = [str(voc / "JPEGImages" / f"{i}.jpg") for i in ids]
        self.targets = [str(voc / "SegmentationClass" / f"{i}.png") for i in ids]
        missing = [p for p in self.images + self.targets if not os.path.isfile(p)]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} files of split {image_set!r} are missing, e.g. {missing[0]}"
            )

    _get_target = staticmethod(Image.open)


class SBDSegmentation(_VOCPairs, datasets.SBDataset):
    """SBD's dense masks (``cls/*.mat``) as VOC-style ``(image, "P" label)`` pairs.

    The paper's training set is SBD ``train`` (8,498 images); torchvision reads the
    MATLAB files (it needs scipy) and downloads the 1.4 GB archive when asked.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        image_set: str = "train",
        *,
        download: bool = False,
        transforms: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        if not download and not (Path(root) / "cls").is_dir():
            raise FileNotFoundError(
                f"no SBD found under {root} (expected cls/, img/ and "
                f"{image_set}.txt; pass --download to fetch it)"
            )
        super().__init__(
            str(root),
            image_set=image_set,
            mode="segmentation",
            download=download,
            transforms=transforms,
        )
