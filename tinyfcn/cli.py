"""``tinyfcn-train``: classifier -> conversion -> FCN on M2NIST -> evaluation, in one command.

A thin shell over :func:`tinyfcn.train.run`. It writes ``OUT/<variant>.pt`` (state dict
plus config, loadable with ``weights_only=True``) and ``OUT/<variant>.png`` (predictions
beside the truth), prints the paper's four metrics, and ends with the line
``miou=<float> seconds=<float>``. Errors are one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from tinyfcn.metrics import format_metrics
from tinyfcn.model import VARIANTS
from tinyfcn.train import CLASS_NAMES, TrainConfig, pick_device, plot_predictions, run

PROG = "tinyfcn-train"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, ``prog: error: ...`` (exit 2), like every other
    error of the project's tools (fullfcn's CLIs use it too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    defaults = TrainConfig()
    p = Parser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("--variant", choices=VARIANTS, default=defaults.variant)
    p.add_argument("--out", type=Path, default=Path("out/tinyfcn"), help="output folder")
    p.add_argument("--resume", type=Path, help="continue training this checkpoint")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--mnist-dir", help="folder with the MNIST IDX files (else M2NIST_MNIST_DIR)")
    src.add_argument("--sample", action="store_true", help="use m2nist's bundled MNIST sample")
    p.add_argument("--train-images", type=int, default=defaults.train_images)
    p.add_argument("--test-images", type=int, default=defaults.test_images)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--classifier-epochs", type=float, default=defaults.classifier_epochs)
    p.add_argument(
        "--classifier-shift",
        type=int,
        default=defaults.classifier_shift,
        help="random shifts (pixels) of the digits while training the classifier",
    )
    p.add_argument("--epochs", type=float, help="FCN epochs (default: seconds only)")
    p.add_argument(
        "--seconds", type=float, default=defaults.seconds, help="wall-clock budget of the run"
    )
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--eval-every", type=float, default=defaults.eval_every, help="seconds")
    p.add_argument(
        "--frozen-upsampling", action="store_true", help="keep the bilinear kernels fixed"
    )
    p.add_argument(
        "--no-pretrained", action="store_true", help="skip the classifier: random init (ablation)"
    )
    p.add_argument("--device", help="cpu, cuda, ... (default: cuda when present)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _config(args: argparse.Namespace) -> TrainConfig:
    source = "sample" if args.sample else args.mnist_dir
    seconds = None if args.seconds is not None and args.seconds <= 0 else args.seconds
    return TrainConfig(
        variant=args.variant,
        pretrained=not args.no_pretrained,
        learnable_upsampling=not args.frozen_upsampling,
        train_images=args.train_images,
        test_images=args.test_images,
        seed=args.seed,
        source=source,
        classifier_epochs=args.classifier_epochs,
        classifier_shift=args.classifier_shift,
        epochs=args.epochs,
        seconds=seconds,
        batch_size=args.batch_size,
        lr=args.lr,
        eval_every=args.eval_every,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 run-time error, 2 usage error)."""
    args = _parser().parse_args(argv)
    try:
        config = _config(args)
        device = pick_device(args.device)
        if args.resume is not None and not args.resume.is_file():
            raise FileNotFoundError(f"checkpoint {args.resume} does not exist")
        checkpoint = args.out / f"{config.variant}.pt"
        result = run(
            config,
            checkpoint=checkpoint,
            resume=args.resume,
            device=device,
            progress=not args.no_progress,
        )
        picture = plot_predictions(result.model, result.test, args.out / f"{config.variant}.png")
    except (ValueError, OSError, RuntimeError) as exc:  # MnistSourceError is a RuntimeError
        print(f"{PROG}: error: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    picture.clear()
    if result.classifier_accuracy is not None:
        print(
            f"classifier: test accuracy {result.classifier_accuracy:.4f} "
            f"in {result.classifier_seconds:.1f} s"
        )
    print(format_metrics(result.metrics, CLASS_NAMES))
    print(f"checkpoint {checkpoint}\npredictions {args.out / f'{config.variant}.png'}")
    print(f"miou={result.metrics['mean_iou']:.4f} seconds={result.seconds:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
