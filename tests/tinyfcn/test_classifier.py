"""The classifier side of the recipe: its input contract and the shift augmentation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tinyfcn import MnistClassifier, TrainConfig, evaluate_classifier, train_classifier
from tinyfcn.train import load_digits, random_shift


def test_classifier_takes_only_digits() -> None:
    model = MnistClassifier()
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match="28x28"):
        model(torch.zeros(1, 1, 64, 84))


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


def test_a_short_run_learns_real_mnist(mnist_dir: Path) -> None:
    """A tenth of an epoch (47 steps) lifts test accuracy from ~10% to well above 70%."""
    config = TrainConfig(source=str(mnist_dir), classifier_epochs=0.1, classifier_shift=0)
    model, accuracy, seconds = train_classifier(config, progress=False)
    assert accuracy > 0.7
    assert seconds > 0
    images, labels = load_digits(False, str(mnist_dir))
    assert evaluate_classifier(model, images[:500], labels[:500]) > 0.7
