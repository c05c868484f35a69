"""Issue 11 over real Channel Access: the EPICS burst detectors drive the soft camera
IOCs (``xfusion ioc``, a subprocess on loopback) through a fly-scanned burst; the IOC
writes the HDF5 files, the documents validate, and the run fuses exactly as the
simulation path fuses the same scene."""

from __future__ import annotations

import asyncio
import re

import h5py
import numpy as np
import pytest
from xfusion_plans import dual_camera_burst
from xfusion_plans._fly import fly_dual_camera_burst

from xfusion_stream.app import FusionSession
from xfusion_stream.fusion import FusionConfig
from xfusion_stream.testing import DocumentLog, expected_table, sim_cameras


def _get(RE, call):
    """What ``call()`` (a coroutine or status of an ophyd-async signal) gives, on RE's loop."""

    async def run():
        return await call()

    return asyncio.run_coroutine_threadsafe(run(), RE.loop).result(30)


def _fused_frames(log: DocumentLog) -> dict[int, np.ndarray]:
    return {e["data"]["shimadzu_index"]: np.asarray(e["data"]["fused_image"]) for e in log.events()}


@pytest.mark.timeout(120)
def test_fly_burst_over_ca_fuses_like_the_simulation(
    RE, epics_cameras, ioc, scene, tiny_model, calibration, tmp_path
):
    phantom, shimadzu = epics_cameras
    raw, fused = DocumentLog(), DocumentLog()  # both validate every document
    session = FusionSession(tiny_model, calibration, [fused], FusionConfig())
    RE.subscribe(raw)
    token = RE.subscribe(session.router())  # fly-scanned streams: events implied there
    (uid,) = RE(fly_dual_camera_burst(phantom, shimadzu))
    result = session.wait(90)
    RE.unsubscribe(token)

    assert raw.of("stop")[0]["exit_status"] == "success" and not raw.of("event")
    assert result is not None and result.raw_uid == uid
    assert result.exit_status == "success" and result.problem is None, result.problem
    assert result.frames == len(expected_table(scene, "continuous").windows) > 0
    # the IOC wrote the file: frames and per-frame NDAttributes as the scene has them
    (uri,) = {r["uri"] for r in raw.of("stream_resource") if r["data_key"] == "phantom_image"}
    with h5py.File(uri.removeprefix("file://localhost"), "r") as h5:
        np.testing.assert_array_equal(h5["/entry/data/data"][3], scene.phantom_frame(3))
        attrs = h5["/entry/instrument/NDAttributes"]
        np.testing.assert_array_equal(attrs["phantom_time_ns"][()], scene.phantom_times_ns())
        assert list(attrs["phantom_trigger_flag"][()]) == list(scene.phantom_e_flags())

    # the simulation path (ophyd cameras, per-frame events) on the same scene
    simulated = DocumentLog()
    sim = FusionSession(tiny_model, calibration, [simulated], FusionConfig())
    sim.subscribe(RE)
    ph, sh, _ = sim_cameras(scene.config, tmp_path / "sim")
    RE(dual_camera_burst(ph, sh))
    assert sim.wait(90) is not None
    sim.unsubscribe()
    over_ca, in_process = _fused_frames(fused), _fused_frames(simulated)
    assert sorted(over_ca) == sorted(in_process)
    for index, frame in in_process.items():
        np.testing.assert_array_equal(over_ca[index], frame)
    session.close()
    sim.close()


def test_ioc_reports_file_counts_and_errors(RE, epics_cameras, ioc, scene):
    phantom, shimadzu = epics_cameras
    RE(fly_dual_camera_burst(phantom, shimadzu))
    hdf, driver = shimadzu.hdf, shimadzu.driver
    assert _get(RE, lambda: hdf.num_captured.get_value()) == scene.n_shimadzu
    assert _get(RE, lambda: hdf.full_file_name.get_value()).startswith(str(ioc["data_dir"]))
    assert _get(RE, lambda: driver.detector_state.get_value()) == "Idle"
    assert f"Done: {scene.n_shimadzu} frames" in _get(RE, lambda: driver.status_message.get_value())
    assert _get(RE, lambda: shimadzu.burst_frames.get_value()) == scene.n_shimadzu

    # a burst longer than camera memory: the Acquire put fails (ophyd-async 0.21.3 drops
    # a failed CA put: aioca's CANothing is falsy, stamina's retry swallows it) and the
    # IOC says why in its status PVs, which the detector's acquire logic raises with
    _get(RE, lambda: driver.num_images.set(scene.n_shimadzu + 1))
    _get(RE, lambda: driver.acquire.set(True, timeout=10))
    assert _get(RE, lambda: driver.detector_state.get_value()) == "Error"
    assert "NumImages" in _get(RE, lambda: driver.status_message.get_value())
    why = f"NumImages {scene.n_shimadzu + 1}: a burst holds 1..{scene.n_shimadzu} frames"
    with pytest.raises(RuntimeError, match=re.escape(why)):
        _get(RE, shimadzu._acquire_logic.wait_for_idle)
    # a plugin outside the IOC's data folder: refused before any file is opened
    _get(RE, lambda: hdf.file_path.set("/"))
    assert _get(RE, lambda: hdf.file_path_exists.get_value()) is False


def test_ioc_command_refuses_a_missing_data_folder(tmp_path, capsys):
    from xfusion_stream.cli import main

    assert main(["ioc", "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert "is not a directory" in capsys.readouterr().err
