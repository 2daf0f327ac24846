"""The recipes: :func:`run`, the whole of it, and :func:`fit`, its FCN stage for any net.

:func:`run` trains the MNIST classifier, converts it into a tiny FCN
(:class:`~tinyfcn.model.TinyFCN`), trains that on M2NIST and evaluates it on the test
split, saving a checkpoint on the way out (or on Ctrl-C): the API that the CLI, benchmark
and notebooks call. :func:`fit` trains any ``nn.Module`` -- a student's encoder-decoder as
well as a TinyFCN -- through the same loop, with plain keyword arguments. Each stage is
also a function of its own, in the module of its concept (:mod:`tinyfcn.config`,
:mod:`~tinyfcn.data`, :mod:`~tinyfcn.loop`, :mod:`~tinyfcn.evaluation`,
:mod:`~tinyfcn.checkpoint`, :mod:`~tinyfcn.plot`), so coursework can swap one part and keep
the rest. Both set torch's CPU thread count when they start and restore it when they end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from fcnbase import deferred_interrupts, pick_device, torch_threads
from tinyfcn.checkpoint import load_checkpoint, save_checkpoint
from tinyfcn.config import FitConfig, TrainConfig
from tinyfcn.data import Split, load_m2nist
from tinyfcn.loop import HISTORY_KEYS, TrainingInterrupted, train_classifier, train_fcn
from tinyfcn.model import TinyFCN


@dataclass
class RunResult:
    """What :func:`run` produced."""

    model: TinyFCN
    config: TrainConfig
    metrics: dict[str, object]
    history: list[dict[str, object]]
    classifier_accuracy: float | None = None
    classifier_seconds: float | None = None
    seconds: float = 0.0  # wall time of the run, evaluation pauses excluded
    test: Split | None = None  # the split the metrics were computed on


def run(
    config: TrainConfig,
    *,
    checkpoint: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    device: torch.device | None = None,
    progress: bool = True,
    data: tuple[Split, Split] | None = None,
    callback: Callable[[nn.Module, int, list[dict[str, object]]], None] | None = None,
) -> RunResult:
    """Classifier -> conversion -> FCN on M2NIST -> evaluation, from scratch or resumed.

    The clock starts before the data is generated: ``result.seconds`` is the honest
    wall time of the recipe (evaluations for the history excluded). ``resume`` continues
    a checkpoint's training (weights, optimizer, step, clock) to the config's budget; the
    classifier stage is then skipped. ``checkpoint`` is where to save the result.

    ``data`` is a ``(train, test)`` pair to train and score on instead of the
    :func:`load_m2nist` splits the config describes: a homework's own set, or the
    :class:`m2nist.M2NIST` splits of a folder ``m2nist-gen`` wrote (any split
    :func:`~tinyfcn.data.as_tensors` takes). The run uses ``config.threads`` CPU threads.
    ``callback`` is :func:`~tinyfcn.loop.train_fcn`'s: called after every FCN step.

    A seconds budget covers the whole recipe, so the classifier stage is held to it (see
    :func:`train_classifier`'s ``deadline``) and a run that made no FCN step raises
    :class:`BudgetError` instead of returning an untrained model. On Ctrl-C during FCN
    training the model reached so far is saved to ``checkpoint`` (resumable) and a
    ``KeyboardInterrupt`` says where; without a step made, nothing is saved.
    """
    device = pick_device(device)
    start = time.perf_counter()
    deadline = None if config.seconds is None else start + config.seconds
    accuracy = classifier_seconds = None
    # A wrong or broken checkpoint is reported before any data is made or downloaded.
    resumed = load_checkpoint(resume, map_location=device, expect=config) if resume else None
    with torch_threads(config.threads):
        train, test = data or load_m2nist(
            config.train_images, config.test_images, config.seed, config.source
        )
        if resumed is not None:
            model, state = resumed[0], resumed[1]["train_state"]
        else:
            classifier, state = None, None
            if config.pretrained:
                classifier, accuracy, classifier_seconds = train_classifier(
                    config, device=device, progress=progress, deadline=deadline
                )
            torch.manual_seed(config.seed)
            model = TinyFCN(
                config.variant, classifier, learnable_upsampling=config.learnable_upsampling
            )
        try:
            state = train_fcn(
                model,
                train,
                test,
                config,
                device=device,
                progress=progress,
                state=state,
                elapsed=time.perf_counter() - start,
                callback=callback,
            )
        except TrainingInterrupted as stop:
            if not stop.new_steps:
                raise KeyboardInterrupt("no FCN step was made; nothing saved") from None
            if checkpoint is None:
                raise KeyboardInterrupt("no checkpoint path was given; nothing saved") from None
            _save_for_good(checkpoint, model, config, stop.state)
            raise KeyboardInterrupt(f"checkpoint saved to {checkpoint}") from None
    if checkpoint is not None:
        _save_for_good(checkpoint, model, config, state)
    history = state["history"]
    return RunResult(
        model=model,
        config=config,
        metrics={k: v for k, v in history[-1].items() if k not in HISTORY_KEYS},
        history=history,
        classifier_accuracy=accuracy,
        classifier_seconds=classifier_seconds,
        seconds=float(state["elapsed"]),
        test=test,
    )


def fit(
    model: nn.Module,
    train: Split,
    test: Split | None = None,
    *,
    seconds: float | None = None,
    epochs: float | None = None,
    batch_size: int = 4,
    lr: float = 1e-2,
    weight_decay: float = 0.0,
    eval_every: float = 30.0,
    seed: int = 0,
    threads: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> list[dict[str, object]]:
    """Train any segmentation net on ``train`` with the recipe's loop; return its history.

    ``model`` maps (N, 1, H, W) images in [0, 1] to (N, 11, H, W) scores: a
    :class:`~tinyfcn.model.TinyFCN`, a :func:`~tinyfcn.bundled.pretrained` one to
    fine-tune, or a student's own ``nn.Module`` -- nothing else is asked of it. ``train``
    and ``test`` are splits in any form :func:`~tinyfcn.data.as_tensors` takes. The net is
    trained in place (Adam, per-pixel cross-entropy, a cosine learning rate over the budget:
    exactly :func:`~tinyfcn.loop.train_fcn`) for ``seconds`` of training and/or ``epochs`` of
    ``train``, whichever runs out first (give at least one; epochs alone are deterministic
    for a seed and a thread count on CPU). With a ``test`` split, the history holds its
    metrics every ``eval_every`` seconds and once at the end, as ``{"seconds", "step",
    "eval_seconds", "mean_iou", ...}``; without one it is empty. ``threads``: torch's CPU
    threads for the run (None: as torch has them).

    ``seconds`` is training time: the clock stops while the net is evaluated, so a budget
    means the same training whatever ``eval_every`` is. The wall time is longer by the
    evaluations, and the history says by how much: ``history[-1]["eval_seconds"]``.
    The model and the data are checked before training: a net whose scores are not
    (N, 11, H, W) for (N, 1, H, W) images, or data of the wrong shape, type or label
    range, is a one-line ``ValueError`` that says what was expected and what it got.
    """
    config = FitConfig(
        epochs=epochs,
        seconds=seconds,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        eval_every=eval_every,
        seed=seed,
    )
    with torch_threads(threads):
        state = train_fcn(model, train, test, config, device=pick_device(device), progress=progress)
    return state["history"]


def _save_for_good(
    path: str | os.PathLike, model: TinyFCN, config: TrainConfig, state: dict[str, object]
) -> None:
    """Save a checkpoint that an impatient Ctrl-C cannot abandon half-way; one arriving
    during the save is reported once it is done, with where it went."""
    try:
        with deferred_interrupts():
            save_checkpoint(path, model, config, state)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"checkpoint saved to {path}") from None
