"""Evaluation never scores a folder's pairs the net was trained on without saying so: the
checkpoint records the stems it trained on, and ``fullfcn-eval`` refuses a split that
shares any with them (after ``--val-fraction 0``, or pairs added to a seeded split); split
lists that overlap are refused before training."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fullfcn import cli
from fullfcn.folder import FolderError, SegmentationFolder, split_stems
from tests.fullfcn.conftest import WIDTH, make_folder

_TRAIN = ["--variant", "fcn32s", "--recipe", "modern", "--weights", "none",
          "--width-divisor", str(WIDTH), "--batch-size", "1", "--crop-size", "32",
          "--iterations", "1", "--workers", "0", "--no-progress", "--no-tensorboard",
          "--classes", "2"]  # fmt: skip


def _pairs(stems: list[str]) -> dict[str, tuple[Image.Image, Image.Image]]:
    mask = np.zeros((32, 40), np.uint8)
    mask[:, 20:] = 1
    return {
        s: (Image.new("RGB", (40, 32), (9 * i, 90, 30)), Image.fromarray(mask))
        for i, s in enumerate(stems)
    }


def _train(folder: Path, out: Path, *extra: str) -> Path:
    assert cli.train_main(["--data", str(folder), *_TRAIN, "--out-dir", str(out), *extra]) == 0
    return out / "checkpoint.pt"


def _eval(folder: Path, ckpt: Path, *extra: str) -> int:
    argv = ["--weights", str(ckpt), "--data", str(folder), "--classes", "2"]
    return cli.eval_main([*argv, "--workers", "0", "--no-progress", *extra])


def test_the_checkpoint_records_what_it_trained_on_and_eval_refuses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stems = [f"p{i}" for i in range(5)]
    folder = make_folder(tmp_path / "data", _pairs(stems))
    ckpt = _train(folder, tmp_path / "all", "--val-fraction", "0")  # everything trains
    assert torch.load(ckpt, weights_only=True)["trained_on"] == stems
    capsys.readouterr()
    assert _eval(folder, ckpt) == 1  # the default val split: trained on, every pair of it
    err = capsys.readouterr().err
    assert "1 of the 1 pairs of split 'val'" in err and "were trained on by" in err
    assert _eval(folder, ckpt, "--split", "train") == 0  # asked for: scored, and said
    assert "4 images, 4 of them trained on" in capsys.readouterr().out
    copy = shutil.copytree(folder, tmp_path / "copy")  # or another set with numbered stems
    assert _eval(copy, ckpt) == 0
    err = capsys.readouterr().err
    assert "fullfcn-eval: warning: 1 of the 1 pairs of split 'val'" in err
    assert f"have the stems of pairs {ckpt} was trained on in {folder.resolve()}" in err


def test_pairs_added_after_training_move_the_seeded_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stems = [f"p{i}" for i in range(5)]
    folder = make_folder(tmp_path / "data", _pairs(stems))
    ckpt = _train(folder, tmp_path / "run")
    trained = set(split_stems(stems, "train", 0.2, 0))
    assert _eval(folder, ckpt) == 0  # the same folder: the held-out pair, never trained on
    added = next(  # the fewest new pairs that bring a trained pair into the new val split
        n
        for n in range(1, 20)
        if trained & set(split_stems(stems + [f"q{i}" for i in range(n)], "val", 0.2, 0))
    )
    make_folder(folder, _pairs([f"q{i}" for i in range(added)]))
    capsys.readouterr()
    assert _eval(folder, ckpt) == 1
    assert "were trained on by" in capsys.readouterr().err


def test_overlapping_split_lists_are_refused(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, _pairs(["a", "b", "c"]))
    (folder / "train.txt").write_text("a\nb\n")
    (folder / "val.txt").write_text("b\nc\n")
    with pytest.raises(FolderError, match=r"train\.txt and .*val\.txt both list 'b' \(1 in all"):
        SegmentationFolder(folder, "train", num_classes=2)
