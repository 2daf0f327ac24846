"""Training, evaluation and checkpoints: the API that the CLI, benchmark and notebooks call.

The whole recipe, from scratch, is :func:`run`: train the MNIST classifier, convert it
into a tiny FCN (:class:`~tinyfcn.model.TinyFCN`), train that on M2NIST, evaluate on the
test split. Each stage is also a function of its own (:func:`train_classifier`,
:func:`train_fcn`, :func:`evaluate`) so coursework can swap one part and keep the rest.

Budgets are in epochs and/or wall-clock seconds; training stops at whichever runs out
first. The learning rate follows a cosine from ``lr`` to zero over the budget: measured
in steps when only epochs are given (fully deterministic for a seed on CPU), in elapsed
time when seconds are given (so a time-boxed run still anneals before its deadline).
Every run records a history of ``(seconds, metrics)`` so curves can be plotted.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from fcnbase import CliError, UsageError, atomic_write, deferred_interrupts, pick_device
from m2nist.dataset import to_tensors
from m2nist.viz import colorize
from tinyfcn.classifier import MnistClassifier
from tinyfcn.metrics import ConfusionMatrix
from tinyfcn.model import NUM_CLASSES, VARIANTS, TinyFCN

__all__ = [
    "CLASS_NAMES",
    "Budget",
    "BudgetError",
    "CheckpointError",
    "M2nistData",
    "RunResult",
    "TrainConfig",
    "TrainingInterrupted",
    "evaluate",
    "evaluate_classifier",
    "load_checkpoint",
    "load_digits",
    "load_m2nist",
    "pick_device",
    "plot_predictions",
    "predict",
    "random_shift",
    "run",
    "save_checkpoint",
    "train_classifier",
    "train_fcn",
]

CLASS_NAMES = [str(d) for d in range(10)] + ["background"]
CHECKPOINT_FORMAT = "tinyfcn-checkpoint-v1"


@dataclass
class TrainConfig:
    """Everything that defines a run; plain Python so it can live in a checkpoint."""

    variant: str = "fcn1s"
    pretrained: bool = True  # start from the trained classifier (False: the ablation)
    learnable_upsampling: bool = True
    train_images: int = 5000
    test_images: int = 1000
    seed: int = 0
    source: str | None = None  # MNIST source for m2nist: None, "sample" or a folder
    classifier_epochs: float = 3.0
    classifier_batch_size: int = 128
    classifier_lr: float = 3e-3
    classifier_shift: int = 8  # random translations of up to +-shift pixels while training it
    epochs: float | None = None  # FCN budget; None: seconds only
    seconds: float | None = 290.0  # wall-clock budget of the whole run; None: epochs only
    batch_size: int = 16
    lr: float = 1e-2
    weight_decay: float = 0.0
    eval_every: float = 30.0  # seconds between history points (the clock pauses to evaluate)

    def __post_init__(self) -> None:
        # UsageError is a ValueError: the API and the CLI refuse the same mistakes alike.
        if self.variant not in VARIANTS:
            raise UsageError(f"unknown variant {self.variant!r}; choose one of {VARIANTS}")
        if self.epochs is None and self.seconds is None:
            raise UsageError("give a budget: epochs, seconds, or both")
        for name in ("train_images", "test_images", "batch_size", "classifier_batch_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be >= 1, got {getattr(self, name)}")
        # NaN compares false with everything ("nan < 0" is false) and a NaN budget never runs
        # out: only finite numbers pass. A learning rate of 0 would "train" without learning.
        for name in (
            *("epochs", "seconds", "classifier_epochs", "classifier_shift", "eval_every"),
            *("weight_decay", "lr", "classifier_lr"),
        ):
            value = getattr(self, name)
            positive = name in ("lr", "classifier_lr")
            if value is not None and (
                not math.isfinite(value) or value < 0 or (positive and value == 0)
            ):
                bound = "> 0" if positive else ">= 0"
                raise UsageError(f"{name} must be a finite number {bound}, got {value}")


class BudgetError(CliError):
    """The wall-clock budget cannot pay for an FCN step: a run that trained nothing must
    not look like one that trained (exit 1, nothing saved)."""


class CheckpointError(ValueError):
    """A file that is not a usable tinyfcn checkpoint; the message names the file."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during training, always raised *between* two complete steps.

    ``step`` counts the steps done in total and ``new_steps`` those done by this call;
    :func:`train_fcn` adds ``state``, a complete training state (what it returns on
    success), so the run can be saved and resumed exactly where it stopped.
    """

    def __init__(self, step: int, new_steps: int) -> None:
        super().__init__()
        self.step, self.new_steps = step, new_steps
        self.state: dict[str, object] | None = None


# -- data ---------------------------------------------------------------------------------


@dataclass
class M2nistData:
    """One split as tensors: images float (N, 1, H, W) in [0, 1], labels int64 (N, H, W)."""

    images: Tensor
    labels: Tensor

    def __post_init__(self) -> None:
        if self.images.dim() != 4 or self.labels.dim() != 3:
            raise ValueError(
                f"expected images (N, 1, H, W) and labels (N, H, W), got "
                f"{tuple(self.images.shape)} and {tuple(self.labels.shape)}"
            )
        if self.images.shape[0] != self.labels.shape[0] or (
            self.images.shape[-2:] != self.labels.shape[-2:]
        ):
            raise ValueError(
                f"images {tuple(self.images.shape)} and labels {tuple(self.labels.shape)} "
                "do not match"
            )

    def __len__(self) -> int:
        return self.images.shape[0]

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray) -> M2nistData:
        """From M2NIST's uint8 arrays (labels 0-9 digits, 10 background)."""
        return cls(*to_tensors(images, labels))


def load_m2nist(config: TrainConfig) -> tuple[M2nistData, M2nistData]:
    """Train and test splits, generated from MNIST train and MNIST test digits."""
    import m2nist

    train = m2nist.generate(
        config.train_images, split="train", seed=config.seed, source=config.source
    )
    test = m2nist.generate(config.test_images, split="test", seed=config.seed, source=config.source)
    return (
        M2nistData.from_arrays(train.images, train.labels),
        M2nistData.from_arrays(test.images, test.labels),
    )


def load_digits(train: bool, source: str | None) -> tuple[Tensor, Tensor]:
    """MNIST digits as float (N, 1, 28, 28) in [0, 1] and int64 labels."""
    import m2nist

    return to_tensors(*m2nist.load_mnist(train, source=source))


# -- the training loop --------------------------------------------------------------------


class Budget:
    """Tracks progress through an epochs and/or seconds budget; the clock can be paused."""

    def __init__(self, steps: int | None, seconds: float | None, elapsed: float = 0.0) -> None:
        self.steps, self.seconds = steps, seconds
        self._banked = elapsed
        self._start: float | None = None

    def start(self) -> None:
        self._start = time.perf_counter()

    def pause(self) -> None:
        if self._start is not None:
            self._banked += time.perf_counter() - self._start
            self._start = None

    @property
    def elapsed(self) -> float:
        running = time.perf_counter() - self._start if self._start is not None else 0.0
        return self._banked + running

    def fraction(self, step: int) -> float:
        """How much of the budget is spent, in [0, 1]: the larger of steps and time."""
        parts = []
        if self.steps is not None:
            parts.append(step / self.steps if self.steps > 0 else 1.0)
        if self.seconds is not None:
            parts.append(self.elapsed / self.seconds if self.seconds > 0 else 1.0)
        return min(max(parts), 1.0)


def _cosine(lr: float, fraction: float) -> float:
    return 0.5 * lr * (1 + math.cos(math.pi * fraction))


def _fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: Tensor,
    targets: Tensor,
    *,
    batch_size: int,
    lr: float,
    budget: Budget,
    step: int,
    generator: torch.Generator,
    device: torch.device,
    desc: str,
    progress: bool,
    on_tick: Callable[[int], None] | None = None,
    augment: Callable[[Tensor], Tensor] | None = None,
) -> int:
    """Minibatch cross-entropy with a cosine schedule until the budget is spent.

    Returns the number of steps taken in total (``step`` counts those done before a
    resume, so the schedule continues where it stopped). ``on_tick(step)`` runs after
    every step; it may pause the budget's clock to evaluate.
    """
    model.train()
    n = len(images)
    first = step
    bar = tqdm(total=budget.steps, initial=step, desc=desc, disable=not progress, leave=False)
    budget.start()
    try:
        while budget.fraction(step) < 1.0:
            order = torch.randperm(n, generator=generator)
            for i in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
                fraction = budget.fraction(step)
                if fraction >= 1.0:
                    break
                # A Ctrl-C in the middle of optimizer.step() would leave half the weights
                # updated: signals wait for the step to complete, so the model, the
                # optimizer and ``step`` always agree when an interrupt is saved.
                with deferred_interrupts():
                    for group in optimizer.param_groups:
                        group["lr"] = _cosine(lr, fraction)
                    idx = order[i : i + batch_size]
                    x = images[idx] if augment is None else augment(images[idx])
                    x, y = x.to(device), targets[idx].to(device)
                    loss = F.cross_entropy(model(x), y)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    step += 1
                if progress:  # loss.item() waits for the device: only when someone looks
                    bar.update()
                    bar.set_postfix(loss=f"{loss.item():.3f}", s=f"{budget.elapsed:.0f}")
                if on_tick is not None:
                    on_tick(step)
    except KeyboardInterrupt:
        raise TrainingInterrupted(step, step - first) from None
    finally:
        budget.pause()
        bar.close()
    return step


def random_shift(images: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Translate each image by its own random offset in ``[-max_shift, max_shift]``, filling
    with zeros (background).

    MNIST digits are centred, so a classifier trained on them only recognises a digit
    seen through a window centred on it. Segmentation asks every pixel of a digit for its
    class, i.e. the converted net's 28x28 windows see digits up to ~10 pixels off centre;
    shifting while training the classifier prepares it for that.
    """
    if max_shift <= 0:
        return images
    n, _, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n, 1), generator=generator)
    rows = (dy + torch.arange(h))[:, :, None]
    cols = (dx + torch.arange(w))[:, None, :]
    return padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)


def _steps(epochs: float | None, n: int, batch_size: int) -> int | None:
    return None if epochs is None else math.ceil(epochs * max(n // batch_size, 1))


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
    wall-clock budget runs out: the stage measures its own pace and raises
    :class:`BudgetError` within its first steps when it would end after the deadline,
    rather than spend the whole budget and leave the FCN none.
    """
    device = pick_device(device)
    torch.manual_seed(config.seed)
    start = time.perf_counter()
    images, labels = load_digits(True, config.source)
    model = MnistClassifier().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.classifier_lr)
    total = _steps(config.classifier_epochs, len(images), config.classifier_batch_size)
    budget = Budget(total, None)
    generator = torch.Generator().manual_seed(config.seed)
    on_tick = None if deadline is None else _pace_check(total, deadline, config)
    if deadline is not None and time.perf_counter() >= deadline:
        raise BudgetError(_no_room(config, "making the data"))
    _fit(
        model, optimizer, images, labels,
        batch_size=config.classifier_batch_size, lr=config.classifier_lr, budget=budget, step=0,
        generator=generator, device=device, desc="classifier", progress=progress,
        on_tick=on_tick, augment=lambda x: random_shift(x, config.classifier_shift, generator),
    )  # fmt: skip
    seconds = time.perf_counter() - start
    test_images, test_labels = load_digits(False, config.source)
    return model, evaluate_classifier(model, test_images, test_labels), seconds


#: Classifier steps timed before judging its pace: the first ones pay for warm-up.
PACE_STEPS = 3


def _pace_check(total: int, deadline: float, config: TrainConfig) -> Callable[[int], None]:
    """An ``on_tick`` for the classifier: from its pace so far, will it end before ``deadline``?

    The pace is measured from the end of step 1 (step 1 pays for allocations and kernel
    choice, and would make the estimate pessimistic).
    """
    marks: dict[int, float] = {}

    def check(step: int) -> None:
        now = time.perf_counter()
        if step == 1:
            marks[1] = now
        if step < PACE_STEPS or 1 not in marks:
            return
        finish = now + (total - step) * (now - marks[1]) / (step - 1)
        if finish >= deadline:
            raise BudgetError(_no_room(config, f"the classifier ({total} steps)"))

    return check


def _no_room(config: TrainConfig, stage: str) -> str:
    return (
        f"the budget of {config.seconds:g} s cannot cover {stage} and leave the FCN any "
        "training: raise --seconds, or lower --classifier-epochs or --train-images"
    )


@torch.no_grad()
def evaluate_classifier(model: nn.Module, images: Tensor, labels: Tensor) -> float:
    """Top-1 accuracy on 28x28 digits."""
    model.eval()
    device = next(model.parameters()).device
    hits = sum(
        int((model(images[i : i + 1000].to(device)).argmax(1).cpu() == labels[i : i + 1000]).sum())
        for i in range(0, len(images), 1000)
    )
    return hits / len(images)


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, batch_size: int = 100) -> Tensor:
    """Class index per pixel, (N, H, W) int64 on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat(
        [
            model(images[i : i + batch_size].to(device)).argmax(1).cpu()
            for i in range(0, len(images), batch_size)
        ]
    )


def evaluate(model: nn.Module, data: M2nistData, batch_size: int = 100) -> dict[str, object]:
    """The paper's four metrics (and per-class IoU) from one confusion matrix over ``data``."""
    matrix = ConfusionMatrix(NUM_CLASSES)
    for i in range(0, len(data), batch_size):
        labels = data.labels[i : i + batch_size]
        matrix.update(predict(model, data.images[i : i + batch_size], batch_size), labels)
    return matrix.compute()


def train_fcn(
    model: TinyFCN,
    train: M2nistData,
    test: M2nistData | None,
    config: TrainConfig,
    *,
    device: torch.device | None = None,
    progress: bool = True,
    state: dict[str, object] | None = None,
    elapsed: float = 0.0,
) -> dict[str, object]:
    """Train ``model`` on ``train`` within the config's budget, evaluating ``test`` now and then.

    ``elapsed`` is wall time already spent by the run (data, classifier) and counts against
    ``config.seconds``. ``state`` resumes from a checkpoint's training state. Returns the
    new training state: optimizer state, step, elapsed seconds and the history, a list of
    ``{"seconds", "step", **metrics}`` (the clock is paused while evaluating).
    """
    device = pick_device(device)
    model.to(device)
    state = state or {}
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad],
        lr=config.lr, weight_decay=config.weight_decay,
    )  # fmt: skip
    if "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    step = int(state.get("step", 0))
    elapsed = float(state.get("elapsed", elapsed))
    history: list[dict[str, object]] = list(state.get("history", []))
    generator = torch.Generator().manual_seed(config.seed + step)
    budget = Budget(_steps(config.epochs, len(train), config.batch_size), config.seconds, elapsed)
    next_eval = budget.elapsed + config.eval_every

    def point(step: int) -> dict[str, object]:
        return {"seconds": budget.elapsed, "step": step, **evaluate(model, test)}

    def on_tick(step: int) -> None:
        nonlocal next_eval
        if test is None or config.eval_every <= 0 or budget.elapsed < next_eval:
            return
        next_eval += config.eval_every
        budget.pause()
        history.append(point(step))
        model.train()
        budget.start()

    def reached(step: int) -> dict[str, object]:
        return {
            "optimizer": optimizer.state_dict(),
            "step": step,
            "elapsed": budget.elapsed,
            "history": history,
        }

    first = step
    try:
        step = _fit(
            model, optimizer, train.images, train.labels,
            batch_size=config.batch_size, lr=config.lr, budget=budget, step=step,
            generator=generator, device=device, desc=f"{model.variant}", progress=progress,
            on_tick=on_tick,
        )  # fmt: skip
    except TrainingInterrupted as stop:
        stop.state = reached(stop.step)
        raise
    if step == first:  # the budget was spent before: a "trained" result would be a lie
        spent = f"step {step}, {budget.elapsed:.1f} s" if first else f"{budget.elapsed:.1f} s"
        raise BudgetError(
            f"no FCN step fits in the budget (epochs {config.epochs}, seconds "
            f"{config.seconds}): {spent} were already spent; give a larger budget"
        )
    if test is not None:  # _fit has paused the clock
        history.append(point(step))
    return reached(step)


# -- the whole recipe ---------------------------------------------------------------------


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
    test: M2nistData | None = None  # the split the metrics were computed on


def run(
    config: TrainConfig,
    *,
    checkpoint: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    device: torch.device | None = None,
    progress: bool = True,
    data: tuple[M2nistData, M2nistData] | None = None,
) -> RunResult:
    """Classifier -> conversion -> FCN on M2NIST -> evaluation, from scratch or resumed.

    The clock starts before the data is generated: ``result.seconds`` is the honest
    wall time of the recipe (evaluations for the history excluded). ``resume`` continues
    a checkpoint's training (weights, optimizer, step, clock) to the config's budget; the
    classifier stage is then skipped. ``checkpoint`` is where to save the result.

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
    train, test = data if data is not None else load_m2nist(config)
    if resumed is not None:
        model, saved = resumed
        state = saved["train_state"]
    else:
        classifier = None
        if config.pretrained:
            classifier, accuracy, classifier_seconds = train_classifier(
                config, device=device, progress=progress, deadline=deadline
            )
        torch.manual_seed(config.seed)
        model = TinyFCN(
            config.variant, classifier, learnable_upsampling=config.learnable_upsampling
        )
        state = None
    spent = time.perf_counter() - start
    try:
        state = train_fcn(
            model, train, test, config, device=device, progress=progress, state=state,
            elapsed=spent,
        )  # fmt: skip
    except TrainingInterrupted as stop:
        if not stop.new_steps or stop.state is None:
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
        metrics={k: v for k, v in history[-1].items() if k not in ("seconds", "step")},
        history=history,
        classifier_accuracy=accuracy,
        classifier_seconds=classifier_seconds,
        seconds=float(state["elapsed"]),
        test=test,
    )


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


# -- checkpoints --------------------------------------------------------------------------


def save_checkpoint(
    path: str | os.PathLike,
    model: TinyFCN,
    config: TrainConfig,
    train_state: dict[str, object] | None = None,
) -> None:
    """Save ``{"format", "config", "model", "state_dict", "train_state"}`` atomically.

    Everything but tensors is plain Python, so :func:`load_checkpoint` can use
    ``weights_only=True`` (no pickled code runs when a checkpoint is opened).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": asdict(config),
        "model": model.config(),
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "train_state": train_state or {},
    }
    with atomic_write(path) as f:
        torch.save(payload, f)


def load_checkpoint(
    path: str | os.PathLike,
    *,
    map_location: torch.device | str = "cpu",
    expect: TrainConfig | None = None,
) -> tuple[TinyFCN, dict[str, object]]:
    """Rebuild the model a checkpoint holds; return it and the raw checkpoint.

    ``expect`` is the config the caller means to continue with: a checkpoint of another
    variant (or upsampling mode) is refused with a ``ValueError`` that says which.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        saved = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # unpickling errors come in many types; all mean "not ours"
        raise CheckpointError(
            f"{path} is not a readable tinyfcn checkpoint (weights_only torch.load refused it)"
        ) from None
    if not isinstance(saved, dict) or saved.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a tinyfcn checkpoint (no {CHECKPOINT_FORMAT!r} tag)")
    model = _checked_model(path, saved)
    if expect is not None:
        for key in ("variant", "learnable_upsampling"):
            if getattr(model, key) != getattr(expect, key):
                raise CheckpointError(
                    f"{path} holds a {key}={getattr(model, key)!r} model, but {key}="
                    f"{getattr(expect, key)!r} was asked for"
                )
    _check_train_state(path, saved["train_state"], model)
    return model.to(map_location), saved


def _checked_model(path: Path, saved: dict) -> TinyFCN:
    """The model a checkpoint describes, with its weights, or a :class:`CheckpointError`.

    A checkpoint is data from anywhere: every field is checked before use, so a damaged
    or hand-made one is one line naming the file, not a ``KeyError`` deep in the code.
    """
    missing = [k for k in ("config", "model", "state_dict", "train_state") if k not in saved]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)} (a damaged checkpoint?)")
    arch, weights = saved["model"], saved["state_dict"]
    for key, kind in (("config", dict), ("model", dict), ("state_dict", dict)):
        if not isinstance(saved[key], kind):
            raise CheckpointError(f"{path}: {key} is a {type(saved[key]).__name__}, not a dict")
    variant, classes, learnable = (
        arch.get(k) for k in ("variant", "num_classes", "learnable_upsampling")
    )
    if variant not in VARIANTS:
        raise CheckpointError(f"{path}: model variant {variant!r} is not one of {VARIANTS}")
    if not isinstance(classes, int) or isinstance(classes, bool) or not 1 <= classes <= 1000:
        raise CheckpointError(f"{path}: model num_classes {classes!r} is not a class count")
    if not isinstance(learnable, bool):
        raise CheckpointError(f"{path}: model learnable_upsampling {learnable!r} is not a bool")
    model = TinyFCN(variant, num_classes=classes, learnable_upsampling=learnable)
    expected = model.state_dict()
    for name, value in weights.items():
        if name not in expected:
            raise CheckpointError(f"{path}: weight {name!r} is not part of a {variant} model")
        if not isinstance(value, Tensor) or value.shape != expected[name].shape:
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise CheckpointError(
                f"{path}: weight {name!r} is {shape}, a {variant} model needs "
                f"{tuple(expected[name].shape)}"
            )
    absent = [name for name in expected if name not in weights]
    if absent:
        raise CheckpointError(f"{path} lacks the weights {', '.join(absent[:3])}")
    model.load_state_dict(weights)
    return model


def _check_train_state(path: Path, state: object, model: TinyFCN) -> None:
    """Raise :class:`CheckpointError` unless ``state`` can resume ``model``'s training.

    ``{}`` (weights without a training state) is valid: training then starts afresh. The
    optimizer state must hold one Adam group over exactly the model's trainable weights,
    with moments shaped like them: anything else would fail inside the first step.
    """
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: train_state is a {type(state).__name__}, not a dict")
    step, elapsed = state.get("step", 0), state.get("elapsed", 0.0)
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise CheckpointError(f"{path}: train_state step {step!r} is not a step count")
    if not isinstance(elapsed, (int, float)) or not (math.isfinite(elapsed) and elapsed >= 0):
        raise CheckpointError(f"{path}: train_state elapsed {elapsed!r} is not a duration")
    history = state.get("history", [])
    if not isinstance(history, list) or not all(
        isinstance(h, dict) and "step" in h and "seconds" in h and "mean_iou" in h for h in history
    ):
        raise CheckpointError(f"{path}: train_state history is not a list of evaluations")
    if "optimizer" not in state:
        return
    optimizer = state["optimizer"]
    params = [p for p in model.parameters() if p.requires_grad]
    groups = optimizer.get("param_groups") if isinstance(optimizer, dict) else None
    moments = optimizer.get("state") if isinstance(optimizer, dict) else None
    if (
        not isinstance(groups, list)
        or len(groups) != 1
        or not isinstance(groups[0], dict)
        or not isinstance(groups[0].get("params"), list)
        or len(groups[0]["params"]) != len(params)
        or not isinstance(moments, dict)
    ):
        raise CheckpointError(
            f"{path}: its optimizer state does not cover the {len(params)} trainable weights "
            f"of a {model.variant} model"
        )
    ids = groups[0]["params"]
    for key, moment in moments.items():
        if key not in ids or not isinstance(moment, dict):
            raise CheckpointError(f"{path}: optimizer state for unknown weight {key!r}")
        shape = params[ids.index(key)].shape
        for name, value in moment.items():
            if isinstance(value, Tensor) and value.dim() > 0 and value.shape != shape:
                raise CheckpointError(
                    f"{path}: optimizer {name} of weight {key} is {tuple(value.shape)}, "
                    f"the weight is {tuple(shape)}"
                )


# -- pictures -----------------------------------------------------------------------------


def plot_predictions(
    model: nn.Module, data: M2nistData, path: str | os.PathLike | None = None, count: int = 4
):
    """Image, truth and prediction side by side for the first ``count`` images.

    Saves a PNG when ``path`` is given (atomically) and returns the figure.
    """
    import matplotlib.pyplot as plt

    count = min(count, len(data))
    pred = predict(model, data.images[:count])
    fig, axes = plt.subplots(count, 3, figsize=(7.5, 1.9 * count), squeeze=False)
    for row in range(count):
        panels = (
            data.images[row, 0].numpy(),
            colorize(data.labels[row].numpy()),
            colorize(pred[row].numpy()),
        )
        for ax, panel, title in zip(
            axes[row], panels, ("image", "truth", "prediction"), strict=True
        ):
            ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None)
            ax.set_axis_off()
            if row == 0:
                ax.set_title(title)
    fig.tight_layout()
    if path is not None:
        with atomic_write(path) as f:
            fig.savefig(f, format="png", dpi=100)
    return fig
