"""Streaming, byte-reproducible, crash-safe output files and their verification.

* ``.npz`` files are zip archives of ``.npy`` members. We write them ourselves
  (:class:`NpzStreamWriter`): uncompressed, zip64, fixed timestamps, every member's
  chunks written in place as blocks arrive. ``np.load`` reads them as usual, memory
  stays flat in N, and equal arrays give equal bytes (``np.savez`` stamps the time).
* The Kaggle layout is two plain ``.npy`` files per split (header + raw bytes).
* Every file is first written under a fresh, exclusively created temporary name
  (``.NAME.<random>.partial``, from :func:`fcnbase.outputs.create_temp`: never a fixed
  name another run shares, never followed through a planted symlink) and renamed only
  when complete; ``metadata.json`` (with each file's sha256) comes last, so an
  interrupted run never leaves a directory that passes :func:`m2nist.verification.verify`.
* A run holds :func:`fcnbase.outputs.lock_dir` on OUT from its first check to its last
  rename: a second run into the same OUT fails at once instead of interleaving files.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import struct
import zipfile
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import BinaryIO

import numpy as np

from fcnbase.cli import UsageError, deferred_interrupts
from fcnbase.outputs import (
    atomic_write,
    check_outputs,
    check_writable,
    create_temp,
    lock_dir,
)
from m2nist.compose import (
    BACKGROUND,
    BLOCK,
    NUM_CLASSES,
    PLACEMENT_ROUNDS,
    DigitPool,
    M2nistArrays,
    Params,
    block_spans,
    compose_range,
    digit_pool,
)
from m2nist.mnist import SAMPLE, load_split, resolve_source, sample_path

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
METADATA = "metadata.json"
ARRAY_NAMES = ("images", "labels", "instances", "boxes")
HASH_CHUNK = 1 << 24
MASK32 = 0xFFFFFFFF
ZIP64_VERSION = 45
FILE_ATTR = 0o100644 << 16  # regular file, rw-r--r--
ONE_HOT_ROWS = 512
PREVIEW_IMAGES = 16


def npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` header for a C-ordered array, so its data can follow in chunks."""
    buf = io.BytesIO()
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
        "fortran_order": False,
        "shape": tuple(shape),
    }
    np.lib.format.write_array_header_2_0(buf, header) if _needs_v2(
        header
    ) else np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


def _needs_v2(header: dict) -> bool:
    return len(repr(header)) > 65000


def zip_info(name: str, compress: bool) -> zipfile.ZipInfo:
    """A member header with fixed time and permissions, for reproducible archives."""
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.external_attr = FILE_ATTR
    return info


def write_npz(path: Path | BinaryIO, arrays: dict[str, np.ndarray], compress: bool = False) -> None:
    """Write small in-memory arrays as a reproducible ``.npz`` (used for the sample);
    ``path`` may be an open file, e.g. from :func:`fcnbase.outputs.atomic_write`."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, array in arrays.items():
            array = np.ascontiguousarray(array)
            with zf.open(zip_info(f"{name}.npy", compress), "w", force_zip64=True) as f:
                f.write(npy_header(array.dtype, array.shape))
                f.write(array.tobytes())


class NpzStreamWriter:
    """Write an uncompressed ``.npz`` whose arrays arrive in row chunks, interleaved.

    A zip member must normally be written in one go, but with ZIP_STORED every size is
    known in advance, so the layout is fixed up front: each member's local header
    (30 bytes + name + 20-byte zip64 extra), then its ``.npy`` header and data. Chunks
    are written in place with ``os.pwrite`` while each member's CRC-32 is updated; the
    local headers (which carry the CRCs), the central directory and the zip64 end
    records are written by :meth:`close`. The bytes depend only on the arrays, and
    Python's ``zipfile`` (hence ``np.load``) reads the result, checking every CRC.
    """

    def __init__(self, fd: int, members: dict[str, tuple[np.dtype, tuple[int, ...]]]):
        """``fd``: an empty file opened for writing (from :func:`create_temp`); the writer
        owns it from here and closes it. It never opens a path itself, so it cannot be
        pointed at another file through a name."""
        self.names = [f"{name}.npy".encode() for name in members]
        self.offset, self.next, self.end, self.crc, self.size = {}, {}, {}, {}, {}
        self.fd = fd
        at = 0
        for (name, (dtype, shape)), encoded in zip(members.items(), self.names, strict=True):
            header = npy_header(dtype, shape)
            nbytes = np.dtype(dtype).itemsize * int(np.prod(shape, dtype=np.int64))
            self.offset[name] = at
            data = at + 30 + len(encoded) + 20
            os.pwrite(self.fd, header, data)
            self.crc[name] = zlib.crc32(header)
            self.next[name] = data + len(header)
            self.size[name] = len(header) + nbytes
            self.end[name] = at = data + self.size[name]
        self.directory = at

    def write(self, name: str, chunk: np.ndarray) -> None:
        """Append the next rows of array ``name``."""
        view = memoryview(np.ascontiguousarray(chunk)).cast("B")
        while view:
            done = os.pwrite(self.fd, view, self.next[name])
            self.crc[name] = zlib.crc32(view[:done], self.crc[name])
            self.next[name] += done
            view = view[done:]

    def __enter__(self) -> NpzStreamWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.finish()
        else:
            os.close(self.fd)

    def finish(self) -> None:
        """Write headers and directory; every member must be complete."""
        try:
            central = b""
            date, time_ = (ZIP_EPOCH[0] - 1980) << 9 | ZIP_EPOCH[1] << 5 | ZIP_EPOCH[2], 0
            for name, encoded in zip(self.offset, self.names, strict=True):
                if self.next[name] != self.end[name]:
                    raise ValueError(f"{name}: {self.end[name] - self.next[name]} bytes missing")
                size, crc, at = self.size[name], self.crc[name], self.offset[name]
                fixed = (ZIP64_VERSION, 0, 0, time_, date, crc, MASK32, MASK32, len(encoded))
                local = struct.pack("<IHHHHHIIIHH", 0x04034B50, *fixed, 20)
                os.pwrite(self.fd, local + encoded + struct.pack("<HHQQ", 1, 16, size, size), at)
                central += (
                    struct.pack(
                        "<IHHHHHHIIIHHHHHII",
                        0x02014B50,
                        3 << 8 | ZIP64_VERSION,
                        *fixed,
                        28,
                        0,
                        0,
                        0,
                        FILE_ATTR,
                        MASK32,
                    )
                    + encoded
                    + struct.pack("<HHQQQ", 1, 24, size, size, at)
                )
            n, start, length = len(self.names), self.directory, len(central)
            tail = (
                struct.pack(
                    "<IQHHIIQQQQ",
                    0x06064B50,
                    44,
                    ZIP64_VERSION,
                    ZIP64_VERSION,
                    0,
                    0,
                    n,
                    n,
                    length,
                    start,
                )
                + struct.pack("<IIQI", 0x07064B50, 0, start + length, 1)
                + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, MASK32, MASK32, 0)
            )
            os.pwrite(self.fd, central + tail, start)
        finally:
            os.close(self.fd)


def open_npy(f: BinaryIO) -> tuple[np.dtype, tuple[int, ...]]:
    """Read an ``.npy`` header from a stream, leaving it positioned at the data."""
    version = np.lib.format.read_magic(f)
    read = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, fortran, dtype = read(f)
    if fortran:
        raise ValueError("Fortran-ordered array")
    return dtype, shape


def read_rows(f: BinaryIO, dtype: np.dtype, shape: tuple[int, ...], rows: int) -> np.ndarray:
    """The next ``rows`` rows of an ``.npy`` stream opened by :func:`open_npy`."""
    count = rows * int(np.prod(shape[1:], dtype=np.int64))
    data = f.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise ValueError("data ends early")
    return np.frombuffer(data, dtype).reshape(rows, *shape[1:])


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in chunks (memory stays flat)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def one_hot(labels: np.ndarray) -> np.ndarray:
    """(N,H,W) labels -> (N,H,W,11) uint8 one-hot, channel 10 = background."""
    return (labels[..., None] == np.arange(NUM_CLASSES, dtype=np.uint8)).view(np.uint8)


def digit_counts(boxes: np.ndarray) -> np.ndarray:
    """Digits per image, read off the padded box table."""
    return (boxes[:, :, 0] >= 0).sum(axis=1)


def invariant_errors(a: M2nistArrays, params: Params, first_row: int = 0) -> list[str]:
    """Every way ``a`` breaks the M2NIST contract (empty list: all good).

    Checked per image: digit count in range; ink (> threshold) exactly where labels
    are not background; instances present exactly where labels are; each instance's
    pixels carry its box's class and have exactly that box as bounding box; box rows
    past the count are -1; boxes lie on the canvas and are ``margin`` apart.
    """
    errors: list[str] = []

    def bad(what: str, mask: np.ndarray) -> None:
        rows = np.flatnonzero(mask)
        if rows.size:
            errors.append(f"{what} (image {first_row + int(rows[0])}, {rows.size} images)")

    n, (height, width), hi = len(a), params.size, params.max_digits
    for name, dtype, shape in (
        ("images", np.uint8, (n, height, width)),
        ("labels", np.uint8, (n, height, width)),
        ("instances", np.uint8, (n, height, width)),
        ("boxes", np.int16, (n, hi, 5)),
    ):
        array = getattr(a, name)
        if array.dtype != dtype or array.shape != shape:
            return [f"{name}: {array.dtype}{array.shape}, expected {np.dtype(dtype)}{shape}"]
    counts = digit_counts(a.boxes)
    bad("digit count out of range", (counts < params.digits[0]) | (counts > hi))
    slots = np.arange(hi)
    used = slots < counts[:, None]
    bad("box rows not a prefix", (a.boxes[:, :, 0] >= 0) != used)
    bad("padding rows not -1", ((a.boxes != -1).any(axis=2) & ~used))
    cls, y0, x0, y1, x1 = (a.boxes[:, :, i].astype(np.int64) for i in range(5))
    bad("box class not 0-9", (used & ((cls < 0) | (cls > 9))).any(axis=1))
    bad(
        "box off canvas",
        (used & ((y0 < 0) | (x0 < 0) | (y1 > height) | (x1 > width) | (y1 <= y0) | (x1 <= x0))).any(
            axis=1
        ),
    )
    labelled = a.labels != BACKGROUND
    bad("label value > 10", (a.labels > BACKGROUND).any(axis=(1, 2)))
    bad("ink and labels disagree", ((a.images > params.threshold) != labelled).any(axis=(1, 2)))
    bad("instances and labels disagree", ((a.instances > 0) != labelled).any(axis=(1, 2)))
    bad("instance id above digit count", a.instances.max(axis=(1, 2)) > counts)
    m = params.margin
    for k in range(hi):
        mask = a.instances == k + 1
        bad(
            f"digit {k + 1}: pixels of another class",
            (mask & (a.labels != cls[:, k, None, None].clip(0, 255))).any(axis=(1, 2)),
        )
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
            clear = (
                (y0[:, k] >= y1[:, j] + m)
                | (y1[:, k] + m <= y0[:, j])
                | (x0[:, k] >= x1[:, j] + m)
                | (x1[:, k] + m <= x0[:, j])
            )
            bad(
                f"digits {j + 1} and {k + 1}: boxes closer than margin {m}",
                used[:, k] & used[:, j] & ~clear,
            )
    return errors


def save_metadata(path: Path, metadata: dict) -> None:
    """Write ``metadata.json`` atomically (it is the last file of a run)."""
    with atomic_write(path) as f:
        f.write((json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode())


def output_names(splits: list[str], formats: list[str]) -> list[str]:
    """Relative paths of the data files a run writes, in writing order."""
    names = []
    for split in splits:
        if "npz" in formats:
            names.append(f"{split}.npz")
        if "kaggle" in formats:
            names += [f"{split}/combined.npy", f"{split}/segmented.npy"]
    return names


#: Every data file name any run can write: the only names ``--force`` may delete as stale.
ALL_OUTPUTS = frozenset(output_names(["train", "test"], ["npz", "kaggle"]))


class Staging:
    """Temporary files of a run: renamed into place together at the end, else deleted."""

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []
        self.sha256: dict[Path, str] = {}  # digests computed while writing

    def stage(self, final: Path) -> int:
        """A new exclusive temporary file for ``final``; returns its open descriptor."""
        fd, tmp = create_temp(final)
        self.pending.append((tmp, final))
        return fd

    def commit(self) -> None:
        for tmp, final in self.pending:
            tmp.replace(final)
        self.pending.clear()

    def cleanup(self) -> None:
        for tmp, _ in self.pending:
            tmp.unlink(missing_ok=True)


class HashingFile:
    """A staged ``.npy`` file written sequentially, hashed (sha256) on the way."""

    def __init__(self, staging: Staging, final: Path, shape: tuple[int, ...]) -> None:
        self.staging = staging
        self.file = os.fdopen(staging.stage(final), "wb")
        self.path = staging.pending[-1][0]
        self.digest = hashlib.sha256()
        self.write(np.frombuffer(npy_header(np.uint8, shape), np.uint8))

    def write(self, array: np.ndarray) -> None:
        data = memoryview(np.ascontiguousarray(array)).cast("B")
        self.file.write(data)
        self.digest.update(data)

    def __enter__(self) -> HashingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()
        self.staging.sha256[self.path] = self.digest.hexdigest()


def member_memmap(path: Path, name: str) -> np.ndarray:
    """Memory-map array ``name`` of an uncompressed ``.npz`` without reading it.

    A ZIP_STORED member is a contiguous byte range: skip the member's local header
    (30 bytes + file name + extra field) and the ``.npy`` header, then map the data.
    """
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(f"{name}.npy")
        if info.compress_type != zipfile.ZIP_STORED:
            raise ValueError(f"{path}: {name} is compressed, cannot memory-map")
    with path.open("rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        start = (
            info.header_offset
            + 30
            + int.from_bytes(local[26:28], "little")
            + int.from_bytes(local[28:30], "little")
        )
        f.seek(start)
        dtype, shape = open_npy(f)
        offset = f.tell()
    if 0 in shape:
        return np.empty(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


def load_arrays(out: str | Path, split: str, mmap: bool = True) -> M2nistArrays:
    """A generated split (``OUT/SPLIT.npz``), memory-mapped by default."""
    path = Path(out) / f"{split}.npz"
    if mmap:
        return M2nistArrays(*(member_memmap(path, name) for name in ARRAY_NAMES))
    with np.load(path) as npz:
        return M2nistArrays(*(npz[name] for name in ARRAY_NAMES))


def shard_rows(total: int, shard: tuple[int, int] | None) -> tuple[int, int]:
    """Rows ``[start, stop)`` of shard ``I/N`` (0-based I): contiguous, in order."""
    index, count = shard or (0, 1)
    return index * total // count, (index + 1) * total // count


def _ordered_chunks(jobs: list, run, workers: int) -> Iterator:
    """``map(run, jobs)`` on ``workers`` threads, in order, with few results in flight."""
    if workers <= 1:
        yield from map(run, jobs)
        return
    with ThreadPoolExecutor(workers) as ex:
        window: deque = deque()
        for job in jobs:
            window.append(ex.submit(run, job))
            if len(window) > workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def write_split(
    out: Path,
    staging: Staging,
    split: str,
    rows: tuple[int, int],
    *,
    pool: DigitPool,
    params: Params,
    seed: int,
    formats: list[str],
    workers: int,
    progress,
) -> dict:
    """Generate rows ``rows`` of one split straight into its files; return its counts.

    Blocks stream from the worker threads, in order, into an :class:`NpzStreamWriter`
    (all four arrays at once) and into the Kaggle ``.npy`` files, whose sha256 is
    computed on the way since they are written sequentially.
    """
    start, stop = rows
    n, (height, width) = stop - start, params.size
    shapes = {
        "images": (n, height, width),
        "labels": (n, height, width),
        "instances": (n, height, width),
        "boxes": (n, params.max_digits, 5),
    }
    npz = kaggle = None
    if "npz" in formats:
        dtypes = {name: np.int16 if name == "boxes" else np.uint8 for name in ARRAY_NAMES}
        npz = NpzStreamWriter(
            staging.stage(out / f"{split}.npz"), {k: (dtypes[k], shapes[k]) for k in ARRAY_NAMES}
        )
    per_count = np.zeros(params.max_digits + 1, np.int64)

    def run(span: tuple[int, int]) -> M2nistArrays:
        return compose_range(pool, params, seed, split, *span)

    with ExitStack() as stack:
        if npz is not None:
            stack.enter_context(npz)
        if "kaggle" in formats:
            kaggle = {
                name: stack.enter_context(HashingFile(staging, out / split / f"{name}.npy", shape))
                for name, shape in (
                    ("combined", shapes["images"]),
                    ("segmented", (*shapes["labels"], NUM_CLASSES)),
                )
            }
        for chunk in _ordered_chunks(block_spans(start, stop), run, workers):
            per_count += np.bincount(digit_counts(chunk.boxes), minlength=len(per_count))
            if npz is not None:
                for name, array in zip(ARRAY_NAMES, chunk.arrays(), strict=True):
                    npz.write(name, array)
            if kaggle is not None:
                kaggle["combined"].write(chunk.images)
                for lo in range(0, len(chunk), ONE_HOT_ROWS):
                    kaggle["segmented"].write(one_hot(chunk.labels[lo : lo + ONE_HOT_ROWS]))
            progress.update(len(chunk))
    return {
        "start": start,
        "stop": stop,
        "images": n,
        "per_digit_count": {
            str(k): int(v) for k, v in enumerate(per_count) if k >= params.digits[0]
        },
    }


def source_paths(source: str | os.PathLike | None) -> list[Path]:
    """The files (or, for an IDX folder, the folder) a run reads: never to be written."""
    resolved = resolve_source(source)
    return [sample_path()] if resolved == SAMPLE else [Path(resolved)]


def check_destination(
    out: Path,
    finals: list[Path],
    *,
    source: str | os.PathLike | None,
    preview: Path | None,
    force: bool,
) -> None:
    """Everything about OUT and ``--preview`` that can fail, checked before any work.

    OUT must be a writable directory (or creatable), must not be or contain the MNIST
    source (``--force`` would then be allowed to replace inputs), and its outputs must
    be new unless ``force``. The preview must be a ``.png``, not an input, writable.
    """
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a directory")
    for src in source_paths(source):
        folder = src if src.is_dir() else src.parent
        if out.resolve() == folder.resolve() or folder.resolve().is_relative_to(out.resolve()):
            raise UsageError(f"output {out} holds the MNIST source {src}; choose another OUT")
    check_writable(out)
    outputs = [*finals, *([preview] if preview is not None else [])]
    if preview is not None and preview.suffix.lower() != ".png":
        raise UsageError(f"--preview {preview}: must be a .png file")
    check_outputs(outputs, inputs=source_paths(source), force=force)


def stale_outputs(out: Path, keep: list[Path]) -> list[Path]:
    """Files the previous run's ``metadata.json`` lists that this run will not rewrite.

    Only names an m2nist run can produce (:data:`ALL_OUTPUTS`, or the ``.png`` preview it
    recorded directly in OUT) are taken from the old metadata: a hand-edited or hostile
    ``"files": {"../../home": ...}`` can never make ``--force`` delete anything else.
    """
    try:
        previous = json.loads((out / METADATA).read_text())
        listed = previous["files"]
        names = list(listed) if isinstance(listed, dict) else []
    except (OSError, ValueError, KeyError, TypeError):
        return []
    kept = {p.resolve() for p in keep}
    return [
        out / name
        for name in names
        if isinstance(name, str)
        and (name in ALL_OUTPUTS or (name.endswith(".png") and "/" not in name))
        and not name.startswith(".")
        and (out / name).resolve() not in kept
        and ((out / name).is_file() or (out / name).is_symlink())
    ]


def _remove_stale(out: Path, stale: list[Path]) -> None:
    for path in stale:
        path.unlink(missing_ok=True)
        if path.parent != out:
            with suppress(OSError):  # the split folder, when nothing else is in it
                path.parent.rmdir()


def write_dataset(
    out: str | Path,
    *,
    counts: dict[str, int],
    seed: int,
    params: Params,
    source,
    formats: list[str],
    workers: int = 1,
    shard: tuple[int, int] | None = None,
    force: bool = False,
    progress=None,
    preview: str | Path | None = None,
) -> dict:
    """Generate every split into ``out`` and write ``metadata.json``; return it.

    Parameters must already be validated (see ``m2nist.cli``). Before any work it
    checks OUT and ``preview`` (:func:`check_destination`) and takes the directory lock;
    it refuses to overwrite existing outputs unless ``force``, and with ``force`` also
    removes the previous run's files that this run does not rewrite (a narrower
    ``--format`` must not leave old Kaggle files beside the new npz). Killed, it leaves
    only ``.partial`` files. ``preview``: a ``.png`` of the first images, written before
    the metadata (which records it when it lies in OUT).
    """
    out = Path(out)
    preview = Path(preview) if preview is not None else None
    splits = [s for s in ("train", "test") if s in counts]
    finals = [out / name for name in [*output_names(splits, formats), METADATA]]
    check_destination(out, finals, source=source, preview=preview, force=force)
    with lock_dir(out):
        check_outputs(finals, force=force)  # again: a run may have finished meanwhile
        stale = stale_outputs(out, finals + ([preview] if preview is not None else []))
        metadata = _write_locked(
            out, splits, counts, seed, params, source, formats, workers, shard, progress, stale
        )
        if preview is not None:
            _save_preview(out, preview, metadata, params, source, seed)
        save_metadata(out / METADATA, metadata)
    return metadata


def _write_locked(
    out: Path,
    splits: list[str],
    counts: dict[str, int],
    seed: int,
    params: Params,
    source,
    formats: list[str],
    workers: int,
    shard: tuple[int, int] | None,
    progress,
    stale: list[Path],
) -> dict:
    """The data files of :func:`write_dataset`, renamed into place; the metadata to write."""
    progress = progress or _NoProgress()
    staging = Staging()
    metadata: dict = {
        "generator": "m2nist",
        "version": package_version(),
        "seed": seed,
        "params": {
            "digits": list(params.digits),
            "size": list(params.size),
            "margin": params.margin,
            "threshold": params.threshold,
            "block": BLOCK,
            "placement_rounds": PLACEMENT_ROUNDS,
        },
        "formats": formats,
        "shard": list(shard) if shard else None,
        "splits": {},
        "source": {},
        "files": {},
    }
    try:
        for split in splits:
            pool = digit_pool(split, params, source)
            metadata["source"][split] = load_split(split == "train", resolve_source(source)).source
            metadata["splits"][split] = {
                "total": counts[split],
                **write_split(
                    out,
                    staging,
                    split,
                    shard_rows(counts[split], shard),
                    pool=pool,
                    params=params,
                    seed=seed,
                    formats=formats,
                    workers=workers,
                    progress=progress,
                ),
            }
        for tmp, final in staging.pending:
            metadata["files"][final.relative_to(out).as_posix()] = {
                "sha256": staging.sha256.get(tmp) or file_sha256(tmp),
                "bytes": tmp.stat().st_size,
            }
        with deferred_interrupts():  # the renames and removals together, or not at all
            # The old metadata goes first: from here on the directory is the new run's, and
            # until the new metadata.json is written it must not verify. Before this point an
            # interrupt leaves the previous run complete and verifying.
            (out / METADATA).unlink(missing_ok=True)
            staging.commit()
            _remove_stale(out, stale)
    finally:
        with deferred_interrupts():  # an impatient second Ctrl-C must not strand temporaries
            staging.cleanup()
    return metadata


def _save_preview(out: Path, png: Path, metadata: dict, params: Params, source, seed: int) -> None:
    """The preview grid, from the first rows written (regenerated: the same bytes as the
    files, whatever the format); recorded in ``files`` when it lies directly in OUT."""
    from m2nist.viz import save_preview

    splits = metadata["splits"]
    split = next((s for s, info in splits.items() if info["images"]), list(splits)[-1])
    start = metadata["splits"][split]["start"]
    stop = min(metadata["splits"][split]["stop"], start + PREVIEW_IMAGES)
    arrays = compose_range(digit_pool(split, params, source), params, seed, split, start, stop)
    save_preview(out, png, split=split, n=PREVIEW_IMAGES, arrays=arrays)
    if png.parent.resolve() == out.resolve():
        metadata["files"][png.name] = {"sha256": file_sha256(png), "bytes": png.stat().st_size}


class _NoProgress:
    def update(self, n: int) -> None:
        pass


def package_version() -> str:
    """Version of the installed distribution this package ships in."""
    try:
        return importlib.metadata.version("tinyfcn")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _kaggle_errors(chunk: dict[str, np.ndarray], params: Params, where: str) -> list[str]:
    """One-hot validity of ``segmented`` and its agreement with ``combined`` (and npz)."""
    errors = []
    seg, combined = chunk["segmented"], chunk["combined"]
    if seg.shape[-1] != NUM_CLASSES or seg.max(initial=0) > 1 or (seg.sum(-1) != 1).any():
        return [f"{where}: segmented.npy is not one-hot over {NUM_CLASSES} channels"]
    labels = seg.argmax(-1)
    if ((combined > params.threshold) != (labels != BACKGROUND)).any():
        errors.append(f"{where}: segmented.npy disagrees with the ink in combined.npy")
    if "images" in chunk and not (
        np.array_equal(combined, chunk["images"]) and np.array_equal(labels, chunk["labels"])
    ):
        errors.append(f"{where}: Kaggle files disagree with the .npz")
    return errors
