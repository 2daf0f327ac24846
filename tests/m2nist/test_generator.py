"""Generation semantics on real MNIST: invariants, split hygiene, determinism, rejection."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import m2nist
from fcnbase.cli import UsageError
from m2nist.generator import (
    DigitPool,
    M2NISTArrays,
    block_rng,
    check_fits,
    compose,
    digit_pool,
    layout_block,
    render,
)
from m2nist.params import BLOCK, ParamError, Params

from .contract import invariant_errors


@pytest.fixture(scope="module")
def real(mnist_source) -> m2nist.M2NISTArrays:
    return m2nist.generate(3000, split="train", seed=7, source=mnist_source)


def test_invariants_hold_on_real_mnist(real):
    assert invariant_errors(real, Params()) == []


def test_direct_checks_on_real_mnist(real):
    """The key properties, asserted without the shared checker."""
    assert real.images.dtype == real.labels.dtype == real.instances.dtype == np.uint8
    assert real.boxes.dtype == np.int16 and real.boxes.shape == (3000, 3, 5)
    ink = real.images > 0
    assert np.array_equal(ink, real.labels != m2nist.BACKGROUND)
    assert np.array_equal(ink, real.instances > 0)
    counts = (real.boxes[:, :, 0] >= 0).sum(1)
    assert set(np.unique(counts)) == {1, 2, 3}  # all three counts occur
    assert abs(np.mean(counts == 1) - 1 / 3) < 0.05
    for i in range(0, 3000, 97):
        boxes = [b for b in real.boxes[i] if b[0] >= 0]
        for k, (cls, y0, x0, y1, x1) in enumerate(boxes, start=1):
            ys, xs = np.nonzero(real.instances[i] == k)
            assert (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1) == (y0, x0, y1, x1)
            assert set(real.labels[i][ys, xs]) == {cls}
        for a in range(len(boxes)):
            for b in range(a):
                (_, ay0, ax0, ay1, ax1), (_, by0, bx0, by1, bx1) = boxes[a], boxes[b]
                assert ay0 >= by1 + 2 or by0 >= ay1 + 2 or ax0 >= bx1 + 2 or bx0 >= ax1 + 2


def _crop_hashes(images: np.ndarray) -> set[str]:
    """Hash of every MNIST digit cropped to its ink box."""
    hashes = set()
    for image in images:
        ys, xs = np.nonzero(image)
        crop = image[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        hashes.add(hashlib.md5(crop.tobytes() + bytes(crop.shape)).hexdigest())
    return hashes


def test_train_digits_come_from_train_and_test_from_test(mnist_source):
    train = m2nist.generate(150, split="train", seed=1, source=mnist_source)
    test = m2nist.generate(150, split="test", seed=1, source=mnist_source)
    train_set = _crop_hashes(m2nist.load_mnist(True, mnist_source)[0])
    test_set = _crop_hashes(m2nist.load_mnist(False, mnist_source)[0])
    for arrays, own, other in ((train, train_set, test_set), (test, test_set, train_set)):
        for image, boxes in zip(arrays.images, arrays.boxes, strict=True):
            for _, y0, x0, y1, x1 in boxes[boxes[:, 0] >= 0]:
                crop = image[y0:y1, x0:x1]
                digest = hashlib.md5(crop.tobytes() + bytes(crop.shape)).hexdigest()
                assert digest in own and digest not in other


def test_same_arguments_same_bytes_and_prefix_stable():
    a = m2nist.generate(BLOCK + 300, seed=3, source="sample")
    b = m2nist.generate(BLOCK + 300, seed=3, source="sample")
    c = m2nist.generate(500, seed=3, source="sample")
    d = m2nist.generate(500, seed=4, source="sample")
    for x, y, z in zip(a.arrays(), b.arrays(), c.arrays(), strict=True):
        assert np.array_equal(x, y) and np.array_equal(x[:500], z)
    assert not np.array_equal(a.images[:500], d.images)


def test_threads_and_offsets_do_not_change_the_result():
    params = Params()
    pool = digit_pool("train", params, "sample")
    one = compose(pool, params, 5, "train", 0, 2 * BLOCK + 10)  # one thread, block by block
    threads = m2nist.generate(2 * BLOCK + 10, seed=5, source="sample")  # a thread per core
    part = compose(pool, params, 5, "train", BLOCK - 5, BLOCK + 7)
    for x, y, z in zip(one.arrays(), threads.arrays(), part.arrays(), strict=True):
        assert np.array_equal(x, y)
        assert np.array_equal(x[BLOCK - 5 : BLOCK + 7], z)


def test_train_and_test_differ_for_same_seed():
    train = m2nist.generate(50, split="train", source="sample")
    test = m2nist.generate(50, split="test", source="sample")
    assert not np.array_equal(train.images, test.images)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"digits": (3, 1)}, "MIN <= MAX"),
        ({"digits": (0, 0)}, "MAX >= 1"),
        ({"size": (27, 84)}, ">= 28"),
        ({"margin": -1}, "margin"),
        ({"threshold": 255}, "threshold"),
        ({"split": "val"}, "split"),
        ({"digits": (9, 9), "margin": 4}, "cannot guarantee 9 digits"),
    ],
)
def test_impossible_requests_are_rejected_up_front(kwargs, message):
    with pytest.raises(ParamError, match=message):
        m2nist.generate(10, source="sample", **kwargs)


def test_dense_requests_use_the_fallback_and_stay_valid():
    params = Params(digits=(6, 6), margin=4)
    layout = layout_block(digit_pool("train", params, "sample"), params, block_rng(0, "train", 0))
    assert layout.fallback.mean() > 0
    arrays = m2nist.generate(500, digits=(6, 6), margin=4, source="sample")
    assert invariant_errors(arrays, params) == []


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lo=st.integers(0, 3),
    extra=st.integers(0, 3),
    height=st.integers(28, 90),
    width=st.integers(28, 120),
    margin=st.integers(0, 6),
    threshold=st.sampled_from([0, 30, 128, 200]),
    seed=st.integers(0, 2**32),
)
def test_property_any_feasible_request_is_valid(lo, extra, height, width, margin, threshold, seed):
    hi = max(1, lo + extra)
    try:
        arrays = m2nist.generate(
            40,
            seed=seed,
            digits=(lo, hi),
            size=(height, width),
            margin=margin,
            threshold=threshold,
            source="sample",
        )
    except ParamError as exc:
        assert "cannot guarantee" in str(exc)
        return
    params = Params((lo, hi), (height, width), margin, threshold)
    assert invariant_errors(arrays, params) == []


def test_generate_accepts_the_cli_spellings_and_refuses_others_clearly():
    base = m2nist.generate(8, digits=(2, 2), source="sample")
    for digits in (2, "2", "2-2", [2, 2]):
        assert np.array_equal(m2nist.generate(8, digits=digits, source="sample").boxes, base.boxes)
    assert m2nist.generate(2, size="64x96", source="sample").images.shape == (2, 64, 96)
    for bad in ({"digits": "x"}, {"digits": 2.5}, {"size": 64}, {"margin": "2"}, {"n": "3"}):
        kwargs = {"n": 2, "source": "sample", **bad}
        with pytest.raises(UsageError):
            m2nist.generate(kwargs.pop("n"), **kwargs)


def test_fit_bound_uses_ink_boxes_not_the_28px_frame():
    pool = digit_pool("train", Params(), "sample")
    assert pool.max_box == (20, 20)
    check_fits(Params(digits=(6, 6), margin=4), pool)  # 2x3 cells of 24x24 on 64x84
    with pytest.raises(ParamError, match="at most 6"):
        check_fits(Params(digits=(7, 7), margin=4), pool)


def test_pool_boxes_and_only_the_ink_box_is_pasted():
    images = np.zeros((3, 28, 28), np.uint8)
    images[0, 5:9, 10:12] = 200  # a 4x2 ink box
    images[0, 20, 20] = 30  # faint (below threshold 50), outside the ink box: not pasted
    images[1, 0, 27] = 255  # a 1x1 box in the corner
    pool = DigitPool(images, np.array([4, 7, 1]), threshold=50)
    assert len(pool) == 2  # image 2 has no ink: dropped
    assert pool.cls.tolist() == [4, 7] and pool.max_box == (4, 2)
    assert (pool.y0.tolist(), pool.x0.tolist()) == ([5, 0], [10, 27])
    assert (pool.height.tolist(), pool.width.tolist()) == ([4, 1], [2, 1])
    params = Params(digits=(1, 1), size=(28, 28), margin=0, threshold=50)
    layout = layout_block(pool, params, block_rng(0, "train", 0))
    out = M2NISTArrays.zeros(8, params)
    render(pool, params, layout, 0, out)
    assert invariant_errors(out, params) == []
    assert sorted(np.unique(out.images).tolist()) in ([0, 200], [0, 200, 255], [0, 255])
    assert (out.images > 0).sum(axis=(1, 2)).tolist() == [
        8 if d == 0 else 1 for d in layout.digit[:8, 0]
    ]
