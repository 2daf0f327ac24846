"""Every notebook runs top to bottom, as a student would run it.

The notebooks read ``FCN_SMALL_BUDGET=1`` and shrink their training budgets so the whole
suite stays within minutes on a 2-core CI machine; the numbers they print are what those
small budgets really achieve. Real data reaches them through the same environment variables
as the tests (M2NIST_MNIST_DIR, FULLFCN_VOC_ROOT); with those unset they use what the
repository ships (the bundled MNIST sample, the VOC pairs in tests/data/voc-sample).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_without_outputs(path: Path) -> None:
    cells = json.loads(path.read_text())["cells"]
    assert not [
        c for c in cells if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_runs_top_to_bottom(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FCN_SMALL_BUDGET", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # One core per notebook kernel: pytest-xdist already runs one worker per core.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(path, as_version=4)
    # Run from a scratch folder so files a notebook writes never land in the checkout.
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
