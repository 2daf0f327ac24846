"""Composing MNIST digits into M2NIST canvases, vectorised over blocks of images.

How one image is made
---------------------
1. The digit count is uniform over ``[min, max]``; each digit is a uniformly drawn
   MNIST digit of the right split.
2. Each digit is reduced to its *ink box*: the bounding box of its pixels above the
   mask threshold. Ink boxes of different digits never overlap and keep at least
   ``margin`` pixels between them.
3. Placement is random sequential: digit 1 at a uniform position, then digit 2 at a
   uniform position redrawn until it clears digit 1, and so on (at most
   ``PLACEMENT_ROUNDS`` draws per digit). An image whose digit still does not fit is
   laid out again by an always-valid *grid fallback*: the canvas is cut into cells of
   the pool's largest ink box plus margin, the digits take distinct random cells at a
   random offset inside the cell. With the defaults the fallback is essentially never
   used (:attr:`Layout.fallback` marks the images that needed it), but it is what makes
   every accepted request terminate: feasibility is checked once, up front, as "the
   grid holds ``max`` digits" (:func:`m2nist.pool.check_fits`).
4. Compositing is by maximum. Because ink boxes are disjoint and only the pixels
   inside a digit's ink box are pasted, the maximum is a plain copy, which is what
   the code does (a scatter). Pixels outside the ink box are at most the threshold,
   so they are not ink; with the default threshold 0 they are exactly 0.

Reproducibility: images are produced in fixed blocks of :data:`BLOCK` images and
each block draws from ``SeedSequence([seed, split_id, block_index])``. Any split
of the work (workers, chunks, shards) therefore yields the same bytes.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from fcnbase.device import available_cores
from m2nist.params import BACKGROUND, BLOCK, SPLIT_IDS, ParamError, Params, make_params
from m2nist.pool import DigitPool, check_fits, digit_pool, grid_capacity

PLACEMENT_ROUNDS = 32
#: Rows painted per :func:`render` call. Its scatter makes a few temporaries per pixel
#: pasted; for 512 images they are about 1.5 MB, which the allocator reuses from call
#: to call and the caches hold, where a whole block's (12 MB each) came as fresh huge
#: pages, zeroed by the kernel every time (19 % of a big run's CPU, measured with perf).
RENDER_ROWS = 512


@dataclass(frozen=True)
class M2NISTArrays:
    """One generated split, in memory.

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

    @staticmethod
    def allocate(n: int, params: Params) -> M2NISTArrays:
        """Arrays for ``n`` images: ``images`` and ``instances`` zero, the rest uninitialised.

        Fresh zero pages come free from the kernel (``np.zeros`` is ``calloc``), so only
        ``labels`` and ``boxes`` need an explicit fill, which :func:`render` does per block.
        """
        height, width = params.size
        return M2NISTArrays(
            images=np.zeros((n, height, width), np.uint8),
            labels=np.empty((n, height, width), np.uint8),
            instances=np.zeros((n, height, width), np.uint8),
            boxes=np.empty((n, params.max_digits, 5), np.int16),
        )

    def slice(self, lo: int, hi: int) -> M2NISTArrays:
        """Views of rows ``lo:hi``."""
        return M2NISTArrays(*(a[lo:hi] for a in self.arrays()))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.images, self.labels, self.instances, self.boxes


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
    fb = np.flatnonzero(fallback)
    if fb.size:
        _grid_layout(pool, params, rng, fb, bh, bw, y, x)
    return Layout(counts, digit, y, x, fallback)


def _grid_layout(
    pool: DigitPool,
    params: Params,
    rng: np.random.Generator,
    rows: np.ndarray,
    bh: np.ndarray,
    bw: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
) -> None:
    """Lay out images ``rows`` in place (``y``, ``x``): distinct random grid cells,
    each digit at a random offset inside its cell (``bh``, ``bw``: ink box sizes)."""
    (ch, cw), m = pool.max_box, params.margin
    cols = (params.size[1] + m) // (cw + m)
    cells = grid_capacity(params.size, m, pool.max_box)
    order = np.argsort(rng.random((len(rows), cells)), axis=1)[:, : params.max_digits]
    h, w = bh[rows], bw[rows]
    y[rows] = (order // cols) * (ch + m) + rng.integers(0, ch - h + 1)
    x[rows] = (order % cols) * (cw + m) + rng.integers(0, cw - w + 1)


def render(pool: DigitPool, params: Params, layout: Layout, lo: int, out: M2NISTArrays) -> None:
    """Paint rows ``lo:lo+len(out)`` of a block's layout into ``out`` from :meth:`allocate`.

    All digits of all images are pasted by one scatter: their pixels are disjoint,
    so writing order does not matter and the result equals max-compositing.
    """
    n = len(out)
    height, width = params.size
    counts = layout.counts[lo : lo + n]
    img, slot = np.nonzero(np.arange(params.max_digits) < counts[:, None])
    d = layout.digit[lo + img, slot]
    y, x = layout.y[lo + img, slot], layout.x[lo + img, slot]
    cls = pool.cls[d]
    out.labels.fill(BACKGROUND)
    out.boxes.fill(-1)
    out.boxes[img, slot] = np.stack(
        [cls, y, x, y + pool.height[d], x + pool.width[d]], axis=1
    ).astype(np.int16)
    lengths = pool.ptr[d + 1] - pool.ptr[d]
    ends = np.cumsum(lengths)
    total = int(ends[-1]) if len(ends) else 0
    offs = np.arange(total) + np.repeat(pool.ptr[d] - ends + lengths, lengths)
    pos = np.repeat(img * (height * width) + y * width + x, lengths) + pool.rel[offs]
    out.images.reshape(-1)[pos] = pool.val[offs]
    cls_rep, slot_rep = np.repeat(cls, lengths), np.repeat((slot + 1).astype(np.uint8), lengths)
    if pool.ink is not None:
        ink = pool.ink[offs]
        pos, cls_rep, slot_rep = pos[ink], cls_rep[ink], slot_rep[ink]
    out.labels.reshape(-1)[pos] = cls_rep
    out.instances.reshape(-1)[pos] = slot_rep


def compose_range(
    pool: DigitPool,
    params: Params,
    seed: int,
    split: str,
    start: int,
    stop: int,
    out: M2NISTArrays | None = None,
) -> M2NISTArrays:
    """Rows ``start:stop`` of the infinite sequence defined by (seed, split, params).

    Each touched block is laid out in full (cheap) so that its randomness does not
    depend on which rows are asked for; only the requested rows are rendered.
    """
    out = M2NISTArrays.allocate(stop - start, params) if out is None else out
    for row, hi in block_spans(start, stop):
        block, lo = divmod(row, BLOCK)
        layout = layout_block(pool, params, block_rng(seed, split, block))
        for a in range(row, hi, RENDER_ROWS):
            b = min(a + RENDER_ROWS, hi)
            render(pool, params, layout, lo + a - row, out.slice(a - start, b - start))
    return out


def block_spans(start: int, stop: int) -> list[tuple[int, int]]:
    """Cut rows ``start:stop`` at block boundaries: the unit of work and of randomness."""
    cuts = [start, *range((start // BLOCK + 1) * BLOCK, stop, BLOCK), stop]
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def compose_parallel(
    pool: DigitPool,
    params: Params,
    seed: int,
    split: str,
    start: int,
    stop: int,
    workers: int,
) -> M2NISTArrays:
    """:func:`compose_range` with blocks shared among ``workers`` threads.

    Threads suffice: numpy releases the GIL in the fills, gathers and scatters that
    dominate, and they write disjoint slices of one output, so no copies are made.
    """
    out = M2NISTArrays.allocate(stop - start, params)
    spans = block_spans(start, stop)
    if workers <= 1 or len(spans) == 1:
        return compose_range(pool, params, seed, split, start, stop, out)

    def run(span: tuple[int, int]) -> None:
        a, b = span
        compose_range(pool, params, seed, split, a, b, out.slice(a - start, b - start))

    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(run, spans))
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
    """
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 0:
        raise ParamError(f"n={n!r}: must be an integer >= 0")
    params = make_params(digits, size, margin, threshold)
    pool = digit_pool(split, params, source)
    check_fits(params, pool)
    return compose_parallel(pool, params, seed, split, 0, n, default_workers())


def default_workers() -> int:
    """Threads used by :func:`generate`: one per available core."""
    return available_cores()
