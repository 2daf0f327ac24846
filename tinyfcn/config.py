"""What defines a training run, as dataclasses that a checkpoint can carry.

:class:`TrainConfig`, the whole recipe (data, classifier, FCN), extends :class:`FitConfig`,
only what the FCN stage's loop reads -- budget, batch size, learning rate, evaluation pace
-- so that :func:`~tinyfcn.loop.train_fcn` can train any net, a student's own included,
without a recipe naming a known variant. Both are plain Python (no tensors, no paths to
open) so that :func:`~tinyfcn.checkpoint.save_checkpoint` stores one as a dict and
``weights_only=True`` loading can rebuild it. Each refuses a bad value when it is made, so
the API and the CLI (whose :class:`~fcnbase.UsageError` it raises) reject the same mistakes
with the same words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fcnbase import UsageError
from tinyfcn.model import VARIANTS


def _check(config: FitConfig, counts: tuple[str, ...], numbers: tuple[str, ...]) -> None:
    """Refuse counts below 1, and numbers that are not finite and >= 0 (lr: > 0).

    UsageError is a ValueError: the API and the CLI refuse the same mistakes alike.
    """
    if config.epochs is None and config.seconds is None:
        raise UsageError("give a budget: epochs, seconds, or both")
    for name in counts:
        value = getattr(config, name)
        if value is not None and value < 1:
            raise UsageError(f"{name} must be >= 1, got {value}")
    # NaN compares false with everything ("nan < 0" is false) and a NaN budget never runs
    # out: only finite numbers pass. A learning rate of 0 would "train" without learning.
    for name in numbers:
        value = getattr(config, name)
        positive = name in ("lr", "classifier_lr")
        if value is not None and (
            not math.isfinite(value) or value < 0 or (positive and value == 0)
        ):
            bound = "> 0" if positive else ">= 0"
            raise UsageError(f"{name} must be a finite number {bound}, got {value}")


_FIT_NUMBERS = ("epochs", "seconds", "eval_every", "weight_decay", "lr")


@dataclass
class FitConfig:
    """The FCN stage alone: what :func:`~tinyfcn.loop.train_fcn` needs to train any net.

    :class:`TrainConfig`, the whole recipe, extends it, so ``train_fcn`` reads the FCN
    stage's settings the same way from either.
    """

    epochs: float | None = None  # None: seconds only
    seconds: float | None = 60.0  # wall-clock budget; None: epochs only
    # 4, not 16: this net is so small that a step's cost is nearly per image (a 2-core CPU
    # makes about as many images/s at 4 as at 16), so small batches buy 4x the updates.
    # 180 s on this 2-core sandbox: mIoU 0.93 at batch 4, 0.89 at 16 (docs/tinyfcn.md).
    batch_size: int = 4
    lr: float = 1e-2
    weight_decay: float = 0.0
    eval_every: float = 30.0  # seconds between history points (the clock pauses to evaluate)
    seed: int = 0  # the order of the minibatches (a recipe's data and init too)

    def __post_init__(self) -> None:
        _check(self, ("batch_size",), _FIT_NUMBERS)


@dataclass
class TrainConfig(FitConfig):
    """Everything that defines a run: data, classifier, and the FCN stage it extends."""

    seconds: float | None = 290.0  # wall-clock budget of the whole run; None: epochs only
    variant: str = "fcn1s"
    pretrained: bool = True  # start from the trained classifier (False: the ablation)
    learnable_upsampling: bool = True
    train_images: int = 5000
    test_images: int = 1000
    source: str | None = None  # MNIST source for m2nist: None, "sample" or a folder
    classifier_epochs: float = 3.0
    classifier_batch_size: int = 128
    classifier_lr: float = 3e-3
    classifier_shift: int = 8  # random translations of up to +-shift pixels while training it
    # CPU threads for the run (None: torch's count as it is). One: the tiny nets step fastest
    # on one, idle or beside a busy process (docs/tinyfcn.md has the figures).
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise UsageError(f"unknown variant {self.variant!r}; choose one of {VARIANTS}")
        counts = ("train_images", "test_images", "batch_size", "classifier_batch_size")
        numbers = ("classifier_epochs", "classifier_shift", "classifier_lr")
        _check(self, (*counts, "threads"), (*_FIT_NUMBERS, *numbers))
