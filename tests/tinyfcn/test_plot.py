"""The predictions picture: a PNG written whole, a row of three panels per image."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from fcnbase.outputs import is_partial
from m2nist import CLASS_NAMES
from tests.tinyfcn.toys import toy_data
from tinyfcn import TinyFCN, plot_predictions


def test_plot_writes_one_png_and_returns_the_figure(tmp_path: Path) -> None:
    path = tmp_path / "predictions.png"
    fig = plot_predictions(TinyFCN("fcn2s"), toy_data(3), path, count=4)
    try:
        assert len(fig.axes) == 3 * 3  # count is capped at the images there are
        assert [ax.get_title() for ax in fig.axes[:3]] == ["image", "truth", "prediction"]
        (legend,) = fig.legends  # the colours are named: every class, background included
        assert [t.get_text() for t in legend.get_texts()] == CLASS_NAMES
    finally:
        plt.close(fig)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p.name for p in tmp_path.iterdir() if is_partial(p.name)]
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.png"]
