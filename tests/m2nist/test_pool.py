"""The digit pool: ink boxes, and the up-front bound on what fits."""

from __future__ import annotations

import numpy as np
import pytest

from m2nist.params import ParamError, Params
from m2nist.pool import DigitPool, check_fits, digit_pool


def test_fit_bound_uses_ink_boxes_not_the_28px_frame():
    pool = digit_pool("train", Params(), "sample")
    assert pool.max_box == (20, 20)
    check_fits(Params(digits=(6, 6), margin=4), pool)  # 2x3 cells of 24x24 on 64x84
    with pytest.raises(ParamError, match="at most 6"):
        check_fits(Params(digits=(7, 7), margin=4), pool)


def test_pool_keeps_only_the_ink_inside_each_box():
    images = np.zeros((3, 28, 28), np.uint8)
    images[0, 5:9, 10:12] = 200  # a 4x2 ink box
    images[0, 20, 20] = 30  # faint (below threshold 50), outside the ink box: not kept
    images[1, 0, 27] = 255  # a 1x1 box in the corner
    pool = DigitPool(images, np.array([4, 7, 1]), threshold=50, width=84)
    assert len(pool) == 2  # image 2 has no ink: dropped
    assert pool.cls.tolist() == [4, 7] and pool.max_box == (4, 2)
    assert (pool.height.tolist(), pool.width.tolist()) == ([4, 1], [2, 1])
    first = slice(pool.ptr[0], pool.ptr[1])
    assert sorted(pool.rel[first].tolist()) == [0, 1, 84, 85, 168, 169, 252, 253]
    assert (pool.val[first] == 200).all() and pool.ink is None
