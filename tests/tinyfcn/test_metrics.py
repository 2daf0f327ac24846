"""Metrics against confusion matrices worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from tinyfcn.metrics import ConfusionMatrix, format_metrics

# Truth / prediction on a 3x4 image, classes 0..2, 255 = ignore.
TRUTH = torch.tensor([[0, 0, 1, 1], [0, 2, 1, 255], [2, 2, 255, 0]])
PRED = torch.tensor([[0, 1, 1, 1], [0, 2, 0, 2], [2, 0, 1, 0]])
# Counting the 10 labelled pixels (the two 255s are dropped whatever was predicted):
#            pred 0  1  2
# truth 0:      3  1  0      t_0 = 4
# truth 1:      1  2  0      t_1 = 3
# truth 2:      1  0  2      t_2 = 3
MATRIX = [[3, 1, 0], [1, 2, 0], [1, 0, 2]]


def test_matrix_by_hand_with_ignored_pixels() -> None:
    cm = ConfusionMatrix(3)
    cm.update(PRED, TRUTH)
    assert cm.matrix.tolist() == MATRIX


def test_the_four_metrics_by_hand() -> None:
    cm = ConfusionMatrix(3)
    cm.update(PRED, TRUTH)
    m = cm.compute()
    # IoU_i = n_ii / (t_i + predicted_i - n_ii); predicted = column sums (5, 3, 2).
    iou = [3 / (4 + 5 - 3), 2 / (3 + 3 - 2), 2 / (3 + 2 - 2)]
    assert m["pixel_accuracy"] == pytest.approx(7 / 10)
    assert m["mean_accuracy"] == pytest.approx((3 / 4 + 2 / 3 + 2 / 3) / 3)
    assert m["mean_iou"] == pytest.approx(sum(iou) / 3)
    assert m["fw_iou"] == pytest.approx((4 * iou[0] + 3 * iou[1] + 3 * iou[2]) / 10)
    assert m["iou"] == pytest.approx(iou)


def test_dice_by_hand_is_2iou_over_1_plus_iou() -> None:
    cm = ConfusionMatrix(4)  # class 3 never occurs, never predicted: no Dice
    cm.update(PRED, TRUTH)
    # Dice_i = 2 n_ii / (t_i + predicted_i): rows (4, 3, 3), columns (5, 3, 2).
    dice = cm.dice()
    assert dice[:3] == pytest.approx([6 / 9, 4 / 6, 4 / 5])
    assert math.isnan(dice[3])
    iou = torch.tensor(cm.compute()["iou"][:3])
    assert dice[:3] == pytest.approx((2 * iou / (1 + iou)).tolist())


def test_accumulates_over_batches() -> None:
    whole, parts = ConfusionMatrix(3), ConfusionMatrix(3)
    whole.update(PRED, TRUTH)
    for row in range(3):
        parts.update(PRED[row], TRUTH[row])
    assert torch.equal(whole.matrix, parts.matrix)
    parts.reset()
    assert parts.matrix.sum() == 0


def test_absent_class_is_nan_and_left_out_of_means() -> None:
    cm = ConfusionMatrix(4)  # class 3 never occurs, never predicted
    cm.update(PRED, TRUTH)
    m = cm.compute()
    three = ConfusionMatrix(3)
    three.update(PRED, TRUTH)
    assert math.isnan(m["iou"][3])
    assert m["mean_iou"] == pytest.approx(three.compute()["mean_iou"])
    text = format_metrics(m, ["bg", "cat", "dog", "cow"])  # said, not a silent "nan"
    assert "means over 3 of 4 classes: cow absent" in text and "  cow  absent" in text


def test_ignored_pixels_are_counted_apart() -> None:
    cm = ConfusionMatrix(3)
    truth = TRUTH.clone()
    truth[0, :2] = 255
    cm.update(PRED, truth)
    assert int(cm.ignored) == 4 and int(cm.matrix.sum()) == TRUTH.numel() - 4  # 2 + 2
    cm.reset()
    assert int(cm.ignored) == 0


def test_perfect_prediction() -> None:
    cm = ConfusionMatrix(3)
    cm.update(TRUTH.clamp(max=2), TRUTH)
    m = cm.compute()
    assert m["pixel_accuracy"] == m["mean_iou"] == m["fw_iou"] == m["mean_accuracy"] == 1.0


def test_bad_inputs() -> None:
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="differ"):
        cm.update(PRED[:2], TRUTH)
    with pytest.raises(ValueError, match="target holds labels"):
        cm.update(PRED, torch.full_like(TRUTH, 7))
    with pytest.raises(ValueError, match="prediction holds"):
        cm.update(torch.full_like(PRED, -1), TRUTH)
    with pytest.raises(ValueError):
        ConfusionMatrix(0)


def test_format_names_every_class() -> None:
    cm = ConfusionMatrix(3)
    cm.update(PRED, TRUTH)
    text = format_metrics(cm.compute(), ["bg", "cat", "dog"])
    assert "mean IoU" in text and "dog" in text and "0.7000" in text


def test_metrics_that_carry_their_class_names_format_with_them() -> None:
    cm = ConfusionMatrix(3)
    cm.update(PRED, TRUTH)
    metrics = cm.compute(["bg", "cat", "dog"])
    assert metrics["class_names"] == ["bg", "cat", "dog"]
    assert format_metrics(metrics) == format_metrics(cm.compute(), ["bg", "cat", "dog"])
    assert "  2  IoU" in format_metrics(cm.compute())  # no names: the class index
    with pytest.raises(ValueError, match="2 class names for a 3-class matrix"):
        cm.compute(["bg", "cat"])
