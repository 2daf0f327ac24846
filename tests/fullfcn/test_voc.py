"""VOC loading on the three genuine pairs and on a VOC-layout set; joint transforms."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fullfcn.transforms import CAFFE, TORCHVISION, eval_transforms, train_transforms
from fullfcn.voc import VOCSegmentation, find_voc2012, voc_palette


def test_genuine_pairs(voc_root: Path) -> None:
    train = VOCSegmentation(voc_root, "train")
    assert len(train) == 2
    image, label = train[0]  # 2007_000032
    assert image.mode == "RGB" and image.size == (500, 281) and label.size == (500, 281)
    assert label.mode == "P" and label.getpalette()[: 3 * 256] == voc_palette()
    values, counts = np.unique(np.array(label), return_counts=True)
    assert (
        dict(zip(values.tolist(), counts.tolist(), strict=True)).items()
        >= {1: 4734, 15: 866}.items()
    )
    assert set(values.tolist()) == {0, 1, 15, 255}
    val = VOCSegmentation(voc_root, "val", transforms=eval_transforms(CAFFE))
    x, y = val[0]  # 2007_000033, 500x366
    assert x.shape == (3, 366, 500) and x.dtype == torch.float32
    assert y.shape == (366, 500) and y.dtype == torch.int64
    assert set(y.unique().tolist()) == {0, 1, 255}


def test_palette_matches_the_devkit() -> None:
    palette = np.array(voc_palette()).reshape(256, 3)
    assert palette[1].tolist() == [128, 0, 0]  # aeroplane
    assert palette[15].tolist() == [192, 128, 128]  # person
    assert palette[255].tolist() == [224, 224, 192]  # void


def test_devkit_layout_and_errors(tiny_voc: Path, tmp_path: Path) -> None:
    devkit = tmp_path / "VOCdevkit"
    shutil.copytree(tiny_voc / "VOC2012", devkit / "VOC2012")
    assert find_voc2012(tmp_path) == devkit / "VOC2012"
    assert len(VOCSegmentation(tmp_path, "train")) == 4
    ids = tmp_path / "mine.txt"
    ids.write_text("2099_val_001\n")
    assert len(VOCSegmentation(tmp_path, str(ids))) == 1
    with pytest.raises(FileNotFoundError, match="no PASCAL VOC 2012 found"):
        VOCSegmentation(tmp_path / "VOCdevkit" / "nothing", "train")
    with pytest.raises(FileNotFoundError, match=r"seg11valid\.txt not found"):
        VOCSegmentation(tmp_path, "seg11valid")
    (devkit / "VOC2012" / "JPEGImages" / "2099_val_001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="1 files of split 'val' are missing"):
        VOCSegmentation(tmp_path, "val")


def test_crop_pads_with_void_and_flip_moves_label_with_image(voc_root: Path) -> None:
    image = Image.open(find_voc2012(voc_root) / "JPEGImages" / "2007_000032.jpg")
    label = Image.open(find_voc2012(voc_root) / "SegmentationClass" / "2007_000032.png")
    torch.manual_seed(0)
    # Scale 0.5 exactly: a 250x141 image in a 300 crop must be padded on both axes.
    x, y = train_transforms(TORCHVISION, crop_size=300, scale=(0.5, 0.5), flip=False)(image, label)
    assert x.shape == (3, 300, 300) and y.shape == (300, 300)
    assert (y == 255).sum() >= 300 * 300 - 250 * 141
    assert set(y.unique().tolist()) <= {0, 1, 15, 255}
    assert (x[:, y == 255] == 0).float().mean() > 0.9  # padding is the mean: 0 after norm
    flips = 0
    for seed in range(6):
        torch.manual_seed(seed)
        x, y = train_transforms(TORCHVISION, crop_size=None)(image, label)
        ref_x, ref_y = eval_transforms(TORCHVISION)(image, label)
        flipped = torch.equal(y, ref_y.flip(-1))
        assert flipped or torch.equal(y, ref_y)
        assert torch.equal(x, ref_x.flip(-1) if flipped else ref_x)
        flips += flipped
    assert 0 < flips < 6


def test_sbd_layout_read_through_torchvision(voc_root: Path, tmp_path: Path) -> None:
    """SBD keeps labels in MATLAB files (``cls/<id>.mat``, struct ``GTcls.Segmentation``).

    Build that layout from the genuine VOC pairs with scipy, as SBD's authors wrote it, and
    check that the paper's training-set loader gives back the very same label pixels.
    """
    from scipy.io import savemat

    from fullfcn.voc import SBDSegmentation

    voc = find_voc2012(voc_root)
    ids = ["2007_000032", "2007_000063"]
    (tmp_path / "img").mkdir()
    (tmp_path / "cls").mkdir()
    labels = {}
    for i in ids:
        shutil.copy(voc / "JPEGImages" / f"{i}.jpg", tmp_path / "img" / f"{i}.jpg")
        labels[i] = np.array(Image.open(voc / "SegmentationClass" / f"{i}.png"))
        savemat(tmp_path / "cls" / f"{i}.mat", {"GTcls": {"Segmentation": labels[i]}})
    (tmp_path / "train.txt").write_text("\n".join(ids) + "\n")

    sbd = SBDSegmentation(tmp_path, "train")
    assert len(sbd) == 2
    for i, (image, label) in zip(ids, sbd, strict=True):
        assert image.size == label.size == labels[i].shape[::-1]
        assert np.array_equal(np.array(label), labels[i])


def test_missing_sbd_is_one_clear_error(tmp_path: Path) -> None:
    from fullfcn.voc import SBDSegmentation

    with pytest.raises(FileNotFoundError, match="no SBD found"):
        SBDSegmentation(tmp_path, "train")


def test_a_label_of_another_size_is_named(voc_root: Path, tmp_path: Path) -> None:
    """A mask resized apart from its photo would train on misplaced targets: in VOC's PNGs
    and SBD's MATLAB files alike, reading the pair names the label file instead."""
    from scipy.io import savemat

    from fullfcn.voc import LabelError, SBDSegmentation

    voc = tmp_path / "voc" / "VOC2012"
    shutil.copytree(find_voc2012(voc_root), voc)
    label = voc / "SegmentationClass" / "2007_000032.png"
    Image.open(label).resize((250, 140), Image.Resampling.NEAREST).save(label)
    with pytest.raises(LabelError, match=r"2007_000032\.png is 250x140, its image 500x281"):
        VOCSegmentation(tmp_path / "voc", "train")[0]

    sbd = tmp_path / "sbd"
    (sbd / "img").mkdir(parents=True)
    (sbd / "cls").mkdir()
    shutil.copy(voc / "JPEGImages" / "2007_000032.jpg", sbd / "img")
    savemat(
        sbd / "cls" / "2007_000032.mat", {"GTcls": {"Segmentation": np.array(Image.open(label))}}
    )
    (sbd / "train.txt").write_text("2007_000032\n")
    with pytest.raises(LabelError, match=r"2007_000032\.mat is 250x140, its image 500x281"):
        SBDSegmentation(sbd, "train")[0]
