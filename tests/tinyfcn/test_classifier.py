"""The classifier's input contract: one 28x28 digit, nothing else."""

from __future__ import annotations

import pytest
import torch

from tinyfcn import MnistClassifier


def test_classifier_takes_only_digits() -> None:
    model = MnistClassifier()
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match="28x28"):
        model(torch.zeros(1, 1, 64, 84))
