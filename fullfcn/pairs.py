"""What every fullfcn segmentation dataset shares: a pair's error, and the joint transforms.

VOC, SBD and a folder of your own images (:class:`fullfcn.folder.SegmentationFolder`) differ
only in where an image and its mask live and what makes a mask wrong. Each says how to
load pair ``index`` (:meth:`SegmentationPairs.load_pair`); this base hands the pair to the
same joint ``transforms(image, mask)`` (:mod:`fullfcn.transforms`), so a crop or flip moves
the mask exactly as the image, whichever dataset it came from.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

#: The mask value no loss or metric counts (VOC's "void" band around every object).
IGNORE_INDEX = 255


class LabelError(ValueError):
    """A mask that is not a label for its image, or a pair that cannot be read (one line,
    naming the file).

    A DataLoader worker hands an exception back by re-creating it from its whole
    formatted traceback; this class keeps only the message, so ``--workers 2`` reports
    the same one line as ``--workers 0``.
    """

    def __init__(self, message: str) -> None:
        if "Original Traceback" in message:  # re-raised by torch's worker machinery
            last = message.rstrip().splitlines()[-1]
            message = last.split(": ", 1)[1] if ": " in last else last
        super().__init__(message)


def decode_mask(
    mask: Image.Image, size: tuple[int, int], what: str, error: type[LabelError] = LabelError
) -> tuple[np.ndarray, ...]:
    """The distinct values of ``mask`` and how many pixels hold each (this decodes it), once
    it is checked to have ``size``, its photo's: a mask resized apart from its photo would
    train on wrong targets without an error."""
    if mask.size != size:
        raise error(f"{what} is {mask.width}x{mask.height}, its image {size[0]}x{size[1]}")
    try:
        return np.unique(np.asarray(mask), return_counts=True)
    except OSError as err:  # truncated or corrupt pixel data
        raise error(f"{what} is not an image PIL can read") from err


def check_ids(
    values: np.ndarray,
    what: str,
    num_classes: int,
    owner: str,
    error: type[LabelError] = LabelError,
) -> None:
    """Refuse a class id that ``owner``'s ``num_classes`` classes (and ``IGNORE_INDEX``) lack."""
    bad = [int(v) for v in values if (v < 0 or v >= num_classes) and v != IGNORE_INDEX]
    if bad:
        raise error(
            f"{what} holds class {bad[0]}, but {owner} has {num_classes} classes "
            f"(0..{num_classes - 1}, and {IGNORE_INDEX} = ignore)"
        )


def check_palette(
    palette: list[int] | None,
    values: np.ndarray,
    reference: list[int],
    what: str,
    owner: str,
    error: type[LabelError] = LabelError,
) -> None:
    """Refuse a mask's ``palette`` (None: it has none) that draws one of the indices
    ``values`` otherwise than ``reference``, the palette of ``owner``: two palettes that
    disagree are two labelings, and index 3 would mean "boat" in one, "cat" in the other."""
    for v in values.tolist() if palette is not None else []:
        mine, theirs = tuple(palette[3 * v : 3 * v + 3]), tuple(reference[3 * v : 3 * v + 3])
        if mine != theirs:
            raise error(
                f"{what} does not use the palette of {owner}: index {v} is {mine}, not {theirs}"
            )


def read_list(path: Path, *, blank_lines: bool = True) -> list[str]:
    """The lines of a list file (a split's ids, class names), stripped, as people write
    them: UTF-8 with or without a byte-order mark, trailing blank lines dropped. A blank line
    inside is skipped, or refused with its number when ``blank_lines`` is False (in
    ``classes.txt`` the line number is the class id: a blank one would shift the rest)."""
    if not path.is_file():
        raise FileNotFoundError(f"split list {path} not found")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise LabelError(
            f"{path} is not UTF-8 text (byte {err.object[err.start]:#04x} at offset "
            f"{err.start}): save it as UTF-8"
        ) from None
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if not blank_lines and "" in lines:
        raise LabelError(f"{path} line {lines.index('') + 1} is blank: name every class")
    return [line for line in lines if line]


class SegmentationPairs:
    """Base of the datasets: ``dataset[i]`` is ``transforms(image, mask)`` of pair ``i``.

    A dataset also says what its labels mean (``classes``, ``palette``): training stores
    them in the checkpoint. Without transforms an item is ``(PIL RGB image, PIL mask)``,
    the mask's pixel values (palette indices for a "P" image) being the class ids and 255
    "ignore".
    """

    transforms: Callable[[Any, Any], Any] | None
    classes: tuple[str, ...]  # a name per class id
    num_classes: int
    palette: list[int]  # flat RGB, 768 values: how class c is drawn

    def load_pair(self, index: int) -> tuple[Image.Image, Image.Image]:
        """Image and mask of pair ``index``, checked; a dataset must say how."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image, mask = self.load_pair(index)
        if self.transforms is not None:
            return self.transforms(image, mask)
        return image, mask
