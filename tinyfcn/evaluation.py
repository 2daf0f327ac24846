"""Scoring a trained net: per-pixel predictions, the paper's metrics, digit accuracy.

All three run the net in ``eval`` mode, without gradients, in chunks (so a test split of
any size fits in memory) and hand results back on the CPU. They need nothing of the net but
its forward and one parameter (which says its device): a student's own module works.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tinyfcn.data import CLASS_NAMES, NUM_CLASSES, Split, as_tensors
from tinyfcn.metrics import ConfusionMatrix


def check_scores(scores: object, images: Tensor) -> None:
    """Refuse a net whose output is not one score per class and pixel of its input: a wrong
    class count or output size is one line here, not an error deep inside the loss."""
    n, (h, w) = len(images), images.shape[-2:]
    if isinstance(scores, Tensor) and scores.shape == (n, NUM_CLASSES, h, w):
        return
    if not isinstance(scores, Tensor):
        got = f"a {type(scores).__name__}"
    elif scores.dim() and len(scores) == n:  # say N, as the expected shape does
        got = "(" + ", ".join(["N", *map(str, scores.shape[1:])]) + ")"
    else:
        got = str(tuple(scores.shape))
    raise ValueError(f"expected scores of shape (N, {NUM_CLASSES}, {h}, {w}), got {got}")


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
    """Class index per pixel, (N, H, W) int64 on the CPU, for float images (N, 1, H, W)."""
    model.eval()
    device = next(model.parameters()).device
    preds = []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].to(device)
        scores = model(x)
        check_scores(scores, x)
        preds.append(scores.argmax(1).cpu())
    return torch.cat(preds)


def evaluate(model: nn.Module, data: Split, batch_size: int = 100) -> dict[str, object]:
    """The paper's four metrics (and per-class IoU) from one confusion matrix over ``data``.

    ``model`` is any net mapping (N, 1, H, W) images to (N, 11, H, W) scores; ``data`` any
    split (:func:`~tinyfcn.data.as_tensors`). The result names the classes
    (``"class_names"``), so ``format_metrics(evaluate(model, test))`` prints them.
    """
    images, labels = as_tensors(data)
    matrix = ConfusionMatrix(NUM_CLASSES)
    for i in range(0, len(images), batch_size):
        chunk = slice(i, i + batch_size)
        matrix.update(predict(model, images[chunk], batch_size), labels[chunk])
    return matrix.compute(CLASS_NAMES)
