"""M2NIST's ``.npz`` files: a streaming, byte-reproducible writer and a memory-mapped reader.

An ``.npz`` is a zip archive of ``.npy`` members. We write it ourselves
(:class:`NpzStreamWriter`): uncompressed, zip64, fixed timestamps, every member's
chunks written in place as blocks arrive. ``np.load`` reads the result as usual, memory
stays flat in N, and equal arrays give equal bytes.

Why not the standard tools
--------------------------
* ``np.savez`` needs every array in memory at once (memory grows with N) and stamps
  the current time into each member, so two runs of the same seed differ in bytes.
* ``numpy.lib.format.open_memmap`` keeps memory flat, but it writes one plain ``.npy``
  file, never a member inside a zip. Publishing a split as four such files would change
  the documented layout and every recorded sha256; building the ``.npz`` from them
  afterwards would write each array twice (twice the disk space and write traffic)
  and still need a reproducible zip writer. The Kaggle layout *is* plain ``.npy``
  files, but it is written front to back, so :class:`m2nist.writing.HashingFile`
  streams it and computes its sha256 on the way instead of mapping it and re-reading.
* ``np.load(path, mmap_mode="r")`` ignores ``mmap_mode`` for an ``.npz``, so
  :func:`member_memmap` maps a stored member itself: it is a contiguous byte range.

The writer is about 100 lines of ``struct`` packing; that is what flat memory and
identical bytes for identical arrays cost.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from m2nist.compose import M2NISTArrays

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
#: The members of a split's ``.npz``, in writing order (the fields of :class:`M2NISTArrays`).
ARRAY_NAMES = ("images", "labels", "instances", "boxes")
MASK32 = 0xFFFFFFFF
ZIP64_VERSION = 45
FILE_ATTR = 0o100644 << 16  # regular file, rw-r--r--


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


def _multmodp(a: int, b: int) -> int:
    """``a * b`` modulo the CRC-32 polynomial, bits reflected (zlib's ``multmodp``)."""
    m, p = 1 << 31, 0
    while True:
        if a & m:
            p ^= b
            if (a & (m - 1)) == 0:
                return p
        m >>= 1
        b = (b >> 1) ^ 0xEDB88320 if b & 1 else b >> 1


#: ``x**(2**k)`` modulo the CRC-32 polynomial, for k = 0..31 (zlib's ``x2n_table``).
_X2N = [1 << 30]
for _ in range(31):
    _X2N.append(_multmodp(_X2N[-1], _X2N[-1]))


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of ``a + b`` from ``crc32(a)``, ``crc32(b)`` and ``len(b)`` (zlib's
    ``crc32_combine``, which Python's ``zlib`` does not expose): what lets each worker
    thread checksum its own block and the writer chain the results in row order."""
    p, k, n = 1 << 31, 3, len2  # x**(8 * len2): 2**3 bits per byte
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return _multmodp(p, crc1) ^ crc2


class NpzStreamWriter:
    """Write an uncompressed ``.npz`` whose arrays arrive in row chunks, in any order.

    A zip member must normally be written in one go, but with ZIP_STORED every size is
    known in advance, so the layout is fixed up front: each member's local header
    (30 bytes + name + 20-byte zip64 extra), then its ``.npy`` header and data. Rows are
    written in place with ``os.pwrite`` at their own offset, in any order
    (:meth:`write_rows`), each chunk with its own CRC-32; :meth:`finish` chains the
    CRCs in row order (:func:`crc32_combine`) and writes the local headers (which carry
    them), the central directory and the zip64 end records. The bytes depend only on the
    arrays, and Python's ``zipfile`` (hence ``np.load``) reads the result, checking every
    CRC.
    """

    def __init__(self, fd: int, members: dict[str, tuple[np.dtype, tuple[int, ...]]]) -> None:
        """``fd``: an empty file opened for writing (from
        :func:`fcnbase.outputs.create_temp`); the writer owns it from here and closes it,
        even when this constructor fails. It never opens a path itself, so it cannot be
        pointed at another file through a name."""
        self.names = [f"{name}.npy".encode() for name in members]
        self.offset, self.data, self.row_bytes, self.crc, self.size = {}, {}, {}, {}, {}
        self.nbytes: dict[str, int] = {}
        self.chunks: dict[str, dict[int, tuple[int, int]]] = {name: {} for name in members}
        self.rows_written = dict.fromkeys(members, 0)
        self.fd = fd
        at = 0
        try:
            for (name, (dtype, shape)), encoded in zip(members.items(), self.names, strict=True):
                header = npy_header(dtype, shape)
                self.row_bytes[name] = np.dtype(dtype).itemsize * int(
                    np.prod(shape[1:], dtype=np.int64)
                )
                self.nbytes[name] = nbytes = self.row_bytes[name] * shape[0]
                self.offset[name] = at
                start = at + 30 + len(encoded) + 20
                os.pwrite(self.fd, header, start)
                self.crc[name] = zlib.crc32(header)
                self.data[name] = start + len(header)
                self.size[name] = len(header) + nbytes
                at = start + self.size[name]
        except BaseException:
            os.close(fd)
            raise
        self.directory = at

    def write_rows(self, name: str, row: int, chunk: np.ndarray, crc: int | None = None) -> None:
        """Write rows ``row:row+len(chunk)`` of array ``name``; safe from any thread
        (disjoint rows only: each byte range is written once). ``crc``: the chunk's
        CRC-32 when the caller computed it already (on another thread)."""
        view = memoryview(np.ascontiguousarray(chunk)).cast("B")
        at = self.data[name] + row * self.row_bytes[name]
        crc = zlib.crc32(view) if crc is None else crc
        while view:
            done = os.pwrite(self.fd, view, at)
            at, view = at + done, view[done:]
        self.chunks[name][row] = crc, len(chunk) * self.row_bytes[name]

    def write(self, name: str, chunk: np.ndarray, crc: int | None = None) -> None:
        """Append the next rows of array ``name`` (the writer counts them)."""
        self.write_rows(name, self.rows_written[name], chunk, crc)
        self.rows_written[name] += len(chunk)

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
                crc, written = self.crc[name], 0
                for row in sorted(self.chunks[name]):
                    chunk_crc, length = self.chunks[name][row]
                    crc, written = crc32_combine(crc, chunk_crc, length), written + length
                if written != self.nbytes[name]:
                    raise ValueError(f"{name}: {self.nbytes[name] - written} bytes missing")
                size, at = self.size[name], self.offset[name]
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


def load_arrays(out: str | Path, split: str, mmap: bool = True) -> M2NISTArrays:
    """A generated split (``OUT/SPLIT.npz``), memory-mapped by default."""
    path = Path(out) / f"{split}.npz"
    if mmap:
        return M2NISTArrays(*(member_memmap(path, name) for name in ARRAY_NAMES))
    with np.load(path) as npz:
        return M2NISTArrays(*(npz[name] for name in ARRAY_NAMES))
