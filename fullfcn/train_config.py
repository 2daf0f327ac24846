"""What a ``fullfcn-train`` run depends on: the two recipes and the run's configuration.

**Paper recipe** (sec. 4.3 and the reference solvers): SGD with momentum 0.99 on single
full images (batch 1), the loss *summed* over pixels, so the tiny fixed learning rates
1e-10 (FCN-32s), 1e-12 (FCN-16s) and 1e-14 (FCN-8s) are per-pixel rates of a huge
gradient. **Modern recipe**: the *mean* loss, learning rate 0.01 with momentum 0.9 and
polynomial decay, batches of random crops. :class:`TrainConfig` is stored in every
checkpoint; :meth:`TrainConfig.resolved` fills in the recipe's defaults. The loop that
runs it is :func:`fullfcn.train.train`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from fcnbase import UsageError
from fcnbase.device import available_cores
from fullfcn.model import VARIANTS

__all__ = ["DEFAULT_WORKERS", "PAPER_LR", "RECIPES", "Recipe", "TrainConfig"]

#: Data-loading processes by default (``--workers``): two, or one per core where fewer.
DEFAULT_WORKERS = min(2, available_cores())

#: The reference solvers' fixed learning rates for the summed loss.
PAPER_LR = {"fcn32s": 1e-10, "fcn16s": 1e-12, "fcn8s": 1e-14, "fcn8s_atonce": 1e-10}


@dataclass(frozen=True)
class Recipe:
    """What ``--recipe`` chooses; the other settings stay the user's."""

    momentum: float
    reduction: str  # of the pixel losses: "sum" (the paper's) or "mean"
    poly_power: float  # learning-rate decay (1 - t/T) ** power; 0: constant
    batch_size: int
    crop_size: int | None  # None: full images
    lr: float | None  # None: PAPER_LR of the variant


RECIPES = {
    "paper": Recipe(
        momentum=0.99, reduction="sum", poly_power=0.0, batch_size=1, crop_size=None, lr=None
    ),
    "modern": Recipe(
        momentum=0.9, reduction="mean", poly_power=0.9, batch_size=8, crop_size=320, lr=0.01
    ),
}


@dataclass
class TrainConfig:
    """Everything a run depends on; stored in every checkpoint. ``None`` = recipe default."""

    variant: str = "fcn32s"
    voc_root: str = ""  # PASCAL VOC; or, instead:
    data: str | None = None  # a folder of images/ and masks/ (fullfcn.folder)
    classes: int | None = None  # data's class count when it has no classes.txt
    val_fraction: float = 0.2  # data's seeded validation share without train/val.txt
    sbd_root: str | None = None  # train on SBD (the paper's 8,498 images) instead of VOC
    train_split: str = "train"
    val_split: str | None = None  # e.g. "seg11valid"
    recipe: str = "paper"
    weights: str | None = "imagenet"  # VGG16 init: "imagenet", None (random) or a file
    init_from: str | None = None  # checkpoint of the coarser net (staged training)
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float = 5e-4
    batch_size: int | None = None  # per process
    crop_size: int | None = None
    iterations: int = 100_000
    stop_at: int | None = None  # end this call there (e.g. a job's time slot); resume later
    checkpoint_every: int = 4000
    val_every: int = 4000
    out_dir: str = "runs/fullfcn"
    resume: bool = False  # continue from out_dir/checkpoint.pt
    force: bool = False  # start over: remove the previous run's outputs in out_dir
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    channels_last: bool = False
    workers: int = DEFAULT_WORKERS
    width_divisor: int = 1  # >1: thinner VGG with the same geometry (tests, CPU demos)
    download: bool = False
    progress: bool = True
    tensorboard: bool = True

    def resolved(self) -> TrainConfig:
        """A copy with the recipe defaults filled in and the combination checked."""
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose from {VARIANTS}")
        if self.resume and self.force:
            raise UsageError(
                "--resume continues the run in --out-dir, --force starts it over: give one of them"
            )
        if self.data and (self.sbd_root or self.val_split or self.download):
            raise UsageError("--sbd-root, --val-split and --download are for --voc-root")
        if self.recipe not in RECIPES:
            raise ValueError(f"unknown recipe {self.recipe!r}; choose from {tuple(RECIPES)}")
        recipe = RECIPES[self.recipe]
        resolved = dataclasses.replace(
            self,
            lr=self.lr if self.lr is not None else (recipe.lr or PAPER_LR[self.variant]),
            momentum=self.momentum if self.momentum is not None else recipe.momentum,
            batch_size=self.batch_size or recipe.batch_size,
            crop_size=self.crop_size if self.crop_size is not None else recipe.crop_size,
        )
        if resolved.batch_size > 1 and resolved.crop_size is None:
            raise ValueError(
                "batches of full images differ in size: give --crop-size or use batch size 1"
            )
        return resolved
