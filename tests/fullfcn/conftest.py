"""Data sets built on the fly, and the reduced-width VGG the tests use.

The synthetic VOC set has real VOC structure -- ``VOC2012/JPEGImages/*.jpg``, palette PNG
labels with 255 void borders, ``ImageSets/Segmentation/*.txt`` -- with coloured rectangles
whose class is a simple function of their colour, so a few training steps can lower the loss.

Two folders in the ``--data`` layout (``images/``, ``masks/``): the three genuine VOC pairs
with their palette masks re-coloured (so a test can tell the folder's palette from VOC's),
and real-MNIST M2NIST images with index masks and a ``classes.txt``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fullfcn.voc import VOC_CLASSES, colorize, voc_palette
from m2nist.cli import main as m2nist_gen

#: The re-coloured palette of ``voc_folder``: VOC's colours inverted, index for index.
FOLDER_PALETTE = [255 - v for v in voc_palette()]

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


def make_folder(root: Path, pairs: dict[str, tuple[Image.Image, Image.Image]]) -> Path:
    """``root/images/<stem>.png`` and ``root/masks/<stem>.png`` for each ``(image, mask)``."""
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for stem, (image, mask) in pairs.items():
        image.save(root / "images" / f"{stem}.png")
        mask.save(root / "masks" / f"{stem}.png")
    return root


@pytest.fixture(scope="session")
def voc_folder(voc_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The genuine VOC pairs as a folder (JPEG photos, palette masks in FOLDER_PALETTE), with
    VOC's class names in classes.txt; no split lists, so the split is the seeded one."""
    voc = voc_root / "VOC2012"
    root = tmp_path_factory.mktemp("voc_folder")
    for sub in ("images", "masks"):
        (root / sub).mkdir()
    for label in sorted((voc / "SegmentationClass").glob("*.png")):
        (root / "images" / f"{label.stem}.jpg").write_bytes(
            (voc / "JPEGImages" / f"{label.stem}.jpg").read_bytes()
        )
        mask = Image.open(label)
        mask.putpalette(FOLDER_PALETTE)  # same indices (classes), other colours
        mask.save(root / "masks" / label.name)
    (root / "classes.txt").write_text("\n".join(VOC_CLASSES) + "\n")
    return root


@pytest.fixture(scope="session")
def m2nist_folder(mnist_source: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six M2NIST images as ``m2nist-gen --format png`` writes them: 8-bit grey PNGs, index
    masks ("L", class = pixel value, background 10), classes.txt naming 0-9 and background,
    train.txt/val.txt listing 4 train and 2 test stems."""
    root = tmp_path_factory.mktemp("m2nist_folder") / "m2nist"
    source = ["--sample"] if mnist_source == "sample" else ["--mnist-dir", mnist_source]
    argv = [str(root), "--format", "png", "--train", "4", "--test", "2", "--quiet", *source]
    assert m2nist_gen(argv) == 0
    return root
