"""m2nist.viz: one palette, a legend that names every class, and grids whose panels never touch."""

from __future__ import annotations

from itertools import pairwise

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgba

from m2nist.params import BACKGROUND, CLASS_NAMES
from m2nist.viz import add_legend, colorize, label_palette, legend_handles, plot_grid


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_legend_names_every_class_in_the_palette_colours() -> None:
    handles = legend_handles()
    assert [h.get_label() for h in handles] == CLASS_NAMES
    palette = label_palette()
    for c, handle in enumerate(handles[:BACKGROUND]):
        assert np.allclose(handle.get_facecolor(), palette[c])
    # background: drawn as it looks in colorize() and over an image, black
    assert np.allclose(handles[BACKGROUND].get_facecolor(), to_rgba("black"))
    assert np.allclose(colorize(np.array([BACKGROUND])), 0)


@pytest.mark.parametrize("on_figure", [True, False])
def test_add_legend_on_axes_or_figure(on_figure: bool) -> None:
    fig, ax = plt.subplots()
    legend = add_legend(fig if on_figure else ax)
    assert [t.get_text() for t in legend.get_texts()] == CLASS_NAMES
    assert (legend in fig.legends) is on_figure
    assert (ax.get_legend() is legend) is not on_figure


def test_grid_panels_are_separated_and_keep_their_aspect() -> None:
    images = np.zeros((12, 64, 84), np.uint8)
    labels = np.full((12, 64, 84), BACKGROUND, np.uint8)
    fig = plot_grid(images, labels, ncols=4)
    fig.canvas.draw()
    boxes = [ax.get_window_extent() for ax in fig.axes]
    assert len(boxes) == 12
    for a, b in pairwise(boxes):
        if abs(a.y0 - b.y0) < 1:  # same row: a gap between neighbours
            assert b.x0 - a.x1 > 0.05 * a.width
    rows = sorted({round(b.y0) for b in boxes}, reverse=True)
    assert len(rows) == 3
    height = boxes[0].height
    assert all(upper - lower > 1.05 * height for upper, lower in pairwise(rows))
    assert boxes[0].width / boxes[0].height == pytest.approx(84 / 64, rel=0.02)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == CLASS_NAMES
