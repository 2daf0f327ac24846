"""``metadata.json``: what a run records, written by the writer and checked by the verifier.

Both sides live here so that the fields a run writes (:func:`new_metadata`) and the
fields :func:`parse_metadata` accepts cannot drift apart. The metadata is the last
file of a run and lists every other file with its sha256, so it is also where the
names a run may write (:func:`output_names`), the rows of a shard
(:func:`shard_rows`) and the per-digit-count tally (:func:`tally`) are defined.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import fcnbase
from fcnbase.outputs import atomic_write
from m2nist.compose import PLACEMENT_ROUNDS
from m2nist.mnist import SAMPLE
from m2nist.params import BLOCK, ParamError, Params, make_params
from m2nist.png import CLASSES_TXT, PNG_FOLDERS, SPLIT_LISTS

METADATA = "metadata.json"
HASH_CHUNK = 1 << 20
#: Bytes of a file mapped at once by ``file_sha256(mapped=True)``: memory stays flat.
MAP_WINDOW = 64 << 20
SHA256 = re.compile(r"[0-9a-f]{64}")
KEYS = {"generator", "version", "seed", "params", "formats", "shard", "splits", "source", "files"}
SPLIT_KEYS = {"total", "start", "stop", "images", "per_digit_count"}
PARAM_KEYS = {"digits", "size", "margin", "threshold", "block", "placement_rounds"}


def file_sha256(path: Path, *, mapped: bool = False) -> str:
    """sha256 of a file, read in chunks into one reused buffer: memory stays flat, and a
    fresh buffer per chunk would cost a page fault per 4 KB read (a quarter of a course
    run's faults, measured with ``perf``).

    ``mapped``: hash the page cache in place, one :data:`MAP_WINDOW` at a time, instead
    of copying it into the buffer first. A run hashes its finished ``.npz`` this way,
    while nothing else is left to do: for 200,000 images (3.2 GB) the copy alone cost
    0.4-1.4 CPU-s of a 2.6-3.6 s hash, all of it on the critical path. Only for a file
    the caller has just written itself: a mapped file that another process truncates
    kills the reader with SIGBUS, and a disk error arrives the same way instead of as an
    ``OSError`` with a message, so a user's file is read, never mapped.
    """
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as f:
        if mapped:
            size = os.fstat(f.fileno()).st_size
            for at in range(0, size, MAP_WINDOW):
                length = min(MAP_WINDOW, size - at)
                with mmap.mmap(f.fileno(), length, access=mmap.ACCESS_READ, offset=at) as m:
                    digest.update(m)
            return digest.hexdigest()
        buf = memoryview(bytearray(HASH_CHUNK))
        while n := f.readinto(buf):
            digest.update(buf[:n])
    return digest.hexdigest()


#: The output formats, in the order a run writes them (see :mod:`m2nist.sinks`).
FORMATS = ("npz", "kaggle", "kaggle-flat", "png")


def output_names(splits: list[str], formats: list[str]) -> list[str]:
    """Relative paths of the data files a run writes, in writing order.

    A name ending in ``/`` is a folder of files (the PNG layout's ``images/`` and
    ``masks/``): ``metadata.json`` records it as one entry (see :func:`folder_entry`).
    """
    names = []
    for split in splits:
        if "npz" in formats:
            names.append(f"{split}.npz")
        if "kaggle" in formats:
            names += [f"{split}/combined.npy", f"{split}/segmented.npy"]
    if "kaggle-flat" in formats:
        names += ["combined.npy", "segmented.npy"]
    if "png" in formats:
        names += [CLASSES_TXT, *SPLIT_LISTS.values(), *(f"{folder}/" for folder in PNG_FOLDERS)]
    return names


#: Every data file name any run can write: the only names ``--force`` may delete as stale.
ALL_OUTPUTS = frozenset(output_names(["train", "test"], list(FORMATS)))


def listing_sha256(digests: dict[str, str]) -> str:
    """The sha256 recorded for a folder: that of its ``sha256sum`` listing, sorted by name.

    ``(cd OUT/images && sha256sum *.png | sha256sum)`` prints the same digest, so a folder
    of many small files is one entry of ``metadata.json``, checkable without this package.
    """
    listing = "".join(f"{digests[name]}  {name}\n" for name in sorted(digests))
    return hashlib.sha256(listing.encode()).hexdigest()


def folder_entry(sizes: dict[str, int], digests: dict[str, str]) -> dict:
    """The ``files`` entry of a folder: listing sha256, total bytes and file count."""
    return {"sha256": listing_sha256(digests), "bytes": sum(sizes.values()), "count": len(sizes)}


def shard_rows(total: int, shard: tuple[int, int] | None) -> tuple[int, int]:
    """Rows ``[start, stop)`` of shard ``I/N`` (0-based I): contiguous, in order."""
    index, count = shard or (0, 1)
    return index * total // count, (index + 1) * total // count


def tally(per_count: np.ndarray, params: Params) -> dict[str, int]:
    """``per_digit_count`` as recorded: images per digit count, from ``params.digits[0]`` up."""
    return {str(k): int(v) for k, v in enumerate(per_count) if k >= params.digits[0]}


def new_metadata(
    seed: int, params: Params, formats: list[str], shard: tuple[int, int] | None
) -> dict:
    """The metadata of a run before it writes anything: ``splits``, ``source`` and ``files``
    are filled in as each split is written."""
    return {
        "generator": "m2nist",
        # fcnbase.__version__, whence pyproject.toml takes it: importlib.metadata would scan
        # every distribution on sys.path (about 30 ms, a tenth of a course-size run).
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


def save_metadata(path: Path, metadata: dict) -> None:
    """Write ``metadata.json`` atomically (it is the last file of a run)."""
    with atomic_write(path) as f:
        f.write((json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode())


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
    if not isinstance(value, dict):
        raise MetadataError(f"{where}: expected an object, got {type(value).__name__}")
    if keys is not None and set(value) != keys:
        odd = sorted(set(value) ^ keys)
        raise MetadataError(f"{where}: unexpected or missing fields {', '.join(odd)}")
    return value


def parse_metadata(meta: object) -> Metadata:
    """Check every field of ``metadata.json``; raise :class:`MetadataError` naming the first
    bad one.

    Checked here: the set of fields (none unknown, none missing); ``generator``;
    ``params`` (valid, and ``block``/``placement_rounds`` those of this version, without
    which regeneration could not reproduce the rows); ``formats`` (non-empty, known);
    ``shard``; each split's ``start``/``stop`` equal to the shard of ``total`` and
    ``images`` to their difference; ``per_digit_count`` keys and sum; ``source`` present
    per split, with its checksums; ``files`` exactly the names the splits and formats
    produce (plus a ``.png`` preview), each with a sha256 and a size (a folder also with
    its file count). ``seed``, ``source``
    and ``params`` are then proven by regeneration; ``version`` is informational (reported
    when regeneration disagrees).
    """
    top = _dict(meta, "metadata", KEYS)
    if top["generator"] != "m2nist":
        raise MetadataError(f"generator: {top['generator']!r}, expected 'm2nist'")
    if not isinstance(top["version"], str):
        raise MetadataError(f"version: expected a string, got {top['version']!r}")
    seed = _int(top["seed"], "seed")
    raw = _dict(top["params"], "params", PARAM_KEYS)
    if raw["block"] != BLOCK or raw["placement_rounds"] != PLACEMENT_ROUNDS:
        raise MetadataError(
            f"params: block {raw['block']!r}, placement_rounds {raw['placement_rounds']!r}; "
            f"this version generates blocks of {BLOCK} with {PLACEMENT_ROUNDS} rounds"
        )
    try:
        params = make_params(raw["digits"], raw["size"], raw["margin"], raw["threshold"])
    except ParamError as exc:
        raise MetadataError(f"params: {exc}") from None
    formats = top["formats"]
    if (
        not isinstance(formats, list)
        or not formats
        or len(set(map(str, formats))) != len(formats)
        or not set(formats) <= set(FORMATS)
    ):
        raise MetadataError(
            f"formats: expected a non-empty list of {'/'.join(FORMATS)}, got {formats!r}"
        )
    shard = top["shard"]
    if shard is not None:
        if not isinstance(shard, list) or len(shard) != 2:
            raise MetadataError(f"shard: expected null or [I, N], got {shard!r}")
        index, count = _int(shard[0], "shard I"), _int(shard[1], "shard N", 1)
        if index >= count:
            raise MetadataError(f"shard: {shard!r} needs I < N")
        shard = (index, count)
    splits = _dict(top["splits"], "splits")
    if not splits or not set(splits) <= {"train", "test"}:
        raise MetadataError(f"splits: expected train and/or test, got {sorted(splits)}")
    for name, info in splits.items():
        _split(name, _dict(info, f"splits.{name}", SPLIT_KEYS), shard, params)
    source = _dict(top["source"], "source", set(splits))
    for name, info in source.items():
        _source(name, _dict(info, f"source.{name}"))
    files = _dict(top["files"], "files")
    expected = set(output_names(list(splits), formats))
    listed = {n for n in files if not (n.endswith(".png") and "/" not in n)}
    if listed != expected:
        odd = ", ".join(sorted(listed ^ expected))
        raise MetadataError(f"files: do not match the splits and formats recorded ({odd})")
    for name, info in files.items():
        keys = {"sha256", "bytes", "count"} if name.endswith("/") else {"sha256", "bytes"}
        info = _dict(info, f"files.{name}", keys)
        if name.endswith("/"):
            _int(info["count"], f"files.{name}.count")
        if not isinstance(info["sha256"], str) or not SHA256.fullmatch(info["sha256"]):
            raise MetadataError(f"files.{name}.sha256: not a sha256 digest")
        _int(info["bytes"], f"files.{name}.bytes")
    return Metadata(seed, params, formats, shard, splits, source, files, top["version"])


def _split(name: str, info: dict, shard: tuple[int, int] | None, params: Params) -> None:
    total = _int(info["total"], f"splits.{name}.total")
    start, stop = _int(info["start"], f"{name}.start"), _int(info["stop"], f"{name}.stop")
    if (start, stop) != shard_rows(total, shard):
        raise MetadataError(
            f"splits.{name}: rows {start}-{stop} are not shard {shard} of {total} images"
        )
    if _int(info["images"], f"splits.{name}.images") != stop - start:
        raise MetadataError(f"splits.{name}.images: {info['images']}, rows say {stop - start}")
    tally = _dict(info["per_digit_count"], f"splits.{name}.per_digit_count")
    keys = {str(k) for k in range(params.digits[0], params.digits[1] + 1)}
    if set(tally) != keys or sum(_int(v, f"{name}.per_digit_count") for v in tally.values()) != (
        stop - start
    ):
        raise MetadataError(f"splits.{name}.per_digit_count: not a tally of {stop - start} images")


def _source(name: str, info: dict) -> None:
    kind = info.get("kind")
    if kind == SAMPLE:
        if not isinstance(info.get("sha256"), str):
            raise MetadataError(f"source.{name}: the sample's sha256 is missing")
    elif kind == "idx":
        files = _dict(info.get("files"), f"source.{name}.files")
        if not isinstance(info.get("path"), str) or len(files) != 2:
            raise MetadataError(f"source.{name}: expected a path and two IDX files")
        for entry in files.values():
            if not isinstance(_dict(entry, f"source.{name}.files").get("md5_uncompressed"), str):
                raise MetadataError(f"source.{name}.files: an md5 is missing")
    else:
        raise MetadataError(f"source.{name}.kind: {kind!r}, expected 'idx' or 'sample'")
