"""``fullfcn-train``'s loop: the paper's recipe or a modern one, one GPU or many.

**Paper recipe** (sec. 4.3 and the reference solvers): SGD with momentum 0.99 on single
full images (batch 1), the loss *summed* over pixels, so the tiny fixed learning rates
1e-10 (FCN-32s), 1e-12 (FCN-16s) and 1e-14 (FCN-8s) are per-pixel rates of a huge
gradient. **Modern recipe**: the *mean* loss, learning rate 0.01 with momentum 0.9 and
polynomial decay, batches of random crops. :class:`TrainConfig` is stored in every
checkpoint; :meth:`TrainConfig.resolved` fills in the recipe's defaults. Weight decay 5e-4;
biases learn at twice the rate without decay (the Caffe convention); the bilinear upsampling
stays frozen. The staged nets start from their parent (``--init-from``), FCN-32s from
ImageNet VGG16. Both run mixed precision on CUDA (``--amp``), channels-last memory
(``--channels-last``) and data parallel through ``torchrun --nproc_per_node=N`` (which sets
the rank and world size).

Exact resume: a checkpoint holds the model, optimizer (momentum buffers), scheduler,
gradient scaler, iteration and every rank's random generators, and the data order and
augmentation are pure functions of (seed, epoch, index) -- so a resumed run continues
bit for bit like one that was never stopped. An interrupt (Ctrl-C, SIGTERM) saves first,
and so does a failure after the run has trained.

What the loop keeps around itself (processes, random state, data, checkpoints, logs) is in
:mod:`fullfcn.train_utils`, the command line in :func:`fullfcn.cli.train_main`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset
from tqdm import tqdm

from fcnbase import CliError, UsageError, deferred_interrupts, lock_dir
from fcnbase.cli import one_line
from fcnbase.device import available_cores
from fullfcn.builders import build, check_stage, load_model
from fullfcn.evaluate import autocast, confusion_matrix, eval_loader
from fullfcn.model import FCN, VARIANTS
from fullfcn.pairs import IGNORE_INDEX
from fullfcn.train_utils import (
    CHECKPOINT,
    TrainLog,
    batches,
    check_inputs_apart,
    claim_out_dir,
    datasets,
    init_distributed,
    read_resume,
    resume,
    rng_state,
    save_checkpoint,
)
from fullfcn.transforms import eval_transforms, train_transforms
from fullfcn.voc import find_voc2012

# -- the recipes and the configuration -------------------------------------------------------

#: Data-loading processes by default (``--workers``): two, or one per core where fewer.
DEFAULT_WORKERS = min(2, available_cores())

#: The reference solvers' fixed learning rates for the summed loss.
PAPER_LR = {"fcn32s": 1e-10, "fcn16s": 1e-12, "fcn8s": 1e-14, "fcn8s_atonce": 1e-10}


@dataclasses.dataclass(frozen=True)
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


@dataclasses.dataclass
class TrainConfig:
    """Everything a run depends on; stored in every checkpoint. ``None`` = recipe default."""

    variant: str = "fcn32s"
    voc_root: str = ""  # PASCAL VOC; or, instead:
    data: str | None = None  # a folder of images/ and masks/ (fullfcn.folder)
    classes: int | None = None  # data's class count when it has no classes.txt
    mask_values: tuple[int, ...] | None = None  # data's mask value of each class (0, 255)
    images: str | None = None  # data's photos and masks folders, when not found by name
    masks: str | None = None
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
        if not self.data and (self.mask_values or self.images or self.masks):
            raise UsageError("--mask-values, --images and --masks are for --data")
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


# -- the loop --------------------------------------------------------------------------------


@dataclasses.dataclass
class TrainResult:
    model: FCN
    iteration: int
    losses: list[float]  # per iteration run in this call (this rank's)
    metrics: dict[str, Any] | None  # last validation, reduced over ranks
    confusion: Tensor | None
    checkpoint: Path


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.SGD:
    """Weights decay at ``lr``; biases learn at ``2 lr`` without decay; frozen layers skip."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    weights = [p for n, p in trainable if not n.endswith("bias")]
    biases = [p for n, p in trainable if n.endswith("bias")]
    return torch.optim.SGD(
        [
            {"params": weights, "lr": config.lr, "weight_decay": config.weight_decay},
            {"params": biases, "lr": 2 * config.lr, "weight_decay": 0.0},
        ],
        lr=config.lr,
        momentum=config.momentum,
    )


def train_step(
    net: nn.Module,
    image: Tensor,
    label: Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    config: TrainConfig,
    device: torch.device,
) -> float:
    """One SGD step on one batch; returns its loss (summed or mean, as the recipe says).

    The forward runs under autocast when ``--amp``; the loss is computed in float32, and
    the gradient scaler keeps float16 gradients from underflowing.
    """
    net.train()
    with autocast(device, config.amp):
        scores = net(image)
    reduction = RECIPES[config.recipe].reduction
    loss = F.cross_entropy(scores.float(), label, ignore_index=IGNORE_INDEX, reduction=reduction)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    return loss.item()


def train(config: TrainConfig, data: tuple[Dataset, Dataset | None] | None = None) -> TrainResult:
    """Train (or resume) as ``config`` says; returns the model and what happened.

    Everything that can be checked is checked before VGG16 is built: the data lists, the
    weights files, that ``out_dir`` is writable and (on rank 0, which alone writes) not
    held by another run, and holds no previous run unless ``resume`` or ``force``.
    ``data`` is ``datasets(config)`` when the caller has made it already (the command
    prints how many pairs it holds).
    """
    config = config.resolved()
    if bool(config.voc_root) == bool(config.data):
        raise UsageError("give --voc-root (PASCAL VOC) or --data (your own folder)")
    if config.voc_root and not config.download:
        find_voc2012(config.voc_root)  # fail before building (or downloading) VGG16
    out_dir = Path(config.out_dir)
    check_inputs_apart(config, out_dir)  # the weights and out_dir, before the data is listed
    data = data or datasets(config)
    parent = load_model(config.init_from) if config.init_from else None  # staged training
    if parent is not None:
        check_stage(parent, config.variant, data[0].num_classes)  # type: ignore[attr-defined]
    rank, world, device = init_distributed(config.device)
    with lock_dir(out_dir) if rank == 0 else nullcontext():
        if rank == 0:
            claim_out_dir(config, out_dir)
        return _train(config, data, parent, rank, world, device)


def _train(
    config: TrainConfig,
    data: tuple[Dataset, Dataset | None],
    parent: FCN | None,
    rank: int,
    world: int,
    device: torch.device,
) -> TrainResult:
    out_dir = Path(config.out_dir)
    ckpt_path = out_dir / CHECKPOINT
    saved = None  # the checkpoint to continue, checked before VGG16 is built
    if config.resume and ckpt_path.exists():
        saved = read_resume(ckpt_path, config.variant, config.width_divisor)
    torch.manual_seed(config.seed + rank)

    model = build(  # scoring the training set's classes, named and coloured by it
        config.variant,
        weights=config.weights,
        num_classes=data[0].num_classes,
        init_from=parent,
        width_divisor=config.width_divisor,
    )
    model.classes, model.palette = data[0].classes, data[0].palette
    model.mask_values = getattr(data[0], "mask_values", None)  # a folder's (0, 255) ...
    trained = {  # ... and its pairs, for fullfcn-eval to tell held-out pairs from them
        "trained_on": getattr(data[0], "ids", None),
        "trained_in": str(Path(config.data).resolve()) if config.data else None,
    }
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    optimizer = _optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.PolynomialLR(
        optimizer, total_iters=config.iterations, power=RECIPES[config.recipe].poly_power
    )
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp and device.type == "cuda")
    parts = {"optimizer": optimizer, "scheduler": scheduler, "scaler": scaler}
    start = 0 if saved is None else resume(ckpt_path, saved, model, parts, rank, world)
    net: nn.Module = DistributedDataParallel(model) if world > 1 else model

    train_set, val_set = data
    flip = config.recipe == "modern"
    train_set.transforms = train_transforms(model.preprocess, config.crop_size, flip=flip)
    if val_set is not None:
        val_set.transforms = eval_transforms(model.preprocess)
    stream = batches(train_set, config, rank, world, start, pin=device.type == "cuda")
    log = TrainLog(out_dir, rank == 0, config.tensorboard, start)
    losses: list[float] = []
    metrics, confusion = None, None
    iteration, t0 = start, time.perf_counter()
    bar = tqdm(
        total=config.iterations,
        initial=start,
        desc=config.variant,
        disable=not config.progress or rank != 0,
    )

    def save(rng: dict[str, Any], collective: bool = True) -> None:
        # Every rank's generators, in rank order. An interrupt may reach one rank only: it
        # must not wait for the others, so it saves rank 0's alone (a resume with more
        # ranks then re-seeds them).
        states = [rng]
        if collective and world > 1:
            states = [None] * world
            dist.all_gather_object(states, rng)
        if rank == 0:
            save_checkpoint(ckpt_path, model, parts, iteration, config, states, trained)

    rng = rng_state()  # as the last finished step left them, for an interrupt or a failure
    try:
        end = min(config.iterations, config.stop_at or config.iterations)
        while iteration < end:
            image, label = next(stream)
            image = image.to(device, memory_format=memory_format, non_blocking=True)
            label = label.to(device, non_blocking=True)
            value = train_step(net, image, label, optimizer, scheduler, scaler, config, device)
            iteration += 1
            rng = rng_state()
            if not math.isfinite(value):
                raise FloatingPointError(f"loss became {value} at iteration {iteration}")
            losses.append(value)
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4g}")
            row = {
                "loss": value,
                "lr": scheduler.get_last_lr()[0],
                "seconds": time.perf_counter() - t0,
            }
            if val_set is not None and (
                iteration % config.val_every == 0 or iteration == config.iterations
            ):
                matrix = confusion_matrix(  # reduced over the ranks
                    model,
                    eval_loader(val_set, rank, world),
                    device,
                    amp=config.amp,
                    channels_last=config.channels_last,
                )
                metrics, confusion = matrix.compute(), matrix.matrix.cpu()
                row.update({k: v for k, v in metrics.items() if k != "iou"})
                bar.write(f"iteration {iteration}: mean IU {metrics['mean_iou']:.4f}")
            log.write(iteration, **row)
            if iteration % config.checkpoint_every == 0 or iteration == end:
                save(rng)
    except (KeyboardInterrupt, Exception) as err:
        # Neither an interrupt nor a failure (a photo that no longer reads, a full disk
        # at validation) may lose the steps since the last save; a non-finite loss has
        # spoilt the weights, and the last save is what it leaves.
        if iteration == start or isinstance(err, FloatingPointError):
            raise
        with deferred_interrupts(reraise=False):  # a second Ctrl-C waits for the save
            save(rng, collective=False)
        saved = f"checkpoint saved to {ckpt_path}"
        if isinstance(err, KeyboardInterrupt):
            raise KeyboardInterrupt(saved) from None
        raise CliError(f"{one_line(err)}; {saved} (iteration {iteration}: --resume)") from err
    finally:
        bar.close()
        log.close()
    return TrainResult(model, iteration, losses, metrics, confusion, ckpt_path)


if __name__ == "__main__":  # ``torchrun -m fullfcn.train ...`` runs the fullfcn-train command
    from fullfcn.cli import train_main

    raise SystemExit(train_main())
