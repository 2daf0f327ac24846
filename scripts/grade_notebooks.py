"""Grade exercise notebooks from their nbgrader metadata: the course's autograder, as is.

    python scripts/grade_notebooks.py SUBMISSION.ipynb [...] [--csv scores.csv] [--timeout S]

Every check cell of the notebooks carries nbgrader's cell metadata (schema 3),
``{"nbgrader": {"grade": true, "grade_id": "ex1", "points": 2, "locked": true, ...}}``, and
every "say why" cell the same with ``"solution": true`` on a markdown cell: a manually graded
answer. nbgrader's autograde reads them as they are; this script is the same grading without
nbgrader's course database, for a folder of submissions.

Each notebook runs top to bottom in a scratch folder, errors allowed, with
``NBGRADER_EXECUTION=autograde`` in the kernel's environment, so an unanswered exercise fails
(:mod:`tinyfcn.exercises`) instead of printing "not answered yet". A check cell earns its
points when it printed "correct" and raised nothing; "say why" cells are listed with their
points for the instructor (rubric: docs/instructors.md). One line per exercise, a total per
notebook; ``--csv`` also writes ``notebook,grade_id,kind,points,earned`` rows (an existing
file only with ``--force``).
"""

from __future__ import annotations

import csv
import io
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from fcnbase import atomic_write, check_outputs, run_cli
from fcnbase.cli import CliError, Parser, int_arg

PROG = "grade_notebooks"
CORRECT = "correct"


def execute(nb: nbformat.NotebookNode, cwd: str | os.PathLike, timeout: int = 600) -> None:
    """Run ``nb`` in place, as a grader does: in ``cwd``, errors allowed, unanswered = fail."""
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute(env={**os.environ, "NBGRADER_EXECUTION": "autograde"})  # the kernel's


def _outcome(cell: nbformat.NotebookNode) -> tuple[bool, str]:
    """Whether a check cell passed, and its error's last line when it did not."""
    for out in cell.get("outputs", []):
        if out.output_type == "error":
            return False, f"{out.ename}: {out.evalue}".splitlines()[0]
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")
    return text.strip() == CORRECT, "" if text.strip() == CORRECT else f"printed {text.strip()!r}"


def score(nb: nbformat.NotebookNode) -> list[dict[str, object]]:
    """One row per graded cell of an executed notebook: its id, kind, points and earned."""
    rows = []
    for cell in nb.cells:
        grading = cell.get("metadata", {}).get("nbgrader", {})
        if not grading.get("grade"):
            continue
        row = {"grade_id": grading["grade_id"], "points": grading.get("points", 0)}
        if cell.cell_type == "code":
            passed, why = _outcome(cell)
            row |= {"kind": "auto", "earned": row["points"] if passed else 0, "note": why}
        else:
            row |= {"kind": "manual", "earned": None, "note": "to grade by hand"}
        rows.append(row)
    return rows


def _main(argv: Sequence[str] | None) -> int:
    parser = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path, help="submitted .ipynb files")
    parser.add_argument("--csv", type=Path, help="also write the scores to this CSV file")
    parser.add_argument("--force", action="store_true", help="replace an existing --csv file")
    parser.add_argument("--timeout", type=int_arg(1), default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    if args.csv:  # before hours of grading: new (or --force), writable, not a submission
        check_outputs([args.csv], inputs=args.notebooks, force=args.force)
    table = []
    for path in args.notebooks:
        try:
            nb = nbformat.read(path, as_version=4)
        except OSError as exc:
            raise CliError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
        except ValueError as exc:  # nbformat's: not JSON, or not a notebook
            raise CliError(f"{path}: not a notebook ({exc})") from exc
        with tempfile.TemporaryDirectory() as scratch:
            execute(nb, scratch, args.timeout)
        rows = score(nb)
        auto = [r for r in rows if r["kind"] == "auto"]
        earned, total = sum(r["earned"] for r in auto), sum(r["points"] for r in auto)
        manual = sum(r["points"] for r in rows if r["kind"] == "manual")
        print(f"{path}: {earned}/{total} points from the checks, {manual} to grade by hand")
        for r in rows:
            got = "-" if r["earned"] is None else r["earned"]
            print(f"  {r['grade_id']:<8} {got}/{r['points']}  {r['note']}".rstrip())
        table += [{"notebook": str(path), **r} for r in rows]
    if args.csv:
        text = io.StringIO()
        fields = ["notebook", "grade_id", "kind", "points", "earned"]
        writer = csv.DictWriter(text, fields, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
        with atomic_write(args.csv) as f:
            f.write(text.getvalue().encode())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
