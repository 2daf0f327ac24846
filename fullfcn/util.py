"""Argument types fullfcn's three command-line tools share.

The parser, the error path (:func:`fcnbase.run_cli`), devices and safe outputs come from
:mod:`fcnbase`, shared by the whole project; only what is about VOC and data loading
lives here.

"""

from __future__ import annotations

import argparse
from pathlib import Path

from fcnbase.cli import int_arg
from fcnbase.device import available_cores

__all__ = ["CORES", "DEFAULT_WORKERS", "data_arg", "voc_root_arg", "workers_arg"]


def voc_root_arg(value: str) -> Path:
    """argparse type for ``--voc-root``: an existing folder (checked before any work)."""
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"VOC root {value} is not a directory")
    return path


def data_arg(value: str) -> Path:
    """argparse type for ``--data``: an existing folder (its pairs are checked later)."""
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"data folder {value} is not a directory")
    return path


#: The cores this process may run on.
CORES = available_cores()
#: ``--workers``: data-loading processes, at most one per available core (more only cost
#: memory: each worker is a copy of the process).
workers_arg = int_arg(0, CORES)
DEFAULT_WORKERS = min(2, CORES)
