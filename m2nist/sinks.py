"""Where generated rows go: one sink per output format, every file a staged temporary.

A run (:mod:`m2nist.writing`) composes blocks of rows and hands each block to the sink
of every format it writes:

* :class:`NpzSink`: ``SPLIT.npz``, its four members written in place as blocks arrive
  (:class:`m2nist.npz.NpzStreamWriter`);
* :class:`KaggleSink`: ``SPLIT/combined.npy`` and ``SPLIT/segmented.npy``;
* :class:`KaggleFlatSink`: ``OUT/combined.npy`` and ``OUT/segmented.npy`` holding the
  train rows followed by the test rows, the layout of the 2018 Kaggle release, so that
  a course's own ``np.load("combined.npy")`` works as written;
* :class:`PngSink`: the folder layout of :mod:`m2nist.png`.

A sink never writes under a final name: :class:`Staging` creates every file and folder
under a fresh exclusive temporary name and renames them all into place at the end of a
run (or deletes them). A sink's :meth:`Sink.prepare` runs on the worker thread that
composed the block, in any order (PNG encoding), and :meth:`Sink.write` on the main
thread in row order (the sequential files).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

import numpy as np

from fcnbase.outputs import PARTIAL, create_temp
from m2nist.compose import M2NISTArrays
from m2nist.invariants import one_hot
from m2nist.metadata import file_sha256, folder_entry
from m2nist.npz import ARRAY_NAMES, NpzStreamWriter, npy_header
from m2nist.params import NUM_CLASSES, Params
from m2nist.png import (
    CLASSES_TXT,
    PNG_FOLDERS,
    SPLIT_LISTS,
    classes_text,
    encode,
    split_list,
    stem,
)

#: Rows of the Kaggle one-hot built at once: 512 images are 30 MB of one-hot.
ONE_HOT_ROWS = 512


class Staging:
    """Temporary files and folders of a run: renamed into place together, else deleted.

    ``entries`` holds the ``metadata.json`` entry of every temporary: known from writing
    it (a sequential file hashed on the way, a folder's listing) or being computed on the
    hashing thread (:meth:`hash_later`).
    """

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []
        self.entries: dict[Path, dict | Future[dict]] = {}
        self.hasher = ThreadPoolExecutor(1, thread_name_prefix="m2nist-sha256")

    def hash_later(self, tmp: Path) -> None:
        """Hash a finished temporary on the hashing thread, while the run goes on (a
        ``.npz`` is written out of order, so it is hashed once complete; mapped, since
        the run has just written it and holds it under a name of its own)."""
        self.entries[tmp] = self.hasher.submit(
            lambda: {"sha256": file_sha256(tmp, mapped=True), "bytes": tmp.stat().st_size}
        )

    def entry(self, tmp: Path) -> dict:
        """The ``metadata.json`` entry of a temporary (waiting for its hash if need be)."""
        entry = self.entries[tmp]
        return entry.result() if isinstance(entry, Future) else entry

    def stage(self, final: Path) -> int:
        """A new exclusive temporary file for ``final``; returns its open descriptor."""
        fd, tmp = create_temp(final)
        self.pending.append((tmp, final))
        return fd

    def stage_dir(self, final: Path) -> Path:
        """A new, empty temporary folder for ``final`` (``.NAME.<random>.partial``)."""
        final.parent.mkdir(parents=True, exist_ok=True)
        while True:
            tmp = final.parent / f".{final.name}.{secrets.token_hex(6)}{PARTIAL}"
            with suppress(FileExistsError):
                tmp.mkdir()  # exclusive: never an existing folder or a planted symlink
                self.pending.append((tmp, final))
                return tmp

    def commit(self) -> None:
        """Rename every temporary into place. A folder replaces the previous run's folder
        of that name (which :func:`m2nist.writing.check_destination` found to hold only
        files a run writes), moved aside first: a folder cannot be renamed over another."""
        for tmp, final in self.pending:
            if tmp.is_dir() and final.is_dir():
                old = final.parent / f".{final.name}.{secrets.token_hex(6)}{PARTIAL}"
                final.rename(old)
                tmp.rename(final)
                shutil.rmtree(old)
            else:
                tmp.replace(final)
        self.pending.clear()

    def cleanup(self) -> None:
        self.hasher.shutdown(wait=True, cancel_futures=True)
        for tmp, _ in self.pending:
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)


class HashingFile:
    """A staged ``.npy`` file written sequentially, hashed (sha256) on the way.

    Each chunk is hashed on a thread of its own while the main thread writes it
    (hashlib releases the GIL), so writing and hashing share the cores instead of taking
    turns on one; :meth:`write` returns once both are done, so the caller may reuse
    the chunk's memory at once.
    """

    def __init__(self, staging: Staging, final: Path, shape: tuple[int, ...]) -> None:
        self.staging = staging
        self.file = os.fdopen(staging.stage(final), "wb")
        self.path = staging.pending[-1][0]
        self.digest = hashlib.sha256()
        self.hasher = ThreadPoolExecutor(1, thread_name_prefix="m2nist-sha256")
        self.size = 0
        self.write(np.frombuffer(npy_header(np.uint8, shape), np.uint8))

    def write(self, array: np.ndarray) -> None:
        data = memoryview(np.ascontiguousarray(array)).cast("B")
        hashed = self.hasher.submit(self.digest.update, data)
        try:
            self.file.write(data)
        finally:
            hashed.result()
        self.size += len(data)

    def close(self) -> None:
        self.file.close()
        self.hasher.shutdown(wait=True)
        self.staging.entries[self.path] = {"sha256": self.digest.hexdigest(), "bytes": self.size}

    def abort(self) -> None:
        self.file.close()
        self.hasher.shutdown(wait=True, cancel_futures=True)


class Sink:
    """What a run calls on the writer of one format (every method may be a no-op)."""

    def start(self, split: str, rows: tuple[int, int]) -> None:
        """Before the first block of ``split`` (rows ``[start, stop)``), even with no rows."""

    def prepare(self, split: str, row: int, chunk: M2NISTArrays) -> None:
        """On a worker thread, rows ``row:row+len(chunk)`` of ``split``, in any order."""

    def write(self, split: str, chunk: M2NISTArrays) -> None:
        """On the main thread, the next rows of ``split``, in order."""

    def finish(self, split: str) -> None:
        """After the last block of ``split``."""

    def close(self) -> None:
        """After every split: the run succeeded."""

    def abort(self) -> None:
        """The run failed: release descriptors (the staging deletes the files)."""


def _kaggle_shapes(n: int, params: Params) -> tuple[tuple[int, ...], tuple[int, ...]]:
    height, width = params.size
    return (n, height, width), (n, height, width, NUM_CLASSES)


def _write_kaggle(combined: HashingFile, segmented: HashingFile, chunk: M2NISTArrays) -> None:
    combined.write(chunk.images)
    for lo in range(0, len(chunk), ONE_HOT_ROWS):
        segmented.write(one_hot(chunk.labels[lo : lo + ONE_HOT_ROWS]))


class NpzSink(Sink):
    """``SPLIT.npz``: images, labels, instances and boxes (see :mod:`m2nist.npz`).

    The worker thread that composed a block computes its CRC-32s (zlib lets go of the
    GIL); the main thread writes the rows in place, in order. One writing thread, as a
    plain write has: two threads writing one file contend for its inode lock in the
    kernel (10 % of a 200,000-image run's CPU spinning on it, measured with ``perf``).
    The file is hashed on the staging's hashing thread once complete.
    """

    def __init__(self, out: Path, staging: Staging, params: Params) -> None:
        self.out, self.staging, self.params = out, staging, params
        self.npz: NpzStreamWriter | None = None
        self.first = 0
        self.crcs: dict[int, list[int]] = {}  # by row in the file, till the row is written

    def start(self, split: str, rows: tuple[int, int]) -> None:
        n, (height, width) = rows[1] - rows[0], self.params.size
        members = {
            name: (np.uint8, (n, height, width)) for name in ("images", "labels", "instances")
        }
        members["boxes"] = (np.int16, (n, self.params.max_digits, 5))
        self.npz = NpzStreamWriter(self.staging.stage(self.out / f"{split}.npz"), members)
        self.first = rows[0]

    def prepare(self, split: str, row: int, chunk: M2NISTArrays) -> None:
        crcs = [zlib.crc32(memoryview(array).cast("B")) for array in chunk.arrays()]
        self.crcs[row - self.first] = crcs

    def write(self, split: str, chunk: M2NISTArrays) -> None:
        crcs = self.crcs.pop(self.npz.rows_written[ARRAY_NAMES[0]])
        for name, array, crc in zip(ARRAY_NAMES, chunk.arrays(), crcs, strict=True):
            self.npz.write(name, array, crc)

    def finish(self, split: str) -> None:
        npz, self.npz = self.npz, None
        npz.finish()
        self.staging.hash_later(_staged(self.staging, self.out / f"{split}.npz"))

    def abort(self) -> None:
        if self.npz is not None:
            os.close(self.npz.fd)


def _staged(staging: Staging, final: Path) -> Path:
    """The temporary of ``final``."""
    return next(tmp for tmp, end in staging.pending if end == final)


class KaggleSink(Sink):
    """``SPLIT/combined.npy`` uint8 (N,H,W) and ``SPLIT/segmented.npy`` (N,H,W,11) one-hot."""

    def __init__(self, out: Path, staging: Staging, params: Params) -> None:
        self.out, self.staging, self.params = out, staging, params
        self.files: list[HashingFile] = []

    def start(self, split: str, rows: tuple[int, int]) -> None:
        shapes = _kaggle_shapes(rows[1] - rows[0], self.params)
        for name, shape in zip(("combined", "segmented"), shapes, strict=True):
            self.files.append(HashingFile(self.staging, self.out / split / f"{name}.npy", shape))

    def write(self, split: str, chunk: M2NISTArrays) -> None:
        _write_kaggle(*self.files, chunk)

    def finish(self, split: str) -> None:
        files, self.files = self.files, []
        for f in files:
            f.close()

    def abort(self) -> None:
        for f in self.files:
            f.abort()


class KaggleFlatSink(Sink):
    """``OUT/combined.npy`` and ``OUT/segmented.npy``: every train row, then every test row.

    The last ``test`` rows are therefore the test split, made from MNIST test digits only;
    any other cut through the rows puts images sharing source digits on both sides.
    """

    def __init__(self, out: Path, staging: Staging, params: Params, rows: int) -> None:
        shapes = _kaggle_shapes(rows, params)
        self.files: list[HashingFile] = []
        try:
            for name, shape in zip(("combined", "segmented"), shapes, strict=True):
                self.files.append(HashingFile(staging, out / f"{name}.npy", shape))
        except BaseException:  # the run never sees this sink: close what it opened
            self.abort()
            raise

    def write(self, split: str, chunk: M2NISTArrays) -> None:
        _write_kaggle(*self.files, chunk)

    def close(self) -> None:
        for f in self.files:
            f.close()

    def abort(self) -> None:
        for f in self.files:
            f.abort()


class PngSink(Sink):
    """The PNG folder (:mod:`m2nist.png`): each image and label map encoded on the worker
    thread that composed it, into temporary ``images/`` and ``masks/`` folders."""

    def __init__(self, out: Path, staging: Staging) -> None:
        self.out, self.staging = out, staging
        self.folders = {name: staging.stage_dir(out / name) for name in PNG_FOLDERS}
        self.sizes: dict[str, dict[str, int]] = {name: {} for name in PNG_FOLDERS}
        self.digests: dict[str, dict[str, str]] = {name: {} for name in PNG_FOLDERS}
        self.lists = dict.fromkeys(SPLIT_LISTS, b"")

    def start(self, split: str, rows: tuple[int, int]) -> None:
        self.lists[split] = split_list(split, *rows)

    def prepare(self, split: str, row: int, chunk: M2NISTArrays) -> None:
        for folder, array_name in PNG_FOLDERS.items():
            array = getattr(chunk, array_name)
            for i in range(len(chunk)):
                name = f"{stem(split, row + i)}.png"
                data = encode(array[i])
                # A plain write: the folder is a temporary one, renamed when complete.
                (self.folders[folder] / name).write_bytes(data)
                self.sizes[folder][name] = len(data)
                self.digests[folder][name] = hashlib.sha256(data).hexdigest()

    def close(self) -> None:
        texts = {CLASSES_TXT: classes_text()}
        texts.update({SPLIT_LISTS[split]: text for split, text in self.lists.items()})
        for name, text in texts.items():
            with os.fdopen(self.staging.stage(self.out / name), "wb") as f:
                f.write(text)
            tmp = self.staging.pending[-1][0]
            self.staging.entries[tmp] = {
                "sha256": hashlib.sha256(text).hexdigest(),
                "bytes": len(text),
            }
        for name, tmp in self.folders.items():
            self.staging.entries[tmp] = folder_entry(self.sizes[name], self.digests[name])
