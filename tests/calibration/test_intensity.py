"""Intensity calibration: Shimadzu counts brought onto the Phantom's count scale by the
grid run, with cameras whose gain and dark offset are known."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from xfusion_stream.calibration import (
    CalibrationRecord,
    IntensityMatch,
    Registration,
    calibrate_grid,
    load_record,
    match_intensity,
)
from xfusion_stream.core import CalibrationError
from xfusion_stream.simulation import Scene, SceneConfig

FULL = 65535.0


def _config(full_scale: float, dark: float, content: str = "grid") -> SceneConfig:
    return SceneConfig(
        seed=3,
        shimadzu_shape=(64, 96),
        content=content,
        n_shimadzu=10,
        shimadzu_full_scale=full_scale,
        shimadzu_dark_counts=dark,
    )


def _calibrate(full_scale: float, dark: float) -> CalibrationRecord:
    scene = Scene(_config(full_scale, dark))
    phantom = [scene.phantom_frame(i) for i in range(scene.n_phantom)]
    shimadzu = [scene.shimadzu_frame(k) for k in range(scene.n_shimadzu)]
    return calibrate_grid(phantom, shimadzu, source="test grid").record


@pytest.mark.parametrize("full_scale, dark", [(0.9, 0.0), (0.45, 2000.0), (0.7, 500.0)])
def test_grid_run_measures_the_shimadzu_gain_and_offset(full_scale, dark):
    match = _calibrate(full_scale, dark).intensity
    assert match is not None and match.r2 > 0.98
    assert match.shimadzu_gain == pytest.approx(0.9 / full_scale, rel=0.03)
    # what matters: a Shimadzu count of intensity I lands on the Phantom's count for I
    for intensity in (0.2, 0.5, 0.9):
        shimadzu = np.array([[dark + intensity * full_scale * FULL]])
        on_phantom_scale = match.apply(shimadzu)[0, 0]
        assert on_phantom_scale == pytest.approx(intensity * 0.9 * FULL, abs=0.01 * FULL)


def test_registered_sample_frames_agree_across_cameras_only_with_the_match():
    record = _calibrate(0.45, 2000.0)
    sample = Scene(_config(0.45, 2000.0, content="sample"))
    k = 0  # the Shimadzu frame taken with Phantom frame 0
    index = int(np.flatnonzero(sample.phantom_shimadzu_index() == k)[0])
    with_match = Registration(record)
    without = Registration(record.model_copy(update={"intensity": None}))
    phantom = with_match.phantom_hr(sample.phantom_frame(index))
    h, w = with_match.lr_shape
    phantom_lr = cv2.resize(phantom, (w, h), interpolation=cv2.INTER_AREA)
    inner = (slice(2, -2), slice(2, -2))
    for registration, tolerance in ((with_match, 0.015), (without, None)):
        shimadzu = registration.shimadzu_lr(sample.shimadzu_frame(k))
        ratio = float(np.mean(shimadzu[inner]) / np.mean(phantom_lr[inner]))
        if tolerance is None:
            assert abs(ratio - 1) > 0.3  # the cameras disagree by their gains
        else:
            assert ratio == pytest.approx(1.0, abs=tolerance)


def test_records_keep_the_match_and_older_records_load_without_it(tmp_path):
    record = _calibrate(0.7, 500.0)
    path = record.save(tmp_path / "cal.json")
    again = load_record(path)
    assert again.intensity == record.intensity
    raw = json.loads(path.read_text())
    raw.pop("intensity")
    (tmp_path / "old.json").write_text(json.dumps(raw))
    assert load_record(tmp_path / "old.json").intensity is None
    raw["intensity"] = {"shimadzu_gain": -1.0, "shimadzu_offset_counts": 0.0, "r2": 0.9,
                        "n_pixels": 10}  # fmt: skip
    (tmp_path / "bad.json").write_text(json.dumps(raw))
    with pytest.raises(Exception, match="shimadzu_gain"):
        load_record(tmp_path / "bad.json")


def test_unusable_frames_are_refused_with_the_reason():
    rng = np.random.default_rng(0)
    phantom = rng.random((64, 96)) * 1000
    with pytest.raises(CalibrationError, match="my grid: the Shimadzu frame is flat"):
        match_intensity(phantom, np.full((16, 24), 7.0), 4, source="my grid")
    with pytest.raises(CalibrationError, match="do not match linearly"):
        match_intensity(phantom, rng.random((16, 24)) * 1000, 4, source="my grid")
    with pytest.raises(CalibrationError, match="4x the Shimadzu frame"):
        match_intensity(phantom, np.ones((10, 10)), 4)
    match = IntensityMatch(shimadzu_gain=2.0, shimadzu_offset_counts=-10.0, r2=1.0, n_pixels=1)
    np.testing.assert_allclose(match.apply(np.array([5.0, 10.0])), [0.0, 10.0])


def test_a_failed_intensity_match_keeps_the_geometry(monkeypatch, caplog):
    import xfusion_stream.calibration._spatial as spatial

    def refuse(*args, **kwargs):
        raise CalibrationError("test grid: Phantom saturated")

    monkeypatch.setattr(spatial, "match_intensity", refuse)
    scene = Scene(_config(0.9, 0.0))
    result = calibrate_grid(
        [scene.phantom_frame(i) for i in range(scene.n_phantom)],
        [scene.shimadzu_frame(k) for k in range(scene.n_shimadzu)],
    )
    assert result.record.intensity is None and result.record.n_pairs > 100
    assert result.report()["intensity_problem"] == "test grid: Phantom saturated"
    assert "no intensity match" in caplog.text
