"""The picture a run leaves behind: image, truth and prediction side by side."""

from __future__ import annotations

import os

from torch import nn

from fcnbase import atomic_write
from m2nist.viz import add_legend, colorize
from tinyfcn.data import Split, as_tensors
from tinyfcn.evaluation import predict


def plot_predictions(
    model: nn.Module, data: Split, path: str | os.PathLike | None = None, count: int = 4
):
    """Image, truth and prediction side by side for the first ``count`` images of ``data``
    (any split), with the class legend below (a colour is only a class when the picture
    says which).

    Saves a PNG when ``path`` is given (atomically) and returns the figure.
    """
    import matplotlib.pyplot as plt

    images, labels = (t[:count] for t in as_tensors(data))
    count = len(images)
    pred = predict(model, images)
    legend_in = 0.8  # room below the panels for two rows of the class legend
    # Rows taller than a 64x84 panel is at this width: a gap between images, not one strip.
    fig, axes = plt.subplots(count, 3, figsize=(7.5, 2.3 * count + legend_in), squeeze=False)
    titles = ("image", "truth", "prediction")
    for row, row_axes in enumerate(axes):
        panels = images[row, 0].numpy(), colorize(labels[row].numpy()), colorize(pred[row].numpy())
        for ax, panel, title in zip(row_axes, panels, titles, strict=True):
            ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None)
            ax.set_axis_off()
            if row == 0:
                ax.set_title(title)
    fig.tight_layout(rect=(0, legend_in / fig.get_figheight(), 1, 1))
    add_legend(fig, ncol=6)
    if path is not None:
        with atomic_write(path) as f:
            fig.savefig(f, format="png", dpi=100)
    return fig
