"""fullfcn-train / -eval / -predict on your own folder (``--data``), end to end.

Two folders: the genuine VOC pairs with re-coloured palette masks, and M2NIST with index
masks (background = 10, not 0). Each is trained a few steps at reduced width, staged on
to FCN-16s, evaluated and segmented with the class names and palette the checkpoint stores.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fullfcn import cli
from fullfcn.folder import SegmentationFolder
from fullfcn.voc import VOC_CLASSES, voc_palette
from m2nist import CLASS_NAMES
from tests.fullfcn.conftest import FOLDER_PALETTE, WIDTH

#: folder fixture -> (class names, the palette predict must write)
FOLDERS = {
    "voc_folder": (list(VOC_CLASSES), FOLDER_PALETTE),
    "m2nist_folder": (list(CLASS_NAMES), voc_palette()),
}
_TRAIN = ["--recipe", "modern", "--weights", "none", "--width-divisor", str(WIDTH),
          "--batch-size", "2", "--crop-size", "48", "--workers", "0", "--no-progress",
          "--no-tensorboard"]  # fmt: skip


@pytest.fixture(scope="module", params=sorted(FOLDERS))
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder: Path = request.getfixturevalue(request.param)
    out = tmp_path_factory.mktemp("run")
    argv = ["--data", str(folder), "--variant", "fcn32s", "--iterations", "8", *_TRAIN]
    assert cli.train_main([*argv, "--out-dir", str(out / "fcn32s")]) == 0
    return {"name": request.param, "folder": folder, "out": out}


def test_train_counts_the_pairs_and_the_loss_falls(
    run: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    with (run["out"] / "fcn32s" / "log.csv").open() as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    assert len(losses) == 8
    assert sum(losses[-3:]) / 3 < losses[0]
    saved = torch.load(run["out"] / "fcn32s" / "checkpoint.pt", weights_only=True)
    names, palette = FOLDERS[run["name"]]
    assert saved["classes"] == names and saved["palette"] == palette
    assert saved["model"]["score_fr.bias"].shape == (len(names),)


def test_staged_training_keeps_the_folder(run: dict, capsys: pytest.CaptureFixture[str]) -> None:
    parent = run["out"] / "fcn32s" / "checkpoint.pt"
    argv = ["--data", str(run["folder"]), "--variant", "fcn16s", "--iterations", "1", *_TRAIN]
    assert (
        cli.train_main([*argv, "--init-from", str(parent), "--out-dir", str(run["out"] / "16")])
        == 0
    )
    n_train = len(SegmentationFolder(run["folder"], "train"))
    n_val = len(SegmentationFolder(run["folder"], "val"))
    out = capsys.readouterr().out
    classes = len(FOLDERS[run["name"]][0])
    assert f"training on {n_train} pairs ({classes} classes), validation on {n_val} pair" in out
    saved = torch.load(run["out"] / "16" / "checkpoint.pt", weights_only=True)
    assert saved["variant"] == "fcn16s" and saved["classes"] == FOLDERS[run["name"]][0]


def test_eval_counts_exactly_the_labelled_pixels(
    run: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "metrics.json"
    ckpt = run["out"] / "fcn32s" / "checkpoint.pt"
    argv = ["--weights", str(ckpt), "--data", str(run["folder"]), "--workers", "0"]
    assert cli.eval_main([*argv, "--no-progress", "--json", str(report)]) == 0
    masks = [np.asarray(Image.open(p)) for p in SegmentationFolder(run["folder"], "val").masks]
    labelled = sum(int((m != 255).sum()) for m in masks)
    metrics = json.loads(report.read_text())
    names = FOLDERS[run["name"]][0]
    assert metrics["split"] == "val" and metrics["classes"] == names
    confusion = np.array(metrics["confusion"])
    assert confusion.shape == (len(names), len(names)) and confusion.sum() == labelled
    truth = np.bincount(np.concatenate([m[m != 255].ravel() for m in masks]), minlength=len(names))
    assert np.array_equal(confusion.sum(1), truth)  # row c: the pixels labelled c
    out = capsys.readouterr().out
    assert f"{labelled:,} labelled pixels" in out
    assert all(f"  {name}" in out for name in names)  # per-class IoU under the folder's names


def test_predict_writes_the_folders_palette(run: dict, tmp_path: Path) -> None:
    ckpt = run["out"] / "fcn32s" / "checkpoint.pt"
    image = sorted((run["folder"] / "images").iterdir())[0]
    mask_path = tmp_path / "mask.png"
    assert cli.predict_main([str(image), "-o", str(mask_path), "--weights", str(ckpt)]) == 0
    mask = Image.open(mask_path)
    assert mask.mode == "P" and mask.size == Image.open(image).size
    assert mask.getpalette() == FOLDERS[run["name"]][1]
    assert (tmp_path / "mask_overlay.png").is_file()
