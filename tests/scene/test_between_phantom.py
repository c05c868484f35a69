"""The between-Phantom benchmark (benchmarks/_between_phantom.py): what each change does."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from xfusion_stream.simulation.training_set import (
    TrainingSetSpec,
    area_downsample,
    clip_seed,
    render_clip,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
bp = pytest.importorskip("_between_phantom")

SPEC = TrainingSetSpec(
    seed=7, clips=1, val_clips=0, frames=9, shimadzu_shape=(16, 16), phantom_every=4
)
SEED = clip_seed(7, 0)


def _windows(kind: str, amplitude: float) -> list:
    return bp.changed_windows(SPEC, [SEED], None, kind, amplitude)


def test_no_window_sits_on_a_phantom_frame_and_the_phantom_frames_are_untouched() -> None:
    hr, _ = render_clip(SPEC, SEED)
    for kind, amplitude in (("flicker", 0.3), ("plume", 0.5), ("shake", 2), ("offset", 0.5)):
        windows = _windows(kind, amplitude)
        assert windows and all(w.before < w.t < w.after for w in windows)
        for w in windows:
            np.testing.assert_array_equal(w.hq, hr[[w.before, w.after]])


def test_each_change_reaches_the_truth_and_the_shimadzu_as_it_should() -> None:
    hr, _ = render_clip(SPEC, SEED)
    flicker = _windows("flicker", 0.3)
    ratios = [float(w.truth.mean() / hr[w.t].mean()) for w in flicker]
    assert max(abs(r - 1) for r in ratios) > 0.05 and all(0.69 < r < 1.31 for r in ratios)
    for w in flicker:  # the Shimadzu sees the light the truth has (noise-free here)
        assert w.lq[1].mean() == pytest.approx(w.truth.mean(), rel=1e-4)
    shaken = _windows("shake", 2)
    assert any(not np.array_equal(w.truth, hr[w.t]) for w in shaken)
    offset = _windows("offset", 0.5)
    for w in offset:  # a calibration residual: the truth stays where the Phantom has it
        np.testing.assert_array_equal(w.truth, hr[w.t])
        assert np.abs(w.lq[1] - area_downsample(hr[w.t], 4)).max() > 1e-3


def test_the_report_counts_frames_below_bicubic() -> None:
    windows = _windows("plume", 0.5)
    report = bp.between_report([w.truth for w in windows], windows)
    assert report["n_frames"] == len(windows) and report["frames_below_bicubic"] == 0
    worse = bp.between_report([np.zeros_like(w.truth) for w in windows], windows)
    assert worse["frames_below_bicubic"] == len(windows) and worse["worst_vs_bicubic_db"] < 0


@pytest.mark.parametrize(
    ("kind", "amplitude"), [("flicker", 1.5), ("shake", 0.5), ("offset", 20), ("smoke", 0.1)]
)
def test_changes_out_of_their_range_are_refused(kind: str, amplitude: float) -> None:
    with pytest.raises(ValueError, match=kind):
        _windows(kind, amplitude)
