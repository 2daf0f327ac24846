"""Fixtures shared by the whole suite.

Real data reaches the tests through environment variables (`.ci/run` points them at the
full MNIST files and the genuine VOC sample), so no test knows where a checkout keeps its
data. With the variables unset -- a fresh clone -- the tests run on what the repository
ships: the real-MNIST sample bundled in m2nist (``mnist_source``) and three genuine VOC
pairs in ``tests/data/voc-sample`` (``voc_root``). Only a test that needs the four
original IDX files themselves (``mnist_dir``) is skipped, with the variable named.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
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
def mnist_source() -> str:
    """Real MNIST for m2nist's ``source=``: the IDX folder when given, else the bundled sample."""
    value = os.environ.get("M2NIST_MNIST_DIR")
    return _dir_from_env("M2NIST_MNIST_DIR").as_posix() if value else "sample"


#: Three genuine VOC2012 pairs shipped with the tests (see its PROVENANCE.md).
SHIPPED_VOC = Path(__file__).resolve().parent / "data" / "voc-sample"


@pytest.fixture(scope="session")
def voc_root() -> Path:
    """Folder holding `VOC2012/` with genuine VOC image/label pairs."""
    return _dir_from_env("FULLFCN_VOC_ROOT") if os.environ.get("FULLFCN_VOC_ROOT") else SHIPPED_VOC


@pytest.fixture(autouse=True, scope="session")
def _one_thread_per_worker() -> None:
    """pytest-xdist runs one worker per core; torch's own thread pool would oversubscribe."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _own_m2nist_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The suite's own ``M2NIST_HOME`` (where a download goes): tests neither fill the
    user's ``~/.cache/m2nist`` nor read what it holds, so a run here behaves as on a fresh
    machine. Command-line children and notebook kernels inherit it."""
    old = os.environ.get("M2NIST_HOME")
    os.environ["M2NIST_HOME"] = str(tmp_path_factory.mktemp("m2nist-home"))
    yield
    if old is None:
        del os.environ["M2NIST_HOME"]
    else:
        os.environ["M2NIST_HOME"] = old
