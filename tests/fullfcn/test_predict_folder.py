"""``fullfcn-predict DIR -o OUT_DIR``: every image of a folder, one line per refused file,
nothing replaced without ``--force``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from fullfcn import cli
from fullfcn.builders import build
from fullfcn.predict import predict_folder
from fullfcn.pytorch_fcn import to_pytorch_fcn
from tests.fullfcn.conftest import WIDTH


def test_a_folder_of_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = tmp_path / "fcn32s_from_caffe.pth"
    torch.save(to_pytorch_fcn(build("fcn32s", width_divisor=WIDTH)), weights)
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.jpg", "b.png", "c.png"):
        Image.new("RGB", (40, 30), (90, 120, 30)).save(photos / name)
    (photos / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    out.mkdir()
    (out / "c.png").write_bytes(b"an earlier mask")
    argv = [str(photos), "-o", str(out), "--weights", str(weights), "--device", "cpu"]

    assert cli.predict_main(argv) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and "2 of 4 files refused" in err[2]
    assert (
        err[0].startswith(f"fullfcn-predict: refused {photos / 'c.png'}: ") and "exists" in err[0]
    )
    assert err[1].startswith(f"fullfcn-predict: refused {photos / 'notes.txt'}: ")
    assert "not an image PIL can read" in err[1]
    assert (out / "c.png").read_bytes() == b"an earlier mask"
    for stem in "ab":
        assert Image.open(out / f"{stem}.png").size == (40, 30)
        assert (out / f"{stem}_overlay.png").is_file()

    (photos / "notes.txt").unlink()
    assert cli.predict_main([*argv, "--force"]) == 0
    assert Image.open(out / "c.png").mode == "P"
    assert cli.predict_main([str(photos), "-o", str(tmp_path / "m.png")]) == 2


def test_predict_folder_from_python_goes_on_past_a_refused_file(tmp_path: Path) -> None:
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    Image.new("RGB", (40, 30), (90, 120, 30)).save(photos / "a.jpg")
    (photos / "b.txt").write_text("not an image")
    Image.new("RGB", (30, 20), (10, 20, 30)).save(photos / "c.png")
    model = build("fcn32s", width_divisor=WIDTH)
    results = list(predict_folder(model, photos, out, device="cpu"))
    assert [path.name for path, _, _ in results] == ["a.jpg", "b.txt", "c.png"]
    assert isinstance(results[1][2], ValueError)
    for _, (mask, overlay), found in (results[0], results[2]):
        assert isinstance(found, list) and mask.is_file() and overlay.is_file()
    assert Image.open(out / "c.png").size == (30, 20)
