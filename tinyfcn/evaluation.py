"""Scoring a trained net: per-pixel predictions, the paper's metrics, digit accuracy.

All three run the net in ``eval`` mode, without gradients, in chunks (so a test split of
any size fits in memory) and hand results back on the CPU. They need nothing of the net but
its forward and one parameter (which says its device): a student's own module works.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tinyfcn.data import CLASS_NAMES, M2NISTData
from tinyfcn.metrics import ConfusionMatrix
from tinyfcn.model import NUM_CLASSES

__all__ = ["evaluate", "evaluate_classifier", "predict"]


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


def evaluate(model: nn.Module, data: M2NISTData, batch_size: int = 100) -> dict[str, object]:
    """The paper's four metrics (and per-class IoU) from one confusion matrix over ``data``.

    ``model`` is any net mapping (N, 1, H, W) images to (N, 11, H, W) scores. The result
    names the classes (``"class_names"``), so ``format_metrics(evaluate(model, test))``
    prints them.
    """
    matrix = ConfusionMatrix(NUM_CLASSES)
    for i in range(0, len(data), batch_size):
        labels = data.labels[i : i + batch_size]
        matrix.update(predict(model, data.images[i : i + batch_size], batch_size), labels)
    return matrix.compute(CLASS_NAMES)
