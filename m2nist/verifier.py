"""``m2nist-gen --verify``: a generated directory is checked, not trusted.

Four layers, each run only when the one before passed (a file with the wrong sha256 is
not worth decoding):

1. **The directory**: no leftover ``.partial`` file of an interrupted run, and no file
   that ``metadata.json`` does not list: it must be exactly what one run wrote.
2. **The metadata itself**: every field has the type and a value a run could have written
   (:func:`parse_metadata`); malformed metadata is one problem line, never a traceback.
3. **The files against the metadata**: every listed file has the recorded size and
   sha256; then every row is read back block by block (memory stays flat) and the M2NIST
   contract (:func:`invariant_errors`), the Kaggle one-hot, the PNG label maps, agreement
   between formats and the per-count tallies are checked again.
4. **Regeneration**: generation is deterministic, so rows are generated again from the
   recorded seed, parameters and MNIST source (found by its recorded checksums, never by
   its name) and compared byte for byte. A consistent edit that keeps every invariant and
   fixes up the sha256s is still caught. By default a sample of blocks is regenerated (the
   first, the last and one at random), with ``regenerate="all"`` every row; when the
   recorded MNIST is not available the report says that regeneration was skipped and why.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fcnbase.outputs import is_partial
from m2nist.generator import M2NISTArrays, block_spans, compose, digit_pool
from m2nist.mnist import SAMPLE, MnistSourceError, load_split, sample_path
from m2nist.params import BACKGROUND, NUM_CLASSES, ParamError, Params, make_params
from m2nist.save import (
    ARRAY_NAMES,
    CLASSES_TXT,
    FORMATS,
    METADATA,
    PNG_FOLDERS,
    SPLIT_LISTS,
    classes_text,
    entry_of,
    file_sha256,
    new_metadata,
    output_names,
    shard_rows,
    split_list,
    stem,
    tally,
)

REGENERATE = ("none", "sample", "all")
KEYS = {"generator", "version", "seed", "params", "formats", "shard", "splits", "source", "files"}
SPLIT_KEYS = {"total", "start", "stop", "images", "per_digit_count"}
PARAM_KEYS = {"digits", "size", "margin", "threshold", "block", "placement_rounds"}
SHA256 = re.compile(r"[0-9a-f]{64}")


class MetadataError(ValueError):
    """A field of ``metadata.json`` that no run could have written."""


@dataclass(frozen=True)
class Metadata:
    """The parsed, type-checked ``metadata.json``."""

    seed: int
    params: Params
    formats: list[str]
    shard: tuple[int, int] | None
    splits: dict[str, dict]
    source: dict[str, dict]
    files: dict[str, dict]
    version: str


def _int(value: object, where: str, low: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise MetadataError(f"{where}: expected an integer >= {low}, got {value!r}")
    return value


def _dict(value: object, where: str, keys: set[str] | None = None) -> dict:
    if not isinstance(value, dict) or (keys is not None and set(value) != keys):
        odd = ", ".join(sorted(set(value) ^ keys)) if isinstance(value, dict) else "all"
        raise MetadataError(f"{where}: expected an object, unexpected or missing fields {odd}")
    return value


def parse_metadata(meta: object) -> Metadata:
    """Check every field of ``metadata.json``; raise :class:`MetadataError` on the first bad.

    The fields must be those a run with the recorded seed, parameters, formats, shard and
    splits writes (:func:`m2nist.save.new_metadata`), none unknown or missing: the same
    ``params`` (so this version's ``block`` and ``placement_rounds``, which regeneration
    needs), each split's rows the shard of its ``total`` and its tally one of its images,
    ``source`` with its checksums, ``files`` exactly the names of the splits and formats
    (plus a ``.png`` preview), each with a sha256 and a size. ``seed``, ``source`` and
    ``params`` are then proven by regeneration; ``version`` is informational.
    """
    top = _dict(meta, "metadata", KEYS)
    raw, formats, shard = _dict(top["params"], "params", PARAM_KEYS), top["formats"], top["shard"]
    try:
        params = make_params(raw["digits"], raw["size"], raw["margin"], raw["threshold"])
    except ParamError as exc:
        raise MetadataError(f"params: {exc}") from None
    if not isinstance(formats, list) or not formats or not set(formats) <= set(FORMATS):
        raise MetadataError(f"formats: expected a list of {'/'.join(FORMATS)}, got {formats!r}")
    if shard is not None and (not isinstance(shard, list) or len(shard) != 2):
        raise MetadataError(f"shard: expected null or [I, N], got {shard!r}")
    if shard is not None:
        shard = (_int(shard[0], "shard I"), _int(shard[1], "shard N", 1))
    written = new_metadata(_int(top["seed"], "seed"), params, formats, shard)
    for key in ("generator", "params", "shard"):
        if top[key] != written[key] or (shard and shard[0] >= shard[1]):
            raise MetadataError(
                f"{key}: {top[key]!r}, a run of this version writes {written[key]!r}"
            )
    if not isinstance(top["version"], str):
        raise MetadataError(f"version: expected a string, got {top['version']!r}")
    splits = _dict(top["splits"], "splits")
    if not splits or not set(splits) <= {"train", "test"}:
        raise MetadataError(f"splits: expected train and/or test, got {sorted(splits)}")
    for name, info in splits.items():
        info = _dict(info, f"splits.{name}", SPLIT_KEYS)
        start, stop = shard_rows(_int(info["total"], f"{name}.total"), shard)
        counts = _dict(info["per_digit_count"], f"splits.{name}.per_digit_count")
        keys = {str(k) for k in range(params.digits[0], params.max_digits + 1)}
        tallied = sum(_int(v, f"{name}.per_digit_count") for v in counts.values())
        if (info["start"], info["stop"], info["images"], set(counts), tallied) != (
            start,
            stop,
            stop - start,
            keys,
            stop - start,
        ):
            raise MetadataError(
                f"splits.{name}: not rows {start}-{stop} of {info['total']} and their tally"
            )
    for name, info in _dict(top["source"], "source", set(splits)).items():
        files = _dict(info, f"source.{name}").get("files")
        if info.get("kind") == SAMPLE:
            ok = isinstance(info.get("sha256"), str)
        else:
            ok = info.get("kind") == "idx" and isinstance(info.get("path"), str)
            ok &= isinstance(files, dict) and len(files) == 2
            ok = ok and all(
                isinstance(_dict(f, name).get("md5_uncompressed"), str) for f in files.values()
            )
        if not ok:
            raise MetadataError(f"source.{name}: expected kind 'idx' or 'sample' with checksums")
    files = _dict(top["files"], "files")
    if {n for n in files if not (n.endswith(".png") and "/" not in n)} != set(
        output_names(list(splits), formats)
    ):
        raise MetadataError("files: do not match the splits and formats recorded")
    for name, info in files.items():
        keys = {"sha256", "bytes", "count"} if name.endswith("/") else {"sha256", "bytes"}
        for key in keys - {"sha256"}:
            _int(_dict(info, f"files.{name}", keys)[key], f"files.{name}.{key}")
        if not isinstance(info["sha256"], str) or not SHA256.fullmatch(info["sha256"]):
            raise MetadataError(f"files.{name}.sha256: not a sha256 digest")
    return Metadata(
        top["seed"], params, formats, shard, splits, top["source"], files, top["version"]
    )


def invariant_errors(a: M2NISTArrays, params: Params, first_row: int = 0) -> list[str]:
    """Every way ``a`` breaks the M2NIST contract (empty list: all good).

    Checked per image: digit count in range; ink (> threshold) exactly where labels are
    not background; instances exactly where labels are; each instance's pixels carry its
    box's class and have exactly that box as bounding box; box rows past the count are
    -1; boxes lie on the canvas and are ``margin`` apart.
    """
    errors: list[str] = []

    def bad(what: str, mask: np.ndarray) -> None:
        rows = np.flatnonzero(mask)
        if rows.size:
            errors.append(f"{what} (image {first_row + int(rows[0])}, {rows.size} images)")

    n, (height, width), hi, m = len(a), params.size, params.max_digits, params.margin
    for name, dtype, shape in zip(
        ARRAY_NAMES,
        [np.uint8] * 3 + [np.int16],
        [(n, height, width)] * 3 + [(n, hi, 5)],
        strict=True,
    ):
        array = getattr(a, name)
        if array.dtype != dtype or array.shape != shape:
            return [f"{name}: {array.dtype}{array.shape}, expected {np.dtype(dtype)}{shape}"]
    counts = (a.boxes[:, :, 0] >= 0).sum(axis=1)
    used = np.arange(hi) < counts[:, None]
    bad("digit count out of range", (counts < params.digits[0]) | (counts > hi))
    bad("box rows not a prefix", (a.boxes[:, :, 0] >= 0) != used)
    bad("padding rows not -1", ((a.boxes != -1).any(axis=2) & ~used))
    cls, y0, x0, y1, x1 = (a.boxes[:, :, i].astype(np.int64) for i in range(5))
    bad("box class not 0-9", (used & ((cls < 0) | (cls > 9))).any(axis=1))
    off = (y0 < 0) | (x0 < 0) | (y1 > height) | (x1 > width) | (y1 <= y0) | (x1 <= x0)
    bad("box off canvas", (used & off).any(axis=1))
    labelled = a.labels != BACKGROUND
    bad("label value > 10", (a.labels > BACKGROUND).any(axis=(1, 2)))
    bad("ink and labels disagree", ((a.images > params.threshold) != labelled).any(axis=(1, 2)))
    bad("instances and labels disagree", ((a.instances > 0) != labelled).any(axis=(1, 2)))
    bad("instance id above digit count", a.instances.max(axis=(1, 2), initial=0) > counts)
    for k in range(hi):
        mask = a.instances == k + 1
        wrong = mask & (a.labels != cls[:, k, None, None].clip(0, 255))
        bad(f"digit {k + 1}: pixels of another class", wrong.any(axis=(1, 2)))
        rows, cols = mask.any(axis=2), mask.any(axis=1)
        present = rows.any(axis=1)
        bad(f"digit {k + 1}: listed in boxes but has no pixels", used[:, k] & ~present)
        box = np.stack(
            [
                rows.argmax(1),
                cols.argmax(1),
                height - rows[:, ::-1].argmax(1),
                width - cols[:, ::-1].argmax(1),
            ],
            axis=1,
        )
        bad(
            f"digit {k + 1}: box is not its ink bounding box",
            present & (box != a.boxes[:, k, 1:]).any(axis=1),
        )
        for j in range(k):
            clear = (y0[:, k] >= y1[:, j] + m) | (y1[:, k] + m <= y0[:, j])
            clear |= (x0[:, k] >= x1[:, j] + m) | (x1[:, k] + m <= x0[:, j])
            bad(
                f"digits {j + 1} and {k + 1}: boxes closer than margin {m}",
                used[:, k] & used[:, j] & ~clear,
            )
    return errors


class NpzRows:
    """A ``.npz`` member read front to back, rows at a time: flat memory, every byte read
    through :mod:`zipfile`, which checks the member's CRC-32 once its last byte is read."""

    def __init__(self, zf: zipfile.ZipFile, name: str, dtype: type, shape: tuple) -> None:
        self.file = zf.open(f"{name}.npy")
        np.lib.format.read_magic(self.file)
        got = np.lib.format.read_array_header_1_0(self.file)
        if got != (shape, False, np.dtype(dtype)):
            raise ValueError(f"{zf.filename}: {name} is {got[2]}{got[0]}, expected {shape}")
        self.dtype, self.shape = np.dtype(dtype), shape

    def __call__(self, a: int, b: int) -> np.ndarray:
        data = self.file.read((b - a) * self.dtype.itemsize * int(np.prod(self.shape[1:])))
        return np.frombuffer(data, self.dtype).reshape(b - a, *self.shape[1:])


def readers(out: Path, split: str, meta: Metadata) -> dict[str, Callable[[int, int], dict]]:
    """How to read rows ``a:b`` of ``split`` (in increasing order) from each stored format:
    the npz's four arrays, the ``images`` and ``labels`` of the others. ``ValueError``
    names a file whose dtype, shape or encoding (one-hot, 8-bit PNG, classes) is wrong."""
    n, (height, width), hi = meta.splits[split]["images"], meta.params.size, meta.params.max_digits
    read: dict[str, Callable[[int, int], dict]] = {}
    if "npz" in meta.formats:
        zf = zipfile.ZipFile(out / f"{split}.npz")
        shapes = [(np.uint8, (n, height, width))] * 3 + [(np.int16, (n, hi, 5))]
        npz = {name: NpzRows(zf, name, *s) for name, s in zip(ARRAY_NAMES, shapes, strict=True)}
        read["npz"] = lambda a, b: {name: rows(a, b) for name, rows in npz.items()}
    at = meta.splits["train"]["images"] if split == "test" and "train" in meta.splits else 0
    total = sum(info["images"] for info in meta.splits.values())
    for fmt, folder, first, count in (
        ("kaggle", out / split, 0, n),
        ("kaggle-flat", out, at, total),
    ):
        if fmt in meta.formats:
            read[fmt] = _kaggle_reader(folder, first, (count, height, width))
    if "png" in meta.formats:
        start = meta.splits[split]["start"]
        read["png"] = lambda a, b: {
            kind: np.stack(
                [
                    _png(out / folder / f"{stem(split, start + i)}.png", (height, width))
                    for i in range(a, b)
                ]
            )
            for folder, kind in PNG_FOLDERS.items()
        }
    return read


def _kaggle_reader(folder: Path, first: int, shape: tuple) -> Callable[[int, int], dict]:
    """Rows of ``combined.npy`` and ``segmented.npy`` in ``folder``, memory-mapped (from row
    ``first`` on), the one-hot checked and turned back into label maps."""
    arrays = {}
    for name, want in (("combined", shape), ("segmented", (*shape, NUM_CLASSES))):
        arrays[name] = np.load(folder / f"{name}.npy", mmap_mode="r")
        if (arrays[name].dtype, arrays[name].shape) != (np.uint8, want):
            raise ValueError(
                f"{folder / name}.npy: {arrays[name].dtype}{arrays[name].shape}, "
                f"expected uint8{want}"
            )

    def read(a: int, b: int) -> dict:
        hot = np.asarray(arrays["segmented"][first + a : first + b])
        if hot.max(initial=0) > 1 or (hot.sum(-1) != 1).any():
            raise ValueError(f"{folder}/segmented.npy: not one-hot over {NUM_CLASSES} channels")
        labels = hot.argmax(-1).astype(np.uint8)
        return {"images": np.asarray(arrays["combined"][first + a : first + b]), "labels": labels}

    return read


def _png(path: Path, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.format != "PNG" or im.mode != "L" or im.size != shape[::-1]:
                raise ValueError(
                    f"{path}: {im.format} {im.mode} {im.size}, expected an 8-bit "
                    f"PNG of {shape[::-1]}"
                )
            pixels = np.asarray(im)
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not a PNG file") from None
    if path.parent.name == "masks" and pixels.max() > BACKGROUND:
        raise ValueError(f"{path}: mask value {pixels.max()} is not a class 0-{BACKGROUND}")
    return pixels


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
    """Verify a generated directory (the four layers of the module docstring).

    ``regenerate``: ``"sample"`` (a few blocks per split), ``"all"`` or ``"none"``.
    ``source``: where to find the recorded MNIST (default: ``$M2NIST_MNIST_DIR``, then
    the folder recorded in the metadata); it is used only if its checksums match.
    """
    if regenerate not in REGENERATE:
        raise ValueError(f"regenerate={regenerate!r}: expected one of {', '.join(REGENERATE)}")
    out, report = Path(out), Report()
    problems = report.problems
    if not out.is_dir():
        return Report([f"{out}: not a directory"])
    present = sorted(
        Path(d, f).relative_to(out).as_posix() for d, _, files in os.walk(out) for f in files
    )
    temporary = [p for p in present if any(is_partial(part) for part in Path(p).parts)]
    problems += [f"{out / p}: leftover temporary file of an interrupted run" for p in temporary]
    try:
        meta = parse_metadata(json.loads((out / METADATA).read_text()))
    except FileNotFoundError:
        return Report(
            [*problems, f"{out / METADATA}: missing (incomplete or not an m2nist output)"]
        )
    except (OSError, ValueError) as exc:  # MetadataError and JSONDecodeError are ValueErrors
        return Report([*problems, f"{out / METADATA}: invalid ({' '.join(str(exc).split())})"])
    folders = [name for name in meta.files if name.endswith("/")]
    problems += [
        f"{out / p}: not listed in {METADATA} (not written by the run it describes)"
        for p in present
        if p not in (METADATA, *meta.files, *temporary) and not p.startswith(tuple(folders))
    ]
    for name, info in meta.files.items():
        path = out / name
        if name.endswith("/"):
            problems += _folder_problems(path, info, meta)
        elif not path.is_file() or path.is_symlink():
            problems.append(f"{path}: missing")
        elif path.stat().st_size != info["bytes"]:
            problems.append(f"{path}: {path.stat().st_size} bytes, metadata says {info['bytes']}")
        elif file_sha256(path) != info["sha256"]:
            problems.append(f"{path}: sha256 differs from metadata")
    if not problems and "png" in meta.formats:
        for split, name in SPLIT_LISTS.items():
            info = meta.splits.get(split, {"start": 0, "stop": 0})
            if (out / name).read_bytes() != split_list(split, info["start"], info["stop"]):
                problems.append(f"{out / name}: not the stems of the run")
        if (out / CLASSES_TXT).read_bytes() != classes_text():
            problems.append(f"{out / CLASSES_TXT}: not the class names of the run")
    for split in meta.splits if not problems else ():
        try:
            problem, note = _check_split(out, split, meta, regenerate, source)
        except (ValueError, OSError, KeyError, zipfile.BadZipFile) as exc:
            problem, note = [f"{out}: {split}: cannot read ({' '.join(str(exc).split())})"], None
        problems += problem
        report.notes += [note] if note else []
        if problems:
            break
    report.problems = problems[:max_errors]
    return report


def _folder_problems(folder: Path, info: dict, meta: Metadata) -> list[str]:
    """A PNG folder: exactly a run's files, with the recorded count, bytes and sha256."""
    if not folder.is_dir() or folder.is_symlink():
        return [f"{folder}: missing"]
    names = {
        f"{stem(s, r)}.png" for s, i in meta.splits.items() for r in range(i["start"], i["stop"])
    }
    present = {p.name for p in folder.iterdir()}
    missing, extra = sorted(names - present), sorted(present - names)
    if missing:
        return [f"{folder / missing[0]}: missing ({len(missing)} files of {len(names)})"]
    if extra:
        return [f"{folder / extra[0]}: not listed in {METADATA} (not written by the run)"]
    entry = entry_of(folder)
    if entry != info:
        return [
            f"{folder}: {entry['count']} files, {entry['bytes']} bytes in all, sha256 "
            f"{entry['sha256'][:12]}...; metadata says {info['count']}, {info['bytes']}, "
            f"{info['sha256'][:12]}... (a file changed)"
        ]
    return []


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
            reasons.append(" ".join(str(exc).split()))
            continue
        if sorted(f["md5_uncompressed"] for f in found) == want:
            return Path(folder), str(folder)
        reasons.append(f"{folder}: MNIST files differ from the recorded md5s")
    return None, "; ".join(reasons) or "no MNIST folder to compare with"


def _check_split(
    out: Path, split: str, meta: Metadata, regenerate: str, source: object
) -> tuple[list[str], str | None]:
    """Layers 3 and 4 for ``split``, block by block: the stored rows of every format are
    checked and, for the blocks :func:`check` regenerates, compared with fresh ones."""
    params, info = meta.params, meta.splits[split]
    start, n = info["start"], info["images"]
    spans = fresh_spans = block_spans(start, info["stop"])
    if regenerate == "sample" and len(spans) > 3:
        fresh_spans = [spans[0], spans[1 + secrets.randbelow(len(spans) - 2)], spans[-1]]
    resolved, why = None, ""
    if regenerate != "none":
        resolved, why = matching_source(meta.source[split], split, source)
    read, done = readers(out, split, meta), 0
    per_count = np.zeros(params.max_digits + 1, np.int64)
    for a, b in spans:
        stored = {fmt: rows(a - start, b - start) for fmt, rows in read.items()}
        where, problems = f"{out}: {split} rows {a - start}-{b - start}", []
        npz = stored.get("npz")
        if npz is not None:
            arrays = M2NISTArrays(*npz.values())
            problems += [f"{where}: {e}" for e in invariant_errors(arrays, params, a - start)]
        for fmt, got in stored.items():
            if ((got["images"] > params.threshold) != (got["labels"] != BACKGROUND)).any():
                problems.append(f"{where} ({fmt}): labels disagree with the ink in the images")
            if npz and not all(np.array_equal(got[k], npz[k]) for k in ("images", "labels")):
                problems.append(f"{where} ({fmt}): {fmt} files disagree with the .npz")
        if problems:
            return problems, None
        boxes = npz["boxes"] if npz else None
        if resolved is not None and (a, b) in fresh_spans:
            fresh = compose(digit_pool(split, params, resolved), params, meta.seed, split, a, b)
            boxes, done = fresh.boxes, done + b - a
            for fmt, got in stored.items():
                for kind, rows in got.items():
                    if not np.array_equal(rows, getattr(fresh, kind)):
                        return [
                            f"{where}: {_NAMES.get((fmt, kind), kind)} differs from a "
                            "regeneration with the recorded seed, parameters and MNIST "
                            f"({why}; recorded version {meta.version})"
                        ], None
        if boxes is not None:
            per_count += np.bincount((boxes[:, :, 0] >= 0).sum(1), minlength=len(per_count))
    if ("npz" in meta.formats or done == n) and tally(per_count, params) != info["per_digit_count"]:
        return [f"{out}: {split}: per-digit-count tally differs from metadata"], None
    if resolved is None:
        return [], None if regenerate == "none" else f"{split}: regeneration skipped: {why}"
    return [], f"{split}: {done} of {n} rows regenerated from {why}: identical"


#: How a problem names each stored array that is not an ``.npz`` member.
_NAMES = {
    ("kaggle", "images"): "combined",
    ("kaggle", "labels"): "segmented",
    ("kaggle-flat", "images"): "combined.npy",
    ("kaggle-flat", "labels"): "segmented.npy",
    ("png", "images"): "images/*.png",
    ("png", "labels"): "masks/*.png",
}
