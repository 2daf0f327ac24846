"""The training loop: minibatch steps with a cosine learning rate until the budget is spent.

Both stages of the recipe train this way -- the MNIST classifier (:func:`train_classifier`)
and the FCN on M2NIST (:func:`train_fcn`) -- each with its loop written out: a ``for``
over :func:`batches`, one :func:`train_step`, and an ``if`` for what else happens between
steps (the classifier checks its pace against the run's deadline, the FCN evaluates now and
then).

A budget is epochs and/or wall-clock seconds; training stops at whichever runs out first.
The learning rate follows a cosine from ``lr`` to zero over the budget: measured in steps
when only epochs are given (fully deterministic for a seed and a thread count on CPU), in
elapsed time when seconds are given (so a time-boxed run still anneals before its deadline).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from fcnbase import CliError, deferred_interrupts, pick_device
from tinyfcn.classifier import MnistClassifier
from tinyfcn.config import FitConfig, TrainConfig
from tinyfcn.data import Split, as_tensors, load_digits, random_shift
from tinyfcn.evaluation import check_scores, evaluate, evaluate_classifier

#: Classifier steps timed before judging its pace: the first ones pay for warm-up.
PACE_STEPS = 3
#: What a history point holds besides the metrics: when (on the training clock), after how
#: many steps, and the wall time spent evaluating so far (the clock's pauses).
HISTORY_KEYS = ("seconds", "step", "eval_seconds")
#: Progress bars redraw at most once a second, not once a step: a minute writes a few kB.
BAR = {"leave": False, "mininterval": 1.0}


class BudgetError(CliError):
    """The wall-clock budget cannot pay for an FCN step: a run that trained nothing must
    not look like one that trained (exit 1, nothing saved)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during FCN training, always raised *between* two complete steps.

    ``state`` is a complete training state (what :func:`train_fcn` returns on success), so
    the run can be saved and resumed exactly where it stopped; ``new_steps`` counts the
    steps this call made (none: nothing worth saving).
    """

    def __init__(self, state: dict[str, object], new_steps: int) -> None:
        super().__init__()
        self.state, self.new_steps = state, new_steps


class Budget:
    """How much of an epochs and/or seconds budget is spent.

    ``steps`` is the epochs budget counted in steps (None: seconds only), ``seconds`` the
    wall-clock budget (None: epochs only) and ``elapsed`` the time already spent on it
    (by the data and the classifier, or before a resume); the clock runs from here.
    Evaluating is not training: the loop evaluates inside :meth:`paused`, and
    ``paused_seconds`` adds up the wall time it took (``paused``: that of earlier runs).
    """

    def __init__(
        self, steps: int | None, seconds: float | None, elapsed: float = 0.0, paused: float = 0.0
    ) -> None:
        self.steps, self.seconds, self.paused_seconds = steps, seconds, paused
        self._start = time.perf_counter() - elapsed

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._start

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The time the block takes does not count against the budget."""
        start = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - start
            self._start += spent
            self.paused_seconds += spent

    def fraction(self, step: int) -> float:
        """How much of the budget is spent, in [0, 1]: the larger of steps and time."""
        parts = []
        if self.steps is not None:
            parts.append(step / self.steps if self.steps > 0 else 1.0)
        if self.seconds is not None:
            parts.append(self.elapsed / self.seconds if self.seconds > 0 else 1.0)
        return min(max(parts), 1.0)


def steps_for(epochs: float | None, n: int, batch_size: int) -> int | None:
    """An epochs budget in steps (an epoch is the full batches of ``n`` images, at least one)."""
    return None if epochs is None else math.ceil(epochs * max(n // batch_size, 1))


def cosine(lr: float, fraction: float) -> float:
    """The learning rate once ``fraction`` of the budget is spent: ``lr`` down to zero."""
    return 0.5 * lr * (1 + math.cos(math.pi * fraction))


def batches(
    n: int, batch_size: int, budget: Budget, step: int, generator: torch.Generator
) -> Iterator[tuple[Tensor, float]]:
    """Each step's minibatch (indices into the ``n`` images) and how much of the budget is
    spent before it, until the budget runs out.

    Every epoch is a fresh shuffle from ``generator``. Its last incomplete batch is dropped
    (every step then has the same size), except that fewer than ``batch_size`` images are
    one batch. ``step`` counts the steps made before, so a resumed run continues its
    schedule; each batch yielded is one step more.
    """
    per_epoch = max(n // batch_size, 1)
    while budget.fraction(step) < 1.0:
        order = torch.randperm(n, generator=generator)
        for b in range(per_epoch):
            fraction = budget.fraction(step)
            if fraction >= 1.0:
                return
            yield order[b * batch_size : (b + 1) * batch_size], fraction
            step += 1


def train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor, lr: float
) -> Tensor:
    """One optimizer step on the cross-entropy of a minibatch (per pixel for the FCN, per digit
    for the classifier) at learning rate ``lr``; returns the loss."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def train_classifier(
    config: TrainConfig,
    *,
    device: torch.device | None = None,
    progress: bool = True,
    deadline: float | None = None,
) -> tuple[MnistClassifier, float, float]:
    """Train :class:`MnistClassifier` on MNIST train; return it, test accuracy and seconds.

    Adam with a cosine schedule for ``config.classifier_epochs`` epochs, every digit shifted
    at random by up to ``config.classifier_shift`` pixels (:func:`random_shift`). Short and
    shifted, because the classifier's job here is to hand the FCN features that recognise
    digits off centre; the accuracy returned is on the (centred) MNIST test digits.

    The classifier's budget is epochs, not seconds (its recipe must not depend on the
    machine's speed). ``deadline`` (a ``time.perf_counter()`` value) is when the FCN's
    wall-clock budget runs out: the stage measures its own pace (from the end of step 1,
    which pays for allocations and kernel choice) and raises :class:`BudgetError` within
    its first steps when it would end after the deadline, rather than spend the whole
    budget and leave the FCN none.
    """
    device = pick_device(device)
    torch.manual_seed(config.seed)
    start = time.perf_counter()
    images, labels = load_digits(True, config.source)
    model = MnistClassifier().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.classifier_lr)
    batch_size = config.classifier_batch_size
    total = steps_for(config.classifier_epochs, len(images), batch_size)
    generator = torch.Generator().manual_seed(config.seed)
    if deadline is not None and time.perf_counter() >= deadline:
        raise BudgetError(_no_room(config, "making the data"))
    step = 0
    model.train()
    bar = tqdm(total=total, desc="classifier", disable=not progress, **BAR)
    budget = Budget(total, None)
    try:
        for idx, fraction in batches(len(images), batch_size, budget, step, generator):
            with deferred_interrupts():  # see train_fcn
                x = random_shift(images[idx], config.classifier_shift, generator).to(device)
                lr = cosine(config.classifier_lr, fraction)
                loss = train_step(model, optimizer, x, labels[idx].to(device), lr)
                step += 1
            if progress:  # loss.item() waits for the device: only when someone looks
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.3f}", s=f"{budget.elapsed:.0f}", refresh=False)
            if deadline is not None:  # will the pace so far end the stage in time?
                now = time.perf_counter()
                if step == 1:
                    paced_from = now
                elif step >= PACE_STEPS:
                    finish = now + (total - step) * (now - paced_from) / (step - 1)
                    if finish >= deadline:
                        raise BudgetError(_no_room(config, f"the classifier ({total} steps)"))
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    test_images, test_labels = load_digits(False, config.source)
    return model, evaluate_classifier(model, test_images, test_labels), seconds


def _no_room(config: TrainConfig, stage: str) -> str:
    return (
        f"the budget of {config.seconds:g} s cannot cover {stage} and leave the FCN any "
        "training: raise --seconds, or lower --classifier-epochs or --train-images"
    )


def train_fcn(
    model: nn.Module,
    train: Split,
    test: Split | None,
    config: FitConfig,
    *,
    device: torch.device | None = None,
    progress: bool = True,
    state: dict[str, object] | None = None,
    elapsed: float = 0.0,
    callback: Callable[[nn.Module, int, list[dict[str, object]]], None] | None = None,
) -> dict[str, object]:
    """Train ``model`` on ``train`` within the config's budget, evaluating ``test`` now and then.

    ``model`` is any net mapping (N, 1, H, W) images to (N, 11, H, W) scores -- a
    :class:`~tinyfcn.model.TinyFCN` or a student's own; only its trainable parameters are
    optimised. ``train`` and ``test`` are splits in any form :func:`~tinyfcn.data.as_tensors`
    takes. ``config`` is a :class:`FitConfig` (a :class:`TrainConfig` is one). ``elapsed`` is
    wall time already spent by the run (data, classifier) and counts against ``seconds``.
    ``state`` resumes from a checkpoint's training state. Returns the new training state:
    optimizer state, step, elapsed seconds and the history, a list of ``{"seconds", "step",
    "eval_seconds", **metrics}`` (the clock is paused while evaluating; ``eval_seconds`` is the
    wall time those pauses added up to, resumed runs included), one point per evaluation and
    none repeated: the final evaluation is skipped when the last point already scored the
    final weights.

    ``callback(model, step, history)``, when given, runs after every step: a live curve, or
    a stop button (a ``KeyboardInterrupt`` raised there stops the run as Ctrl-C does).
    """
    device = pick_device(device)
    model.to(device)
    images, labels = as_tensors(train)
    test = None if test is None else as_tensors(test)
    with torch.no_grad():  # a net of the wrong shape fails here, in one line
        check_scores(model.eval()(images[:1].to(device)), images[:1])
    state = state or {}
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad],
        lr=config.lr,
        weight_decay=config.weight_decay,
    )
    if "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    first = step = int(state.get("step", 0))
    history: list[dict[str, object]] = list(state.get("history", []))
    generator = torch.Generator().manual_seed(config.seed + step)
    total = steps_for(config.epochs, len(images), config.batch_size)
    evaluating = test is not None and config.eval_every > 0

    def point() -> dict[str, object]:
        with budget.paused():  # evaluating is not training
            metrics = evaluate(model, test)
        when = {"seconds": budget.elapsed, "step": step, "eval_seconds": budget.paused_seconds}
        return {**when, **metrics}

    def reached() -> dict[str, object]:
        return {
            "optimizer": optimizer.state_dict(),
            "step": step,
            "elapsed": budget.elapsed,
            "history": history,
        }

    label = getattr(model, "variant", type(model).__name__)  # a student's net has no variant
    bar = tqdm(total=total, initial=step, desc=label, disable=not progress, **BAR)
    evaluated = float(history[-1].get("eval_seconds", 0.0)) if history else 0.0
    budget = Budget(total, config.seconds, float(state.get("elapsed", elapsed)), evaluated)
    next_eval = budget.elapsed + config.eval_every
    model.train()
    try:
        for idx, fraction in batches(len(images), config.batch_size, budget, step, generator):
            # A Ctrl-C in the middle of optimizer.step() would leave half the weights
            # updated: signals wait for the step to complete, so the model, the optimizer
            # and ``step`` always agree when an interrupt is saved.
            with deferred_interrupts():
                x, y = images[idx].to(device), labels[idx].to(device)
                loss = train_step(model, optimizer, x, y, cosine(config.lr, fraction))
                step += 1
            if progress:  # loss.item() waits for the device: only when someone looks
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.3f}", s=f"{budget.elapsed:.0f}", refresh=False)
            if evaluating and budget.elapsed >= next_eval:  # a point of the history
                next_eval += config.eval_every
                history.append(point())
                model.train()
            if callback is not None:
                callback(model, step, history)
    except KeyboardInterrupt:
        raise TrainingInterrupted(reached(), step - first) from None
    finally:
        bar.close()
    if step == first:  # the budget was spent before: a "trained" result would be a lie
        spent = f"step {step}, {budget.elapsed:.1f} s" if first else f"{budget.elapsed:.1f} s"
        raise BudgetError(
            f"no FCN step fits in the budget (epochs {config.epochs}, seconds "
            f"{config.seconds}): {spent} were already spent; give a larger budget"
        )
    # A point at this very step (the budget ran out just after an evaluation) already
    # scored these weights.
    if test is not None and (not history or history[-1]["step"] != step):
        history.append(point())
    return reached()
