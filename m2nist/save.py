"""Saving a generated dataset into OUT, in every format, checked first and crash-safe.

The formats (``m2nist-gen --format``):

* ``npz``: ``SPLIT.npz``, the four arrays of :class:`~m2nist.generator.M2NISTArrays`,
  uncompressed; read back with ``np.load`` or :func:`load_arrays`;
* ``kaggle``: ``SPLIT/combined.npy`` uint8 (N,H,W) and ``SPLIT/segmented.npy`` (N,H,W,11)
  one-hot, channel 10 = background: the layout of the 2018 Kaggle release;
* ``kaggle-flat``: ``OUT/combined.npy`` and ``OUT/segmented.npy`` holding every train row,
  then every test row, so that a course's own ``np.load("combined.npy")`` works as written;
* ``png``: ``images/<stem>.png`` (grey) and ``masks/<stem>.png`` (pixel = class id),
  ``classes.txt``, ``train.txt`` and ``val.txt`` (stems such as ``train-000042``).

:mod:`zipfile`, :mod:`numpy.lib.format` and PIL write them. Threads compose the next
blocks while the main thread writes one, in row order, into every format at once: memory
stays flat in N (:meth:`Run.split`).

Safety, the same for every format: OUT and ``--preview`` are checked before anything is
written (:func:`check_destination`), and again under :func:`fcnbase.outputs.lock_dir`;
every file is written under a fresh temporary name (:class:`Staging`) and all are renamed
into place together once every split is complete, ``metadata.json`` (every file with its
sha256) last: an interrupted run never leaves a directory that verifies. ``--force``
removes the previous run's files that this run does not rewrite, but only names an m2nist
run writes (:func:`stale_outputs`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

import numpy as np

import fcnbase
from fcnbase.cli import CliError, UsageError, deferred_interrupts
from fcnbase.outputs import (
    OutputBusyError,
    OutputExistsError,
    atomic_write,
    check_outputs,
    check_writable,
    create_temp,
    lock_dir,
    remove_leftovers,
    remove_temp,
    temp_path,
)
from m2nist.generator import (
    PLACEMENT_ROUNDS,
    M2NISTArrays,
    block_spans,
    check_fits,
    compose,
    digit_pool,
)
from m2nist.mnist import SAMPLE, load_split, resolve_source, sample_path
from m2nist.params import BLOCK, CLASS_NAMES, NUM_CLASSES, Params

FORMATS = ("npz", "kaggle", "kaggle-flat", "png")
METADATA = "metadata.json"
#: The members of a split's ``.npz``, in writing order (the fields of ``M2NISTArrays``).
ARRAY_NAMES = ("images", "labels", "instances", "boxes")
#: The PNG folders and the array each holds; the list file of each split.
PNG_FOLDERS = {"images": "images", "masks": "labels"}
SPLIT_LISTS = {"train": "train.txt", "test": "val.txt"}
CLASSES_TXT = "classes.txt"
#: The names a run writes inside a PNG folder: the only ones ``--force`` may delete there.
PNG_NAME = re.compile(r"(train|test)-\d{6,}\.png")
#: Fixed time and permissions of every zip member: equal arrays give equal bytes.
ZIP_EPOCH, FILE_ATTR = (1980, 1, 1, 0, 0, 0), 0o100644 << 16
Source = str | os.PathLike | None


def output_names(splits: list[str], formats: list[str]) -> list[str]:
    """Relative paths of the data files a run writes; a name ending in ``/`` is a folder."""
    names = []
    for split in splits:
        names += [f"{split}.npz"] if "npz" in formats else []
        names += [f"{split}/combined.npy", f"{split}/segmented.npy"] if "kaggle" in formats else []
    names += ["combined.npy", "segmented.npy"] if "kaggle-flat" in formats else []
    if "png" in formats:
        names += [CLASSES_TXT, *SPLIT_LISTS.values(), *(f"{f}/" for f in PNG_FOLDERS)]
    return names


#: Every data file name any run can write: the only names ``--force`` may delete as stale.
ALL_OUTPUTS = frozenset(output_names(["train", "test"], list(FORMATS)))


def shard_rows(total: int, shard: tuple[int, int] | None) -> tuple[int, int]:
    """Rows ``[start, stop)`` of shard ``I/N`` (0-based I): contiguous, in order."""
    index, count = shard or (0, 1)
    return index * total // count, (index + 1) * total // count


def one_hot(labels: np.ndarray) -> np.ndarray:
    """(N,H,W) labels -> (N,H,W,11) uint8 one-hot, channel 10 = background."""
    return (labels[..., None] == np.arange(NUM_CLASSES, dtype=np.uint8)).view(np.uint8)


def npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` header of a C-ordered array, so that its rows can follow in pieces."""
    buf = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False}
    np.lib.format.write_array_header_1_0(buf, {**header, "shape": tuple(shape)})
    return buf.getvalue()


def stem(split: str, row: int) -> str:
    return f"{split}-{row:06d}"


def png_texts(rows: dict[str, tuple[int, int]]) -> dict[str, bytes]:
    """The text files of a PNG run with these rows of each split: ``classes.txt``, and the
    stems of ``train.txt`` and ``val.txt`` (empty for a split the run does not have)."""
    texts = {CLASSES_TXT: "".join(f"{name}\n" for name in CLASS_NAMES).encode()}
    for split, name in SPLIT_LISTS.items():
        start, stop = rows.get(split, (0, 0))
        texts[name] = "".join(f"{stem(split, row)}\n" for row in range(start, stop)).encode()
    return texts


def run_files(folder: Path) -> list[Path]:
    """The files in ``folder`` that a run writes (:data:`PNG_NAME`), symlinks not followed."""
    if not folder.is_dir() or folder.is_symlink():
        return []
    return sorted(p for p in folder.iterdir() if PNG_NAME.fullmatch(p.name) and p.is_file())


def load_arrays(out: str | Path, split: str) -> M2NISTArrays:
    """A generated split, ``OUT/SPLIT.npz``, read into memory by ``np.load`` (16 KB per
    64x84 image); zipfile checks each member's CRC-32, so a damaged file is an error."""
    path = Path(out) / f"{split}.npz"
    try:
        with np.load(path) as npz:
            return M2NISTArrays(*(npz[name] for name in ARRAY_NAMES))
    except (ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: damaged ({exc}); run m2nist-gen --verify {out}") from None


class Staging:
    """The temporaries of a run: renamed into place together by :meth:`commit`, else
    deleted by :meth:`cleanup`. Each finished one is hashed for ``metadata.json`` on a
    thread of its own (:meth:`done`) while the run goes on."""

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []
        self.entries: dict[Path, Future[dict]] = {}
        self.temp_of: dict[BinaryIO, Path] = {}
        self.hasher = ThreadPoolExecutor(1, thread_name_prefix="m2nist-sha256")

    def file(self, final: Path, header: bytes = b"") -> BinaryIO:
        """A new temporary file for ``final``, open for writing, ``header`` written."""
        fd, tmp = create_temp(final)
        self.pending.append((tmp, final))
        file = os.fdopen(fd, "wb")
        self.temp_of[file] = tmp
        file.write(header)
        return file

    def folder(self, final: Path) -> Path:
        final.parent.mkdir(parents=True, exist_ok=True)
        while True:
            tmp = temp_path(final)
            with suppress(FileExistsError):
                tmp.mkdir()  # exclusive: never an existing folder or a planted symlink
                self.pending.append((tmp, final))
                return tmp

    def done(self, *done: BinaryIO | Path) -> None:
        """Close finished files (and folders) and hash them."""
        for item in done:
            if not isinstance(item, Path):
                item.close()
                item = self.temp_of[item]
            self.entries[item] = self.hasher.submit(entry_of, item)

    def commit(self) -> None:
        """Rename every temporary into place; a folder replaces the previous run's (which
        :func:`check_destination` found to hold only a run's files)."""
        for tmp, final in self.pending:
            if tmp.is_dir() and final.is_dir():
                shutil.rmtree(final)
            tmp.replace(final)
        self.pending.clear()

    def cleanup(self) -> None:
        self.hasher.shutdown(wait=True, cancel_futures=True)
        for tmp, _ in self.pending:
            remove_temp(tmp, ignore_errors=True)


def entry_of(path: Path) -> dict:
    """The ``files`` entry of a file (sha256, bytes) or a folder (also the file count).

    A folder's sha256 is that of its ``sha256sum`` listing, sorted by name, so that
    ``(cd OUT/images && sha256sum *.png | sha256sum)`` checks it without this package.
    """
    if not path.is_dir():
        with path.open("rb") as f:
            return {"sha256": hashlib.file_digest(f, "sha256").hexdigest(), "bytes": f.tell()}
    files = {p.name: p.read_bytes() for p in path.iterdir()}
    listing = "".join(f"{hashlib.sha256(files[n]).hexdigest()}  {n}\n" for n in sorted(files))
    size, sha256 = sum(map(len, files.values())), hashlib.sha256(listing.encode()).hexdigest()
    return {"sha256": sha256, "bytes": size, "count": len(files)}


def _ordered(jobs: list, run: Callable, workers: int) -> Iterator:
    """``map(run, jobs)`` on ``workers`` threads, in order, a few jobs at a time (memory
    stays flat); however it ends (an error, Ctrl-C), no job is still running once it has."""
    with ThreadPoolExecutor(workers) as ex:
        for at in range(0, len(jobs), 2 * workers):
            yield from ex.map(run, jobs[at : at + 2 * workers])


def npz_member(npz: zipfile.ZipFile, name: str, dtype: type, shape: tuple) -> BinaryIO:
    """Member ``name.npy`` of ``npz`` open for writing, its ``.npy`` header written; a fixed
    time and permissions, so that equal arrays give equal bytes."""
    info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH)
    info.external_attr, info.compress_type = FILE_ATTR, npz.compression
    member = npz.open(info, "w", force_zip64=True)
    member.write(npy_header(dtype, shape))
    return member


class Run:
    """The files of one run while they are written: :meth:`split` streams each split in."""

    def __init__(
        self, out: Path, params: Params, formats: list[str], rows: dict, staging: Staging
    ) -> None:
        self.out, self.params, self.formats, self.rows = out, params, formats, rows
        self.staging = staging
        total = sum(b - a for a, b in rows.values())
        self.flat = self._kaggle(out, total) if "kaggle-flat" in formats else []
        folders = PNG_FOLDERS.items() if "png" in formats else ()
        self.png = {kind: staging.folder(out / f) for f, kind in folders}  # kind: temporary folder

    def _kaggle(self, folder: Path, n: int) -> list[tuple[BinaryIO, Callable]]:
        """The two Kaggle files of ``n`` rows in ``folder``, each with what a block gives it."""
        shape, file = (n, *self.params.size), self.staging.file
        return [
            (file(folder / "combined.npy", npy_header(np.uint8, shape)), lambda a: a.images),
            (
                file(folder / "segmented.npy", npy_header(np.uint8, (*shape, NUM_CLASSES))),
                lambda a: one_hot(a.labels),
            ),
        ]

    def split(
        self, split: str, seed: int, source: Source, workers: int, progress: Callable[[int], object]
    ) -> dict:
        """Write the rows of ``split`` into every format, block by block; return its counts.

        zipfile writes one member at a time, so the first pass streams the ``images``
        member (and every other format), and ``labels`` and ``instances`` are composed
        again for a pass each: cheaper than keeping them (memory would grow with N) or
        spilling them to disk. A split that fits in :func:`_ordered`'s window is the
        exception: its blocks are kept from the first pass, which holds no more memory than
        the window did. The ``boxes`` (30 bytes per image) wait in memory.
        """
        (start, stop), params, staging = self.rows[split], self.params, self.staging
        pool = digit_pool(split, params, source) if stop > start else None
        sinks = self._kaggle(self.out / split, stop - start) if "kaggle" in self.formats else []
        shape, boxes, spans = (stop - start, *params.size), [], block_spans(start, stop)
        streams = sinks + self.flat  # what the first pass writes each block into
        if "npz" in self.formats:
            file = staging.file(self.out / f"{split}.npz")
            npz = zipfile.ZipFile(file, "w")
            images = npz_member(npz, "images", np.uint8, shape)
            streams.append((images, lambda a: a.images))

        if self.png:
            from PIL import Image  # 8-bit greyscale PNGs, no timestamp: equal arrays, equal bytes

        def run(span: tuple[int, int], png: bool = True) -> M2NISTArrays:
            arrays = compose(pool, params, seed, split, *span)
            for kind, folder in self.png.items() if png else ():  # plain writes: the folder
                for i, image in enumerate(getattr(arrays, kind)):  # is a temporary one
                    Image.fromarray(image).save(folder / f"{stem(split, span[0] + i)}.png")
            return arrays

        kept = [] if len(spans) <= 2 * workers else None
        for arrays in _ordered(spans, run, workers):
            if kept is not None:
                kept.append(arrays)
            for sink, what in streams:
                sink.write(what(arrays))
            boxes.append(arrays.boxes)
            progress(len(arrays))
        boxes = np.concatenate(boxes) if boxes else np.zeros((0, params.max_digits, 5), np.int16)
        if "npz" in self.formats:
            images.close()
            for kind in ("labels", "instances"):
                with npz_member(npz, kind, np.uint8, shape) as member:
                    for arrays in kept or _ordered(spans, lambda s: run(s, False), workers):
                        member.write(getattr(arrays, kind))
                        progress(len(arrays))
            with npz_member(npz, "boxes", np.int16, boxes.shape) as member:
                member.write(boxes)
            npz.close()
            staging.done(file)
        staging.done(*(sink for sink, _ in sinks))
        per_count = np.bincount((boxes[:, :, 0] >= 0).sum(1), minlength=params.max_digits + 1)
        info = {"start": start, "stop": stop, "images": stop - start}
        return {**info, "per_digit_count": tally(per_count, params)}

    def close(self) -> None:
        """After every split: finish the files that span the splits."""
        self.staging.done(*(sink for sink, _ in self.flat))
        if self.png:
            texts = png_texts(self.rows).items()
            self.staging.done(*(self.staging.file(self.out / n, t) for n, t in texts))
            self.staging.done(*self.png.values())


def tally(per_count: np.ndarray, params: Params) -> dict[str, int]:
    """``per_digit_count`` as recorded: images per digit count, from ``params.digits[0]`` up."""
    return {str(k): int(v) for k, v in enumerate(per_count) if k >= params.digits[0]}


def new_metadata(seed: int, params: Params, formats: list[str], shard: tuple | None) -> dict:
    """The metadata of a run before it writes: ``splits``, ``source`` and ``files`` are
    filled in as it goes (:func:`m2nist.verifier.parse_metadata` reads every field back)."""
    return {
        "generator": "m2nist",
        "version": fcnbase.__version__,
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


def check_destination(
    out: Path, finals: list[Path], *, source: Source, preview: Path | None, force: bool
) -> None:
    """Everything about OUT and ``--preview`` that can fail, checked before any work:
    OUT a writable directory that neither is nor holds the MNIST source, outputs new unless
    ``force``, a ``.png`` preview in OUT itself or outside it, and a PNG folder replaced only
    when it holds nothing but a run's files (``--force`` never deletes a user's file)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a directory")
    src = sample_path() if resolve_source(source) == SAMPLE else Path(resolve_source(source))
    folder = (src if src.is_dir() else src.parent).resolve()  # what the run reads
    if out.resolve() == folder or folder.is_relative_to(out.resolve()):
        raise UsageError(f"output {out} holds the MNIST source {src}; choose another OUT")
    check_writable(out)
    if preview is not None and preview.suffix.lower() != ".png":
        raise UsageError(f"--preview {preview}: must be a .png file")
    if preview is not None and out.resolve() in preview.resolve().parent.parents:
        # In a run's folder (images/) or another inside OUT, --verify would find it unlisted.
        raise UsageError(
            f"--preview {preview}: in a folder inside {out}; put it in {out} itself or elsewhere"
        )
    folders = [p for p in finals if f"{p.relative_to(out).as_posix()}/" in ALL_OUTPUTS]
    files = [p for p in finals if p not in folders] + ([preview] if preview else [])
    check_outputs(files, inputs=[src], force=force)
    for folder in (f for f in folders if f.exists() or f.is_symlink()):  # the previous run's
        if folder.is_symlink() or not folder.is_dir():
            raise CliError(f"{folder} exists and is not a folder; move it away")
        if not force:
            raise OutputExistsError(f"{folder} exists (use --force to replace it)")
        other = sorted(set(folder.iterdir()) - set(run_files(folder)))
        if other:
            raise CliError(
                f"{folder} holds {other[0].name}, which no m2nist run writes; --force "
                "replaces the folder only when it holds nothing else: move the file away"
            )


def stale_outputs(out: Path, keep: list[Path]) -> list[Path]:
    """Files the previous run's ``metadata.json`` lists that this run will not rewrite.

    Only names an m2nist run can write (:data:`ALL_OUTPUTS`, or a ``.png`` preview directly
    in OUT) are taken from the old metadata, so a hostile ``"files": {"../../home": ...}``
    can never make ``--force`` delete anything else; a folder gives only a run's files.
    """
    try:
        names = list(json.loads((out / METADATA).read_text())["files"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return []
    kept, stale = {p.resolve() for p in keep}, []
    for name in names:
        path = out / str(name)
        if not isinstance(name, str) or name.startswith(".") or path.resolve() in kept:
            continue
        if name.endswith("/") and name in ALL_OUTPUTS:
            stale += run_files(path)
        elif (name in ALL_OUTPUTS or (name.endswith(".png") and "/" not in name)) and (
            path.is_file() or path.is_symlink()
        ):
            stale.append(path)
    return stale


def _remove_dead_runs_leftovers(out: Path) -> None:
    """Under OUT's lock, remove the temporaries that a killed run (``kill -9``) left for any
    name a run writes. A subfolder (``train/``) is cleaned only when its own lock is free:
    another run may be writing into it as its OUT."""
    for final in (out / name.rstrip("/") for name in [*ALL_OUTPUTS, METADATA]):
        if final.parent == out:
            remove_leftovers(final)
        elif final.parent.is_dir():
            with suppress(OutputBusyError), lock_dir(final.parent):
                remove_leftovers(final)


def write_dataset(
    out: str | Path,
    *,
    counts: dict[str, int],
    seed: int,
    params: Params,
    source: Source,
    formats: list[str],
    workers: int = 1,
    shard: tuple[int, int] | None = None,
    force: bool = False,
    progress: Callable[[int], object] | None = None,
    preview: str | Path | None = None,
) -> dict:
    """Generate every split of ``counts`` into ``out`` and write ``metadata.json``; return
    it. Killed, the run leaves only ``.partial`` files. ``preview``: a ``.png`` of the first
    rows."""
    out, preview = Path(out), Path(preview) if preview is not None else None
    splits = [s for s in ("train", "test") if s in counts]
    rows = {split: shard_rows(counts[split], shard) for split in splits}
    drawn = [split for split, (a, b) in rows.items() if b > a]  # the others need no digits
    if "train" in drawn:  # the longest inflate alone: the rest overlaps its ink boxes
        load_split(True, source)
    with ThreadPoolExecutor(2) as ex:  # both pools made at once (numpy and zlib let go of the GIL)
        for pool in ex.map(lambda split: digit_pool(split, params, source), drawn):
            check_fits(params, pool)
    finals = [out / name.rstrip("/") for name in [*output_names(splits, formats), METADATA]]
    check_destination(out, finals, source=source, preview=preview, force=force)
    with lock_dir(out):
        check_destination(out, finals, source=source, preview=preview, force=force)
        _remove_dead_runs_leftovers(out)
        stale = stale_outputs(out, finals + ([preview] if preview is not None else []))
        metadata = new_metadata(seed, params, formats, shard)
        staging = Staging()  # before Run: what it makes on the way is cleaned up too
        try:
            run = Run(out, params, formats, rows, staging)
            for split in splits:
                metadata["source"][split] = load_split(split == "train", source).source
                info = run.split(split, seed, source, workers, progress or (lambda n: None))
                metadata["splits"][split] = {"total": counts[split], **info}
            run.close()
            for tmp, final in staging.pending:
                name = final.relative_to(out).as_posix() + ("/" if tmp.is_dir() else "")
                metadata["files"][name] = staging.entries[tmp].result()
            with deferred_interrupts():  # the renames and removals together, or not at all
                # The old metadata goes first: until the new one is written, OUT must not
                # verify. Before this point an interrupt leaves the previous run intact.
                (out / METADATA).unlink(missing_ok=True)
                staging.commit()
                for path in stale:
                    path.unlink(missing_ok=True)
                    if path.parent != out:
                        with suppress(OSError):  # its split or PNG folder, if now empty
                            path.parent.rmdir()
        finally:
            with deferred_interrupts():  # a second Ctrl-C must not strand temporaries
                staging.cleanup()
        if preview is not None:
            _save_preview(out, preview, metadata, params, source, seed)
        with atomic_write(out / METADATA) as f:
            f.write((json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode())
    return metadata


def _save_preview(
    out: Path, png: Path, metadata: dict, params: Params, source: Source, seed: int
) -> None:
    """The first 16 rows as a picture (composed again: the same pixels as the files, whatever
    the format), written atomically, recorded in ``files`` when it lies directly in OUT."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from m2nist.viz import plot_grid

    splits = metadata["splits"]
    split = next((s for s, info in splits.items() if info["images"]), list(splits)[-1])
    start = splits[split]["start"]
    stop = min(splits[split]["stop"], start + 16)
    arrays = compose(digit_pool(split, params, source), params, seed, split, start, stop)
    title = f"M2NIST {split}: first {stop - start} images"
    fig = plot_grid(arrays.images, arrays.labels, title=title)
    try:
        with atomic_write(png) as f:
            fig.savefig(f, dpi=100, format="png")
    finally:
        plt.close(fig)
    if png.parent.resolve() == out.resolve():
        metadata["files"][png.name] = entry_of(png)
