"""The training API: a short real run, determinism, checkpoints and resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tinyfcn import (
    BACKGROUND,
    M2nistData,
    TinyFCN,
    TrainConfig,
    load_checkpoint,
    predict,
    run,
    save_checkpoint,
)
from tinyfcn.loop import BudgetError


def _toy_data(n: int = 8, seed: int = 0) -> M2nistData:
    """Random images whose bright pixels are class 3, the rest background: enough to
    exercise the loop without MNIST."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, 32, 36, generator=g)
    labels = torch.where(images[:, 0] > 0.7, 3, 10)
    return M2nistData(images, labels)


def _toy_config(**overrides: object) -> TrainConfig:
    base: dict[str, object] = {
        "variant": "fcn2s",
        "pretrained": False,
        "epochs": 2,
        "seconds": None,
        "batch_size": 4,
        "eval_every": 0,
    }
    return TrainConfig(**{**base, **overrides})


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
    truth = result.test.labels != BACKGROUND
    found = predict(result.model, result.test.images) != BACKGROUND
    foreground_iou = float((truth & found).sum() / (truth | found).sum())
    assert foreground_iou > 0.5, (foreground_iou, result.metrics)
    assert result.metrics["pixel_accuracy"] > 0.93, result.metrics


def test_epoch_budget_is_deterministic() -> None:
    data = (_toy_data(), _toy_data(4, seed=1))
    first = run(_toy_config(), data=data, progress=False)
    second = run(_toy_config(), data=data, progress=False)
    for (name, a), b in zip(
        first.model.state_dict().items(), second.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert first.history[-1]["step"] == 4  # 2 epochs of 8 images in batches of 4


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    data = (_toy_data(), _toy_data(4, seed=1))
    path = tmp_path / "ckpt" / "fcn2s.pt"
    result = run(_toy_config(), data=data, checkpoint=path, progress=False)
    model, saved = load_checkpoint(path)
    assert saved["config"]["variant"] == "fcn2s"
    x = data[1].images
    with torch.no_grad():
        assert torch.equal(model.eval()(x), result.model.eval()(x))
    assert not list(tmp_path.glob("ckpt/.*.partial")), "temporary file left behind"


def test_resume_continues_training(tmp_path: Path) -> None:
    data = (_toy_data(), _toy_data(4, seed=1))
    path = tmp_path / "fcn2s.pt"
    run(_toy_config(epochs=1), data=data, checkpoint=path, progress=False)
    resumed = run(_toy_config(epochs=2), data=data, resume=path, progress=False)
    _, saved = load_checkpoint(path)
    assert saved["train_state"]["step"] == 2
    assert resumed.history[-1]["step"] == 4
    assert [h["step"] for h in resumed.history] == [2, 4]  # the old history is kept
    assert "state" in saved["train_state"]["optimizer"]  # Adam moments were saved


def test_checkpoint_of_another_variant_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fcn2s.pt"
    save_checkpoint(path, TinyFCN("fcn2s"), _toy_config())
    with pytest.raises(ValueError, match="variant='fcn2s' model, but variant='fcn1s'"):
        load_checkpoint(path, expect=_toy_config(variant="fcn1s"))


def test_missing_and_foreign_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match="not a tinyfcn checkpoint"):
        load_checkpoint(foreign)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable tinyfcn checkpoint"):
        load_checkpoint(garbage)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"variant": "fcn8s"}, "unknown variant"),
        ({"epochs": None, "seconds": None}, "give a budget"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"lr": -1.0}, "lr must be a finite number > 0"),
        ({"lr": 0.0}, "lr must be a finite number > 0"),
        ({"seconds": float("nan")}, "seconds must be a finite number >= 0"),
    ],
)
def test_bad_configs(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _toy_config(**overrides)


def test_mismatched_data_is_refused() -> None:
    with pytest.raises(ValueError, match="do not match"):
        M2nistData(torch.zeros(2, 1, 32, 32), torch.zeros(2, 32, 31, dtype=torch.long))


def test_a_run_that_makes_no_fcn_step_fails_and_saves_nothing(tmp_path: Path) -> None:
    """Resuming a checkpoint that already spent its epoch budget has nothing to train."""
    data = (_toy_data(), _toy_data(4, seed=1))
    path = tmp_path / "fcn2s.pt"
    run(_toy_config(epochs=1), data=data, checkpoint=path, progress=False)
    before = path.read_bytes()
    with pytest.raises(BudgetError, match="no FCN step fits in the budget"):
        run(_toy_config(epochs=1), data=data, resume=path, checkpoint=path, progress=False)
    assert path.read_bytes() == before
