"""``fullfcn-predict IMAGE -o OUT.png``: a palette mask and an overlay for one image.

The image is normalised the way the weights were trained (Caffe BGR for the converted
paper models, torchvision RGB otherwise), the FCN scores every pixel in one pass, and the
argmax class is saved as a palette PNG -- the format of VOC's own labels, so the file can
be compared with ground truth directly, in the colours of the data the weights were
trained on (stored in a ``fullfcn-train`` checkpoint; VOC's otherwise) -- plus
``OUT_overlay.png``, the mask blended over the photo.

:func:`predict_folder` does the same for every image of a folder, one refused file
costing only itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from fcnbase import CliError, atomic_write, check_outputs
from fullfcn.evaluate import autocast
from fullfcn.model import FCN
from fullfcn.voc import colorize

#: The largest image segmented by default: 16 megapixels (a 12 MP phone photo passes).
#: conv1_1 and conv1_2 each hold 64 float32 channels at full resolution (plus the pad of
#: 100), about 0.5 GB per megapixel together, so 16 MP needs some 8 GB before the rest of
#: VGG16. ``--max-pixels`` raises (or lowers) the limit.
MAX_PIXELS = 16_000_000


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open ``path`` as 8-bit RGB, upright (its EXIF orientation applied), or raise
    ValueError saying why it cannot be segmented.

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
            if image.mode.startswith("I;16") or (image.mode == "I" and image.format == "PNG"):
                # PNG stores at most 16 bits a sample; PIL reads 16-bit grey as mode I.
                grey = np.asarray(image, dtype=np.float64) * (255 / 65535)
                return Image.fromarray(np.rint(grey).astype(np.uint8), mode="L").convert("RGB")
            if image.mode in ("I", "F"):
                raise ValueError(
                    f"{path} has {'32-bit integer' if image.mode == 'I' else 'floating-point'}"
                    " pixels of unknown range; convert it to an 8- or 16-bit image first"
                )
            # upright, as a viewer (and the tool that drew its mask) shows it: a phone
            # stores the sensor's pixels and says in EXIF how to turn them
            return ImageOps.exif_transpose(image).convert("RGB")
        except OSError as err:  # truncated or corrupt pixel data
            raise ValueError(f"{path} is not an image PIL can read ({err})") from None


def predict(
    model: FCN,
    image: Image.Image,
    *,
    device: torch.device | str | None = None,
    amp: bool = False,
) -> torch.Tensor:
    """Class index per pixel (``H x W`` int64 on the CPU) for one RGB image.

    The same shape as :func:`tinyfcn.evaluation.predict`, for one image of any size: it is
    normalised as the weights expect (``model.preprocess``) and scored under
    ``torch.inference_mode()``. ``device`` ``None``: where the model is.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval().to(device)
    with torch.inference_mode():
        x = model.preprocess(image).unsqueeze(0).to(device)
        with autocast(device, amp):
            scores = model(x)
        return scores.argmax(1)[0].cpu()


def overlay(
    image: Image.Image,
    mask: torch.Tensor,
    palette: list[int] | None = None,
    background: int | None = 0,
    alpha: float = 0.5,
) -> Image.Image:
    """The mask's colours (``palette``, VOC's by default) blended over the photo; pixels of
    class ``background`` stay untouched (``None``: every class is drawn)."""
    blended = Image.blend(image, colorize(mask, palette).convert("RGB"), alpha)
    if background is None:
        return blended
    untouched = Image.fromarray((mask.numpy() == background).astype("uint8") * 255, mode="L")
    return Image.composite(image, blended, untouched)


def save_prediction(
    model: FCN,
    image: Image.Image,
    out: Path,
    over: Path,
    *,
    device: torch.device | str | None = None,
    amp: bool = False,
    replace: bool = False,
) -> list[str]:
    """Segment ``image`` into the palette PNG ``out`` and the overlay ``over`` (each written
    atomically; an existing file replaced only with ``replace``); return the names of the
    classes found besides background. The names, colours and mask values are those of the
    training data, stored in the checkpoint (VOC's for the published models)."""
    mask = predict(model, image, device=device, amp=amp)
    background = model.classes.index("background") if "background" in model.classes else None
    found = [model.classes[c] for c in mask.unique().tolist() if c != background]
    if model.mask_values:  # written as the training masks were: 0 and 255, say
        values = torch.tensor(model.mask_values)
        mask, background = values[mask], None if background is None else int(values[background])
    with atomic_write(out, replace=replace) as f:
        colorize(mask, model.palette).save(f, format="PNG")
    with atomic_write(over, replace=replace) as f:
        overlay(image, mask, model.palette, background).save(f, format="PNG")
    return found


def predict_folder(
    model: FCN,
    folder: str | Path,
    out_dir: str | Path,
    *,
    device: torch.device | str | None = None,
    amp: bool = False,
    max_pixels: int = MAX_PIXELS,
    replace: bool = False,
    inputs: Iterable[str | Path | None] = (),
) -> Iterator[tuple[Path, tuple[Path, Path], list[str] | Exception]]:
    """Segment every file of ``folder`` into ``out_dir/<stem>.png`` and
    ``<stem>_overlay.png``, one at a time, yielding each file, its two outputs and the
    classes found -- or the exception that refused it: not an image, a stem another file
    took, an output that exists (without ``replace``) or is one of ``inputs``. A refused
    file is skipped, not the folder: one bad photo must not cost the other thousand."""
    files = sorted(p for p in Path(folder).glob("[!.]*") if p.is_file())
    if not files:
        raise CliError(f"{folder} holds no files to segment")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    stems: dict[str, Path] = {}
    for path in files:
        outputs = Path(out_dir) / f"{path.stem}.png", Path(out_dir) / f"{path.stem}_overlay.png"
        try:
            if path.stem in stems:
                raise ValueError(
                    f"it shares the stem of {stems[path.stem]}, whose masks it would take"
                )
            stems[path.stem] = path
            check_outputs(outputs, inputs=[path, *inputs], force=replace)
            image = load_image(path, max_pixels)
            result: list[str] | Exception = save_prediction(
                model, image, *outputs, device=device, amp=amp, replace=replace
            )
        except (OSError, ValueError, RuntimeError) as err:  # RuntimeError: CliError too
            result = err
        yield path, outputs, result
