"""metadata.json: what a run records, read back by the parser verification uses."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

import m2nist
from m2nist.params import Params
from m2nist.save import entry_of, new_metadata
from m2nist.verifier import parse_metadata, verify


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


def test_the_fields_a_run_writes_are_the_fields_the_parser_accepts(sample_out):
    fresh = new_metadata(0, Params(), ["npz"], None)
    written = json.loads((sample_out / "metadata.json").read_text())
    assert set(fresh) == set(written) and fresh["params"] == written["params"]
    meta = parse_metadata(written)
    assert (meta.seed, meta.params, meta.shard) == (0, Params(), None)
    assert meta.version == m2nist.__version__
    with pytest.raises(ValueError, match=r"fields .*'comment'"):
        parse_metadata({**written, "comment": "hi"})


@pytest.mark.parametrize("size", [0, 1, 4 << 20, (4 << 20) + 17])
def test_a_file_entry_is_the_sha256_and_size_of_its_bytes(tmp_path, size):
    path = tmp_path / "f.bin"
    data = os.urandom(size)
    path.write_bytes(data)
    assert entry_of(path) == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": size}
