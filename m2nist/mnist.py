"""Real MNIST digits from one of three sources, always checked before use.

M2NIST is only as good as the digits it is composed from, so every source is
verified: the four original IDX files are recognised by their md5 (or, for a
valid but unofficial IDX file, by a consistent header), and anything truncated,
corrupt or mislabelled fails with one line naming the file and what is wrong.

Sources, in the order ``source=None`` tries them:

1. ``$M2NIST_MNIST_DIR`` -- a folder with the four IDX files (gzipped or not);
2. the torchvision download cache in ``$M2NIST_HOME`` (default ``~/.cache/m2nist``),
   downloading (checksum-verified by torchvision) when it is empty.

``source="sample"`` selects the small real-MNIST sample bundled in the package
(see ``m2nist/data/PROVENANCE.md``) and a path selects a folder of IDX files.
"""

from __future__ import annotations

import functools
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from fcnbase.cli import one_line

try:  # ISA-L inflates gzip about twice as fast as zlib: most of a course set's first run
    from isal import isal_zlib as zlib
except ImportError:  # no ISA-L wheel for this platform: zlib, the same bytes a little later
    import zlib

SAMPLE = "sample"

#: md5 of the *uncompressed* original IDX files, by base name.
KNOWN_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
#: Compressed bytes inflated at a time (about 5 MB of digits each).
GZIP_PIECE = 1 << 20


class MnistSourceError(RuntimeError):
    """A data problem the user can fix: missing, truncated, corrupt or wrong files."""


@dataclass(frozen=True)
class MnistSplit:
    """Digits of one MNIST split plus a record of where they came from."""

    images: np.ndarray  # uint8 (N, 28, 28), read-only
    labels: np.ndarray  # uint8 (N,), read-only
    source: dict  # JSON-able description: kind, location, checksums


def idx_names(train: bool) -> tuple[str, str]:
    """Base names (without ``.gz``) of the images and labels files of one split."""
    prefix = "train" if train else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def find_idx(folder: Path, base: str) -> Path:
    """The IDX file ``base`` in ``folder``: plain or gzipped, dash or dot spelling."""
    dotted = base.replace("-idx", ".idx")
    for name in (base, base + ".gz", dotted, dotted + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise MnistSourceError(f"{folder}: missing {base}[.gz] (the MNIST IDX file)")


def _read_raw(path: Path) -> tuple[bytes, str]:
    """The decompressed bytes of an IDX file and their md5; a broken gzip is one line.

    A gzipped file is inflated piece by piece while another thread hashes the piece
    before (zlib and hashlib release the GIL), so the md5 costs no time of its own:
    inflating ``train-images`` (47 MB) is most of what a course-size run waits for.
    """
    data, md5 = path.read_bytes(), hashlib.md5()
    if data[:2] != b"\x1f\x8b":
        md5.update(data)
        return data, md5.hexdigest()
    inflate, parts = zlib.decompressobj(zlib.MAX_WBITS | 16), []
    try:
        with ThreadPoolExecutor(1) as hasher:
            for at in range(0, len(data), GZIP_PIECE):
                parts.append(inflate.decompress(data[at : at + GZIP_PIECE]))
                hasher.submit(md5.update, parts[-1])
            parts.append(inflate.flush())
            hasher.submit(md5.update, parts[-1])
    except zlib.error as exc:
        raise MnistSourceError(f"{path}: corrupt gzip file ({exc})") from None
    if not inflate.eof:
        raise MnistSourceError(f"{path}: truncated gzip file ({len(data)} bytes)")
    return b"".join(parts), md5.hexdigest()


def parse_idx(path: Path, base: str) -> tuple[np.ndarray, str, str]:
    """Read and check one IDX file; return (array, md5 of raw bytes, how it was verified).

    The md5 of the four originals is the strongest check. A file with another md5
    is still accepted when its header is self-consistent (magic number, 28x28,
    exact length), so a deliberately cut-down IDX file works, but it is recorded
    as ``verified: header`` in the metadata. A file whose md5 is that of *another*
    original (``train-*`` and ``t10k-*`` exchanged) is refused: its header is
    consistent, so only the md5 can tell that train digits would become test digits.
    """
    raw, md5 = _read_raw(path)
    is_images = "images" in base
    kind, want_magic, header = ("images", 2051, 16) if is_images else ("labels", 2049, 8)
    if len(raw) < header:
        raise MnistSourceError(f"{path}: truncated, only {len(raw)} bytes (no IDX header)")
    magic, count, *frame = (int(v) for v in np.frombuffer(raw[:header], ">u4"))
    if magic != want_magic:
        raise MnistSourceError(
            f"{path}: not an MNIST {kind} file (IDX magic {magic}, expected {want_magic})"
        )
    if is_images and frame != [28, 28]:
        raise MnistSourceError(f"{path}: images are {frame[0]}x{frame[1]}, expected 28x28")
    expected = header + count * (784 if is_images else 1)
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "too long"
        raise MnistSourceError(
            f"{path}: {what}: header says {count} {kind} ({expected} bytes), "
            f"file has {len(raw)} bytes"
        )
    array = np.frombuffer(raw, np.uint8, offset=header)
    array = array.reshape(count, 28, 28) if is_images else array
    if not is_images and count and array.max() > 9:
        raise MnistSourceError(f"{path}: label {int(array.max())} is not a digit 0-9")
    original = next((name for name, known in KNOWN_MD5.items() if known == md5), base)
    if original != base:  # e.g. train-* and t10k-* swapped: the wrong digits, silently
        raise MnistSourceError(
            f"{path}: this is the original {original} (md5 {md5}), not {base}; "
            "the MNIST files are misnamed"
        )
    verified = "md5" if KNOWN_MD5.get(base) == md5 else "header"
    return array, md5, verified


def load_idx_folder(folder: str | os.PathLike, train: bool) -> MnistSplit:
    """Load one split from a folder holding the original IDX files."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise MnistSourceError(f"{folder}: MNIST folder does not exist")
    arrays, files = [], {}
    for base in idx_names(train):
        path = find_idx(folder, base)
        array, md5, verified = parse_idx(path, base)
        arrays.append(array)
        files[path.name] = {"md5_uncompressed": md5, "verified": verified}
    images, labels = arrays
    if len(images) != len(labels):
        raise MnistSourceError(
            f"{folder}: {len(images)} images but {len(labels)} labels in the "
            f"{'train' if train else 'test'} split"
        )
    return MnistSplit(images, labels, {"kind": "idx", "path": str(folder), "files": files})


def sample_path() -> Path:
    """Location of the bundled sample inside the installed package."""
    return Path(str(resources.files("m2nist").joinpath("data/mnist_sample.npz")))


def load_sample(train: bool) -> MnistSplit:
    """One split of the real-MNIST sample shipped as package data."""
    path = sample_path()
    if not path.is_file():
        raise MnistSourceError(f"{path}: bundled MNIST sample is missing from the install")
    split = "train" if train else "test"
    with np.load(path) as npz:
        images, labels = npz[f"{split}_images"], npz[f"{split}_labels"]
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return MnistSplit(images, labels, {"kind": SAMPLE, "path": path.name, "sha256": sha})


def cache_dir() -> Path:
    """Where torchvision's MNIST download is kept: ``$M2NIST_HOME`` or ``~/.cache/m2nist``."""
    home = os.environ.get("M2NIST_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "m2nist"


def download_raw_dir() -> Path:
    """Download MNIST with torchvision (md5-checked) and return its raw IDX folder."""
    from torchvision.datasets import MNIST

    root = cache_dir()
    for train in (True, False):
        MNIST(root=str(root), train=train, download=True)
    return root / "MNIST" / "raw"


def resolve_source(source: str | os.PathLike | None) -> str | Path:
    """Decide which source ``source`` means: ``"sample"`` or a folder of IDX files.

    None means: ``$M2NIST_MNIST_DIR`` when set, else the torchvision cache,
    downloading into it when empty. Download failures become a
    :class:`MnistSourceError` listing the alternatives.
    """
    if source is not None:
        return SAMPLE if source == SAMPLE else Path(source).expanduser()
    env = os.environ.get("M2NIST_MNIST_DIR")
    if env:
        return Path(env).expanduser()
    raw = cache_dir() / "MNIST" / "raw"
    with suppress(MnistSourceError):  # all four files in the cache: nothing to download
        for base in (*idx_names(True), *idx_names(False)):
            find_idx(raw, base)
        return raw
    try:
        return download_raw_dir()
    except Exception as exc:  # any network/IO failure: explain the alternatives
        raise MnistSourceError(  # one_line: torchvision's message spans lines
            f"no MNIST source available (download failed: {one_line(exc)}); options: "
            "--mnist-dir DIR with the four IDX files (or env M2NIST_MNIST_DIR=DIR), --sample for "
            "the bundled real-MNIST sample, or network access to download into "
            f"{cache_dir()} (env M2NIST_HOME)"
        ) from None


def load_split(train: bool, source: str | os.PathLike | None = None) -> MnistSplit:
    """Digits and provenance of one split; results are cached per source."""
    resolved = resolve_source(source)
    return _load_cached(resolved.resolve() if isinstance(resolved, Path) else resolved, train)


@functools.lru_cache(maxsize=8)
def _load_cached(resolved: str | Path, train: bool) -> MnistSplit:
    split = load_sample(train) if resolved == SAMPLE else load_idx_folder(resolved, train)
    split.images.flags.writeable = split.labels.flags.writeable = False
    return split


def load_mnist(
    train: bool, source: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images uint8 (N, 28, 28) and labels uint8 (N,) of the train or test split, from
    ``source`` as :func:`resolve_source` reads it; read-only and shared between calls."""
    split = load_split(train, source)
    return split.images, split.labels
