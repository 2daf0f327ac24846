"""The .npz files: layout, dtypes, the memory-mapped reader, the streaming writer."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest

import m2nist
from m2nist.npz import NpzStreamWriter, load_arrays, member_memmap


def test_npz_layout_and_dtypes(sample_out):
    with np.load(sample_out / "train.npz") as npz:
        assert sorted(npz.files) == ["boxes", "images", "instances", "labels"]
        assert npz["images"].shape == npz["labels"].shape == (600, 64, 84)
        assert npz["instances"].dtype == np.uint8 and npz["boxes"].dtype == np.int16
        assert npz["boxes"].shape == (600, 3, 5)
        direct = m2nist.generate(600, split="train", source="sample")
        assert np.array_equal(npz["labels"], direct.labels)
        assert np.array_equal(npz["boxes"], direct.boxes)
    mapped = load_arrays(sample_out, "test")
    assert isinstance(mapped.images, np.memmap)
    assert np.array_equal(mapped.instances, load_arrays(sample_out, "test", mmap=False).instances)
    with zipfile.ZipFile(sample_out / "train.npz") as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}


def test_member_memmap_matches_np_load(sample_out):
    with np.load(sample_out / "test.npz") as npz:
        for name in npz.files:
            assert np.array_equal(member_memmap(sample_out / "test.npz", name), npz[name])


def test_stream_writer_interleaves_members_and_refuses_an_incomplete_one(tmp_path):
    a, b = np.arange(12, dtype=np.uint8).reshape(4, 3), np.arange(8, dtype=np.int16).reshape(4, 2)
    members = {"a": (a.dtype, a.shape), "b": (b.dtype, b.shape)}
    fd = os.open(tmp_path / "x.npz", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    with NpzStreamWriter(fd, members) as npz:
        for rows in (slice(0, 1), slice(1, 4)):  # chunks of both members, interleaved
            npz.write("a", a[rows])
            npz.write("b", b[rows])
    with np.load(tmp_path / "x.npz") as loaded:
        assert np.array_equal(loaded["a"], a) and np.array_equal(loaded["b"], b)
    assert np.array_equal(member_memmap(tmp_path / "x.npz", "b"), b)
    fd = os.open(tmp_path / "y.npz", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    with pytest.raises(ValueError, match="b: 8 bytes missing"), NpzStreamWriter(fd, members) as npz:
        npz.write("a", a)
        npz.write("b", b[:2])


def test_stream_writer_closes_its_descriptor_when_it_cannot_start(tmp_path):
    (tmp_path / "r.npz").write_bytes(b"")
    fd = os.open(tmp_path / "r.npz", os.O_RDONLY)  # pwrite fails: not open for writing
    with pytest.raises(OSError):
        NpzStreamWriter(fd, {"a": (np.dtype(np.uint8), (2, 2))})
    with pytest.raises(OSError):
        os.fstat(fd)  # closed by the writer, which owns it
