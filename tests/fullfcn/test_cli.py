"""fullfcn-train / -eval / -predict end to end, and one clear line for bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image

from fullfcn import evaluate, predict, train
from fullfcn.model import build
from fullfcn.pytorch_fcn import to_pytorch_fcn
from tests.fullfcn.conftest import WIDTH


@pytest.fixture(scope="module")
def trained(tiny_voc: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    rc = train.main(
        [
            "--voc-root",
            str(tiny_voc),
            "--variant",
            "fcn32s",
            "--recipe",
            "modern",
            "--weights",
            "none",
            "--width-divisor",
            str(WIDTH),
            "--batch-size",
            "2",
            "--crop-size",
            "48",
            "--iterations",
            "3",
            "--stop-at",
            "2",
            "--out-dir",
            str(out),
            "--workers",
            "0",
            "--no-progress",
        ]
    )
    assert rc == 0
    assert torch.load(out / "checkpoint.pt", weights_only=True)["iteration"] == 2
    rc = train.main(
        [
            "--voc-root",
            str(tiny_voc),
            "--variant",
            "fcn32s",
            "--recipe",
            "modern",
            "--weights",
            "none",
            "--width-divisor",
            str(WIDTH),
            "--batch-size",
            "2",
            "--crop-size",
            "48",
            "--iterations",
            "3",
            "--resume",
            "--out-dir",
            str(out),
            "--workers",
            "0",
            "--no-progress",
        ]
    )
    assert rc == 0
    return out / "checkpoint.pt"


def test_train_eval_predict(
    trained: Path, voc_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert torch.load(trained, weights_only=True)["iteration"] == 3
    metrics = tmp_path / "metrics.json"
    assert (
        evaluate.main(
            [
                "--weights",
                str(trained),
                "--voc-root",
                str(voc_root),
                "--split",
                "val",
                "--workers",
                "0",
                "--no-progress",
                "--json",
                str(metrics),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "fcn32s on val (1 images" in out and "aeroplane" in out
    assert set(json.loads(metrics.read_text())) >= {"mean_iou", "fw_iou", "iou"}

    image = voc_root / "VOC2012" / "JPEGImages" / "2007_000032.jpg"
    mask_path = tmp_path / "pred" / "mask.png"
    assert predict.main([str(image), "-o", str(mask_path), "--weights", str(trained)]) == 0
    mask = Image.open(mask_path)
    assert mask.mode == "P" and mask.size == (500, 281)
    assert Image.open(tmp_path / "pred" / "mask_overlay.png").size == (500, 281)
    assert not list((tmp_path / "pred").glob(".*tmp*"))  # temporary names were renamed


@pytest.mark.parametrize(
    "cli, args, message",
    [
        (train.main, ["--voc-root", "{missing}"], "VOC root .* is not a directory"),
        (train.main, ["--voc-root", "{empty}", "--weights", "none"], "no PASCAL VOC 2012 found"),
        (
            evaluate.main,
            ["--weights", "{ckpt32}", "--variant", "fcn8s", "--voc-root", "{voc}"],
            "holds a fcn32s model, not fcn8s",
        ),
        (
            evaluate.main,
            ["--weights", "{ckpt32}", "--voc-root", "{empty}"],
            "no PASCAL VOC 2012 found",
        ),
        (predict.main, ["{text}", "-o", "{out}"], "is not an image"),
        (predict.main, ["{missing}", "-o", "{out}"], "not found"),
        (predict.main, ["{text}", "-o", "{out}", "--weights", "{text}"], "is not an image"),
        (
            predict.main,
            ["{image}", "-o", "{out}", "--weights", "{text}"],
            "notes.txt is not a PyTorch weights file",
        ),
        (
            train.main,
            [
                "--voc-root",
                "{voc}",
                "--weights",
                "none",
                "--out-dir",
                "{junkrun}",
                "--resume",
                "--no-progress",
            ],
            "checkpoint.pt is not a PyTorch weights file",
        ),
    ],
)
def test_bad_input_gets_one_line(
    cli: Callable[[list[str]], int],
    args: list[str],
    message: str,
    tmp_path: Path,
    tiny_voc: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not an image")
    Image.new("RGB", (40, 30)).save(tmp_path / "photo.png")
    (tmp_path / "junkrun").mkdir()
    (tmp_path / "junkrun" / "checkpoint.pt").write_text("not a checkpoint")
    ckpt = tmp_path / "fcn32s_from_caffe.pth"
    torch.save(to_pytorch_fcn(build("fcn32s", width_divisor=WIDTH)), ckpt)
    paths = {
        "missing": tmp_path / "missing",
        "empty": tmp_path / "empty",
        "text": tmp_path / "notes.txt",
        "out": tmp_path / "o.png",
        "ckpt32": ckpt,
        "voc": tiny_voc,
        "image": tmp_path / "photo.png",
        "junkrun": tmp_path / "junkrun",
    }
    assert cli([a.format(**paths) for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fullfcn-") and ": error: " in err[0], err
    assert re.search(message, err[0]), err[0]


def test_installed_entry_point_has_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "x.jpg"
    bad.write_text("nope")
    proc = subprocess.run(
        [sys.executable, "-m", "fullfcn.predict", str(bad), "-o", str(tmp_path / "m.png")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"fullfcn-predict: error: {bad} is not an image PIL can read"
