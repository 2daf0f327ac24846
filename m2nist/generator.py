"""Composing MNIST digits into M2NIST canvases: the idea of the package, start reading here.

How one image is made
---------------------
1. The digit count is uniform over ``[min, max]``; each digit is a uniformly drawn
   MNIST digit of the right split.
2. Each digit is reduced to its *ink box*: the bounding box of its pixels above the
   mask threshold. Ink boxes of different digits never overlap and keep at least
   ``margin`` pixels between them.
3. Placement is random sequential: digit 1 at a uniform position, then digit 2 at a
   uniform position redrawn until it clears digit 1, and so on (at most
   :data:`PLACEMENT_ROUNDS` draws per digit). An image whose digit still does not fit is
   laid out again by an always-valid *grid fallback*: the canvas is cut into cells of
   the largest ink box plus margin, and the digits take distinct random cells at a random
   offset inside the cell. With the defaults the fallback is essentially never used, but
   it is what makes every accepted request terminate: feasibility is checked once, up
   front, as "the grid holds ``max`` digits" (:func:`check_fits`).
4. Compositing is by maximum. Because ink boxes are disjoint and only the pixels inside
   a digit's ink box are pasted, the maximum is a plain copy: one scatter for all the
   digits of a block (:func:`render`).

So making a block is two steps: a cheap *layout* (:func:`layout_block`: digit ids and
positions, a few small arrays) and the *rendering* (:func:`render`: the pixels).

Reproducibility: images are made in fixed blocks of :data:`~m2nist.params.BLOCK` images
and each block draws from ``SeedSequence([seed, split_id, block_index])``. Any split of
the work (threads, shards, a stream) therefore yields the same bytes.
"""

from __future__ import annotations

import functools
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from fcnbase.device import available_cores
from m2nist.mnist import load_split, resolve_source
from m2nist.params import (
    BACKGROUND,
    BLOCK,
    PAINT_ROWS,
    SPLIT_IDS,
    ParamError,
    Params,
    make_params,
)

PLACEMENT_ROUNDS = 32


@dataclass(frozen=True)
class M2NISTArrays:
    """One generated split (or some rows of it), as numpy arrays.

    ``images`` uint8 (N,H,W); ``labels`` uint8 (N,H,W), class 0-9 or 10 = background;
    ``instances`` uint8 (N,H,W), 0 = none, k = k-th digit; ``boxes`` int16 (N,max,5)
    rows ``[class, y0, x0, y1, x1]`` of each digit's ink box (end exclusive, like
    slicing), padded with -1.
    """

    images: np.ndarray
    labels: np.ndarray
    instances: np.ndarray
    boxes: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.images, self.labels, self.instances, self.boxes

    @staticmethod
    def zeros(n: int, params: Params) -> M2NISTArrays:
        """Room for ``n`` images as :func:`render` takes it: ``images`` and ``instances``
        zero (``np.zeros`` pages come zeroed from the kernel), the others filled there."""
        height, width = params.size
        return M2NISTArrays(
            np.zeros((n, height, width), np.uint8),
            np.empty((n, height, width), np.uint8),
            np.zeros((n, height, width), np.uint8),
            np.empty((n, params.max_digits, 5), np.int16),
        )

    def slice(self, lo: int, hi: int) -> M2NISTArrays:
        """Views of rows ``lo:hi``."""
        return M2NISTArrays(*(a[lo:hi] for a in self.arrays()))


class DigitPool:
    """The MNIST digits of one split with their ink boxes: what composition draws from.

    Digits without a pixel above the threshold are dropped (none of real MNIST's at
    threshold 0), so a pool index is a digit that can be drawn. Building it is a few
    whole-array operations on the 28x28 frames; the pixels themselves are cut out only
    for the digits a block draws (:func:`render`).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, threshold: int) -> None:
        ink = (images > threshold).view(np.uint8)
        # Which rows and columns of each frame hold ink: OR-reduced 4 bytes at a time
        # (numpy's ``any`` over an axis of 28 is several times slower).
        words = ink.view(np.uint32).reshape(len(images), 28, 7)
        rows = np.bitwise_or.reduce(words, axis=2) != 0
        cols = np.bitwise_or.reduce(words, axis=1).view(np.uint8) != 0
        keep = rows.any(axis=1)
        rows, cols = rows[keep], cols[keep]
        self.frames = images if keep.all() else images[keep]
        self.cls = labels[keep].astype(np.uint8)
        self.y0, self.x0 = rows.argmax(1), cols.argmax(1)
        self.height = 28 - rows[:, ::-1].argmax(1) - self.y0
        self.width = 28 - cols[:, ::-1].argmax(1) - self.x0
        self.max_box = (int(self.height.max()), int(self.width.max()))

    def __len__(self) -> int:
        return len(self.cls)


@functools.lru_cache(maxsize=8)
def _pool(resolved: object, train: bool, threshold: int) -> DigitPool:
    split = load_split(train, resolved)
    return DigitPool(split.images, split.labels, threshold)


def digit_pool(split: str, params: Params, source: str | os.PathLike | None) -> DigitPool:
    """The pool of ``split`` for ``params.threshold``, built once per process."""
    if split not in SPLIT_IDS:
        raise ParamError(f"split {split!r}: must be 'train' or 'test'")
    return _pool(resolve_source(source), split == "train", params.threshold)


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


@dataclass(frozen=True)
class Layout:
    """Where the digits of one block go: counts (n,), pool ids, box tops and lefts (n,max)."""

    counts: np.ndarray
    digit: np.ndarray
    y: np.ndarray
    x: np.ndarray
    fallback: np.ndarray  # bool (n,), laid out by the grid fallback


def block_rng(seed: int, split: str, block: int) -> np.random.Generator:
    """The generator of one block: independent of how blocks are shared out."""
    return np.random.default_rng(np.random.SeedSequence([seed, SPLIT_IDS[split], block]))


def layout_block(pool: DigitPool, params: Params, rng: np.random.Generator) -> Layout:
    """Draw counts, digits and non-overlapping positions for a whole block of images."""
    n, hi, m = BLOCK, params.max_digits, params.margin
    height, width = params.size
    counts = rng.integers(params.digits[0], hi + 1, n)
    digit = rng.integers(0, len(pool), (n, hi))
    bh, bw = pool.height[digit], pool.width[digit]
    y = np.zeros((n, hi), np.int64)
    x = np.zeros((n, hi), np.int64)
    fallback = np.zeros(n, bool)
    for j in range(hi):
        pending = np.flatnonzero((counts > j) & ~fallback)
        for _ in range(PLACEMENT_ROUNDS):
            if not pending.size:
                break
            hj, wj = bh[pending, j], bw[pending, j]
            yy = rng.integers(0, height - hj + 1)
            xx = rng.integers(0, width - wj + 1)
            ok = np.ones(len(pending), bool)
            if j:
                py, px = y[pending, :j], x[pending, :j]
                ph, pw = bh[pending, :j], bw[pending, :j]
                clear = (
                    (yy[:, None] >= py + ph + m)
                    | (yy[:, None] + hj[:, None] + m <= py)
                    | (xx[:, None] >= px + pw + m)
                    | (xx[:, None] + wj[:, None] + m <= px)
                )
                ok = clear.all(axis=1)
            y[pending[ok], j], x[pending[ok], j] = yy[ok], xx[ok]
            pending = pending[~ok]
        fallback[pending] = True
    rows = np.flatnonzero(fallback)
    if rows.size:  # the grid fallback: distinct random cells, a random offset in each
        (ch, cw), cols = pool.max_box, (width + m) // (pool.max_box[1] + m)
        cells = grid_capacity(params.size, m, pool.max_box)
        order = np.argsort(rng.random((len(rows), cells)), axis=1)[:, :hi]
        h, w = bh[rows], bw[rows]
        y[rows] = (order // cols) * (ch + m) + rng.integers(0, ch - h + 1)
        x[rows] = (order % cols) * (cw + m) + rng.integers(0, cw - w + 1)
    return Layout(counts, digit, y, x, fallback)


def render(pool: DigitPool, params: Params, layout: Layout, lo: int, out: M2NISTArrays) -> None:
    """Paint images ``lo:lo+len(out)`` of a block's layout into ``out`` (from
    :meth:`M2NISTArrays.zeros`).

    Every nonzero pixel inside the ink box of every drawn digit goes to its place on its
    canvas in one scatter: the boxes are disjoint, so writing order does not matter and
    the result equals max-compositing. Labels and instances get the pixels that are ink.
    """
    n, (height, width), t = len(out), params.size, params.threshold
    img, slot = np.nonzero(np.arange(params.max_digits) < layout.counts[lo : lo + n, None])
    d, y, x = (a[lo + img, slot] for a in (layout.digit, layout.y, layout.x))
    y0, x0, h, w, cls = (a[d] for a in (pool.y0, pool.x0, pool.height, pool.width, pool.cls))
    out.boxes.fill(-1)
    out.boxes[img, slot] = np.stack([cls, y, x, y + h, x + w], axis=1)
    frames = pool.frames[d].reshape(-1)
    at = np.flatnonzero(frames != 0)  # every nonzero pixel of every drawn digit's frame
    value = frames[at]
    k, pixel = np.divmod(at, 28 * 28)  # (drawn digit, pixel of its frame)
    if t:  # faint pixels outside the ink box are not pasted
        r, c = np.divmod(pixel, 28)
        inside = (r >= y0[k]) & (c >= x0[k]) & (r < y0[k] + h[k]) & (c < x0[k] + w[k])
        k, pixel, value = k[inside], pixel[inside], value[inside]
    corner = (img * height + y - y0) * width + x - x0  # where each frame's (0, 0) lands
    frame_to_canvas = np.arange(28)[:, None] * width + np.arange(28)  # (28, 28) offsets
    at = corner[k] + frame_to_canvas.reshape(-1)[pixel]
    out.images.reshape(-1)[at] = value
    if t:
        at, k = at[value > t], k[value > t]
    out.labels.fill(BACKGROUND)
    out.labels.reshape(-1)[at] = cls[k]
    out.instances.reshape(-1)[at] = (slot + 1).astype(np.uint8)[k]


def block_spans(start: int, stop: int, size: int = BLOCK) -> list[tuple[int, int]]:
    """Cut rows ``start:stop`` at multiples of ``size`` (blocks: the unit of randomness)."""
    cuts = [start, *range((start // size + 1) * size, stop, size), stop]
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def compose(
    pool: DigitPool,
    params: Params,
    seed: int,
    split: str,
    start: int,
    stop: int,
    out: M2NISTArrays | None = None,
) -> M2NISTArrays:
    """Rows ``start:stop`` of the endless sequence defined by (seed, split, params)."""
    out = M2NISTArrays.zeros(stop - start, params) if out is None else out
    for a, b in block_spans(start, stop):
        # The whole block is laid out (cheap), so its randomness does not depend on which
        # of its rows are asked for.
        layout = layout_block(pool, params, block_rng(seed, split, a // BLOCK))
        for lo, hi in block_spans(a, b, PAINT_ROWS):  # a few rows at a time: see PAINT_ROWS
            render(pool, params, layout, lo % BLOCK, out.slice(lo - start, hi - start))
    return out


def generate(
    n: int,
    *,
    split: str = "train",
    seed: int = 0,
    digits: tuple[int, int] | int | str = (1, 3),
    size: tuple[int, int] | str = (64, 84),
    margin: int = 2,
    threshold: int = 0,
    source: str | os.PathLike | None = None,
) -> M2NISTArrays:
    """Generate ``n`` M2NIST images in memory.

    Train images use MNIST train digits, test images MNIST test digits. ``source``:
    None resolves automatically (``$M2NIST_MNIST_DIR``, else the torchvision cache),
    ``"sample"`` is the bundled sample, a path a folder of IDX files. The same
    arguments always give the same arrays; the first ``k`` images of ``generate(n)``
    are ``generate(k)``. ``digits`` and ``size`` also take the command line's spellings
    (``digits=2``, ``"1-3"``, ``size="64x84"``); anything invalid is a :class:`ParamError`.
    Blocks are made on one thread per core (numpy releases the GIL while it scatters).
    """
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 0:
        raise ParamError(f"n={n!r}: must be an integer >= 0")
    params = make_params(digits, size, margin, threshold)
    pool = digit_pool(split, params, source)
    check_fits(params, pool)
    out = M2NISTArrays.zeros(n, params)

    def run(span: tuple[int, int]) -> None:
        compose(pool, params, seed, split, *span, out.slice(*span))

    with ThreadPoolExecutor(available_cores()) as ex:
        list(ex.map(run, block_spans(0, n)))
    return out
