"""Your own data: a folder of images and masks, paired by file stem.

::

    DIR/
      images/<stem>.<jpg|png|...>   the photos (any format PIL reads)
      masks/<stem>.png              one mask per photo, the photo's size
      classes.txt                   optional: one class name a line (the count = the lines)
      train.txt, val.txt            optional: the stems of each split

This is the layout people already keep (CamVid-style folders, labelme's PNG exports,
``m2nist-gen --format png``). A mask's pixel values are the class ids, 255 meaning
"ignore" (counted by neither the loss nor the metrics). Two kinds of mask PNG are read:

- *index* PNGs: single-channel (PIL modes ``L``, ``I;16``, ``I``), pixel = class id;
- *palette* PNGs in the VOC style (mode ``P``): the palette *indices* are the class ids,
  the colours only how a viewer shows them. The first palette mask's colours become the
  dataset's :attr:`SegmentationFolder.palette`, which ``fullfcn-train`` stores in its
  checkpoint so ``fullfcn-predict`` draws its masks in the same colours (VOC's colour
  map for index masks).

An RGB mask is refused: its colours would have to be guessed back into classes. Save it
as a palette PNG (or an index PNG) instead.

Without ``classes.txt`` the class count is ``num_classes`` (``--classes N``). Without
``train.txt``/``val.txt`` the split is seeded and documented: the sorted stems, permuted
by ``numpy.random.default_rng(seed)``; the first ``round(val_fraction * n)`` of them (at
least one when there are two or more pairs) are ``val``, the rest ``train``. The same
folder, fraction and seed always give the same split, in training and in evaluation.

Every pair of the split is checked when the dataset is made, so nothing trains on a
silently dropped or mislabelled pair: an image without a mask or the reverse, an
unreadable file, a mask whose size (read from the PNG header only) differs from its
image's, an RGB mask, a class id the folder does not have, an empty split. Each is one
:class:`FolderError` naming the file. Checking the class ids decodes every mask once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from torchvision.datasets import VisionDataset

from fullfcn.pairs import IGNORE_INDEX, LabelError, SegmentationPairs, check_mask, read_list
from fullfcn.predict import load_image
from fullfcn.voc import voc_palette

CLASSES_FILE = "classes.txt"
#: The split's seed, shared by fullfcn-train and fullfcn-eval. Not ``--seed``: another
#: training seed must not move images between the training and validation sets.
SPLIT_SEED = 0
SPLITS = ("train", "val")
#: Mask modes whose pixel values are class ids: palette, 8-bit, 16-bit and 32-bit grey.
_INDEX_MODES = ("P", "L", "I;16", "I;16L", "I;16B", "I")


class FolderError(LabelError):
    """A dataset folder that cannot be trained on as it is; the one line names the file."""


def split_stems(stems: list[str], split: str, val_fraction: float, seed: int) -> list[str]:
    """The seeded split: sorted ``stems`` permuted by ``default_rng(seed)``; the first
    ``round(val_fraction * n)`` (at least 1 when ``n >= 2``) are ``val``, the rest ``train``.
    Each split is returned sorted."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction {val_fraction} is outside [0, 1)")
    ordered = sorted(stems)
    n = len(ordered)
    n_val = round(val_fraction * n)
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    chosen = order[:n_val] if split == "val" else order[n_val:]
    return sorted(ordered[i] for i in chosen)


def _open_header(path: Path, what: str) -> Image.Image:
    """``Image.open`` reads the header only: the size and mode, not the pixels."""
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError) as err:
        raise FolderError(f"{what} {path} is not an image PIL can read") from err


class SegmentationFolder(SegmentationPairs, VisionDataset):
    """``DIR/images`` and ``DIR/masks`` as ``(image, mask)`` pairs (see the module's doc).

    torchvision-style: ``SegmentationFolder(root, split, transforms=...)`` where
    ``transforms(image, mask)`` is a joint transform such as
    :func:`fullfcn.transforms.train_transforms`. Attributes: ``classes`` (names),
    ``num_classes``, ``palette`` (flat RGB list of 768 ints), ``images`` and ``masks``
    (the paths of the split's pairs, in order).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        transforms: Callable[[Any, Any], Any] | None = None,
        num_classes: int | None = None,
        val_fraction: float = 0.2,
        seed: int = SPLIT_SEED,
    ) -> None:
        super().__init__(str(root), transforms=transforms)
        root = Path(root)
        if split not in SPLITS:
            raise ValueError(f"split {split!r} is not one of {SPLITS}")
        self.split = split
        self.classes = self._classes(root, num_classes)
        self.num_classes = len(self.classes)
        pairs = self._pairs(root)
        stems = self._split(root, sorted(pairs), split, val_fraction, seed)
        if not stems:
            raise FolderError(
                f"split {split!r} of {root} is empty ({len(pairs)} pairs in all; "
                f"write {split}.txt or change --val-fraction)"
            )
        self.images = [str(pairs[s][0]) for s in stems]
        self.masks = [str(pairs[s][1]) for s in stems]
        self.palette: list[int] = []
        for image, mask in zip(self.images, self.masks, strict=True):
            self._check_pair(Path(image), Path(mask))
        self.palette = self.palette or voc_palette()

    @staticmethod
    def _classes(root: Path, num_classes: int | None) -> tuple[str, ...]:
        """Names from ``classes.txt``, or ``"0"``, ``"1"`` ... for ``num_classes``."""
        path = root / CLASSES_FILE
        if path.is_file():
            names = tuple(read_list(path))
            if num_classes is not None and num_classes != len(names):
                raise FolderError(
                    f"{path} names {len(names)} classes, but --classes says {num_classes}"
                )
        elif num_classes is None:
            raise FolderError(f"{root} has no {CLASSES_FILE}: give --classes N, the class count")
        else:
            names = tuple(str(c) for c in range(num_classes))
        if not 1 <= len(names) <= IGNORE_INDEX:
            raise FolderError(
                f"{path if path.is_file() else root}: {len(names)} classes; a mask holds "
                f"1 to {IGNORE_INDEX} classes ({IGNORE_INDEX} means ignore)"
            )
        return names

    @staticmethod
    def _pairs(root: Path) -> dict[str, tuple[Path, Path]]:
        """Every image with its mask, by stem; a file without its partner is an error."""
        images_dir, masks_dir = root / "images", root / "masks"
        for folder in (images_dir, masks_dir):
            if not folder.is_dir():
                raise FolderError(f"{root} has no {folder.name}/ folder (see fullfcn-train --help)")
        images: dict[str, Path] = {}
        for path in sorted(p for p in images_dir.iterdir() if not p.name.startswith(".")):
            if path.stem in images:
                raise FolderError(f"images {images[path.stem]} and {path} share the stem")
            images[path.stem] = path
        masks: dict[str, Path] = {}
        for path in sorted(p for p in masks_dir.iterdir() if not p.name.startswith(".")):
            if path.suffix.lower() != ".png":
                raise FolderError(f"mask {path} is not a .png (masks must be lossless PNG)")
            masks[path.stem] = path
        for stem, image in images.items():
            if stem not in masks:
                raise FolderError(f"image {image} has no mask {masks_dir / stem}.png")
        for stem, mask in masks.items():
            if stem not in images:
                raise FolderError(f"mask {mask} has no image {images_dir / stem}.*")
        return {stem: (image, masks[stem]) for stem, image in images.items()}

    @staticmethod
    def _split(
        root: Path, stems: list[str], split: str, val_fraction: float, seed: int
    ) -> list[str]:
        """The stems of ``split``: its list file when the folder has one, else seeded."""
        lists = [root / f"{s}.txt" for s in SPLITS]
        if not any(path.is_file() for path in lists):
            return split_stems(stems, split, val_fraction, seed)
        path = root / f"{split}.txt"
        if not path.is_file():
            raise FolderError(f"{root} has a split list but no {path.name}: write both or neither")
        known = set(stems)
        listed = read_list(path)
        for stem in listed:
            if stem not in known:
                raise FolderError(f"{path} lists {stem!r}, which has no image and mask")
        return listed

    def _check_pair(self, image_path: Path, mask_path: Path) -> None:
        """Sizes, the mask's kind and class ids; the first palette is kept."""
        with _open_header(image_path, "image") as image, _open_header(mask_path, "mask") as mask:
            if mask.mode not in _INDEX_MODES:
                raise FolderError(
                    f"mask {mask_path} is a {mask.mode} image, not a palette or index PNG: "
                    "save it with its class ids as palette indices (mode P) or grey values"
                )
            what = f"mask {mask_path}"
            check_mask(mask, image, what, self.num_classes, "the folder", FolderError)
            if mask.mode == "P" and not self.palette:
                self.palette = ((mask.getpalette() or []) + [0] * 768)[:768]  # 256 colours

    def __len__(self) -> int:
        return len(self.images)

    def load_pair(self, index: int) -> tuple[Image.Image, Image.Image]:
        """The image as 8-bit RGB (16-bit scaled, as ``fullfcn-predict`` reads it), the mask
        as stored; both were checked when the dataset was made."""
        try:
            image = load_image(self.images[index])
        except ValueError as err:
            raise FolderError(str(err)) from None
        return image, Image.open(self.masks[index])
