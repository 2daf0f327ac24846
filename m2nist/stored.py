"""What a run stored, read back per format: the arrays ``--verify`` checks and compares.

Every format holds some of the arrays of :class:`m2nist.compose.M2NISTArrays`: the
``.npz`` all four, the Kaggle files the images and the one-hot of the labels (in
``SPLIT/`` or, for ``kaggle-flat``, in one file whose test rows follow its train
rows), the PNG folder the images and the label maps. :func:`open_split` gives each as
an array-like of the split's rows, checked for dtype and shape but not read:
memory-mapped files, or PNGs decoded only for the rows asked for. So the verifier
reads a split block by block whatever its format, with flat memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from m2nist.metadata import Metadata
from m2nist.npz import ARRAY_NAMES, member_memmap
from m2nist.params import NUM_CLASSES
from m2nist.png import PNG_FOLDERS, decode, stem

#: Stored arrays: format -> what each array holds ("images", "labels", "instances",
#: "boxes" or "one_hot") -> its rows (``rows[a:b]``, relative to the split's first row).
Stored = dict[str, dict[str, object]]


class PngRows:
    """Rows of a split's PNG folder as an array-like: ``rows[a:b]`` decodes those files."""

    def __init__(self, folder: Path, split: str, start: int, shape: tuple[int, ...]) -> None:
        self.folder, self.split, self.start, self.shape = folder, split, start, shape

    def __getitem__(self, rows: slice) -> np.ndarray:
        a, b, _ = rows.indices(self.shape[0])
        out = np.empty((b - a, *self.shape[1:]), np.uint8)
        for i in range(a, b):
            path = self.folder / f"{stem(self.split, self.start + i)}.png"
            pixels = decode(path)
            if pixels.shape != self.shape[1:]:
                raise ValueError(
                    f"{path}: {pixels.shape[::-1]} pixels, expected {self.shape[2:0:-1]}"
                )
            out[i - a] = pixels
        return out


def flat_offset(meta: Metadata, split: str) -> int:
    """First row of ``split`` in the ``kaggle-flat`` files: the train rows come first."""
    return meta.splits["train"]["images"] if split == "test" and "train" in meta.splits else 0


def _checked(name: Path | str, array: np.ndarray, dtype: type, shape: tuple[int, ...]) -> None:
    if (array.dtype, array.shape) != (np.dtype(dtype), shape):
        raise ValueError(
            f"{name}: {array.dtype}{array.shape}, metadata says {np.dtype(dtype)}{shape}"
        )


def open_split(out: Path, split: str, meta: Metadata) -> Stored:
    """The stored arrays of ``split`` in every recorded format (see :data:`Stored`).

    ``ValueError`` names a file whose dtype or shape is not what the metadata implies.
    """
    n, (height, width) = meta.splits[split]["images"], meta.params.size
    grid, one_hot = (n, height, width), (n, height, width, NUM_CLASSES)
    stored: Stored = {}
    if "npz" in meta.formats:
        path = out / f"{split}.npz"
        stored["npz"] = {}
        for name in ARRAY_NAMES:
            array = member_memmap(path, name)
            want = (
                (np.int16, (n, meta.params.max_digits, 5)) if name == "boxes" else (np.uint8, grid)
            )
            _checked(f"{path}: {name}", array, *want)
            stored["npz"][name] = array
    if "kaggle" in meta.formats:
        combined = np.load(out / split / "combined.npy", mmap_mode="r")
        segmented = np.load(out / split / "segmented.npy", mmap_mode="r")
        _checked(out / split / "combined.npy", combined, np.uint8, grid)
        _checked(out / split / "segmented.npy", segmented, np.uint8, one_hot)
        stored["kaggle"] = {"images": combined, "one_hot": segmented}
    if "kaggle-flat" in meta.formats:
        total = sum(info["images"] for info in meta.splits.values())
        combined = np.load(out / "combined.npy", mmap_mode="r")
        segmented = np.load(out / "segmented.npy", mmap_mode="r")
        _checked(out / "combined.npy", combined, np.uint8, (total, height, width))
        _checked(out / "segmented.npy", segmented, np.uint8, (total, *one_hot[1:]))
        at = flat_offset(meta, split)
        stored["kaggle-flat"] = {"images": combined[at : at + n], "one_hot": segmented[at : at + n]}
    if "png" in meta.formats:
        start = meta.splits[split]["start"]
        stored["png"] = {
            kind: PngRows(out / folder, split, start, grid) for folder, kind in PNG_FOLDERS.items()
        }
    return stored
