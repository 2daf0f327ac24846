"""``fit``: a student's own net trains, evaluates and predicts through the recipe's loop.

The net below is what a homework might write: a small encoder-decoder (about 94k
parameters, two strided convolutions down, two transposed ones up), with no ``variant``,
no crop offsets, nothing of tinyfcn's. It must train through :func:`tinyfcn.fit` on real
M2NIST (the IDX files, else the bundled sample) and score through ``evaluate``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fcnbase import UsageError
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


def test_a_net_with_the_wrong_class_count_is_refused_in_one_line() -> None:
    """The bare converted classifier scores ten digits and no background."""
    train, _ = load_m2nist(n_train=4, n_test=1, source="sample")
    with pytest.raises(
        ValueError, match=r"expected \(1, 11, 64, 84\) scores, got \(1, 10, 64, 84\)"
    ):
        fit(nn.Conv2d(1, 10, 1), train, epochs=1)
