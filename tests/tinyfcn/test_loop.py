"""The training loop: its batches, its determinism, and the classifier stage it trains."""

from __future__ import annotations

import itertools
import time

import pytest
import torch
from torch import nn

from tests.tinyfcn.toys import toy_config, toy_splits
from tinyfcn import (
    MnistClassifier,
    TinyFCN,
    TrainConfig,
    evaluate_classifier,
    run,
    train_classifier,
    train_fcn,
)
from tinyfcn.data import load_digits
from tinyfcn.loop import PACE_STEPS, Budget, BudgetError, TrainingInterrupted, batches


def test_batches_are_full_shuffled_and_stop_with_the_budget() -> None:
    """10 images in batches of 4: two full batches an epoch (the last two images wait for
    the next shuffle), five steps in all, each epoch a new order."""
    got = list(batches(10, 4, Budget(5, None), 0, torch.Generator().manual_seed(0)))
    assert [len(idx) for idx, _ in got] == [4] * 5
    assert [fraction for _, fraction in got] == [0.0, 0.2, 0.4, 0.6, 0.8]
    epochs = [torch.cat([got[0][0], got[1][0]]), torch.cat([got[2][0], got[3][0]])]
    for seen in epochs:
        assert len(set(seen.tolist())) == 8  # no image twice within an epoch
    assert not torch.equal(epochs[0], epochs[1])


def test_fewer_images_than_a_batch_are_one_batch() -> None:
    got = list(batches(3, 4, Budget(2, None), 0, torch.Generator().manual_seed(0)))
    assert [sorted(idx.tolist()) for idx, _ in got] == [[0, 1, 2], [0, 1, 2]]


def test_a_resumed_schedule_continues_where_it_stopped() -> None:
    """``step`` counts the steps made before: 3 of a 4-step budget leave one step."""
    got = list(batches(8, 4, Budget(4, None), 3, torch.Generator()))
    assert [fraction for _, fraction in got] == [0.75]


def test_epoch_budget_is_deterministic() -> None:
    data = toy_splits()
    first = run(toy_config(), data=data, progress=False)
    second = run(toy_config(), data=data, progress=False)
    for (name, a), b in zip(
        first.model.state_dict().items(), second.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert first.history[-1]["step"] == 4  # 2 epochs of 8 images in batches of 4


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


def test_the_history_never_repeats_its_last_point() -> None:
    """Evaluating after every step (an eval pace far below a step's time) means the budget
    ends right after an evaluation: the end of training must not score the same weights
    again."""
    train, test = toy_splits()
    state = train_fcn(TinyFCN("fcn2s"), train, test, toy_config(eval_every=1e-9), progress=False)
    assert [h["step"] for h in state["history"]] == [1, 2, 3, 4]


def test_the_callback_sees_every_step_and_can_stop_the_run() -> None:
    """``callback`` runs after each step with the history so far (a live curve); raising
    KeyboardInterrupt there stops training between two steps, as Ctrl-C does."""
    train, test = toy_splits()
    seen: list[tuple[int, int]] = []

    def callback(model: nn.Module, step: int, history: list[dict[str, object]]) -> None:
        seen.append((step, len(history)))
        if step == 3:
            raise KeyboardInterrupt

    config = toy_config(eval_every=1e-9)
    with pytest.raises(TrainingInterrupted) as stop:
        train_fcn(TinyFCN("fcn2s"), train, test, config, progress=False, callback=callback)
    assert seen == [(1, 1), (2, 2), (3, 3)]
    assert stop.value.new_steps == 3 and stop.value.state["step"] == 3


class ThreadSpy(TinyFCN):
    """fcn2s that notes torch's thread count at every forward pass (training and evaluation)."""

    def __init__(self) -> None:
        super().__init__("fcn2s")
        self.threads_seen: set[int] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.threads_seen.add(torch.get_num_threads())
        return super().forward(x)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_run_keeps_its_thread_count_and_gives_the_caller_s_back(
    monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    """The count is set once when the run starts: every step and evaluation runs on it."""
    model = ThreadSpy()
    monkeypatch.setattr("tinyfcn.train.TinyFCN", lambda *args, **kwargs: model)
    before = torch.get_num_threads()
    result = run(toy_config(eval_every=1e-9, threads=threads), data=toy_splits(), progress=False)
    assert model.threads_seen == {threads}
    assert [h["step"] for h in result.history] == [1, 2, 3, 4]
    assert "threads" not in result.history[0] and "threads" not in result.metrics
    assert torch.get_num_threads() == before


def test_a_net_of_the_wrong_shape_is_refused_before_training() -> None:
    """Ten classes (the bare converted classifier's count) instead of eleven: one line."""
    train, test = toy_splits()
    with pytest.raises(ValueError, match=r"shape \(N, 11, 32, 36\), got \(N, 10, 32, 36\)$"):
        train_fcn(nn.Conv2d(1, 10, 1), train, test, toy_config(), progress=False)
