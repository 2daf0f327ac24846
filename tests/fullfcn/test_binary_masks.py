"""Binary masks stored as 0/255, the web's most common format: refused without
``--mask-values`` (where 255 would mean "ignore" and the score would be a perfect 1.0), and
trained, evaluated and predicted as two classes with it, the values kept in the checkpoint.

The folder is real ink: M2NIST's digits against their background, saved as 0/255 PNGs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fullfcn import cli
from fullfcn.folder import FolderError, SegmentationFolder
from m2nist import BACKGROUND
from tests.fullfcn.conftest import WIDTH

_TRAIN = ["--variant", "fcn32s", "--recipe", "modern", "--weights", "none",
          "--width-divisor", str(WIDTH), "--batch-size", "2", "--crop-size", "48",
          "--iterations", "6", "--workers", "0", "--no-progress", "--no-tensorboard"]  # fmt: skip


def binary_copy(m2nist_folder: Path, root: Path) -> Path:
    """``m2nist_folder`` with its masks as 0 (background) / 255 (digit) and no classes.txt."""
    shutil.copytree(m2nist_folder, root)
    (root / "classes.txt").unlink()
    for path in (root / "masks").iterdir():
        ink = np.asarray(Image.open(path)) != BACKGROUND
        Image.fromarray(np.where(ink, 255, 0).astype(np.uint8)).save(path)
    return root


@pytest.fixture(scope="module")
def binary(m2nist_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return binary_copy(m2nist_folder, tmp_path_factory.mktemp("binary") / "digits")


def test_zero_255_masks_are_refused_naming_the_flag(
    binary: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --mask-values, 255 would be "ignore": one class learnt, mean IU 1.0."""
    argv = ["--data", str(binary), "--classes", "2", *_TRAIN, "--out-dir", str(tmp_path / "r")]
    assert cli.train_main(argv) == 1
    err = capsys.readouterr().err
    assert "hold only 0 and 255, and 255 means ignore" in err and "--mask-values 0,255" in err
    assert not (tmp_path / "r").exists()


def test_mask_values_name_the_classes_and_remap_the_masks(binary: Path) -> None:
    data = SegmentationFolder(binary, "val", mask_values=(0, 255))
    assert data.classes == ("0", "255") and data.num_classes == 2
    _, mask = data[0]
    stored = np.asarray(Image.open(data.masks[0]))
    assert np.array_equal(np.asarray(mask), (stored == 255).astype(np.uint8))
    assert data.pixels[-1] == 0 and data.pixels.sum() == stored.size * len(data)  # none ignored
    with pytest.raises(FolderError, match=r"holds value 255, which --mask-values 0,7 does not"):
        SegmentationFolder(binary, "val", mask_values=(0, 7))


def test_a_binary_set_trains_evaluates_and_predicts_with_its_values(
    binary: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary_named = shutil.copytree(binary, tmp_path / "named")
    (binary_named / "classes.txt").write_text("background\ndigit\n")
    out = tmp_path / "run"
    argv = ["--data", str(binary_named), "--mask-values", "0,255", *_TRAIN, "--out-dir", str(out)]
    assert cli.train_main(argv) == 0
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    assert tuple(saved["mask_values"]) == (0, 255) and saved["classes"] == ["background", "digit"]

    report = tmp_path / "m.json"  # eval reads the masks as the checkpoint says, unasked
    argv = ["--weights", str(out / "checkpoint.pt"), "--data", str(binary_named), "--no-progress"]
    assert cli.eval_main([*argv, "--workers", "0", "--json", str(report)]) == 0
    val = [Image.open(binary / "masks" / f"{s}.png") for s in ("test-000000", "test-000001")]
    counted = sum(m.width * m.height for m in val)  # every pixel: none is "ignore" now
    metrics = json.loads(report.read_text())
    assert np.array(metrics["confusion"]).sum() == counted and metrics["ignored"] == 0
    out_text = capsys.readouterr().out
    assert f"{counted:,} labelled pixels counted, 0 ignored" in out_text

    image = binary / "images" / "test-000000.png"
    mask = tmp_path / "mask.png"
    assert (
        cli.predict_main([str(image), "-o", str(mask), "--weights", str(out / "checkpoint.pt")])
        == 0
    )
    assert set(np.unique(np.asarray(Image.open(mask))).tolist()) <= {0, 255}  # the set's values


def test_suspicious_labels_are_warned_about_before_training(
    binary: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A class no mask holds, or more ignored pixels than labelled: legal, said aloud."""
    assert SegmentationFolder(binary, "train", mask_values=(0, 255)).label_warnings() == []
    mostly_void = shutil.copytree(binary, tmp_path / "void")
    for path in (mostly_void / "masks").iterdir():  # the digits class 1, a stripe class 0
        mask = np.where(np.asarray(Image.open(path)) == 255, 1, 255).astype(np.uint8)
        mask[:2] = 0
        Image.fromarray(mask).save(path)
    notes = SegmentationFolder(mostly_void, "train", num_classes=3).label_warnings()
    assert len(notes) == 2 and "no mask holds class 2 (1 of 3)" in notes[0]
    assert "pixels are 255 (ignored), more than the" in notes[1]
    argv = ["--data", str(mostly_void), "--classes", "3", *_TRAIN, "--out-dir", str(tmp_path / "r")]
    assert cli.train_main([*argv, "--iterations", "1"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ", 1)[1] for line in err] == [f"warning: {n}" for n in notes]
