"""A VOC-layout data set built on the fly, and the reduced-width VGG the tests use.

The synthetic set has real VOC structure -- ``VOC2012/JPEGImages/*.jpg``, palette PNG labels
with 255 void borders, ``ImageSets/Segmentation/*.txt`` -- with coloured rectangles whose
class is a simple function of their colour, so a few training steps can lower the loss.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fullfcn.voc import colorize

#: Channels of every VGG layer divided by this: same geometry, ~1/256 of the FLOPs.
WIDTH = 16


def make_voc(
    root: Path, splits: dict[str, int], size: tuple[int, int] = (72, 96), seed: int = 0
) -> Path:
    """Write ``n`` images per split under ``root/VOC2012``; returns ``root``."""
    rng = np.random.default_rng(seed)
    voc = root / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    h, w = size
    for split, n in splits.items():
        ids = [f"2099_{split}_{i:03d}" for i in range(n)]
        for image_id in ids:
            label = np.zeros((h, w), np.uint8)
            image = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
            for cls in rng.choice(np.arange(1, 21), 2, replace=False):
                y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
                label[y : y + h // 2, x : x + w // 2] = cls
                image[y : y + h // 2, x : x + w // 2] = (cls * 12, 255 - cls * 12, 128)
            edges = np.zeros_like(label, bool)  # VOC's void band along object boundaries
            edges[:, 1:] |= label[:, 1:] != label[:, :-1]
            edges[1:, :] |= label[1:, :] != label[:-1, :]
            label[edges] = 255
            Image.fromarray(image).save(voc / "JPEGImages" / f"{image_id}.jpg", quality=95)
            colorize(label).save(voc / "SegmentationClass" / f"{image_id}.png")
        (voc / "ImageSets/Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return root


@pytest.fixture(scope="session")
def tiny_voc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 training and 2 validation images in VOC layout."""
    return make_voc(tmp_path_factory.mktemp("voc"), {"train": 4, "val": 2})
