"""The training API's data: any form of a split as tensors, MNIST digits, the shift augmentation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

import m2nist
from tinyfcn import as_tensors, load_m2nist
from tinyfcn.data import load_digits, random_shift

#: ``m2nist-gen``, installed beside this Python: the command that writes dataset folders.
M2NIST_GEN = Path(sys.executable).parent / "m2nist-gen"


def m2nist_folder(out: Path, train: int = 16, test: int = 4) -> Path:
    """A folder as ``m2nist-gen`` writes it, from the bundled MNIST sample."""
    argv = [str(out), "--sample", "--train", str(train), "--test", str(test), "--seed", "0"]
    subprocess.run([M2NIST_GEN, *argv], check=True, capture_output=True)
    return out


def test_every_form_of_a_split_gives_the_same_tensors(tmp_path: Path) -> None:
    """M2NISTArrays, the M2NIST Dataset over a written folder, a numpy pair, a tensor pair,
    float images without a channel axis, one-hot labels (Kaggle's ``segmented.npy``)."""
    folder = m2nist_folder(tmp_path / "m2nist")
    arrays = m2nist.load_arrays(folder, "train")
    images, labels = as_tensors(arrays)
    assert images.shape == (16, 1, 64, 84) and images.dtype == torch.float32
    assert labels.shape == (16, 64, 84) and labels.dtype == torch.int64
    assert float(images.max()) <= 1.0 and int(labels.max()) == m2nist.BACKGROUND
    one_hot = np.eye(m2nist.NUM_CLASSES, dtype=np.uint8)[arrays.labels]
    for form in (
        m2nist.M2NIST(folder, "train"),
        (arrays.images, arrays.labels),
        (images, labels),
        (images[:, 0].double(), torch.from_numpy(one_hot)),
    ):
        again = as_tensors(form)
        assert torch.equal(again[0], images) and torch.equal(again[1], labels)


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
    assert isinstance(train, m2nist.M2NISTArrays)
    assert train.images.shape == (6, 64, 84) and test.labels.shape == (3, 64, 84)
    again, _ = load_m2nist(6, 3, 1, "sample")
    assert np.array_equal(again.images, train.images)
    assert np.array_equal(again.labels, train.labels)
    other, _ = load_m2nist(n_train=6, n_test=3, seed=2, source="sample")
    assert not np.array_equal(other.images, train.images)
