"""The classifier side of the recipe: its input contract and the shift augmentation."""

from __future__ import annotations

import itertools
import time

import pytest
import torch

from tinyfcn import MnistClassifier, TrainConfig, evaluate_classifier, train_classifier
from tinyfcn.data import load_digits, random_shift
from tinyfcn.loop import PACE_STEPS, BudgetError


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


def _epochs_for_steps(steps: int, source: str) -> float:
    """Epochs giving about ``steps`` classifier steps on ``source`` (60,000 digits in the
    IDX files, 3,000 in the bundled sample): the same training whichever is present."""
    return steps * 128 / len(load_digits(True, source)[1])


def test_a_short_run_learns_real_mnist(mnist_source: str) -> None:
    """47 steps (a tenth of an epoch of full MNIST) lift test accuracy from ~10% to well
    above 70%."""
    epochs = _epochs_for_steps(47, mnist_source)
    config = TrainConfig(source=mnist_source, classifier_epochs=epochs, classifier_shift=0)
    model, accuracy, seconds = train_classifier(config, progress=False)
    assert accuracy > 0.7
    assert seconds > 0
    images, labels = load_digits(False, mnist_source)
    assert evaluate_classifier(model, images[:500], labels[:500]) > 0.7


def test_a_classifier_that_cannot_meet_the_deadline_stops_within_its_first_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A clock that ticks one second per reading: 46 steps cannot end by second 30, and
    the stage says so after its third step instead of running them all."""
    config = TrainConfig(source="sample", classifier_epochs=2.0, classifier_shift=0)
    steps = 0
    forward = MnistClassifier.forward

    def counting(self: MnistClassifier, x: torch.Tensor) -> torch.Tensor:
        nonlocal steps
        steps += self.training
        return forward(self, x)

    monkeypatch.setattr(MnistClassifier, "forward", counting)
    clock = itertools.count()
    monkeypatch.setattr(time, "perf_counter", lambda: float(next(clock)))
    with pytest.raises(BudgetError, match=r"cannot cover the classifier \(46 steps\)"):
        train_classifier(config, progress=False, deadline=30.0)
    assert steps == PACE_STEPS


def test_a_deadline_already_past_stops_before_the_classifier(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = TrainConfig(source="sample")
    with pytest.raises(BudgetError, match="cannot cover making the data"):
        train_classifier(config, progress=False, deadline=time.perf_counter())
