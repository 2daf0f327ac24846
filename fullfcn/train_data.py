"""What ``fullfcn-train`` feeds its loop: the data sets and an endless, exactly resumable
stream of batches.

Exact resume needs the data order and the augmentation to be pure functions of
(seed, epoch, index): the sampler shuffles by (seed, epoch), each sample is augmented
under its own seed (:class:`SeededSamples`), and a run resumed at iteration ``k`` skips
exactly the ``k`` batches already seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from fullfcn.folder import SegmentationFolder
from fullfcn.model import FCN
from fullfcn.transforms import eval_transforms, train_transforms
from fullfcn.voc import SBDSegmentation, VOCSegmentation

if TYPE_CHECKING:
    from fullfcn.train import TrainConfig


class SeededSamples(Dataset):
    """Sample ``i`` of epoch ``e`` is augmented under its own seed.

    Random flips, scales and crops then depend only on (seed, epoch, index): not on the
    worker that loads the sample, nor on whether the run was resumed in between.
    """

    def __init__(self, dataset: Dataset, seed: int, epoch: int) -> None:
        self.dataset, self.seed, self.epoch = dataset, seed, epoch

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((self.seed * 1_000_003 + self.epoch) * 10_000_019 + index)
            return self.dataset[index]


def batches(
    dataset: Dataset, config: TrainConfig, rank: int, world: int, start: int, pin: bool
) -> Iterator[tuple[Tensor, Tensor]]:
    """Endless batches from iteration ``start`` on, each rank its own shard of each epoch."""
    sampler = DistributedSampler(
        dataset, num_replicas=world, rank=rank, shuffle=True, seed=config.seed, drop_last=True
    )
    per_epoch = len(sampler) // config.batch_size
    if per_epoch == 0:
        raise ValueError(
            f"{len(dataset)} training images cannot fill one batch of "  # type: ignore[arg-type]
            f"{config.batch_size} on each of {world} processes"
        )
    epoch, skip = divmod(start, per_epoch)
    while True:
        sampler.set_epoch(epoch)
        indices = list(sampler)[skip * config.batch_size : per_epoch * config.batch_size]
        loader = DataLoader(
            SeededSamples(dataset, config.seed, epoch),
            batch_size=config.batch_size,
            sampler=indices,
            num_workers=config.workers,
            pin_memory=pin,
            # its own generator: workers' seeds must not draw from (and
            # so shift) the global one that drives dropout
            generator=torch.Generator().manual_seed(config.seed + epoch),
        )
        yield from loader
        epoch, skip = epoch + 1, 0


def datasets(config: TrainConfig) -> tuple[Dataset, Dataset | None]:
    """The training and validation sets, listed (and their files checked) *before* VGG16
    is built or downloaded; :func:`set_transforms` adds the model's preprocessing.

    A ``data`` folder validates on its ``val`` split unless it has neither ``val.txt`` nor
    split folders and ``val_fraction`` is 0 (everything trains)."""
    if config.data:
        folder: dict[str, Any] = dict(
            num_classes=config.classes,
            val_fraction=config.val_fraction,
            mask_values=config.mask_values,
            images=config.images,
            masks=config.masks,
            progress=config.progress,
        )
        train_set = SegmentationFolder(config.data, "train", **folder)
        validate = (  # a split folder (train/<stem>) or list says, else the fraction
            "/" in train_set.ids[0]
            or (Path(config.data) / "val.txt").is_file()
            or config.val_fraction > 0
        )
        return train_set, SegmentationFolder(config.data, "val", **folder) if validate else None
    if config.sbd_root:
        train_set: Dataset = SBDSegmentation(config.sbd_root, "train", download=config.download)
    else:
        train_set = VOCSegmentation(config.voc_root, config.train_split, download=config.download)
    val_set = None
    if config.val_split:
        val_set = VOCSegmentation(config.voc_root, config.val_split, download=config.download)
    return train_set, val_set


def set_transforms(config: TrainConfig, model: FCN, train_set: Any, val_set: Any) -> None:
    train_set.transforms = train_transforms(
        model.preprocess, config.crop_size, flip=config.recipe == "modern"
    )
    if val_set is not None:
        val_set.transforms = eval_transforms(model.preprocess)
