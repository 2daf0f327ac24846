"""MNIST sources: verification of IDX files, source resolution, the bundled sample."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from m2nist import mnist
from m2nist.mnist import MnistSourceError, idx_names, load_idx_folder, load_mnist, resolve_source

REPO = Path(__file__).resolve().parents[2]
NAMES = [*mnist.idx_names(True), *mnist.idx_names(False)]


def test_real_files_are_verified_by_md5(mnist_dir):
    split = load_idx_folder(mnist_dir, train=False)
    assert split.images.shape == (10000, 28, 28) and split.labels.shape == (10000,)
    assert {f["verified"] for f in split.source["files"].values()} == {"md5"}
    images, labels = load_mnist(True, mnist_dir)
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).min() > 5000


def _small_idx(folder: Path, n: int = 30, gz: bool = True) -> Path:
    """A valid, unofficial IDX set (n digits per split) made from the bundled sample."""
    folder.mkdir(parents=True, exist_ok=True)
    for train in (True, False):
        images, labels = load_mnist(train, "sample")
        img_name, lab_name = mnist.idx_names(train)
        head = np.array([2051, n, 28, 28], ">u4").tobytes()
        blobs = {
            img_name: head + images[:n].tobytes(),
            lab_name: np.array([2049, n], ">u4").tobytes() + labels[:n].tobytes(),
        }
        for name, blob in blobs.items():
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(blob, mtime=0))
            else:
                (folder / name).write_bytes(blob)
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_valid_unofficial_idx_is_accepted_by_header(tmp_path, gz):
    split = load_idx_folder(_small_idx(tmp_path, gz=gz), train=True)
    assert split.images.shape == (30, 28, 28)
    assert {f["verified"] for f in split.source["files"].values()} == {"header"}


def test_zlib_inflates_the_same_digits_where_isal_is_missing(tmp_path):
    """ISA-L is only a faster inflate: without it (no wheel for the platform) zlib reads the
    same gzipped IDX files to the same digits and checksums."""
    folder = _small_idx(tmp_path)
    code = (
        "import sys; sys.modules['isal'] = None\n"
        "from m2nist.mnist import load_idx_folder, zlib\n"
        f"split = load_idx_folder({str(folder)!r}, train=True)\n"
        "print(zlib.__name__, split.images.tobytes().hex(), split.source)"
    )
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    name, pixels, source = got.stdout.split(" ", 2)
    split = load_idx_folder(folder, train=True)
    assert name == "zlib"
    assert pixels == split.images.tobytes().hex() and source.strip() == str(split.source)


def _break(path: Path, how: str) -> None:
    data = gzip.decompress(path.read_bytes())
    if how == "truncated-gzip":
        path.write_bytes(path.read_bytes()[:-40])
    elif how == "corrupt-gzip":
        blob = bytearray(path.read_bytes())
        blob[20:30] = b"\xff" * 10
        path.write_bytes(bytes(blob))
    elif how == "short-data":
        path.write_bytes(gzip.compress(data[:-100]))
    elif how == "wrong-magic":
        path.write_bytes(gzip.compress(np.array([2049], ">u4").tobytes() + data[4:]))
    elif how == "empty":
        path.write_bytes(b"")


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("truncated-gzip", "truncated gzip"),
        ("corrupt-gzip", "corrupt gzip"),
        ("short-data", "truncated: header says 30 images"),
        ("wrong-magic", "not an MNIST images file"),
        ("empty", "truncated, only 0 bytes"),
    ],
)
def test_broken_files_give_one_line_naming_file_and_problem(tmp_path, how, message):
    folder = _small_idx(tmp_path)
    bad = folder / "train-images-idx3-ubyte.gz"
    _break(bad, how)
    with pytest.raises(MnistSourceError) as err:
        load_idx_folder(folder, train=True)
    text = str(err.value)
    assert message in text and str(bad) in text and "\n" not in text


def test_missing_file_and_missing_folder(tmp_path):
    folder = _small_idx(tmp_path / "m")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MnistSourceError, match="missing t10k-labels-idx1-ubyte"):
        load_idx_folder(folder, train=False)
    with pytest.raises(MnistSourceError, match="does not exist"):
        load_idx_folder(tmp_path / "nowhere", train=False)


def test_resolution_order(monkeypatch, tmp_path):
    def no_network():
        raise AssertionError("must not download")

    monkeypatch.setattr(mnist, "download_raw_dir", no_network)
    monkeypatch.setenv("M2NIST_MNIST_DIR", str(tmp_path / "env"))
    assert resolve_source(None) == tmp_path / "env"
    assert resolve_source("sample") == "sample"
    assert resolve_source(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("M2NIST_MNIST_DIR")
    monkeypatch.setenv("M2NIST_HOME", str(tmp_path / "home"))
    raw = _small_idx(tmp_path / "home" / "MNIST" / "raw")
    assert resolve_source(None) == raw  # torchvision cache already populated


def test_no_source_error_lists_every_option(monkeypatch, tmp_path):
    def offline():
        raise OSError("network is unreachable")

    monkeypatch.setattr(mnist, "download_raw_dir", offline)
    monkeypatch.delenv("M2NIST_MNIST_DIR", raising=False)
    monkeypatch.setenv("M2NIST_HOME", str(tmp_path / "empty"))
    with pytest.raises(MnistSourceError) as err:
        load_mnist(True)
    text = str(err.value)
    for option in (
        "network is unreachable",
        "--mnist-dir",
        "M2NIST_MNIST_DIR",
        "--sample",
        "M2NIST_HOME",
        str(tmp_path / "empty"),
    ):
        assert option in text


def test_bundled_sample_is_real_small_and_has_both_splits(mnist_dir):
    path = mnist.sample_path()
    assert path.stat().st_size <= 1_000_000
    with np.load(path) as npz:
        for split, train in (("train", True), ("test", False)):
            images, labels = load_mnist(train, mnist_dir)
            index = npz[f"{split}_indices"]
            assert np.array_equal(npz[f"{split}_images"], images[index])
            assert np.array_equal(npz[f"{split}_labels"], labels[index])
            assert set(np.unique(npz[f"{split}_labels"])) == set(range(10))
    provenance = (path.parent / "PROVENANCE.md").read_text()
    assert "CC BY-SA 3.0" in provenance and "LeCun" in provenance


def test_sample_script_reproduces_committed_bytes(mnist_dir, tmp_path):
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "make_mnist_sample.py"),
            "--mnist-dir",
            str(mnist_dir),
            "--out",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    for name in ("mnist_sample.npz", "PROVENANCE.md"):
        assert (tmp_path / name).read_bytes() == (REPO / "m2nist" / "data" / name).read_bytes()


@pytest.mark.xdist_group("wheel")
@pytest.mark.slow
def test_wheel_contains_the_sample_and_the_pretrained_nets(tmp_path):
    """Build the wheel from a copy of the project (the checkout stays untouched)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in os.listdir(REPO):
        if name in (
            "pyproject.toml",
            "README.md",
            "LICENSE",
            "fcnbase",
            "m2nist",
            "tinyfcn",
            "fullfcn",
        ):
            copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy
            copy(REPO / name, src / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "m2nist/data/PROVENANCE.md" in names
        weights = {f"tinyfcn/weights/{v}.pt" for v in ("fcn4s", "fcn2s", "fcn1s", "article")}
        assert weights | {"tinyfcn/weights/provenance.json", "fcnbase/cli.py"} <= set(names)
        page = {f"tinyfcn/play_static/{f}" for f in ("index.html", "play.js", "play.css")}
        assert page <= set(names)  # tinyfcn-play's page
        sample = zf.read("m2nist/data/mnist_sample.npz")
    assert sample == mnist.sample_path().read_bytes()


def test_swapped_mnist_files_are_refused(tmp_path, mnist_dir):
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    for train_name, test_name in zip(idx_names(True), idx_names(False), strict=True):
        (swapped / f"{train_name}.gz").symlink_to(mnist_dir / f"{test_name}.gz")
        (swapped / f"{test_name}.gz").symlink_to(mnist_dir / f"{train_name}.gz")
    with pytest.raises(MnistSourceError, match=r"original t10k-images-idx3-ubyte .* not train"):
        load_idx_folder(swapped, train=True)
