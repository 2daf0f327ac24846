"""``m2nist-gen --verify``: a generated directory is checked, not trusted.

Generation is deterministic, so the strongest check is to do it again: rows are
generated anew from the recorded seed, parameters and MNIST source (found by its recorded
checksums, never by its name) and compared byte for byte with what each format's files
give back. An edit that fixes up the sha256s in ``metadata.json`` is still caught.

Three steps, each only when the one before passed (a file with the wrong sha256 is not
worth decoding):

1. **The directory**: no leftover ``.partial`` file of an interrupted run, and no file
   that ``metadata.json`` does not list: it must be exactly what one run wrote.
2. **The metadata and the checksums**: the fields verification relies on are those a
   run writes (:func:`parse_metadata`; anything malformed is one problem line, never a
   traceback), and every listed file has the recorded size and sha256.
3. **Regeneration**, block by block (memory stays flat): by default the first, the last
   and one random block of each split, with ``regenerate="all"`` every row. The digit
   counts in ``metadata.json`` are recounted from the ``.npz`` boxes (or the regenerated
   rows). When the recorded MNIST is not available the report says that regeneration was
   skipped and why.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from fcnbase.cli import one_line
from fcnbase.outputs import is_partial
from m2nist.generator import M2NISTArrays, block_spans, compose, digit_pool
from m2nist.mnist import SAMPLE, MnistSourceError, load_split, sample_path
from m2nist.params import make_params
from m2nist.save import (
    ARRAY_NAMES,
    FORMATS,
    METADATA,
    PNG_FOLDERS,
    entry_of,
    new_metadata,
    one_hot,
    output_names,
    png_texts,
    shard_rows,
    stem,
    tally,
)

REGENERATE = ("none", "sample", "all")
KAGGLE_FILES = ("combined.npy", "segmented.npy")
SHA256 = re.compile(r"[0-9a-f]{64}")


def parse_metadata(meta: object) -> SimpleNamespace:
    """``metadata.json``, its fields checked (else a ValueError), as attributes.

    The fields must be those a run writes (:func:`m2nist.save.new_metadata`) with this
    version's ``params`` (``block`` and ``placement_rounds`` too: regeneration needs them),
    each split's rows the recorded shard of its ``total``, and ``files`` exactly the names
    the splits and formats give (plus a ``.png`` preview). A missing or mistyped field (a
    ``KeyError`` or ``TypeError`` on the way) is one line naming it.
    """
    if not isinstance(meta, dict):
        raise ValueError("expected an object")
    try:
        raw, formats, shard, seed = meta["params"], meta["formats"], meta["shard"], meta["seed"]
        params = make_params(*(raw[k] for k in ("digits", "size", "margin", "threshold")))
        shard = None if shard is None else (shard[0], shard[1])
        written = new_metadata(seed, params, formats, shard)
        if set(meta) != set(written) or not isinstance(meta["version"], str):
            raise ValueError(f"fields {sorted(meta)}, a run writes {sorted(written)}")
        for key in ("generator", "params", "shard"):
            if meta[key] != written[key] or (shard and not 0 <= shard[0] < shard[1]):
                raise ValueError(
                    f"{key}: {meta[key]!r}, a run of this version writes {written[key]!r}"
                )
        if type(seed) is not int or seed < 0 or not formats or not set(formats) <= set(FORMATS):
            raise ValueError(f"seed {seed!r} or formats {formats!r}: not what a run writes")
        splits, files = meta["splits"], meta["files"]
        if not splits or not set(splits) <= {"train", "test"} or set(meta["source"]) != set(splits):
            raise ValueError(f"splits: expected train and/or test, got {sorted(splits)}")
        for name, info in splits.items():
            start, stop = shard_rows(info["total"], shard)
            if (info["start"], info["stop"], info["images"]) != (start, stop, stop - start):
                raise ValueError(f"splits.{name}: not rows {start}-{stop} of {info['total']}")
        data = {n for n in files if not (n.endswith(".png") and "/" not in n)}
        if data != set(output_names(list(splits), formats)):
            raise ValueError("files: do not match the splits and formats recorded")
        for name, info in files.items():
            if not SHA256.fullmatch(info["sha256"]) or type(info["bytes"]) is not int:
                raise ValueError(f"files.{name}: not a sha256 and a size")
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"missing or mistyped field ({type(exc).__name__}: {exc})") from None
    return SimpleNamespace(**{**meta, "params": params, "shard": shard})


def npz_rows(zf: zipfile.ZipFile, name: str) -> Callable[[int, int], np.ndarray]:
    """Rows ``a:b`` of member ``name`` of ``zf``, read front to back: flat memory, every byte
    read through :mod:`zipfile`, which checks the member's CRC-32 once its last is read."""
    file = zf.open(f"{name}.npy")
    np.lib.format.read_magic(file)
    shape, _, dtype = np.lib.format.read_array_header_1_0(file)
    row = dtype.itemsize * int(np.prod(shape[1:]))
    return lambda a, b: np.frombuffer(file.read((b - a) * row), dtype).reshape(-1, *shape[1:])


def readers(out: Path, split: str, meta: SimpleNamespace) -> dict[str, Callable[[int, int], dict]]:
    """How to read rows ``a:b`` of ``split`` (in increasing order) from each stored format,
    as the arrays the writer wrote: for every format, what regeneration must give back."""
    read: dict[str, Callable[[int, int], dict]] = {}
    if "npz" in meta.formats:
        zf = zipfile.ZipFile(out / f"{split}.npz")
        npz = {name: npz_rows(zf, name) for name in ARRAY_NAMES}
        read["npz"] = lambda a, b: {name: rows(a, b) for name, rows in npz.items()}
    at = meta.splits["train"]["images"] if split == "test" and "train" in meta.splits else 0
    for fmt, folder, first in (("kaggle", out / split, 0), ("kaggle-flat", out, at)):
        if fmt in meta.formats:
            files = {name: np.load(folder / name, mmap_mode="r") for name in KAGGLE_FILES}
            read[fmt] = lambda a, b, files=files, f=first: {
                name: rows[f + a : f + b] for name, rows in files.items()
            }
    if "png" in meta.formats:
        from PIL import Image  # PIL closes a PNG's file once its pixels are read

        def png(folder: str, a: int, b: int, at: int = meta.splits[split]["start"]) -> np.ndarray:
            names = (out / folder / f"{stem(split, i)}.png" for i in range(a + at, b + at))
            return np.stack([np.asarray(Image.open(name)) for name in names])

        read["png"] = lambda a, b: {f"{f}/*.png": png(f, a, b) for f in PNG_FOLDERS}
    return read


def expected(fresh: M2NISTArrays, fmt: str) -> dict[str, np.ndarray]:
    """The arrays each format stores for regenerated rows ``fresh`` (as :func:`readers`)."""
    if fmt == "npz":
        return dict(zip(ARRAY_NAMES, fresh.arrays(), strict=True))
    if fmt == "png":
        return {f"{f}/*.png": getattr(fresh, kind) for f, kind in PNG_FOLDERS.items()}
    return {"combined.npy": fresh.images, "segmented.npy": one_hot(fresh.labels)}


def verify(
    out: str | Path,
    *,
    regenerate: str = "sample",
    source: str | os.PathLike | None = None,
    notes: list[str] | None = None,
) -> list[str]:
    """The first 20 problems found in ``out`` (the three steps of the module docstring);
    empty: it is what its metadata says. Any problem means ``--verify`` exits 1.

    ``regenerate``: ``"sample"`` (a few blocks per split), ``"all"`` or ``"none"``.
    ``source``: where to find the recorded MNIST (default: ``$M2NIST_MNIST_DIR``, then
    the folder recorded in the metadata); it is used only if its checksums match.
    ``notes``, when given, receives what was proven beyond the checksums, or why
    regeneration was skipped.
    """
    if regenerate not in REGENERATE:
        raise ValueError(f"regenerate={regenerate!r}: expected one of {', '.join(REGENERATE)}")
    out, problems, notes = Path(out), [], [] if notes is None else notes
    if not out.is_dir():
        return [f"{out}: not a directory"]
    present = sorted(
        Path(d, f).relative_to(out).as_posix() for d, _, files in os.walk(out) for f in files
    )
    temporary = [p for p in present if any(is_partial(part) for part in Path(p).parts)]
    problems += [f"{out / p}: leftover temporary file of an interrupted run" for p in temporary]
    try:
        meta = parse_metadata(json.loads((out / METADATA).read_text()))
    except FileNotFoundError:
        return [*problems, f"{out / METADATA}: missing (incomplete or not an m2nist output)"]
    except (OSError, ValueError, RecursionError) as exc:  # bad JSON, a bad field, [[[[...
        return [*problems, f"{out / METADATA}: invalid ({one_line(exc)})"]
    listed = {*meta.files, *temporary, METADATA}
    rows = {split: (info["start"], info["stop"]) for split, info in meta.splits.items()}
    for folder in (name for name in meta.files if name.endswith("/")):
        listed |= {f"{folder}{stem(s, r)}.png" for s, (a, b) in rows.items() for r in range(a, b)}
    problems += [
        f"{out / p}: not listed in {METADATA} (not written by the run it describes)"
        for p in present
        if p not in listed
    ]
    for name, info in meta.files.items():
        path = out / name
        if not (path.is_dir() if name.endswith("/") else path.is_file()) or path.is_symlink():
            problems.append(f"{path}: missing")
        elif (entry := entry_of(path)) != info:
            differ = ", ".join(f"{k} {entry[k]}" for k in entry if entry[k] != info.get(k))
            problems.append(f"{path}: {differ} differs from {METADATA} (a file changed)")
    if not problems and "png" in meta.formats:
        for name, text in png_texts(rows).items():
            if (out / name).read_bytes() != text:
                problems.append(f"{out / name}: not the text of the recorded run")
    for split in meta.splits if not problems else ():
        try:
            problem, note = _check_split(out, split, meta, regenerate, source)
        except (ValueError, OSError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            problem, note = [f"{out}: {split}: cannot read ({one_line(exc)})"], None
        problems += problem
        notes += [note] if note else []
        if problems:
            break
    return problems[:20]


def matching_source(recorded: dict, split: str, source: object) -> tuple[object, str]:
    """The MNIST source whose checksums are the recorded ones, or None and why not.

    Candidates: ``source`` when given, else ``$M2NIST_MNIST_DIR`` and the recorded folder.
    A folder is accepted only when its two files of ``split`` have the recorded md5s (the
    name or compression may differ), the sample only when its sha256 is the recorded one.
    """
    train = split == "train"
    if recorded["kind"] == SAMPLE:
        if source is not None and source != SAMPLE:
            return None, f"it was made from the bundled sample, not {source}"
        if load_split(train, SAMPLE).source["sha256"] != recorded["sha256"]:
            return None, f"the bundled sample ({sample_path()}) differs from the one recorded"
        return SAMPLE, "the bundled sample"
    if source == SAMPLE:
        return None, f"it was made from MNIST in {recorded['path']}, not the bundled sample"
    want = sorted(f["md5_uncompressed"] for f in recorded["files"].values())
    candidates = (
        [source] if source is not None else [os.environ.get("M2NIST_MNIST_DIR"), recorded["path"]]
    )
    reasons = []
    for folder in dict.fromkeys(c for c in candidates if c):
        try:
            found = load_split(train, folder).source["files"].values()
        except MnistSourceError as exc:
            reasons.append(one_line(exc))
            continue
        if sorted(f["md5_uncompressed"] for f in found) == want:
            return Path(folder), str(folder)
        reasons.append(f"{folder}: MNIST files differ from the recorded md5s")
    return None, "; ".join(reasons) or "no MNIST folder to compare with"


def _check_split(
    out: Path, split: str, meta: SimpleNamespace, regenerate: str, source: object
) -> tuple[list[str], str | None]:
    """Step 3 for ``split``: every stored row is read, block by block, and those of the
    blocks :func:`verify` regenerates are compared with fresh ones."""
    params, info = meta.params, meta.splits[split]
    start, n = info["start"], info["images"]
    spans = fresh_spans = block_spans(start, info["stop"])
    if regenerate == "sample" and len(spans) > 3:
        fresh_spans = [spans[0], spans[1 + secrets.randbelow(len(spans) - 2)], spans[-1]]
    resolved, why, recorded = None, "", meta.source[split]
    if recorded["kind"] not in (SAMPLE, "idx"):
        raise ValueError(f"source kind {recorded['kind']!r}: not 'idx' or 'sample'")
    if regenerate != "none":
        resolved, why = matching_source(recorded, split, source)
    read, done = readers(out, split, meta), 0
    per_count = np.zeros(params.max_digits + 1, np.int64)
    for a, b in spans:
        fresh_block = resolved is not None and (a, b) in fresh_spans
        stored = {  # the npz is a stream, read through; the other formats where compared
            fmt: rows(a - start, b - start)
            for fmt, rows in read.items()
            if fmt == "npz" or fresh_block
        }
        boxes = stored["npz"]["boxes"] if "npz" in stored else None
        if fresh_block:
            fresh = compose(digit_pool(split, params, resolved), params, meta.seed, split, a, b)
            boxes, done = fresh.boxes, done + b - a
            for fmt, got in stored.items():
                for name, want in expected(fresh, fmt).items():
                    if got[name].dtype != want.dtype or not np.array_equal(got[name], want):
                        return [
                            f"{out}: {split} rows {a - start}-{b - start}: {name} differs from "
                            "a regeneration with the recorded seed, parameters and MNIST "
                            f"({why}; recorded version {meta.version})"
                        ], None
        if boxes is not None:
            per_count += np.bincount((boxes[:, :, 0] >= 0).sum(1), minlength=len(per_count))
    if ("npz" in meta.formats or done == n) and tally(per_count, params) != info["per_digit_count"]:
        return [f"{out}: {split}: per-digit-count tally differs from metadata"], None
    if resolved is None:
        return [], None if regenerate == "none" else f"{split}: regeneration skipped: {why}"
    return [], f"{split}: {done} of {n} rows regenerated from {why}: identical"
