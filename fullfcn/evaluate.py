"""``fullfcn-eval``: the paper's four metrics and per-class IoU on a VOC split.

The metrics come from one confusion matrix accumulated over the whole split
(``tinyfcn.metrics``), exactly how the paper's Table 3 numbers are computed: mean IU is
a statistic of the dataset, not an average over images. Under DistributedDataParallel
each rank counts its share and the matrices are summed, so every rank reports the
split's metrics. Evaluation runs under ``torch.inference_mode()`` (no autograd records at
all). The command line is :func:`fullfcn.cli.eval_main`.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from fullfcn.model import FCN
from fullfcn.pairs import IGNORE_INDEX
from tinyfcn.metrics import ConfusionMatrix


def autocast(device: torch.device, amp: bool) -> torch.autocast:
    """float16 autocast on CUDA when ``amp``; a no-op context otherwise."""
    return torch.autocast(device.type, dtype=torch.float16, enabled=amp and device.type == "cuda")


def eval_loader(
    dataset: Dataset, rank: int = 0, world_size: int = 1, num_workers: int = 0
) -> DataLoader:
    """Full images at batch 1 (they differ in size); rank ``r`` takes every ``world``-th.

    Striding rather than DistributedSampler's padding keeps every image counted once.
    """
    indices = list(range(rank, len(dataset), world_size))  # type: ignore[arg-type]
    return DataLoader(dataset, batch_size=1, sampler=indices, num_workers=num_workers)


def confusion_matrix(
    model: FCN,
    loader: DataLoader,
    device: torch.device,
    *,
    amp: bool = False,
    channels_last: bool = False,
    progress: bool = False,
) -> ConfusionMatrix:
    """Confusion matrix of ``model``'s argmax predictions over ``loader``, summed over ranks
    (what training validates with, and what :func:`evaluate` computes its metrics from).
    The model is moved to ``device`` (in channels-last memory if asked) first."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format).eval()
    matrix = ConfusionMatrix(model.num_classes, ignore_index=IGNORE_INDEX, device=device)
    with torch.inference_mode():
        for image, label in tqdm(loader, desc="eval", disable=not progress, leave=False):
            image = image.to(device, memory_format=memory_format)
            with autocast(device, amp):
                scores = model(image)
            matrix.update(scores.argmax(1), label.to(device))
        matrix.all_reduce()
    return matrix


def evaluate(
    model: FCN,
    data: Dataset,
    *,
    device: torch.device | str | None = None,
    amp: bool = False,
    channels_last: bool = False,
    num_workers: int = 0,
    progress: bool = False,
) -> dict[str, object]:
    """The paper's four metrics and per-class IoU of ``model`` on ``data`` (a dataset of
    normalised ``(image, mask)`` pairs, e.g. with ``eval_transforms(model.preprocess)``).

    The same shape as :func:`tinyfcn.evaluation.evaluate`: a model and its data in, the
    dict of :meth:`tinyfcn.metrics.ConfusionMatrix.compute` out. ``device`` ``None``: where
    the model is.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    loader = eval_loader(data, num_workers=num_workers)
    return confusion_matrix(
        model, loader, device, amp=amp, channels_last=channels_last, progress=progress
    ).compute()
