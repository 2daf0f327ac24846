"""The M2NIST contract: what every generated image, and its Kaggle encoding, must satisfy.

The generator is tested against these checks (``tests/m2nist/test_compose.py``) and
``m2nist-gen --verify`` re-runs them on every row it reads back, so a file that was
rewritten consistently (fresh sha256) but wrong is still caught. :func:`one_hot` and
:func:`digit_counts` live here because both the writer and the verifier need exactly
the same encoding and tally.
"""

from __future__ import annotations

import numpy as np

from m2nist.compose import M2NISTArrays
from m2nist.params import BACKGROUND, NUM_CLASSES, Params


def one_hot(labels: np.ndarray) -> np.ndarray:
    """(N,H,W) labels -> (N,H,W,11) uint8 one-hot, channel 10 = background."""
    return (labels[..., None] == np.arange(NUM_CLASSES, dtype=np.uint8)).view(np.uint8)


def digit_counts(boxes: np.ndarray) -> np.ndarray:
    """Digits per image, read off the padded box table."""
    return (boxes[:, :, 0] >= 0).sum(axis=1)


def invariant_errors(a: M2NISTArrays, params: Params, first_row: int = 0) -> list[str]:
    """Every way ``a`` breaks the M2NIST contract (empty list: all good).

    Checked per image: digit count in range; ink (> threshold) exactly where labels
    are not background; instances present exactly where labels are; each instance's
    pixels carry its box's class and have exactly that box as bounding box; box rows
    past the count are -1; boxes lie on the canvas and are ``margin`` apart.
    """
    errors: list[str] = []

    def bad(what: str, mask: np.ndarray) -> None:
        rows = np.flatnonzero(mask)
        if rows.size:
            errors.append(f"{what} (image {first_row + int(rows[0])}, {rows.size} images)")

    n, (height, width), hi = len(a), params.size, params.max_digits
    for name, dtype, shape in (
        ("images", np.uint8, (n, height, width)),
        ("labels", np.uint8, (n, height, width)),
        ("instances", np.uint8, (n, height, width)),
        ("boxes", np.int16, (n, hi, 5)),
    ):
        array = getattr(a, name)
        if array.dtype != dtype or array.shape != shape:
            return [f"{name}: {array.dtype}{array.shape}, expected {np.dtype(dtype)}{shape}"]
    counts = digit_counts(a.boxes)
    bad("digit count out of range", (counts < params.digits[0]) | (counts > hi))
    slots = np.arange(hi)
    used = slots < counts[:, None]
    bad("box rows not a prefix", (a.boxes[:, :, 0] >= 0) != used)
    bad("padding rows not -1", ((a.boxes != -1).any(axis=2) & ~used))
    cls, y0, x0, y1, x1 = (a.boxes[:, :, i].astype(np.int64) for i in range(5))
    bad("box class not 0-9", (used & ((cls < 0) | (cls > 9))).any(axis=1))
    bad(
        "box off canvas",
        (used & ((y0 < 0) | (x0 < 0) | (y1 > height) | (x1 > width) | (y1 <= y0) | (x1 <= x0))).any(
            axis=1
        ),
    )
    labelled = a.labels != BACKGROUND
    bad("label value > 10", (a.labels > BACKGROUND).any(axis=(1, 2)))
    bad("ink and labels disagree", ((a.images > params.threshold) != labelled).any(axis=(1, 2)))
    bad("instances and labels disagree", ((a.instances > 0) != labelled).any(axis=(1, 2)))
    bad("instance id above digit count", a.instances.max(axis=(1, 2)) > counts)
    m = params.margin
    for k in range(hi):
        mask = a.instances == k + 1
        bad(
            f"digit {k + 1}: pixels of another class",
            (mask & (a.labels != cls[:, k, None, None].clip(0, 255))).any(axis=(1, 2)),
        )
        rows, cols = mask.any(axis=2), mask.any(axis=1)
        present = rows.any(axis=1)
        bad(f"digit {k + 1}: listed in boxes but has no pixels", used[:, k] & ~present)
        box = np.stack(
            [
                rows.argmax(1),
                cols.argmax(1),
                height - rows[:, ::-1].argmax(1),
                width - cols[:, ::-1].argmax(1),
            ],
            axis=1,
        )
        bad(
            f"digit {k + 1}: box is not its ink bounding box",
            present & (box != a.boxes[:, k, 1:]).any(axis=1),
        )
        for j in range(k):
            clear = (
                (y0[:, k] >= y1[:, j] + m)
                | (y1[:, k] + m <= y0[:, j])
                | (x0[:, k] >= x1[:, j] + m)
                | (x1[:, k] + m <= x0[:, j])
            )
            bad(
                f"digits {j + 1} and {k + 1}: boxes closer than margin {m}",
                used[:, k] & used[:, j] & ~clear,
            )
    return errors


def kaggle_errors(chunk: dict[str, np.ndarray], params: Params, where: str) -> list[str]:
    """One-hot validity of ``segmented`` and its agreement with ``combined`` (and npz)."""
    errors = []
    seg, combined = chunk["segmented"], chunk["combined"]
    if seg.shape[-1] != NUM_CLASSES or seg.max(initial=0) > 1 or (seg.sum(-1) != 1).any():
        return [f"{where}: segmented.npy is not one-hot over {NUM_CLASSES} channels"]
    labels = seg.argmax(-1)
    if ((combined > params.threshold) != (labels != BACKGROUND)).any():
        errors.append(f"{where}: segmented.npy disagrees with the ink in combined.npy")
    if "images" in chunk and not (
        np.array_equal(combined, chunk["images"]) and np.array_equal(labels, chunk["labels"])
    ):
        errors.append(f"{where}: Kaggle files disagree with the .npz")
    return errors


def label_map_errors(
    stored: dict[str, np.ndarray], params: Params, npz: dict[str, np.ndarray] | None
) -> list[str]:
    """Label maps stored beside their images (the PNG folder): classes 0-10, ink exactly
    where a digit is labelled, and agreement with the ``.npz`` when there is one."""
    images, labels = stored["images"], stored["labels"]
    if labels.max(initial=0) > BACKGROUND:
        return [f"mask value {int(labels.max())} is not a class 0-{BACKGROUND}"]
    errors = []
    if ((images > params.threshold) != (labels != BACKGROUND)).any():
        errors.append("masks disagree with the ink in the images")
    if npz is not None and not (
        np.array_equal(images, npz["images"]) and np.array_equal(labels, npz["labels"])
    ):
        errors.append("PNG files disagree with the .npz")
    return errors
