"""Outputs that never destroy data a run did not create.

Four rules, the same in every command of the project:

1. **Nothing is replaced without being asked.** :func:`check_outputs` refuses an existing
   output unless ``force``, and refuses an output that is one of the run's inputs whatever
   ``force`` says (``predict photo.jpg -o photo.jpg`` would overwrite the photo with its
   own mask).
2. **Nothing is half-written under a real name.** :func:`atomic_write` writes a temporary
   sibling and renames it over the final name only when complete; a rename within one file
   system is atomic on POSIX, so a crash or Ctrl-C leaves the old file or the new one.
3. **Temporary files cannot be hijacked or shared.** :func:`create_temp` makes a fresh
   name with ``O_CREAT | O_EXCL | O_NOFOLLOW``, which fails rather
   than follow a symlink planted at that name, and is unique, so two runs never write the
   same temporary file.
4. **One run per output directory.** :func:`lock_dir` holds an exclusive ``flock`` on the
   directory itself for the whole run; a second run into the same directory fails at once
   (:class:`OutputBusyError`) instead of interleaving its files with the first's.

And every check comes *before* the work: :func:`check_writable` proves a directory (or the
nearest one that would hold it) is writable, so a read-only disk is reported in the first
second, not after an hour of training.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from fcnbase.cli import CliError, UsageError

#: Suffix of every temporary file: a leftover one is the trace of an interrupted run.
PARTIAL = ".partial"


class OutputExistsError(CliError):
    """An output is already there and replacing it was not asked for."""


class OutputBusyError(CliError):
    """Another run holds the output directory."""


def is_partial(name: str) -> bool:
    """Whether ``name`` is one of our temporary files (``.NAME.<random>.partial``)."""
    return name.startswith(".") and name.endswith(PARTIAL)


def create_temp(final: str | os.PathLike[str]) -> tuple[int, Path]:
    """Create a new, unique, empty temporary sibling of ``final``; return its fd and path.

    The directory is created when missing. The file is created exclusively (never opened
    through an existing name or symlink) with the permissions a plain ``open`` would give.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its files are private (0600), and a final file should get what ``open()``
    # gives -- mode 0666 filtered by the umask *now*, which only the kernel applies safely
    # (reading the umask means setting it, a race with other threads). O_EXCL|O_NOFOLLOW:
    # a name planted in advance, symlink or not, is never opened; a fresh name is drawn.
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        path = temp_path(final)
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"{final.parent}: no free temporary name after 100 tries")


def _temp_prefix(final: Path) -> str:
    return f".{final.name}."


def temp_path(final: Path) -> Path:
    """A fresh random name beside ``final``, ``.NAME.<random>.partial``: the one naming rule,
    which :func:`is_partial` and :func:`remove_leftovers` read back. Only the name: whoever
    creates it must do so exclusively, as :func:`create_temp` does."""
    return final.parent / f"{_temp_prefix(final)}{secrets.token_hex(6)}{PARTIAL}"


def remove_leftovers(final: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries of ``final`` (files or folders, named by :func:`temp_path`) that
    killed runs left behind; return them. ``kill -9`` gives a run no chance to clean up, and
    a leftover would stay beside the next run's outputs (GBs of them, and failing
    ``m2nist-gen --verify``). Call it only while holding :func:`lock_dir` on the folder:
    then no running writer owns one."""
    final = Path(final)
    found = sorted(final.parent.glob(f"{glob.escape(_temp_prefix(final))}*{PARTIAL}"))
    for path in found:
        remove_temp(path)
    return found


def remove_temp(path: Path, *, ignore_errors: bool = False) -> None:
    """Remove a temporary: a file, or a folder with all it holds; a symlink is removed, never
    followed. ``ignore_errors``, as a cleanup after a failure wants it: a folder is removed as
    far as it goes, and a file already gone is no error."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=ignore_errors)
    else:
        path.unlink(missing_ok=ignore_errors)


@contextmanager
def atomic_write(final: str | os.PathLike[str], *, replace: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write ``final`` through; it takes the final name only on success.

    ``torch.save``, ``Figure.savefig``, ``PIL.Image.save`` and ``json`` all write to an open
    file, so every output of the project goes through here. On any exception the temporary
    file is removed and ``final`` is untouched.

    ``replace=False`` makes the last step *no-clobber*: the file is published with a hard
    link, which fails if ``final`` exists, so a file that appeared since the up-front checks
    (another run writing the same name) is never replaced -- :class:`OutputExistsError`
    instead. A check followed by a rename could not promise that: between the two, the
    other run's file can land and would be overwritten.
    """
    final = Path(final)
    fd, tmp = create_temp(final)
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
        if replace:
            os.replace(tmp, final)
        else:
            _publish_new(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def _publish_new(tmp: Path, final: Path) -> None:
    """Give ``tmp`` the name ``final`` only if nothing has that name yet."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise OutputExistsError(
            f"{final} appeared while this run was writing it (another run?); not replaced"
        ) from None
    except OSError as exc:  # a file system without hard links: check, then rename
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        if final.exists() or final.is_symlink():
            raise OutputExistsError(f"{final} appeared while this run was writing it") from None
        os.replace(tmp, final)


@contextmanager
def lock_dir(directory: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive lock on ``directory`` (created when missing) while the block runs.

    The lock is an ``flock`` on the directory's own file descriptor: no lock file is left
    behind, and the kernel drops it when the process dies, so a killed run never leaves a
    stale lock.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputBusyError(
                    f"{directory}: another run is writing into this directory; wait for it "
                    "or choose another output"
                ) from None
            raise
        yield directory
    finally:
        os.close(fd)


def check_writable(directory: str | os.PathLike[str]) -> None:
    """Raise :class:`CliError` unless files can be created in ``directory``.

    An existing directory is tested by creating (and removing) a temporary file in it:
    the only test that sees read-only mounts, ACLs and full quotas alike. A missing one is
    judged by its nearest existing ancestor, which must be a writable directory; nothing is
    created there.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise CliError(f"{directory} exists and is not a directory")
    if directory.is_dir():
        try:
            fd, tmp = create_temp(directory / "write-test")
        except OSError as exc:
            raise CliError(f"cannot write into {directory}: {exc.strerror or exc}") from None
        os.close(fd)
        tmp.unlink()
        return
    ancestor = directory.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise CliError(f"cannot create {directory}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise CliError(f"cannot create {directory}: {ancestor} is not writable")


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare where they would be
        return a.resolve() == b.resolve()


def check_outputs(
    outputs: Iterable[str | os.PathLike[str]],
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    force: bool = False,
    hint: str = "--force",
) -> None:
    """Check a run's output files before any work: distinct, not inputs, writable, new.

    Raises :class:`UsageError` when an output is also an input (or two outputs are the same
    file: the second would overwrite the first), :class:`OutputExistsError` when an output
    exists and ``force`` is false (``hint`` names the option that allows replacing it), and
    :class:`CliError` when its directory cannot be written.
    """
    outs = [Path(p) for p in outputs]
    ins = [Path(p) for p in inputs if p is not None]
    for i, out in enumerate(outs):
        for source in ins:
            if _same(out, source):
                raise UsageError(f"output {out} is also an input ({source}); choose another name")
        for other in outs[:i]:
            if _same(out, other):
                raise UsageError(f"{out} is given as two different outputs")
    tested: set[Path] = set()  # each folder is written to (test file) once, not per output
    for out in outs:
        if out.is_dir():
            raise UsageError(f"output {out} is a directory, expected a file name")
        if (out.exists() or out.is_symlink()) and not force:
            raise OutputExistsError(f"{out} exists (use {hint} to replace it)")
        if out.parent not in tested:
            check_writable(out.parent)
            tested.add(out.parent)
