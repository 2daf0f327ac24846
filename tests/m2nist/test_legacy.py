"""m2nist.legacy: the 2018 generator replayed, and each measurement on cases with known answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from m2nist.legacy import (
    CLASS,
    SOURCE,
    X0,
    Y0,
    erased_ink,
    frame_overlap,
    ink_box_overlap,
    ink_boxes,
    ink_pixel_overlap,
    measure,
    replay_2018,
    source_reuse,
    split_leak,
    stand_in_digits,
)

SIDE = 28


def right_half_digits(n: int) -> np.ndarray:
    """Digits whose ink fills the right half of the frame (columns 14-27), each its own value."""
    digits = np.zeros((n, SIDE, SIDE), np.uint8)
    digits[:, :, 14:] = (np.arange(n) % 255 + 1)[:, None, None]
    return digits


def table(placed: list[list[tuple[int, int, int, int]]]) -> np.ndarray:
    """``sources`` from rows of (source, class, y0, x0) per image, padded with -1."""
    out = np.full((len(placed), 3, 4), -1, np.int64)
    for k, rows in enumerate(placed):
        for i, row in enumerate(rows):
            out[k, i] = row
    return out


@pytest.fixture(scope="module")
def replay():
    digits = right_half_digits(50)
    labels = np.arange(50) % 10
    images, masks, sources = replay_2018(digits, labels, n=400, seed=1234)
    return digits, labels, images, masks, sources


def test_counts_slots_and_channels(replay) -> None:
    _, labels, images, masks, sources = replay
    placed = sources[..., SOURCE] >= 0
    assert set(placed.sum(1)) == {2, 3}  # randint(2, 4): never 1
    assert placed[:, :2].all()  # the first two slots always fit
    for i in range(3):
        x0 = sources[placed[:, i], i, X0]
        assert x0.min() >= 28 * i and x0.max() < 28 * i + 10
    assert (sources[placed[:, 2], 2, X0] == 56).all()  # the only third slot that fits 84
    y0 = sources[placed][:, Y0]
    assert y0.min() >= 0 and y0.max() <= 64 - SIDE
    assert (sources[placed][:, CLASS] == labels[sources[placed][:, SOURCE]]).all()
    assert masks.shape == (400, 64, 84, 10) and set(np.unique(masks)) == {0, 1}
    assert images.shape == (400, 64, 84)
    # the image is the channels' maximum of what was pasted: ink exactly where a mask is set
    assert ((images > 0) == masks.any(-1)).all()


def test_random_calls_follow_the_2018_order() -> None:
    digits, labels = right_half_digits(30), np.arange(30) % 10
    _, _, sources = replay_2018(digits, labels, n=1, seed=7)
    rng = np.random.RandomState(7)
    count = rng.randint(2, 4)
    picks = rng.randint(0, 30, count)
    for i, src in enumerate(picks):
        x, y = rng.randint(28 * i, 28 * i + 10), rng.randint(0, 37)
        expected = [src, src % 10, y, x] if x + SIDE <= 84 else [-1] * 4
        assert sources[0, i].tolist() == expected
    assert (sources[0, count:] == -1).all()


def test_same_seed_same_arrays_other_seed_other_arrays(replay) -> None:
    digits, labels, images, masks, sources = replay
    again = replay_2018(digits, labels, n=400, seed=1234)
    assert all(np.array_equal(a, b) for a, b in zip((images, masks, sources), again, strict=True))
    assert not np.array_equal(replay_2018(digits, labels, n=400, seed=1)[2], sources)


def test_a_later_paste_of_the_same_class_overwrites_the_earlier_frame() -> None:
    # One class only: every overlapping pair is same-class, and the later frame's empty
    # left half lands on the earlier digit's ink, erasing it in mask and image.
    digits = right_half_digits(40)
    images, masks, sources = replay_2018(digits, np.zeros(40, np.int64), n=300)
    checked = 0
    for k in range(300):
        a, b = sources[k, 0], sources[k, 1]
        dy, dx = b[Y0] - a[Y0], b[X0] - a[X0]
        if abs(dy) >= SIDE or dx >= SIDE:
            continue
        ys = slice(max(a[Y0], b[Y0]), min(a[Y0], b[Y0]) + SIDE)
        xs = slice(b[X0], a[X0] + SIDE)  # the overlap: later frame's left, earlier's right
        later = digits[b[SOURCE]][ys.start - b[Y0] : ys.stop - b[Y0], : xs.stop - b[X0]]
        assert (masks[k, ys, xs, 0] == (later > 0)).all()
        assert (images[k, ys, xs] == later).all()
        checked += 1
    assert checked > 50
    assert erased_ink(sources, digits, masks) == pytest.approx(frame_overlap(sources))


def test_different_classes_keep_both_digits() -> None:
    digits = right_half_digits(40)
    labels = np.arange(40) % 2
    _, masks, sources = replay_2018(digits, labels, n=300)
    overlapping = 0
    for k in range(300):
        a, b = sources[k, 0], sources[k, 1]  # only slot 1's frame can reach slot 0's
        if a[CLASS] != b[CLASS]:
            frame = masks[k, a[Y0] : a[Y0] + SIDE, a[X0] : a[X0] + SIDE, a[CLASS]]
            assert (frame[digits[a[SOURCE]] > 0] == 1).all()
            overlapping += abs(b[Y0] - a[Y0]) < SIDE and b[X0] - a[X0] < SIDE
    assert overlapping > 20


def test_bad_digit_tables_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        replay_2018(np.zeros((3, 28, 27), np.uint8), np.zeros(3, int), n=1)
    with pytest.raises(ValueError, match="as many labels"):
        replay_2018(np.zeros((3, 28, 28), np.uint8), np.zeros(2, int), n=1)


def test_frame_overlap_counts_images_whose_frames_share_a_pixel() -> None:
    sources = table(
        [
            [(0, 1, 0, 0), (1, 2, 0, 27)],  # one column shared
            [(0, 1, 0, 0), (1, 2, 0, 28)],  # side by side
            [(0, 1, 0, 0), (1, 2, 28, 0)],  # one above the other
            [(0, 1, 0, 0), (1, 2, 30, 30), (2, 3, 10, 50)],  # the 2nd and 3rd meet
        ]
    )
    assert frame_overlap(sources) == 0.5


def test_ink_boxes_and_ink_pixels() -> None:
    digits = np.zeros((3, SIDE, SIDE), np.uint8)
    digits[0, 0, 0] = digits[0, 10, 10] = 255  # box rows/cols 0..10, ink at its corners
    digits[1, 5, 5] = 255  # a single pixel
    digits[2, 20:, 20:] = 255  # ink box rows/cols 20..27
    sources = table(
        [
            [(0, 1, 0, 0), (1, 2, 0, 0)],  # box contains the pixel, no shared ink
            [(0, 1, 0, 0), (1, 2, 5, 5)],  # the pixel lands on (10, 10): shared ink
            [(0, 1, 0, 10), (2, 2, 0, 0)],  # frames meet, boxes (rows 0-10, 20-27) do not
        ]
    )
    boxes = ink_boxes(sources, digits)
    assert boxes[0, 0].tolist() == [0, 0, 11, 11]
    assert boxes[1, 1].tolist() == [10, 10, 11, 11]
    assert boxes[2, 1].tolist() == [20, 20, 28, 28]
    assert (boxes[:, 2] == -1).all()
    assert frame_overlap(sources) == 1.0
    assert ink_box_overlap(sources, digits) == pytest.approx(2 / 3)
    assert ink_pixel_overlap(sources, digits) == pytest.approx(1 / 3)


def test_erased_ink_reads_the_masks() -> None:
    digits = right_half_digits(1)
    sources = table([[(0, 4, 0, 0)], [(0, 4, 10, 20)]])
    masks = np.zeros((2, 64, 84, 10), np.uint8)
    masks[0, :SIDE, 14:SIDE, 4] = 1
    masks[1, 10 : 10 + SIDE, 34:48, 4] = 1
    assert erased_ink(sources, digits, masks) == 0.0
    masks[1, 20, 40, 4] = 0  # one ink pixel gone
    assert erased_ink(sources, digits, masks) == 0.5
    masks[0, 5, 20, 3] = 1  # ink in another channel does not replace it
    masks[0, 5, 20, 4] = 0
    assert erased_ink(sources, digits, masks) == 1.0


def test_source_reuse_and_split_leak() -> None:
    sources = table([[(1, 0, 0, 0), (2, 0, 0, 30)], [(1, 0, 0, 0), (3, 0, 0, 30)]])
    assert source_reuse(sources) == 0.5  # the two placements of digit 1
    rows = [[(k, 0, 0, 0), (100 + k, 0, 0, 30)] for k in range(10)]
    rows[8] = [(3, 0, 0, 0), (200, 0, 0, 30)]  # a test row reusing train row 3's digit
    rows[9] = [(8, 0, 0, 0), (9, 0, 0, 30)]  # reuse within the test rows only: no leak
    assert split_leak(table(rows)) == pytest.approx(1 / 3)
    assert split_leak(table(rows), train_fraction=1.0) == 0.0


def test_measure_reports_every_figure(replay) -> None:
    digits, _, _, masks, sources = replay
    figures = measure(digits, sources, masks)
    assert figures["images"] == 400
    assert figures["images with 2 digits"] + figures["images with 3 digits"] == 1.0
    assert figures["placed digits"] == int((sources[..., SOURCE] >= 0).sum())
    assert figures["frame overlap"] == frame_overlap(sources)
    assert all(0.0 <= v <= 1.0 for k, v in figures.items() if isinstance(v, float))


def test_real_mnist_reproduces_the_2018_figures(mnist_dir: Path) -> None:
    """On the first 42,000 MNIST training digits, seed 1234, 5,000 images: the figures of
    the 2018 generator as docs/m2nist-2018.md quotes them, at its rounding."""
    digits, labels = stand_in_digits(mnist_dir)
    assert len(digits) == 42_000
    _, masks, sources = replay_2018(digits, labels)
    figures = measure(digits, sources, masks)
    assert round(100 * figures["frame overlap"]) == 45
    assert round(100 * figures["ink-box overlap"], 1) == 0.4
    assert round(100 * figures["ink-pixel overlap"], 1) == 0.1
    assert round(100 * figures["erased same-class ink"], 1) == 0.8
    assert round(100 * figures["source reuse"]) == 21
    assert round(100 * figures["70/30 split leak"]) == 29


def test_importing_the_replay_loads_no_torch() -> None:
    code = "import sys, m2nist.legacy; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
