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

from fcnbase import atomic_write, pick_device
from m2nist.dataset import to_tensors
from m2nist.viz import colorize
from tinyfcn.classifier import MnistClassifier
from tinyfcn.metrics import ConfusionMatrix
from tinyfcn.model import NUM_CLASSES, VARIANTS, TinyFCN

__all__ = [
    "CLASS_NAMES",
    "Budget",
    "M2nistData",
    "RunResult",
    "TrainConfig",
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
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose one of {VARIANTS}")
        if self.epochs is None and self.seconds is None:
            raise ValueError("give a budget: epochs, seconds, or both")
        for name in ("train_images", "test_images", "batch_size", "classifier_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "epochs",
            "seconds",
            "classifier_epochs",
            "classifier_shift",
            "lr",
            "eval_every",
        ):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")


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
    bar = tqdm(total=budget.steps, initial=step, desc=desc, disable=not progress, leave=False)
    budget.start()
    while budget.fraction(step) < 1.0:
        order = torch.randperm(n, generator=generator)
        for i in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
            fraction = budget.fraction(step)
            if fraction >= 1.0:
                break
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
    config: TrainConfig, *, device: torch.device | None = None, progress: bool = True
) -> tuple[MnistClassifier, float, float]:
    """Train :class:`MnistClassifier` on MNIST train; return it, test accuracy and seconds.

    Adam with a cosine schedule for ``config.classifier_epochs`` epochs, every digit shifted
    at random by up to ``config.classifier_shift`` pixels (:func:`random_shift`). Short and
    shifted, because the classifier's job here is to hand the FCN features that recognise
    digits off centre; the accuracy returned is on the (centred) MNIST test digits.
    """
    device = pick_device(device)
    torch.manual_seed(config.seed)
    start = time.perf_counter()
    images, labels = load_digits(True, config.source)
    model = MnistClassifier().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.classifier_lr)
    budget = Budget(
        _steps(config.classifier_epochs, len(images), config.classifier_batch_size), None
    )
    generator = torch.Generator().manual_seed(config.seed)
    _fit(
        model, optimizer, images, labels,
        batch_size=config.classifier_batch_size, lr=config.classifier_lr, budget=budget, step=0,
        generator=generator, device=device, desc="classifier", progress=progress,
        augment=lambda x: random_shift(x, config.classifier_shift, generator),
    )  # fmt: skip
    seconds = time.perf_counter() - start
    test_images, test_labels = load_digits(False, config.source)
    return model, evaluate_classifier(model, test_images, test_labels), seconds


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

    step = _fit(
        model, optimizer, train.images, train.labels,
        batch_size=config.batch_size, lr=config.lr, budget=budget, step=step,
        generator=generator, device=device, desc=f"{model.variant}", progress=progress,
        on_tick=on_tick,
    )  # fmt: skip
    if test is not None:  # _fit has paused the clock
        history.append(point(step))
    return {
        "optimizer": optimizer.state_dict(),
        "step": step,
        "elapsed": budget.elapsed,
        "history": history,
    }


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
    """
    device = pick_device(device)
    start = time.perf_counter()
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
                config, device=device, progress=progress
            )
        torch.manual_seed(config.seed)
        model = TinyFCN(
            config.variant, classifier, learnable_upsampling=config.learnable_upsampling
        )
        state = None
    spent = time.perf_counter() - start
    state = train_fcn(
        model, train, test, config, device=device, progress=progress, state=state, elapsed=spent
    )
    if checkpoint is not None:
        save_checkpoint(checkpoint, model, config, state)
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
        raise ValueError(
            f"{path} is not a readable tinyfcn checkpoint (weights_only torch.load refused it)"
        ) from None
    if not isinstance(saved, dict) or saved.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a tinyfcn checkpoint (no {CHECKPOINT_FORMAT!r} tag)")
    arch = saved["model"]
    if expect is not None:
        for key in ("variant", "learnable_upsampling"):
            if arch[key] != getattr(expect, key):
                raise ValueError(
                    f"{path} holds a {key}={arch[key]!r} model, but {key}="
                    f"{getattr(expect, key)!r} was asked for"
                )
    model = TinyFCN(
        arch["variant"],
        num_classes=arch["num_classes"],
        learnable_upsampling=arch["learnable_upsampling"],
    )
    model.load_state_dict(saved["state_dict"])
    return model.to(map_location), saved


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
