"""Issue 8's findings, each reproduced: no lost data, no silent wrong answer."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import m2nist
from fcnbase.cli import UsageError
from fcnbase.outputs import lock_dir
from m2nist.cli import main
from m2nist.metadata import file_sha256
from m2nist.mnist import MnistSourceError, idx_names, load_idx_folder
from m2nist.npz import load_arrays, write_npz
from m2nist.verification import check, verify
from tests.cli_table import assert_refused

from .conftest import generate_dir
from .test_mnist import _small_idx

SMALL = ["--sample", "--train", "40", "--test", "10"]


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


def test_workers_above_the_cores_are_capped(tmp_path):
    one = generate_dir(tmp_path / "one", *SMALL, "--workers", "1")
    many = generate_dir(tmp_path / "many", *SMALL, "--workers", "1000")
    assert (one / "train.npz").read_bytes() == (many / "train.npz").read_bytes()


def test_swapped_mnist_files_are_refused(tmp_path, mnist_dir):
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    for train_name, test_name in zip(idx_names(True), idx_names(False), strict=True):
        (swapped / f"{train_name}.gz").symlink_to(mnist_dir / f"{test_name}.gz")
        (swapped / f"{test_name}.gz").symlink_to(mnist_dir / f"{train_name}.gz")
    with pytest.raises(MnistSourceError, match=r"original t10k-images-idx3-ubyte .* not train"):
        load_idx_folder(swapped, train=True)


def test_m2nist_refuses_a_flipped_byte(tmp_path):
    out = generate_dir(tmp_path / "o", *SMALL)
    blob = bytearray((out / "train.npz").read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (out / "train.npz").write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=r"train\.npz: sha256 differs"):
        m2nist.M2NIST(out, "train")
    assert len(m2nist.M2NIST(out, "train", verify_checksum=False)) == 40  # the opt-out
    assert len(m2nist.M2NIST(out, "test")) == 10


def test_kaggle_only_hint_works_when_followed(tmp_path):
    out = generate_dir(tmp_path / "o", *SMALL, "--format", "kaggle", "--seed", "5")
    with pytest.raises(FileNotFoundError, match="add the npz files") as caught:
        m2nist.M2NIST(out, "train", generate=True)
    command = shlex.split(str(caught.value).split("with: ", 1)[1])
    assert command[0] == "m2nist-gen" and main([*command[1:], "--quiet"]) == 0
    ds = m2nist.M2NIST(out, "train")
    combined = np.load(out / "train" / "combined.npy")
    assert np.array_equal(ds.images, combined) and verify(out) == []


def test_generate_true_honours_the_mnist_dir_variable(tmp_path, monkeypatch):
    folder = _small_idx(tmp_path / "idx")
    monkeypatch.setenv("M2NIST_MNIST_DIR", str(folder))
    monkeypatch.setenv("M2NIST_HOME", str(tmp_path / "no-cache"))
    ds = m2nist.M2NIST(tmp_path / "o", "train", generate=True, train=20, test=5)
    meta = json.loads((tmp_path / "o" / "metadata.json").read_text())
    assert len(ds) == 20 and meta["source"]["train"]["path"] == str(folder)
    assert not (tmp_path / "no-cache").exists()


def test_generate_accepts_the_cli_spellings_and_refuses_others_clearly():
    base = m2nist.generate(8, digits=(2, 2), source="sample")
    for digits in (2, "2", "2-2", [2, 2]):
        assert np.array_equal(m2nist.generate(8, digits=digits, source="sample").boxes, base.boxes)
    assert m2nist.generate(2, size="64x96", source="sample").images.shape == (2, 64, 96)
    for bad in ({"digits": "x"}, {"digits": 2.5}, {"size": 64}, {"margin": "2"}, {"n": "3"}):
        kwargs = {"n": 2, "source": "sample", **bad}
        with pytest.raises(UsageError):
            m2nist.generate(kwargs.pop("n"), **kwargs)


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


def test_regeneration_catches_a_consistent_edit(tmp_path):
    """A changed pixel that keeps every invariant, with sha256 and size fixed up."""
    out = generate_dir(tmp_path / "o", *SMALL)
    arrays = load_arrays(out, "train", mmap=False)
    images = arrays.images.copy()
    ink = np.argwhere(images > 1)[0]
    images[tuple(ink)] -= 1  # still ink, so labels, instances and boxes all still agree
    write_npz(
        out / "train.npz",
        {
            "images": images,
            "labels": arrays.labels,
            "instances": arrays.instances,
            "boxes": arrays.boxes,
        },
    )
    _edit(
        out,
        lambda m: m["files"]["train.npz"].update(
            sha256=file_sha256(out / "train.npz"), bytes=(out / "train.npz").stat().st_size
        ),
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
    report = check(out, regenerate="all")
    assert report.problems == [] and len(report.notes) == 2
    assert all("regeneration skipped" in n and "does not exist" in n for n in report.notes)
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
    notes = check(out, regenerate="all").notes
    assert "train: 4500 of 4500 rows regenerated" in notes[1]


def test_a_closed_stderr_is_not_a_crash(tmp_path):
    done = subprocess.run(
        ["bash", "-c", f'"{sys.executable}" -m m2nist.cli {tmp_path}/o --sample --size 1x1 2>&-'],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2 and not (tmp_path / "o").exists()
