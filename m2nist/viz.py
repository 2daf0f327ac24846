"""Pictures of M2NIST: images with coloured label overlays and a legend."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from m2nist.compose import M2NISTArrays
from m2nist.params import BACKGROUND


def label_palette(alpha: float = 1.0) -> np.ndarray:
    """RGBA colour of each class: tab10 for digits 0-9, background transparent black.

    The pictures drawn through this module share it: the ``--preview`` grid and its
    legend (:func:`plot_grid`), :func:`overlay_rgba`, and :func:`colorize`, which tinyfcn
    uses to show predictions beside the truth. So a digit has the same colour in each of
    them. A picture drawn with another colormap (``imshow(labels, cmap=...)``) does not.
    """
    from matplotlib import colormaps

    colours = np.zeros((BACKGROUND + 1, 4))
    colours[:BACKGROUND] = colormaps["tab10"](np.arange(BACKGROUND))
    colours[:BACKGROUND, 3] = alpha
    return colours


def overlay_rgba(labels: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """RGBA image to draw over the digits: each class in its colour, background transparent."""
    return label_palette(alpha)[labels]


def colorize(labels: np.ndarray) -> np.ndarray:
    """RGB picture of a label map on its own: each class in its colour, background black."""
    return label_palette()[labels][..., :3]


def plot_grid(images: np.ndarray, labels: np.ndarray, ncols: int = 4, title: str | None = None):
    """A matplotlib Figure: each image in grey with its label map on top, plus a legend."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    n = len(images)
    nrows = max(1, -(-n // ncols))
    height, width = images.shape[1:]
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(ncols * width / 30, nrows * height / 30 + 0.8), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, label in zip(axes.flat, images, labels, strict=False):
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        ax.imshow(overlay_rgba(label))
    colours = label_palette()
    handles = [Patch(color=colours[c], label=str(c)) for c in range(BACKGROUND)]
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=BACKGROUND,
        frameon=False,
        title="digit class (background transparent)",
    )
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.12, 1, 0.95 if title else 1))
    return fig


def save_preview(
    out: str | Path,
    png: str | Path,
    split: str = "train",
    n: int = 16,
    *,
    arrays: M2NISTArrays | None = None,
) -> Path:
    """Save a grid of the first ``n`` images of a generated split (as the CLI's --preview).

    ``arrays`` (default: ``OUT/SPLIT.npz``) lets a Kaggle-only run preview its rows too.
    The PNG is written atomically, so a failure never leaves half an image.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from fcnbase.outputs import atomic_write
    from m2nist.npz import load_arrays

    arrays = load_arrays(out, split) if arrays is None else arrays
    png = Path(png)
    fig = plot_grid(
        np.asarray(arrays.images[:n]),
        np.asarray(arrays.labels[:n]),
        title=f"M2NIST {split}: first {min(n, len(arrays))} images",
    )
    try:
        with atomic_write(png) as f:
            fig.savefig(f, dpi=100, format="png")
    finally:
        plt.close(fig)
    return png
