"""Build the real-MNIST sample bundled as ``m2nist/data/mnist_sample.npz``.

The sample lets ``m2nist-gen --sample`` (and ``make demo``) run with no network.
It is a deterministic subset of the original MNIST files: the first
``TRAIN_PER_CLASS`` digits of each class of the training file and the first
``TEST_PER_CLASS`` of each class of the test file, in file order. The script
refuses anything but the four original files (checked by md5), and it writes the
archive with fixed timestamps, so re-running it reproduces the committed bytes.

    python scripts/make_mnist_sample.py --mnist-dir DIR [--out m2nist/data]

MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, licensed
CC BY-SA 3.0; the same license applies to the sample (see PROVENANCE.md).
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fcnbase.cli import CliError, Parser, run_cli
from fcnbase.outputs import atomic_write
from m2nist.mnist import KNOWN_MD5, load_idx_folder
from m2nist.save import npz_member

TRAIN_PER_CLASS = 300
TEST_PER_CLASS = 100
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "m2nist" / "data"

PROVENANCE = """\
# Bundled MNIST sample -- provenance and license

`mnist_sample.npz` holds {n_train} real MNIST training digits and {n_test} real MNIST
test digits (28x28 uint8, labels 0-9), so that `m2nist-gen --sample` works offline.

## Source

THE MNIST DATABASE of handwritten digits by **Yann LeCun, Corinna Cortes and
Christopher J.C. Burges**, in its original IDX files. Only files with these md5s
(of the uncompressed IDX data) are accepted by the build script:

| file | md5 (uncompressed) |
| --- | --- |
{md5_rows}

## Selection rule (deterministic)

The first {train_k} images of each class 0-9 in `train-images-idx3-ubyte`, and the first
{test_k} of each class in `t10k-images-idx3-ubyte`, in file order; within the sample
they stay in file order. The MNIST indices taken are stored next to the pixels
(`train_indices`, `test_indices`).

## Rebuild

    python scripts/make_mnist_sample.py --mnist-dir DIR

writes byte-identical files (fixed zip timestamps; a test checks this when
`M2NIST_MNIST_DIR` is set).

## License

MNIST is made available under the Creative Commons Attribution-Share Alike 3.0
license (CC BY-SA 3.0, https://creativecommons.org/licenses/by-sa/3.0/). This sample
is a subset of it and is distributed under the same license, with attribution to
Yann LeCun, Corinna Cortes and Christopher J.C. Burges.
"""


def first_per_class(labels: np.ndarray, k: int) -> np.ndarray:
    """Indices of the first ``k`` examples of every class, in file order."""
    picked = [np.flatnonzero(labels == c)[:k] for c in range(10)]
    return np.sort(np.concatenate(picked))


def build(mnist_dir: Path, out: Path) -> Path:
    """Write ``mnist_sample.npz`` and ``PROVENANCE.md`` into ``out``; return the npz."""
    arrays = {}
    for split, train, k in (("train", True, TRAIN_PER_CLASS), ("test", False, TEST_PER_CLASS)):
        source = load_idx_folder(mnist_dir, train)
        for name, info in source.source["files"].items():
            if info["verified"] != "md5":
                raise CliError(f"{mnist_dir / name}: not the original MNIST file (md5)")
        index = first_per_class(source.labels, k)
        arrays[f"{split}_images"] = source.images[index]
        arrays[f"{split}_labels"] = source.labels[index]
        arrays[f"{split}_indices"] = index.astype(np.int32)
    path = out / "mnist_sample.npz"
    # The package's own data: never half-rewritten; deflated, with fixed member times.
    with atomic_write(path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as npz:
        for name, array in arrays.items():
            with npz_member(npz, name, array.dtype, array.shape) as member:
                member.write(np.ascontiguousarray(array))
    md5_rows = "\n".join(f"| {name} | {md5} |" for name, md5 in KNOWN_MD5.items())
    text = PROVENANCE.format(
        n_train=len(arrays["train_labels"]),
        n_test=len(arrays["test_labels"]),
        train_k=TRAIN_PER_CLASS,
        test_k=TEST_PER_CLASS,
        md5_rows=md5_rows,
    )
    with atomic_write(out / "PROVENANCE.md") as f:
        f.write(text.encode())
    return path


def _main(argv: Sequence[str] | None) -> int:
    parser = Parser(
        description="Build the real-MNIST sample bundled as m2nist/data/mnist_sample.npz "
        "(the same bytes on every run).",
        epilog="example:\n  python scripts/make_mnist_sample.py --mnist-dir ~/data/mnist",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--mnist-dir",
        type=Path,
        required=True,
        help="folder with the four original MNIST IDX files",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output folder (default: m2nist/data here)"
    )
    args = parser.parse_args(argv)
    path = build(args.mnist_dir, args.out)
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Rebuild the sample; errors are one line (exit 1/2), as in every command."""
    return run_cli("make_mnist_sample", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
