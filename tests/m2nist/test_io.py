"""Output files: formats, reproducible bytes, shards, verification of tampering."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import m2nist
from m2nist.npz import load_arrays, member_memmap
from m2nist.verification import verify

from .conftest import generate_dir


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


def test_kaggle_layout_loads_with_plain_numpy(sample_out):
    combined = np.load(sample_out / "train" / "combined.npy")
    segmented = np.load(sample_out / "train" / "segmented.npy", mmap_mode="r")
    assert combined.shape == (600, 64, 84) and combined.dtype == np.uint8
    assert segmented.shape == (600, 64, 84, 11) and segmented.dtype == np.uint8
    assert (np.asarray(segmented).sum(-1) == 1).all()
    labels = load_arrays(sample_out, "train").labels
    assert np.array_equal(np.asarray(segmented).argmax(-1), labels)
    assert np.array_equal(segmented[..., 10] == 1, combined == 0)


def test_metadata_records_everything(sample_out):
    meta = json.loads((sample_out / "metadata.json").read_text())
    assert meta["version"] == m2nist.__version__ and meta["seed"] == 0
    assert meta["params"] == {
        "digits": [1, 3],
        "size": [64, 84],
        "margin": 2,
        "threshold": 0,
        "block": 4096,
        "placement_rounds": 32,
    }
    assert (
        meta["source"]["train"]["kind"] == "sample" and len(meta["source"]["test"]["sha256"]) == 64
    )
    assert sum(meta["splits"]["train"]["per_digit_count"].values()) == 600
    assert set(meta["files"]) == {
        "train.npz",
        "test.npz",
        "train/combined.npy",
        "train/segmented.npy",
        "test/combined.npy",
        "test/segmented.npy",
    }
    assert verify(sample_out) == []


def test_bytes_identical_across_workers_and_shards(tmp_path):
    args = ["--sample", "--train", "5000", "--test", "100", "--seed", "11"]
    one = generate_dir(tmp_path / "one", *args, "--workers", "1")
    two = generate_dir(tmp_path / "two", *args, "--workers", "2")
    for name in ("train.npz", "test.npz"):
        assert (one / name).read_bytes() == (two / name).read_bytes()
    shards = [generate_dir(tmp_path / f"s{i}", *args, "--shard", f"{i}/3") for i in range(3)]
    full = load_arrays(one, "train")
    parts = [load_arrays(s, "train") for s in shards]
    for name in ("images", "labels", "instances", "boxes"):
        joined = np.concatenate([getattr(p, name) for p in parts])
        assert joined.tobytes() == getattr(full, name).tobytes()
    assert [len(p) for p in parts] == [1666, 1667, 1667]
    assert all(verify(s) == [] for s in shards)


@pytest.mark.parametrize("target", ["train.npz", "test/segmented.npy", "metadata.json"])
def test_verify_detects_tampering(sample_out, tmp_path, target):
    out = tmp_path / "copy"
    generate_dir(out, "--sample", "--train", "600", "--test", "200", "--format", "both")
    path = out / target
    if target == "metadata.json":
        meta = json.loads(path.read_text())
        meta["splits"]["train"]["per_digit_count"]["1"] += 1
        path.write_text(json.dumps(meta))
    else:
        blob = bytearray(path.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        path.write_bytes(bytes(blob))
    assert verify(out) != []


def test_verify_rechecks_invariants_not_only_checksums(tmp_path):
    """A file rewritten consistently (fresh sha256) but wrong is still rejected."""
    out = generate_dir(tmp_path / "o", "--sample", "--train", "50", "--test", "0")
    arrays = load_arrays(out, "train", mmap=False)
    labels = arrays.labels.copy()
    labels[labels == 3] = 5
    from m2nist.metadata import file_sha256
    from m2nist.npz import write_npz

    write_npz(
        out / "train.npz",
        {
            "images": arrays.images,
            "labels": labels,
            "instances": arrays.instances,
            "boxes": arrays.boxes,
        },
    )
    meta = json.loads((out / "metadata.json").read_text())
    meta["files"]["train.npz"]["sha256"] = file_sha256(out / "train.npz")
    meta["files"]["train.npz"]["bytes"] = (out / "train.npz").stat().st_size
    (out / "metadata.json").write_text(json.dumps(meta))
    problems = verify(out)
    assert problems and "another class" in problems[0]


def test_verify_rejects_incomplete_directories(tmp_path):
    assert "missing" in verify(tmp_path)[0]
    (tmp_path / ".train.npz.partial").write_bytes(b"x")
    assert any("leftover temporary file" in p for p in verify(tmp_path))


def test_member_memmap_matches_np_load(sample_out):
    with np.load(sample_out / "test.npz") as npz:
        for name in npz.files:
            assert np.array_equal(member_memmap(sample_out / "test.npz", name), npz[name])
