"""What ``fullfcn-train`` keeps around its loop: processes, random state, data, checkpoints,
logs.

As in torchvision's ``references/segmentation`` (``train.py`` beside ``utils.py``), the
training loop in :mod:`fullfcn.train` stays short and these pieces live here:

- *distributed*: rank, world size and device under ``torchrun``;
- *random state*: torch's generators (CPU and CUDA; nothing else draws), as tensors, so a
  checkpoint read with ``torch.load(weights_only=True)`` restores them -- the heart of the
  exact resume;
- *data*: the data sets, listed and checked before VGG16 is built, and an endless stream of
  batches whose order and augmentation are pure functions of (seed, epoch, index);
- *checkpoints*: what a run writes into ``--out-dir`` (and may replace there), writing one
  atomically, reading one back with every key checked, loading it into model, optimizer,
  scheduler and scaler;
- *logs*: the CSV log (always) and TensorBoard (when installed), from rank 0 only.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from fcnbase import (
    OutputExistsError,
    atomic_write,
    check_outputs,
    pick_device,
    remove_leftovers,
)
from fullfcn.builders import Stored, load_into, read_stored, read_weights
from fullfcn.folder import SegmentationFolder
from fullfcn.model import FCN
from fullfcn.voc import SBDSegmentation, VOCSegmentation

if TYPE_CHECKING:
    from fullfcn.train import TrainConfig

#: What a run writes into ``--out-dir``: the only files ``--force`` ever removes there.
CHECKPOINT, LOG, TENSORBOARD = "checkpoint.pt", "log.csv", "tensorboard"
#: What a checkpoint must hold to be resumed, besides the model (:func:`read_stored`); the
#: first three are the ``parts`` that :func:`resume` and :func:`save_checkpoint` take by name.
TRAIN_STATE = ("optimizer", "scheduler", "scaler", "iteration", "rng")


# -- distributed ---------------------------------------------------------------------------


def init_distributed(device_name: str) -> tuple[int, int, torch.device]:
    """Rank, world size and device; joins the process group when started by torchrun."""
    device, world = pick_device(device_name), int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


# -- random state --------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """torch's generators, CPU and (when present) CUDA: dropout draws from them, and the data
    pipeline seeds its own per sample (:class:`SeededSamples`)."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


# -- data ----------------------------------------------------------------------------------


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
    """Endless batches from iteration ``start`` on (a resumed run skips exactly the batches
    already seen), each rank its own shard of each epoch, shuffled by (seed, epoch)."""
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
    is built or downloaded; :func:`fullfcn.train.train` adds the model's preprocessing.

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


# -- checkpoints ---------------------------------------------------------------------------


def check_inputs_apart(config: TrainConfig, out_dir: Path) -> None:
    """Refuse weights files that are missing, or that this run would replace (a usage
    error), an ``out_dir`` that cannot be written, and one that holds a previous run which
    neither ``resume`` nor ``force`` claims: all before the data is listed."""
    inputs = [config.init_from, None if config.weights == "imagenet" else config.weights]
    for path in inputs:
        if path is not None and not os.path.isfile(path):
            raise FileNotFoundError(f"weights file {path} not found")
    check_outputs([out_dir / CHECKPOINT, out_dir / LOG], inputs=inputs, force=True)
    previous_run(config, out_dir)


def previous_run(config: TrainConfig, out_dir: Path) -> list[Path]:
    """The files of a previous run in ``out_dir``: refused unless ``--resume`` continues it
    (then it needs its checkpoint) or ``--force`` starts over."""
    ckpt, log, board = out_dir / CHECKPOINT, out_dir / LOG, out_dir / TENSORBOARD
    previous = [p for p in (ckpt, log, board) if p.exists() or p.is_symlink()]
    names = ", ".join(p.name for p in previous)
    if config.resume:
        if previous and ckpt not in previous:
            raise OutputExistsError(
                f"--resume: {out_dir} holds {names} but no {CHECKPOINT} to continue; "
                "use --force to start over"
            )
    elif previous and not config.force:
        raise OutputExistsError(
            f"{out_dir} holds a previous run ({names}); use --resume to continue it or "
            "--force to start over"
        )
    return previous


def claim_out_dir(config: TrainConfig, out_dir: Path) -> None:
    """Decide, under the directory's lock, what this run may do with ``out_dir``.

    A trained checkpoint is hours of GPU time: a fresh run into a directory holding a
    previous one is refused unless ``--resume`` (continue it) or ``--force`` (start over,
    removing exactly the files a run writes: checkpoint.pt, log.csv, tensorboard/'s event
    files; anything else there is the user's). :func:`check_inputs_apart` came first:
    the weights the run reads are never among the files it would replace. Either way, the
    half-written temporaries of a run killed outright (``kill -9``) go: the lock is ours.
    """
    ckpt, log, board = out_dir / CHECKPOINT, out_dir / LOG, out_dir / TENSORBOARD
    previous = previous_run(config, out_dir)  # again, now that the lock is ours
    for path in (ckpt, log):
        remove_leftovers(path)
    if config.resume:
        return
    for path in previous:
        if path == board and path.is_dir() and not path.is_symlink():
            for event in path.glob("events.out.tfevents.*"):
                event.unlink()
            if not any(path.iterdir()):
                path.rmdir()
        else:
            path.unlink()


def read_resume(path: Path, variant: str, width_divisor: int) -> tuple[Mapping[str, Any], Stored]:
    """The checkpoint to continue, its keys and settings checked against this run's."""
    state = read_weights(path)
    if not isinstance(state, Mapping) or "variant" not in state:
        raise ValueError(f"{path} is not a fullfcn-train checkpoint (use --force to start over)")
    stored = read_stored(state, str(path))  # the model, its variant, width and labels
    missing = [k for k in TRAIN_STATE if k not in state]
    if missing:
        raise ValueError(
            f"{path} lacks {missing[0]!r}: not a complete fullfcn-train checkpoint "
            "(use --force to start over)"
        )
    for key, ours in (("variant", variant), ("width_divisor", width_divisor)):
        if state[key] != ours:
            raise ValueError(f"{path} holds a run with {key} {state[key]!r}, not {ours!r}")
    iteration = state["iteration"]
    if not isinstance(iteration, int) or isinstance(iteration, bool) or iteration < 0:
        raise ValueError(f"{path}: iteration {iteration!r} is not a count of steps")
    if not isinstance(state["rng"], list):
        raise ValueError(f"{path}: rng is not a list of random states")
    return state, stored


def resume(
    path: Path,
    saved: tuple[Mapping[str, Any], Stored],
    model: FCN,
    parts: Mapping[str, Any],
    rank: int,
    world: int,
) -> int:
    """Load every piece of what :func:`read_resume` read into ``model`` and ``parts`` (the
    optimizer, scheduler and scaler, by name); returns the iteration to continue from."""
    state, stored = saved
    load_into(model, stored, str(path))
    try:
        for key, part in parts.items():
            part.load_state_dict(state[key])
        if len(state["rng"]) == world:  # put back what rng_state took
            rng = state["rng"][rank]
            torch.set_rng_state(rng["torch"])
            if "cuda" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state(rng["cuda"])
    except (KeyError, TypeError, IndexError, ValueError, RuntimeError) as err:
        # a nested piece is missing or of the wrong kind: the file, not the code, is wrong
        raise ValueError(f"{path} cannot be resumed: {type(err).__name__} {err}") from None
    return state["iteration"]


def save_checkpoint(
    path: Path,
    model: FCN,
    parts: Mapping[str, Any],
    iteration: int,
    config: TrainConfig,
    rng: list[dict[str, Any]],
    trained: Mapping[str, Any] | None = None,
) -> None:
    """Everything :func:`resume` needs to continue bit for bit, written atomically, and
    what ``fullfcn-eval`` and ``-predict`` need to read a folder's masks: the mask value of
    each class, and ``trained``: the pairs the net was trained on and their folder."""
    state = {
        "variant": model.variant,
        "width_divisor": model.width_divisor,
        "preprocess": model.preprocess.name,
        "classes": list(model.classes),  # plain lists: weights_only=True reads them
        "palette": model.palette,
        "mask_values": model.mask_values,
        **(trained or {}),
        "model": model.state_dict(),
        **{key: part.state_dict() for key, part in parts.items()},
        "iteration": iteration,
        "config": dataclasses.asdict(config),
        "rng": rng,
    }
    with atomic_write(path) as f:
        torch.save(state, f)


# -- logs ----------------------------------------------------------------------------------


class TrainLog:
    """CSV log (always) and TensorBoard (when installed), written by rank 0 only."""

    FIELDS = ("iteration", "loss", "lr", "seconds")
    FIELDS += ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou")  # at validations

    def __init__(self, out_dir: Path, enabled: bool, tensorboard: bool, start: int = 0) -> None:
        """A run resumed at iteration ``start`` continues the log of the run it resumes,
        cut back to ``start``: a run killed outright (``kill -9``, a lost node) logged the
        steps after its last checkpoint, which the resumed run computes and logs again."""
        self.path, self.writer = (out_dir / LOG if enabled else None), None
        if self.path is not None and not self.path.exists():
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(self.FIELDS)
        elif self.path is not None:
            with self.path.open(newline="") as f:
                rows = list(csv.reader(f))
            kept = rows[:1] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= start]
            if kept != rows:
                text = io.StringIO()
                csv.writer(text).writerows(kept)
                with atomic_write(self.path, replace=True) as f:
                    f.write(text.getvalue().encode())
        if self.path is not None and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # TensorBoard is optional
                return
            # purge_step: TensorBoard drops the dead run's events after ``start`` likewise
            self.writer = SummaryWriter(str(out_dir / TENSORBOARD), purge_step=start + 1)

    def write(self, iteration: int, **values: float) -> None:
        if self.path is None:
            return
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.FIELDS).writerow({"iteration": iteration, **values})
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, iteration)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
