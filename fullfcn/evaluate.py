"""``fullfcn-eval``: the paper's four metrics and per-class IoU on a VOC split.

The metrics come from one confusion matrix accumulated over the whole split
(``tinyfcn.metrics``), exactly how the paper's Table 3 numbers are computed: mean IU is
a statistic of the dataset, not an average over images. Under DistributedDataParallel
each rank counts its share and the matrices are summed, so every rank reports the
split's metrics.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from fcnbase import Parser, atomic_write, check_outputs, pick_device, run_cli
from fullfcn.model import VARIANTS, load_model
from fullfcn.transforms import eval_transforms
from fullfcn.util import DEFAULT_WORKERS, voc_root_arg, workers_arg
from fullfcn.voc import IGNORE_INDEX, VOC_CLASSES, VOCSegmentation, find_voc2012
from tinyfcn.metrics import ConfusionMatrix, format_metrics

__all__ = ["autocast", "eval_loader", "evaluate", "main"]


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


def _parser() -> Parser:
    p = Parser(
        prog="fullfcn-eval",
        description="Evaluate an FCN on a PASCAL VOC split: pixel accuracy, mean accuracy, "
        "mean IU, frequency-weighted IU and per-class IU.",
    )
    p.add_argument(
        "--weights",
        required=True,
        help="fullfcn-train checkpoint or pytorch-fcn fcnXs_from_caffe.pth",
    )
    p.add_argument(
        "--variant", choices=VARIANTS, help="expected variant (default: read from the weights)"
    )
    p.add_argument(
        "--voc-root",
        type=voc_root_arg,
        required=True,
        help="folder holding VOC2012/ or VOCdevkit/VOC2012/",
    )
    p.add_argument(
        "--split",
        default="seg11valid",
        help="train, val, seg11valid (the paper's) or a file of image ids",
    )
    p.add_argument("--download", action="store_true", help="fetch VOC / the split list")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--amp", action="store_true", help="float16 autocast (CUDA only)")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--workers", type=workers_arg, default=DEFAULT_WORKERS)
    p.add_argument("--json", help="also write the metrics to this JSON file")
    p.add_argument("--force", action="store_true", help="replace an existing --json file")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.json:  # before the weights are read: a typo must not cost the whole split
        check_outputs([args.json], inputs=[args.weights], force=args.force)
    device = pick_device(args.device)
    if not args.download:
        find_voc2012(args.voc_root)  # fail before reading a 500 MB weights file
    model = load_model(args.weights, args.variant)
    dataset = VOCSegmentation(
        args.voc_root,
        args.split,
        download=args.download,
        transforms=eval_transforms(model.preprocess),
    )
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    matrix = evaluate(
        model,
        eval_loader(dataset, num_workers=args.workers),
        model.num_classes,
        device,
        amp=args.amp,
        channels_last=args.channels_last,
        progress=args.progress,
    )
    metrics = matrix.compute()
    names = list(VOC_CLASSES) if model.num_classes == len(VOC_CLASSES) else None
    print(
        f"{model.variant} on {args.split} ({len(dataset)} images, "
        f"{model.preprocess.name} preprocessing)"
    )
    print(format_metrics(metrics, names))
    if args.json:
        with atomic_write(args.json, replace=args.force) as f:
            f.write(
                json.dumps(
                    {"variant": model.variant, "split": args.split, **metrics}, indent=2
                ).encode()
            )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fullfcn-eval``."""
    return run_cli("fullfcn-eval", _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
