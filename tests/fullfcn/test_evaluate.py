"""fullfcn's evaluate and predict: tinyfcn's shape of API, run under inference mode."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fullfcn.builders import build
from fullfcn.evaluate import confusion_matrix, eval_loader, evaluate
from fullfcn.folder import SegmentationFolder
from fullfcn.predict import load_image, predict
from fullfcn.transforms import eval_transforms
from fullfcn.voc import find_voc2012
from tests.fullfcn.conftest import WIDTH


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build("fcn32s", width_divisor=WIDTH)
    torch.nn.init.normal_(model.score_fr.weight, std=0.05)  # not all background
    return model


def _same(a: object, b: object) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b or (math.isnan(a) and math.isnan(b))  # type: ignore[arg-type]


def test_evaluate_takes_a_dataset_and_returns_the_metrics(voc_folder: Path) -> None:
    model = _model()
    data = SegmentationFolder(voc_folder, "val", transforms=eval_transforms(model.preprocess))
    modes: list[bool] = []
    model.register_forward_hook(lambda *_: modes.append(torch.is_inference_mode_enabled()))
    metrics = evaluate(model, data)
    assert modes == [True]  # one image, scored under torch.inference_mode()
    assert set(metrics) == {"pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou", "iou"}
    matrix = confusion_matrix(model, eval_loader(data), torch.device("cpu"))
    assert all(_same(metrics[k], v) for k, v in matrix.compute().items())
    assert int(matrix.matrix.sum()) > 0


def test_predict_is_the_argmax_per_pixel_on_the_cpu(voc_folder: Path) -> None:
    model = _model()
    image = Image.open(sorted((voc_folder / "images").iterdir())[0]).convert("RGB")
    mask = predict(model, image)
    assert mask.dtype == torch.int64 and mask.device.type == "cpu"
    assert mask.shape == (image.height, image.width) and mask.is_inference()
    with torch.no_grad():
        expected = model(model.preprocess(image)[None]).argmax(1)[0]
    assert torch.equal(mask, expected)
    assert torch.equal(predict(model, image, device="cpu"), mask)


def test_sixteen_bit_png_is_scaled_not_clipped(voc_root: Path, tmp_path: Path) -> None:
    """A genuine 16-bit PNG of a real photo reads back as that photo's 8-bit grey values
    (PIL's own conversion clips 16-bit values to 255: an almost white image)."""
    photo = find_voc2012(voc_root) / "JPEGImages" / "2007_000032.jpg"
    grey = np.array(Image.open(photo).convert("L"))
    sixteen = tmp_path / "deep.png"
    Image.fromarray(grey.astype(np.uint16) * 257).save(sixteen)  # 0..255 -> 0..65535
    assert Image.open(sixteen).mode.startswith("I")  # PIL reads it as 16-bit
    rgb = np.array(load_image(sixteen))
    assert rgb.shape == (*grey.shape, 3)
    assert np.array_equal(rgb[..., 0], grey) and np.array_equal(rgb[..., 2], grey)
    assert (rgb == 255).mean() < 0.05
