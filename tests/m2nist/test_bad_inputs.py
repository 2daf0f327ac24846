"""Every way to call ``m2nist-gen`` wrongly: exit status, one stderr line, nothing changed.

Each case runs in a folder holding a broken MNIST folder, a valid small one, a plain file,
a finished run (``done``), a folder with a user's ``masks/`` and one whose ``images`` is a
file, so that refusing to touch existing data is checked too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from m2nist.cli import main
from tests.cli_table import assert_refused

from .conftest import generate_dir
from .test_mnist import _small_idx


def _broken_mnist(folder: Path) -> Path:
    """A folder with a truncated train-images file (the other files are fine)."""
    folder.mkdir()
    for name in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (folder / name).write_bytes(np.array([2049, 0], ">u4").tobytes())
    header = np.array([2051, 10, 28, 28], ">u4").tobytes()
    (folder / "train-images-idx3-ubyte").write_bytes(header + bytes(500))
    return folder


OUT = "{tmp}/out"
BAD_INPUTS = [
    ([OUT, "--sample", "--digits", "9-9", "--margin", "4"], 2, "cannot guarantee 9 digits"),
    ([OUT, "--sample", "--digits", "3-1"], 2, "MIN <= MAX"),
    ([OUT, "--sample", "--digits", "0-0"], 2, "MAX >= 1"),
    ([OUT, "--sample", "--digits", "two"], 2, "--digits must look like"),
    ([OUT, "--sample", "--size", "20x84"], 2, "must be >= 28"),
    ([OUT, "--sample", "--size", "64by84"], 2, "--size must look like"),
    ([OUT, "--sample", "--size", "64x84x3"], 2, "--size must look like"),
    ([OUT, "--sample", "--size", "4096x4096"], 2, "larger than 32768 pixels"),
    ([OUT, "--sample", "--margin", "-1"], 2, "-1 is outside 0..4096"),
    ([OUT, "--sample", "--threshold", "300"], 2, "300 is outside 0..254"),
    ([OUT, "--sample", "--train", "many"], 2, "expected an integer"),
    ([OUT, "--sample", "--train", "1" + "0" * 30], 2, "is outside 0..10000000000"),
    ([OUT, "--sample", "--test", "-5"], 2, "-5 is outside"),
    ([OUT, "--sample", "--seed", str(2**64)], 2, "is outside 0.."),
    ([OUT, "--sample", "--shard", "4/4"], 2, "0 <= I < N"),
    ([OUT, "--sample", "--shard", "half"], 2, "--shard must look like"),
    ([OUT, "--sample", "--format", "hdf5"], 2, "invalid choice"),
    ([OUT, "--sample", "--format", "png,tiff"], 2, "invalid choice: 'tiff'"),
    ([OUT, "--sample", "--format", "kaggle-flat", "--shard", "0/2"], 2, "which a shard cannot"),
    (["{tmp}/user", "--sample", "--format", "png", "--force"], 1, "which no m2nist run writes"),
    (["{tmp}/user", "--sample", "--format", "npz,png"], 1, "masks exists (use --force"),
    (["{tmp}/file-images", "--sample", "--format", "png"], 1, "exists and is not a folder"),
    ([OUT, "--sample", "--workers", "0"], 2, "0 is outside 1..4096"),
    ([OUT, "--sample", "--preview", "{tmp}/p.jpg"], 2, "must be a .png"),
    ([OUT, "--sample", "--preview", "{tmp}/small"], 2, "must be a .png"),
    ([OUT, "--sample", "--preview", "{tmp}/done/p.png"], 1, "exists (use --force"),
    ([OUT, "--sample", "--preview", "{tmp}/file/p.png"], 1, "not a directory"),
    (
        [OUT, "--sample", "--format", "png", "--preview", OUT + "/images/train-000000.png"],
        2,
        "in a",
    ),
    ([OUT, "--sample", "--preview", OUT + "/notes/p.png"], 2, "itself or elsewhere"),
    ([OUT, "--sample", "--mnist-dir", "x"], 2, "not allowed with"),
    ([OUT, "--sample", "--bogus"], 2, "unrecognized arguments"),
    ([OUT, "--mnist-dir", "{tmp}/nowhere"], 1, "does not exist"),
    ([OUT, "--mnist-dir", "{tmp}/broken"], 1, "truncated: header says 10 images"),
    (["{tmp}/small", "--mnist-dir", "{tmp}/small"], 2, "holds the MNIST source"),
    (["{tmp}", "--mnist-dir", "{tmp}/small"], 2, "holds the MNIST source"),
    (["{tmp}/file", "--sample"], 2, "exists and is not a directory"),
    (["{tmp}/done", "--sample", "--train", "4", "--test", "2"], 1, "exists (use --force"),
    (["{tmp}/done", "--sample", "--format", "kaggle"], 1, "metadata.json exists"),
    ([], 2, "exactly one of OUT or --verify"),
    ([OUT, "--verify", "{tmp}/done"], 2, "exactly one of OUT or --verify"),
    (["--verify", "{tmp}/done", "--regenerate", "some"], 2, "invalid choice"),
    (["--verify", "{tmp}/nothing"], 1, "not a directory"),
]


@pytest.mark.parametrize(("argv", "code", "message"), BAD_INPUTS, ids=[c[2] for c in BAD_INPUTS])
def test_bad_input_is_refused(tmp_path, capsys, argv, code, message):
    _broken_mnist(tmp_path / "broken")
    _small_idx(tmp_path / "small")
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "user" / "masks").mkdir(parents=True)
    (tmp_path / "user" / "masks" / "photo.png").write_bytes(b"the user's mask")
    (tmp_path / "file-images").mkdir()
    (tmp_path / "file-images" / "images").write_text("not a folder")
    generate_dir(tmp_path / "done", "--sample", "--train", "4", "--test", "2")
    (tmp_path / "done" / "p.png").write_bytes(b"the user's picture")
    argv = [a.format(tmp=tmp_path) for a in argv]
    line = assert_refused(capsys, main, argv, code, message, root=tmp_path)
    assert line.startswith("m2nist-gen: ")
