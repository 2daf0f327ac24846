"""Writing OUT: both layouts, identical bytes for any workers or shards, the lock,
no followed symlinks, stale files, the preview, interrupted runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fcnbase.outputs import lock_dir
from m2nist.cli import main
from m2nist.metadata import file_sha256
from m2nist.npz import load_arrays
from m2nist.verification import verify
from tests.cli_table import assert_refused

from .conftest import SMALL, generate_dir


def test_kaggle_layout_loads_with_plain_numpy(sample_out):
    combined = np.load(sample_out / "train" / "combined.npy")
    segmented = np.load(sample_out / "train" / "segmented.npy", mmap_mode="r")
    assert combined.shape == (600, 64, 84) and combined.dtype == np.uint8
    assert segmented.shape == (600, 64, 84, 11) and segmented.dtype == np.uint8
    assert (np.asarray(segmented).sum(-1) == 1).all()
    labels = load_arrays(sample_out, "train").labels
    assert np.array_equal(np.asarray(segmented).argmax(-1), labels)
    assert np.array_equal(segmented[..., 10] == 1, combined == 0)


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


def test_workers_above_the_cores_are_capped(tmp_path):
    one = generate_dir(tmp_path / "one", *SMALL, "--workers", "1")
    many = generate_dir(tmp_path / "many", *SMALL, "--workers", "1000")
    assert (one / "train.npz").read_bytes() == (many / "train.npz").read_bytes()


def test_a_second_run_into_a_locked_out_fails_at_once(tmp_path, capsys):
    out = tmp_path / "o"
    with lock_dir(out):  # what a first run holds for its whole duration
        assert_refused(capsys, main, [str(out), *SMALL], 1, "another run is writing", root=tmp_path)
    assert main([str(out), *SMALL, "--quiet"]) == 0


def test_a_planted_temporary_symlink_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "o"
    out.mkdir()
    (out / ".train.npz.partial").symlink_to(victim)
    assert main([str(out), *SMALL, "--quiet"]) == 0
    assert victim.read_text() == "precious"
    assert (out / ".train.npz.partial").readlink() == victim
    assert np.load(out / "train.npz")["images"].shape == (40, 64, 84)
    assert any("leftover temporary file" in p for p in verify(out))  # not ours, reported


def test_force_with_a_narrower_format_removes_the_stale_files(tmp_path):
    out = tmp_path / "o"
    generate_dir(out, *SMALL, "--format", "both", "--preview", str(out / "p.png"))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / "notes.txt").write_text("the user's")
    meta = json.loads((out / "metadata.json").read_text())
    meta["files"]["../victim.txt"] = meta["files"]["train.npz"]  # hostile metadata
    (out / "metadata.json").write_text(json.dumps(meta))
    generate_dir(out, *SMALL, "--format", "npz", "--force")
    assert sorted(p.name for p in out.iterdir()) == [
        "metadata.json",
        "notes.txt",
        "test.npz",
        "train.npz",
    ]
    assert victim.read_text() == "precious" and (out / "notes.txt").exists()
    assert verify(out) == [
        f"{out / 'notes.txt'}: not listed in metadata.json (not written by the run it describes)"
    ]


def test_preview_in_out_is_recorded_and_verified(tmp_path):
    out = generate_dir(
        tmp_path / "o", *SMALL, "--format", "kaggle", "--preview", str(tmp_path / "o" / "p.png")
    )
    assert "p.png" in json.loads((out / "metadata.json").read_text())["files"]
    assert verify(out) == []
    (out / "p.png").write_bytes(b"changed")
    assert any("p.png" in p for p in verify(out))


def test_an_interrupted_force_run_leaves_the_previous_run_intact(tmp_path, capsys, monkeypatch):
    from m2nist import writing

    out = generate_dir(tmp_path / "o", *SMALL, "--format", "both")
    real, calls = writing.compose_range, []

    def interrupted(*args, **kwargs):  # Ctrl-C while the second block is being made
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(writing, "compose_range", interrupted)
    argv = [str(out), *SMALL, "--seed", "9", "--force", "--quiet"]
    line = assert_refused(
        capsys, main, argv, 130, "interrupted; temporary files removed", root=tmp_path
    )
    assert line == "m2nist-gen: interrupted; temporary files removed"
    monkeypatch.undo()
    assert verify(out) == []


#: sha256 of files written by m2nist-gen at commit fe8fae8, before the writer was made
#: parallel and the pool vectorised and cached: the same seed must keep giving these bytes
#: (a change of output needs a version bump and its reason, not a silent new digest).
PINNED = {
    ("--train", "300", "--test", "50", "--threshold", "30", "--size", "40x100"): {
        "test.npz": "8e520fece12e1ee1eb9138efb8284eacc60ebb7b74af7b37ca182cc4bec1b5d6",
        "test/combined.npy": "b540a475f8bfbd76a615a780c9b42e4b225b979be10674b9211377fda73a30a4",
        "test/segmented.npy": "e808c44575444b6591c4429b5f677d180ae454b75bc125354dc083803a2171bd",
        "train.npz": "b1f003fe31ad18cc84fb98aeb67001174eaee3b5726a424c8bd19a230da85022",
        "train/combined.npy": "f893b233c9be3ac111fa870844d16ac941be5823e29457872741a9622c664e7c",
        "train/segmented.npy": "fdd2699daa39c7da39363df7084e775a04b40933808d1de62a6d7804017d61fb",
    },
    ("--train", "5000", "--test", "100", "--seed", "11", "--digits", "0-4", "--margin", "0"): {
        "test.npz": "0a5e8ca67c114291f43e02072781bda7291ab5062316cb6b30cf2f4615a249af",
        "train.npz": "f773244c38f80eaccfd6b0357e823afcc95070919e5f1e2cfe39c5dc794aba92",
    },
}


@pytest.mark.parametrize("args", list(PINNED), ids=["threshold 30, both", "0-4 digits, margin 0"])
def test_bytes_are_those_of_the_previous_writer(tmp_path, args):
    fmt = ["--format", "both"] if len(PINNED[args]) > 2 else []
    out = generate_dir(tmp_path / "o", "--sample", *args, *fmt)
    digests = {name: file_sha256(out / name) for name in PINNED[args]}
    assert digests == PINNED[args]
