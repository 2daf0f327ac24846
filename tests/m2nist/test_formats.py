"""The course formats: ``kaggle-flat`` (top-level Kaggle files) and ``png`` (a folder of
images and index masks): their layout, their bytes, ``--force`` and ``--verify``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import m2nist
from m2nist.cli import main
from m2nist.params import Params
from m2nist.save import entry_of, load_arrays, write_dataset
from m2nist.verifier import verify
from tests.cli_table import assert_refused

from .conftest import SMALL, generate_dir


def _args(mnist_source: str, train: int, test: int, *more: str) -> list[str]:
    source = ["--sample"] if mnist_source == "sample" else ["--mnist-dir", mnist_source]
    return [*source, "--train", str(train), "--test", str(test), "--seed", "7", *more]


def test_kaggle_flat_loads_as_a_course_writes_it(tmp_path, mnist_source):
    """``np.load('combined.npy')`` at the top level; the last --test rows are the test split
    of the per-split Kaggle export (MNIST test digits only), the others its train split."""
    flat = generate_dir(
        tmp_path / "flat", *_args(mnist_source, 300, 120, "--format", "kaggle-flat")
    )
    split = generate_dir(tmp_path / "split", *_args(mnist_source, 300, 120, "--format", "kaggle"))
    combined = np.load(flat / "combined.npy")
    segmented = np.load(flat / "segmented.npy")
    assert combined.shape == (420, 64, 84) and combined.dtype == np.uint8
    assert segmented.shape == (420, 64, 84, 11) and segmented.dtype == np.uint8
    for name, array in (("combined", combined), ("segmented", segmented)):
        assert np.array_equal(array[-120:], np.load(split / "test" / f"{name}.npy"))
        assert np.array_equal(array[:-120], np.load(split / "train" / f"{name}.npy"))
    assert sorted(p.name for p in flat.iterdir()) == [
        "combined.npy",
        "metadata.json",
        "segmented.npy",
    ]
    meta = json.loads((flat / "metadata.json").read_text())
    assert meta["formats"] == ["kaggle-flat"]
    assert {s: v["images"] for s, v in meta["splits"].items()} == {"train": 300, "test": 120}
    assert verify(flat, regenerate="all") == []


def test_kaggle_flat_verify_catches_a_consistent_edit(tmp_path):
    out = generate_dir(tmp_path / "o", *SMALL, "--format", "kaggle-flat")
    combined = np.load(out / "combined.npy")
    ink = np.argwhere(combined[45] > 1)[0]  # a test row: they follow the 40 train rows
    combined[45][tuple(ink)] -= 1  # still ink: the one-hot still agrees
    np.save(out / "combined.npy", combined)
    meta = json.loads((out / "metadata.json").read_text())
    data = (out / "combined.npy").read_bytes()
    meta["files"]["combined.npy"] = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
    }
    (out / "metadata.json").write_text(json.dumps(meta))
    assert verify(out, regenerate="none") == []
    problems = verify(out, regenerate="all")
    assert len(problems) == 1 and "test rows 0-10: combined.npy differs" in problems[0]


def test_kaggle_flat_force_rules(tmp_path, capsys):
    out = generate_dir(tmp_path / "o", *SMALL, "--format", "kaggle-flat")
    argv = [str(out), *SMALL, "--format", "kaggle-flat", "--seed", "3"]
    assert_refused(capsys, main, argv, 1, "combined.npy exists (use --force", root=tmp_path)
    generate_dir(out, *SMALL, "--format", "npz", "--force")  # narrower: the flat files go
    assert sorted(p.name for p in out.iterdir()) == ["metadata.json", "test.npz", "train.npz"]
    assert verify(out) == []


def _png_pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "L"
        return np.asarray(im)


def test_png_folder_loads_back_equal_to_generate(tmp_path, mnist_source):
    out = generate_dir(tmp_path / "o", *_args(mnist_source, 70, 30, "--format", "png"))
    assert (out / "classes.txt").read_text().splitlines() == [*map(str, range(10)), "background"]
    stems = {
        split: (out / name).read_text().splitlines()
        for split, name in (("train", "train.txt"), ("test", "val.txt"))
    }
    assert stems["train"][:2] == ["train-000000", "train-000001"] and len(stems["train"]) == 70
    assert stems["test"][-1] == "test-000029" and len(stems["test"]) == 30
    for split, n in (("train", 70), ("test", 30)):
        want = m2nist.generate(n, split=split, seed=7, source=mnist_source)
        images = np.stack([_png_pixels(out / "images" / f"{s}.png") for s in stems[split]])
        masks = np.stack([_png_pixels(out / "masks" / f"{s}.png") for s in stems[split]])
        assert np.array_equal(images, want.images) and np.array_equal(masks, want.labels)
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(
        f"{s}.png" for s in stems["train"] + stems["test"]
    )
    assert verify(out, regenerate="all") == []


def test_png_bytes_are_reproducible_and_recorded(tmp_path):
    one = generate_dir(tmp_path / "one", *SMALL, "--format", "png", "--workers", "1")
    two = generate_dir(tmp_path / "two", *SMALL, "--format", "png", "--workers", "2")
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert len(files) == 2 * 50 + 4
    for rel in files:
        assert (one / rel).read_bytes() == (two / rel).read_bytes(), rel
    meta = json.loads((one / "metadata.json").read_text())
    digests = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (one / "masks").iterdir()
    }
    listing = "".join(f"{digests[n]}  {n}\n" for n in sorted(digests))  # sha256sum's output
    assert meta["files"]["masks/"] == {
        "sha256": hashlib.sha256(listing.encode()).hexdigest(),
        "bytes": sum((one / "masks" / n).stat().st_size for n in digests),
        "count": 50,
    }


def _rewrite_png(out: Path, name: str, change) -> None:
    """Change one PNG and fix up its folder's entry in metadata.json (a consistent edit)."""
    path = out / name
    pixels = _png_pixels(path).copy()
    change(pixels)
    Image.fromarray(pixels).save(path, format="PNG")
    folder = path.parent
    meta = json.loads((out / "metadata.json").read_text())
    meta["files"][f"{folder.name}/"] = entry_of(folder)
    (out / "metadata.json").write_text(json.dumps(meta))


def _rewrite_list(out: Path, name: str, text: bytes) -> None:
    """Replace a list file and fix up its entry in metadata.json (a consistent edit)."""
    (out / name).write_bytes(text)
    meta = json.loads((out / "metadata.json").read_text())
    meta["files"][name] = {"sha256": hashlib.sha256(text).hexdigest(), "bytes": len(text)}
    (out / "metadata.json").write_text(json.dumps(meta))


def _lighter(pixels: np.ndarray) -> None:
    pixels[tuple(np.argwhere(pixels > 1)[0])] -= 1


def _eleven(pixels: np.ndarray) -> None:
    pixels[pixels == 10] = 11


def _relabel(pixels: np.ndarray) -> None:
    pixels[pixels < 10] = (pixels[pixels < 10] + 1) % 10


#: Edits of a PNG folder -> the problem's words.
PNG_EDITS = {
    "changed": (lambda o: (o / "images" / "train-000003.png").write_bytes(b"x"), "a file changed"),
    "missing": (lambda o: (o / "masks" / "test-000001.png").unlink(), "count 49"),
    "extra": (lambda o: (o / "images" / "extra.png").write_bytes(b"x"), "not listed"),
    "list": (lambda o: _rewrite_list(o, "train.txt", b"train-000000\n"), "train.txt: not the"),
    # Consistent edits (the sha256s fixed up): only regeneration catches them.
    "mask value": (lambda o: _rewrite_png(o, "masks/train-000002.png", _eleven), "masks/*.png"),
    "relabelled": (lambda o: _rewrite_png(o, "masks/train-000002.png", _relabel), "masks/*.png"),
    "lighter": (lambda o: _rewrite_png(o, "images/test-000004.png", _lighter), "images/*.png"),
}


@pytest.mark.parametrize("edit", list(PNG_EDITS))
def test_png_verify_catches(tmp_path, edit):
    out = generate_dir(tmp_path / "o", *SMALL, "--format", "png")
    assert verify(out) == []
    change, problem = PNG_EDITS[edit]
    change(out)
    consistent = ("mask value", "relabelled", "lighter")
    assert (verify(out, regenerate="none") == []) is (edit in consistent)
    problems = verify(out)
    assert len(problems) >= 1 and problem in problems[0], problems


def test_png_force_rules(tmp_path, capsys):
    out = generate_dir(tmp_path / "o", *SMALL, "--format", "png")
    argv = [str(out), *SMALL, "--format", "png", "--seed", "1"]
    assert_refused(capsys, main, argv, 1, "exists (use --force", root=tmp_path)
    generate_dir(out, *argv[1:], "--force")  # the folders are replaced, not merged
    assert verify(out) == []
    assert len(list((out / "images").iterdir())) == 50
    (out / "masks" / "notes.txt").write_text("the user's")
    assert_refused(
        capsys, main, [*argv, "--force"], 1, "holds notes.txt, which no m2nist run", root=tmp_path
    )
    (out / "masks" / "notes.txt").unlink()
    generate_dir(out, *SMALL, "--force")  # narrower (npz): the PNG files and folders go
    assert sorted(p.name for p in out.iterdir()) == ["metadata.json", "test.npz", "train.npz"]


def test_png_interrupted_leaves_nothing_under_final_names(tmp_path, capsys, monkeypatch):
    from PIL import Image

    real, calls = Image.Image.save, []

    def interrupted(image, *args, **kwargs):  # Ctrl-C while the PNG files are being written
        calls.append(1)
        if len(calls) == 30:
            raise KeyboardInterrupt
        return real(image, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", interrupted)
    argv = [str(tmp_path / "o"), *SMALL, "--format", "png", "--workers", "1", "--quiet"]
    line = assert_refused(
        capsys, main, argv, 130, "interrupted", root=tmp_path, fresh=[tmp_path / "o"]
    )
    assert line == "m2nist-gen: interrupted; temporary files removed"
    assert list((tmp_path / "o").iterdir()) == []


def test_png_and_npz_together_agree(tmp_path):
    out = tmp_path / "o"
    params = Params()
    write_dataset(
        out,
        counts={"train": 12},
        seed=4,
        params=params,
        source="sample",
        formats=["npz", "png"],
    )
    assert (out / "val.txt").read_text() == "" and verify(out, regenerate="all") == []
    labels = load_arrays(out, "train").labels
    assert np.array_equal(_png_pixels(out / "masks" / "train-000011.png"), labels[11])


def test_a_leftover_temporary_folder_is_reported(tmp_path):
    out = generate_dir(tmp_path / "o", *SMALL, "--format", "png")
    leftover = out / ".images.0123456789ab.partial"
    leftover.mkdir()
    (leftover / "train-000000.png").write_bytes(b"half")
    problems = verify(out)
    assert problems == [
        f"{leftover / 'train-000000.png'}: leftover temporary file of an interrupted run"
    ]
