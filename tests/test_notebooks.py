"""Every notebook runs top to bottom, as a student would run it; so does every solution; and
the course's autograder (scripts/grade_notebooks.py) gives the solutions full marks and the
unanswered notebooks none.

The notebooks read ``FCN_SMALL_BUDGET=1`` and shrink their training budgets so the whole
suite stays within minutes on a 2-core CI machine; the numbers they print are what those
small budgets really achieve. Real data reaches them through the same environment variables
as the tests (M2NIST_MNIST_DIR, FULLFCN_VOC_ROOT); with those unset they use what the
repository ships (the bundled MNIST sample, the VOC pairs in tests/data/voc-sample).

A notebook's exercises end it: each has an answer cell (``answer = None  # your code here``)
and a check cell, ``exercises.NAME(answer, ...)`` with nbgrader's grading metadata, that prints
"not answered yet" while ``answer`` is None (under a grader it fails instead), and otherwise
prints "correct" or raises a hint (tests/test_exercises.py runs every check on right and
wrong answers). ``docs/solutions/NN_name_solutions.ipynb`` answers them and carries the very
same check cells, so grading it proves the checks accept the solutions.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "docs" / "solutions").glob("*.ipynb"))
EVERY = NOTEBOOKS + SOLUTIONS
PLACEHOLDER = "answer = None  # your code here"

_spec = importlib.util.spec_from_file_location("grade", ROOT / "scripts" / "grade_notebooks.py")
assert _spec is not None and _spec.loader is not None
grade = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(grade)

# Answers that are fixed values, as a notebook would print or state them: none may appear in
# a notebook above its exercises (its text or what its cells print). The answers computed
# from a run (a share of pixels, the hardest digit) are covered by what the cells print: no
# all-background scores and no per-class IoU of the shipped fcn1s.
ANSWERS = {
    "01_m2nist": [r"= 0\.1(?!\d)", r"\b1/10\b", r"one in ten"],
    "02_classifier_to_fcn": [r"'score_pool1': 4", r"P = 13", r"padding 13", r"\b20x20\b"],
    "03_train_tinyfcn": [r"all background\s+0\.", r"shipped fcn1s, per class"],
    "04_fcn8s_voc": [r"'score_pool4': 5", r"'upscore16': 27", r"5 and 27", r"\(8, 19\)", r"193"],
    "05_your_own_net": [r"38,?443"],
}


def grading(cell: nbformat.NotebookNode) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def check_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """The exercises' check cells: code cells that nbgrader grades."""
    return [c for c in nb.cells if c.cell_type == "code" and grading(c).get("grade")]


def exercises_of(solutions: Path) -> Path:
    """The notebook whose exercises ``docs/solutions/NN_name_solutions.ipynb`` answers."""
    return ROOT / "notebooks" / (solutions.stem.removesuffix("_solutions") + ".ipynb")


def heading(nb: nbformat.NotebookNode) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.source.startswith("## Exercises"))


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
    solved = nbformat.read(path, as_version=4)
    checks = check_cells(exercises)
    assert 3 <= len(checks) <= 5, f"{notebook.name} has {len(checks)} exercises"
    assert [(c.source, grading(c)) for c in checks] == [
        (c.source, grading(c)) for c in check_cells(solved)
    ]
    # The graded cells (checks and "say why" answers) are the same, with the same points.
    graded = [grading(c) for c in exercises.cells if grading(c).get("grade")]
    assert graded == [grading(c) for c in solved.cells if grading(c).get("grade")]
    assert len({g["grade_id"] for g in graded}) == len(graded)
    assert all(c.source.startswith("exercises.") for c in checks)
    # In the notebook, the exercises come last, under their heading, each with its answer cell.
    cells = exercises.cells
    assert heading(exercises) < cells.index(checks[0])
    assert all(cells[cells.index(check) - 1].source == PLACEHOLDER for check in checks)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_answer_above_its_question(path: Path) -> None:
    """What a notebook says before its exercises (run in test_runs_top_to_bottom for its
    output) holds none of their fixed answers; the sources are checked here."""
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells[: heading(nb)])
    assert not [a for a in ANSWERS[path.stem] if re.search(a, text)]


@pytest.mark.parametrize("path", EVERY, ids=[p.stem for p in EVERY])
def test_runs_top_to_bottom_and_grades(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FCN_SMALL_BUDGET", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # One core per notebook kernel: pytest-xdist already runs one worker per core.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(path, as_version=4)
    # Run as the autograder does, from a scratch folder (files a notebook writes never land
    # in the checkout): errors allowed, an unanswered exercise failing.
    grade.execute(nb, tmp_path)
    checks = check_cells(nb)
    failed = [c for c in nb.cells if any(o.output_type == "error" for o in c.get("outputs", []))]
    rows = grade.score(nb)
    auto = [r for r in rows if r["kind"] == "auto"]
    if path in SOLUTIONS:
        assert not failed, [o.evalue for c in failed for o in c.outputs if "evalue" in o]
        assert [r["earned"] for r in auto] == [r["points"] for r in auto]  # full marks
    else:
        assert failed == checks  # nothing else failed, and every check asks for an answer
        assert all(c.outputs[-1].ename == "NotAnswered" for c in checks)
        assert sum(r["earned"] for r in auto) == 0 < sum(r["points"] for r in auto)
        above = [
            o.get("text", "")
            for c in nb.cells[: heading(nb)]
            for o in c.get("outputs", [])
            if o.output_type == "stream"
        ]
        printed = "".join(above)
        assert not [a for a in ANSWERS[path.stem] if re.search(a, printed)]
    assert len(auto) == len(checks) and [r["kind"] for r in rows].count("manual") >= 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_has_solutions(path: Path) -> None:
    assert (ROOT / "docs" / "solutions" / f"{path.stem}_solutions.ipynb").is_file()


def test_the_grader_writes_scores_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command itself, on a notebook small enough to run in seconds: one exercise
    answered right, one wrong, one unanswered, one "say why"."""
    nb = nbformat.v4.new_notebook()
    meta = {"grade": True, "locked": True, "schema_version": 3, "solution": False, "points": 2}
    nb.cells = [
        nbformat.v4.new_code_cell("from tinyfcn import exercises"),
        nbformat.v4.new_code_cell("exercises.cut_receptive_field(20)"),
        nbformat.v4.new_code_cell("exercises.least_padding(12)"),
        nbformat.v4.new_code_cell("exercises.least_padding(None)"),
    ]
    for k, cell in enumerate(nb.cells[1:], 1):
        cell.metadata["nbgrader"] = {**meta, "grade_id": f"ex{k}"}
    why = {**meta, "grade_id": "ex1-why", "solution": True, "points": 1, "locked": False}
    nb.cells.append(nbformat.v4.new_markdown_cell("because", metadata={"nbgrader": why}))
    submitted, scores = tmp_path / "alice.ipynb", tmp_path / "scores.csv"
    nbformat.write(nb, submitted)
    assert grade.main([str(submitted), "--csv", str(scores)]) == 0
    lines = scores.read_text().splitlines()
    assert lines[0] == "notebook,grade_id,kind,points,earned"
    assert [line.split(",")[1:] for line in lines[1:]] == [
        ["ex1", "auto", "2", "2"],
        ["ex2", "auto", "2", "0"],
        ["ex3", "auto", "2", "0"],
        ["ex1-why", "manual", "1", ""],
    ]
    assert grade.main([str(submitted), "--csv", str(scores)]) == 1  # exists: --force needed
    assert grade.main([str(submitted), "--csv", str(scores), "--force"]) == 0
    before = submitted.read_bytes()  # a submission is never an output, --force or not
    assert grade.main([str(submitted), "--csv", str(submitted), "--force"]) == 2
    assert submitted.read_bytes() == before
    (tmp_path / "torn.ipynb").write_text("{")
    capsys.readouterr()
    for bad in ("missing.ipynb", "torn.ipynb"):  # one line naming the file, exit status 1
        assert grade.main([str(tmp_path / bad)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"grade_notebooks: error: {tmp_path / bad}: ")
        assert err.count("\n") == 1


def test_the_instructors_points_table_is_the_metadata() -> None:
    """docs/instructors.md's points per notebook are the ones its cells carry."""
    text = (ROOT / "docs" / "instructors.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        graded = [grading(c) for c in nbformat.read(path, as_version=4).cells]
        checks = [g["points"] for g in graded if g.get("grade") and not g["solution"]]
        whys = [g for g in graded if g.get("grade") and g["solution"]]
        exercises = ", ".join(g["grade_id"].removeprefix("ex").removesuffix("-why") for g in whys)
        row = (
            f"| {path.stem[:2]} | {len(checks)} x {checks[0]} | {len(whys)} x {whys[0]['points']} "
            f"(ex. {exercises}) | {sum(checks) + sum(g['points'] for g in whys)} |"
        )
        assert row in text, row
