"""``tinyfcn-train``: classifier -> conversion -> FCN on M2NIST -> evaluation, in one command.

A thin shell over :func:`tinyfcn.train.run`: it writes ``OUT/<variant>.pt`` (a checkpoint)
and ``OUT/<variant>.png`` (predictions beside the truth), prints the paper's four metrics and
ends with the line ``miou=<float> seconds=<float>``. It never replaces a result it did not
make in this run (unless ``--force``, or ``--resume`` of that very checkpoint) and checks
everything it can before any data is made (every case: docs/tinyfcn.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from torch import Tensor

from fcnbase import (
    Parser,
    UsageError,
    check_outputs,
    check_writable,
    lock_dir,
    pick_device,
    remove_leftovers,
    run_cli,
)
from fcnbase.cli import float_arg, int_arg
from m2nist import M2NIST
from tinyfcn.config import TrainConfig
from tinyfcn.data import as_tensors
from tinyfcn.metrics import format_metrics
from tinyfcn.model import VARIANTS
from tinyfcn.plot import plot_predictions
from tinyfcn.train import run

PROG = "tinyfcn-train"


#: The options that are TrainConfig fields of the same name and meaning.
_SAME_NAMES = ("variant", "seed", "classifier_epochs", "classifier_shift", "epochs")
_SAME_NAMES += ("batch_size", "lr", "eval_every", "threads")


def _parser() -> argparse.ArgumentParser:
    defaults = TrainConfig()
    # Bounds far above any sensible run, low enough that a typo is a usage error at once
    # rather than an OverflowError or a 100 GB allocation later.
    images = int_arg(1, 100_000)
    epochs, seconds = float_arg(0, 10_000.0), float_arg(0, 30 * 24 * 3600.0)  # 30 days
    p = Parser(
        prog=PROG,
        description="Train the MNIST classifier, convert it into a tiny FCN, train that on\n"
        "M2NIST and evaluate it, in one command. fcn4s, fcn2s and fcn1s are the tiny\n"
        "analogues of the paper's FCN-32s, FCN-16s and FCN-8s; article is the 2018\n"
        "article's decoder.",
        epilog="example:\n  tinyfcn-train --sample --variant fcn1s --seconds 120 --out out/tinyfcn",
    )
    p.add_argument("--variant", choices=VARIANTS, help="which tiny FCN to train")
    p.add_argument("--out", type=Path, default=Path("out/tinyfcn"), help="output folder")
    p.add_argument(
        "--resume", type=Path, help="continue a checkpoint (OUT/<variant>.pt itself is replaced)"
    )
    p.add_argument("--force", action="store_true", help="replace existing outputs in OUT")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--mnist-dir", help="folder with the MNIST IDX files (else M2NIST_MNIST_DIR)")
    src.add_argument("--sample", action="store_true", help="use m2nist's bundled MNIST sample")
    p.add_argument("--data", type=Path, help="train and score on this m2nist-gen folder's splits")
    for split in ("train", "test"):  # no argparse default: --data brings its own images
        text = f"M2NIST {split} images (default {getattr(defaults, f'{split}_images')})"
        p.add_argument(f"--{split}-images", type=images, help=text)
    p.add_argument("--seed", type=int_arg(0, 2**32 - 1), help="data and init seed")
    p.add_argument("--classifier-epochs", type=epochs, help="classifier epochs, before conversion")
    p.add_argument(
        "--classifier-shift",
        type=int_arg(0, 14),
        help="random shifts (pixels) of the digits while training the classifier",
    )
    p.add_argument("--epochs", type=epochs, help="FCN epochs (default: seconds)")
    p.add_argument("--seconds", type=seconds, help="wall-clock budget of the run (0: epochs only)")
    p.add_argument("--batch-size", type=int_arg(1, 4096), help="FCN batch size")
    p.add_argument("--lr", type=float_arg(0, 10), help="FCN Adam learning rate (cosine)")
    p.add_argument("--eval-every", type=seconds, help="seconds between evaluations")
    p.add_argument("--frozen-upsampling", action="store_true", help="keep bilinear kernels fixed")
    p.add_argument("--no-pretrained", action="store_true", help="skip the classifier (ablation)")
    p.add_argument(
        "--threads", type=int_arg(1, 1024), help="torch CPU threads (tiny nets: 1 is fastest)"
    )
    p.add_argument("--device", help="cpu, cuda, ... (default: cuda when present)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(**{name: getattr(defaults, name) for name in (*_SAME_NAMES, "seconds")})
    return p


def _config(args: argparse.Namespace) -> TrainConfig:
    """The run's config; its own checks raise UsageError (exit 2), as argparse's do."""
    if args.data is not None and (args.train_images or args.test_images):
        raise UsageError("--data brings its own images: drop --train-images and --test-images")
    defaults = TrainConfig()
    return TrainConfig(
        **{name: getattr(args, name) for name in _SAME_NAMES},
        pretrained=not args.no_pretrained,
        learnable_upsampling=not args.frozen_upsampling,
        train_images=args.train_images or defaults.train_images,
        test_images=args.test_images or defaults.test_images,
        source="sample" if args.sample else args.mnist_dir,
        seconds=args.seconds or None,
    )


def _folder_split(folder: Path, split: str) -> tuple[Tensor, Tensor]:
    """A split of an m2nist-gen folder as the net takes it, read and checked now, before the
    classifier trains for minutes: what is wrong with its arrays names the file."""
    dataset = M2NIST(folder, split)
    try:
        return as_tensors(dataset)
    except ValueError as exc:
        raise ValueError(f"{folder / f'{split}.npz'}: {exc}") from None


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    config = _config(args)
    device = pick_device(args.device)
    if args.resume is not None and not args.resume.is_file():
        raise FileNotFoundError(f"checkpoint {args.resume} does not exist")
    data = None  # --data: the splits of an m2nist-gen folder, checked before any training
    if args.data is not None:
        data = _folder_split(args.data, "train"), _folder_split(args.data, "test")
        config = replace(config, train_images=len(data[0][0]), test_images=len(data[1][0]))
    checkpoint = args.out / f"{config.variant}.pt"
    picture = args.out / f"{config.variant}.png"
    outputs = [checkpoint, picture]
    check_writable(args.out)
    with lock_dir(args.out):
        # Checked under the lock: a run starting beside us cannot slip its outputs in.
        # --resume of the very checkpoint this run writes: its continuation replaces it.
        continues = bool(args.resume) and checkpoint.exists()
        continues = continues and os.path.samefile(args.resume, checkpoint)
        check_outputs(
            outputs,
            inputs=[] if continues else [args.resume],  # continuing X may replace X itself
            force=args.force or continues,
            hint="--force, or --resume of that checkpoint",
        )
        for out in outputs:  # what a killed run left half-written for our outputs: we hold
            remove_leftovers(out)  # the folder's lock, so no running writer owns it
        try:
            result = run(
                config,
                checkpoint=checkpoint,
                resume=args.resume,
                device=device,
                progress=not args.no_progress,
                data=data,
            )
        except KeyboardInterrupt as stop:
            if not str(stop):  # stopped while making the data or training the classifier
                raise KeyboardInterrupt("no FCN step was made; nothing saved") from None
            if str(stop).startswith("checkpoint saved"):
                picture.unlink(missing_ok=True)  # it would show the previous model
            raise
        try:
            figure = plot_predictions(result.model, result.test, picture)
        except KeyboardInterrupt:
            picture.unlink(missing_ok=True)  # it would show the previous model
            raise KeyboardInterrupt(f"checkpoint saved to {checkpoint}; no picture") from None
    figure.clear()
    if result.classifier_accuracy is not None:
        print(
            f"classifier: test accuracy {result.classifier_accuracy:.4f} "
            f"in {result.classifier_seconds:.1f} s"
        )
    print(format_metrics(result.metrics))
    print(f"checkpoint {checkpoint}\npredictions {picture}")
    print(f"threads {result.config.threads}")
    if result.history:  # the budget's clock stops while the net is evaluated
        print(f"evaluating took {result.history[-1]['eval_seconds']:.1f} s beyond the budget")
    print(f"miou={result.metrics['mean_iou']:.4f} seconds={result.seconds:.1f}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 runtime, 2 usage error, 130 interrupted)."""
    return run_cli(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
