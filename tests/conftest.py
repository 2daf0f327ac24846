"""Fixtures shared by the whole suite.

Real data reaches the tests only through environment variables (`.ci/run` sets them),
so no test knows where a checkout keeps its data. A test that needs real MNIST or the
genuine VOC sample is skipped, with the variable named, when it is not set.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _dir_from_env(var: str) -> Path:
    value = os.environ.get(var)
    if not value:
        pytest.skip(f"{var} is not set; .ci/run points it at the real data")
    path = Path(value)
    if not path.is_dir():
        pytest.fail(f"{var}={value} is not a directory")
    return path


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Folder with the four original MNIST IDX files (gzipped)."""
    return _dir_from_env("M2NIST_MNIST_DIR")


@pytest.fixture(scope="session")
def voc_root() -> Path:
    """Folder holding `VOC2012/` with the three genuine VOC image/label pairs."""
    return _dir_from_env("FULLFCN_VOC_ROOT")


@pytest.fixture(autouse=True, scope="session")
def _one_thread_per_worker() -> None:
    """pytest-xdist runs one worker per core; torch's own thread pool would oversubscribe."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
