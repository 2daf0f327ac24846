"""Pictures of M2NIST: images with coloured label overlays and a legend."""

from __future__ import annotations

import numpy as np

from m2nist.params import BACKGROUND, CLASS_NAMES


def label_palette(alpha: float = 1.0) -> np.ndarray:
    """RGBA colour of each class: tab10 for digits 0-9, background transparent black.

    The pictures drawn through this module share it: the ``--preview`` grid
    (:func:`plot_grid`), the class legend (:func:`add_legend`), :func:`overlay_rgba`, and
    :func:`colorize`, which tinyfcn uses to show predictions beside the truth. So a digit
    has the same colour in each of them. A picture drawn with another colormap
    (``imshow(labels, cmap=...)``) does not, and its legend would lie.
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


def legend_handles():
    """One legend patch per class, named by :data:`~m2nist.params.CLASS_NAMES`, in
    :func:`label_palette`'s colours. Background is drawn black with a grey edge: that is how
    it looks both in :func:`colorize` (black) and in an overlay (transparent over the image,
    whose background pixels are black)."""
    from matplotlib.patches import Patch

    colours = label_palette()
    handles = [Patch(color=colours[c], label=CLASS_NAMES[c]) for c in range(BACKGROUND)]
    handles.append(Patch(facecolor="black", edgecolor="0.6", label=CLASS_NAMES[BACKGROUND]))
    return handles


def add_legend(target, **kwargs):
    """Put the class legend on an Axes (right of it) or a Figure (below its panels).

    Returns the Legend. ``kwargs`` go to ``legend()`` and override the placement,
    e.g. ``add_legend(ax, loc="lower right")``.
    """
    from matplotlib.figure import Figure

    if isinstance(target, Figure):
        place = {"loc": "lower center", "ncol": len(CLASS_NAMES), "frameon": False}
    else:
        place = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0}
    return target.legend(handles=legend_handles(), title="class", **{**place, **kwargs})


def plot_grid(images: np.ndarray, labels: np.ndarray, ncols: int = 4, title: str | None = None):
    """A matplotlib Figure: each image in grey with its label map on top, plus a legend.

    Panels are separated by a gap (and framed), so a grid of wide images never reads
    as fewer, taller ones.
    """
    import matplotlib.pyplot as plt

    n = len(images)
    nrows = max(1, -(-n // ncols))
    height, width = images.shape[1:]
    gap = 0.15  # between panels, as a fraction of a panel's size
    panel = width / 30  # inches per panel width
    legend_in, title_in = 0.9, 0.4 if title else 0.0
    grid_h = nrows * panel * height / width * (1 + gap)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(ncols * panel * (1 + gap), grid_h + legend_in + title_in),
        squeeze=False,
        subplot_kw={"xticks": [], "yticks": []},
        gridspec_kw={"wspace": gap, "hspace": gap},
    )
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, image, label in zip(axes.flat, images, labels, strict=False):
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        ax.imshow(overlay_rgba(label))
    total = fig.get_figheight()
    fig.subplots_adjust(
        left=0.02, right=0.98, bottom=legend_in / total, top=1 - (title_in + 0.05) / total
    )
    add_legend(fig, fontsize="small", title_fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
