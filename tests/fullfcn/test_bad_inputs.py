"""The table of bad inputs fullfcn-train, -eval and -predict refuse, and the inputs it names.

Each case: exit status, one stderr line naming the problem (never a traceback), and
nothing changed in the inputs' folder (the photo, the weights, a previous run) or in the
genuine VOC pairs (``tests/cli_table.assert_refused``). The inputs are made once, by
:func:`make_bad_inputs`: photos a decoder must refuse, weights files that load but lie or
lack a key, previous runs in an output folder, VOC labels spoiled one way each, and
``--data`` folders wrong in each way a folder can be.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fullfcn import cli
from fullfcn.builders import build
from fullfcn.pytorch_fcn import to_pytorch_fcn
from fullfcn.voc import colorize
from tests.cli_table import assert_refused, tree_state
from tests.fullfcn.conftest import WIDTH, make_folder, make_voc


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


def _bad_label_voc(root: Path, split: str, damage: Callable[[Path], None]) -> None:
    """A two-image VOC split whose every label ``damage(label)`` has spoiled."""
    make_voc(root, {split: 2})
    voc = root / "VOC2012"
    for image_id in (voc / "ImageSets/Segmentation" / f"{split}.txt").read_text().split():
        damage(voc / "SegmentationClass" / f"{image_id}.png")


def _other_palette(label: Path) -> None:
    mask = Image.open(label)
    mask.putpalette([255 - v for v in mask.getpalette()])
    mask.save(label)


def _class_37(label: Path) -> None:
    mask = np.array(Image.open(label))
    mask[:4, :4] = 37
    colorize(mask).save(label)


def _weights(root: Path) -> None:
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
    thin11 = build("fcn32s", num_classes=11, width_divisor=WIDTH)
    torch.save({**ours, "model": thin11.state_dict()}, root / "classes11.pt")


def _runs(root: Path) -> None:
    for run in ("prevrun", "junkrun", "halfrun", "logonly"):
        (root / run).mkdir()
    (root / "prevrun" / "checkpoint.pt").write_bytes(b"a trained checkpoint")
    (root / "prevrun" / "log.csv").write_text("iteration,loss\n1,0.5\n")
    (root / "junkrun" / "checkpoint.pt").write_text("not a checkpoint")
    torch.save({"variant": "fcn32s", "width_divisor": WIDTH}, root / "halfrun" / "checkpoint.pt")
    (root / "logonly" / "log.csv").write_text("iteration,loss\n")


def _pair(size: tuple[int, int] = (40, 30), value: int = 1) -> tuple[Image.Image, Image.Image]:
    mask = np.zeros(size[::-1], np.uint8)
    mask[:, : size[0] // 2] = value
    return Image.new("RGB", size, (90, 120, 30)), Image.fromarray(mask, mode="L")


def _folders(root: Path) -> None:
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
    three = np.zeros((30, 40), np.uint8)
    three[:, 10:], three[:, 20:] = 1, 2
    for stem in "ab":  # every class occurs in each split
        Image.fromarray(three).save(root / "named3" / "masks" / f"{stem}.png")
    folder("no_classes")
    for stem in "ab":  # binary masks as the web stores them: 255 = object, not "ignore"
        _pair(value=255)[1].save(folder("binary") / "masks" / f"{stem}.png")
    (root / "no_dirs").mkdir()
    truncated = folder("truncated")  # in the validation split: it must fail before training
    (truncated / "images" / "b.png").unlink()
    noise = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(noise).save(jpeg := truncated / "images" / "b.jpg", quality=95)
    jpeg.write_bytes(jpeg.read_bytes()[:1500])  # the header reads, the pixels do not
    (truncated / "train.txt").write_text("a\n")
    (truncated / "val.txt").write_text("b\n")


def make_bad_inputs(root: Path) -> dict[str, Path]:
    """Write every hostile input under ``root``; returns them by name, plus ``root`` and
    ``missing`` (a path that does not exist)."""
    (root / "empty").mkdir()
    (root / "notes.txt").write_text("not an image")
    Image.new("RGB", (40, 30), (90, 120, 30)).save(root / "photo.png")
    Image.new("P", (40, 30)).save(root / "existing.png")
    Image.new("F", (8, 8)).save(root / "float.tif")
    png_header_only(root / "bomb.png", 30_000, 30_000)  # 900 MP: past PIL's bomb limit
    png_header_only(root / "big.png", 5_000, 4_000)  # 20 MP: past fullfcn's 16 MP limit
    _weights(root)
    _runs(root)
    _bad_label_voc(root / "rgb_voc", "train", lambda p: Image.open(p).convert("RGB").save(p))
    _bad_label_voc(root / "palette_voc", "val", _other_palette)
    _bad_label_voc(
        root / "size_voc",
        "val",
        lambda p: Image.open(p).resize((40, 30), Image.Resampling.NEAREST).save(p),
    )
    _bad_label_voc(root / "class_voc", "val", _class_37)
    _folders(root)
    return {p.name: p for p in root.iterdir()} | {"root": root, "missing": root / "missing"}


Main = Callable[[Sequence[str] | None], int]
#: (command, argv, exit status, message in the one stderr line, fresh outputs it may create)
Case = tuple[Main, list[str], int, str, list[str]]


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every hostile input of the table, in one folder that no case may change."""
    return make_bad_inputs(tmp_path_factory.mktemp("bad"))


def _rows(main: Main, code: int, rows: list[tuple[list[str], str]], *tail: str) -> list[Case]:
    """``main(argv + tail)`` exits ``code`` with ``message``, for each ``(argv, message)``."""
    return [(main, [*argv, *tail], code, message, []) for argv, message in rows]


_FAST = ["--weights", "none", "--width-divisor", str(WIDTH), "--recipe", "modern",
         "--batch-size", "1", "--crop-size", "32", "--iterations", "1", "--workers", "0",
         "--no-progress", "--no-tensorboard"]  # fmt: skip
_VOC = ["--voc-root", "{voc}"]
_W32 = ["--weights", "{fcn32s_from_caffe.pth}"]
_EVAL = ["--workers", "0", "--no-progress", "--split", "val"]
_OUT = ["-o", "{new}/m.png"]

# "{x}" is a path of the ``bad`` fixture, "{voc}" the genuine VOC pairs, "{new}" a fresh
# folder.
BAD_INPUTS: list[Case] = [
    # fullfcn-train: options, refused at parse time
    *_rows(
        cli.train_main,
        2,
        [
            (["--voc-root", "{missing}"], "is not a directory"),
            ([*_VOC, "--lr", "nan"], "expected a finite number"),
            ([*_VOC, "--lr", "-1"], "outside"),
            ([*_VOC, "--momentum", "1.5"], "outside"),
            ([*_VOC, "--batch-size", "0"], "outside"),
            ([*_VOC, "--iterations", "1" + "0" * 30], "outside"),
            ([*_VOC, "--workers", "1000"], "outside"),
            ([*_VOC, "--width-divisor", "3"], "invalid choice"),
            ([*_VOC, "--seed", "x"], "expected an integer"),
            ([*_VOC, "--resume", "--force"], "give one of them"),
            ([*_VOC, "--classes", "3"], "are for --data"),
            ([*_VOC, "--mask-values", "0,255"], "are for --data"),
            (["--data", "{binary}", "--mask-values", "0,0"], "must be distinct, 0..255"),
            (["--data", "{binary}", "--mask-values", "0,x"], "not a list of integers"),
            (["--data", "{missing}"], "data folder"),
            (["--data", "{named3}", *_VOC], "not allowed with"),
            (["--data", "{named3}", "--classes", "256"], "outside"),
        ],
    ),
    # fullfcn-train: inputs and the output directory, refused before VGG16 is built
    *_rows(
        cli.train_main,
        1,
        [
            (["--voc-root", "{empty}", "--out-dir", "{new}"], "no PASCAL VOC 2012 found"),
            ([*_VOC, "--val-split", "nosuch", "--out-dir", "{new}"], "nosuch.txt not found"),
            ([*_VOC, "--sbd-root", "{empty}", "--out-dir", "{new}"], "no SBD found"),
            ([*_VOC, "--init-from", "{missing}", "--out-dir", "{new}"], "missing not found"),
            (
                [*_VOC, "--out-dir", "{prevrun}"],
                "holds a previous run (checkpoint.pt, log.csv); use --resume",
            ),
            ([*_VOC, "--out-dir", "{logonly}", "--resume"], "no checkpoint.pt to continue"),
            (
                [*_VOC, "--out-dir", "{junkrun}", "--resume"],
                "checkpoint.pt is not a PyTorch weights file",
            ),
            (
                [*_VOC, "--out-dir", "{halfrun}", "--resume"],
                "lacks 'model': not a complete fullfcn-train checkpoint",
            ),
            ([*_VOC, "--out-dir", "{notes.txt}"], "exists and is not a directory"),
        ],
        *_FAST,
    ),
    *_rows(
        cli.train_main,
        2,
        [
            (
                [
                    *_VOC,
                    "--out-dir",
                    "{prevrun}",
                    "--force",
                    "--init-from",
                    "{prevrun}/checkpoint.pt",
                ],
                "is also an input",
            ),
            ([*_VOC, "--device", "nosuch", "--out-dir", "{new}"], "not a torch device"),
            (
                ["--data", "{named3}", "--sbd-root", "{empty}", "--out-dir", "{new}"],
                "are for --voc-root",
            ),
        ],
        *_FAST,
    ),
    # fullfcn-train: a label that is not a VOC label for its image (first batch)
    (
        cli.train_main,
        ["--voc-root", "{rgb_voc}", *_FAST, "--out-dir", "{new}"],
        1,
        "is a RGB image; VOC labels are palette images",
        ["{new}"],
    ),
    # fullfcn-train --data: every way a folder can be wrong, refused before anything is built
    *_rows(
        cli.train_main,
        1,
        [
            (
                ["--data", "{no_dirs}", "--classes", "2"],
                "has no images/ and masks/ folders: expected DIR/images/",
            ),
            (["--data", "{no_mask}", "--classes", "2"], "images/b.png has no mask"),
            (["--data", "{no_image}", "--classes", "2"], "masks/b.png has no image"),
            (["--data", "{size_folder}", "--classes", "2"], "masks/b.png is 20x30, its image"),
            (
                ["--data", "{rgb_folder}", "--classes", "2"],
                "is a RGB image, not a palette or index PNG",
            ),
            (
                ["--data", "{broken_image}", "--classes", "2"],
                "images/b.png is not an image PIL can read",
            ),
            (["--data", "{jpg_mask}", "--classes", "2"], "masks/b.jpg is not a .png"),
            (["--data", "{no_val}", "--classes", "2"], "split 'val' of"),
            (["--data", "{listed}", "--classes", "2"], "train.txt lists 'zzz', which has no image"),
            (["--data", "{class_folder}"], "b.png holds class 37, but the folder has 11 classes"),
            (
                ["--data", "{named3}", "--classes", "5"],
                "classes.txt names 3 classes, but --classes says 5",
            ),
            (["--data", "{no_classes}"], "has no classes.txt: give --classes N"),
            (
                ["--data", "{named3}", "--images", "photos", "--masks", "masks"],
                "photos is not a directory (expected DIR/images/",
            ),
            (["--data", "{named3}", "--images", "images"], "give both --images and --masks"),
            (
                ["--data", "{truncated}", "--classes", "2"],
                "images/b.jpg is not an image PIL can read",
            ),
            (
                ["--data", "{binary}", "--classes", "2"],
                "binary masks (0 background, 255 object) give --mask-values 0,255",
            ),
            (
                ["--data", "{binary}", "--mask-values", "0,1"],
                "holds value 255, which --mask-values 0,1 does not list",
            ),
            (
                ["--data", "{binary}", "--mask-values", "0,255", "--classes", "3"],
                "--mask-values names 2 classes, but --classes says 3",
            ),
            (
                ["--data", "{named3}", "--init-from", "{classes11.pt}"],
                "scores 11 classes, the fcn32s to train 3: staged training keeps the classes",
            ),
        ],
        *_FAST,
        "--out-dir",
        "{new}",
    ),
    # fullfcn-eval: weights that lie or lack a key, outputs, labels
    *_rows(
        cli.eval_main,
        1,
        [
            ([*_W32, "--variant", "fcn8s"], "holds a fcn32s model, not fcn8s"),
            (["--weights", "{mine.pth}"], "give --variant fcn8s or --variant fcn8s_atonce"),
            (
                ["--weights", "{trainer.pth.tar}", "--variant", "fcn8s"],
                "holds a fcn8s_atonce model, not fcn8s",
            ),
            (["--weights", "{badarch.pth.tar}"], "arch 'FCN4s' is not one of"),
            (["--weights", "{nomodel.pt}"], "nomodel.pt lacks 'model'"),
            (["--weights", "{width0.pt}"], "width_divisor 0 is not one of"),
            (["--weights", "{fcn4s.pt}"], "variant 'fcn4s' is not one of"),
            (["--weights", "{nobias.pt}"], "nobias.pt lacks score_fr.bias"),
            (["--weights", "{notes.txt}"], "is not a PyTorch weights file"),
            ([*_W32, "--json", "{existing.png}"], "existing.png exists (use --force"),
        ],
        *_VOC,
    ),
    *_rows(
        cli.eval_main,
        2,
        [
            ([*_W32, "--json", "{fcn32s_from_caffe.pth}", "--force"], "is also an input"),
            ([*_W32, "--workers", "-1"], "outside"),
        ],
        *_VOC,
    ),
    *_rows(
        cli.eval_main,
        1,
        [
            ([*_W32, "--voc-root", "{empty}"], "no PASCAL VOC 2012 found"),
            ([*_W32, "--voc-root", "{palette_voc}", *_EVAL], "does not use the palette of VOC"),
            ([*_W32, "--voc-root", "{size_voc}", *_EVAL], "is 40x30, its image 96x72"),
            (
                [*_W32, "--voc-root", "{class_voc}", *_EVAL, "--workers", "1"],
                "holds class 37, but VOC has 21 classes",
            ),
            ([*_W32, "--data", "{named3}", *_EVAL], "scores 21 classes"),
            ([*_W32, "--data", "{no_val}", *_EVAL], "split 'val' of"),
        ],
    ),
    (
        cli.eval_main,
        [*_W32, "--data", "{named3}", "--download"],
        2,
        "does not go with --data",
        [],
    ),
    # fullfcn-predict: outputs, checked before anything is decoded or loaded
    *_rows(
        cli.predict_main,
        2,
        [
            ([*_OUT, "--overlay", "{photo.png}"], "photo.png is also an input"),
            (["-o", "{photo.png}", "--force"], "is also an input"),
            (
                [*_OUT, "--weights", "{mine.pth}", "--overlay", "{mine.pth}", "--force"],
                "mine.pth is also an input",
            ),
            (
                ["-o", "{new}/x.png", "--overlay", "{new}/x.png"],
                "is given as two different outputs",
            ),
            (["-o", "{new}/m.jpg"], "must be a .png"),
            ([*_OUT, "--max-pixels", "0"], "outside"),
        ],
        "{photo.png}",
    ),
    # fullfcn-predict: hostile images and weights
    *_rows(
        cli.predict_main,
        1,
        [
            (["-o", "{existing.png}"], "existing.png exists (use --force"),
            ([*_OUT, "--max-pixels", "100"], "more than the limit of 100"),
            ([*_OUT, "--weights", "{notes.txt}"], "notes.txt is not a PyTorch weights file"),
            ([*_OUT, "--weights", "{mine.pth}"], "give --variant fcn8s or --variant fcn8s_atonce"),
        ],
        "{photo.png}",
    ),
    *_rows(
        cli.predict_main,
        1,
        [
            (["{notes.txt}"], "is not an image PIL can read"),
            (["{missing}"], "missing not found"),
            (["{bomb.png}"], "refused as a decompression bomb"),
            (["{big.png}"], "is 5000x4000 (20,000,000 pixels), more than the limit of 16,000,000"),
            (["{float.tif}"], "floating-point pixels"),
        ],
        *_OUT,
    ),
    (cli.predict_main, ["{empty}", "-o", "{new}"], 1, "empty holds no files to segment", []),
    (
        cli.predict_main,
        ["{named3}/images", "-o", "{named3}/images/"],
        2,
        "images is the folder of images; choose another folder",
        [],
    ),
]


@pytest.mark.parametrize(
    "cli, argv, code, message, fresh",
    BAD_INPUTS,
    ids=[f"{i:02d}-{c[0].__name__.split('_')[0]}" for i, c in enumerate(BAD_INPUTS)],
)
def test_bad_input_is_refused(
    cli: Main,
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
    assert_refused(capsys, cli, [_fill(a, paths) for a in argv], code, message, root=bad["root"],
                   fresh=[Path(_fill(f, paths)) for f in fresh])  # fmt: skip
    assert not (tmp_path / "new").exists() or fresh, "a refused run left an output behind"
    assert tree_state(voc_root) == voc_before


def _fill(text: str, paths: dict[str, Path]) -> str:
    """``text`` with each "{name}" replaced by the path of that name."""
    for name, path in paths.items():
        text = text.replace("{" + name + "}", str(path))
    return text


@pytest.mark.parametrize(
    "argv",
    [
        ["--out-dir", "{prevrun}"],
        ["--out-dir", "{logonly}", "--resume"],
        ["--out-dir", "{prevrun}", "--force", "--init-from", "{prevrun}/checkpoint.pt"],
        ["--out-dir", "{new}", "--device", "nosuch"],
    ],
)
def test_train_refuses_its_outputs_before_listing_the_pairs(
    argv: list[str],
    bad: dict[str, Path],
    voc_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Listing and counting the pairs takes a while on a big folder: what is wrong with the
    run's outputs (or its device) is said before, with nothing printed first."""
    paths = {**bad, "voc": voc_root, "new": tmp_path / "new"}
    assert cli.train_main([_fill(a, paths) for a in [*_VOC, *argv, *_FAST]]) != 0
    assert "training on" not in capsys.readouterr().out
