"""m2nist-gen --verify: tampering, consistent edits, every metadata edit, regeneration."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from m2nist.cli import main
from m2nist.save import entry_of, load_arrays
from m2nist.verifier import verify

from .conftest import SMALL, generate_dir
from .test_mnist import _small_idx


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


def test_verify_regenerates_not_only_checksums(tmp_path):
    """A file rewritten consistently (fresh sha256) but wrong is still rejected."""
    out = generate_dir(tmp_path / "o", "--sample", "--train", "50", "--test", "0")
    arrays = load_arrays(out, "train")
    labels = arrays.labels.copy()
    labels[labels == 3] = 5
    np.savez(out / "train.npz", **{**vars(arrays), "labels": labels})
    meta = json.loads((out / "metadata.json").read_text())
    meta["files"]["train.npz"] = entry_of(out / "train.npz")
    (out / "metadata.json").write_text(json.dumps(meta))
    problems = verify(out)
    assert problems and "labels differs from a regeneration" in problems[0]


def test_verify_rejects_incomplete_directories(tmp_path):
    assert "missing" in verify(tmp_path)[0]
    (tmp_path / ".train.npz.partial").write_bytes(b"x")
    assert any("leftover temporary file" in p for p in verify(tmp_path))


def test_verify_reports_extra_files_and_malformed_json(tmp_path):
    out = generate_dir(tmp_path / "o", *SMALL)
    (out / "train" / "x.npy").parent.mkdir()
    (out / "train" / "x.npy").write_bytes(b"x")
    assert any("x.npy: not listed" in p for p in verify(out))
    (out / "train" / "x.npy").unlink()
    (out / "metadata.json").write_text("[1, 2")
    assert "metadata.json: invalid" in verify(out)[0]
    (out / "metadata.json").write_text("[]")
    assert "expected an object" in verify(out)[0]
    (out / "metadata.json").write_text("[" * 100_000 + "]" * 100_000)  # deeper than Python goes
    assert "metadata.json: invalid (maximum recursion depth" in verify(out)[0]


def _edit(out: Path, change) -> None:
    path = out / "metadata.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


EDITS = {
    "seed": lambda m: m.update(seed=1),
    "margin": lambda m: m["params"].update(margin=1),
    "shard": lambda m: m.update(shard=[0, 2]),
    "start": lambda m: m["splits"]["train"].update(start=1),
    "stop": lambda m: m["splits"]["train"].update(stop=39),
    "total": lambda m: m["splits"]["train"].update(total=41),
    "bytes": lambda m: m["files"]["train.npz"].update(bytes=1),
    "formats empty": lambda m: m.update(formats=[]),
    "split removed": lambda m: (m["splits"].pop("test"), m["source"].pop("test")),
    "split and file removed": lambda m: [
        m[k].pop(n) for k, n in (("splits", "test"), ("source", "test"), ("files", "test.npz"))
    ],
    "files a list": lambda m: m.update(files=list(m["files"])),
    "sha256 missing": lambda m: m["files"]["train.npz"].pop("sha256"),
    "null split": lambda m: m["splits"].update(train=None),
    "seed a string": lambda m: m.update(seed="0"),
    "unknown field": lambda m: m.update(comment="hi"),
    "digits wrong type": lambda m: m["params"].update(digits="1-3x"),
    "source kind": lambda m: m["source"]["train"].update(kind="web"),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_verify_catches_every_metadata_edit(tmp_path, capsys, edit):
    out = generate_dir(tmp_path / "o", *SMALL)
    _edit(out, EDITS[edit])
    assert verify(out) != []
    assert main(["--verify", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("m2nist-gen: ") and "Traceback" not in err


def test_regeneration_catches_a_consistent_edit(tmp_path):
    """A changed pixel that keeps every invariant, with sha256 and size fixed up."""
    out = generate_dir(tmp_path / "o", *SMALL)
    arrays = load_arrays(out, "train")
    images = arrays.images.copy()
    ink = np.argwhere(images > 1)[0]
    images[tuple(ink)] -= 1  # still ink, so labels, instances and boxes all still agree
    np.savez(out / "train.npz", **{**vars(arrays), "images": images})
    _edit(
        out,
        lambda m: m["files"]["train.npz"].update(entry_of(out / "train.npz")),
    )
    assert verify(out, regenerate="none") == []
    problems = verify(out)
    assert len(problems) == 1 and "images differs from a regeneration" in problems[0]


def test_regeneration_skipped_is_said_not_silent(tmp_path, monkeypatch, capsys):
    folder = _small_idx(tmp_path / "idx")
    out = tmp_path / "o"
    args = [str(out), "--mnist-dir", str(folder), "--train", "20", "--test", "5", "--quiet"]
    # in a child: this process's MNIST cache must not remember the folder removed below
    subprocess.run([sys.executable, "-m", "m2nist.cli", *args], check=True, timeout=120)
    verified = subprocess.run(
        [sys.executable, "-m", "m2nist.cli", "--verify", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert f"train: 20 of 20 rows regenerated from {folder}: identical" in verified.stdout
    shutil.rmtree(folder)
    monkeypatch.delenv("M2NIST_MNIST_DIR", raising=False)
    notes: list[str] = []
    assert verify(out, regenerate="all", notes=notes) == [] and len(notes) == 2
    assert all("regeneration skipped" in n and "does not exist" in n for n in notes)
    assert main(["--verify", str(out)]) == 0
    assert "regeneration skipped" in capsys.readouterr().out


def test_verify_all_regenerates_every_row_of_a_shard(tmp_path):
    out = generate_dir(
        tmp_path / "o",
        "--sample",
        "--train",
        "9000",
        "--test",
        "0",
        "--shard",
        "1/2",
        "--format",
        "kaggle",
    )
    notes: list[str] = []
    assert verify(out, regenerate="all", notes=notes) == []
    assert "train: 4500 of 4500 rows regenerated" in notes[1]


def test_a_consistent_edit_of_the_one_hot_is_caught(tmp_path):
    out = generate_dir(tmp_path / "o", *SMALL, "--format", "kaggle")
    segmented = np.load(out / "train" / "segmented.npy")
    segmented[0, 0, 0, 3] = 1  # background and digit 3 at once
    np.save(out / "train" / "segmented.npy", segmented)
    data = (out / "train" / "segmented.npy").read_bytes()
    entry = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    _edit(out, lambda m: m["files"].update({"train/segmented.npy": entry}))
    assert verify(out, regenerate="none") == []
    problems = verify(out)
    assert len(problems) == 1 and "segmented.npy differs from a regeneration" in problems[0]
