"""Scoring: per-pixel predictions and the paper's metrics, in chunks of any size."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from tests.tinyfcn.toys import toy_data
from tinyfcn import BACKGROUND, NUM_CLASSES, evaluate, predict


class _Oracle(nn.Module):
    """Scores that name each pixel's class: bright pixels 3, the rest background (the toy
    data's rule), so its predictions are exactly the labels."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))  # a device for predict() to read

    def forward(self, x: Tensor) -> Tensor:
        labels = torch.where(x[:, 0] > 0.7, 3, BACKGROUND)
        return nn.functional.one_hot(labels, NUM_CLASSES).permute(0, 3, 1, 2).float()


def test_predict_is_the_per_pixel_argmax_in_any_chunking() -> None:
    images, labels = toy_data(7)
    for batch_size in (1, 3, 100):
        pred = predict(_Oracle(), images, batch_size)
        assert pred.dtype == torch.int64 and torch.equal(pred, labels)


def test_a_perfect_prediction_scores_one() -> None:
    metrics = evaluate(_Oracle(), toy_data(5), batch_size=2)
    for name in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou"):
        assert metrics[name] == pytest.approx(1.0), name


def test_evaluate_refuses_a_net_of_ten_classes_instead_of_scoring_it() -> None:
    """The bare converted classifier scores ten digits and no background: its argmax never
    says background, and a score of it would be a wrong figure, not an error."""
    with pytest.raises(ValueError) as refused:
        evaluate(nn.Conv2d(1, 10, 1), toy_data(2))
    assert str(refused.value) == "expected scores of shape (N, 11, 32, 36), got (N, 10, 32, 36)"


def test_evaluate_refuses_labels_outside_the_classes_and_takes_numpy() -> None:
    images, labels = (t.numpy() for t in toy_data(3))
    with pytest.raises(ValueError) as refused:
        evaluate(_Oracle(), (images, labels + 1))
    assert str(refused.value) == "expected labels 0-10 (10 = background), got 4 to 11"
    assert evaluate(_Oracle(), (images, labels))["mean_iou"] == pytest.approx(1.0)
