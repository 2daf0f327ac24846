"""``m2nist-gen --verify``: a generated directory is checked, not trusted.

Four layers, each run only when the one before passed (a file with the wrong sha256 is
not worth decoding):

1. **The directory**: no leftover ``.partial`` file of an interrupted run, and no file
   that ``metadata.json`` does not list (an extra file, or the file of a split removed
   from the metadata, is reported: the directory must be exactly what one run wrote).
2. **The metadata itself**: every field has the right type and a value a run could have
   written (see :func:`m2nist.metadata.parse_metadata`); malformed metadata is one
   problem line, never a traceback.
3. **The files against the metadata**: every listed file exists with the recorded size
   and sha256; then every row is re-read block by block (memory stays flat) and the
   M2NIST invariants (:func:`m2nist.invariants.invariant_errors`), the Kaggle one-hot
   encoding, agreement between formats and the per-count tallies are re-checked.
4. **Regeneration** (:mod:`m2nist.regeneration`): generation is deterministic, so rows are
   generated again from the recorded seed, parameters and MNIST source (identified by its
   recorded checksums) and compared byte for byte. This is what makes ``seed``, ``source``
   and the exact pixel values *proven* rather than claimed: a consistent edit that keeps
   every invariant and fixes up the sha256 in the metadata is still caught. By default a
   sample of blocks is regenerated (the first, the last and one at random), with
   ``regenerate="all"`` every row; when the recorded MNIST is not available the report says
   that regeneration was skipped and why.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fcnbase.outputs import is_partial
from m2nist.compose import M2NISTArrays, block_spans
from m2nist.invariants import (
    digit_counts,
    invariant_errors,
    kaggle_errors,
    label_map_errors,
)
from m2nist.metadata import (
    METADATA,
    Metadata,
    file_sha256,
    listing_sha256,
    parse_metadata,
    tally,
)
from m2nist.mnist import SAMPLE
from m2nist.npz import ARRAY_NAMES
from m2nist.png import CLASSES_TXT, SPLIT_LISTS, classes_text, split_list, stem
from m2nist.regeneration import regenerate_split
from m2nist.stored import open_split

REGENERATE = ("none", "sample", "all")


@dataclass
class Report:
    """What :func:`check` found: ``problems`` (any means exit 1) and ``notes`` (what was
    proven beyond the checksums, or why regeneration was skipped)."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def verify(
    out: str | Path,
    max_errors: int = 20,
    *,
    regenerate: str = "sample",
    source: str | os.PathLike | None = None,
) -> list[str]:
    """The problems :func:`check` finds in ``out`` (empty: it is what its metadata says)."""
    return check(out, max_errors=max_errors, regenerate=regenerate, source=source).problems


def check(
    out: str | Path,
    *,
    max_errors: int = 20,
    regenerate: str = "sample",
    source: str | os.PathLike | None = None,
) -> Report:
    """Verify a generated directory (see the module docstring for the four layers).

    ``regenerate``: ``"sample"`` (a few blocks per split), ``"all"`` or ``"none"``.
    ``source``: where to find the recorded MNIST (default: ``$M2NIST_MNIST_DIR``, then
    the folder recorded in the metadata); it is used only if its checksums match.
    """
    if regenerate not in REGENERATE:
        raise ValueError(f"regenerate={regenerate!r}: expected one of {', '.join(REGENERATE)}")
    out = Path(out)
    report = Report()
    if not out.is_dir():
        report.problems.append(f"{out}: not a directory")
        return report
    present = sorted(_files(out))
    problems = report.problems
    problems += [
        f"{out / p}: leftover temporary file of an interrupted run"
        for p in present
        if _in_temporary(p)
    ]
    try:
        meta = parse_metadata(json.loads((out / METADATA).read_text()))
    except FileNotFoundError:
        problems.append(f"{out / METADATA}: missing (incomplete or not an m2nist output)")
        return report
    except (OSError, ValueError) as exc:  # MetadataError and JSONDecodeError are ValueErrors
        problems.append(f"{out / METADATA}: invalid ({' '.join(str(exc).split())})")
        return report
    folders = [name for name in meta.files if name.endswith("/")]
    problems += [
        f"{out / p}: not listed in {METADATA} (not written by the run it describes)"
        for p in present
        if p != METADATA
        and p not in meta.files
        and not _in_temporary(p)
        and not any(p.startswith(folder) for folder in folders)
    ]
    for name, info in meta.files.items():
        path = out / name
        if name.endswith("/"):
            problems += _folder_problems(path, info, _folder_names(meta))
        elif not path.is_file() or path.is_symlink():
            problems.append(f"{path}: missing")
        elif path.stat().st_size != info["bytes"]:
            problems.append(f"{path}: {path.stat().st_size} bytes, metadata says {info['bytes']}")
        elif file_sha256(path) != info["sha256"]:
            problems.append(f"{path}: sha256 differs from metadata")
    if problems:
        return report
    if "png" in meta.formats:
        problems += _list_problems(out, meta)
    for split in meta.splits:
        try:
            problems += _verify_split(out, split, meta)
        except (ValueError, OSError, KeyError, zipfile.BadZipFile) as exc:
            problems.append(f"{out}: {split}: cannot read ({' '.join(str(exc).split())})")
        if len(problems) >= max_errors:
            break
    if not problems and regenerate != "none":
        for split in meta.splits:
            problem, note = regenerate_split(out, meta, split, regenerate, source)
            if problem:
                problems.append(problem)
                break
            report.notes.append(note)
    report.problems = problems[:max_errors]
    return report


def _files(out: Path) -> Iterator[str]:
    """Every non-directory entry under ``out``, relative, symlinks not followed."""
    for dirpath, _, filenames in os.walk(out):
        for name in filenames:
            yield Path(dirpath, name).relative_to(out).as_posix()


def _in_temporary(path: str) -> bool:
    """Whether ``path`` is, or lies in, a temporary file or folder of a run."""
    return any(is_partial(part) for part in Path(path).parts)


def _folder_names(meta: Metadata) -> list[str]:
    """The file names a run writes in each PNG folder: one per row of every split."""
    return [
        f"{stem(split, row)}.png"
        for split, info in meta.splits.items()
        for row in range(info["start"], info["stop"])
    ]


def _folder_problems(folder: Path, info: dict, names: list[str]) -> list[str]:
    """A folder entry: exactly the expected files, their count, bytes and listing sha256."""
    if not folder.is_dir() or folder.is_symlink():
        return [f"{folder}: missing"]
    present = {p.name for p in folder.iterdir()}
    missing, extra = sorted(set(names) - present), sorted(present - set(names))
    if missing:
        return [f"{folder / missing[0]}: missing ({len(missing)} files of {len(names)})"]
    if extra:
        return [f"{folder / extra[0]}: not listed in {METADATA} (not written by the run)"]
    if len(names) != info["count"]:
        return [f"{folder}: {len(names)} files, metadata says {info['count']}"]
    digests, size = {}, 0
    for name in names:
        data = (folder / name).read_bytes()
        digests[name], size = hashlib.sha256(data).hexdigest(), size + len(data)
    if size != info["bytes"]:
        return [f"{folder}: {size} bytes in all, metadata says {info['bytes']}"]
    if listing_sha256(digests) != info["sha256"]:
        return [f"{folder}: sha256 of its listing differs from metadata (a file changed)"]
    return []


def _list_problems(out: Path, meta: Metadata) -> list[str]:
    """``classes.txt``, ``train.txt`` and ``val.txt`` say what the rows are (their sha256
    alone could be fixed up along with a consistent edit)."""
    want = {CLASSES_TXT: classes_text()}
    for split, name in SPLIT_LISTS.items():
        info = meta.splits.get(split, {"start": 0, "stop": 0})
        want[name] = split_list(split, info["start"], info["stop"])
    return [
        f"{out / name}: not the {'class names' if name == CLASSES_TXT else 'stems'} of the run"
        for name, text in want.items()
        if (out / name).read_bytes() != text
    ]


def _verify_split(out: Path, split: str, meta: Metadata) -> list[str]:
    """Every stored row of ``split``, block by block: the invariants, the Kaggle one-hot,
    the PNG label maps, and agreement between formats."""
    params, n = meta.params, meta.splits[split]["images"]
    stored = open_split(out, split, meta)
    problems: list[str] = []
    per_count = np.zeros(params.max_digits + 1, np.int64)
    for row, stop in block_spans(0, n):
        block = {
            fmt: {kind: np.asarray(rows[row:stop]) for kind, rows in arrays.items()}
            for fmt, arrays in stored.items()
        }
        where = f"{out}: {split} rows {row}-{stop}"
        npz = block.get("npz")
        if npz is not None:
            arrays = M2NISTArrays(*(npz[name] for name in ARRAY_NAMES))
            problems += [f"{where}: {e}" for e in invariant_errors(arrays, params, row)]
            per_count += np.bincount(digit_counts(arrays.boxes), minlength=len(per_count))
        for fmt in ("kaggle", "kaggle-flat"):
            if fmt in block:
                chunk = {"combined": block[fmt]["images"], "segmented": block[fmt]["one_hot"]}
                chunk.update({k: npz[k] for k in ("images", "labels")} if npz else {})
                problems += kaggle_errors(chunk, params, f"{where} ({fmt})")
        if "png" in block:
            png = block["png"]
            problems += [f"{where} (png): {e}" for e in label_map_errors(png, params, npz)]
        if problems:
            return problems
    if "npz" in meta.formats and tally(per_count, params) != meta.splits[split]["per_digit_count"]:
        problems.append(f"{out}: {split}: per-digit-count tally differs from metadata")
    return problems


@functools.lru_cache(maxsize=64)
def _sha256_of(path: Path, size: int, mtime_ns: int, inode: int) -> str:
    """A file's sha256, computed once per process for one state (size, mtime, inode)."""
    return file_sha256(path)


def check_file(out: str | Path, name: str) -> None:
    """Raise ``ValueError`` unless ``out/name`` has the sha256 its ``metadata.json`` records.

    What :class:`m2nist.M2NIST` runs before memory-mapping a split: a map reads no byte,
    so nothing else would notice a corrupt file.
    """
    out = Path(out)
    path = out / name
    try:
        meta = json.loads((out / METADATA).read_text())
        want = meta["files"][name]["sha256"]
    except FileNotFoundError:
        raise ValueError(
            f"{out / METADATA}: missing, so {path} cannot be checked (not an m2nist-gen "
            "output, or an interrupted one; verify_checksum=False skips the check)"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{out / METADATA}: no sha256 for {name} ({exc!r})") from None
    stat = path.stat()
    if _sha256_of(path.resolve(), stat.st_size, stat.st_mtime_ns, stat.st_ino) != want:
        raise ValueError(
            f"{path}: sha256 differs from {out / METADATA}: the file is corrupt or was "
            f"changed; run m2nist-gen --verify {out}"
        )


def rerun_command(out: Path, meta: Metadata, fmt: str = "both") -> str:
    """The ``m2nist-gen`` command that rewrites ``out`` as recorded, in format ``fmt``."""
    (lo, hi), (h, w), p = meta.params.digits, meta.params.size, meta.params
    totals = {s: meta.splits.get(s, {}).get("total", 0) for s in ("train", "test")}
    kinds = {info["kind"] for info in meta.source.values()}
    paths = {info.get("path") for info in meta.source.values()}
    source = "--sample" if kinds == {SAMPLE} else f"--mnist-dir {paths.pop()}"
    shard = f" --shard {meta.shard[0]}/{meta.shard[1]}" if meta.shard else ""
    return (
        f"m2nist-gen {out} --force --format {fmt} --train {totals['train']} --test "
        f"{totals['test']} --seed {meta.seed} --digits {lo}-{hi} --size {h}x{w} --margin "
        f"{p.margin} --threshold {p.threshold} {source}{shard}"
    )


def missing_split(out: Path, split: str) -> str:
    """Why ``out/SPLIT.npz`` is not there, with a command that will make it."""
    npz = out / f"{split}.npz"
    try:
        meta = parse_metadata(json.loads((out / METADATA).read_text()))
    except FileNotFoundError:
        return f"{npz} not found: run m2nist-gen {out} or pass generate=True"
    except (OSError, ValueError):
        return f"{npz} not found and {out / METADATA} is invalid: regenerate {out} with --force"
    if split not in meta.splits:
        return f"{npz} not found: the run in {out} made no {split} split"
    return (
        f"{npz} not found: {out} holds the {'/'.join(meta.formats)} format only; add the "
        f"npz files (the same rows) with: {rerun_command(out, meta)}"
    )
