"""The 2018 M2NIST generator, replayed, and the measurements that compare it with ours.

The Kaggle M2NIST files came from the notebook ``segmented-generator.ipynb`` in
farhanhubble/udacity-connect (2018). :func:`replay_2018` follows its code step by step, so
its flaws can be *measured* instead of described: per image it draws

1. ``randint(2, 4)`` digits -- numpy's upper bound is exclusive, so 2 or 3, never 1;
2. that many source rows, **with replacement**, from its digit table (Kaggle's
   digit-recognizer ``train.csv``, 42,000 MNIST-like digits);
3. for digit ``i`` a frame corner ``x = randint(28 i, 28 i + 10)``, ``y = randint(0, 37)``,
   and pastes the 28x28 frame only if it fits the 64x84 canvas: the third digit's ``x`` is
   in [56, 66) and fits only at 56, so it is drawn (and consumes random numbers) in half
   the images but placed in a tenth of those: 5 % of the images hold 3 digits;
4. the frame into channel ``label`` of a 10-channel mask -- the whole frame, zeros
   included, so a later digit *of the same class* whose frame overlaps erases the earlier
   one's ink there; digits of different classes keep separate channels;

then the image is the maximum over the channels and the mask is clipped to 0/1. The code
has no background channel (a background pixel is all-zero); the files released on Kaggle,
which courses load, have 11 channels, channel 10 = background, one-hot.

The random calls are the original's, in its order, on numpy's legacy generator
(``np.random.seed`` then ``np.random.randint`` is :class:`numpy.random.RandomState`): fed
the same digit table, the replay gives the original's values, as uint8 instead of its int64.
How that was checked, and which copy of the notebook it follows: ``docs/m2nist-2018.md``.
Its FCN notebook split the rows 70/30 after an unseeded shuffle; the row split
:func:`split_leak` measures has the same expected leakage.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from m2nist.params import MNIST_SIDE as SIDE  # of a digit's frame

CANVAS = (64, 84)
MAX_DIGITS = 3
#: Digit ``i``'s frame starts in ``[SLOT * i, SLOT * i + JITTER)``.
SLOT, JITTER = 28, 10
DIGIT_CLASSES = 10
#: Columns of ``sources`` (one row per drawn digit slot; -1 where none was placed).
SOURCE, CLASS, Y0, X0 = range(4)


def replay_2018(
    digits: np.ndarray, labels: np.ndarray, n: int = 5000, seed: int = 1234
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Replay the 2018 generator on ``digits`` (N, 28, 28) uint8 and their ``labels``.

    Returns ``images`` uint8 (n, 64, 84), ``masks10`` uint8 (n, 64, 84, 10) in {0, 1},
    and ``sources`` int64 (n, 3, 4): for each slot ``i`` of an image, the placed digit's
    ``[source row, class, y0, x0]`` (its 28x28 frame's corner), or -1 when slot ``i``
    was not drawn or did not fit. For Kaggle's ``train.csv``, see :func:`stand_in_digits`.
    """
    digits, labels = np.asarray(digits), np.asarray(labels)
    if digits.ndim != 3 or digits.shape[1:] != (SIDE, SIDE):
        raise ValueError(f"digits must be (N, 28, 28), got {digits.shape}")
    if len(labels) != len(digits) or len(digits) == 0:
        raise ValueError(f"need as many labels as digits (>0): {len(labels)} vs {len(digits)}")
    rng = np.random.RandomState(seed)
    height, width = CANVAS
    masks = np.zeros((n, height, width, DIGIT_CLASSES), np.uint8)
    sources = np.full((n, MAX_DIGITS, 4), -1, np.int64)
    for k in range(n):
        count = rng.randint(2, MAX_DIGITS + 1)
        picks = rng.randint(0, len(digits), count)
        for i, src in enumerate(picks):
            x = rng.randint(i * SLOT, i * SLOT + JITTER)
            y = rng.randint(0, height - SIDE + 1)
            if x + SIDE <= width and y + SIDE <= height:
                masks[k, y : y + SIDE, x : x + SIDE, labels[src]] = digits[src]
                sources[k, i] = (src, labels[src], y, x)
    images = masks.max(axis=-1)
    np.minimum(masks, 1, out=masks)
    return images, masks, sources


def stand_in_digits(source: object = None, count: int = 42_000) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` MNIST training digits: the stand-in for Kaggle's ``train.csv``.

    (Kaggle's 42,000 rows are MNIST digits in an order of its own, which is not
    published, so the replay shows the 2018 algorithm, not the 2018 bytes.) ``source`` as
    in :func:`m2nist.load_mnist`; the bundled sample has only 3,000 training digits.
    """
    from m2nist.mnist import load_mnist

    images, labels = load_mnist(train=True, source=source)
    return images[:count], labels[:count]


def _boxes_overlap(sources: np.ndarray, boxes: np.ndarray) -> float:
    """Fraction of images in which the boxes ``[y0, x0, y1, x1]`` of two placed digits meet."""
    placed, hit = sources[..., SOURCE] >= 0, np.zeros(len(sources), bool)
    for a, b in combinations(range(sources.shape[1]), 2):
        p, q = boxes[:, a].T, boxes[:, b].T  # each: rows y0, x0, y1, x1
        meet = (p[0] < q[2]) & (q[0] < p[2]) & (p[1] < q[3]) & (q[1] < p[3])
        hit |= placed[:, a] & placed[:, b] & meet
    return float(hit.mean())


def frame_overlap(sources: np.ndarray) -> float:
    """Fraction of images in which two placed digits' 28x28 frames share a pixel."""
    corner = sources[..., [Y0, X0]]
    return _boxes_overlap(sources, np.concatenate([corner, corner + SIDE], -1))


def ink_boxes(sources: np.ndarray, digits: np.ndarray) -> np.ndarray:
    """Canvas box ``[y0, x0, y1, x1]`` (end exclusive) of each placed digit's ink; -1 if none."""
    ink = np.asarray(digits) > 0
    rows, cols = ink.any(2), ink.any(1)  # (N, 28) each: which rows / columns have ink
    first = np.stack([rows.argmax(1), cols.argmax(1)], 1)
    end = SIDE - np.stack([rows[:, ::-1].argmax(1), cols[:, ::-1].argmax(1)], 1)
    local = np.concatenate([first, end], 1)
    src = sources[..., SOURCE]
    boxes = local[np.maximum(src, 0)] + np.tile(sources[..., [Y0, X0]], 2)
    boxes[src < 0] = -1
    return boxes


def ink_box_overlap(sources: np.ndarray, digits: np.ndarray) -> float:
    """Fraction of images in which two placed digits' ink boxes share a pixel."""
    return _boxes_overlap(sources, ink_boxes(sources, digits))


def ink_pixel_overlap(sources: np.ndarray, digits: np.ndarray) -> float:
    """Fraction of images in which two placed digits put ink on the same canvas pixel."""
    hit = np.zeros(len(sources), bool)
    for k, slots in enumerate(sources):
        canvas = np.zeros((CANVAS[0] + SIDE, CANVAS[1] + SIDE), np.uint8)
        for src, _, y, x in slots[slots[:, SOURCE] >= 0]:
            canvas[y : y + SIDE, x : x + SIDE] += digits[src] > 0
        hit[k] = (canvas > 1).any()
    return float(hit.mean())


def erased_ink(sources: np.ndarray, digits: np.ndarray, masks10: np.ndarray) -> float:
    """Fraction of images where some placed digit's ink is missing from its mask channel.

    Measured on the masks the generator produced: every ink pixel of every placed
    digit should be 1 in its class's channel. In the 2018 code only a later frame of
    the same class can clear it, and the image (the channels' maximum) loses it too.
    """
    lost = np.zeros(len(sources), bool)
    for k, i in zip(*np.nonzero(sources[..., SOURCE] >= 0), strict=True):
        src, c, y, x = sources[k, i]
        frame = masks10[k, y : y + SIDE, x : x + SIDE, c]
        lost[k] |= bool((frame[digits[src] > 0] == 0).any())
    return float(lost.mean())


def source_reuse(sources: np.ndarray) -> float:
    """Fraction of placed digits whose source digit is placed more than once in the set."""
    src = sources[..., SOURCE]
    src = src[src >= 0]
    _, inverse, counts = np.unique(src, return_inverse=True, return_counts=True)
    return float((counts[inverse] > 1).mean()) if len(src) else 0.0


def split_leak(sources: np.ndarray, train_fraction: float = 0.7) -> float:
    """Fraction of the last rows (after ``int(train_fraction * n)``) sharing a source digit
    with a row before them: test images whose digits the model trained on.
    """
    cut = int(train_fraction * len(sources))
    seen = sources[:cut, :, SOURCE]
    test = sources[cut:, :, SOURCE]
    if len(test) == 0:
        return 0.0
    shared = np.isin(test, seen[seen >= 0]) & (test >= 0)
    return float(shared.any(axis=1).mean())


def measure(digits: np.ndarray, sources: np.ndarray, masks10: np.ndarray) -> dict[str, float | int]:
    """Every measurement above, by name, plus the digit counts, for one replay."""
    placed = (sources[..., SOURCE] >= 0).sum(1)
    return {
        "images": len(sources),
        "placed digits": int(placed.sum()),
        "images with 2 digits": float((placed == 2).mean()),
        "images with 3 digits": float((placed == 3).mean()),
        "frame overlap": frame_overlap(sources),
        "ink-box overlap": ink_box_overlap(sources, digits),
        "ink-pixel overlap": ink_pixel_overlap(sources, digits),
        "erased same-class ink": erased_ink(sources, digits, masks10),
        "source reuse": source_reuse(sources),
        "70/30 split leak": split_leak(sources),
    }
