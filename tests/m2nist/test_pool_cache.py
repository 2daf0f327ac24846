"""The digit-pool cache: keyed by the input bytes, same output, never trusted by --verify."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from m2nist import pool, pool_cache
from m2nist.npz import load_arrays
from m2nist.verification import verify

from .conftest import generate_dir
from .test_mnist import _small_idx


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("M2NIST_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("M2NIST_POOL_CACHE", raising=False)
    return tmp_path / "home"


def _run(out: Path, folder: Path) -> Path:
    return generate_dir(out, "--mnist-dir", str(folder), "--train", "200", "--test", "50")


def _copy(folder: Path, to: Path) -> Path:
    """The same files in another folder: the same cache key, but new to this process."""
    shutil.copytree(folder, to)
    return to


def test_a_second_run_reads_the_cache_and_writes_the_same_bytes(tmp_path, home, monkeypatch):
    folder = _small_idx(tmp_path / "idx", n=300)
    first = _run(tmp_path / "first", folder)
    assert len(list((home / "pools").glob("*.npz"))) == 2  # train and test, 64x84, threshold 0
    copy = _copy(folder, tmp_path / "copy")

    def no_decoding(*args, **kwargs):
        raise AssertionError("the MNIST files were decoded although the cache holds them")

    monkeypatch.setattr(pool, "load_split", no_decoding)
    second = _run(tmp_path / "second", copy)
    monkeypatch.undo()
    for name in ("train.npz", "test.npz"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    meta = (second / "metadata.json").read_text()
    assert str(copy) in meta and str(folder) not in meta  # the folder read, not the first
    assert verify(second, regenerate="all") == []


def test_the_key_is_every_input_byte(tmp_path):
    folder = _small_idx(tmp_path / "idx")
    key = pool_cache.input_key(folder, train=True)
    assert pool_cache.input_key(_copy(folder, tmp_path / "copy"), train=True) == key
    assert pool_cache.input_key(folder, train=False) != key
    labels = tmp_path / "copy" / "train-labels-idx1-ubyte.gz"
    blob = bytearray(labels.read_bytes())
    blob[-9] ^= 1  # inside the gzip stream: another file, whatever it decodes to
    labels.write_bytes(bytes(blob))
    assert pool_cache.input_key(tmp_path / "copy", train=True) != key


def test_a_poisoned_cache_is_caught_by_verify(tmp_path, home):
    folder = _small_idx(tmp_path / "idx", n=300)
    _run(tmp_path / "first", folder)
    key = pool_cache.input_key(folder, train=True)
    arrays = {k: np.array(v) for k, v in pool_cache.load_pool(key, 0, 84).items()}
    arrays["val"][arrays["val"] > 1] -= 1  # still ink: every invariant still holds
    pool_cache.save_pool(key, 0, 84, arrays)
    out = _run(tmp_path / "poisoned", _copy(folder, tmp_path / "copy"))
    assert verify(out, regenerate="none") == []
    problems = verify(out, regenerate="all")
    assert len(problems) == 1 and "train rows 0-200: images differs" in problems[0]


def test_a_corrupt_entry_is_rebuilt(tmp_path, home):
    folder = _small_idx(tmp_path / "idx", n=300)
    first = _run(tmp_path / "first", folder)
    for entry in (home / "pools").iterdir():
        entry.write_bytes(b"half a file")
    second = _run(tmp_path / "second", _copy(folder, tmp_path / "copy"))
    assert load_arrays(second, "train").images.tobytes() == (
        load_arrays(first, "train").images.tobytes()
    )
    key = pool_cache.input_key(folder, train=True)
    assert pool_cache.load_pool(key, 0, 84) is not None  # written again, whole


def test_off_or_unwritable_the_cache_is_not_used(tmp_path, monkeypatch):
    folder = _small_idx(tmp_path / "idx")
    monkeypatch.setenv("M2NIST_HOME", str(tmp_path / "off"))
    monkeypatch.setenv("M2NIST_POOL_CACHE", "0")
    _run(tmp_path / "a", folder)
    assert not (tmp_path / "off").exists()
    monkeypatch.delenv("M2NIST_POOL_CACHE")
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("M2NIST_HOME", str(tmp_path / "a-file"))
    out = _run(tmp_path / "b", _copy(folder, tmp_path / "copy"))
    assert verify(out) == [] and (tmp_path / "a-file").read_text() == "not a folder"
