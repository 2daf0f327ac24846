"""Small helpers the command-line tools share: devices, atomic writes, one-line errors."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import torch

__all__ = ["Parser", "atomic_path", "pick_device", "run_cli", "voc_root_arg"]


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is the single line ``prog: error: ...`` (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` is the GPU when there is one; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA GPU")
    return device


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary name beside ``path``; rename it to ``path`` only on success.

    A crash or an interrupt mid-write then never leaves a truncated checkpoint or image
    under the real name (rename is atomic on POSIX within one file system).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def voc_root_arg(value: str) -> Path:
    """argparse type for ``--voc-root``: an existing folder (checked before any work)."""
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"VOC root {value} is not a directory")
    return path


def run_cli(prog: str, main: Callable[[Sequence[str] | None], int],
            argv: Sequence[str] | None) -> int:
    """Run ``main``; bad input ends in one ``prog: error: ...`` line, not a traceback."""
    try:
        return main(argv)
    except SystemExit as done:  # argparse: --help (0) or a usage error (2, already said)
        return done.code if isinstance(done.code, int) else 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, OSError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
