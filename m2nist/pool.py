"""The digit pool: MNIST digits cut to their ink boxes once, and what fits on a canvas.

Composition pastes each digit's ink, not its 28x28 frame; cutting every digit of a
split to its ink box once, into one flat table, is what makes painting a block of
4,096 images a single scatter. The pool's largest ink box is also what decides,
before any work, whether a request can always be laid out (:func:`check_fits`).
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fcnbase.device import available_cores
from m2nist import pool_cache
from m2nist.mnist import SAMPLE, load_split, resolve_source
from m2nist.params import MNIST_SIDE, SPLIT_IDS, ParamError, Params

#: Digits cut per task: 8,192 digits are 6 MB of pixels, so the temporaries stay small
#: and the chunks share out over the cores.
POOL_CHUNK = 8192


def _cut(digits: np.ndarray, threshold: int, width: int) -> tuple[np.ndarray, ...]:
    """Cut a chunk of digits: their ink boxes and, in CSR form, the pixels inside them.

    Returns ``boxes`` (k, 4) ``[y0, x0, y1, x1]`` int64 (end exclusive, all 0 for a digit
    without ink), ``has`` (k,) whether a digit has ink, ``counts`` (pixels per digit with
    ink), ``rel`` and ``val`` (see :class:`DigitPool`). One ``flatnonzero`` lists every
    nonzero pixel in (digit, row, column) order, so each digit's pixels are a contiguous
    run: its box is read off the run (first and last row, min and max column) instead of
    scanning 28x28 images again. Pixels outside the ink box can be nonzero only when
    ``threshold`` > 0 (they are at most the threshold), and only then is the box test
    needed.
    """
    side = MNIST_SIDE
    flat = digits.reshape(-1)
    at = np.flatnonzero(flat != 0)
    d = at // (side * side)
    yy, xx = np.divmod(at - d * (side * side), side)
    val = flat[at]
    ink = None if threshold == 0 else val > threshold
    di, yi, xi = (d, yy, xx) if ink is None else (d[ink], yy[ink], xx[ink])
    bounds = np.searchsorted(di, np.arange(len(digits) + 1))
    first, last = bounds[:-1], bounds[1:]
    has = last > first
    boxes = np.zeros((len(digits), 4), np.int64)
    starts = first[has]
    boxes[has, 0], boxes[has, 2] = yi[starts], yi[last[has] - 1] + 1
    if starts.size:
        boxes[has, 1] = np.minimum.reduceat(xi, starts)
        boxes[has, 3] = np.maximum.reduceat(xi, starts) + 1
    if ink is None:  # every nonzero pixel is ink, hence inside its box
        counts = (last - first)[has]
        y0, x0 = (np.repeat(boxes[:, i], last - first) for i in (0, 1))
    else:
        y0, x0, y1, x1 = (boxes[d, i] for i in range(4))
        inside = (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)
        d, yy, xx, y0, x0, val = (a[inside] for a in (d, yy, xx, y0, x0, val))
        counts = np.bincount(d, minlength=len(digits))[has]
    rel = ((yy - y0) * width + (xx - x0)).astype(np.int32)
    return boxes, has, counts, rel, val


class DigitPool:
    """MNIST digits pre-cut to their ink boxes, in a flat (CSR) layout for scattering.

    For digit ``d``, entries ``ptr[d]:ptr[d+1]`` list its nonzero pixels inside the
    ink box: ``rel`` is the flat offset from the box's top-left corner on a canvas of
    width ``width`` and ``val`` the grey value. Digits without any pixel above the
    threshold are dropped (none of real MNIST's at threshold 0). Every run pays for
    building it before its first image, so it is a few whole-array operations per chunk
    of :data:`POOL_CHUNK` digits (:func:`_cut`), the chunks shared among the cores
    (numpy releases the GIL).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, threshold: int, width: int):
        chunks = [images[i : i + POOL_CHUNK] for i in range(0, len(images), POOL_CHUNK)]
        with ThreadPoolExecutor(min(available_cores(), max(len(chunks), 1))) as ex:
            parts = list(ex.map(lambda chunk: _cut(chunk, threshold, width), chunks))
        boxes, has, counts, rel, val = (
            np.concatenate([empty, *(part[i] for part in parts)])
            for i, empty in enumerate(
                (
                    np.zeros((0, 4), np.int64),
                    np.zeros(0, bool),
                    np.zeros(0, np.int64),
                    np.zeros(0, np.int32),
                    np.zeros(0, np.uint8),
                )
            )
        )
        y0, x0, y1, x1 = boxes[has].T
        self.cls = labels[has].astype(np.uint8)
        self.height, self.width = y1 - y0, x1 - x0
        self.ptr = np.concatenate([[0], np.cumsum(counts)])
        self.rel, self.val = rel, val
        is_ink = self.val > threshold
        self.ink = None if is_ink.all() else is_ink
        self.max_box = (int(self.height.max()), int(self.width.max()))

    #: The arrays that make a pool (``ink`` only when some cut pixels are not ink).
    ARRAYS = ("cls", "height", "width", "ptr", "rel", "val", "ink")

    def arrays(self) -> dict[str, np.ndarray]:
        """The pool as arrays, to keep (:mod:`m2nist.pool_cache`)."""
        return {k: getattr(self, k) for k in self.ARRAYS if getattr(self, k) is not None}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> DigitPool:
        """The pool that :meth:`arrays` returned (the cut is not redone)."""
        pool = cls.__new__(cls)
        for name in cls.ARRAYS:
            setattr(pool, name, arrays.get(name))
        pool.max_box = (int(pool.height.max()), int(pool.width.max()))
        return pool

    def __len__(self) -> int:
        return len(self.cls)


@functools.lru_cache(maxsize=8)
def _input_key(folder: Path, train: bool) -> str:
    return pool_cache.input_key(folder, train)


def _cache_key(resolved: str | Path, train: bool, cached: bool) -> str | None:
    """The cache key of a split's entries, or None when this source is not cached."""
    if not cached or resolved == SAMPLE or not pool_cache.enabled():
        return None
    return _input_key(Path(resolved), train)


@functools.lru_cache(maxsize=8)
def _pool(resolved: str | Path, train: bool, threshold: int, width: int, cached: bool) -> DigitPool:
    key = _cache_key(resolved, train, cached)
    arrays = None if key is None else pool_cache.load_pool(key, threshold, width)
    if arrays is not None:
        return DigitPool.from_arrays(arrays)
    split = load_split(train, resolved)
    pool = DigitPool(split.images, split.labels, threshold, width)
    if key is not None:
        pool_cache.save_source(key, split.source)
        pool_cache.save_pool(key, threshold, width, pool.arrays())
    return pool


def digit_pool(
    split: str, params: Params, source: str | os.PathLike | None, *, cached: bool = True
) -> DigitPool:
    """The digit pool for a split, threshold and canvas width: kept in memory for the
    process and, for an IDX folder, on disk (:mod:`m2nist.pool_cache`; ``cached=False``
    decodes the MNIST files whatever the cache holds, as ``--verify`` does)."""
    if split not in SPLIT_IDS:
        raise ParamError(f"split {split!r}: must be 'train' or 'test'")
    resolved = resolve_source(source)
    return _pool(resolved, split == "train", params.threshold, params.size[1], cached)


def split_source(split: str, source: str | os.PathLike | None) -> dict:
    """The provenance record of a split (what ``metadata.json`` records as its source),
    from the pool cache when it holds one for these very files, else by decoding them."""
    resolved, train = resolve_source(source), split == "train"
    key = _cache_key(resolved, train, True)
    record = None if key is None else pool_cache.load_source(key)
    if record is not None:  # the key is the files' content: the folder may be another
        return {**record, "path": str(Path(resolved).resolve())}
    record = load_split(train, resolved).source
    if key is not None:
        pool_cache.save_source(key, record)
    return record


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
