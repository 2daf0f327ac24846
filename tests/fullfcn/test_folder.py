"""SegmentationFolder: the pairs, the documented split, the palette, the shared transforms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fullfcn
from fullfcn.folder import FolderError, SegmentationFolder, split_stems
from fullfcn.pairs import LabelError, SegmentationPairs
from fullfcn.predict import load_image
from fullfcn.transforms import TORCHVISION, eval_transforms, train_transforms
from fullfcn.voc import VOC_CLASSES, VOCSegmentation, voc_palette
from m2nist import BACKGROUND, CLASS_NAMES
from tests.fullfcn.conftest import FOLDER_PALETTE, make_folder


def test_the_seeded_split_is_the_documented_one() -> None:
    stems = [f"s{i:02d}" for i in range(10)]
    order = np.random.default_rng(0).permutation(10)  # the rule, as the docs state it
    ordered = sorted(stems)
    assert split_stems(stems[::-1], "val", 0.2, 0) == sorted(ordered[i] for i in order[:2])
    assert split_stems(stems, "train", 0.2, 0) == sorted(ordered[i] for i in order[2:])
    assert split_stems(stems, "val", 0.2, 1) != split_stems(stems, "val", 0.2, 0)
    assert len(split_stems(stems[:2], "val", 0.01, 0)) == 1  # at least one for val ...
    assert len(split_stems(stems[:2], "train", 0.9, 0)) == 1  # ... and one to train on
    assert split_stems(stems, "val", 0.0, 0) == []
    with pytest.raises(ValueError, match="outside"):
        split_stems(stems, "val", 1.0, 0)


def test_voc_pairs_as_a_folder(voc_folder: Path, voc_root: Path) -> None:
    train = SegmentationFolder(voc_folder, "train")
    val = SegmentationFolder(voc_folder, "val")
    assert (len(train), len(val)) == (2, 1)  # three pairs, round(0.2 * 3) = 1 held out
    assert not set(train.images) & set(val.images)
    assert train.classes == VOC_CLASSES and train.num_classes == 21
    assert train.palette == FOLDER_PALETTE  # the masks' own colours, not VOC's
    image, mask = val[0]
    stem = Path(val.masks[0]).stem
    original = Image.open(voc_root / "VOC2012" / "SegmentationClass" / f"{stem}.png")
    assert image.mode == "RGB" and image.size == mask.size == original.size
    assert np.array_equal(np.asarray(mask), np.asarray(original))  # indices are the classes


def test_index_masks_and_split_lists(m2nist_folder: Path) -> None:
    train = SegmentationFolder(m2nist_folder, "train")
    val = SegmentationFolder(m2nist_folder, "val")
    assert [Path(p).stem for p in train.masks] == [f"train-{i:06d}" for i in range(4)]
    assert [Path(p).stem for p in val.masks] == ["test-000000", "test-000001"]
    assert train.classes == tuple(CLASS_NAMES) and train.classes[BACKGROUND] == "background"
    assert train.palette == voc_palette()  # index masks carry no colours


def test_every_dataset_shares_the_joint_transforms(voc_folder: Path, voc_root: Path) -> None:
    """The folder and VOC go through the same base and the same transforms: the same pair
    under the same seed gives the same crop, image and mask alike."""
    for dataset in (SegmentationFolder(voc_folder, "train"), VOCSegmentation(voc_root, "train")):
        assert isinstance(dataset, SegmentationPairs)
        assert isinstance(dataset, fullfcn.SegmentationFolder | VOCSegmentation)
    transforms = train_transforms(TORCHVISION, crop_size=48)
    folder = SegmentationFolder(voc_folder, "train", transforms=transforms)
    voc = VOCSegmentation(voc_root, "train", transforms=transforms)
    index = [Path(p).stem for p in voc.images].index(Path(folder.images[0]).stem)
    torch.manual_seed(3)  # v2's flip and crop, RandomScale's factor
    a = folder[0]
    torch.manual_seed(3)
    b = voc[index]
    assert a[0].shape == (3, 48, 48) and torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    image, mask = SegmentationFolder(voc_folder, "val", transforms=eval_transforms(TORCHVISION))[0]
    assert mask.dtype == torch.int64 and mask.shape == image.shape[1:]


def test_sixteen_bit_index_masks(tmp_path: Path) -> None:
    """A 16-bit grey PNG (PIL mode I;16) is read as class ids too, its values checked."""
    mask = np.full((30, 40), 255, np.uint16)
    mask[:10] = 299
    root = make_folder(tmp_path, {"a": (Image.new("RGB", (40, 30)), Image.fromarray(mask))})
    with pytest.raises(FolderError, match=r"a\.png holds class 299, but the folder has 200"):
        SegmentationFolder(root, "train", num_classes=200, val_fraction=0.0)
    mask[:10] = 7
    Image.fromarray(mask).save(root / "masks" / "a.png")
    _, read = SegmentationFolder(root, "train", num_classes=8, val_fraction=0.0)[0]
    assert set(np.unique(np.asarray(read)).tolist()) == {7, 255}


def _exif_photo(path: Path, size: tuple[int, int]) -> Image.Image:
    """A JPEG as a phone saves it: the sensor's pixels (left half red) and EXIF Orientation 6
    ("turn 90 degrees clockwise to show"); returns the upright picture a viewer shows."""
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    pixels[..., 2] = 255
    pixels[:, : size[0] // 2] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(path, quality=95, exif=exif)
    return Image.fromarray(pixels).transpose(Image.Transpose.ROTATE_270)


@pytest.mark.parametrize("size", [(40, 40), (40, 30)], ids=["square", "non-square"])
def test_exif_orientation_is_applied_as_the_mask_was_drawn(
    size: tuple[int, int], tmp_path: Path
) -> None:
    """The mask is drawn on the picture as shown (labelme shows it upright): a square pair
    must not train 90 degrees out of line, a non-square one must not be refused."""
    make_folder(tmp_path, {})
    upright = _exif_photo(tmp_path / "images" / "p.jpg", size)
    red = np.asarray(upright)[..., 0] > 128
    Image.fromarray(red.astype(np.uint8)).save(tmp_path / "masks" / "p.png")
    image, mask = SegmentationFolder(tmp_path, "train", num_classes=2, val_fraction=0.0)[0]
    assert image.size == mask.size == upright.size == size[::-1]
    assert np.array_equal(np.asarray(image)[..., 0] > 128, np.asarray(mask) == 1)
    assert load_image(tmp_path / "images" / "p.jpg").size == size[::-1]  # fullfcn-predict's


def _two_class_pairs(stems: str = "ab") -> dict[str, tuple[Image.Image, Image.Image]]:
    mask = np.zeros((30, 40), np.uint8)
    mask[:, 20:] = 1
    return {s: (Image.new("RGB", (40, 30), (90, 120, 30)), Image.fromarray(mask)) for s in stems}


def test_classes_txt_as_people_write_it(tmp_path: Path) -> None:
    """A byte-order mark (Windows Notepad) is stripped, trailing blank lines dropped; a
    blank line inside would shift every class id after it, a Latin-1 file would misname."""
    root = make_folder(tmp_path, _two_class_pairs())
    classes = root / "classes.txt"
    classes.write_bytes("\ufeffarrière-plan\nobjet\n\n".encode())
    assert SegmentationFolder(root, "train").classes == ("arrière-plan", "objet")
    classes.write_bytes("arrière-plan\nobjet\n".encode("latin-1"))
    with pytest.raises(
        LabelError, match=r"classes\.txt is not UTF-8 text \(byte 0xe8 at offset 4\)"
    ):
        SegmentationFolder(root, "train")
    classes.write_text("background\n\nobject\n")
    with pytest.raises(LabelError, match=r"classes\.txt line 2 is blank"):
        SegmentationFolder(root, "train")


def test_palette_masks_must_agree(tmp_path: Path) -> None:
    pairs = {s: (image, mask.convert("P")) for s, (image, mask) in _two_class_pairs().items()}
    pairs["a"][1].putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)
    pairs["b"][1].putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)  # class 1 drawn otherwise
    root = make_folder(tmp_path, pairs)
    with pytest.raises(FolderError, match=r"b\.png does not use the palette of .*a\.png: index 1"):
        SegmentationFolder(root, "train", num_classes=2, val_fraction=0.0)


def test_two_masks_with_one_stem_are_refused(tmp_path: Path) -> None:
    root = make_folder(tmp_path, _two_class_pairs())
    (root / "masks" / "a.PNG").write_bytes((root / "masks" / "a.png").read_bytes())
    with pytest.raises(FolderError, match=r"masks .*a\.PNG and .*a\.png share the stem"):
        SegmentationFolder(root, "train", num_classes=2)


@pytest.mark.parametrize(
    "names", [("image", "label"), ("img", "mask"), ("JPEGImages", "SegmentationClass")]
)
def test_the_usual_folder_names(names: tuple[str, str], tmp_path: Path) -> None:
    make_folder(tmp_path / "made", _two_class_pairs("abcde"))
    for made, name in zip(("images", "masks"), names, strict=True):
        (tmp_path / "made" / made).rename(tmp_path / "made" / name)
    assert len(SegmentationFolder(tmp_path / "made", "train", num_classes=2)) == 4


def test_named_folders_and_one_folder_a_split(tmp_path: Path) -> None:
    for split, stems in (("train", "abc"), ("val", "ad")):  # one stem in both: two photos
        make_folder(tmp_path / "tmp" / split, _two_class_pairs(stems))
        for kind in ("images", "masks"):
            (tmp_path / kind).mkdir(exist_ok=True)
            (tmp_path / "tmp" / split / kind).rename(tmp_path / kind / split)
    train = SegmentationFolder(tmp_path, "train", num_classes=2)
    val = SegmentationFolder(tmp_path, "val", num_classes=2, val_fraction=0.5)  # the folder's
    assert train.ids == ["train/a", "train/b", "train/c"] and val.ids == ["val/a", "val/d"]
    (tmp_path / "images").rename(tmp_path / "photos")
    data = SegmentationFolder(tmp_path, "val", num_classes=2, images="photos", masks="masks")
    assert data.images == [str(tmp_path / "photos" / "val" / f"{s}.png") for s in "ad"]
    with pytest.raises(FolderError, match=r"expected DIR/images/<stem>\.jpg beside DIR/masks/"):
        SegmentationFolder(tmp_path, "val", num_classes=2)
