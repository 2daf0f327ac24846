"""``fullfcn-eval``: the paper's four metrics and per-class IoU on a VOC split.

The metrics come from one confusion matrix accumulated over the whole split
(``tinyfcn.metrics``), exactly how the paper's Table 3 numbers are computed: mean IU is
a statistic of the dataset, not an average over images. Under DistributedDataParallel
each rank counts its share and the matrices are summed, so every rank reports the
split's metrics. The command line is :func:`fullfcn.cli.eval_main`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from fullfcn.voc import IGNORE_INDEX
from tinyfcn.metrics import ConfusionMatrix

__all__ = ["autocast", "eval_loader", "evaluate"]


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


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    num_classes: int,
    device: torch.device,
    *,
    amp: bool = False,
    channels_last: bool = False,
    progress: bool = False,
) -> ConfusionMatrix:
    """Confusion matrix of ``model``'s argmax predictions over ``loader``, summed over ranks."""
    model.eval()
    matrix = ConfusionMatrix(num_classes, ignore_index=IGNORE_INDEX, device=device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    for image, label in tqdm(loader, desc="eval", disable=not progress, leave=False):
        image = image.to(device, memory_format=memory_format)
        with autocast(device, amp):
            scores = model(image)
        matrix.update(scores.argmax(1), label.to(device))
    matrix.all_reduce()
    return matrix
