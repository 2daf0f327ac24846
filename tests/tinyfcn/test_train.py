"""The whole recipe, ``run``: a short real run, resume, a run with nothing to train."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tinyfcn.toys import toy_config, toy_splits
from tinyfcn import BACKGROUND, TrainConfig, as_tensors, load_checkpoint, predict, run
from tinyfcn.loop import BudgetError


def test_short_real_m2nist_run_beats_chance_by_far(mnist_source: str) -> None:
    """Classifier (0.3 epoch) -> fcn1s -> six epochs on 400 real M2NIST images (~12 s).

    So short a run finds the digits before it names them: what it must get right is
    digit-versus-background. Chance for that foreground IoU is at most the foreground
    fraction (~0.07, predicting "digit" everywhere); calibration runs reached 0.70-0.82
    (seeds 0 and 1, lr 1e-2 and 3e-2), so 0.5 leaves a wide margin. The full recipe's
    figures (mIoU > 0.9) are the benchmark's job, not a test's.
    """
    config = TrainConfig(
        variant="fcn1s",
        train_images=400,
        test_images=100,
        source=mnist_source,
        # 141 classifier steps: 0.3 epoch of full MNIST, 6 of the bundled sample
        classifier_epochs=0.3 if mnist_source != "sample" else 6.0,
        classifier_shift=4,
        epochs=6,
        seconds=None,
        batch_size=16,
        lr=3e-2,
        eval_every=0,
    )
    result = run(config, progress=False)
    assert result.classifier_accuracy is not None and result.classifier_accuracy > 0.6
    assert result.test is not None
    images, labels = as_tensors(result.test)
    truth = labels != BACKGROUND
    found = predict(result.model, images) != BACKGROUND
    foreground_iou = float((truth & found).sum() / (truth | found).sum())
    assert foreground_iou > 0.5, (foreground_iou, result.metrics)
    assert result.metrics["pixel_accuracy"] > 0.93, result.metrics


def test_resume_continues_training(tmp_path: Path) -> None:
    data = toy_splits()
    path = tmp_path / "fcn2s.pt"
    run(toy_config(epochs=1), data=data, checkpoint=path, progress=False)
    resumed = run(toy_config(epochs=2), data=data, resume=path, progress=False)
    _, saved = load_checkpoint(path)
    assert saved["train_state"]["step"] == 2
    assert resumed.history[-1]["step"] == 4
    assert [h["step"] for h in resumed.history] == [2, 4]  # the old history is kept
    first, last = (h["eval_seconds"] for h in resumed.history)
    assert 0 < first < last  # the wall time spent evaluating adds up across the resume
    assert "state" in saved["train_state"]["optimizer"]  # Adam moments were saved


def test_a_run_that_makes_no_fcn_step_fails_and_saves_nothing(tmp_path: Path) -> None:
    """Resuming a checkpoint that already spent its epoch budget has nothing to train."""
    data = toy_splits()
    path = tmp_path / "fcn2s.pt"
    run(toy_config(epochs=1), data=data, checkpoint=path, progress=False)
    before = path.read_bytes()
    with pytest.raises(BudgetError, match="no FCN step fits in the budget"):
        run(toy_config(epochs=1), data=data, resume=path, checkpoint=path, progress=False)
    assert path.read_bytes() == before
