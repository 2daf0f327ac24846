"""The three commands: ``fullfcn-train``, ``fullfcn-eval`` and ``fullfcn-predict``.

As in ``m2nist/cli.py`` and ``tinyfcn/cli.py``, the library modules (:mod:`fullfcn.train`,
:mod:`fullfcn.evaluate`, :mod:`fullfcn.predict`) hold what a program calls; this module
turns command lines into those calls, behind fcnbase's one error path (``run_cli``). Each
command is a section: its parser, then the function it drives; the options they share
come first. Several GPUs: ``torchrun --nproc_per_node=N --no-python fullfcn-train ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch.distributed as dist
from torch.utils.data import Dataset

from fcnbase import (
    CliError,
    Parser,
    UsageError,
    atomic_write,
    check_outputs,
    check_writable,
    pick_device,
    run_cli,
)
from fcnbase.cli import float_arg, int_arg, one_line
from fcnbase.device import available_cores
from fullfcn.builders import build, load_checkpoint, load_model
from fullfcn.evaluate import confusion_matrix, eval_loader
from fullfcn.folder import CLASSES_FILE, SegmentationFolder
from fullfcn.model import VARIANTS, WIDTH_DIVISORS
from fullfcn.pairs import IGNORE_INDEX
from fullfcn.predict import MAX_PIXELS, load_image, predict_folder, save_prediction
from fullfcn.train import DEFAULT_WORKERS, RECIPES, TrainConfig, train
from fullfcn.train_utils import check_inputs_apart, datasets
from fullfcn.transforms import eval_transforms
from fullfcn.voc import VOCSegmentation, find_voc2012
from tinyfcn.metrics import format_metrics

# -- shared options --------------------------------------------------------------------------


def _folder_arg(what: str) -> Callable[[str], Path]:
    """argparse type of an existing folder (checked at parse time, before any work)."""

    def folder(value: str) -> Path:
        if not Path(value).is_dir():
            raise argparse.ArgumentTypeError(f"{what} {value} is not a directory")
        return Path(value)

    return folder


def _values_arg(text: str) -> tuple[int, ...]:
    """argparse type of ``--mask-values``: distinct PNG sample values, comma-separated."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of integers like 0,255") from None
    if len(set(values)) != len(values) or not all(0 <= v <= 255 for v in values):
        raise argparse.ArgumentTypeError(f"{text}: the values must be distinct, 0..255")
    return values


def _add_data(p: argparse.ArgumentParser) -> None:
    """``--voc-root`` or ``--data``, the same for training and evaluation: checked to be a
    folder at parse time, before any model is built."""
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--voc-root",
        type=_folder_arg("VOC root"),
        help="folder holding VOC2012/ or VOCdevkit/VOC2012/",
    )
    where.add_argument(
        "--data",
        type=_folder_arg("data folder"),
        metavar="DIR",
        help="your own folder: images/, masks/ (index or palette PNGs, 255 = ignore), "
        "optional classes.txt, train.txt, val.txt (docs/fullfcn.md)",
    )
    p.add_argument(
        "--classes",
        type=int_arg(1, IGNORE_INDEX),
        metavar="N",
        help="--data's class count when it has no classes.txt",
    )
    p.add_argument(
        "--mask-values",
        type=_values_arg,
        metavar="V,V,...",
        help="--data's mask value of each class, in class order, when the values are not the "
        "class ids: 0,255 for binary masks (nothing is ignored then)",
    )
    p.add_argument("--images", metavar="DIR", help="--data's photos folder, if not images/")
    p.add_argument("--masks", metavar="DIR", help="--data's masks folder, if not masks/")
    p.add_argument(
        "--val-fraction",
        type=float_arg(0.0, 0.99),
        metavar="F",
        default=TrainConfig.val_fraction,
        help="--data without train.txt/val.txt: the share of pairs (seeded) held out for val",
    )


def _add_run(p: argparse.ArgumentParser) -> None:
    """Where and how a run computes, the same for training and evaluation."""
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--amp", action="store_true", help="float16 mixed precision (CUDA only)")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory (CUDA)")
    p.add_argument(
        "--workers",
        type=int_arg(0, available_cores()),  # more than a core each only costs memory
        default=DEFAULT_WORKERS,
        help="data-loading processes",
    )
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)


def _data_options(args: argparse.Namespace) -> None:
    """--classes, --val-fraction ... describe a --data folder; with VOC they are a mistake."""
    folder_only = args.val_fraction != TrainConfig.val_fraction or any(
        getattr(args, k) is not None for k in ("classes", "mask_values", "images", "masks")
    )
    if args.voc_root and folder_only:
        raise UsageError(
            "--classes, --mask-values, --images, --masks and --val-fraction are for --data, "
            "not --voc-root"
        )
    if args.data and args.download:
        raise UsageError("--download fetches VOC; it does not go with --data")


def _pairs(dataset: Dataset) -> str:
    return f"{len(dataset)} pair{'s' if len(dataset) != 1 else ''}"  # type: ignore[arg-type]


def _train_parser() -> Parser:
    p = Parser(
        prog="fullfcn-train",
        description="Train VGG16 FCN-32s/16s/8s on PASCAL VOC or on your own folder of "
        "images and masks (paper or modern recipe). "
        "Multi-GPU: torchrun --nproc_per_node=N --no-python fullfcn-train ...",
    )
    p.add_argument("--variant", choices=VARIANTS, help="which FCN")
    _add_data(p)
    p.add_argument(
        "--sbd-root",
        help="SBD folder (cls/, img/, train.txt): the paper's "
        "training set; without it --train-split of VOC is used",
    )
    p.add_argument("--train-split", help="VOC split to train on")
    p.add_argument("--val-split", help="validate on this VOC split, e.g. seg11valid")
    p.add_argument("--recipe", choices=tuple(RECIPES), help="paper (sec. 4.3) or modern")
    p.add_argument("--weights", help="imagenet (VGG16 through torchvision), none, or a file")
    p.add_argument("--init-from", help="trained coarser FCN to start from (staged training)")
    # Bounds are part of each type: a NaN learning rate or a zero batch is a usage error
    # at once, not a NaN loss (or a ZeroDivisionError) after VGG16 has been built.
    p.add_argument(
        "--lr", type=float_arg(1e-20, 10.0), help="default: the recipe's (paper: per variant)"
    )
    p.add_argument("--momentum", type=float_arg(0.0, 1.0), help="default: the recipe's")
    p.add_argument("--weight-decay", type=float_arg(0.0, 1.0), help="on weights")
    p.add_argument("--batch-size", type=int_arg(1, 4096), help="per process")
    p.add_argument("--crop-size", type=int_arg(1, 8192), help="default: the recipe's")
    p.add_argument("--iterations", type=int_arg(1, 10**9), help="SGD steps in all")
    p.add_argument(
        "--stop-at", type=int_arg(1, 10**9), help="stop after this iteration (resume later)"
    )
    p.add_argument("--checkpoint-every", type=int_arg(1, 10**9), help="iterations between saves")
    p.add_argument("--val-every", type=int_arg(1, 10**9), help="iterations")
    p.add_argument("--out-dir", help="checkpoint.pt, log.csv, tensorboard/")
    p.add_argument("--resume", action="store_true", help="continue OUT_DIR/checkpoint.pt")
    p.add_argument(
        "--force",
        action="store_true",
        help="start over in OUT_DIR: remove its checkpoint.pt, log.csv and tensorboard/",
    )
    p.add_argument("--seed", type=int_arg(0, 2**31 - 1))
    _add_run(p)
    p.add_argument("--width-divisor", type=int, choices=WIDTH_DIVISORS, help=argparse.SUPPRESS)
    p.add_argument("--download", action="store_true", help="fetch VOC/SBD when missing")
    p.add_argument("--tensorboard", action=argparse.BooleanOptionalAction)
    # The defaults are the configuration's own (also shown by --help). The data folders
    # have none: one of the two must be given, and argparse would check a default's type.
    defaults = dataclasses.asdict(TrainConfig())
    p.set_defaults(**{k: v for k, v in defaults.items() if k not in ("voc_root", "data")})
    return p


def _train(argv: Sequence[str] | None) -> int:
    namespace = _train_parser().parse_args(argv)
    _data_options(namespace)
    args = vars(namespace)
    args["voc_root"] = str(args["voc_root"] or "")
    args["data"] = str(args["data"]) if args["data"] else None
    if args["weights"] in ("none", "None", ""):
        args["weights"] = None
    config = TrainConfig(**args).resolved()
    main_rank = int(os.environ.get("RANK", "0")) == 0
    pick_device(config.device)  # these refusals come before the pairs are listed and counted
    check_inputs_apart(config, Path(config.out_dir))
    train_set, val_set = data = datasets(config)  # every pair checked, none dropped
    if main_rank:
        held_out = f"validation on {_pairs(val_set)}" if val_set else "no validation"
        print(
            f"fullfcn-train: training on {_pairs(train_set)} ({train_set.num_classes} classes), "
            f"{held_out}",
            flush=True,
        )
        for note in getattr(train_set, "label_warnings", list)():
            print(f"fullfcn-train: warning: {note}", file=sys.stderr, flush=True)
    try:
        result = train(config, data)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if main_rank:
        print(f"fullfcn-train: {result.iteration} iterations, checkpoint {result.checkpoint}")
        if result.metrics is not None:
            print(f"fullfcn-train: mean IU {result.metrics['mean_iou']:.4f}")
    return 0


def train_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fullfcn-train`` (under torchrun too: ``--no-python fullfcn-train``)."""
    return run_cli("fullfcn-train", _train, argv)


# -- fullfcn-eval ----------------------------------------------------------------------------


def _eval_parser() -> Parser:
    p = Parser(
        prog="fullfcn-eval",
        description="Evaluate an FCN on a PASCAL VOC split or a split of your own folder: "
        "pixel accuracy, mean accuracy, mean IU, frequency-weighted IU and per-class IU.",
    )
    p.add_argument(
        "--weights",
        required=True,
        help="fullfcn-train checkpoint or pytorch-fcn fcnXs_from_caffe.pth",
    )
    p.add_argument(
        "--variant", choices=VARIANTS, help="expected variant (default: read from the weights)"
    )
    _add_data(p)
    p.add_argument(
        "--split",
        help="VOC: train, val, seg11valid (the paper's, the default) or a file of image ids; "
        "--data: train or val (the default)",
    )
    p.add_argument("--download", action="store_true", help="fetch VOC / the split list")
    _add_run(p)
    p.add_argument("--json", help="also write the metrics to this JSON file")
    p.add_argument("--force", action="store_true", help="replace an existing --json file")
    return p


def _eval(argv: Sequence[str] | None) -> int:
    args = _eval_parser().parse_args(argv)
    if args.json:  # before the weights are read: a typo must not cost the whole split
        check_outputs([args.json], inputs=[args.weights], force=args.force)
    _data_options(args)
    device = pick_device(args.device)
    if args.voc_root and not args.download:
        find_voc2012(args.voc_root)  # fail before reading a 500 MB weights file
    model, stored = load_checkpoint(args.weights, args.variant)
    transforms = eval_transforms(model.preprocess)
    seen: set[str] = set()
    if args.data:
        args.split = args.split or "val"
        trained = model.mask_values  # the masks are read as the net was trained to read them
        if args.mask_values and trained and args.mask_values != trained:
            raise ValueError(
                f"{args.weights} was trained with --mask-values {','.join(map(str, trained))}"
            )
        # the folder's own classes.txt, else --classes, else the class count the model scores
        known = args.classes is not None or (args.data / CLASSES_FILE).is_file()
        dataset: SegmentationFolder | VOCSegmentation = SegmentationFolder(
            args.data,
            args.split,
            transforms,
            num_classes=args.classes if known or args.mask_values else model.num_classes,
            val_fraction=args.val_fraction,
            mask_values=args.mask_values or trained,
            images=args.images,
            masks=args.masks,
            progress=args.progress,
        )
        seen = set(stored.trained_on or ()) & set(dataset.ids)
        trained_here = stored.trained_in == str(args.data.resolve())
        said = f"{len(seen)} of the {len(dataset)} pairs of split {args.split!r} of {args.data}"
        if seen and trained_here and args.split != "train":  # no validation, then
            raise ValueError(
                f"{said} were trained on by {args.weights}, e.g. {min(seen)!r} (a seeded "
                "split moves when pairs are added: keep train.txt and val.txt)"
            )
        if seen and not trained_here:  # numbered stems recur; a copied folder too
            print(
                f"fullfcn-eval: warning: {said} have the stems of pairs {args.weights} was "
                f"trained on in {stored.trained_in}, e.g. {min(seen)!r}: if they are the same "
                "images, this is not a held-out score",
                file=sys.stderr,
            )
            seen = set()  # not known to be trained on
    else:
        args.split = args.split or "seg11valid"
        dataset = VOCSegmentation(
            args.voc_root, args.split, download=args.download, transforms=transforms
        )
    if dataset.num_classes != model.num_classes:
        raise ValueError(
            f"{args.weights} scores {model.num_classes} classes, {args.data} has "
            f"{dataset.num_classes}: evaluate on the data the model was trained for"
        )
    matrix = confusion_matrix(
        model,
        eval_loader(dataset, num_workers=args.workers),
        device,
        amp=args.amp,
        channels_last=args.channels_last,
        progress=args.progress,
    )
    metrics = matrix.compute()
    counts = matrix.matrix.cpu()
    print(
        f"{model.variant} on {args.split} ({len(dataset)} images"
        f"{f', {len(seen)} of them trained on' if seen else ''}, {int(counts.sum()):,} "
        f"labelled pixels counted, {int(matrix.ignored):,} ignored, "
        f"{model.preprocess.name} preprocessing)"
    )
    print(format_metrics(metrics, list(dataset.classes)))
    if args.json:
        report = {
            "variant": model.variant,
            "split": args.split,
            "classes": list(dataset.classes),
            **metrics,
            "confusion": counts.tolist(),  # [truth][prediction] pixel counts
            "ignored": int(matrix.ignored),  # pixels labelled 255, not counted
        }
        with atomic_write(args.json, replace=args.force) as f:
            f.write(json.dumps(report, indent=2).encode())
    return 0


def eval_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fullfcn-eval``."""
    return run_cli("fullfcn-eval", _eval, argv)


# -- fullfcn-predict -------------------------------------------------------------------------


def _predict_parser() -> Parser:
    p = Parser(
        prog="fullfcn-predict",
        description="Segment an image, or every image of a folder, with a VGG16 FCN.",
    )
    p.add_argument("image", help="an image, or a folder of images")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="mask PNG (the palette the weights were trained with); for a folder of images, "
        "the folder of OUT_DIR/<stem>.png and <stem>_overlay.png",
    )
    p.add_argument("--overlay", help="overlay PNG (default: OUT_overlay.png)")
    p.add_argument(
        "--weights",
        help="fullfcn-train checkpoint or pytorch-fcn "
        "fcnXs_from_caffe.pth; without it the net is untrained (random)",
    )
    p.add_argument(
        "--variant",
        choices=VARIANTS,
        help="default: read from the weights (fcn8s when there are none)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--amp", action="store_true")
    p.add_argument(
        "--max-pixels",
        type=int_arg(1, 10**10),
        default=MAX_PIXELS,
        help=f"refuse larger images (default {MAX_PIXELS:,}: about 0.5 GB per megapixel)",
    )
    p.add_argument("--force", action="store_true", help="replace existing output files")
    return p


def _said(found: list[str], out: Path, over: Path) -> str:
    return f"fullfcn-predict: {out} and {over} ({', '.join(found) or 'background only'})"


def _predict_cli(argv: Sequence[str] | None) -> int:
    args = _predict_parser().parse_args(argv)
    output, folder = Path(args.output), Path(args.image).is_dir()
    if folder:
        if args.overlay or output.suffix.lower() == ".png":
            raise UsageError("for a folder of images, -o names a folder; --overlay is not used")
        if output.resolve() == Path(args.image).resolve():  # its masks would be read next time
            raise UsageError(f"-o {output} is the folder of images; choose another folder")
        check_writable(output)
    else:
        over = (
            Path(args.overlay) if args.overlay else output.with_name(f"{output.stem}_overlay.png")
        )
        # Every output check comes before the image is decoded or the model read: the photo
        # and the weights are inputs, and an existing file is replaced only with --force.
        check_outputs([output, over], inputs=[args.image, args.weights], force=args.force)
        for path in (output, over):
            if path.suffix.lower() != ".png":
                raise UsageError(f"output {path} must be a .png (the palette needs lossless PNG)")
        image = load_image(args.image, args.max_pixels)
    device = pick_device(args.device)
    model = (
        load_model(args.weights, args.variant) if args.weights else build(args.variant or "fcn8s")
    )
    if not folder:
        found = save_prediction(
            model, image, output, over, device=device, amp=args.amp, replace=args.force
        )
        print(_said(found, output, over))
        return 0
    # One line per file: to stdout when segmented, to stderr when refused (predict_folder
    # goes on past it); exit 1 if any was.
    refused = done = 0
    for path, (out, over), result in predict_folder(
        model,
        args.image,
        output,
        device=device,
        amp=args.amp,
        max_pixels=args.max_pixels,
        replace=args.force,
        inputs=[args.weights],
    ):
        if isinstance(result, Exception):
            refused += 1
            print(f"fullfcn-predict: refused {path}: {one_line(result)}", file=sys.stderr)
        else:
            done += 1
            print(_said(result, out, over), flush=True)
    if refused:
        raise CliError(f"{refused} of {refused + done} files refused (listed above)")
    return 0


def predict_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fullfcn-predict``."""
    return run_cli("fullfcn-predict", _predict_cli, argv)
