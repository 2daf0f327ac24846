"""What every bad-input test of a command asserts, in one place.

A bad input must end with the right exit status, exactly one line on stderr that names
what is wrong and is not a traceback, and *no change* to any file the run did not create:
:func:`assert_refused` snapshots a folder (paths, kinds, sizes, contents) before and after.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pytest


def tree_state(root: Path, *, skip: Iterable[Path] = ()) -> dict[str, tuple]:
    """Every entry under ``root`` (symlinks not followed) with its kind and content hash."""
    skipped = [Path(p).absolute() for p in skip]
    state: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            if any(path.absolute().is_relative_to(s) for s in skipped):
                continue
            rel = str(path.relative_to(root))
            if path.is_symlink():
                state[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                state[rel] = ("dir",)
            else:
                data = path.read_bytes()
                state[rel] = ("file", len(data), hashlib.sha256(data).hexdigest())
    return state


def assert_refused(
    capsys: pytest.CaptureFixture[str],
    main: Callable[[Sequence[str] | None], int],
    argv: Sequence[str],
    code: int,
    message: str,
    *,
    root: Path,
    fresh: Iterable[Path] = (),
) -> str:
    """Run ``main(argv)`` in-process and check it failed as a command must; return stderr.

    ``message`` must appear in the one stderr line; ``root`` is the folder whose contents
    must be unchanged, except for the paths in ``fresh`` (new outputs the case names).
    """
    fresh = list(fresh)
    before = tree_state(root, skip=fresh)
    capsys.readouterr()
    status = main(list(argv))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == code, f"exit {status}, expected {code}; stderr: {err!r}"
    assert len(lines) == 1, f"expected one stderr line, got: {err!r}"
    assert "Traceback" not in err
    assert message in lines[0], f"{message!r} not in {lines[0]!r}"
    assert tree_state(root, skip=fresh) == before, "files outside the fresh outputs changed"
    return lines[0]
