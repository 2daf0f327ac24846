"""The M2NIST contract, checked on arrays: what every generated image must satisfy.

The generator's tests check its output against it; ``--verify`` needs it not, since it
compares every stored row it checks with a fresh regeneration, a stronger proof.
"""

from __future__ import annotations

import numpy as np

from m2nist.generator import M2NISTArrays
from m2nist.params import BACKGROUND, Params

ARRAY_NAMES = ("images", "labels", "instances", "boxes")


def invariant_errors(a: M2NISTArrays, params: Params, first_row: int = 0) -> list[str]:
    """Every way ``a`` breaks the M2NIST contract (empty list: all good).

    Checked per image: digit count in range; ink (> threshold) exactly where labels are
    not background; instances exactly where labels are; each instance's pixels carry its
    box's class and have exactly that box as bounding box; box rows past the count are
    -1; boxes lie on the canvas and are ``margin`` apart.
    """
    errors: list[str] = []

    def bad(what: str, mask: np.ndarray) -> None:
        rows = np.flatnonzero(mask)
        if rows.size:
            errors.append(f"{what} (image {first_row + int(rows[0])}, {rows.size} images)")

    n, (height, width), hi, m = len(a), params.size, params.max_digits, params.margin
    for name, dtype, shape in zip(
        ARRAY_NAMES,
        [np.uint8] * 3 + [np.int16],
        [(n, height, width)] * 3 + [(n, hi, 5)],
        strict=True,
    ):
        array = getattr(a, name)
        if array.dtype != dtype or array.shape != shape:
            return [f"{name}: {array.dtype}{array.shape}, expected {np.dtype(dtype)}{shape}"]
    counts = (a.boxes[:, :, 0] >= 0).sum(axis=1)
    used = np.arange(hi) < counts[:, None]
    bad("digit count out of range", (counts < params.digits[0]) | (counts > hi))
    bad("box rows not a prefix", (a.boxes[:, :, 0] >= 0) != used)
    bad("padding rows not -1", ((a.boxes != -1).any(axis=2) & ~used))
    cls, y0, x0, y1, x1 = (a.boxes[:, :, i].astype(np.int64) for i in range(5))
    bad("box class not 0-9", (used & ((cls < 0) | (cls > 9))).any(axis=1))
    off = (y0 < 0) | (x0 < 0) | (y1 > height) | (x1 > width) | (y1 <= y0) | (x1 <= x0)
    bad("box off canvas", (used & off).any(axis=1))
    labelled = a.labels != BACKGROUND
    bad("label value > 10", (a.labels > BACKGROUND).any(axis=(1, 2)))
    bad("ink and labels disagree", ((a.images > params.threshold) != labelled).any(axis=(1, 2)))
    bad("instances and labels disagree", ((a.instances > 0) != labelled).any(axis=(1, 2)))
    bad("instance id above digit count", a.instances.max(axis=(1, 2), initial=0) > counts)
    for k in range(hi):
        mask = a.instances == k + 1
        wrong = mask & (a.labels != cls[:, k, None, None].clip(0, 255))
        bad(f"digit {k + 1}: pixels of another class", wrong.any(axis=(1, 2)))
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
            clear = (y0[:, k] >= y1[:, j] + m) | (y1[:, k] + m <= y0[:, j])
            clear |= (x0[:, k] >= x1[:, j] + m) | (x1[:, k] + m <= x0[:, j])
            bad(
                f"digits {j + 1} and {k + 1}: boxes closer than margin {m}",
                used[:, k] & used[:, j] & ~clear,
            )
    return errors
