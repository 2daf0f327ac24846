"""fullfcn-train / -eval / -predict end to end, and the table of bad inputs each refuses."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fcnbase import is_partial
from fullfcn import cli
from fullfcn.builders import build
from fullfcn.pytorch_fcn import to_pytorch_fcn
from fullfcn.voc import colorize
from tests.cli_table import assert_refused, tree_state
from tests.fullfcn.conftest import WIDTH, make_folder, make_voc


@pytest.fixture(scope="module")
def trained(tiny_voc: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    rc = cli.train_main(
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
    rc = cli.train_main(
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
    assert mask.mode == "P" and mask.size == (500, 281)
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


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width x height`` with almost no pixel data: what a
    decompression bomb looks like to ``Image.open``, which reads only the header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grey
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    path.write_bytes(data + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))
    return path


def _bad_label_voc(root: Path, split: str, damage: Callable[[Path, Path], None]) -> Path:
    """A two-image VOC split whose every label ``damage(image, label)`` has spoiled."""
    make_voc(root, {split: 2})
    voc = root / "VOC2012"
    for image_id in (voc / "ImageSets/Segmentation" / f"{split}.txt").read_text().split():
        damage(
            voc / "JPEGImages" / f"{image_id}.jpg", voc / "SegmentationClass" / f"{image_id}.png"
        )
    return root


def _rgb_label(image: Path, label: Path) -> None:
    Image.open(label).convert("RGB").save(label)


def _other_palette(image: Path, label: Path) -> None:
    mask = Image.open(label)
    mask.putpalette([255 - v for v in mask.getpalette()])
    mask.save(label)


def _other_size(image: Path, label: Path) -> None:
    Image.open(label).resize((40, 30), Image.Resampling.NEAREST).save(label)


def _class_37(image: Path, label: Path) -> None:
    mask = np.array(Image.open(label))
    mask[:4, :4] = 37
    colorize(mask).save(label)


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every hostile input of the table, in one folder that no case may change."""
    root = tmp_path_factory.mktemp("bad")
    (root / "empty").mkdir()
    (root / "notes.txt").write_text("not an image")
    Image.new("RGB", (40, 30), (90, 120, 30)).save(root / "photo.png")
    Image.new("P", (40, 30)).save(root / "existing.png")
    Image.new("F", (8, 8)).save(root / "float.tif")
    png_header_only(root / "bomb.png", 30_000, 30_000)  # 900 MP: past PIL's bomb limit
    png_header_only(root / "big.png", 5_000, 4_000)  # 20 MP: past fullfcn's 16 MP limit
    thin32 = to_pytorch_fcn(build("fcn32s", width_divisor=WIDTH))
    torch.save(thin32, root / "fcn32s_from_caffe.pth")
    thin8 = dict(to_pytorch_fcn(build("fcn8s", width_divisor=WIDTH)))  # no metadata
    torch.save(thin8, root / "mine.pth")
    torch.save({"arch": "FCN8sAtOnce", "model_state_dict": thin8}, root / "trainer.pth.tar")
    torch.save({"arch": "FCN4s", "model_state_dict": thin8}, root / "badarch.pth.tar")
    ours = {"variant": "fcn32s", "width_divisor": WIDTH, "preprocess": "torchvision"}
    torch.save({"variant": "fcn32s"}, root / "nomodel.pt")
    torch.save({**ours, "model": dict(thin32), "width_divisor": 0}, root / "width0.pt")
    torch.save({**ours, "model": dict(thin32), "variant": "fcn4s"}, root / "fcn4s.pt")
    nobias = {k: v for k, v in thin32.items() if k != "score_fr.bias"}
    torch.save({**ours, "model": nobias}, root / "nobias.pt")
    for run in ("prevrun", "junkrun", "halfrun", "logonly"):
        (root / run).mkdir()
    (root / "prevrun" / "checkpoint.pt").write_bytes(b"a trained checkpoint")
    (root / "prevrun" / "log.csv").write_text("iteration,loss\n1,0.5\n")
    (root / "junkrun" / "checkpoint.pt").write_text("not a checkpoint")
    torch.save({"variant": "fcn32s", "width_divisor": WIDTH}, root / "halfrun" / "checkpoint.pt")
    (root / "logonly" / "log.csv").write_text("iteration,loss\n")
    _bad_label_voc(root / "rgb_voc", "train", _rgb_label)
    _bad_label_voc(root / "palette_voc", "val", _other_palette)
    _bad_label_voc(root / "size_voc", "val", _other_size)
    _bad_label_voc(root / "class_voc", "val", _class_37)
    thin11 = build("fcn32s", num_classes=11, width_divisor=WIDTH)
    torch.save({**ours, "model": thin11.state_dict()}, root / "classes11.pt")
    _bad_folders(root)
    return {p.name: p for p in root.iterdir()} | {"root": root, "missing": root / "missing"}


def _pair(size: tuple[int, int] = (40, 30), value: int = 1) -> tuple[Image.Image, Image.Image]:
    mask = np.zeros(size[::-1], np.uint8)
    mask[:, : size[0] // 2] = value
    return Image.new("RGB", size, (90, 120, 30)), Image.fromarray(mask, mode="L")


def _bad_folders(root: Path) -> None:
    """One --data folder per way a folder can be wrong, each with two pairs."""

    def folder(name: str) -> Path:
        return make_folder(root / name, {"a": _pair(), "b": _pair()})

    (folder("no_mask") / "masks" / "b.png").unlink()
    (folder("no_image") / "images" / "b.png").unlink()
    _pair((20, 30))[1].save(folder("size_folder") / "masks" / "b.png")
    _pair()[1].convert("RGB").save(folder("rgb_folder") / "masks" / "b.png")
    (folder("broken_image") / "images" / "b.png").write_text("not an image")
    _pair()[1].save(folder("jpg_mask") / "masks" / "b.jpg")
    (folder("no_val") / "train.txt").write_text("a\nb\n")
    (root / "no_val" / "val.txt").write_text("")
    (folder("listed") / "train.txt").write_text("a\nzzz\n")
    (root / "listed" / "val.txt").write_text("b\n")
    _pair(value=37)[1].save(folder("class_folder") / "masks" / "b.png")
    (root / "class_folder" / "classes.txt").write_text("\n".join("abcdefghijk"))
    (folder("named3") / "classes.txt").write_text("sky\nroad\ncar\n")
    folder("no_classes")
    (root / "no_dirs").mkdir()


_THIN = ["--width-divisor", str(WIDTH)]
_FAST = ["--weights", "none", *_THIN, "--recipe", "modern", "--batch-size", "1",
         "--crop-size", "32", "--iterations", "1", "--workers", "0", "--no-progress",
         "--no-tensorboard"]  # fmt: skip
_EVAL = ["--workers", "0", "--no-progress", "--split", "val"]

# (command, argv, exit status, message in the one stderr line, fresh outputs it may create)
# "{x}" is a path of the ``bad`` fixture, "{voc}" the genuine VOC pairs, "{new}" a fresh
# folder.
CASES: list[tuple[Callable[[Sequence[str] | None], int], list[str], int, str, list[str]]] = [
    # fullfcn-train: options, refused at parse time
    (cli.train_main, ["--voc-root", "{missing}"], 2, "is not a directory", []),
    (cli.train_main, ["--voc-root", "{voc}", "--lr", "nan"], 2, "expected a finite number", []),
    (cli.train_main, ["--voc-root", "{voc}", "--lr", "-1"], 2, "outside", []),
    (cli.train_main, ["--voc-root", "{voc}", "--momentum", "1.5"], 2, "outside", []),
    (cli.train_main, ["--voc-root", "{voc}", "--batch-size", "0"], 2, "outside", []),
    (cli.train_main, ["--voc-root", "{voc}", "--iterations", "1" + "0" * 30], 2, "outside", []),
    (cli.train_main, ["--voc-root", "{voc}", "--workers", "1000"], 2, "outside", []),
    (cli.train_main, ["--voc-root", "{voc}", "--width-divisor", "3"], 2, "invalid choice", []),
    (cli.train_main, ["--voc-root", "{voc}", "--seed", "x"], 2, "expected an integer", []),
    (cli.train_main, ["--voc-root", "{voc}", "--resume", "--force"], 2, "give one of them", []),
    # fullfcn-train: inputs and the output directory, refused before VGG16 is built
    (
        cli.train_main,
        ["--voc-root", "{empty}", *_FAST, "--out-dir", "{new}"],
        1,
        "no PASCAL VOC 2012 found",
        [],
    ),
    (
        cli.train_main,
        ["--voc-root", "{voc}", *_FAST, "--val-split", "nosuch", "--out-dir", "{new}"],
        1,
        "nosuch.txt not found",
        [],
    ),
    (
        cli.train_main,
        ["--voc-root", "{voc}", *_FAST, "--sbd-root", "{empty}", "--out-dir", "{new}"],
        1,
        "no SBD found",
        [],
    ),
    (
        cli.train_main,
        ["--voc-root", "{voc}", *_FAST, "--init-from", "{missing}", "--out-dir", "{new}"],
        1,
        "missing not found",
        [],
    ),
    (
        cli.train_main,
        ["--voc-root", "{voc}", *_FAST, "--out-dir", "{prevrun}"],
        1,
        "holds a previous run (checkpoint.pt, log.csv); use --resume",
        [],
    ),
    (
        cli.train_main,
        [
            "--voc-root",
            "{voc}",
            *_FAST,
            "--out-dir",
            "{prevrun}",
            "--force",
            "--init-from",
            "{prevrun}/checkpoint.pt",
        ],
        2,
        "is also an input",
        [],
    ),
    (
        cli.train_main,
        ["--voc-root", "{voc}", *_FAST, "--out-dir", "{logonly}", "--resume"],
        1,
        "no checkpoint.pt to continue",
        [],
    ),
    (
        cli.train_main,
        ["--voc-root", "{voc}", *_FAST, "--out-dir", "{junkrun}", "--resume"],
        1,
        "checkpoint.pt is not a PyTorch weights file",
        [],
    ),
    (
        cli.train_main,
        ["--voc-root", "{voc}", *_FAST, "--out-dir", "{halfrun}", "--resume"],
        1,
        "lacks 'model': not a complete fullfcn-train checkpoint",
        [],
    ),
    (
        cli.train_main,
        ["--voc-root", "{voc}", *_FAST, "--out-dir", "{notes.txt}"],
        1,
        "exists and is not a directory",
        [],
    ),
    (
        cli.train_main,
        ["--voc-root", "{voc}", *_FAST, "--device", "nosuch", "--out-dir", "{new}"],
        2,
        "not a torch device",
        [],
    ),
    # fullfcn-train: a label that is not a VOC label for its image (first batch)
    (
        cli.train_main,
        ["--voc-root", "{rgb_voc}", *_FAST, "--out-dir", "{new}"],
        1,
        "is a RGB image; VOC labels are palette images",
        ["{new}"],
    ),
    # fullfcn-train --data: options, then every way a folder can be wrong (nothing is built)
    (cli.train_main, ["--data", "{missing}"], 2, "data folder", []),
    (cli.train_main, ["--data", "{named3}", "--voc-root", "{voc}"], 2, "not allowed with", []),
    (cli.train_main, ["--voc-root", "{voc}", "--classes", "3"], 2, "are for --data", []),
    (cli.train_main, ["--data", "{named3}", "--classes", "256"], 2, "outside", []),
    (
        cli.train_main,
        ["--data", "{named3}", "--sbd-root", "{empty}", *_FAST, "--out-dir", "{new}"],
        2,
        "are for --voc-root",
        [],
    ),
    *[
        (
            cli.train_main,
            ["--data", "{" + folder + "}", *classes, *_FAST, "--out-dir", "{new}"],
            1,
            message,
            [],
        )
        for folder, classes, message in [
            ("no_dirs", ["--classes", "2"], "has no images/ folder"),
            ("no_mask", ["--classes", "2"], "images/b.png has no mask"),
            ("no_image", ["--classes", "2"], "masks/b.png has no image"),
            ("size_folder", ["--classes", "2"], "masks/b.png is 20x30, its image"),
            ("rgb_folder", ["--classes", "2"], "is a RGB image, not a palette or index PNG"),
            ("broken_image", ["--classes", "2"], "images/b.png is not an image PIL can read"),
            ("jpg_mask", ["--classes", "2"], "masks/b.jpg is not a .png"),
            ("no_val", ["--classes", "2"], "split 'val' of"),
            ("listed", ["--classes", "2"], "train.txt lists 'zzz', which has no image"),
            ("class_folder", [], "b.png holds class 37, but the folder has 11 classes"),
            ("named3", ["--classes", "5"], "classes.txt names 3 classes, but --classes says 5"),
            ("no_classes", [], "has no classes.txt: give --classes N"),
        ]
    ],
    (
        cli.train_main,
        ["--data", "{named3}", *_FAST, "--init-from", "{classes11.pt}", "--out-dir", "{new}"],
        1,
        "scores 11 classes, the fcn32s to train 3: staged training keeps the classes",
        [],
    ),
    # fullfcn-eval --data
    (
        cli.eval_main,
        ["--weights", "{fcn32s_from_caffe.pth}", "--data", "{named3}", *_EVAL],
        1,
        "scores 21 classes",
        [],
    ),
    (
        cli.eval_main,
        ["--weights", "{fcn32s_from_caffe.pth}", "--data", "{no_val}", *_EVAL],
        1,
        "split 'val' of",
        [],
    ),
    (
        cli.eval_main,
        ["--weights", "{fcn32s_from_caffe.pth}", "--data", "{named3}", "--download"],
        2,
        "does not go with --data",
        [],
    ),
    # fullfcn-eval
    (
        cli.eval_main,
        ["--weights", "{fcn32s_from_caffe.pth}", "--variant", "fcn8s", "--voc-root", "{voc}"],
        1,
        "holds a fcn32s model, not fcn8s",
        [],
    ),
    (
        cli.eval_main,
        ["--weights", "{mine.pth}", "--voc-root", "{voc}"],
        1,
        "give --variant fcn8s or --variant fcn8s_atonce",
        [],
    ),
    (
        cli.eval_main,
        ["--weights", "{trainer.pth.tar}", "--variant", "fcn8s", "--voc-root", "{voc}"],
        1,
        "holds a fcn8s_atonce model, not fcn8s",
        [],
    ),
    (
        cli.eval_main,
        ["--weights", "{badarch.pth.tar}", "--voc-root", "{voc}"],
        1,
        "arch 'FCN4s' is not one of",
        [],
    ),
    (
        cli.eval_main,
        ["--weights", "{nomodel.pt}", "--voc-root", "{voc}"],
        1,
        "nomodel.pt lacks 'model'",
        [],
    ),
    (
        cli.eval_main,
        ["--weights", "{width0.pt}", "--voc-root", "{voc}"],
        1,
        "width_divisor 0 is not one of",
        [],
    ),
    (
        cli.eval_main,
        ["--weights", "{fcn4s.pt}", "--voc-root", "{voc}"],
        1,
        "variant 'fcn4s' is not one of",
        [],
    ),
    (
        cli.eval_main,
        ["--weights", "{nobias.pt}", "--voc-root", "{voc}"],
        1,
        "nobias.pt lacks score_fr.bias",
        [],
    ),
    (
        cli.eval_main,
        ["--weights", "{notes.txt}", "--voc-root", "{voc}"],
        1,
        "is not a PyTorch weights file",
        [],
    ),
    (
        cli.eval_main,
        ["--weights", "{fcn32s_from_caffe.pth}", "--voc-root", "{empty}"],
        1,
        "no PASCAL VOC 2012 found",
        [],
    ),
    (
        cli.eval_main,
        ["--weights", "{fcn32s_from_caffe.pth}", "--voc-root", "{voc}", "--json", "{existing.png}"],
        1,
        "existing.png exists (use --force",
        [],
    ),
    (
        cli.eval_main,
        [
            "--weights",
            "{fcn32s_from_caffe.pth}",
            "--voc-root",
            "{voc}",
            "--json",
            "{fcn32s_from_caffe.pth}",
            "--force",
        ],
        2,
        "is also an input",
        [],
    ),
    (
        cli.eval_main,
        ["--weights", "{fcn32s_from_caffe.pth}", "--voc-root", "{voc}", "--workers", "-1"],
        2,
        "outside",
        [],
    ),
    (
        cli.eval_main,
        ["--weights", "{fcn32s_from_caffe.pth}", "--voc-root", "{palette_voc}", *_EVAL],
        1,
        "does not use the VOC palette",
        [],
    ),
    (
        cli.eval_main,
        ["--weights", "{fcn32s_from_caffe.pth}", "--voc-root", "{size_voc}", *_EVAL],
        1,
        "is 40x30, its image 96x72",
        [],
    ),
    (
        cli.eval_main,
        [
            "--weights",
            "{fcn32s_from_caffe.pth}",
            "--voc-root",
            "{class_voc}",
            *_EVAL,
            "--workers",
            "1",
        ],
        1,
        "holds class 37: VOC classes are 0..20",
        [],
    ),
    # fullfcn-predict: outputs, checked before anything is decoded or loaded
    (
        cli.predict_main,
        ["{photo.png}", "-o", "{new}/m.png", "--overlay", "{photo.png}"],
        2,
        "photo.png is also an input",
        [],
    ),
    (cli.predict_main, ["{photo.png}", "-o", "{photo.png}", "--force"], 2, "is also an input", []),
    (
        cli.predict_main,
        [
            "{photo.png}",
            "-o",
            "{new}/m.png",
            "--weights",
            "{mine.pth}",
            "--overlay",
            "{mine.pth}",
            "--force",
        ],
        2,
        "mine.pth is also an input",
        [],
    ),
    (
        cli.predict_main,
        ["{photo.png}", "-o", "{new}/x.png", "--overlay", "{new}/x.png"],
        2,
        "is given as two different outputs",
        [],
    ),
    (
        cli.predict_main,
        ["{photo.png}", "-o", "{existing.png}"],
        1,
        "existing.png exists (use --force",
        [],
    ),
    (cli.predict_main, ["{photo.png}", "-o", "{new}/m.jpg"], 2, "must be a .png", []),
    (cli.predict_main, ["{photo.png}", "-o", "{new}/m.png", "--max-pixels", "0"], 2, "outside", []),
    # fullfcn-predict: hostile images
    (cli.predict_main, ["{notes.txt}", "-o", "{new}/m.png"], 1, "is not an image PIL can read", []),
    (cli.predict_main, ["{missing}", "-o", "{new}/m.png"], 1, "missing not found", []),
    (
        cli.predict_main,
        ["{bomb.png}", "-o", "{new}/m.png"],
        1,
        "refused as a decompression bomb",
        [],
    ),
    (
        cli.predict_main,
        ["{big.png}", "-o", "{new}/m.png"],
        1,
        "is 5000x4000 (20,000,000 pixels), more than the limit of 16,000,000",
        [],
    ),
    (
        cli.predict_main,
        ["{photo.png}", "-o", "{new}/m.png", "--max-pixels", "100"],
        1,
        "more than the limit of 100",
        [],
    ),
    (cli.predict_main, ["{float.tif}", "-o", "{new}/m.png"], 1, "floating-point pixels", []),
    (
        cli.predict_main,
        ["{photo.png}", "-o", "{new}/m.png", "--weights", "{notes.txt}"],
        1,
        "notes.txt is not a PyTorch weights file",
        [],
    ),
    (
        cli.predict_main,
        ["{photo.png}", "-o", "{new}/m.png", "--weights", "{mine.pth}"],
        1,
        "give --variant fcn8s or --variant fcn8s_atonce",
        [],
    ),
]


@pytest.mark.parametrize(
    "cli, argv, code, message, fresh",
    CASES,
    ids=[f"{i:02d}-{c[0].__module__.split('.')[-1]}" for i, c in enumerate(CASES)],
)
def test_bad_input_is_refused(
    cli: Callable[[Sequence[str] | None], int],
    argv: list[str],
    code: int,
    message: str,
    fresh: list[str],
    bad: dict[str, Path],
    voc_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Exit status, one stderr line naming the problem, and nothing changed in the inputs'
    folder (the photo, the weights, a previous run) or in the genuine VOC pairs."""
    paths = {**bad, "voc": voc_root, "new": tmp_path / "new"}
    voc_before = tree_state(voc_root)

    def fill(text: str) -> str:
        for name, path in paths.items():
            text = text.replace("{" + name + "}", str(path))
        return text

    assert_refused(capsys, cli, [fill(a) for a in argv], code, message, root=bad["root"],
                   fresh=[Path(fill(f)) for f in fresh])  # fmt: skip
    assert not (tmp_path / "new").exists() or fresh, "a refused run left an output behind"
    assert tree_state(voc_root) == voc_before


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
