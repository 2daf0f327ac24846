"""``fullfcn-predict IMAGE -o OUT.png``: a VOC-palette mask and an overlay for one image.

The image is normalised the way the weights were trained (Caffe BGR for the converted
paper models, torchvision RGB otherwise), the FCN scores every pixel in one pass, and the
argmax class is saved as a palette PNG -- the format of VOC's own labels, so the file can
be compared with ground truth directly -- plus ``OUT_overlay.png``, the mask blended over
the photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from fcnbase import Parser, atomic_write, pick_device
from fullfcn.evaluate import autocast
from fullfcn.model import FCN, VARIANTS, build, load_model
from fullfcn.util import run_cli
from fullfcn.voc import VOC_CLASSES, colorize

__all__ = ["load_image", "main", "overlay", "predict"]


def load_image(path: str | Path) -> Image.Image:
    """Open ``path`` as RGB, or raise ValueError saying it is not an image."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"image {path} not found")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path} is not an image PIL can read") from err


@torch.no_grad()
def predict(
    model: FCN, image: Image.Image, device: torch.device | str = "cpu", amp: bool = False
) -> torch.Tensor:
    """Class index per pixel (``H x W`` LongTensor) for one RGB image."""
    device = torch.device(device)
    x = model.preprocess(image).unsqueeze(0).to(device)
    model.eval().to(device)
    with autocast(device, amp):
        scores = model(x)
    return scores.argmax(1)[0].cpu()


def overlay(image: Image.Image, mask: torch.Tensor, alpha: float = 0.5) -> Image.Image:
    """The mask's colours blended over the photo; background pixels stay untouched."""
    colours = colorize(mask).convert("RGB")
    blended = Image.blend(image, colours, alpha)
    background = Image.fromarray((mask.numpy() == 0).astype("uint8") * 255, mode="L")
    return Image.composite(image, blended, background)


def _parser() -> Parser:
    p = Parser(prog="fullfcn-predict", description="Segment one image with a VGG16 FCN.")
    p.add_argument("image")
    p.add_argument("-o", "--output", required=True, help="mask PNG (VOC palette)")
    p.add_argument("--overlay", help="overlay PNG (default: OUT_overlay.png)")
    p.add_argument(
        "--weights",
        help="fullfcn-train checkpoint or pytorch-fcn "
        "fcnXs_from_caffe.pth; without it the net is untrained (random)",
    )
    p.add_argument(
        "--variant",
        choices=VARIANTS,
        help="default: read from the weights (fcn8s when there are none)",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", action="store_true")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    output = Path(args.output)
    if output.suffix.lower() != ".png":
        raise ValueError(f"output {output} must be a .png (the palette needs lossless PNG)")
    image = load_image(args.image)  # before the model: bad input fails fast
    device = pick_device(args.device)
    model = (
        load_model(args.weights, args.variant) if args.weights else build(args.variant or "fcn8s")
    )
    mask = predict(model, image, device, args.amp)
    over = Path(args.overlay) if args.overlay else output.with_name(f"{output.stem}_overlay.png")
    with atomic_write(output) as f:
        colorize(mask).save(f, format="PNG")
    with atomic_write(over) as f:
        overlay(image, mask).save(f, format="PNG")
    found = [VOC_CLASSES[c] for c in mask.unique().tolist() if 0 < c < len(VOC_CLASSES)]
    print(f"fullfcn-predict: {output} and {over} ({', '.join(found) or 'background only'})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fullfcn-predict``."""
    return run_cli("fullfcn-predict", _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
