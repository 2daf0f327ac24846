"""M2NIST as a folder of PNG files (``m2nist-gen OUT --format png``), the layout that
folder-of-images tools read (``fullfcn.SegmentationFolder``, CamVid-style loaders)::

    OUT/
      classes.txt        # "0".."9" then "background", one per line (class id = line number)
      train.txt          # stems of the train split, one per line
      val.txt            # stems of the test split (named val.txt: what the folder format reads)
      images/<stem>.png  # 8-bit greyscale PNG (mode "L")
      masks/<stem>.png   # single-channel index PNG (mode "L"), pixel = class id, 10 background

A stem names its split and row (``train-000042``), so shards of one run never collide and
the row of a file is in its name. PIL's PNG encoder writes no timestamp and is
deterministic for equal pixels, so the same seed gives the same bytes here too. PIL is
imported on first use: a run that writes no PNG does not pay for it.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from m2nist.params import CLASS_NAMES

CLASSES_TXT = "classes.txt"
#: The list file of each split: the folder format calls the held-out split ``val``.
SPLIT_LISTS = {"train": "train.txt", "test": "val.txt"}
#: The two folders, and the array of :class:`m2nist.compose.M2NISTArrays` each holds.
PNG_FOLDERS = {"images": "images", "masks": "labels"}
#: The names a run writes inside a folder: the only ones ``--force`` may delete there.
PNG_NAME = re.compile(r"(train|test)-\d{6,}\.png")


def stem(split: str, row: int) -> str:
    """The stem of row ``row`` of ``split``: ``train-000042``."""
    return f"{split}-{row:06d}"


def split_list(split: str, start: int, stop: int) -> bytes:
    """The text of ``train.txt``/``val.txt`` for rows ``[start, stop)``."""
    return "".join(f"{stem(split, row)}\n" for row in range(start, stop)).encode()


def classes_text() -> bytes:
    """The text of ``classes.txt``: class ``k`` on line ``k``."""
    return "".join(f"{name}\n" for name in CLASS_NAMES).encode()


def encode(array: np.ndarray) -> bytes:
    """One uint8 (H, W) array as an 8-bit greyscale PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def decode(path: Path) -> np.ndarray:
    """The pixels of a PNG written by :func:`encode`; ``ValueError`` for any other kind."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.format != "PNG" or im.mode != "L":
                raise ValueError(f"{path}: {im.format} {im.mode} image, expected an 8-bit PNG")
            return np.asarray(im)
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not a PNG file") from None


def run_files(folder: Path) -> list[Path]:
    """The files in ``folder`` that a run writes (:data:`PNG_NAME`), symlinks not followed."""
    if not folder.is_dir() or folder.is_symlink():
        return []
    return sorted(p for p in folder.iterdir() if PNG_NAME.fullmatch(p.name) and p.is_file())
