"""Small helpers fullfcn's command-line tools share: argument checks and one-line errors.

Parsers, devices and atomic writes come from :mod:`fcnbase`, shared by the whole project.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["run_cli", "voc_root_arg"]


def voc_root_arg(value: str) -> Path:
    """argparse type for ``--voc-root``: an existing folder (checked before any work)."""
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"VOC root {value} is not a directory")
    return path


def run_cli(
    prog: str, main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None
) -> int:
    """Run ``main``; bad input ends in one ``prog: error: ...`` line, not a traceback."""
    try:
        return main(argv)
    except SystemExit as done:  # argparse: --help (0) or a usage error (2, already said)
        return done.code if isinstance(done.code, int) else 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, OSError) as err:
        # One line, whatever the message: a multi-line library error is folded, not dumped.
        print(f"{prog}: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
