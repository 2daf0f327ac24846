"""fullfcn-train / -eval / -predict end to end on VOC: train, resume, evaluate, predict.

The bad inputs each command refuses are the table in ``test_bad_inputs.py``; training on
your own folder (``--data``) is ``test_cli_folder.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from fcnbase import is_partial
from fullfcn import cli
from fullfcn.voc import VOC_CLASSES, voc_palette
from tests.fullfcn.conftest import WIDTH


@pytest.fixture(scope="module")
def trained(tiny_voc: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three steps of FCN-32s, stopped after two and resumed for the third."""
    out = tmp_path_factory.mktemp("run")
    argv = ["--voc-root", str(tiny_voc), "--variant", "fcn32s", "--recipe", "modern",
            "--weights", "none", "--width-divisor", str(WIDTH), "--batch-size", "2",
            "--crop-size", "48", "--iterations", "3", "--out-dir", str(out), "--workers", "0",
            "--no-progress"]  # fmt: skip
    assert cli.train_main([*argv, "--stop-at", "2"]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=True)["iteration"] == 2
    assert cli.train_main([*argv, "--resume"]) == 0
    return out / "checkpoint.pt"


def test_train_eval_predict(
    trained: Path, voc_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = torch.load(trained, weights_only=True)
    assert saved["iteration"] == 3
    assert saved["classes"] == list(VOC_CLASSES) and saved["palette"] == voc_palette()
    metrics = tmp_path / "metrics.json"
    assert (
        cli.eval_main(
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
    assert cli.predict_main([str(image), "-o", str(mask_path), "--weights", str(trained)]) == 0
    mask = Image.open(mask_path)
    assert mask.mode == "P" and mask.size == (500, 281) and mask.getpalette() == voc_palette()
    assert Image.open(tmp_path / "pred" / "mask_overlay.png").size == (500, 281)
    # temporaries were renamed (is_partial: the very name rule create_temp uses)
    assert not [p for p in (tmp_path / "pred").iterdir() if is_partial(p.name)]

    # A second run replaces the mask only when asked, and then gives the same bytes.
    first = mask_path.read_bytes()
    mask_path.write_bytes(b"the user's edits")
    assert cli.predict_main([str(image), "-o", str(mask_path), "--weights", str(trained)]) == 1
    assert "mask.png exists (use --force" in capsys.readouterr().err
    assert mask_path.read_bytes() == b"the user's edits"
    argv = [str(image), "-o", str(mask_path), "--weights", str(trained), "--force"]
    assert cli.predict_main(argv) == 0
    assert mask_path.read_bytes() == first


def test_installed_entry_point_has_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "x.jpg"
    bad.write_text("nope")
    proc = subprocess.run(
        [Path(sys.executable).with_name("fullfcn-predict"), bad, "-o", tmp_path / "m.png"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"fullfcn-predict: error: {bad} is not an image PIL can read"
