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


def check_mask(
    mask: Image.Image,
    image: Image.Image,
    what: str,
    num_classes: int,
    owner: str,
    error: type[LabelError] = LabelError,
) -> np.ndarray:
    """The class ids ``mask`` (``what``: its kind and path) holds; raises ``error`` unless it
    has ``image``'s size and only ``owner``'s ids ``0 .. num_classes - 1`` and ``IGNORE_INDEX``.

    A mask resized apart from its photo, or holding a class the data does not have, would
    train and evaluate without any error, on wrong targets. Checking the ids decodes it.
    """
    if mask.size != image.size:
        raise error(f"{what} is {mask.width}x{mask.height}, its image {image.width}x{image.height}")
    try:
        values = np.unique(np.asarray(mask))
    except OSError as err:  # truncated or corrupt pixel data
        raise error(f"{what} is not an image PIL can read") from err
    bad = [int(v) for v in values if (v < 0 or v >= num_classes) and v != IGNORE_INDEX]
    if bad:
        raise error(
            f"{what} holds class {bad[0]}, but {owner} has {num_classes} classes "
            f"(0..{num_classes - 1}, and {IGNORE_INDEX} = ignore)"
        )
    return values


def read_list(path: Path) -> list[str]:
    """The non-blank lines of a list file (a split's ids, class names), stripped."""
    if not path.is_file():
        raise FileNotFoundError(f"split list {path} not found")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


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
