"""The hostile inputs of fullfcn's bad-input table (``test_cli_refused.py``), made once.

Every file and folder a case may name: photos a decoder must refuse, weights files that
load but lie or lack a key, previous runs in an output folder, VOC labels spoiled one way
each, and ``--data`` folders wrong in each way a folder can be.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fullfcn.builders import build
from fullfcn.pytorch_fcn import to_pytorch_fcn
from fullfcn.voc import colorize
from tests.fullfcn.conftest import WIDTH, make_folder, make_voc

__all__ = ["make_bad_inputs", "png_header_only"]


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
    folder("no_classes")
    (root / "no_dirs").mkdir()


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
