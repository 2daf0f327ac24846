"""``fullfcn-predict IMAGE -o OUT.png``: a VOC-palette mask and an overlay for one image.

The image is normalised the way the weights were trained (Caffe BGR for the converted
paper models, torchvision RGB otherwise), the FCN scores every pixel in one pass, and the
argmax class is saved as a palette PNG -- the format of VOC's own labels, so the file can
be compared with ground truth directly -- plus ``OUT_overlay.png``, the mask blended over
the photo.

Nothing is lost by a mistyped command: ``-o`` and ``--overlay`` may not name the photo,
the weights or each other, and an existing file is replaced only with ``--force``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from fcnbase import Parser, UsageError, atomic_write, check_outputs, pick_device, run_cli
from fcnbase.cli import int_arg
from fullfcn.evaluate import autocast
from fullfcn.model import FCN, VARIANTS, build, load_model
from fullfcn.voc import VOC_CLASSES, colorize

__all__ = ["MAX_PIXELS", "load_image", "main", "overlay", "predict"]

#: The largest image segmented by default: 16 megapixels (a 12 MP phone photo passes).
#: conv1_1 and conv1_2 each hold 64 float32 channels at full resolution (plus the pad of
#: 100), about 0.5 GB per megapixel together, so 16 MP needs some 8 GB before the rest of
#: VGG16. ``--max-pixels`` raises (or lowers) the limit.
MAX_PIXELS = 16_000_000
#: 16-bit images (PIL modes ``I;16*``) are scaled to 8 bits by 255 / 65535.
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open ``path`` as 8-bit RGB, or raise ValueError saying why it cannot be segmented.

    The size is checked from the header, before any pixel is decoded, so a decompression
    bomb (a small file that expands to gigapixels) or a photo too large for memory is one
    clear error, not an out-of-memory kill. 16-bit images are scaled to 8 bits; PIL's own
    ``convert("RGB")`` would clip them, turning almost every pixel white.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"image {path} not found")
    try:
        with warnings.catch_warnings():
            # our limit is checked just below; PIL's warning would be a second stderr line
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as err:
        raise ValueError(f"{path}: refused as a decompression bomb ({err})") from None
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path} is not an image PIL can read") from err
    with image:
        pixels = image.width * image.height
        if pixels > max_pixels:
            raise ValueError(
                f"{path} is {image.width}x{image.height} ({pixels:,} pixels), more than the "
                f"limit of {max_pixels:,} (about 0.5 GB of memory per megapixel; "
                "--max-pixels raises it)"
            )
        try:
            if image.mode in _SIXTEEN_BIT or (image.mode == "I" and image.format == "PNG"):
                # PNG stores at most 16 bits a sample; PIL reads 16-bit grey as mode I.
                grey = np.asarray(image, dtype=np.float64) * (255 / 65535)
                return Image.fromarray(np.rint(grey).astype(np.uint8), mode="L").convert("RGB")
            if image.mode in ("I", "F"):
                raise ValueError(
                    f"{path} has {'32-bit integer' if image.mode == 'I' else 'floating-point'}"
                    " pixels of unknown range; convert it to an 8- or 16-bit image first"
                )
            return image.convert("RGB")
        except OSError as err:  # truncated or corrupt pixel data
            raise ValueError(f"{path} is not an image PIL can read ({err})") from None


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
    p.add_argument(
        "--max-pixels",
        type=int_arg(1, 10**10),
        default=MAX_PIXELS,
        help=f"refuse larger images (default {MAX_PIXELS:,}: about 0.5 GB per megapixel)",
    )
    p.add_argument("--force", action="store_true", help="replace existing output files")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    output = Path(args.output)
    over = Path(args.overlay) if args.overlay else output.with_name(f"{output.stem}_overlay.png")
    # Every output check comes before the image is decoded or the model read: the photo
    # and the weights are inputs, and an existing file is replaced only with --force.
    check_outputs([output, over], inputs=[args.image, args.weights], force=args.force)
    for path in (output, over):
        if path.suffix.lower() != ".png":
            raise UsageError(f"output {path} must be a .png (the palette needs lossless PNG)")
    image = load_image(args.image, args.max_pixels)
    device = pick_device(args.device)
    model = (
        load_model(args.weights, args.variant) if args.weights else build(args.variant or "fcn8s")
    )
    mask = predict(model, image, device, args.amp)
    with atomic_write(output, replace=args.force) as f:
        colorize(mask).save(f, format="PNG")
    with atomic_write(over, replace=args.force) as f:
        overlay(image, mask).save(f, format="PNG")
    found = [VOC_CLASSES[c] for c in mask.unique().tolist() if 0 < c < len(VOC_CLASSES)]
    print(f"fullfcn-predict: {output} and {over} ({', '.join(found) or 'background only'})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fullfcn-predict``."""
    return run_cli("fullfcn-predict", _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
