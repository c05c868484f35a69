"""Live calibration: a grid_calibration run through a real RunEngine -> record on stop."""

from __future__ import annotations

import numpy as np
import pytest
from event_model import DocumentNames, schema_validators
from xfusion_plans import grid_calibration

from xfusion_stream.calibration import GridCalibrationCallback, load_record, record_to_documents
from xfusion_stream.core import InterCameraTransform
from xfusion_stream.devices import (
    PhantomTMX7510,
    ShimadzuHPVX2,
    SimBeam,
    SimPhantomBackend,
    SimShimadzuBackend,
)
from xfusion_stream.simulation import SceneConfig

TRANSFORM = InterCameraTransform(
    rotation_deg=1.9, translation_px=(-6.0, 4.5), scale_col=1.021, scale_row=0.987
)
CONFIG = SceneConfig(seed=11, shimadzu_shape=(64, 96), n_shimadzu=32, transform=TRANSFORM)


def _cameras(tmp_path, inline: bool):
    beam = SimBeam(CONFIG, grid_frames=8)
    raw = None if inline else tmp_path / "raw"
    phantom = PhantomTMX7510(
        "XF:T:PH:", name="phantom", backend=SimPhantomBackend(beam), data_dir=raw, inline=inline
    )
    shimadzu = ShimadzuHPVX2(
        "XF:T:HPV:", name="shimadzu", backend=SimShimadzuBackend(beam), data_dir=raw, inline=inline
    )
    return phantom, shimadzu


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "hdf5"])
def test_grid_run_gives_a_record_on_stop(RE, tmp_path, inline: bool) -> None:
    phantom, shimadzu = _cameras(tmp_path, inline)
    stored: list = []
    callback = GridCalibrationCallback(tmp_path / "cal", on_record=stored.append)
    RE.subscribe(callback)
    (uid,) = RE(grid_calibration(phantom, shimadzu, n_frames=8))
    assert callback.error is None
    record = callback.record
    assert stored == [record]
    assert record.source == f"run:{uid}"
    assert abs(record.rotation_deg - TRANSFORM.rotation_deg) < 0.05
    assert abs(record.scale_col / TRANSFORM.scale_col - 1) < 0.002
    assert abs(record.scale_row / TRANSFORM.scale_row - 1) < 0.002
    assert np.allclose(record.translation_px, TRANSFORM.translation_px, atol=0.3)
    assert load_record(callback.record_path) == record
    assert callback.record_path.with_suffix(".png").is_file()
    for name, doc in record_to_documents(record):
        schema_validators[DocumentNames[name]].validate(doc)


def test_run_without_frames_sets_error_not_raise(tmp_path) -> None:
    from event_model import compose_run

    callback = GridCalibrationCallback(tmp_path)
    bundle = compose_run()
    callback("start", bundle.start_doc)
    callback("stop", bundle.compose_stop())
    assert callback.record is None
    assert "no phantom frames" in str(callback.error)
