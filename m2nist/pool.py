"""The digit pool: MNIST digits cut to their ink boxes once, and what fits on a canvas.

Composition pastes each digit's ink, not its 28x28 frame; cutting every digit of a
split to its ink box once, into one flat table, is what makes painting a block of
4,096 images a single scatter. The pool's largest ink box is also what decides,
before any work, whether a request can always be laid out (:func:`check_fits`).
"""

from __future__ import annotations

import functools
import os

import numpy as np

from m2nist.mnist import load_split, resolve_source
from m2nist.params import MNIST_SIDE, SPLIT_IDS, ParamError, Params

POOL_CHUNK = 8192


def _ink_boxes(images: np.ndarray, threshold: int) -> np.ndarray:
    """(N, 4) int64 ink boxes ``[y0, x0, y1, x1]`` (end exclusive; y1 == y0 when no ink)."""
    ink = images > threshold
    rows, cols = ink.any(axis=2), ink.any(axis=1)
    has = rows.any(axis=1)
    y0, x0 = rows.argmax(1), cols.argmax(1)
    y1 = np.where(has, MNIST_SIDE - rows[:, ::-1].argmax(1), y0)
    x1 = np.where(has, MNIST_SIDE - cols[:, ::-1].argmax(1), x0)
    return np.stack([y0, x0, y1, x1], axis=1).astype(np.int64)


class DigitPool:
    """MNIST digits pre-cut to their ink boxes, in a flat (CSR) layout for scattering.

    For digit ``d``, entries ``ptr[d]:ptr[d+1]`` list its nonzero pixels inside the
    ink box: ``rel`` is the flat offset from the box's top-left corner on a canvas of
    width ``width`` and ``val`` the grey value. Digits without any pixel above the
    threshold are dropped (none of real MNIST's at threshold 0).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, threshold: int, width: int):
        boxes = np.concatenate(
            [
                _ink_boxes(images[i : i + POOL_CHUNK], threshold)
                for i in range(0, len(images), POOL_CHUNK)
            ]
        )
        keep = np.flatnonzero(boxes[:, 2] > boxes[:, 0])
        y0, x0, y1, x1 = boxes[keep].T
        self.cls = labels[keep].astype(np.uint8)
        self.height, self.width = y1 - y0, x1 - x0
        counts, rel, val = [], [], []
        ramp = np.arange(MNIST_SIDE)
        for i in range(0, len(keep), POOL_CHUNK):
            part = slice(i, i + POOL_CHUNK)
            in_box = ((ramp >= y0[part, None]) & (ramp < y1[part, None]))[:, :, None] & (
                (ramp >= x0[part, None]) & (ramp < x1[part, None])
            )[:, None, :]
            digits = images[keep[part]]
            d, yy, xx = np.nonzero(in_box & (digits > 0))
            counts.append(np.bincount(d, minlength=len(digits)))
            rel.append(((yy - y0[part][d]) * width + (xx - x0[part][d])).astype(np.int32))
            val.append(digits[d, yy, xx])
        self.ptr = np.concatenate([[0], np.cumsum(np.concatenate(counts))])
        self.rel, self.val = np.concatenate(rel), np.concatenate(val)
        is_ink = self.val > threshold
        self.ink = None if is_ink.all() else is_ink
        self.max_box = (int(self.height.max()), int(self.width.max()))

    def __len__(self) -> int:
        return len(self.cls)


@functools.lru_cache(maxsize=8)
def _pool(resolved_source: object, train: bool, threshold: int, width: int) -> DigitPool:
    split = load_split(train, resolved_source)
    return DigitPool(split.images, split.labels, threshold, width)


def digit_pool(split: str, params: Params, source: str | os.PathLike | None) -> DigitPool:
    """The (cached) digit pool for a split, threshold and canvas width."""
    if split not in SPLIT_IDS:
        raise ParamError(f"split {split!r}: must be 'train' or 'test'")
    resolved = resolve_source(source)
    return _pool(resolved, split == "train", params.threshold, params.size[1])


def grid_capacity(size: tuple[int, int], margin: int, box: tuple[int, int]) -> int:
    """How many ``box``-sized cells, ``margin`` apart, tile a canvas of ``size``."""
    (height, width), (bh, bw) = size, box
    return ((height + margin) // (bh + margin)) * ((width + margin) // (bw + margin))


def check_fits(params: Params, pool: DigitPool) -> None:
    """Reject requests whose ``max`` digits might not fit, before any work is done.

    The bound uses the pool's largest ink box (20x20 for real MNIST at threshold 0,
    not the 28x28 frame): a grid of such cells, ``margin`` apart, that holds ``max``
    digits makes the fallback layout always valid, so generation always terminates.
    It is sufficient, not necessary: a few denser requests that random packing
    could often satisfy are refused rather than risk an unbounded search.
    """
    capacity = grid_capacity(params.size, params.margin, pool.max_box)
    if capacity < params.max_digits:
        (h, w), (bh, bw) = params.size, pool.max_box
        raise ParamError(
            f"cannot guarantee {params.max_digits} digits on a {h}x{w} canvas with margin "
            f"{params.margin}: ink boxes up to {bh}x{bw} fit at most {capacity}; use a "
            "larger --size, a smaller --margin or fewer --digits"
        )
