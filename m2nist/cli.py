"""``m2nist-gen``: write M2NIST to a directory, or verify one.

Every failure the user can cause ends as one line ``m2nist-gen: error: ...`` on
stderr (through :func:`fcnbase.cli.run_cli`): exit 2 for bad arguments, 1 for data or
I/O problems, 130 on Ctrl-C or SIGTERM (temporary files removed), never a traceback.
Nothing is written before the arguments, the MNIST source, OUT and ``--preview`` have
all been checked, and nothing that exists is replaced without ``--force``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from fcnbase.cli import Parser, UsageError, int_arg, run_cli
from fcnbase.device import available_cores
from m2nist.mnist import SAMPLE
from m2nist.params import MAX_PIXELS, ParamError, Params, as_pair
from m2nist.save import FORMATS, shard_rows, write_dataset
from m2nist.verifier import REGENERATE, verify

PROG = "m2nist-gen"
EXAMPLES = """\
examples:
  m2nist-gen out/m2nist                           # 5000 train + 1000 test images, npz
  m2nist-gen out/demo --sample --train 2000 --test 500 --preview out/demo/preview.png
  m2nist-gen out/course --format kaggle-flat    # OUT/combined.npy: 5000 train, then 1000 test
  m2nist-gen out/folder --format png            # images/, masks/, classes.txt, train/val.txt
  m2nist-gen out/part0 --train 100000 --shard 0/4  # rows 0-24999 of the same 100000
  m2nist-gen --verify out/m2nist --regenerate all  # checksums, rows regenerated

kaggle-flat: the --train rows, then the --test rows. The last --test rows are a test set
made from MNIST test digits only; any other split of the rows puts images that share
source digits on both sides (as every split of the 2018 file did).

MNIST source: --mnist-dir DIR, else $M2NIST_MNIST_DIR, else the torchvision download
cache in $M2NIST_HOME (default ~/.cache/m2nist); --sample uses the bundled sample.
"""


def _pair_arg(what: str, sep: str) -> Callable[[str], tuple[int, int]]:
    """An argparse type reading a pair with the same parser as the Python API."""

    def parse(text: str) -> tuple[int, int]:
        try:
            return as_pair(text, what, sep)
        except ParamError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _shard(text: str) -> tuple[int, int]:
    index, count = _pair_arg("--shard", "/")(text)
    if count < 1 or index >= count:
        raise argparse.ArgumentTypeError(f"--shard I/N needs 0 <= I < N, got {text!r}")
    return index, count


def _formats(text: str) -> list[str]:
    """``--format``: one name, ``both`` (npz and kaggle), or a comma list (``npz,png``)."""
    names = ["npz", "kaggle"] if text == "both" else [n.strip() for n in text.split(",")]
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"invalid choice: {unknown[0]!r} (choose from {', '.join(FORMATS)}, both, or a "
            "comma-separated list)"
        )
    return [f for f in FORMATS if f in names]


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog=PROG,
        description="Generate M2NIST (MNIST digits composed without overlap, with "
        "per-pixel labels) reproducibly, or verify a generated directory.",
        epilog=EXAMPLES,
    )
    p.add_argument("out", nargs="?", type=Path, help="output directory")
    p.add_argument("--verify", metavar="OUT", type=Path, help="check OUT against its metadata")
    p.add_argument(
        "--regenerate",
        choices=REGENERATE,
        default="sample",
        help="with --verify: regenerate a sample of blocks (default), all rows, or none, and "
        "compare bytes (needs the recorded MNIST: --mnist-dir, --sample, $M2NIST_MNIST_DIR "
        "or the recorded folder)",
    )
    count = int_arg(0, 10**10)  # far beyond any run; no arithmetic on it overflows
    p.add_argument("--train", type=count, default=5000, help="train images (default 5000)")
    p.add_argument("--test", type=count, default=1000, help="test images (default 1000)")
    p.add_argument("--seed", type=int_arg(0, 2**63 - 1), default=0, help="random seed (default 0)")
    digits, per_image = _pair_arg("--digits", "-"), "digits per image, uniform (default 1-3)"
    p.add_argument("--digits", type=digits, default=(1, 3), metavar="MIN-MAX", help=per_image)
    p.add_argument(
        "--size",
        type=_pair_arg("--size", "[xX]"),
        default=(64, 84),
        metavar="HxW",
        help=f"canvas size (default 64x84, each side >= 28, at most {MAX_PIXELS} pixels)",
    )
    gap = "min gap in pixels between ink boxes (default 2)"
    p.add_argument("--margin", type=int_arg(0, 4096), default=2, help=gap)
    ink = "ink = pixel > T, what labels and boxes cover (default 0, as Kaggle)"
    p.add_argument("--threshold", type=int_arg(0, 254), default=0, help=ink)
    src = p.add_mutually_exclusive_group()
    idx = "folder with the four MNIST IDX files (.gz or not)"
    src.add_argument("--mnist-dir", type=Path, metavar="DIR", help=idx)
    src.add_argument("--sample", action="store_true", help="the bundled real-MNIST sample")
    p.add_argument(
        "--format",
        type=_formats,
        default=["npz"],
        metavar="FORMAT",
        help="npz: OUT/{train,test}.npz; kaggle: OUT/SPLIT/{combined,segmented}.npy; "
        "kaggle-flat: OUT/{combined,segmented}.npy, train rows then test rows (see below); "
        "png: OUT/images/, OUT/masks/ (index PNGs), classes.txt, train.txt, val.txt; "
        "both: npz and kaggle; or a comma list such as npz,png (default npz)",
    )
    p.add_argument(
        "--workers",
        type=int_arg(1, 4096),
        default=available_cores(),
        help=f"threads (default and maximum: the {available_cores()} cores available); the "
        "output is the same for any value",
    )
    slices = "write only the I-th (0-based) of N equal consecutive slices"
    p.add_argument("--shard", type=_shard, metavar="I/N", help=slices)
    grid = "also save a grid of the first images with label overlays"
    p.add_argument("--preview", type=Path, metavar="FILE.png", help=grid)
    force = "replace existing outputs and remove the previous run's files this one does not"
    p.add_argument("--force", action="store_true", help=force)
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    source = SAMPLE if args.sample else args.mnist_dir
    if (args.out is None) == (args.verify is None):
        raise UsageError("give exactly one of OUT or --verify OUT")
    if args.verify is not None:
        notes: list[str] = []
        problems = verify(args.verify, regenerate=args.regenerate, source=source, notes=notes)
        for problem in problems:
            print(f"{PROG}: {problem}", file=sys.stderr)
        for note in [] if args.quiet or problems else [*notes, "OK"]:
            print(f"{args.verify}: {note}")
        return 1 if problems else 0
    # The parameters are checked here; write_dataset checks the MNIST source, the fit, OUT
    # and --preview, all before its first image.
    params = Params(args.digits, args.size, args.margin, args.threshold)
    if "kaggle-flat" in args.format and args.shard is not None:
        raise UsageError(
            "--format kaggle-flat puts the test rows after all the train rows, which a shard "
            "cannot: use --format kaggle (per-split files) with --shard"
        )
    counts = {"train": args.train, "test": args.test}
    total = sum(b - a for a, b in (shard_rows(n, args.shard) for n in counts.values()))
    bar = None  # tqdm costs 0.02 s to import: a --quiet run (a script's) does without it
    if not args.quiet:
        from tqdm import tqdm

        # delay: the bar appears with the first rows written, after every check and the lock,
        # so that a refusal is the only line on stderr; npz rows are written in 3 passes
        rows = total * (3 if "npz" in args.format else 1)
        bar = tqdm(total=rows, unit="row", file=sys.stderr, leave=False, delay=0.1)
    started = time.perf_counter()
    try:
        metadata = write_dataset(
            args.out,
            counts=counts,
            seed=args.seed,
            params=params,
            source=source,
            formats=args.format,
            workers=min(args.workers, available_cores()),
            shard=args.shard,
            force=args.force,
            progress=bar.update if bar else None,
            preview=args.preview,
        )
    except KeyboardInterrupt:  # what fcnbase.cli.run_cli says after "interrupted"
        raise KeyboardInterrupt("temporary files removed") from None
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet:
        seconds = time.perf_counter() - started
        size = sum(f["bytes"] for f in metadata["files"].values())
        splits = ", ".join(f"{s} {v['images']}" for s, v in metadata["splits"].items())
        print(
            f"wrote {args.out}: {splits} images, {size / 1e6:.1f} MB in {seconds:.1f} s "
            f"({total / max(seconds, 1e-9):,.0f} img/s)"
            + (f"; preview {args.preview}" if args.preview is not None else "")
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``m2nist-gen``; returns the exit status (0, 1, 2 or 130)."""
    return run_cli(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
