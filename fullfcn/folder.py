"""Your own data: a folder of images and masks, paired by file stem.

::

    DIR/
      images/<stem>.<jpg|png|...>   the photos (any format PIL reads)
      masks/<stem>.png              one mask per photo, the photo's size
      classes.txt                   optional: one class name a line (the count = the lines)
      train.txt, val.txt            optional: the stems of each split

This is the layout people already keep (CamVid-style folders, labelme's PNG exports,
``m2nist-gen --format png``); the other usual folder names (:data:`LAYOUTS`), named folders
(``--images``, ``--masks``) and one folder a split (``images/train/`` ...) are found too.
A mask's values are the class ids, 255 meaning "ignore", unless ``mask_values`` maps them
(``--mask-values 0,255`` for binary masks). Masks are index PNGs or VOC-style palette PNGs
(the indices are the classes); an RGB mask is refused, as its colours would have to be
guessed back into classes. Without split lists, the split is seeded (:func:`split_stems`)
so training and evaluation agree on it. Every rule, with its reasons: docs/fullfcn.md,
"Train on your own data".

Every pair of the split is decoded and checked when the dataset is made, so nothing trains
on a silently dropped or mislabelled pair, and a truncated photo fails now, not at the first
validation hours later: each problem is one :class:`FolderError` naming the file. What is
legal but suspicious is said by :meth:`SegmentationFolder.label_warnings`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from torchvision.datasets import VisionDataset
from tqdm import tqdm

from fcnbase.device import available_cores
from fullfcn.pairs import (
    IGNORE_INDEX,
    LabelError,
    SegmentationPairs,
    check_ids,
    check_palette,
    decode_mask,
    read_list,
)
from fullfcn.predict import load_image
from fullfcn.voc import voc_palette

CLASSES_FILE = "classes.txt"
#: The split's seed, shared by fullfcn-train and fullfcn-eval. Not ``--seed``: another
#: training seed must not move images between the training and validation sets.
SPLIT_SEED = 0
SPLITS = ("train", "val")
#: The names of the photos' and the masks' folders, tried in this order.
LAYOUTS = (("images", "masks"), ("image", "label"), ("img", "mask"))
LAYOUTS += (("JPEGImages", "SegmentationClass"),)
#: Mask modes whose pixel values are class ids: palette, 8-bit, 16-bit and 32-bit grey.
_INDEX_MODES = ("P", "L", "I;16", "I;16L", "I;16B", "I")
_EXPECTED = (
    "expected DIR/images/<stem>.jpg beside DIR/masks/<stem>.png (or image/+label/, img/+mask/, "
    "JPEGImages/+SegmentationClass/; each may hold train/ and val/), or --images and --masks"
)


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


def find_layout(
    root: Path, images: str | None = None, masks: str | None = None
) -> tuple[Path, Path]:
    """The photos' and the masks' folders: ``images`` and ``masks`` when given (relative to
    ``root``, or absolute), else the first pair of :data:`LAYOUTS` that ``root`` holds."""
    if images or masks:
        if not (images and masks):
            raise FolderError("give both --images and --masks, the photos' and the masks' folders")
        for folder in (root / images, root / masks):
            if not folder.is_dir():
                raise FolderError(f"{folder} is not a directory ({_EXPECTED})")
        return root / images, root / masks
    for image_dir, mask_dir in LAYOUTS:
        if (root / image_dir).is_dir() and (root / mask_dir).is_dir():
            return root / image_dir, root / mask_dir
    raise FolderError(f"{root} has no images/ and masks/ folders: {_EXPECTED}")


def _files(folder: Path, kind: str) -> dict[str, Path]:
    """The files of ``folder`` by stem (none when it is missing); two with one stem, or a
    subfolder, would leave it unclear what pairs with what."""
    found: dict[str, Path] = {}
    for path in sorted(folder.glob("[!.]*")):
        if path.is_dir():
            raise FolderError(f"{path} is a folder among the {kind}s ({_EXPECTED})")
        if kind == "mask" and path.suffix.lower() != ".png":
            raise FolderError(f"mask {path} is not a .png (masks must be lossless PNG)")
        if path.stem in found:
            raise FolderError(f"{kind}s {found[path.stem]} and {path} share the stem: keep one")
        found[path.stem] = path
    return found


class SegmentationFolder(SegmentationPairs, VisionDataset):
    """A folder's photos and masks as ``(image, mask)`` pairs (see the module's doc).

    torchvision-style: ``SegmentationFolder(root, split, transforms=...)`` where
    ``transforms(image, mask)`` is a joint transform such as
    :func:`fullfcn.transforms.train_transforms`. Attributes: ``classes`` (names),
    ``num_classes``, ``mask_values`` (None: the values are the class ids), ``palette``
    (flat RGB list of 768 ints: how each mask value is drawn), ``ids`` (the split's pairs,
    as stems, or ``train/<stem>`` in a folder a split), ``images`` and ``masks`` (their
    paths, in order), ``pixels`` (how many pixels of each class the split's masks hold,
    then how many are ignored).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        transforms: Callable[[Any, Any], Any] | None = None,
        num_classes: int | None = None,
        val_fraction: float = 0.2,
        seed: int = SPLIT_SEED,
        *,
        mask_values: Sequence[int] | None = None,
        images: str | None = None,
        masks: str | None = None,
        progress: bool = False,
    ) -> None:
        super().__init__(str(root), transforms=transforms)
        root = Path(root)
        if split not in SPLITS:
            raise ValueError(f"split {split!r} is not one of {SPLITS}")
        self.split = split
        self.mask_values = tuple(mask_values) if mask_values else None
        self.classes = self._classes(root, num_classes, self.mask_values)
        self.num_classes = len(self.classes)
        image_dir, mask_dir = find_layout(root, images, masks)
        pairs = self._pairs(image_dir, mask_dir)
        self.ids = self._split(root, sorted(pairs), split, val_fraction, seed)
        if not self.ids:
            raise FolderError(
                f"split {split!r} of {root} is empty ({len(pairs)} pairs in all; "
                f"write {split}.txt or change --val-fraction)"
            )
        self.images = [str(pairs[s][0]) for s in self.ids]
        self.masks = [str(pairs[s][1]) for s in self.ids]
        self._lut = None  # mask value -> class id, when the values are not the ids
        if self.mask_values:
            self._lut = np.full(max(self.mask_values) + 1, IGNORE_INDEX, np.uint8)
            self._lut[list(self.mask_values)] = np.arange(self.num_classes)
        self.palette: list[int] = []
        self.pixels = np.zeros(self.num_classes + 1, np.int64)
        self._check(progress)
        grey = [v for v in range(256) for _ in range(3)]
        self.palette = self.palette or (grey if self.mask_values else voc_palette())

    @staticmethod
    def _classes(
        root: Path, num_classes: int | None, mask_values: tuple[int, ...] | None
    ) -> tuple[str, ...]:
        """Names from ``classes.txt``, else the mask values, else ``"0"``, ``"1"`` ..."""
        path = root / CLASSES_FILE
        if path.is_file():
            names, source = tuple(read_list(path, blank_lines=False)), str(path)
        elif mask_values:
            names, source = tuple(map(str, mask_values)), "--mask-values"
        elif num_classes is None:
            raise FolderError(f"{root} has no {CLASSES_FILE}: give --classes N, the class count")
        else:
            names, source = tuple(str(c) for c in range(num_classes)), "--classes"
        stated = {"--classes": num_classes, "--mask-values": len(mask_values or ()) or None}
        for option, count in stated.items():
            if count is not None and count != len(names):
                raise FolderError(f"{source} names {len(names)} classes, but {option} says {count}")
        if not 1 <= len(names) <= IGNORE_INDEX:
            raise FolderError(
                f"{source}: {len(names)} classes; a mask holds "
                f"1 to {IGNORE_INDEX} classes ({IGNORE_INDEX} means ignore)"
            )
        return names

    @staticmethod
    def _pairs(image_dir: Path, mask_dir: Path) -> dict[str, tuple[Path, Path]]:
        """Every image with its mask, by id; a file without its partner is an error."""
        subs = [s for s in SPLITS if (image_dir / s).is_dir()]  # one folder a split
        beside = [p for p in image_dir.glob("[!.]*") if subs and p.name not in SPLITS]
        if beside:
            raise FolderError(f"{beside[0]} is beside the split folders: move it into one")
        images: dict[str, Path] = {}
        masks: dict[str, Path] = {}
        for sub in subs or [""]:
            prefix = f"{sub}/" if sub else ""
            images |= {prefix + k: p for k, p in _files(image_dir / sub, "image").items()}
            masks |= {prefix + k: p for k, p in _files(mask_dir / sub, "mask").items()}
        for stem, image in images.items():
            if stem not in masks:
                raise FolderError(f"image {image} has no mask {mask_dir / stem}.png")
        for stem, mask in masks.items():
            if stem not in images:
                raise FolderError(f"mask {mask} has no image {image_dir / stem}.*")
        return {stem: (image, masks[stem]) for stem, image in images.items()}

    @staticmethod
    def _split(root: Path, ids: list[str], split: str, val_fraction: float, seed: int) -> list[str]:
        """The ids of ``split``: its folder, or its list file, else seeded."""
        lists = [root / f"{s}.txt" for s in SPLITS]
        listed = any(path.is_file() for path in lists)
        if any("/" in i for i in ids):  # one folder a split
            if listed:
                raise FolderError(f"{root} has split folders and split lists: keep one of them")
            return [i for i in ids if i.startswith(f"{split}/")]
        if not listed:
            return split_stems(ids, split, val_fraction, seed)
        for path in lists:
            if not path.is_file():
                raise FolderError(
                    f"{root} has a split list but no {path.name}: write both or neither"
                )
        train, val = (read_list(path) for path in lists)
        both = sorted(set(train) & set(val))
        if both:
            raise FolderError(
                f"{lists[0]} and {lists[1]} both list {both[0]!r} ({len(both)} in all): "
                "a validation image must not be trained on"
            )
        for path, stems in zip(lists, (train, val), strict=True):
            unknown = sorted(set(stems) - set(ids))
            if unknown:
                raise FolderError(f"{path} lists {unknown[0]!r}, which has no image and mask")
        return train if split == "train" else val

    def _read(self, index: int) -> tuple[np.ndarray, np.ndarray, list[int] | None]:
        """Decode pair ``index``: the mask's values, their pixel counts and its palette."""
        size = self._image(index).size  # upright: as the mask was drawn on it
        path = self.masks[index]
        try:
            mask = Image.open(path)
        except (UnidentifiedImageError, OSError) as err:
            raise FolderError(f"mask {path} is not an image PIL can read") from err
        with mask:
            if mask.mode not in _INDEX_MODES:
                raise FolderError(
                    f"mask {path} is a {mask.mode} image, not a palette or index PNG: "
                    "save it with its class ids as palette indices (mode P) or grey values"
                )
            values, counts = decode_mask(mask, size, f"mask {path}", FolderError)
            return values, counts, mask.getpalette() if mask.mode == "P" else None

    def _check(self, progress: bool) -> None:
        """Decode every pair (in threads: PIL decodes without the GIL), then check what the
        masks hold together: their values, their palettes, the pixels of each class."""
        pool = ThreadPoolExecutor(available_cores())
        try:
            read = pool.map(self._read, range(len(self)))
            bar = tqdm(read, f"checking {self.split}", len(self), leave=False, disable=not progress)
            found = list(bar)
        finally:
            pool.shutdown(cancel_futures=True)
        first, seen = "", set()
        for path, (values, counts, palette) in zip(self.masks, found, strict=True):
            what = f"mask {path}"
            if self.mask_values:
                unlisted = [int(v) for v in values if v not in self.mask_values]
                if unlisted:
                    raise FolderError(
                        f"{what} holds value {unlisted[0]}, which --mask-values "
                        f"{','.join(map(str, self.mask_values))} does not list"
                    )
                ids = self._lut[values]  # type: ignore[index]
            else:
                check_ids(values, what, self.num_classes, "the folder", FolderError)
                ids = values
            if palette is not None and not self.palette:
                self.palette, first = (palette + [0] * 768)[:768], path  # 256 colours
            check_palette(palette, values, self.palette, what, first, FolderError)
            ids = np.where(ids == IGNORE_INDEX, self.num_classes, ids.astype(np.int64))
            np.add.at(self.pixels, ids, counts)  # the last entry counts the ignored
            seen.update(values.tolist())
        if not self.mask_values and self.num_classes > 1 and seen == {0, IGNORE_INDEX}:
            raise FolderError(
                f"the masks of split {self.split!r} of {self.root} hold only 0 and "
                f"{IGNORE_INDEX}, and {IGNORE_INDEX} means ignore: for binary masks "
                f"(0 background, {IGNORE_INDEX} object) give --mask-values 0,{IGNORE_INDEX}"
            )

    def label_warnings(self) -> list[str]:
        """What the masks hold that is legal but likely a mistake, one line each: a class
        that no mask of the split holds, more ignored pixels than labelled ones."""
        where, notes = f"split {self.split!r} of {self.root}", []
        absent = [name for name, n in zip(self.classes, self.pixels, strict=False) if n == 0]
        if absent:
            notes.append(
                f"{where}: no mask holds class {', '.join(absent[:3])}"
                f"{' ...' if len(absent) > 3 else ''} ({len(absent)} of {self.num_classes}): "
                "check classes.txt or --classes, and --mask-values if the values are not the ids"
            )
        ignored, labelled = int(self.pixels[-1]), int(self.pixels[:-1].sum())
        if ignored > labelled:
            notes.append(
                f"{where}: {ignored:,} pixels are {IGNORE_INDEX} (ignored), more than the "
                f"{labelled:,} labelled: if {IGNORE_INDEX} is a class, give --mask-values"
            )
        return notes

    def __len__(self) -> int:
        return len(self.images)

    def _image(self, index: int) -> Image.Image:
        try:
            return load_image(self.images[index])
        except ValueError as err:
            raise FolderError(f"image {err}") from None

    def load_pair(self, index: int) -> tuple[Image.Image, Image.Image]:
        """The image as upright 8-bit RGB (16-bit scaled, as ``fullfcn-predict`` reads it),
        the mask's class ids; both were checked when the dataset was made."""
        mask = Image.open(self.masks[index])
        if self._lut is not None:
            mask = Image.fromarray(self._lut[np.asarray(mask)])
        return self._image(index), mask
