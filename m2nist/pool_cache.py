"""Digit pools kept on disk, under a checksum of their inputs, so a run skips the decoding.

A course-size run (5,000 + 1,000 images) composes its images in a few hundredths of a
second; what it used to spend its time on is the digits: inflating the 47 MB of
``train-images-idx3-ubyte.gz`` (0.3 s on one core, and inflating cannot be shared out),
its md5, and cutting 60,000 digits to their ink boxes. None of that changes between
runs on the same files, so the result is kept:

* **Where**: ``$M2NIST_HOME/pools/`` (default ``~/.cache/m2nist/pools/``, beside the
  torchvision download cache), never in the user's MNIST folder.
* **Under what**: the sha256 of the split's two IDX files as found (names and bytes,
  compressed or not; hashing the 10 MB ``.gz`` takes milliseconds) and, for a pool, the
  threshold and canvas width it was cut for, and :data:`CACHE_VERSION`. Any change to
  any input byte is another key: a stale entry is never read.
* **What**: the split's provenance record (the md5s that ``metadata.json`` records,
  computed when the files were decoded and verified) and the pool's arrays.
* **How safely**: written with :func:`fcnbase.outputs.atomic_write` (a complete file
  or none, under its final name only once complete; two runs writing the same entry
  write the same bytes). An unreadable or malformed entry is ignored and rebuilt; a
  cache folder that cannot be written is simply not used.
* **Never trusted by** ``--verify``: regeneration decodes the recorded MNIST itself
  (``digit_pool(..., cached=False)``), so what the cache served is proven, not assumed.

``M2NIST_POOL_CACHE=0`` turns it off. The bundled sample is small and never cached.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from fcnbase.outputs import atomic_write
from m2nist.mnist import cache_dir, idx_files

#: Bump when the pool's layout or the key changes: old entries are then never read.
CACHE_VERSION = 1
HASH_CHUNK = 1 << 22


def enabled() -> bool:
    """Whether pools are cached (``M2NIST_POOL_CACHE=0`` turns it off)."""
    return os.environ.get("M2NIST_POOL_CACHE", "1") != "0"


def folder() -> Path:
    return cache_dir() / "pools"


def input_key(mnist: Path, train: bool) -> str:
    """The sha256 naming a split's entries: version, file names and every byte of both.

    Raises :class:`m2nist.mnist.MnistSourceError` when the folder or a file is missing,
    as decoding would.
    """
    digest = hashlib.sha256(f"m2nist pool cache {CACHE_VERSION}\0".encode())
    for path in idx_files(mnist, train):
        digest.update(f"{path.name}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as f:
            while chunk := f.read(HASH_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def _pool_path(key: str, threshold: int, width: int) -> Path:
    return folder() / f"{key}-t{threshold}-w{width}.npz"


def load_source(key: str) -> dict | None:
    """The provenance record cached under ``key``, or None."""
    try:
        record = json.loads((folder() / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("kind") == "idx" else None


def save_source(key: str, record: dict) -> None:
    _save(folder() / f"{key}.json", (json.dumps(record, sort_keys=True) + "\n").encode())


def load_pool(key: str, threshold: int, width: int) -> dict[str, np.ndarray] | None:
    """The arrays of the pool cached under ``key`` (read-only), or None.

    The file is mapped with ``MAP_POPULATE``: its pages, already in the page cache, are
    mapped in one call, neither copied nor faulted in one by one later in the random
    order in which composition reads them (each of which cost more than the read).
    """
    import io
    import mmap
    import zipfile

    from m2nist.npz import open_npy  # not at the top: m2nist.npz imports the pool

    path = _pool_path(key, threshold, width)
    try:
        with zipfile.ZipFile(path) as zf:  # reads only the central directory
            infos = zf.infolist()
        with path.open("rb") as f:
            flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
            data = np.frombuffer(mmap.mmap(f.fileno(), 0, flags, mmap.PROT_READ), np.uint8)
        arrays = {}
        for info in infos:
            at = info.header_offset  # local header: 30 bytes, then name and extra field
            local = data[at : at + 30].tobytes()
            start = at + 30 + int.from_bytes(local[26:28], "little")
            start += int.from_bytes(local[28:30], "little")
            header = io.BytesIO(data[start : start + 4096].tobytes())
            dtype, shape = open_npy(header)
            count = int(np.prod(shape, dtype=np.int64))
            offset = start + header.tell()
            arrays[info.filename.removesuffix(".npy")] = (
                data[offset : offset + count * dtype.itemsize].view(dtype).reshape(shape)
            )
        return arrays
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # missing, damaged by hand
        return None


def save_pool(key: str, threshold: int, width: int, arrays: dict[str, np.ndarray]) -> None:
    import io

    from m2nist.npz import write_npz

    buf = io.BytesIO()
    write_npz(buf, arrays)
    _save(_pool_path(key, threshold, width), buf.getvalue())


def _save(path: Path, data: bytes) -> None:
    """Write a cache entry atomically; a cache that cannot be written is not an error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as f:
            f.write(data)
    except OSError:
        pass
