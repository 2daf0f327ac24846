"""The training API's data: M2NIST splits as tensors, MNIST digits, the shift augmentation."""

from __future__ import annotations

import pytest
import torch

from tinyfcn import M2NISTData, load_m2nist
from tinyfcn.data import load_digits, random_shift


def test_mismatched_data_is_refused() -> None:
    with pytest.raises(ValueError, match="do not match"):
        M2NISTData(torch.zeros(2, 1, 32, 32), torch.zeros(2, 32, 31, dtype=torch.long))


def test_random_shift_translates_each_image_and_fills_background() -> None:
    images = torch.zeros(64, 1, 28, 28)
    images[:, 0, 14, 14] = 1.0
    shifted = random_shift(images, 3, torch.Generator().manual_seed(0))
    assert shifted.shape == images.shape
    assert torch.equal(shifted.sum((1, 2, 3)), torch.ones(64))  # the dot moved, nothing added
    where = shifted[:, 0].flatten(1).argmax(1)
    rows, cols = where // 28, where % 28
    assert rows.min() >= 11 and rows.max() <= 17 and cols.min() >= 11 and cols.max() <= 17
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) > 10  # per-image offsets


def test_random_shift_of_zero_is_the_identity() -> None:
    images = torch.rand(4, 1, 28, 28)
    assert random_shift(images, 0, torch.Generator()) is images


def test_digits_from_the_bundled_sample() -> None:
    images, labels = load_digits(False, "sample")
    assert images.shape[1:] == (1, 28, 28) and images.dtype == torch.float32
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert labels.dtype == torch.int64 and len(labels) == len(images)


def test_load_m2nist_takes_plain_numbers() -> None:
    train, test = load_m2nist(n_train=6, n_test=3, seed=1, source="sample")
    assert train.images.shape == (6, 1, 64, 84) and test.labels.shape == (3, 64, 84)
    again, _ = load_m2nist(6, 3, 1, "sample")
    assert torch.equal(again.images, train.images) and torch.equal(again.labels, train.labels)
    other, _ = load_m2nist(n_train=6, n_test=3, seed=2, source="sample")
    assert not torch.equal(other.images, train.images)
