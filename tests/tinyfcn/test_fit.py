"""``fit``: a student's own net trains, evaluates and predicts through the recipe's loop.

The net below is what a homework might write: a small encoder-decoder (about 94k
parameters, two strided convolutions down, two transposed ones up), with no ``variant``,
no crop offsets, nothing of tinyfcn's. It must train through :func:`tinyfcn.fit` on real
M2NIST (the IDX files, else the bundled sample) and score through ``evaluate``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fcnbase import UsageError
from tests.tinyfcn.toys import toy_data, toy_splits
from tinyfcn import (
    BACKGROUND,
    NUM_CLASSES,
    FitConfig,
    as_tensors,
    evaluate,
    fit,
    format_metrics,
    load_m2nist,
    predict,
    train_fcn,
)


class EncDec(nn.Module):
    """A student's encoder-decoder: 64x84 -> 16x21 -> 64x84, 11 scores per pixel."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, NUM_CLASSES, 4, stride=2, padding=1),
        )  # fmt: skip
        self.threads_seen: set[int] = set()

    def forward(self, x: Tensor) -> Tensor:
        self.threads_seen.add(torch.get_num_threads())
        return self.decoder(self.encoder(x))


def _loss(model: nn.Module, images: Tensor, labels: Tensor) -> float:
    with torch.no_grad():
        return float(F.cross_entropy(model.eval()(images), labels))


def test_a_student_net_trains_evaluates_and_predicts(mnist_source: str) -> None:
    train, test = load_m2nist(n_train=64, n_test=16, seed=3, source=mnist_source)
    images, labels = as_tensors(train)
    torch.manual_seed(0)
    model = EncDec()
    assert 90_000 < sum(p.numel() for p in model.parameters()) < 100_000
    before = evaluate(model, test)
    loss_before = _loss(model, images, labels)
    before_threads = torch.get_num_threads()
    model.threads_seen.clear()
    history = fit(
        model, train, test, epochs=6, batch_size=16, lr=3e-3, threads=1, progress=True
    )  # its label: EncDec
    assert torch.get_num_threads() == before_threads  # restored after the run
    assert model.threads_seen == {1}
    assert [h["step"] for h in history] == [24]  # 6 epochs of 4 batches, one final point
    after = history[-1]
    assert _loss(model, images, labels) < 0.5 * loss_before
    # Untrained, its argmax is any class; 24 steps find at least the background (~93 %).
    assert after["pixel_accuracy"] > 0.9 > before["pixel_accuracy"] + 0.2, (before, after)
    assert evaluate(model, test)["mean_iou"] == pytest.approx(after["mean_iou"])
    pred = predict(model, as_tensors(test)[0])
    assert pred.shape == test.labels.shape and pred.dtype == torch.int64
    assert (pred == BACKGROUND).float().mean() > 0.5
    assert "background" in format_metrics(after)  # evaluate named the classes


def test_train_fcn_takes_a_fit_config_for_a_foreign_net(mnist_source: str) -> None:
    """No TrainConfig, hence no variant to name: the FCN stage's settings suffice."""
    train, test = load_m2nist(n_train=16, n_test=4, source=mnist_source)
    state = train_fcn(
        EncDec(), train, test, FitConfig(epochs=1, seconds=None, batch_size=16), progress=False
    )
    assert state["step"] == 1 and [h["step"] for h in state["history"]] == [1]


def test_fit_needs_a_budget() -> None:
    train, _ = load_m2nist(n_train=4, n_test=1, source="sample")
    with pytest.raises(UsageError, match="give a budget"):
        fit(EncDec(), train)


class _DictNet(nn.Conv2d):
    """torchvision's segmentation nets answer ``{"out": scores}``, not the scores."""

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"out": super().forward(x)}


def _mistakes() -> list[tuple[object, object, str]]:
    """A student's mistakes: (net, train split, the line that answers them)."""
    train, _ = load_m2nist(n_train=4, n_test=1, source="sample")
    images, labels = train.images, train.labels
    good = EncDec()
    shape = "expected scores of shape (N, 11, 64, 84), got"
    return [
        (nn.Conv2d(1, 10, 1), train, f"{shape} (N, 10, 64, 84)"),
        (nn.Conv2d(1, 11, 3), train, f"{shape} (N, 11, 62, 82)"),
        (_DictNet(1, 11, 1), train, f"{shape} a dict"),
        (good, images,
         "expected a split (M2NISTArrays, M2NIST or an (images, labels) pair), got ndarray"),
        (good, (images, labels + 1), "expected labels 0-10 (10 = background), got 1 to 11"),
        (good, (images, labels[:2]),
         "expected labels of shape (4, 64, 84) (a class per pixel), got (2, 64, 84)"),
        (good, (images[0], labels[0]),
         "expected images of shape (N, 1, H, W) or (N, H, W), got (64, 84)"),
        (good, (images, labels.astype("float32")),
         "expected integer labels (class indices), got torch.float32"),
        (good, (images.astype("float32"), labels), "expected images in [0, 1], got 0 to 255"),
        (good, (images.astype("int64"), labels),
         "expected uint8 (0-255) or float (0-1) images, got torch.int64"),
    ]  # fmt: skip


@pytest.mark.parametrize("case", range(len(_mistakes())))
def test_a_student_s_mistake_is_answered_in_one_line_before_training(case: int) -> None:
    """Not PyTorch's IndexError from inside the loss, nor a tuple's missing attribute: what
    was expected and what it got, before a step is made."""
    model, train, message = _mistakes()[case]
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError) as refused:
        fit(model, train, epochs=1, progress=False)
    assert str(refused.value) == message
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_the_obvious_forms_of_a_split_train(mnist_source: str) -> None:
    """numpy arrays as m2nist writes them, float images in [0, 1] without a channel axis,
    Kaggle's one-hot ``segmented.npy``: each is a split ``fit`` and ``evaluate`` take."""
    train, test = load_m2nist(n_train=8, n_test=4, source=mnist_source)
    one_hot = np.eye(NUM_CLASSES, dtype=np.uint8)[test.labels]  # (N, 64, 84, 11)
    history = fit(
        EncDec(), (train.images, train.labels), (test.images / 255, one_hot),
        epochs=1, batch_size=8, progress=False,
    )  # fmt: skip
    assert [h["step"] for h in history] == [1] and 0 <= history[0]["mean_iou"] <= 1


def test_the_history_says_how_long_evaluating_took() -> None:
    """The budget is training time; each point adds up the wall time evaluations paused it."""
    train, test = toy_splits()
    history = fit(EncDec(), train, test, epochs=3, eval_every=1e-9, progress=False)
    evaluating = [h["eval_seconds"] for h in history]
    assert len(evaluating) == 6 and 0 < evaluating[0] < evaluating[-1]
    assert evaluating == sorted(evaluating)


def test_the_progress_bar_writes_a_few_lines_not_one_per_step(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """tqdm redraws at most once a second: 400 steps write a line or two, where a redraw
    per step wrote some 80 bytes a step (139 kB for a minute's training)."""
    fit(nn.Conv2d(1, NUM_CLASSES, 1), toy_data(8), epochs=200, progress=True)
    written = len(capsys.readouterr().err.encode())
    assert 0 < written < 4_000, written
