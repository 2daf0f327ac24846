"""``m2nist-gen``: write M2NIST to a directory, or verify one.

Every failure the user can cause ends as one line ``m2nist-gen: error: ...`` on
stderr and a non-zero exit status (2 for bad arguments, 1 for data or I/O
problems), with no traceback, and nothing is written before all arguments and the
MNIST source have been checked.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
import time
from pathlib import Path

from m2nist.compose import (
    ParamError,
    Params,
    check_fits,
    default_workers,
    digit_pool,
)
from m2nist.io import OutputExistsError, shard_rows, verify, write_dataset
from m2nist.mnist import SAMPLE, MnistSourceError

PROG = "m2nist-gen"
EXAMPLES = """\
examples:
  m2nist-gen out/m2nist                           # 5000 train + 1000 test images, npz
  m2nist-gen out/demo --sample --train 2000 --test 500 --preview out/demo/preview.png
  m2nist-gen out/kaggle --format kaggle --train 5000 --test 0   # combined.npy/segmented.npy
  m2nist-gen out/big --train 1000000 --workers 2 --mnist-dir ~/data/mnist
  m2nist-gen out/part0 --train 100000 --shard 0/4  # rows 0-24999 of the same 100000
  m2nist-gen --verify out/m2nist                   # checksums and invariants

MNIST source: --mnist-dir DIR, else $M2NIST_MNIST_DIR, else the torchvision download
cache in $M2NIST_HOME (default ~/.cache/m2nist); --sample uses the bundled sample.
"""


class UsageError(Exception):
    """Bad command line: exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(message)


def _pair(text: str, sep: str, what: str) -> tuple[int, int]:
    match = re.fullmatch(rf"\s*(\d+)\s*{sep}\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{what} must look like A{sep}B, got {text!r}")
    return int(match[1]), int(match[2])


def _digits(text: str) -> tuple[int, int]:
    if text.isdigit():
        return int(text), int(text)
    return _pair(text, "-", "--digits")


def _size(text: str) -> tuple[int, int]:
    return _pair(text, "[xX]", "--size")


def _shard(text: str) -> tuple[int, int]:
    index, count = _pair(text, "/", "--shard")
    if count < 1 or index >= count:
        raise argparse.ArgumentTypeError(f"--shard I/N needs 0 <= I < N, got {text!r}")
    return index, count


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a count >= 0, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Generate M2NIST (MNIST digits composed without overlap, with "
        "per-pixel labels) reproducibly, or verify a generated directory.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("out", nargs="?", type=Path, help="output directory")
    p.add_argument("--verify", metavar="OUT", type=Path, help="check OUT against its metadata")
    p.add_argument("--train", type=_count, default=5000, help="train images (default 5000)")
    p.add_argument("--test", type=_count, default=1000, help="test images (default 1000)")
    p.add_argument("--seed", type=_count, default=0, help="random seed (default 0)")
    p.add_argument(
        "--digits",
        type=_digits,
        default=(1, 3),
        metavar="MIN-MAX",
        help="digits per image, uniform (default 1-3)",
    )
    p.add_argument(
        "--size",
        type=_size,
        default=(64, 84),
        metavar="HxW",
        help="canvas size (default 64x84, each side >= 28)",
    )
    p.add_argument(
        "--margin",
        type=_count,
        default=Params.margin,
        help=f"min gap in pixels between ink boxes (default {Params.margin})",
    )
    p.add_argument(
        "--threshold",
        type=_count,
        default=0,
        help="ink = pixel > T; mask and boxes use it (default 0, as Kaggle)",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--mnist-dir",
        type=Path,
        metavar="DIR",
        help="folder with the four MNIST IDX files (.gz or not)",
    )
    src.add_argument(
        "--sample",
        action="store_true",
        help="use the real-MNIST sample bundled with the package (offline)",
    )
    p.add_argument(
        "--format",
        choices=["npz", "kaggle", "both"],
        default="npz",
        help="npz: OUT/{train,test}.npz; kaggle: OUT/SPLIT/{combined,segmented}"
        ".npy; both (default npz)",
    )
    p.add_argument(
        "--workers",
        type=_count,
        default=default_workers(),
        help="threads generating blocks; output is identical for any value",
    )
    p.add_argument(
        "--shard",
        type=_shard,
        metavar="I/N",
        help="write only the I-th (0-based) of N equal consecutive slices",
    )
    p.add_argument(
        "--preview",
        type=Path,
        metavar="FILE.png",
        help="also save a grid of train images with label overlays",
    )
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    return p


def _validate(args: argparse.Namespace) -> tuple[Params, object]:
    """Check everything that can be checked before writing: params, source, fit."""
    if (args.out is None) == (args.verify is None):
        raise UsageError("give exactly one of OUT or --verify OUT")
    if args.workers < 1:
        raise UsageError("--workers must be >= 1")
    if args.preview is not None and args.preview.suffix.lower() != ".png":
        raise UsageError(f"--preview {args.preview}: must be a .png file")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise UsageError(f"{args.out} exists and is not a directory")
    params = Params(args.digits, args.size, args.margin, args.threshold)
    source = SAMPLE if args.sample else args.mnist_dir
    for split in ("train", "test"):
        check_fits(params, digit_pool(split, params, source))
    return params, source


def _run(args: argparse.Namespace) -> int:
    if args.verify is not None and args.out is None:
        problems = verify(args.verify)
        for problem in problems:
            print(f"{PROG}: {problem}", file=sys.stderr)
        if not args.quiet and not problems:
            print(f"{args.verify}: OK")
        return 1 if problems else 0
    params, source = _validate(args)
    if args.preview is not None and args.preview.exists() and not args.force:
        raise OutputExistsError(f"{args.preview} exists (use --force to overwrite)")
    formats = ["npz", "kaggle"] if args.format == "both" else [args.format]
    counts = {"train": args.train, "test": args.test}
    total = sum(
        stop - start for start, stop in (shard_rows(n, args.shard) for n in counts.values())
    )
    from tqdm import tqdm

    started = time.perf_counter()
    with tqdm(total=total, unit="img", disable=args.quiet, file=sys.stderr, leave=False) as bar:
        metadata = write_dataset(
            args.out,
            counts=counts,
            seed=args.seed,
            params=params,
            source=source,
            formats=formats,
            workers=args.workers,
            shard=args.shard,
            force=args.force,
            progress=bar,
        )
    seconds = time.perf_counter() - started
    if args.preview is not None:
        from m2nist.viz import save_preview

        save_preview(args.out, args.preview, split="train" if args.train else "test")
    if not args.quiet:
        size = sum(f["bytes"] for f in metadata["files"].values())
        splits = ", ".join(f"{s} {v['images']}" for s, v in metadata["splits"].items())
        print(
            f"wrote {args.out}: {splits} images, {len(metadata['files'])} files, "
            f"{size / 1e6:.1f} MB in {seconds:.1f} s ({total / max(seconds, 1e-9):,.0f} img/s)"
            + (f"; preview {args.preview}" if args.preview is not None else "")
        )
    return 0


def _error(exc: Exception) -> None:
    """Report a failure as exactly one line on stderr."""
    print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``m2nist-gen``; returns the exit status."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        return _run(build_parser().parse_args(argv))
    except (UsageError, ParamError) as exc:
        _error(exc)
        return 2
    except (MnistSourceError, OutputExistsError, OSError) as exc:
        _error(exc)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; temporary files removed", file=sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
