"""The calibration overlay says what its colours and marks mean."""

from __future__ import annotations

import numpy as np
from PIL import Image
from test_spatial import _grid_case, _random_transform

from xfusion_stream.calibration import calibrate_grid
from xfusion_stream.calibration._overlay import overlay_figure, write_overlay


def test_overlay_has_a_colour_legend_outside_the_picture(tmp_path) -> None:
    phantom, shimadzu = _grid_case(0, _random_transform(np.random.default_rng(100)))
    result = calibrate_grid(phantom, shimadzu)
    fig = overlay_figure(result)
    fig.canvas.draw()
    (ax,) = fig.axes
    legend = ax.get_legend()
    assert legend is not None
    texts = " | ".join(t.get_text() for t in legend.get_texts())
    for words in ("Phantom", "Shimadzu", "agree", "crop", "residual"):
        assert words in texts
    assert not legend.get_window_extent().overlaps(ax.get_images()[0].get_window_extent())
    with Image.open(write_overlay(result, tmp_path / "overlay.png")) as png:
        assert png.size[0] > 1000
