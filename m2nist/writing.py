"""Writing a generated dataset into OUT: checked first, streamed, crash-safe.

* Every data file and folder (see :mod:`m2nist.sinks` for the formats) is written under
  a fresh, exclusively created temporary name (``.NAME.<random>.partial``, from
  :func:`fcnbase.outputs.create_temp`: never a fixed name another run shares, never
  followed through a planted symlink). :class:`m2nist.sinks.Staging` renames them into
  place together only once every split is complete.
* The ``--preview`` PNG and ``metadata.json`` do not go through the staging: each is
  written by :func:`fcnbase.outputs.atomic_write` (a temporary file of its own, renamed
  when complete), the preview after the data files and ``metadata.json`` last, since it
  records every file's sha256. An interrupted run therefore never leaves a directory
  that passes :func:`m2nist.verification.verify`.
* A run holds :func:`fcnbase.outputs.lock_dir` on OUT from the second check of its
  outputs (the first, :func:`check_destination`, fails fast before the lock) to its last
  rename: a second run into the same OUT fails at once instead of interleaving files.
* With ``--force``, the previous run's files that this run does not rewrite are removed
  (:func:`stale_outputs`), but only names an m2nist run can write.

The module is close to 400 lines because these rules are one protocol (check,
lock, stage, rename together, remove the stale files, publish the metadata last),
and splitting it would make a reader jump between files to see that it is safe.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Protocol, TypeVar

import numpy as np

from fcnbase.cli import CliError, UsageError, deferred_interrupts
from fcnbase.outputs import OutputExistsError, check_outputs, check_writable, lock_dir
from m2nist.compose import M2NISTArrays, block_spans, compose_range
from m2nist.invariants import digit_counts
from m2nist.metadata import (
    ALL_OUTPUTS,
    METADATA,
    file_sha256,
    new_metadata,
    output_names,
    save_metadata,
    shard_rows,
    tally,
)
from m2nist.mnist import SAMPLE, resolve_source, sample_path
from m2nist.params import BLOCK, Params
from m2nist.png import run_files
from m2nist.pool import DigitPool, digit_pool, split_source
from m2nist.sinks import KaggleFlatSink, KaggleSink, NpzSink, PngSink, Sink, Staging

PREVIEW_IMAGES = 16
T = TypeVar("T")
#: Where the MNIST digits come from: a folder, ``"sample"``, or None (resolved as usual).
Source = str | os.PathLike | None


class Progress(Protocol):
    """Where a run reports each batch of images it has written (the CLI's progress bar)."""

    def update(self, n: int) -> None: ...


def _ordered(
    jobs: list[tuple[int, int]], run: Callable[[tuple[int, int]], T], workers: int
) -> Iterator[T]:
    """``map(run, jobs)`` on ``workers`` threads, in order, with few results in flight.

    However it ends (an error, Ctrl-C), no job is still running once it has: the
    jobs write into the run's files, which are closed and deleted next.
    """
    if workers <= 1:
        yield from map(run, jobs)
        return
    ex = ThreadPoolExecutor(workers)
    try:
        window: deque[Future[T]] = deque()
        for job in jobs:
            window.append(ex.submit(run, job))
            if len(window) > workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def write_split(
    split: str,
    rows: tuple[int, int],
    *,
    pool: DigitPool | None,
    params: Params,
    seed: int,
    sinks: list[Sink],
    workers: int,
    progress: Progress,
) -> dict:
    """Generate rows ``rows`` of one split straight into its sinks; return its counts.

    Blocks are composed (and passed to :meth:`Sink.prepare`) on the worker threads and
    reach :meth:`Sink.write` in order, so sequential files are hashed on the way.
    ``pool`` is None only when there are no rows: a split of none needs no digits.
    """
    start, stop = rows
    per_count = np.zeros(params.max_digits + 1, np.int64)
    # Blocks are composed into buffers that come back once written: fresh ones would be
    # zeroed page by page by the kernel for every block (a fault per 4 KB, 1.5 CPU-s of a
    # 200,000-image run), reused ones by one memset of the two arrays that need it.
    buffers: SimpleQueue[M2NISTArrays] = SimpleQueue()

    def run(span: tuple[int, int]) -> tuple[M2NISTArrays, M2NISTArrays]:
        try:
            buffer = buffers.get_nowait()
        except Empty:
            buffer = M2NISTArrays.allocate(BLOCK, params)
        chunk = buffer.slice(0, span[1] - span[0])
        chunk.images.fill(0)  # what M2NISTArrays.allocate promises compose_range
        chunk.instances.fill(0)
        compose_range(pool, params, seed, split, *span, out=chunk)
        for sink in sinks:
            sink.prepare(split, span[0], chunk)
        return buffer, chunk

    for sink in sinks:
        sink.start(split, rows)
    for buffer, chunk in _ordered(block_spans(start, stop), run, workers):
        per_count += np.bincount(digit_counts(chunk.boxes), minlength=len(per_count))
        for sink in sinks:
            sink.write(split, chunk)  # sinks keep no reference to the rows they wrote
        progress.update(len(chunk))
        buffers.put(buffer)
    for sink in sinks:
        sink.finish(split)
    return {
        "start": start,
        "stop": stop,
        "images": stop - start,
        "per_digit_count": tally(per_count, params),
    }


def source_paths(source: Source) -> list[Path]:
    """The files (or, for an IDX folder, the folder) a run reads: never to be written."""
    resolved = resolve_source(source)
    return [sample_path()] if resolved == SAMPLE else [Path(resolved)]


def check_destination(
    out: Path,
    finals: list[Path],
    *,
    source: Source,
    preview: Path | None,
    force: bool,
) -> None:
    """Everything about OUT and ``--preview`` that can fail, checked before any work.

    OUT must be a writable directory (or creatable), must not be or contain the MNIST
    source (``--force`` would then be allowed to replace inputs), and its outputs must
    be new unless ``force``. The preview must be a ``.png``, not an input, writable.
    A folder output (the PNG layout's ``images/``, ``masks/``) may be replaced only when
    it holds nothing but files a run writes: ``--force`` never deletes a user's file.
    """
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a directory")
    for src in source_paths(source):
        folder = src if src.is_dir() else src.parent
        if out.resolve() == folder.resolve() or folder.resolve().is_relative_to(out.resolve()):
            raise UsageError(f"output {out} holds the MNIST source {src}; choose another OUT")
    check_writable(out)
    files = [p for p in finals if not _is_folder(out, p)]
    outputs = [*files, *([preview] if preview is not None else [])]
    if preview is not None and preview.suffix.lower() != ".png":
        raise UsageError(f"--preview {preview}: must be a .png file")
    check_outputs(outputs, inputs=source_paths(source), force=force)
    for folder in (p for p in finals if _is_folder(out, p)):
        _check_folder(folder, force)


def _is_folder(out: Path, final: Path) -> bool:
    return f"{final.relative_to(out).as_posix()}/" in ALL_OUTPUTS


def _check_folder(folder: Path, force: bool) -> None:
    """A folder output: new, or (with ``force``) a folder of a run's files only."""
    if not (folder.exists() or folder.is_symlink()):
        return
    if folder.is_symlink() or not folder.is_dir():
        raise CliError(f"{folder} exists and is not a folder; move it away")
    if not force:
        raise OutputExistsError(f"{folder} exists (use --force to replace it)")
    ours = set(run_files(folder))
    other = sorted(p for p in folder.iterdir() if p not in ours)
    if other:
        raise CliError(
            f"{folder} holds {other[0].name}, which no m2nist run writes; --force replaces "
            "the folder only when it holds nothing else: move the file away"
        )


def stale_outputs(out: Path, keep: list[Path]) -> list[Path]:
    """Files the previous run's ``metadata.json`` lists that this run will not rewrite.

    Only names an m2nist run can produce (:data:`ALL_OUTPUTS`, or the ``.png`` preview it
    recorded directly in OUT) are taken from the old metadata: a hand-edited or hostile
    ``"files": {"../../home": ...}`` can never make ``--force`` delete anything else. A
    folder it listed contributes the files a run writes there (``images/train-000000.png``),
    never anything else.
    """
    try:
        previous = json.loads((out / METADATA).read_text())
        listed = previous["files"]
        names = list(listed) if isinstance(listed, dict) else []
    except (OSError, ValueError, KeyError, TypeError):
        return []
    kept = {p.resolve() for p in keep}
    stale = []
    for name in names:
        if not isinstance(name, str) or name.startswith("."):
            continue
        if name.endswith("/") and name in ALL_OUTPUTS:
            if (out / name).resolve() not in kept:
                stale += run_files(out / name)
        elif (name in ALL_OUTPUTS or (name.endswith(".png") and "/" not in name)) and (
            (out / name).resolve() not in kept
            and ((out / name).is_file() or (out / name).is_symlink())
        ):
            stale.append(out / name)
    return stale


def _remove_stale(out: Path, stale: list[Path]) -> None:
    for path in stale:
        path.unlink(missing_ok=True)
        if path.parent != out:
            with suppress(OSError):  # the split or PNG folder, when nothing else is in it
                path.parent.rmdir()


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
    progress: Progress | None = None,
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
    finals = [out / name.rstrip("/") for name in [*output_names(splits, formats), METADATA]]
    check_destination(out, finals, source=source, preview=preview, force=force)
    with lock_dir(out):
        # again: a run may have finished meanwhile
        check_destination(out, finals, source=source, preview=preview, force=force)
        stale = stale_outputs(out, finals + ([preview] if preview is not None else []))
        metadata = _write_locked(
            out, splits, counts, seed, params, source, formats, workers, shard, progress, stale
        )
        if preview is not None:
            _save_preview(out, preview, metadata, params, source, seed)
        save_metadata(out / METADATA, metadata)
    return metadata


def _open_sinks(
    sinks: list[Sink], out: Path, staging: Staging, params: Params, formats: list[str], rows: int
) -> None:
    """Append the sink of each format to ``sinks`` (``rows``: the run's rows, all splits);
    one at a time, so that a failure leaves the ones already open in the list to abort."""
    makers: dict[str, Callable[[], Sink]] = {
        "npz": lambda: NpzSink(out, staging, params),
        "kaggle": lambda: KaggleSink(out, staging, params),
        "kaggle-flat": lambda: KaggleFlatSink(out, staging, params, rows),
        "png": lambda: PngSink(out, staging),
    }
    for fmt, make in makers.items():
        if fmt in formats:
            sinks.append(make())


def _write_locked(
    out: Path,
    splits: list[str],
    counts: dict[str, int],
    seed: int,
    params: Params,
    source: Source,
    formats: list[str],
    workers: int,
    shard: tuple[int, int] | None,
    progress: Progress | None,
    stale: list[Path],
) -> dict:
    """The data files of :func:`write_dataset`, renamed into place; the metadata to write."""
    progress = progress or _NoProgress()
    staging = Staging()
    metadata = new_metadata(seed, params, formats, shard)
    rows = {split: shard_rows(counts[split], shard) for split in splits}
    sinks: list[Sink] = []
    try:
        _open_sinks(sinks, out, staging, params, formats, sum(b - a for a, b in rows.values()))
        for split in splits:
            start, stop = rows[split]
            pool = digit_pool(split, params, source) if stop > start else None
            metadata["source"][split] = split_source(split, source)
            metadata["splits"][split] = {
                "total": counts[split],
                **write_split(
                    split,
                    rows[split],
                    pool=pool,
                    params=params,
                    seed=seed,
                    sinks=sinks,
                    workers=workers,
                    progress=progress,
                ),
            }
        for sink in sinks:
            sink.close()
        sinks = []
        for tmp, final in staging.pending:
            name = final.relative_to(out).as_posix() + ("/" if tmp.is_dir() else "")
            metadata["files"][name] = staging.entry(tmp)
        with deferred_interrupts():  # the renames and removals together, or not at all
            # The old metadata goes first: from here on the directory is the new run's, and
            # until the new metadata.json is written it must not verify. Before this point an
            # interrupt leaves the previous run complete and verifying.
            (out / METADATA).unlink(missing_ok=True)
            staging.commit()
            _remove_stale(out, stale)
    finally:
        with deferred_interrupts():  # an impatient second Ctrl-C must not strand temporaries
            for sink in sinks:
                sink.abort()
            staging.cleanup()
    return metadata


def _save_preview(
    out: Path, png: Path, metadata: dict, params: Params, source: Source, seed: int
) -> None:
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
    """The :class:`Progress` of a run that nobody watches."""

    def update(self, n: int) -> None:
        pass
