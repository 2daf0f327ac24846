"""A real binary-mask set, 0 = background and 255 = object, trained with ``--mask-values``.

The set is real ink: M2NIST images (``m2nist-gen --format png``, MNIST digits on a 64x84
canvas) whose masks are rewritten the way the web's binary sets store them, 0 where the
canvas is background and 255 where a digit's ink is. Without ``--mask-values`` the folder
is refused (255 would mean "ignore", and the score a perfect 1.0); with ``--mask-values
0,255`` an FCN-8s is trained on the CPU and ``fullfcn-eval`` scores the held-out split,
reading the masks the way the checkpoint says.

VGG16 is thinned (``--width-divisor``) to run on a CPU, and He-initialised: no ImageNet
weights offline, and torchvision's default init of a thin VGG (no batch norm) passes too
little signal through 15 layers for a few hundred steps to learn anything. The start is
written as a weights file and given to ``--weights``, as a user would.

    python benchmarks/bench_binary_masks.py --mnist-dir DIR   # or --sample (bundled MNIST)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from fcnbase.device import cpu_name
from fullfcn import cli
from fullfcn.builders import build
from m2nist import BACKGROUND
from m2nist.cli import main as m2nist_gen


def binary_set(root: Path, source: list[str], train: int, test: int) -> Path:
    """M2NIST as PNG pairs, its masks rewritten as 0 (background) / 255 (digit)."""
    assert (
        m2nist_gen(
            [
                str(root),
                "--format",
                "png",
                "--train",
                str(train),
                "--test",
                str(test),
                "--quiet",
                *source,
            ]
        )
        == 0
    )
    for path in (root / "masks").iterdir():
        ink = np.asarray(Image.open(path)) != BACKGROUND
        Image.fromarray(np.where(ink, 255, 0).astype(np.uint8)).save(path)
    (root / "classes.txt").write_text("background\ndigit\n")
    return root


def he_start(path: Path, width: int) -> Path:
    """A thin FCN-8s for two classes, its VGG convolutions He-initialised."""
    torch.manual_seed(0)
    model = build("fcn8s", num_classes=2, width_divisor=width)
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and not name.startswith(("score", "upscore")):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)
    state = {"variant": "fcn8s", "width_divisor": width, "preprocess": "torchvision"}
    torch.save({**state, "model": model.state_dict()}, path)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--mnist-dir", help="the four MNIST IDX files")
    where.add_argument("--sample", action="store_true", help="the bundled real-MNIST sample")
    p.add_argument("--train", type=int, default=600)
    p.add_argument("--test", type=int, default=150)
    p.add_argument("--iterations", type=int, default=600)
    p.add_argument("--width-divisor", type=int, default=16)
    args = p.parse_args()
    source = ["--sample"] if args.sample else ["--mnist-dir", args.mnist_dir]
    print(f"{cpu_name()}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        data = binary_set(Path(tmp) / "digits", source, args.train, args.test)
        run = ["--data", str(data), "--variant", "fcn8s", "--recipe", "modern",
               "--width-divisor", str(args.width_divisor), "--batch-size", "8",
               "--crop-size", "64", "--iterations", str(args.iterations), "--workers", "1",
               "--val-every", str(args.iterations), "--no-progress", "--no-tensorboard",
               "--weights", str(he_start(Path(tmp) / "he.pt", args.width_divisor))]  # fmt: skip
        assert cli.train_main([*run, "--out-dir", f"{tmp}/refused"]) == 1  # 255 = ignore
        start = time.perf_counter()
        assert cli.train_main([*run, "--mask-values", "0,255", "--out-dir", f"{tmp}/run"]) == 0
        print(f"trained {args.iterations} iterations in {time.perf_counter() - start:.0f} s")
        argv = ["--data", str(data), "--weights", f"{tmp}/run/checkpoint.pt", "--workers", "0"]
        assert cli.eval_main([*argv, "--no-progress"]) == 0
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
