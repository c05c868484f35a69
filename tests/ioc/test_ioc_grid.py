"""Grid calibration over real Channel Access: a fly scan moves the soft IOC's G400 grid
into the beam, both cameras record it, and the live calibration callback fits the same
record from the IOC's files as from the simulated cameras' events."""

from __future__ import annotations

import asyncio

import pytest
from xfusion_plans import fly_grid_calibration, grid_calibration

from xfusion_stream.calibration import GridCalibrationCallback
from xfusion_stream.testing import DocumentLog, sim_cameras


def _errors(record, scene) -> tuple[float, float]:
    """Rotation error (deg) and worst scale error (%) against the simulated transform."""
    truth = scene.transform
    scale = max(
        abs(record.scale_row / truth.scale_row - 1), abs(record.scale_col / truth.scale_col - 1)
    )
    return abs(record.rotation_deg - truth.rotation_deg), 100 * scale


def _get(RE, signal):
    return asyncio.run_coroutine_threadsafe(signal.get_value(), RE.loop).result(30)


@pytest.mark.timeout(120)
def test_fly_grid_calibration_over_ca_matches_the_simulation(
    RE, epics_cameras, grid_stage, scene, tmp_path
):
    phantom, shimadzu = epics_cameras
    log, cal = DocumentLog(), GridCalibrationCallback(tmp_path / "ca")
    RE.subscribe(log)
    token = RE.subscribe(cal)
    (uid,) = RE(fly_grid_calibration(phantom, shimadzu, grid_stage, n_frames=20))
    RE.unsubscribe(token)

    (start,) = log.of("start")
    assert start["calibration"] == "G400" and start["plan_name"] == "fly_grid_calibration"
    assert start["n_frames"] == {"phantom": 20, "shimadzu": 20} and not log.of("event")
    assert log.of("stop")[0]["exit_status"] == "success"
    assert cal.error is None and cal.record is not None, cal.error
    assert cal.record.source == f"run:{uid}" and cal.record_path.exists()
    # the grid went back out: the next burst records the sample again
    assert _get(RE, grid_stage) == "sample"
    assert _get(RE, shimadzu.burst_frames) == scene.n_shimadzu

    # the simulated cameras' grid run (events) on the same scene
    ph, sh, _ = sim_cameras(scene.config, tmp_path / "sim")
    sim = GridCalibrationCallback(tmp_path / "sim-cal")
    token = RE.subscribe(sim)
    RE(grid_calibration(ph, sh, n_frames=20))
    RE.unsubscribe(token)
    assert sim.record is not None, sim.error
    over_ca, simulated = cal.record, sim.record
    assert _errors(over_ca, scene) == _errors(simulated, scene)
    assert over_ca.rotation_deg == simulated.rotation_deg
    assert (over_ca.scale_row, over_ca.scale_col) == (simulated.scale_row, simulated.scale_col)
    assert over_ca.crop == simulated.crop and over_ca.n_pairs == simulated.n_pairs
    rotation_error, scale_error = _errors(over_ca, scene)  # a 24 x 40 sensor: few cells
    assert rotation_error < 0.05 and scale_error < 1.0
