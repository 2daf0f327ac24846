"""Every notebook runs top to bottom, as a student would run it; so does every solution.

The notebooks read ``FCN_SMALL_BUDGET=1`` and shrink their training budgets so the whole
suite stays within minutes on a 2-core CI machine; the numbers they print are what those
small budgets really achieve. Real data reaches them through the same environment variables
as the tests (M2NIST_MNIST_DIR, FULLFCN_VOC_ROOT); with those unset they use what the
repository ships (the bundled MNIST sample, the VOC pairs in tests/data/voc-sample).

A notebook's exercises end it: each has an answer cell (``answer = None  # your code here``)
and a check cell that prints "not answered yet" while ``answer`` is None and otherwise
asserts on the answer and prints "correct". ``docs/solutions/NN_name_solutions.ipynb``
answers them and carries the very same check cells, so executing it proves the checks
accept the solutions, and executing the notebook proves they run before any answer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "docs" / "solutions").glob("*.ipynb"))
EVERY = NOTEBOOKS + SOLUTIONS
NOT_ANSWERED, CORRECT = "not answered yet", "correct"
PLACEHOLDER = "answer = None  # your code here"


def check_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """The exercises' check cells: the code cells that can say "not answered yet"."""
    return [c for c in nb.cells if c.cell_type == "code" and f'"{NOT_ANSWERED}"' in c.source]


def exercises_of(solutions: Path) -> Path:
    """The notebook whose exercises ``docs/solutions/NN_name_solutions.ipynb`` answers."""
    return ROOT / "notebooks" / (solutions.stem.removesuffix("_solutions") + ".ipynb")


def printed(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.mark.parametrize("path", EVERY, ids=[p.stem for p in EVERY])
def test_committed_without_outputs(path: Path) -> None:
    cells = json.loads(path.read_text())["cells"]
    assert not [
        c for c in cells if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])
    ]


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_solutions_share_the_notebooks_checks(path: Path) -> None:
    notebook = exercises_of(path)
    assert notebook.is_file(), f"{path.name} answers no notebook ({notebook.name} is missing)"
    exercises = nbformat.read(notebook, as_version=4)
    checks = [c.source for c in check_cells(exercises)]
    assert 3 <= len(checks) <= 5, f"{notebook.name} has {len(checks)} exercises"
    assert checks == [c.source for c in check_cells(nbformat.read(path, as_version=4))]
    # In the notebook, the exercises come last, under their heading, each with its answer cell.
    sources = [c.source for c in exercises.cells]
    heading = next(i for i, c in enumerate(exercises.cells) if c.source.startswith("## Exercises"))
    first = sources.index(checks[0])
    assert heading < first
    assert all(sources[sources.index(check) - 1] == PLACEHOLDER for check in checks)


@pytest.mark.parametrize("path", EVERY, ids=[p.stem for p in EVERY])
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
    # Unanswered, a check says so; answered by the solutions, its assertions held.
    expected = CORRECT if path in SOLUTIONS else NOT_ANSWERED
    assert [printed(c).strip() for c in check_cells(nb)] == [expected] * len(check_cells(nb))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_has_solutions(path: Path) -> None:
    assert (ROOT / "docs" / "solutions" / f"{path.stem}_solutions.ipynb").is_file()
